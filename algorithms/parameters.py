# SPDX-License-Identifier: GPL-2.0-or-later
"""Adding parameters with a tooltip each, and those both algorithms share (their names: MCPNAlgorithm's)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
)

from ..core.choices import TILE_FITS, Choice, Device, Method, Precision, Scope, Start, Stopping, labels
from ..core.config import MAX_TIME_LIMIT, Settings
from . import compat
from .messages import tr

DEFAULTS = Settings()


def add(
    alg: QgsProcessingAlgorithm, definition: QgsProcessingParameterDefinition, tooltip: str, advanced: bool = False
) -> None:
    """Add a parameter with its tooltip (``setHelp``), in the Advanced group when ``advanced``."""
    definition.setHelp(tooltip)
    if advanced:
        definition.setFlags(definition.flags() | compat.FLAG_ADVANCED)
    alg.addParameter(definition)


def add_choice(
    alg: QgsProcessingAlgorithm,
    name: str,
    label: str,
    members: list[Choice],
    default: Choice,
    tooltip: str,
    advanced: bool = False,
    optional: bool = False,
) -> None:
    """An enum parameter over ``members`` of an engine choice (in their order: qgis_process takes the numbers)."""
    options = [tr(option) for option in labels(members, alg.SUPER_RESOLUTION)]
    definition = QgsProcessingParameterEnum(
        name, label, options=options, defaultValue=members.index(default), optional=optional
    )
    add(alg, definition, tooltip, advanced)


def add_method(alg: QgsProcessingAlgorithm, tooltip: str) -> None:
    """METHOD: the MCPN variant, or the Stacked network."""
    add_choice(alg, alg.METHOD, tr("Method"), list(Method), DEFAULTS.method, tooltip)


def add_stopping(alg: QgsProcessingAlgorithm, tooltip: str) -> None:
    """STOPPING: the rules this algorithm offers (:meth:`Stopping.offered`, in their order)."""
    rules = Stopping.offered(alg.SUPER_RESOLUTION)
    add_choice(alg, alg.STOPPING, tr("Stopping"), rules, DEFAULTS.stopping, tooltip)


def add_run_parameters(alg: QgsProcessingAlgorithm) -> None:
    """STEPS, DEVICE, SEED and the advanced TIME_LIMIT / LEARNING_RATE / CORE_CHANNELS / ANCHOR / PRECISION /
    OUTPUT_AVERAGE."""
    add(
        alg,
        QgsProcessingParameterNumber(
            alg.STEPS,
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
    add_choice(
        alg,
        alg.DEVICE,
        tr("Compute device"),
        list(Device),
        DEFAULTS.device,
        tr(
            "Where the network is fitted. Auto uses the MCPN provider's default device (Settings > Options > "
            "Processing > Providers > MCPN), itself auto unless you change it: an NVIDIA GPU (CUDA) or an Apple GPU "
            "(MPS) when PyTorch sees one, else the CPU. CPU, CUDA or MPS here override that default. Choosing a GPU "
            "that is not there is an error. The same settings page sets the most CPU threads a fit uses."
        ),
    )
    add(
        alg,
        QgsProcessingParameterNumber(alg.SEED, tr("Random seed"), compat.NUMBER_INTEGER, defaultValue=0, minValue=0),
        tr("The same seed and inputs give the same result on the same device."),
    )
    add(  # optional: models saved before it existed run without a limit
        alg,
        QgsProcessingParameterNumber(
            alg.TIME_LIMIT,
            tr("Time limit in minutes (0: none)"),
            compat.NUMBER_DOUBLE,
            defaultValue=DEFAULTS.time_limit,
            optional=True,
            minValue=0.0,
            maxValue=MAX_TIME_LIMIT,
        ),
        tr(
            "The most the whole run may take, reading and writing included. Each tile's fit gets an equal share of "
            "the time left when it starts and stops there with its best step so far. One network for the scene "
            "gets the time left less what applying it to every tile takes (measured on one tile first); a tile "
            "reached behind time keeps its instant estimate. The log says how the time was spent. 0 takes the "
            "MCPN provider's default time limit (Settings > Options > Processing > Providers > MCPN), itself none "
            "unless you set one. Not applied on a Dask cluster."
        ),
        advanced=True,
    )
    learning_rate = QgsProcessingParameterNumber(
        alg.LEARNING_RATE,
        tr("Learning rate (0 uses the method's default)"),
        compat.NUMBER_DOUBLE,
        defaultValue=0.0,
        minValue=0.0,
    )
    learning_rate.setMetadata({"widget_wrapper": {"decimals": 6}})  # 0.002, not 0.00
    add(
        alg,
        learning_rate,
        tr("Step size of the Adam optimiser. Leave 0 unless you know why: each method has a tested default."),
        advanced=True,
    )
    add(
        alg,
        QgsProcessingParameterNumber(
            alg.CORE_CHANNELS,
            tr("Network width (core channels)"),
            compat.NUMBER_INTEGER,
            defaultValue=DEFAULTS.core_channels,
            minValue=1,
            maxValue=256,
        ),
        tr("Number of channels of the shared core network. Wider is slower and not necessarily better."),
        advanced=True,
    )
    add_choice(
        alg,  # optional: models saved before it existed run with the default
        alg.ANCHOR,
        tr("Start the network"),
        list(Start),
        DEFAULTS.anchor,
        tr(
            "From the best instant estimate: the network learns a correction of the better of guide regression "
            "and interpolation (judged on held-out clear pixels), so the result starts as good as them. "
            "From noise: the network alone, as in Czerkawski et al.'s MCPN. For the paper's set-up also set "
            "Output averaging to 0 and the paper's stopping rule (Fixed number of steps, 4000, for Stacked and "
            "Direct; Known-region RMSE for Emergent) and, for super-resolution, the Bilinear degradation and a "
            "sensor blur of 0. What "
            "still differs: one learning rate (0.008) for every method (the paper tuned one per method and does "
            "not print the values)."
        ),
        advanced=True,
        optional=True,
    )
    add_choice(
        alg,
        alg.PRECISION,
        tr("Arithmetic precision"),
        list(Precision),
        DEFAULTS.precision,
        tr(
            "FP32 works everywhere. bf16 can be faster on recent CPUs (AVX-512 BF16 or AMX) and GPUs, "
            "and slower on CPUs without these instructions."
        ),
        advanced=True,
    )
    add(
        alg,
        QgsProcessingParameterNumber(
            alg.OUTPUT_AVERAGE,
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


def add_advanced(alg: QgsProcessingAlgorithm, definition: QgsProcessingParameterDefinition, tooltip: str) -> None:
    add(alg, definition, tooltip, advanced=True)


def add_output(alg: QgsProcessingAlgorithm, tooltip: str) -> None:
    add(alg, QgsProcessingParameterRasterDestination(alg.OUTPUT, tr("Output raster")), tooltip)


def add_tiling_parameters(alg: QgsProcessingAlgorithm) -> None:
    """Advanced TILE_SIZE, SCOPE, REFINE_STEPS and DASK_SCHEDULER."""
    add(
        alg,
        QgsProcessingParameterNumber(
            alg.TILE_SIZE,
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
    add_choice(  # optional: models saved before it existed take the default
        alg,
        alg.SCOPE,
        tr("Networks for a raster of several tiles"),
        list(Scope),
        DEFAULTS.scope,
        tr(
            "One network per tile: each tile with clouds (each tile, for super-resolution) gets its own fit, as in "
            "Czerkawski et al.'s MCPN. One network for the scene: one fit on up to 8 tiles spread over the raster, "
            "then each tile takes the network's output its own held-out pixels choose (or its instant estimate): "
            "the fit is paid once, not per tile. auto (the default): one for the scene when filling clouds, where "
            "it was measured about as good and several times faster; one per tile when super-resolving, where it "
            "was measured better, up to {} tiles (beyond, fits one by one would take days on a whole "
            "Sentinel-2 tile)."
        ).format(TILE_FITS),
        advanced=True,
        optional=True,
    )
    add(  # optional: models saved before it existed run without a refinement
        alg,
        QgsProcessingParameterNumber(
            alg.REFINE_STEPS,
            tr("Per-tile refinement steps of the scene network (0: none)"),
            compat.NUMBER_INTEGER,
            defaultValue=DEFAULTS.refine_steps,
            optional=True,
            minValue=0,
            maxValue=100000,
        ),
        tr(
            "With one network for the scene, each tile can fit that network further on its own pixels for this "
            "many steps, starting from the weights the tile chose; the tile keeps the refined output only where "
            "its own held-out pixels say it is better. Costs about as many steps per tile as it asks for."
        ),
        advanced=True,
    )
    add(
        alg,
        QgsProcessingParameterString(
            alg.DASK_SCHEDULER,
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


def add_report_output(alg: QgsProcessingAlgorithm) -> None:
    add(
        alg,
        QgsProcessingParameterFileDestination(
            alg.REPORT, tr("Run report"), tr("HTML files (*.html)"), optional=True, createByDefault=False
        ),
        tr(
            "An HTML page with the parameters, device and time, convergence plots, previews and (when asked "
            "for) the self-validation scores. Needs the Python package matplotlib."
        ),
    )
