"""The one configuration of a run: every choice, its default and its check, declared once.

The Processing algorithms and the Python API build one :class:`Settings`; it is
checked when made and passed whole down to the fit. Its choices are members of
the Enums of :mod:`core.choices` (given by member or by name).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from .choices import DegradationKind, Device, InputKind, MemoryFormat, Method, Precision, Scope, Start, Stopping
from .errors import InputError

TILE_OVERLAP = 32
MAX_TIME_LIMIT = 7 * 24 * 60  # minutes
MAX_SENSOR_BLUR = 2.0  # low-resolution pixels: wider, a pixel would see mostly its neighbours


# the settings that are a choice, and its kind (given as a member or its name; held as the member)
CHOICES = {
    "method": Method,
    "stopping": Stopping,
    "anchor": Start,
    "degradation": DegradationKind,
    "input_kind": InputKind,
    "precision": Precision,
    "memory_format": MemoryFormat,
    "device": Device,
    "scope": Scope,
}


@dataclass(frozen=True)
class Settings:
    """How to fit and how to run; every field has a sensible default and is checked when the object is made.

    Fit: ``method`` (MCPN variant or the Stacked baseline), ``stopping`` (which
    checked step is kept), ``anchor`` (``auto``: the network learns a correction
    of the best instant estimate; ``none``: it starts from noise, as in the
    paper), ``holdout`` (share of the known pixels hidden from the loss to score
    the steps for ``validated`` stopping), ``degradation`` (how a
    low-resolution input was made from the high-resolution image), ``sensor_blur`` (the input sensor's
    Gaussian point spread in its pixels; None: estimated from the data, :func:`core.sharpening.sensor_blur`).
    Run: ``device``, ``threads`` (the most CPU threads a fit uses), tiles
    (``tile_size``, ``tile_overlap``, ``batch_size`` tiles fitted together,
    ``scope``: one network per tile or one for the scene, ``refine_steps`` of a further fit of the scene
    network on each tile, kept where the tile's held-out pixels say so), ``scheduler`` (Dask),
    ``ensemble`` (fits per tile for the uncertainty layer), ``self_validation``
    and ``time_limit`` (minutes for the whole run: each tile's fit gets its share
    of the time left and stops there with its best step; a scene network's fit leaves the time its application to
    every tile takes; not on Dask).
    """

    method: Method = Method.STACKED  # anchored, as good as Direct and 4x cheaper per step (benchmarks/results/quality)
    stopping: Stopping = Stopping.VALIDATED
    steps: int = 4000
    learning_rate: float | None = None  # None: the method's default
    anchor: Start = Start.ESTIMATE
    holdout: float = 0.1
    degradation: DegradationKind = DegradationKind.AREA
    sensor_blur: float | None = None  # low-resolution pixels; None: estimated per run
    core_channels: int = 8
    up_kernel: int = 3  # the core network's up-sampling kernel (5 in the reference Stacked network)
    head_channels: int = 32  # width of Emergent's and Direct's domain and cycle heads (the paper's)
    input_kind: InputKind = InputKind.NOISE
    check_every: int = 50
    patience: int = 500
    precision: Precision = Precision.FP32
    memory_format: MemoryFormat = MemoryFormat.CHANNELS_LAST  # NHWC: faster convolutions on CPU (benchmarks/speed.py)
    output_average: float = 0.99  # decay of the moving average of the output kept (0: the last step's output)
    seed: int = 0
    target_weight: float = 1.0
    guide_weight: float = 1.0
    cycle_weight: float = 1.0
    record_every: int = 0  # keep the output every N steps (benchmarks)
    device: Device = Device.AUTO
    threads: int | None = None  # at most this many CPU threads per fit (None: torch's count, one per core, no cap)
    tile_size: int = 256
    scope: Scope = Scope.AUTO  # one network per tile or for the scene (AUTO: benchmarks/results/scene_scope)
    refine_steps: int = 0  # with one network for the scene: steps of a further fit on each tile alone (0: none)
    tile_overlap: int | None = None  # None: TILE_OVERLAP, at most a quarter of the tile
    batch_size: int | None = None  # None: 8 tiles on a CUDA GPU, 1 elsewhere
    scheduler: str | None = None
    ensemble: int = 1
    self_validation: bool = False
    time_limit: float = 0.0  # minutes for the whole run (reading and writing too); 0: none

    def __post_init__(self) -> None:
        for name, kind in CHOICES.items():
            object.__setattr__(self, name, kind.of(getattr(self, name)))
        for broken, message in self._problems():
            if broken:
                raise InputError(message)

    def _problems(self) -> list[tuple[bool, str]]:
        """Each check of the values, and what is said when it fails."""
        return [
            (self.steps < 1 or self.check_every < 1 or self.patience < 1,
             "steps, check_every and patience must be at least 1"),
            (self.learning_rate is not None and not self.learning_rate > 0, "the learning rate must be positive"),
            (self.sensor_blur is not None and not 0 <= self.sensor_blur <= MAX_SENSOR_BLUR,
             f"the sensor blur must be between 0 and {MAX_SENSOR_BLUR:g} low-resolution pixels (or None: estimated)"),
            (not 0 <= self.holdout < 0.5, "the held-out share of the known pixels must be at least 0 and below 0.5"),
            (not 0 <= self.output_average < 1, "the output-averaging decay must be at least 0 and below 1"),
            (self.core_channels < 1 or self.head_channels < 1,
             "the core signal and the domain heads need at least one channel"),
            # 7 and more: reflection padding wider than the deepest level
            (self.up_kernel not in (1, 3, 5), "the up-sampling kernel size must be 1, 3 or 5"),
            (self.tile_size < 16 or not 0 <= self.overlap < self.tile_size // 2,
             "the tile size must be at least 16 px and more than twice the tile overlap"),
            (self.batch_size is not None and self.batch_size < 1, "the batch size must be at least 1 tile"),
            (self.threads is not None and self.threads < 1,
             "the CPU thread count must be at least 1 (or None for one per core)"),
            (self.ensemble < 1, "the ensemble needs at least one member"),
            (self.refine_steps < 0, "the per-tile refinement needs 0 (none) or more steps"),
            (not 0 <= self.time_limit <= MAX_TIME_LIMIT,
             f"the time limit must be between 0 (none) and {MAX_TIME_LIMIT} minutes (a week)"),
        ]  # fmt: skip

    @classmethod
    def of(cls, **values: object) -> Settings:
        """Settings from keyword values, with a readable error for a name that is not a setting."""
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise InputError(f"unknown option(s): {', '.join(sorted(unknown))}")
        return cls(**values)  # type: ignore[arg-type]

    @property
    def lr(self) -> float:
        return self.learning_rate or self.method.learning_rate(self.anchor)

    @property
    def anchored(self) -> bool:
        """Whether the network learns a correction of an instant estimate (else it starts from noise)."""
        return self.anchor is Start.ESTIMATE

    def resolved(self, super_resolution: bool = False, tiles: int = 1) -> Settings:
        """The settings of one run of ``tiles`` tiles: the device chosen (:meth:`Device.resolve`, once per run), the
        batch size resolved (8 tiles on a CUDA GPU, 1 elsewhere) and the scope (:meth:`Scope.resolve`)."""
        device = self.device.resolve()
        batch_size = self.batch_size or (8 if device is Device.CUDA else 1)
        scope = self.scope.resolve(super_resolution, tiles)
        return replace(self, device=device, batch_size=batch_size, scope=scope)

    @property
    def overlap(self) -> int:
        """The tile overlap in pixels."""
        return min(TILE_OVERLAP, self.tile_size // 4) if self.tile_overlap is None else self.tile_overlap
