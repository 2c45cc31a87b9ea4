# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared parts of the MCPN Processing algorithms.

The engine (``core.pipeline.api``, which imports torch) is imported lazily, inside
``processAlgorithm``, so the provider loads even where torch is missing; the
algorithms then stop with installation instructions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Callable

from qgis.core import (
    QgsMapLayer,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QUrl
from qgis.PyQt.QtGui import QIcon

from ..core.callbacks import Callbacks
from ..core.choices import Choice, Device, Method, Precision, Scope, Start, Stopping
from ..core.config import Settings
from ..core.errors import Cancelled, MCPNError
from . import checks, dependencies, network, provider_settings
from .messages import ProgressReporter, log_exception, report_result, tr

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ICON_PATH = os.path.join(PLUGIN_DIR, "resources", "icon.svg")
README_PATH = os.path.join(PLUGIN_DIR, "README.md")
HELP_ANCHOR = "#using-the-algorithms"  # the README section the help buttons open


class MCPNAlgorithm(QgsProcessingAlgorithm):
    """Base class: group, icon, help, the checks before a run and the run itself."""

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
    TIME_LIMIT = "TIME_LIMIT"
    SCOPE = "SCOPE"
    REFINE_STEPS = "REFINE_STEPS"

    NAME = DISPLAY_NAME = SHORT_DESCRIPTION = HELP = ""  # each algorithm's identity and help (translated here)
    SUPER_RESOLUTION = False  # which stopping rules it offers (core.choices.Stopping.offered)
    OUTPUTS = {OUTPUT: "output"}  # output parameter -> the engine input that names its file

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
        return path

    # --- the checks before a run ---------------------------------------------------------------
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
        problem = checks.output_problem(self, parameters, context)
        return (False, problem) if problem else (True, "")

    def prepareAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> bool:
        problem = self.input_problem(parameters, context) or checks.output_problem(self, parameters, context)
        if problem:
            raise QgsProcessingException(problem)
        return True

    def input_problem(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        """What is wrong with the inputs (:func:`algorithms.checks.input_problem`), or None."""
        return checks.input_problem(self, parameters, context)

    # --- the run ---------------------------------------------------------------------------
    def processAlgorithm(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        feedback = feedback or QgsProcessingFeedback()
        self.require_dependencies()
        settings, inputs = self.settings(parameters, context, feedback)
        run = self.load_engine()
        self.log_run(feedback, settings)
        callbacks = Callbacks(ProgressReporter(feedback), feedback.isCanceled, feedback.pushInfo)
        with self.engine_errors(feedback):
            result = run(settings=settings, callbacks=callbacks, **inputs)
        feedback.setProgress(100)
        report_result(result, feedback)
        outputs = {name: inputs[key] for name, key in self.OUTPUTS.items() if inputs.get(key)}
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        if report:
            outputs[self.REPORT] = self.write_report(report, parameters, context, result, feedback)
        return outputs

    def settings(
        self, parameters: dict[str, Any], context: QgsProcessingContext, feedback: QgsProcessingFeedback | None = None
    ) -> tuple[Settings, dict[str, Any]]:
        """The engine's settings and its other inputs (files, mask, outputs), from the parameter values and the
        provider's settings (:mod:`algorithms.provider_settings`) alone.

        Nothing is fitted or written: this is the whole mapping from the dialog to the engine call (``feedback``
        reports the conversion of a polygon layer QGIS must save as a file first).
        """
        raise NotImplementedError

    @staticmethod
    def engine() -> Callable[..., Any]:
        """The engine's raster pipeline this algorithm runs (imported here: it imports torch)."""
        raise NotImplementedError

    @staticmethod
    def require_dependencies() -> None:
        missing = dependencies.missing_packages()
        if missing:
            raise QgsProcessingException(dependencies.install_message(missing))

    def load_engine(self) -> Callable[..., Any]:
        """Import the engine (and torch) now; a broken installation becomes a readable error."""
        try:
            run = self.engine()
        except (ImportError, OSError) as exc:
            log_exception("MCPN: cannot import the engine")
            raise QgsProcessingException(
                tr("The MCPN engine cannot be loaded ({}: {}).\n\n").format(type(exc).__name__, exc)
                + dependencies.install_message(dependencies.missing_packages() or ["torch"])
            ) from None
        from ..core.model import patch_consistency

        patch_consistency.set_downloader(network.download)  # weights through QGIS's network settings
        return run

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

    def raster_paths(
        self, parameters: dict[str, Any], name: str, context: QgsProcessingContext, what: str
    ) -> list[str]:
        """The files of a multiple-raster parameter (see :meth:`raster_path`)."""
        return [self.raster_path(layer, what) for layer in self.parameterAsLayerList(parameters, name, context)]

    def common_settings(self, parameters: dict[str, Any], context: QgsProcessingContext, **own: Any) -> Settings:
        """The :class:`Settings` from the parameters both algorithms share, and the algorithm's ``own`` values."""
        learning_rate = self.parameterAsDouble(parameters, self.LEARNING_RATE, context)
        scheduler = self.parameterAsString(parameters, self.DASK_SCHEDULER, context).strip()
        try:
            return Settings(
                method=self.choice(parameters, self.METHOD, list(Method), context),
                stopping=self.choice(parameters, self.STOPPING, Stopping.offered(self.SUPER_RESOLUTION), context),
                anchor=self.choice(parameters, self.ANCHOR, list(Start), context),
                steps=self.parameterAsInt(parameters, self.STEPS, context),
                learning_rate=learning_rate if learning_rate > 0 else None,
                core_channels=self.parameterAsInt(parameters, self.CORE_CHANNELS, context),
                device=self.device(parameters, context),
                threads=provider_settings.cpu_threads(),
                seed=self.parameterAsInt(parameters, self.SEED, context),
                precision=self.choice(parameters, self.PRECISION, list(Precision), context),
                output_average=self.parameterAsDouble(parameters, self.OUTPUT_AVERAGE, context),
                tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
                scope=self.choice(parameters, self.SCOPE, list(Scope), context),
                refine_steps=self.parameterAsInt(parameters, self.REFINE_STEPS, context),
                scheduler=scheduler or None,
                time_limit=self.parameterAsDouble(parameters, self.TIME_LIMIT, context)
                or provider_settings.time_limit(),
                **own,
            )
        except MCPNError as exc:
            raise QgsProcessingException(str(exc)) from None

    def device(self, parameters: dict[str, Any], context: QgsProcessingContext) -> Device:
        """The DEVICE parameter's device; its auto stands for the provider's default device (auto unless the user
        chose another in Processing's options)."""
        device = self.choice(parameters, self.DEVICE, list(Device), context)
        return provider_settings.default_device() if device is Device.AUTO else device

    def choice(
        self, parameters: dict[str, Any], name: str, members: Sequence[Choice], context: QgsProcessingContext
    ) -> Choice:
        """The member an enum parameter's number selects (its options are ``members``, in their order)."""
        return members[self.parameterAsEnum(parameters, name, context)]

    @staticmethod
    def log_run(feedback: QgsProcessingFeedback, settings: Settings) -> None:
        """Say in the log how the network is fitted."""
        feedback.pushInfo(
            tr("Method: {}, stopping: {}, start: {}, steps: {}, ").format(
                settings.method, settings.stopping, settings.anchor, settings.steps
            )
            + tr("precision: {}, output averaging: {:g}").format(settings.precision, settings.output_average)
            + (tr(", time limit: {:g} min.").format(settings.time_limit) if settings.time_limit else ".")
        )

    @contextmanager
    def engine_errors(self, feedback: QgsProcessingFeedback) -> Iterator[None]:
        """Every failure of the engine as a readable QgsProcessingException (a traceback only in the MCPN log)."""
        try:
            yield
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
    def name_output_layer(
        context: QgsProcessingContext,
        path: str,
        name: str,
        style: QgsProcessingLayerPostProcessorInterface | None = None,
    ) -> None:
        """Give the output layer a meaningful name, and a ``style`` (a post-processor of :mod:`algorithms.styles`,
        which the context deletes with itself), when QGIS loads it on completion."""
        if context.willLoadLayerOnCompletion(path):
            details = context.layerToLoadOnCompletionDetails(path)
            details.name = name
            if style is not None:
                details.setPostProcessor(style)


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
