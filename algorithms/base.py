# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared parts of the MCPN Processing algorithms.

The engine (``core.pipeline.api``, which imports torch) is imported lazily, inside
``processAlgorithm``, so the provider loads even where torch is missing; the
algorithms then stop with installation instructions.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import traceback
from types import SimpleNamespace
from typing import Any, Callable

from osgeo import gdal
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsMapLayer,
    QgsMessageLog,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication, QUrl
from qgis.PyQt.QtGui import QIcon

from ..core.config import ANCHORS, DEVICES, METHODS, PRECISIONS, Settings
from ..core.errors import Cancelled, MCPNError
from ..core.raster.paths import same_file
from ..mcpn_plugin import dependencies
from . import compat

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ICON_PATH = os.path.join(PLUGIN_DIR, "resources", "icon.svg")
README_PATH = os.path.join(PLUGIN_DIR, "README.md")
HELP_ANCHOR = "#using-the-algorithms"  # the README section the help buttons open
LOG_TAG = "MCPN"

DEFAULTS = Settings()
# The dialogs' option labels, one per choice of core.config (in its order: qgis_process takes the numbers).
DEVICE_LABELS = {
    "auto": "auto (a GPU when there is one, else the CPU)",
    "cpu": "CPU",
    "cuda": "CUDA (NVIDIA GPU)",
    "mps": "MPS (Apple GPU)",
}
METHOD_LABELS = {"emergent": "Emergent", "direct": "Direct", "stacked": "Stacked"}
PRECISION_LABELS = {"fp32": "FP32 (default)", "bf16": "bf16 (faster on CPUs with AVX-512 BF16 or AMX)"}
ANCHOR_LABELS = {
    "auto": "From the best instant estimate (guide regression or interpolation)",
    "none": "From noise (as in Czerkawski et al.'s MCPN)",
}

# The engine's progress (its tile fits) spans 0-99 %; the end of the run (output written) is 100 %.
_FIT_END = 99.0
_LOG_EVERY = 0.05  # a progress line in the log every 5 % of the steps
_SUFFIX = re.compile(r"\s*\(.*\)$")  # "Target raster (cloudy image)" -> "Target raster"


def tr(text: str) -> str:
    return QCoreApplication.translate("MCPN", text)


def log_exception(message: str) -> None:
    """Put the current traceback in the QGIS message log (tab "MCPN") for developers."""
    QgsMessageLog.logMessage(f"{message}\n{traceback.format_exc()}", LOG_TAG, compat.MESSAGE_CRITICAL)


