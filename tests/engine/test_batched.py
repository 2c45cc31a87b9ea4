"""Several samples fitted together in the one fitting loop, and its use by the tiled pipeline, on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mcpn.core.callbacks import Callbacks
from mcpn.core.config import Settings
from mcpn.core.model import device
from mcpn.core.model.degradation import Degradation
from mcpn.core.model.fitting import Problem, fit
from mcpn.core.model.stopping import StoppingRule
from mcpn.core.pipeline.inpainting import inpaint_raster
from mcpn.core.raster.masks import CloudMask

CPU = torch.device("cpu")


def problems(count: int, super_resolution: bool = False) -> list[Problem]:
    generator = torch.Generator().manual_seed(1)
    made = []
    for _ in range(count):
        target = torch.rand(1, 3, 40, 40, generator=generator)
        known = (torch.rand(1, 3, 40, 40, generator=generator) > 0.3).float()
        degradation = None
        if super_resolution:
            target, known = target[..., :20, :20], torch.ones(1, 3, 20, 20)
            degradation = Degradation("area", (40, 40), (20, 20))
        guides = [torch.rand(1, 2, 40, 40, generator=generator)]
        valid = [torch.ones(1, 2, 40, 40)]
        made.append(Problem(target * known, known, guides, valid, (40, 40), degradation=degradation))
    return made


@pytest.mark.parametrize("method", ["stacked", "emergent", "direct"])
@pytest.mark.parametrize("super_resolution", [False, True])
def test_a_batch_starts_exactly_like_fits_one_by_one(method, super_resolution):
    batch = problems(3, super_resolution)
    settings = Settings(method=method, steps=1)
    together = fit(batch, settings, CPU)
    alone = [fit([p], settings, CPU)[0] for p in batch]
    for a, b in zip(together, alone):
        assert a.output.shape == b.output.shape
        np.testing.assert_allclose(a.output, b.output, atol=1e-3)


def test_a_batch_fits_as_well_as_fits_one_by_one():
    """Later steps differ by floating-point order (batch norm over tiny maps amplifies it), not in quality."""
    batch = problems(2)
    settings = Settings(method="stacked", steps=40, check_every=20, stopping="fixed")
    together = fit(batch, settings, CPU)
    alone = [fit([p], settings, CPU)[0] for p in batch]
    for a, b in zip(together, alone):
        assert [p.step for p in a.trace] == [20, 40] and a.chosen_step == 40
        assert a.trace[-1].known_rmse < 1.2 * b.trace[-1].known_rmse


def test_samples_of_other_shapes_are_not_fitted_together():
    with pytest.raises(ValueError, match="same shapes"):
        fit([problems(1)[0], problems(1, super_resolution=True)[0]], Settings(steps=1), CPU)


def test_each_member_stops_on_its_own_patience():
    """A member whose rule says stop keeps its chosen step and records no more, as a fit alone would."""
    batch = problems(3)
    settings = Settings(
        method="stacked",
        steps=80,
        stopping="known_rmse",
        check_every=1,
        patience=3,
        output_average=0,
        learning_rate=0.1,
    )
    fits = fit(batch, settings, CPU)
    assert len({len(f.trace) for f in fits}) > 1  # the members stopped at different steps
    for fitted in fits:
        replay = StoppingRule("known_rmse", 3)
        stops = [not replay.update(p.step, p.known_rmse) and replay.should_stop(p.step) for p in fitted.trace]
        assert not any(stops[:-1]) and (stops[-1] or fitted.trace[-1].step == 80)
        assert fitted.chosen_step == replay.best_step


def test_the_pipeline_fits_tiles_in_batches_and_halves_them_when_the_gpu_is_full(
    tmp_path, monkeypatch, rasters, scene, fast
):
    s = scene(size=64)
    cloud = rasters.block(64, 10, 54, 10, 54)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", cloud)
    poisoned = rasters.poisoned(s["target"], tmp_path / "poisoned.tif", cloud)
    sizes = []

    def fit_with_little_memory(batch, *args, **kwargs):
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return fit(batch, *args, **kwargs)

    monkeypatch.setattr(device, "fit", fit_with_little_memory)
    logs: list[str] = []
    result = inpaint_raster(
        str(poisoned), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"),
        fast(tile_size=40, tile_overlap=8, batch_size=4, scope="tile"), callbacks=Callbacks(log=logs.append),
    )  # fmt: skip
    assert result.fitted == 4 and sizes == [4, 2, 2]
    assert any("ran out of memory fitting 4 tiles together" in line for line in logs)
    data = [rasters.info(p)["data"] for p in (tmp_path / "o.tif", poisoned, s["target"], s["guide"])]
    rasters.assert_filled(*data[:3], cloud, data[3:])


def test_a_tile_that_runs_out_of_gpu_memory_is_fitted_again_on_the_cpu(monkeypatch):
    """The last fall-back when the GPU is full (simulated here: no GPU on the test machines): one tile, on the CPU,
    with a warning in the log."""
    devices = []

    def fit_without_gpu_memory(batch, settings, on, callbacks=None):
        devices.append(on.type)
        if on.type != "cpu":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return fit(batch, settings, on, callbacks)

    monkeypatch.setattr(device, "fit", fit_without_gpu_memory)
    logs: list[str] = []
    settings = Settings(method="stacked", steps=2)
    (fitted,), used = device.fit_on_device(problems(1), settings, Callbacks(log=logs.append), torch.device("cuda"))
    assert devices == ["cuda", "cpu"] and used.type == "cpu"
    assert logs[0] == "warning: the GPU ran out of memory; fitting again on the CPU (slower)"
    assert len(logs) == 2 and logs[1].startswith("fit on cpu: ")  # then what a step cost there
    np.testing.assert_array_equal(fitted.output, fit(problems(1), settings, torch.device("cpu"))[0].output)


def test_a_batch_keeps_each_members_moving_average():
    batch = problems(2)
    # Up to step 10 the average is the output; step 11 weighs the average by 1 - 10 / 11 and its output by 10 / 11.
    plain = Settings(method="stacked", stopping="fixed", output_average=0)
    first, second = (fit(batch, Settings(**{**plain.__dict__, "steps": n}), CPU) for n in (10, 11))
    averaged = fit(batch, Settings(method="stacked", stopping="fixed", steps=11, output_average=0.5), CPU)
    for a, one, two, problem in zip(averaged, first, second, batch):
        np.testing.assert_allclose(a.output, one.output / 11 + two.output * 10 / 11, atol=1e-5)
        known, target = problem.target_known[0].numpy(), problem.target[0].numpy()
        rmse = np.sqrt((((a.output - target) * known) ** 2).sum() / known.sum())
        assert a.trace[-1].known_rmse == pytest.approx(rmse, rel=1e-4)  # the rule scores the average


def test_patch_consistency_tiles_are_fitted_in_one_batch_each_with_its_own_choice(
    tmp_path, monkeypatch, rasters, scene, fast
):
    """README: patch-consistency stopping batches tiles as the other rules do; each tile keeps the step its own
    patch-consistency scores choose."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("MCPN_OFFLINE", "1")  # the fixed filter bank stands in for Inception
    s = scene(size=64)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", rasters.block(64, 10, 54, 10, 54))
    sizes, fits = [], []

    def spy(batch, *args, **kwargs):
        sizes.append(len(batch))
        fits.extend(fit(batch, *args, **kwargs))
        return fits[-len(batch) :]

    monkeypatch.setattr(device, "fit", spy)
    settings = fast(
        tile_size=40, tile_overlap=8, batch_size=4, stopping="patch_consistency", steps=6, check_every=2, scope="tile"
    )
    result = inpaint_raster(
        str(s["target"]), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"), settings
    )
    assert result.fitted == 4 and sizes == [4]
    for tile in fits:
        scores = [p.patch_consistency for p in tile.trace]
        assert all(score is not None for score in scores)
        assert tile.chosen_step == tile.trace[int(np.argmin(scores))].step
