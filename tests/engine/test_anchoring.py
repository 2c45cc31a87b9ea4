"""The network corrects an instant estimate (the anchor), its steps are judged on held-out pixels, and
super-resolution stays consistent with its input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mcpn.core.anchors import cross_fitted, inpainting_anchor, inpainting_estimates
from mcpn.core.classic import Anchor, local_regression, regression
from mcpn.core.config import Settings
from mcpn.core.model import fitting
from mcpn.core.model.degradation import Degradation
from mcpn.core.model.fitting import fit
from mcpn.core.model.stopping import StoppingRule
from mcpn.core.pipeline.api import inpaint, super_resolve
from mcpn.core.pipeline.sample import Sample
from mcpn.core.trust.self_validation import holdout_mask
from scipy import ndimage

CPU = torch.device("cpu")
# they reproduce the known pixels exactly
INTERPOLATIONS = {"interpolation", "smooth interpolation", "neighbourhood similar pixels (NSPI)"}
ESTIMATES = {*INTERPOLATIONS, "guide regression", "moving-window guide regression",
             "moving-window guide regression + residual"}  # fmt: skip


def smooth_field(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(shape)
    kernel = np.ones(5) / 5
    for axis in (-1, -2):
        noise = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, noise)
    return noise


@pytest.fixture
def linear_scene():
    """A target that is exactly a linear function of its guide, with a square cloud."""
    guide = smooth_field((2, 40, 40), 0)
    target = np.stack([2 * guide[0] - guide[1] + 1, 0.5 * guide[1] + 3])
    mask = np.zeros((40, 40), bool)
    mask[12:26, 10:28] = True
    return target, mask, guide


@pytest.mark.parametrize("method", ["emergent", "direct", "stacked"])
def test_the_first_output_of_an_anchored_fit_is_the_anchor(linear_scene, method):
    target, mask, guide = linear_scene
    settings = Settings(method=method, steps=1, output_average=0, stopping="fixed")
    sample = Sample.prepare(target, ~mask, [guide], (40, 40), settings)
    problem = sample.problem()
    from mcpn.core.model.fitting import build_model

    model = build_model(problem, settings)
    pad = lambda t: torch.nn.functional.pad(t, (0, 25, 0, 25))  # noqa: E731  (the 65 px working grid)
    anchor = pad(problem.anchor)
    z = torch.cat([torch.rand(1, 32, 65, 65), anchor, pad(problem.guides[0])], dim=1)  # noise, anchor, guides
    out = model(z, anchor)
    torch.testing.assert_close(out.target, anchor)


def test_validated_stopping_keeps_the_anchor_when_the_network_never_beats_it(linear_scene):
    target, mask, guide = linear_scene
    result = inpaint(target, mask, [guide], method="stacked", steps=20, check_every=5, learning_rate=0.05)
    assert result.chosen_step == 0
    assert [p.step for p in result.trace][:2] == [0, 5]
    assert all(p.holdout_ssim <= result.trace[0].holdout_ssim for p in result.trace[1:])
    np.testing.assert_allclose(result.image[:, mask], target[:, mask], rtol=1e-4, atol=1e-4)
    assert any("instant estimate" in note for note in result.notes)


def test_a_step_replaces_the_anchor_only_when_its_gain_is_significant():
    rule = StoppingRule("validated", patience=100)
    assert rule.update(0, -0.500)  # the anchor (scores are minus the held-out similarity)
    assert not rule.update(25, -0.600, significant=False)  # better on average, within the patches' spread
    assert rule.update(50, -0.506, significant=True) and rule.best_step == 50
    assert rule.update(75, -0.5061, significant=False)  # once the anchor is left, any gain counts


@pytest.mark.parametrize("bound", [1.0, -1.0])
def test_anchored_validated_fits_ask_for_a_significant_gain(linear_scene, monkeypatch, bound):
    target, mask, guide = linear_scene
    monkeypatch.setattr(fitting, "gain_lower_bound", lambda gain, weight, labels, seed=0: bound)
    result = inpaint(target, mask, [guide], method="stacked", steps=20, check_every=5, learning_rate=0.01, seed=3)
    scores = [p.holdout_ssim for p in result.trace]
    assert result.trace[1].gain_lower == bound  # asked while the anchor is kept
    if bound > 0:  # every gain counts: the best held-out score is kept
        assert result.chosen_step == result.trace[int(np.argmax(scores))].step
    else:  # no gain counts: the anchor stays, however the steps score
        assert result.chosen_step == 0


def test_validated_stopping_scores_only_held_out_pixels_the_loss_never_saw(linear_scene):
    target, mask, guide = linear_scene
    settings = Settings(method="stacked", steps=1)
    sample = Sample.prepare(target, ~mask, [guide], (40, 40), settings)
    assert sample.holdout is not None and sample.holdout.any()
    assert not (sample.holdout & sample.known).any()  # held out of the loss
    assert not sample.holdout[:, mask].any()  # only known pixels are held out
    share = sample.holdout[0].sum() / (~mask).sum()
    assert 0.05 < share <= 0.15


def test_holdout_is_shaped_like_the_missing_area_or_discs_without_one():
    missing = np.zeros((60, 60), bool)
    missing[5:15, 5:25] = True
    held = holdout_mask(missing, 0.1, seed=1)
    assert not (held & missing).any() and 0.05 < held.sum() / (~missing).sum() <= 0.15
    discs = holdout_mask(np.zeros((60, 60), bool), 0.1, seed=1)
    assert 0.05 < discs.mean() <= 0.15
    assert holdout_mask(np.ones((60, 60), bool), 0.1) is None  # nothing known to spare


def test_guide_regression_recovers_a_linear_relation_under_the_cloud(linear_scene):
    target, mask, guide = linear_scene
    for estimate in (regression(target, ~mask, [guide]), local_regression(target, ~mask, [guide])):
        np.testing.assert_allclose(estimate[:, mask], target[:, mask], atol=5e-3)  # the ridge shrinks a little


def test_a_few_clear_pixels_deep_in_a_gap_do_not_make_the_moving_window_regression_explode():
    """Windows holding one clear pixel (nothing varies there) with four nearly collinear guide bands: the slopes
    fall back to the global ones, so no filled pixel is off by more than a few noise levels (was 2600 for a
    noise of 20, measured; a 10980 px run had pixels off by 63795 in UInt16 data)."""
    rng = np.random.default_rng(0)
    guides = np.stack([ndimage.gaussian_filter(rng.normal(size=(96, 96)), 3) for _ in range(4)])
    guides = 1000 + 300 * guides / guides.std() + rng.normal(0, 5, size=guides.shape)
    guides[3] = 0.9 * guides[0] + 100 + rng.normal(0, 1, size=(96, 96))  # as red and a red-edge band can be
    target = (0.5 * guides[0] + 0.3 * guides[1] + 200)[None] + rng.normal(0, 20, size=(1, 96, 96))
    known = np.ones((96, 96), bool)
    known[20:76, 20:76] = False
    known[[40, 40, 56], [40, 56, 48]] = True  # isolated clear pixels
    error = np.abs(local_regression(target, known, [guides]) - target)[:, ~known]
    assert error.max() < 150 and np.sqrt(np.mean(error**2)) < 30


def test_the_anchor_is_chosen_on_held_out_pixels(linear_scene):
    target, mask, guide = linear_scene
    unrelated = smooth_field((1, 40, 40), 5)
    held = holdout_mask(mask, 0.1, seed=0)
    informative = inpainting_anchor(target, ~mask, [guide], held)
    assert all("regression" in name for name in informative.names)
    useless = inpainting_anchor(target, ~mask, [unrelated], held)
    assert useless.image.shape == target.shape  # some estimate for every band, even with an unrelated guide


@pytest.mark.parametrize("low_size", [10, 13])  # x4 and a non-integer factor (40 / 13)
@pytest.mark.parametrize(("method", "blur"), [("direct", 0.0), ("emergent", 0.0), ("stacked", 0.6)])
def test_anchored_super_resolution_degrades_exactly_to_its_input(low_size, method, blur):
    """Through the sensor model it is given: a plain average, or a sensor blur and then the average."""
    truth = smooth_field((1, 40, 40), 3) + 5
    guide = np.concatenate([truth * 2 + smooth_field((1, 40, 40), 4) * 0.1, smooth_field((1, 40, 40), 9)])
    sensor = Degradation("area", (40, 40), (low_size, low_size), blur=blur)
    low = sensor.numpy(truth)
    result = super_resolve(low, [guide], method=method, steps=3, sensor_blur=blur)
    np.testing.assert_allclose(sensor.numpy(result.image), low, rtol=1e-4, atol=1e-4)
    assert f"sensor blur {blur:g} low-resolution pixels (given)" in result.notes
    estimated = super_resolve(low, [guide], method=method, steps=3).notes
    assert any(note.endswith("low-resolution pixels (estimated from the guides)") for note in estimated)


def test_a_sensor_blur_is_a_mirrored_gaussian_before_the_average_also_block_by_block():
    image = np.random.default_rng(0).normal(size=(2, 60, 60))
    blurred = Degradation("area", (60, 60), (18, 18), blur=0.5)
    plain = Degradation("area", (60, 60), (18, 18))
    expected = plain.numpy(ndimage.gaussian_filter(image, (0, 0.5 * 60 / 18, 0.5 * 60 / 18), mode="reflect"))
    np.testing.assert_allclose(blurred.numpy(image), expected, atol=1e-12)
    lows, highs = (slice(3, 9), slice(0, 18)), (slice(2, 40), slice(0, 60))  # the high rows those low rows see
    block = Degradation("area", (60, 60), (18, 18), (lows, highs), blur=0.5)
    np.testing.assert_allclose(block.matrices[0], blurred.matrices[0][3:9, 2:40], atol=1e-12)
    np.testing.assert_allclose(blurred.matrices[0][3:9].sum(axis=1), 1)
    low = np.zeros((2, 18, 18))
    np.testing.assert_allclose(blurred.numpy(blurred.project_numpy(image, low, low == 0)), low, atol=1e-9)


def test_the_sensor_blur_is_estimated_from_the_balance_of_fine_to_coarser_detail(s2):
    """Real 10 m bands, brought to 30 m with and without a sensor-like blur (0.5 input pixels): the estimate finds
    the blur within 0.1, and a smaller one without it."""
    from mcpn.core.sharpening import sensor_blur
    from osgeo import gdal

    def read(date: str) -> np.ndarray:
        return np.stack(
            [gdal.Open(str(s2 / date / f"{b}.tif")).ReadAsArray(300, 300, 120, 120) for b in ("B02", "B03", "B04")]
        ).astype(float)

    truth, guide = read("2018-08-05"), read("2018-07-21")
    plain = Degradation("area", (120, 120), (40, 40))
    found = {}
    for blur in (0.0, 0.5):
        low = plain.numpy(ndimage.gaussian_filter(truth, (0, 3 * blur, 3 * blur), mode="reflect"))
        found[blur] = sensor_blur(low, np.isfinite(low), [guide], plain.kind, (120, 120))
    assert abs(found[0.5] - 0.5) <= 0.1 and found[0.0] < found[0.5], found


def test_area_degradation_averages_covered_pixels_and_projection_is_least_change():
    image = np.arange(36, dtype=float).reshape(1, 6, 6)
    area = Degradation("area", (6, 6), (3, 3))
    np.testing.assert_allclose(area.numpy(image)[0, 0, 0], image[0, :2, :2].mean())
    odd = Degradation("area", (6, 6), (4, 4))  # 1.5 pixels per low-resolution pixel
    assert np.allclose(odd.numpy(np.ones((1, 6, 6))), 1)
    low = np.ones((1, 4, 4))
    projected = odd.project_numpy(image, low, np.ones_like(low, bool))
    np.testing.assert_allclose(odd.numpy(projected), low, atol=1e-9)
    unchanged = odd.project_numpy(image, odd.numpy(image), np.ones_like(low, bool))
    np.testing.assert_allclose(unchanged, image, atol=1e-9)


def test_batched_and_single_fits_start_alike_with_anchors(linear_scene):
    target, mask, guide = linear_scene
    settings = Settings(method="emergent", steps=1)
    problems = [Sample.prepare(target, ~mask, [guide], (40, 40), settings).problem() for _ in range(2)]
    together = fit(problems, settings, CPU)
    alone = [fit([p], settings, CPU)[0] for p in problems]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a.output, b.output, atol=1e-3)
        assert a.chosen_step == b.chosen_step


def test_the_fits_structural_similarity_is_the_metrics_one():
    from mcpn.core.metrics import ssim_map
    from mcpn.core.model.similarity import ssim_map as torch_ssim

    truth = smooth_field((2, 48, 48), 1) * 0.2 + 0.5
    noisy = truth + smooth_field((2, 48, 48), 2) * 0.05
    expected = ssim_map(noisy, truth)
    low, high = np.percentile(truth, [1, 99], axis=(1, 2))  # the metric maps the truth's range to 0..1
    scaled = [
        torch.from_numpy((x - low[:, None, None]) / (high - low)[:, None, None])[None, None] for x in (noisy, truth)
    ]
    got = torch_ssim(*scaled)[0, 0].numpy()
    np.testing.assert_allclose(
        got[:, 6:-6, 6:-6], expected[:, 6:-6, 6:-6], atol=1e-6
    )  # edges are extended, not reflected


def test_super_resolution_takes_as_much_guide_detail_as_the_guides_explain():
    from mcpn.core.sharpening import detail_agreement

    truth = smooth_field((1, 64, 64), 7) + 3
    area = Degradation("area", (64, 64), (16, 16))
    low = area.numpy(truth)
    known = np.ones(low.shape, bool)
    same = detail_agreement(low, known, [truth * 2 + 1], area)
    unrelated = detail_agreement(low, known, [smooth_field((1, 64, 64), 8)], area)
    assert same[0] > 0.99 and unrelated[0] < 0.2


@pytest.mark.parametrize("name", sorted(ESTIMATES))
def test_every_starting_estimate_lets_the_network_move(linear_scene, name):
    """An interpolation reproduces the known pixels: cross-fitted, its errors there give the network a gradient."""
    target, mask, guide = linear_scene
    settings = Settings(method="stacked", steps=5, stopping="fixed", output_average=0, learning_rate=0.01, seed=1)
    sample = Sample.prepare(target, ~mask, [guide], (40, 40), settings)
    values, guides = sample.target.astype(np.float64), [sample.guides[0].astype(np.float64)]
    image = inpainting_estimates(values, sample.known, guides, {name})[name]
    crossed = cross_fitted(image, values, sample.known, guides, [name] * 2)
    for anchor, moves in ((image, name not in INTERPOLATIONS), (crossed, True)):
        sample.anchor = Anchor(anchor, [name] * 2)
        (run,) = fit([sample.problem()], settings, CPU)
        change = np.abs(run.output - anchor)[:, mask].max()
        assert (change > 1e-4) == moves, (name, change)


def test_an_anchor_for_a_network_only_applied_is_not_cross_fitted(linear_scene):
    target, mask, guide = linear_scene
    known = np.broadcast_to(~mask, target.shape)
    applied = inpainting_anchor(target, known, [guide], None, ["interpolation"] * 2, cross_fit=False)
    np.testing.assert_allclose(applied.image[known], target[known])
    fitted = inpainting_anchor(target, known, [guide], None, ["interpolation"] * 2)
    np.testing.assert_array_equal(fitted.image[:, mask], applied.image[:, mask])
    assert np.abs(fitted.image - target)[known].mean() > 0.01


def test_cross_fitting_hides_blocks_as_deep_as_the_gaps(linear_scene):
    target, mask, guide = linear_scene
    interpolation = inpainting_estimates(target, ~mask, [], {"interpolation"})["interpolation"]
    np.testing.assert_allclose(interpolation[:, ~mask], target[:, ~mask])  # exact on the known pixels
    crossed = cross_fitted(interpolation, target, np.broadcast_to(~mask, target.shape), [], ["interpolation"] * 2)
    assert np.abs(crossed - target)[:, ~mask].mean() > 0.01  # its real errors there
    np.testing.assert_array_equal(crossed[:, mask], interpolation[:, mask])  # the gap keeps the full estimate
    regression_image = regression(target, ~mask, [guide])
    crossed = cross_fitted(regression_image, target, np.broadcast_to(~mask, target.shape), [guide], ["r"] * 2)
    np.testing.assert_array_equal(crossed, regression_image)  # an estimate with errors of its own stays as it is


def test_the_reduced_resolution_check_keeps_bicubic_when_the_guide_detail_is_wrong():
    from mcpn.core.sharpening import reduced_resolution_check, super_resolution_anchor

    truth = smooth_field((1, 96, 96), 11) + 3
    area = Degradation("area", (96, 96), (48, 48))
    low = area.numpy(truth)
    known = np.ones(low.shape, bool)
    faithful = reduced_resolution_check(low, known, [truth * 2 + 1], area)
    assert faithful.share[0] > 0 and faithful.lower[0] > 0
    # the guide has the target's coarse structure and another image's detail
    misleading = ndimage.gaussian_filter(truth, (0, 4, 4)) * 2 + 1 + smooth_field((1, 96, 96), 12)
    wrong = reduced_resolution_check(low, known, [misleading], area)
    assert wrong.share[0] == 0
    anchor = super_resolution_anchor(low, known, [misleading], area)
    assert anchor.names == ["bicubic + 0% of the guide regression's detail"]


def test_the_reduced_resolution_check_works_through_a_sensor_blur_with_pixels_held_out():
    """A blur's reach covers more input pixels than an average's: held-out pixels among them leave the check
    enough coarser pixels (a 4 x 4 grid of held-out pixels once hid them all)."""
    from mcpn.core.sharpening import reduced_resolution_check

    truth = smooth_field((1, 128, 128), 11) + 3
    sensor = Degradation("area", (128, 128), (32, 32), blur=0.5)
    low = sensor.numpy(truth)
    known = np.ones(low.shape, bool)
    known[:, 2::8, 2::8] = False
    evidence = reduced_resolution_check(low, known, [truth * 2 + 1], sensor)
    assert evidence is not None and evidence.share[0] > 0


def test_the_correction_to_the_input_leaves_no_edges_at_low_resolution_pixel_boundaries(s2):
    """x4 super-resolution of a real 10 m band: the output's steps across the edges of the low-resolution
    pixels, relative to the steps inside them, are no larger than bicubic interpolation's (a flat correction
    per low-resolution pixel, as before, doubled them)."""
    from mcpn.core.sharpening import bicubic
    from osgeo import gdal

    read = lambda band: gdal.Open(str(s2 / "2018-08-05" / f"{band}.tif")).ReadAsArray(400, 400, 96, 96)  # noqa: E731
    truth, guides = read("B08")[None].astype(float), [read(b)[None].astype(float) for b in ("B04", "B03")]
    area = Degradation("area", (96, 96), (24, 24))
    low = area.numpy(truth)
    image = super_resolve(low, guides, method="stacked", steps=2, sensor_blur=0).image
    np.testing.assert_allclose(area.numpy(image), low, atol=1e-3)

    def edges(image: np.ndarray) -> float:
        """Mean step across low-resolution pixel edges over the mean step inside pixels, both axes."""
        ratios = []
        for steps in (np.abs(np.diff(image, axis=2)), np.abs(np.diff(image, axis=1)).transpose(0, 2, 1)):
            across = steps[:, :, 3::4].mean()  # between pixels 4k + 3 and 4k + 4
            ratios.append(across / np.delete(steps, np.s_[3::4], axis=2).mean())
        return max(ratios)

    assert edges(image) <= 1.05 * edges(bicubic(low, (96, 96)))
