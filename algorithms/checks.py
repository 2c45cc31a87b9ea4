# SPDX-License-Identifier: GPL-2.0-or-later
"""Checks of the input files and output paths, before anything is read or written.

QGIS calls checkParameterValues before a run (dialog, processing.run,
qgis_process) and prepareAlgorithm at the start of every run (also models and
alg.run()): both refuse bad input files and output paths with a message naming
the problem, before any fitting.
"""

from __future__ import annotations

import os
import re
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsMapLayer,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFileDestination,
    QgsProcessingUtils,
)

from ..core.raster import checks as raster_checks
from ..core.raster.checks import GEOTIFF, open_raster, rotation_problem, without_aux_files
from . import compat, dependencies
from .messages import tr

_SUFFIX = re.compile(r"\s*\(.*\)$")  # "Target raster (cloudy image)" -> "Target raster"


def input_files(
    alg: QgsProcessingAlgorithm, parameters: dict[str, Any], context: QgsProcessingContext
) -> list[tuple[str, str]]:
    """(label, file) of every raster given as input, e.g. ("Target raster, INPUT", "/data/b04.tif").

    Raises QgsProcessingException when a value is a missing file, a file GDAL cannot read as a
    raster, or a non-raster layer. Layers of other providers are skipped (raster_path refuses them).
    """
    files = []
    for definition in alg.parameterDefinitions():
        if definition.type() not in ("raster", "multilayer") or definition.isDestination():
            continue
        if definition.type() == "multilayer" and definition.layerType() == compat.SOURCE_FILE:
            continue  # files that are not rasters (Sentinel-2 products), checked when the run opens them
        value = parameters.get(definition.name())
        if value is None or value == "":
            continue
        label = f"{_SUFFIX.sub('', definition.description())}, {definition.name()}"
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, QgsMapLayer):
                layer = item
            elif isinstance(item, str) and item:
                with without_aux_files():  # else the statistics of the layer's style are saved beside the file
                    layer = QgsProcessingUtils.mapLayerFromString(item, context, True, compat.LAYER_HINT_RASTER)
            else:
                continue  # expressions, model values...: resolved and checked by QGIS
            if layer is not None and layer.isValid() and layer.type() == compat.LAYER_RASTER:
                if layer.providerType() == "gdal":
                    files.append((label, layer.source().split("|")[0]))
                continue
            path = (layer.source() if layer is not None else str(item)).split("|")[0]
            if not os.path.exists(path):
                raise QgsProcessingException(tr("The file '{}' ({}) does not exist.").format(path, label))
            reason = open_raster(path)[1] or "QGIS did not load it as a raster layer"
            raise QgsProcessingException(
                tr("The file '{}' ({}) is not a raster that GDAL can read ({})").format(path, label, reason)
            )
    return files


def input_problem(alg: QgsProcessingAlgorithm, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
    """What is wrong with the input rasters (unreadable, rotated, CRS on some only), or None."""
    try:
        files = input_files(alg, parameters, context)
    except QgsProcessingException as exc:
        return str(exc)
    with_crs, without_crs = [], []
    for label, path in files:
        name = os.path.basename(path)
        ds, reason = open_raster(path)
        if ds is None:
            return tr("The file '{}' ({}) is not a raster that GDAL can read ({})").format(path, label, reason)
        gt, wkt = ds.GetGeoTransform(), ds.GetProjection()
        ds = None
        problem = rotation_problem(name, gt, label)
        if problem:
            return problem
        (with_crs if wkt else without_crs).append((label, name, wkt))
    if with_crs and without_crs:
        label, name, _ = without_crs[0]
        other_label, other, wkt = with_crs[0]
        crs = QgsCoordinateReferenceSystem.fromWkt(wkt)
        crs_name = crs.authid() or crs.description() or "a CRS"
        return tr(
            "'{}' ({}) has no CRS but '{}' ({}) has one ({}): the rasters cannot be aligned. Assign the right "
            "CRS to it first (Raster > Projections > Assign Projection)."
        ).format(name, label, other, other_label, crs_name)
    return None


def output_problem(
    alg: QgsProcessingAlgorithm, parameters: dict[str, Any], context: QgsProcessingContext
) -> str | None:
    """What is wrong with an output path (wrong type, an input, given twice, a folder, not writable), or None."""
    try:
        inputs = input_files(alg, parameters, context)
    except QgsProcessingException:
        inputs = []
    earlier: list[str] = []
    for definition in alg.destinationParameterDefinitions():
        path = destination_path(alg, parameters, definition, context)
        if not path:
            continue
        what = "output" if definition.name() == "OUTPUT" else _SUFFIX.sub("", definition.description()).lower()
        extensions = (
            (f".{definition.defaultFileExtension()}",)
            if isinstance(definition, QgsProcessingParameterFileDestination)
            else GEOTIFF
        )
        problem = raster_checks.output_problem(path, what, inputs, earlier, extensions)
        if problem:
            return problem
        if definition.name() == "REPORT":
            missing = dependencies.missing_packages(dependencies.REPORT_REQUIRED)
            if missing:
                message = tr("The run report needs a Python package QGIS's Python cannot find.\n\n")
                return message + dependencies.install_message(missing)
        earlier.append(path)
    return None


def destination_path(
    alg: QgsProcessingAlgorithm,
    parameters: dict[str, Any],
    definition: QgsProcessingParameterDefinition,
    context: QgsProcessingContext,
) -> str:
    """The file an output parameter names, as processAlgorithm will get it, without touching ``context``.

    parameterAsOutputLayer registers the layer to load on completion (and draws a new temporary
    name for TEMPORARY_OUTPUT), so it runs on a scratch context.
    """
    value = parameters.get(definition.name())
    if value is None or value == "":
        return ""
    scratch = QgsProcessingContext()
    scratch.setProject(context.project())
    scratch.setExpressionContext(context.expressionContext())
    try:
        if isinstance(definition, QgsProcessingParameterFileDestination):
            return alg.parameterAsFileOutput(parameters, definition.name(), scratch) or ""
        return alg.parameterAsOutputLayer(parameters, definition.name(), scratch) or ""
    except QgsProcessingException:
        return ""
