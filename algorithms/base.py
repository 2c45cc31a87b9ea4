# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared parts of the MCPN Processing algorithms.

The engine (``core.pipeline.api``, which imports torch) is imported lazily, inside
``processAlgorithm``, so the provider loads even where torch is missing; the
algorithms then stop with installation instructions.
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any, Callable

from qgis.core import (
    QgsMapLayer,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QUrl
from qgis.PyQt.QtGui import QIcon

from ..core.config import ANCHORS, DEVICES, METHODS, PRECISIONS, Settings
from ..core.errors import Cancelled, MCPNError
from ..mcpn_plugin import dependencies
from .checks import ParameterChecks
from .messages import ProgressReporter, log_exception, report_result, tr
from .parameters import SharedParameters

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ICON_PATH = os.path.join(PLUGIN_DIR, "resources", "icon.svg")
README_PATH = os.path.join(PLUGIN_DIR, "README.md")
HELP_ANCHOR = "#using-the-algorithms"  # the README section the help buttons open


class MCPNAlgorithm(SharedParameters, ParameterChecks, QgsProcessingAlgorithm):
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

    # --- helpers used in processAlgorithm ----------------------------------------------------
    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        feedback = feedback or QgsProcessingFeedback()
        self.require_dependencies()
        result, outputs = self.compute(parameters, context, feedback)
        report_result(result, feedback)
        report = self.report_path(parameters, context)
        if report:
            outputs[self.REPORT] = self.write_report(report, parameters, context, result, feedback)
        return outputs

    def compute(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> tuple[Any, dict[str, Any]]:
        """Read the inputs, run the engine (:meth:`fit`): its result and the outputs written."""
        raise NotImplementedError

    def fit(
        self, engine: SimpleNamespace, function: Callable, feedback: QgsProcessingFeedback, settings: Settings,
        *inputs: Any, **options: Any,
    ) -> Any:  # fmt: skip
        """Log how the network is fitted and call the engine's ``function`` with the settings and the callbacks."""
        self.log_run(feedback, settings)
        callbacks = self.callbacks(engine, feedback)
        return self.run_engine(function, feedback, *inputs, settings, callbacks=callbacks, **options)

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