def duration(seconds: float) -> str:
    """ "45 s", "12 min 05 s", "2 h 03 min"."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class ProgressReporter:
    """The engine's progress callback: the bar moves from the first step, and a log line every 5 % of the steps
    gives the steps done, the time elapsed and an estimate of the time left."""

    def __init__(self, feedback: QgsProcessingFeedback, clock: Callable[[], float] = time.monotonic) -> None:
        self.feedback = feedback
        self.clock = clock
        self.start = clock()
        self.next_log = 0.0  # fraction of the steps at which the next line is logged

    def __call__(self, step: int, total: int) -> None:
        if total <= 0 or step <= 0:
            return
        done = min(step, total) / total
        self.feedback.setProgress(max(1.0, _FIT_END * done))  # 1 % from the first step: the bar shows it runs
        if done < self.next_log:
            return
        self.next_log = (int(done / _LOG_EVERY + 1e-9) + 1) * _LOG_EVERY
        elapsed = self.clock() - self.start
        line = tr("Step {} of {} ({:.0f} %), {} elapsed").format(min(step, total), total, 100 * done, duration(elapsed))
        if step < total:
            line += tr(", about {} left").format(duration(elapsed * (total - step) / step))
        self.feedback.pushInfo(line + ".")


class MCPNAlgorithm(QgsProcessingAlgorithm):
    """Base class: group, icon, help, shared parameters and engine plumbing."""

    OUTPUT = "OUTPUT"
    INPUT = "INPUT"
    GUIDES = "GUIDES"
    METHOD = "METHOD"
    STOPPING = "STOPPING"
    STEPS = "STEPS"
    DEVICE = "DEVICE"
    SEED = "SEED"
    LEARNING_RATE = "LEARNING_RATE"
    CORE_CHANNELS = "CORE_CHANNELS"
    PRECISION = "PRECISION"
    OUTPUT_AVERAGE = "OUTPUT_AVERAGE"
    TILE_SIZE = "TILE_SIZE"
    DASK_SCHEDULER = "DASK_SCHEDULER"
    REPORT = "REPORT"
    ANCHOR = "ANCHOR"

    NAME = DISPLAY_NAME = SHORT_DESCRIPTION = HELP = ""  # each algorithm's identity and help (translated here)
    STOPPING_RULES: tuple[str, ...] = ()  # the rules this algorithm offers, in the order of its STOPPING options

    # --- identity --------------------------------------------------------------------------
    def createInstance(self) -> MCPNAlgorithm:
        return type(self)()

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:
        return tr(self.DISPLAY_NAME)

    def shortDescription(self) -> str:
        return tr(self.SHORT_DESCRIPTION)

    def shortHelpString(self) -> str:
        return tr(self.HELP)

    def group(self) -> str:
        return tr("Raster restoration")

    def groupId(self) -> str:
        return "rasterrestoration"

    def icon(self) -> QIcon:
        return QIcon(ICON_PATH)

    def svgIconPath(self) -> str:
        return ICON_PATH

    def helpUrl(self) -> str:
        return QUrl.fromLocalFile(README_PATH).toString() + HELP_ANCHOR

    # QGIS 3.22's dialog says "HTML output has been generated" after every run of an algorithm with an HTML
    # output (the run report), even when none was asked for: it asks this, so say it only after a report.
    _report_written: dict[str, bool] = {}  # per algorithm name: the dialog asks a copy

    def hasHtmlOutputs(self) -> bool:
        return self._report_written.get(self.name(), False)

    # --- parameters ------------------------------------------------------------------------
    def add(self, definition: QgsProcessingParameterDefinition, tooltip: str, advanced: bool = False) -> None:
        """Add a parameter with its tooltip (``setHelp``), in the Advanced group when ``advanced``."""
        definition.setHelp(tooltip)
        if advanced:
            definition.setFlags(definition.flags() | compat.FLAG_ADVANCED)
        self.addParameter(definition)

    def add_choice(
        self,
        name: str,
        label: str,
        labels: dict[str, str],
        choices: tuple[str, ...],
        default: str,
        tooltip: str,
        advanced: bool = False,
        optional: bool = False,
    ) -> None:
        """An enum parameter over the engine's ``choices`` (in their order: qgis_process takes the numbers)."""
        options = [labels[choice] for choice in choices]
        definition = QgsProcessingParameterEnum(
            name, label, options=options, defaultValue=choices.index(default), optional=optional
        )
        self.add(definition, tooltip, advanced)

    def add_run_parameters(self) -> None:
        """STEPS, DEVICE, SEED and the advanced LEARNING_RATE / CORE_CHANNELS / PRECISION / OUTPUT_AVERAGE."""
        self.add(
            QgsProcessingParameterNumber(
                self.STEPS,
                tr("Number of optimisation steps"),
                compat.NUMBER_INTEGER,
                defaultValue=DEFAULTS.steps,
                minValue=1,
            ),
            tr(
                "How long the network is fitted at most. With the default stopping rule the fit stops earlier once "
                "the held-out pixels stop improving. A few hundred steps give a quick preview."
            ),
        )
        self.add_choice(
            self.DEVICE,
            tr("Compute device"),
            DEVICE_LABELS,
            DEVICES,
            DEFAULTS.device,
            tr(
                "Where the network is fitted. Auto uses an NVIDIA GPU (CUDA) or an Apple GPU (MPS) when PyTorch "
                "sees one, else the CPU. Choosing a GPU that is not there is an error."
            ),
        )
        self.add(
            QgsProcessingParameterNumber(
                self.SEED, tr("Random seed"), compat.NUMBER_INTEGER, defaultValue=0, minValue=0
            ),
            tr("The same seed and inputs give the same result on the same device."),
        )
        learning_rate = QgsProcessingParameterNumber(
            self.LEARNING_RATE,
            tr("Learning rate (0 uses the method's default)"),
            compat.NUMBER_DOUBLE,
            defaultValue=0.0,
            minValue=0.0,
        )
        learning_rate.setMetadata({"widget_wrapper": {"decimals": 6}})  # 0.002, not 0.00
        self.add(
            learning_rate,
            tr("Step size of the Adam optimiser. Leave 0 unless you know why: each method has a tested default."),
            advanced=True,
        )
        self.add(
            QgsProcessingParameterNumber(
                self.CORE_CHANNELS,
                tr("Network width (core channels)"),
                compat.NUMBER_INTEGER,
                defaultValue=DEFAULTS.core_channels,
                minValue=1,
                maxValue=256,
            ),
            tr("Number of channels of the shared core network. Wider is slower and not necessarily better."),
            advanced=True,
        )
        self.add_choice(  # optional: models saved before it existed run with the default
            self.ANCHOR,
            tr("Start the network"),
            ANCHOR_LABELS,
            ANCHORS,
            DEFAULTS.anchor,
            tr(
                "From the best instant estimate: the network learns a correction of the better of guide regression "
                "and interpolation (judged on held-out clear pixels), so the result starts as good as them. "
                "From noise: the network alone, as in Czerkawski et al.'s MCPN."
            ),
            advanced=True,
            optional=True,
        )
        self.add_choice(
            self.PRECISION,
            tr("Arithmetic precision"),
            PRECISION_LABELS,
            PRECISIONS,
            DEFAULTS.precision,
            tr(
                "FP32 works everywhere. bf16 can be faster on recent CPUs (AVX-512 BF16 or AMX) and GPUs, "
                "and slower on CPUs without these instructions."
            ),
            advanced=True,
        )
        self.add(
            QgsProcessingParameterNumber(
                self.OUTPUT_AVERAGE,
                tr("Output averaging over the last steps (0 keeps the last step's output)"),
                compat.NUMBER_DOUBLE,
                defaultValue=DEFAULTS.output_average,
                minValue=0.0,
                maxValue=0.999,
            ),
            tr(
                "Decay of a moving average of the network's outputs: 0.99 averages about the last 100 steps, "
                "which removes their step-to-step wander. 0 keeps the last step's output."
            ),
            advanced=True,
        )

    def add_advanced(self, definition: QgsProcessingParameterDefinition, tooltip: str) -> None:
        self.add(definition, tooltip, advanced=True)

    def add_output(self, tooltip: str) -> None:
        self.add(QgsProcessingParameterRasterDestination(self.OUTPUT, tr("Output raster")), tooltip)

    def add_tiling_parameters(self) -> None:
        """Advanced TILE_SIZE and DASK_SCHEDULER."""
        self.add(
            QgsProcessingParameterNumber(
                self.TILE_SIZE,
                tr("Tile size in pixels"),
                compat.NUMBER_INTEGER,
                defaultValue=DEFAULTS.tile_size,
                minValue=64,
                maxValue=4096,
            ),
            tr(
                "Rasters larger than one tile are processed in overlapping tiles, read and written window by "
                "window and blended without seams. Larger tiles need more memory."
            ),
            advanced=True,
        )
        self.add(
            QgsProcessingParameterString(
                self.DASK_SCHEDULER,
                tr("Dask cluster for the tiles (leave empty to run them here)"),
                defaultValue="",
                optional=True,
            ),
            tr(
                "Empty: the tiles run here, one after the other. local or local:4: a local Dask cluster (with 4 "
                "workers). tcp://host:8786: a running Dask cluster whose workers see the same files."
            ),
            advanced=True,
        )

    def add_report_output(self) -> None:
        self.add(
            QgsProcessingParameterFileDestination(
                self.REPORT, tr("Run report"), tr("HTML files (*.html)"), optional=True, createByDefault=False
            ),
            tr(
                "An HTML page with the parameters, device and time, convergence plots, previews and (when asked "
                "for) the self-validation scores. Needs the Python package matplotlib."
            ),
        )

    def report_path(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        return self.parameterAsFileOutput(parameters, self.REPORT, context) or None

    def write_report(
        self,
        path: str,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        result: Any,
        feedback: QgsProcessingFeedback,
    ) -> str:
        """Write the HTML run report (parameters as the user gave them, traces, self-validation, previews)."""
        from ..core.trust.report import write_report

        shown = {
            definition.description(): plain_value(
                definition, parameters.get(definition.name(), definition.defaultValue()), context
            )
            for definition in self.parameterDefinitions()
            if not definition.isDestination()
        }
        notes = list(result.notes)
        if result.fitted:
            notes.insert(0, f"{result.fitted} of {result.tiles} tile(s) fitted; the traces are those of the first.")
        try:
            write_report(
                path,
                title=f"{self.displayName()} – run report",
                parameters=shown,
                device=result.device,
                seconds=result.seconds,
                trace=result.trace,
                chosen_step=result.chosen_steps[0] if result.chosen_steps else 0,
                validation=result.validation,
                previews=result.previews,
                notes=notes,
            )
        except OSError as exc:
            log_exception(f"{self.displayName()}: cannot write the report")
            raise QgsProcessingException(tr("Cannot write the run report '{}': {}").format(path, exc)) from None
        feedback.pushInfo(tr("Run report: {}").format(path))
        self._report_written[self.name()] = True
        return path

    # --- checks before anything is read or written -----------------------------------------
    # QGIS calls checkParameterValues before a run (dialog, processing.run, qgis_process) and
    # prepareAlgorithm at the start of every run (also models and alg.run()): both refuse bad
    # input files and output paths with a message naming the problem, before any fitting.
    def checkParameterValues(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[bool, str]:
        problem = self.input_problem(parameters, context)
        if problem:
            return False, problem
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        problem = self.output_problem(parameters, context)
        return (False, problem) if problem else (True, "")

    def prepareAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> bool:
        self._report_written[self.name()] = False  # until this run has written one
        problem = self.input_problem(parameters, context) or self.output_problem(parameters, context)
        if problem:
            raise QgsProcessingException(problem)
        return True

    def input_files(self, parameters: dict[str, Any], context: QgsProcessingContext) -> list[tuple[str, str]]:
        """(label, file) of every raster given as input, e.g. ("Target raster, INPUT", "/data/b04.tif").

        Raises QgsProcessingException when a value is a missing file, a file GDAL cannot read as a
        raster, or a non-raster layer. Layers of other providers are skipped (raster_path refuses them).
        """
        files = []
        for definition in self.parameterDefinitions():
            if definition.type() not in ("raster", "multilayer") or definition.isDestination():
                continue
            value = parameters.get(definition.name())
            if value is None or value == "":
                continue
            label = f"{_SUFFIX.sub('', definition.description())}, {definition.name()}"
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, QgsMapLayer):
                    layer = item
                elif isinstance(item, str) and item:
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

    def input_problem(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        """What is wrong with the input rasters (unreadable, rotated, CRS on some only), or None."""
        try:
            files = self.input_files(parameters, context)
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
            if gt[2] != 0.0 or gt[4] != 0.0:
                return tr(
                    "'{}' ({}) has a rotated or skewed geotransform (rotation terms {:g} and {:g}), which is not "
                    "supported: warp it to a north-up grid first (Raster > Projections > Warp)."
                ).format(name, label, gt[2], gt[4])
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

    def output_problem(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        """What is wrong with an output path (wrong type, an input, given twice, a folder, not writable), or None."""
        try:
            inputs = self.input_files(parameters, context)
        except QgsProcessingException:
            inputs = []
        earlier: list[str] = []
        for definition in self.destinationParameterDefinitions():
            path = self.destination_path(parameters, definition, context)
            if not path:
                continue
            what = "output" if definition.name() == self.OUTPUT else _SUFFIX.sub("", definition.description()).lower()
            problem = _destination_problem(path, what, definition, inputs, earlier)
            if problem:
                return problem
            if definition.name() == self.REPORT:
                missing = dependencies.missing_packages(dependencies.REPORT_REQUIRED)
                if missing:
                    message = tr("The run report needs a Python package QGIS's Python cannot find.\n\n")
                    return message + dependencies.install_message(missing)
            earlier.append(path)
        return None

    def destination_path(
        self, parameters: dict[str, Any], definition: QgsProcessingParameterDefinition, context: QgsProcessingContext
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
                return self.parameterAsFileOutput(parameters, definition.name(), scratch) or ""
            return self.parameterAsOutputLayer(parameters, definition.name(), scratch) or ""
        except QgsProcessingException:
            return ""

    # --- helpers used in processAlgorithm ----------------------------------------------------
    @staticmethod
    def require_dependencies() -> None:
        missing = dependencies.missing_packages()
        if missing:
            raise QgsProcessingException(dependencies.install_message(missing))

    @staticmethod
    def load_engine() -> SimpleNamespace:
        """Import the engine's raster pipelines (and torch) now; a broken installation becomes a readable error."""
        try:
            from ..core.model.fitting import Callbacks
            from ..core.pipeline.inpainting import inpaint_raster
            from ..core.pipeline.super_resolution import super_resolve_raster
            from ..core.raster.masks import CloudMask
        except (ImportError, OSError) as exc:
            log_exception("MCPN: cannot import the engine")
            raise QgsProcessingException(
                tr("The MCPN engine cannot be loaded ({}: {}).\n\n").format(type(exc).__name__, exc)
                + dependencies.install_message(dependencies.missing_packages() or ["torch"])
            ) from None
        from ..core.model import patch_consistency
        from ..mcpn_plugin import network

        patch_consistency.set_downloader(network.download)  # weights through QGIS's network settings
        return SimpleNamespace(
            inpaint_raster=inpaint_raster,
            super_resolve_raster=super_resolve_raster,
            CloudMask=CloudMask,
            Callbacks=Callbacks,
        )

    def raster_path(self, layer: QgsRasterLayer | None, what: str) -> str:
        """The file a raster layer reads (GDAL provider only)."""
        if layer is None or not layer.isValid():
            raise QgsProcessingException(tr("The {} is not a valid raster layer.").format(what))
        if layer.providerType() != "gdal":
            raise QgsProcessingException(
                tr("The {} '{}' is not a file-based raster (provider {});").format(
                    what, layer.name(), layer.providerType()
                )
                + tr(" save it as a GeoTIFF first.")
            )
        source = layer.source()
        return source.split("|")[0]

    def settings(self, parameters: dict[str, Any], context: QgsProcessingContext, **specific: Any) -> Settings:
        """The engine's one configuration, built once from the parameters (``specific``: the algorithm's own)."""
        learning_rate = self.parameterAsDouble(parameters, self.LEARNING_RATE, context)
        scheduler = self.parameterAsString(parameters, self.DASK_SCHEDULER, context).strip()
        try:
            return Settings(
                method=METHODS[self.parameterAsEnum(parameters, self.METHOD, context)],
                stopping=self.STOPPING_RULES[self.parameterAsEnum(parameters, self.STOPPING, context)],
                anchor=ANCHORS[self.parameterAsEnum(parameters, self.ANCHOR, context)],
                steps=self.parameterAsInt(parameters, self.STEPS, context),
                learning_rate=learning_rate if learning_rate > 0 else None,
                core_channels=self.parameterAsInt(parameters, self.CORE_CHANNELS, context),
                device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
                seed=self.parameterAsInt(parameters, self.SEED, context),
                precision=PRECISIONS[self.parameterAsEnum(parameters, self.PRECISION, context)],
                output_average=self.parameterAsDouble(parameters, self.OUTPUT_AVERAGE, context),
                tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
                scheduler=scheduler or None,
                **specific,
            )
        except MCPNError as exc:
            raise QgsProcessingException(str(exc)) from None

    @staticmethod
    def log_run(feedback: QgsProcessingFeedback, settings: Settings) -> None:
        """Say in the log how the network is fitted."""
        feedback.pushInfo(
            tr("Method: {}, stopping: {}, start: {}, steps: {}, ").format(
                settings.method, settings.stopping, settings.anchor, settings.steps
            )
            + tr("precision: {}, output averaging: {:g}.").format(settings.precision, settings.output_average)
        )

    @staticmethod
    def callbacks(engine: SimpleNamespace, feedback: QgsProcessingFeedback) -> Any:
        """The engine's callbacks: progress and log lines into ``feedback``, and its cancel button."""
        return engine.Callbacks(ProgressReporter(feedback), feedback.isCanceled, lambda m: feedback.pushInfo(str(m)))

    def run_engine(self, function: Callable, feedback: QgsProcessingFeedback, *args: Any, **kwargs: Any) -> Any:
        """Call an engine function, turning every failure into a readable QgsProcessingException."""
        try:
            result = function(*args, **kwargs)
            feedback.setProgress(100)
            return result
        except Cancelled:
            raise QgsProcessingException(tr("The run was cancelled; no output was written.")) from None
        except MCPNError as exc:  # an input the engine refuses: its message alone, as QGIS's own algorithms do
            raise QgsProcessingException(str(exc)) from None
        except MemoryError:
            log_exception(f"{self.displayName()}: out of memory")
            raise QgsProcessingException(
                tr("Out of memory: use a smaller raster (clip it) or fewer guide bands.")
            ) from None
        except Exception as exc:  # torch / numpy errors the engine did not anticipate
            log_exception(f"{self.displayName()}: unexpected error")
            if feedback.isCanceled():
                raise QgsProcessingException(tr("The run was cancelled; no output was written.")) from None
            raise QgsProcessingException(
                tr("The computation failed: {}: {}").format(type(exc).__name__, exc)
                + tr(" (details in the 'MCPN' tab of the Log Messages panel)")
            ) from None

    @staticmethod
    def name_output_layer(context: QgsProcessingContext, path: str, name: str) -> None:
        """Give the output layer a meaningful name when QGIS loads it on completion."""
        if context.willLoadLayerOnCompletion(path):
            details = context.layerToLoadOnCompletionDetails(path)
            details.name = name


def plain_value(definition: QgsProcessingParameterDefinition, value: Any, context: QgsProcessingContext) -> str:
    """A parameter value as a person reads it: an enum's label, a layer's file, "yes"/"no", no Python quotes."""
    if value is None or value == "":
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(plain_value(definition, item, context) for item in value)
    if isinstance(definition, QgsProcessingParameterEnum):
        try:
            return definition.options()[int(value)]
        except (TypeError, ValueError, IndexError):
            return str(value)
    if isinstance(value, bool):
        return tr("yes") if value else tr("no")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, QgsMapLayer):
        return value.source().split("|")[0]
    text = definition.valueAsPythonString(value, context)
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" else text


def open_raster(path: str) -> tuple[Any, str]:
    """The GDAL raster dataset at ``path`` and "", or None and GDAL's reason (with or without gdal.UseExceptions)."""
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    gdal.ErrorReset()
    try:
        ds = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_VERBOSE_ERROR)
        reason = "" if ds is not None else gdal.GetLastErrorMsg()
    except RuntimeError as exc:
        ds, reason = None, str(exc)
    finally:
        gdal.PopErrorHandler()
    if ds is not None and ds.RasterCount == 0:
        ds, reason = None, "it has no raster band"
    if ds is None:
        return None, reason.replace(f"`{path}' ", "").strip().rstrip(".") or "GDAL cannot open it"
    return ds, ""


def _destination_problem(
    path: str,
    what: str,
    definition: QgsProcessingParameterDefinition,
    inputs: list[tuple[str, str]],
    earlier: list[str],
) -> str | None:
    """What is wrong with one output path, or None."""
    name = os.path.basename(path)
    if isinstance(definition, QgsProcessingParameterFileDestination):
        extension = f".{definition.defaultFileExtension()}"
        if os.path.splitext(path)[1].lower() != extension:
            return tr("The {} '{}' must be a file name ending in {}.").format(what, name, extension)
    elif os.path.splitext(path)[1].lower() not in (".tif", ".tiff"):
        return tr(
            "The {} '{}' must be a GeoTIFF file name ending in .tif or .tiff: the algorithm writes GeoTIFF only "
            "(convert the result afterwards with Raster > Conversion > Translate)."
        ).format(what, name)
    for label, source in inputs:
        if same_file(path, source):
            return tr(
                "The {} '{}' is an input file ({}): choose another output file name (inputs are never overwritten)."
            ).format(what, path, label)
    if any(same_file(path, other) for other in earlier):
        return tr("The {} '{}' is also given for another output: choose a different file name for each.").format(
            what, path
        )
    if os.path.isdir(path):
        return tr("The {} '{}' is a folder: give a file name.").format(what, path)
    existing = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return tr("Cannot write the {} '{}': '{}' is a file, not a folder.").format(what, path, existing)
    try:  # a real write test: permissions alone say nothing when running as root
        handle, probe = tempfile.mkstemp(prefix=".mcpn-write-test-", dir=existing)
        os.close(handle)
        os.remove(probe)
    except OSError as exc:
        return tr("Cannot write the {} '{}': the folder '{}' is not writable ({}).").format(
            what, path, existing, exc.strerror
        )
    return None


def report_result(result: Any, feedback: QgsProcessingFeedback) -> None:
    """Push the engine result's device, tiles, chosen steps, time and notes to the Processing log."""
    feedback.pushInfo(tr("Device: {}; {} of {} tile(s) fitted.").format(result.device, result.fitted, result.tiles))
    if result.chosen_steps:
        steps = sorted(set(result.chosen_steps))
        feedback.pushInfo(
            tr("Chosen step(s): {}; the run took {:.1f} s.").format(", ".join(map(str, steps)), result.seconds)
        )
    for note in getattr(result, "notes", None) or []:
        feedback.pushInfo(str(note))
