"""Shared parts of the MCPN Processing algorithms.

The engine (``core.api``, which imports torch) is imported lazily, inside
``processAlgorithm``, so the provider loads even where torch is missing; the
algorithms then stop with installation instructions.
"""

from __future__ import annotations

import os
import traceback
from typing import Any, Callable

from qgis.core import (
    Qgis,
    QgsMessageLog,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication, QUrl
from qgis.PyQt.QtGui import QIcon

from ..core import rasters
from ..core.errors import Cancelled, MCPNError
from ..core.masks import MaskError
from ..mcpn_plugin import dependencies

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ICON_PATH = os.path.join(PLUGIN_DIR, "resources", "icon.svg")
README_PATH = os.path.join(PLUGIN_DIR, "README.md")
LOG_TAG = "MCPN"

DEVICES = ["auto", "cpu", "cuda"]
DEVICE_LABELS = ["auto", "cpu", "cuda"]

# Read/prepare inputs: 0-5 %, fitting: 5-95 %, writing: 95-100 %.
_FIT_START, _FIT_END = 5.0, 95.0


def tr(text: str) -> str:
    return QCoreApplication.translate("MCPN", text)


def log_exception(message: str) -> None:
    """Put the current traceback in the QGIS message log (tab "MCPN") for developers."""
    QgsMessageLog.logMessage(f"{message}\n{traceback.format_exc()}", LOG_TAG, Qgis.Critical)


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

    METHODS = ["emergent", "direct", "stacked"]
    METHOD_LABELS = ["Emergent", "Direct", "Stacked"]

    # --- identity --------------------------------------------------------------------------
    def createInstance(self) -> MCPNAlgorithm:
        return type(self)()

    def group(self) -> str:
        return tr("Raster restoration")

    def groupId(self) -> str:
        return "rasterrestoration"

    def icon(self) -> QIcon:
        return QIcon(ICON_PATH)

    def svgIconPath(self) -> str:
        return ICON_PATH

    def helpUrl(self) -> str:
        return QUrl.fromLocalFile(README_PATH).toString()

    # --- parameters ------------------------------------------------------------------------
    def add_run_parameters(self) -> None:
        """STEPS, DEVICE, SEED and the advanced LEARNING_RATE / CORE_CHANNELS."""
        self.addParameter(
            QgsProcessingParameterNumber(
                self.STEPS,
                tr("Number of optimisation steps (maximum when stopping early)"),
                QgsProcessingParameterNumber.Integer,
                defaultValue=4000,
                minValue=1,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.DEVICE, tr("Compute device"), options=DEVICE_LABELS, defaultValue=0)
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.SEED, tr("Random seed"), QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0
            )
        )
        self.add_advanced(
            QgsProcessingParameterNumber(
                self.LEARNING_RATE,
                tr("Learning rate (0 = default of the method)"),
                QgsProcessingParameterNumber.Double,
                defaultValue=0.0,
                minValue=0.0,
            )
        )
        self.add_advanced(
            QgsProcessingParameterNumber(
                self.CORE_CHANNELS,
                tr("Core channels (network width of the shared core)"),
                QgsProcessingParameterNumber.Integer,
                defaultValue=8,
                minValue=1,
                maxValue=256,
            )
        )

    def add_advanced(self, param: QgsProcessingParameterDefinition) -> None:
        param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(param)

    def add_output(self) -> None:
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, tr("Output raster")))

    # --- helpers used in processAlgorithm ----------------------------------------------------
    @staticmethod
    def require_dependencies() -> None:
        missing = dependencies.missing_packages()
        if missing:
            raise QgsProcessingException(dependencies.install_message(missing))

    @staticmethod
    def load_engine() -> Any:
        """Import the engine (and torch) now; a broken installation becomes a readable error."""
        try:
            from ..core import api
        except (ImportError, OSError) as exc:
            log_exception("MCPN: cannot import the engine")
            raise QgsProcessingException(
                tr(f"The MCPN engine cannot be loaded ({type(exc).__name__}: {exc}).\n\n")
                + dependencies.install_message(dependencies.missing_packages() or ["torch"])
            ) from None
        return api

    def raster_path(self, layer: QgsRasterLayer | None, what: str) -> str:
        """The file a raster layer reads (GDAL provider only)."""
        if layer is None or not layer.isValid():
            raise QgsProcessingException(tr(f"The {what} is not a valid raster layer."))
        if layer.providerType() != "gdal":
            raise QgsProcessingException(
                tr(f"The {what} '{layer.name()}' is not a file-based raster (provider {layer.providerType()});")
                + tr(" save it as a GeoTIFF first.")
            )
        source = layer.source()
        return source.split("|")[0]

    def engine_options(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        lr = self.parameterAsDouble(parameters, self.LEARNING_RATE, context)
        return {
            "steps": self.parameterAsInt(parameters, self.STEPS, context),
            "learning_rate": lr if lr > 0 else None,
            "core_channels": self.parameterAsInt(parameters, self.CORE_CHANNELS, context),
            "device": DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            "seed": self.parameterAsInt(parameters, self.SEED, context),
        }

    @staticmethod
    def callbacks(feedback: QgsProcessingFeedback) -> dict[str, Callable]:
        def progress(step: int, total: int) -> None:
            if total > 0:
                feedback.setProgress(_FIT_START + (_FIT_END - _FIT_START) * min(step, total) / total)

        def log(message: str) -> None:
            feedback.pushInfo(str(message))

        return {"progress": progress, "cancel": feedback.isCanceled, "log": log}

    def run_engine(self, function: Callable, feedback: QgsProcessingFeedback, *args: Any, **kwargs: Any) -> Any:
        """Call an engine function, turning every failure into a readable QgsProcessingException."""
        try:
            return function(*args, **kwargs)
        except Cancelled:
            raise QgsProcessingException(tr("The run was cancelled; no output was written.")) from None
        except MCPNError as exc:
            log_exception(f"{self.displayName()}: engine error")
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
                tr(f"The computation failed: {type(exc).__name__}: {exc}")
                + tr(" (details in the 'MCPN' tab of the Log Messages panel)")
            ) from None

    @staticmethod
    def guarded(what: str, function: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run a raster/mask helper, turning its user-facing errors into QgsProcessingException."""
        try:
            return function(*args, **kwargs)
        except (rasters.RasterError, MaskError) as exc:
            raise QgsProcessingException(str(exc)) from None
        except RuntimeError as exc:  # GDAL
            log_exception(f"{what}: GDAL error")
            raise QgsProcessingException(tr(f"{what}: {exc}")) from None

    def write_output(
        self,
        path: str,
        data: Any,
        grid: rasters.Grid,
        template: rasters.Raster,
        feedback: QgsProcessingFeedback,
    ) -> str:
        feedback.setProgress(_FIT_END)
        try:
            rasters.write_raster(
                path,
                data,
                grid,
                template.gdal_type,
                template.nodata,
                template.descriptions,
                cancel=feedback.isCanceled,
            )
        except rasters.WriteCancelled:
            raise QgsProcessingException(tr("The run was cancelled; no output was written.")) from None
        except (rasters.RasterError, RuntimeError, OSError) as exc:
            log_exception(f"{self.displayName()}: cannot write the output")
            raise QgsProcessingException(tr(f"Cannot write the output raster '{path}': {exc}")) from None
        feedback.setProgress(100)
        return path

    @staticmethod
    def name_output_layer(context: QgsProcessingContext, path: str, name: str) -> None:
        """Give the output layer a meaningful name when QGIS loads it on completion."""
        if context.willLoadLayerOnCompletion(path):
            details = context.layerToLoadOnCompletionDetails(path)
            details.name = name


def report_result(result: Any, feedback: QgsProcessingFeedback) -> None:
    """Push the engine result's device, chosen step, time and notes to the Processing log."""
    feedback.pushInfo(tr(f"Device: {result.device}."))
    feedback.pushInfo(tr(f"Chosen step: {result.chosen_step}; fitting took {result.seconds:.1f} s."))
    for note in getattr(result, "notes", None) or []:
        feedback.pushInfo(str(note))
