"""The MCPN engine (core/) on its own: no QGIS, tiny crops of the real rasters, few steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mcpn.core.callbacks import Callbacks
from mcpn.core.choices import Device
from mcpn.core.config import Settings
from mcpn.core.errors import Cancelled, DeviceError, InputError
from mcpn.core.model.degradation import Degradation
from mcpn.core.model.networks import MCPN
from mcpn.core.model.patch_consistency import (
    InceptionFeatures,
    PatchConsistency,
    feature_mask,
    frechet_distance,
    load_feature_extractor,
)
from mcpn.core.model.stopping import StoppingRule
from mcpn.core.pipeline.api import inpaint, super_resolve
from mcpn.core.pipeline.normalisation import BandScaling, to_decibels
from mcpn.core.pipeline.sample import Sample
from mcpn.core.raster.tiling import Window, feather, tile_windows
from osgeo import gdal

BANDS = ("B04", "B03", "B02", "B08")


@pytest.fixture
def crop(s2):
    """``crop(date, size, offset, bands)``: a square crop of the Sentinel-2 bands of one date, float64."""

    def read(date: str, size: int = 32, offset: int = 400, bands=BANDS) -> np.ndarray:
        return np.stack(
            [gdal.Open(str(s2 / date / f"{b}.tif")).ReadAsArray(offset, offset, size, size) for b in bands]
        ).astype(np.float64)

    return read


@pytest.fixture
def sample(crop):
    """A 32 px target, a 3-band guide and a square cloud in the middle."""
    target, guide = crop("2018-08-05"), crop("2018-07-21", bands=BANDS[:3])
    mask = np.zeros(target.shape[1:], bool)
    mask[10:20, 8:22] = True
    return target, mask, guide


@pytest.mark.parametrize("method", ["emergent", "direct", "stacked"])
@pytest.mark.parametrize("guide_count", [1, 2, 3])
def test_every_variant_keeps_shapes_and_known_pixels(sample, method, guide_count):
    target, mask, guide = sample
    guides = [guide, guide[:1] * 2.0, guide[1:]][:guide_count]
    result = inpaint(target, mask, guides, method=method, steps=2)
    assert result.image.shape == result.raw.shape == target.shape
    assert np.array_equal(result.image[:, ~mask], target[:, ~mask])
    assert np.array_equal(result.filled, mask)
    assert np.isfinite(result.image).all()
    assert not np.array_equal(result.image[:, mask], target[:, mask])


@pytest.mark.parametrize("method", ["emergent", "direct", "stacked"])
def test_network_output_channels(method):
    model = MCPN(32, 4, [3, 2, 1], method, core_channels=5)
    out = model(torch.rand(1, 32, 66, 70))
    assert out.target.shape == (1, 4, 66, 70)
    assert [g.shape[1] for g in out.guides] == [3, 2, 1]
    if method == "stacked":
        assert out.cycles is None
    else:
        assert all(c.shape == out.core.shape for c in out.cycles)
        assert out.core.shape[1] == (5 if method == "emergent" else 4)


def test_nan_target_pixels_are_filled_and_nan_guide_pixels_ignored(sample):
    target, mask, guide = sample
    target = target.copy()
    target[2, 0, 0] = np.nan
    guide = guide.copy()
    guide[:, :5, :5] = np.nan
    result = inpaint(target, mask, [guide], method="stacked", steps=2)
    assert result.filled[0, 0] and np.isfinite(result.image).all()
    assert result.image[0, 0, 0] == target[0, 0, 0]  # the other bands of that pixel are kept


@pytest.mark.parametrize("low_size", [8, 13])  # x4 and a non-integer factor (32 / 13)
def test_super_resolution_reproduces_the_low_resolution_input(crop, low_size):
    truth = crop("2018-08-05", bands=("B08",))
    guide = crop("2018-08-05", bands=BANDS[:3])
    bilinear = Degradation("bilinear", truth.shape[1:], (low_size, low_size))
    low = bilinear.numpy(truth)
    settings = dict(method="stacked", steps=300, learning_rate=1e-2, anchor="none", degradation="bilinear")
    result = super_resolve(low, [guide], stopping="fixed", **settings)  # the paper's set-up: learnt, not projected
    assert result.image.shape == truth.shape and result.filled.all()
    back = bilinear.numpy(result.image)
    spread = np.percentile(low, 99) - np.percentile(low, 1)
    assert np.sqrt(np.mean((back - low) ** 2)) < 0.05 * spread


def test_same_seed_same_result_and_other_seed_differs(sample):
    target, mask, guide = sample
    first, second, other = (inpaint(target, mask, [guide], steps=3, seed=s).image for s in (7, 7, 8))
    assert np.array_equal(first, second)
    assert not np.array_equal(first, other)


def test_cancel_stops_within_one_step(sample):
    target, mask, guide = sample
    done = []
    with pytest.raises(Cancelled):
        callbacks = Callbacks(progress=lambda s, n: done.append(s), cancel=lambda: len(done) >= 3)
        inpaint(target, mask, [guide], steps=50, callbacks=callbacks)
    assert done == [1, 2, 3]


def test_progress_reaches_the_total(sample):
    target, mask, guide = sample
    seen = []
    inpaint(target, mask, [guide], method="stacked", steps=4, callbacks=Callbacks(lambda s, n: seen.append((s, n))))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4), (4, 4)]


def test_known_rmse_rule_keeps_the_best_checked_step(sample):
    target, mask, guide = sample
    result = inpaint(target, mask, [guide], method="stacked", stopping="known_rmse", steps=12, check_every=3)
    assert [p.step for p in result.trace] == [0, 3, 6, 9, 12]  # step 0: the anchor
    best = min(result.trace, key=lambda p: p.known_rmse)
    assert result.chosen_step == best.step


def test_patch_consistency_rule_uses_the_offline_fallback(sample, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("MCPN_OFFLINE", "1")
    target, mask, guide = sample
    result = inpaint(target, mask, [guide], method="stacked", stopping="patch_consistency", steps=6, check_every=2)
    assert any("fixed filter bank" in note for note in result.notes)
    scores = [p.patch_consistency for p in result.trace]
    assert all(s is not None and s >= -1e-9 for s in scores)
    assert result.chosen_step == result.trace[int(np.argmin(scores))].step


@pytest.mark.parametrize(
    ("rule", "scores", "chosen", "stopped_at"),
    [
        ("fixed", [5, 1, 3, 4, 6], 50, None),
        ("known_rmse", [5, 1, 3, 4, 6], 20, 50),
        ("known_rmse", [5, 4, 3, 2, 1], 50, None),
        ("patch_consistency", [3, None, 2, 7, 8], 30, None),
    ],
)
def test_stopping_rules_on_traces_with_a_known_minimum(rule, scores, chosen, stopped_at):
    stopping = StoppingRule(rule, patience=30)
    stopped = None
    for step, score in zip(range(10, 60, 10), scores):
        if not stopping.update(step, score) and stopping.should_stop(step):
            stopped = step
            break
    assert stopping.best_step == chosen and stopped == stopped_at


def test_normalisation_round_trips():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 10000, (3, 20, 20))
    image[1] = 42.0  # constant band
    valid = rng.random((20, 20)) > 0.3
    scaling = BandScaling.fit(image, valid)
    assert np.allclose(scaling.invert(scaling.apply(image)), image, rtol=1e-6, atol=1e-6)
    scaled = scaling.apply(image)
    assert np.isclose(np.percentile(scaled[0][valid], 1), 0, atol=1e-6)
    assert np.isclose(np.percentile(scaled[0][valid], 99), 1, atol=1e-6)
    assert np.all(scaled[1] == 0)


def test_decibels_mark_non_positive_backscatter_invalid():
    db = to_decibels(np.array([[1.0, 0.1, 0.0, -1.0]]))
    assert np.allclose(db[0, :2], [0, -10]) and np.isnan(db[0, 2:]).all()


def test_only_the_radar_guides_are_converted_to_decibels():
    target, known = np.ones((1, 4, 4)), np.ones((1, 4, 4), bool)
    guide = np.linspace(-1, 2, 16).reshape(1, 4, 4)  # the first five values are not positive
    sample = Sample.prepare(target, known, [guide, guide], (4, 4), Settings(anchor="none"), radar=(1,))
    assert sample.guide_valid[0].all()  # used as it is
    np.testing.assert_array_equal(sample.guide_valid[1], guide > 0)  # dB: non-positive backscatter is invalid


def test_frechet_distance_and_feature_mask():
    rng = torch.Generator().manual_seed(0)
    a, b = torch.randn(4000, 3, generator=rng), torch.randn(4000, 3, generator=rng)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    assert frechet_distance(a, b) < 0.05
    assert frechet_distance(a, b + 2) == pytest.approx(12, rel=0.05)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 16, 16] = 1
    reduced = feature_mask(mask)
    # pixel 16 -> layer 1 outputs 7..8 -> layer 2 outputs 5..8 -> layer 3 outputs 4..9
    assert reduced.shape == (1, 1, 13, 13) and int(reduced.sum()) == 36 and reduced[..., 4:10, 4:10].all()


def test_patch_consistency_prefers_the_same_texture_over_a_flat_fill(monkeypatch):
    monkeypatch.setenv("MCPN_OFFLINE", "1")
    generator = torch.Generator().manual_seed(0)
    texture = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 100, 100, generator=generator), 3, 1, 1)
    mask = torch.zeros(1, 1, 100, 100)
    mask[..., 30:70, 30:70] = 1
    scorer = PatchConsistency(texture * (1 - mask), mask)
    flat = torch.where(mask.bool(), texture.mean(), texture)
    assert scorer(texture) < scorer(flat) / 4


def test_inception_weights_load_from_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = InceptionFeatures()
    state = {}
    for name, conv, norm in zip(("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"), reference.convs, reference.norms):
        state[f"{name}.conv.weight"] = torch.randn_like(conv.weight)
        for key in ("weight", "bias", "running_mean"):
            state[f"{name}.bn.{key}"] = torch.randn_like(getattr(norm, key))
        state[f"{name}.bn.running_var"] = torch.rand_like(norm.running_var) + 0.5
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(state, checkpoints / "inception_v3_google-0cc3c7bd.pth")
    model, description = load_feature_extractor()
    assert "Inception" in description
    assert torch.equal(model.convs[2].weight, state["Conv2d_2b_3x3.conv.weight"])
    assert model(torch.rand(1, 3, 40, 40)).shape == (1, 64, 17, 17)


def test_mask_without_cloud_returns_a_copy(sample):
    target, mask, guide = sample
    result = inpaint(target, np.zeros_like(mask), [guide])
    assert np.array_equal(result.image, target) and result.chosen_step == 0 and not result.filled.any()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t, m, g: inpaint(t, np.ones_like(m), [g]), "no pixel of the target is known"),
        (lambda t, m, g: inpaint(t, m[:-1], [g]), "the mask is"),
        (lambda t, m, g: inpaint(t, m, [g[:, :-1]]), "guide 1 is"),
        (lambda t, m, g: inpaint(t.astype(complex), m, [g]), "real numbers"),
        (lambda t, m, g: inpaint(t, m, [g], method="magic"), "unknown method"),
        (lambda t, m, g: inpaint(t, m, [g], stopping="never"), "unknown stopping rule"),
        (lambda t, m, g: inpaint(t, m, [g], steps=0), "at least 1"),
        (lambda t, m, g: inpaint(t, m, [g], colour="red"), "unknown option"),
        (lambda t, m, g: inpaint(t, m, [np.full_like(g, np.nan)]), "has no valid pixel"),
        (lambda t, m, g: super_resolve(t, [g[:, ::2, ::2]]), "must be coarser"),
        (lambda t, m, g: super_resolve(t, [g]), "must be coarser"),
        (lambda t, m, g: super_resolve(t[:, ::4, ::4], [g], stopping="patch_consistency"), "patch consistency"),
    ],
)
def test_bad_input_raises_a_clear_error(sample, call, message):
    target, mask, guide = sample
    with pytest.raises(InputError, match=message):
        call(target, mask, guide)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_an_error_not_a_silent_cpu_run(sample):
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        Device.CUDA.resolve()
    assert Device.AUTO.resolve() in (Device.CPU, Device.MPS)


def test_tile_windows_cover_the_raster_with_the_overlap():
    windows = tile_windows(100, 70, 48, 8)
    covered = np.zeros((100, 70), int)
    for w in windows:
        assert w.height <= 48 and w.width <= 48
        covered[w.row : w.row + w.height, w.col : w.col + w.width] += 1
    assert covered.min() >= 1
    rows = sorted({w.row for w in windows})
    assert all(b - a <= 40 for a, b in zip(rows, rows[1:]))
    assert tile_windows(30, 20, 48, 8) == [Window(0, 0, 30, 20)]


def test_feather_is_one_inside_and_positive_at_the_edges():
    weights = feather(Window(0, 0, 40, 30), 8)
    assert weights[8:-8, 8:-8].min() == 1 and weights.min() > 0
    assert weights[0, 15] < weights[4, 15] < weights[8, 15]


def test_the_time_limit_stops_a_fit_within_one_check_interval_with_its_best_step(sample):
    import time as clock

    target, mask, guide = sample
    started = clock.monotonic()
    result = inpaint(target, mask, [guide], steps=10**6, check_every=10, device="cpu", time_limit=0.05)
    seconds = clock.monotonic() - started
    last = result.trace[-1].step
    assert 3 < seconds < 3 + 30 and last < 10**6  # 3 s of limit; the start-up and one check interval after it
    assert result.chosen_step <= last and any("time limit after" in note for note in result.notes)


def test_a_part_gets_its_share_of_the_time_left():
    import time as clock

    whole = Callbacks().within(1.0)  # 60 s
    first = whole.part(0, 4)
    assert abs(first.deadline - clock.monotonic() - 15) < 1  # a quarter of the time left
    rest = whole.part(1, 4, 3)
    assert abs(rest.deadline - whole.deadline) < 1  # the last three parts share all the rest
    assert Callbacks().part(0, 2).deadline is None and not Callbacks().out_of_time()
    with pytest.raises(InputError, match="time limit"):
        Settings(time_limit=-1)
    with pytest.raises(InputError, match="time limit"):
        Settings(time_limit=10**6)
