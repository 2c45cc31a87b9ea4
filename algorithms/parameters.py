# SPDX-License-Identifier: GPL-2.0-or-later
"""The parameters both algorithms share, with their labels and tooltips, read from the engine's choices."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from ..core.config import ANCHORS, DEVICES, METHODS, PRECISIONS, Settings
from . import compat
from .messages import tr

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


class SharedParameters:
    """Adds parameters with a tooltip each (a QgsProcessingAlgorithm mixin); the names are MCPNAlgorithm's."""

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

    def add_method(self, tooltip: str) -> None:
        """METHOD: the MCPN variant, or the Stacked network."""
        self.add_choice(self.METHOD, tr("Method"), METHOD_LABELS, METHODS, DEFAULTS.method, tooltip)

    def add_stopping(self, labels: dict[str, str], tooltip: str) -> None:
        """STOPPING: the rules this algorithm offers (its STOPPING_RULES, in their order)."""
        self.add_choice(self.STOPPING, tr("Stopping"), labels, self.STOPPING_RULES, DEFAULTS.stopping, tooltip)

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
