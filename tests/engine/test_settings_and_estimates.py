"""Settings that had no test of their own (the checks of their values, the loss weights, the held-out share, the
network's coordinate-grid input, ``local:N``), the instant estimates on real rasters, and the mask's preview."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mcpn.core.anchors import inpainting_estimates
from mcpn.core.callbacks import Callbacks
from mcpn.core.choices import InputKind, Stopping
from mcpn.core.classic import biharmonic
from mcpn.core.config import Settings
from mcpn.core.errors import InputError
from mcpn.core.model.degradation import Degradation
from mcpn.core.model.fitting import NOISE_CHANNELS, Networks, Problem, Stacked, build_model, fit, loss_of, network_input
from mcpn.core.model.stopping import StoppingRule
from mcpn.core.pipeline import distributed
from mcpn.core.pipeline.api import super_resolve
from mcpn.core.pipeline.sample import Sample
from mcpn.core.raster.io import read_decimated
from mcpn.core.raster.masks import MaskLayer
from mcpn.core.sharpening import bicubic, consistent_bicubic, regression_and_residual
from osgeo import gdal
from scipy import ndimage

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tile_size": 15}, "the tile size must be at least 16 px and more than twice the tile overlap"),
        ({"tile_size": 32, "tile_overlap": 16}, "the tile size must be at least 16 px and more than twice"),
        ({"batch_size": 0}, "the batch size must be at least 1 tile"),
        ({"ensemble": 0}, "the ensemble needs at least one member"),
        ({"learning_rate": 0.0}, "the learning rate must be positive"),
        ({"learning_rate": -1e-3}, "the learning rate must be positive"),
        ({"holdout": 0.5}, "the held-out share of the known pixels must be at least 0 and below 0.5"),
        ({"holdout": -0.1}, "the held-out share of the known pixels must be at least 0 and below 0.5"),
        ({"sensor_blur": -0.1}, "the sensor blur must be between 0 and 2 low-resolution pixels"),
        ({"sensor_blur": 2.5}, "the sensor blur must be between 0 and 2 low-resolution pixels"),
    ],
    ids=str,
)
def test_settings_out_of_range_are_refused_with_a_message_naming_them(values, message):
    with pytest.raises(InputError, match=message):
        Settings(**values)


def test_the_edges_of_the_ranges_are_accepted():
    Settings(tile_size=16, tile_overlap=7, batch_size=1, ensemble=1, learning_rate=1e-6, holdout=0.0, sensor_blur=0)
    Settings(sensor_blur=2.0)
    Settings(holdout=0.49)


def test_the_holdout_setting_is_the_share_of_known_pixels_held_out(s2, rasters, tmp_path):
    """``holdout`` sets how many known pixels are kept out of the loss (0: none, and no held-out evidence)."""
    size = 64
    target = rasters.stack([s2 / "2018-08-05" / "B04.tif"], tmp_path / "t.tif", 400, 400, size)
    values = rasters.info(target)["data"].astype(np.float64)[None]
    known = ~rasters.block(size, 20, 40, 20, 44)
    counts = {}
    for share in (0.0, 0.1, 0.3):
        sample = Sample.prepare(values, known, [], (size, size), Settings(holdout=share, anchor="none"))
        counts[share] = 0 if sample.holdout is None else int(sample.holdout.sum())
    assert counts[0.0] == 0
    for share in (0.1, 0.3):  # shapes are placed until the share is met, overshooting by at most half of it
        assert 0.75 * share * known.sum() <= counts[share] <= 1.5 * share * known.sum()


@pytest.fixture(scope="module")
def two_domain_problem() -> Problem:
    """A 32 px 2-band target with a gap and a 3-band guide."""
    generator = torch.Generator().manual_seed(0)
    known = torch.ones(1, 2, 32, 32)
    known[..., 8:20, 8:20] = 0
    target = torch.rand(1, 2, 32, 32, generator=generator) * known
    guide = torch.rand(1, 3, 32, 32, generator=generator)
    return Problem(target, known, [guide], [torch.ones_like(guide)], (32, 32))


def test_the_loss_weights_scale_the_target_guide_and_cycle_terms(two_domain_problem):
    """``target_weight``, ``guide_weight`` and ``cycle_weight`` each multiply their own term of the loss (Emergent:
    all three terms), measured on one forward pass of the real network."""
    settings = Settings(method="emergent", seed=0)
    model = build_model(two_domain_problem, settings)
    networks = Networks([model], CPU, torch.contiguous_format)
    working = (max(32, model.min_size),) * 2  # as the fit pads it: Emergent's deepest level needs more than 32 px
    data = Stacked([two_domain_problem], working, CPU)
    z = data.with_inputs(network_input(InputKind.NOISE, NOISE_CHANNELS, working, torch.Generator().manual_seed(0)))
    with torch.no_grad():
        out = networks(z, data.anchor)

    def loss(target: float, guide: float, cycle: float) -> float:
        weights = {"target_weight": target, "guide_weight": guide, "cycle_weight": cycle}
        return float(loss_of(out, data, Settings(method="emergent", **weights)).sum())

    terms = [loss(1, 0, 0), loss(0, 1, 0), loss(0, 0, 1)]
    assert all(term > 0 for term in terms)
    assert loss(1, 1, 1) == pytest.approx(sum(terms), rel=1e-5)
    assert loss(2, 3, 5) == pytest.approx(2 * terms[0] + 3 * terms[1] + 5 * terms[2], rel=1e-5)


def test_the_meshgrid_input_is_a_coordinate_grid_and_fits(two_domain_problem):
    """``input_kind="meshgrid"``: two channels, x then y, each 0 to 1 across the image; a fit on it runs."""
    grid = network_input(InputKind.MESHGRID, NOISE_CHANNELS, (4, 5), torch.Generator())
    assert grid.shape == (1, 2, 4, 5)
    torch.testing.assert_close(grid[0, 0, 2], torch.linspace(0, 1, 5))
    torch.testing.assert_close(grid[0, 1, :, 3], torch.linspace(0, 1, 4))
    (fitted,) = fit([two_domain_problem], Settings(steps=3, stopping="fixed", input_kind="meshgrid"), CPU)
    assert np.isfinite(fitted.output).all() and len(fitted.trace) == 1


def test_a_local_dask_scheduler_string_is_read_or_refused_with_a_message():
    pytest.importorskip("dask.distributed")
    for scheduler, message in (("local:x", "cannot read the worker count in 'local:x'"),
                               ("local:0", "a local Dask cluster needs at least one worker")):  # fmt: skip
        with pytest.raises(InputError, match=message), distributed._client(scheduler, Callbacks()):
            pass
    logs: list[str] = []
    with distributed._client("local:1", Callbacks(log=logs.append)) as client:
        assert len(client.scheduler_info()["workers"]) == 1
    assert logs[0].startswith("starting a local Dask cluster of 1 worker")


# --- the instant estimates on real rasters -------------------------------------------------------------------
@pytest.fixture
def band_10m(s2, rasters, tmp_path):
    """``band_10m(name, date="2018-08-05", size=64)``: a 10 m band as a (1, size, size) float64 array."""

    def read(name: str, date: str = "2018-08-05", size: int = 64) -> np.ndarray:
        path = rasters.crop(s2 / date / f"{name}.tif", tmp_path / f"{date}_{name}.tif", 400, 400, size)
        return rasters.info(path)["data"].astype(np.float64)[None]

    return read


def test_biharmonic_keeps_the_known_pixels_and_fills_smoothly(band_10m, rasters):
    truth = band_10m("B04")
    gap = rasters.block(64, 20, 40, 18, 42)
    filled = biharmonic(np.where(gap, np.nan, truth), gap)
    np.testing.assert_array_equal(filled[:, ~gap], truth[:, ~gap])
    inside = gap.copy()
    inside[[20, 39], :] = inside[:, [18, 41]] = False  # the Laplacian of the gap's inner pixels
    lap = np.abs(filled[0, 1:-1, 1:-1] * 4 - filled[0, :-2, 1:-1] - filled[0, 2:, 1:-1] - filled[0, 1:-1, :-2]
                 - filled[0, 1:-1, 2:])  # fmt: skip
    truth_lap = np.abs(truth[0, 1:-1, 1:-1] * 4 - truth[0, :-2, 1:-1] - truth[0, 2:, 1:-1] - truth[0, 1:-1, :-2]
                       - truth[0, 1:-1, 2:])  # fmt: skip
    assert lap[inside[1:-1, 1:-1]].mean() < 0.2 * truth_lap[inside[1:-1, 1:-1]].mean()
    rows, cols = np.mgrid[0:64, 0:64]
    plane = 3.0 * rows - 2.0 * cols + 500.0  # a smooth surface it must fill exactly
    np.testing.assert_allclose(biharmonic(np.where(gap, np.nan, plane), gap)[0], plane, atol=1e-6)


def test_the_moving_window_regression_plus_residual_corrects_the_regression_at_the_gaps_edge(band_10m, rasters):
    """The regression's residual, carried into the gap from its edge, brings the estimate closer to the truth on
    the gap's first pixels, and the guided estimate beats interpolation (B04 of 2018-07-21 guiding B04 of
    2018-08-05)."""
    truth, guide = band_10m("B04"), band_10m("B04", "2018-07-21")
    gap = rasters.block(64, 24, 36, 24, 40)
    names = {"interpolation", "moving-window guide regression", "moving-window guide regression + residual"}
    estimates = inpainting_estimates(np.where(gap, np.nan, truth), ~gap, [guide], names)
    edge = gap & ~ndimage.binary_erosion(gap)  # the gap's first ring of pixels

    def error(name: str, where: np.ndarray) -> float:
        return float(np.sqrt(np.mean((estimates[name][:, where] - truth[:, where]) ** 2)))

    plain, carried = "moving-window guide regression", "moving-window guide regression + residual"
    assert error(carried, edge) < error(plain, edge)
    assert error(carried, gap) < error("interpolation", gap)


@pytest.fixture
def sharpening(band_10m):
    """B04 (truth, 64 px), its area average to 32 px (the input) and the B03 and B08 10 m guides."""
    truth = band_10m("B04")
    degradation = Degradation("area", (64, 64), (32, 32))
    low = degradation.numpy(truth)
    return truth, low, [band_10m("B03"), band_10m("B08")], degradation


def test_bicubic_interpolates_without_reproducing_the_input_and_consistent_bicubic_averages_back_to_it(sharpening):
    truth, low, _, degradation = sharpening
    known = np.ones(low.shape, bool)
    plain, consistent = bicubic(low, (64, 64)), consistent_bicubic(low, known, degradation)
    assert plain.shape == consistent.shape == truth.shape
    assert np.abs(degradation.numpy(plain) - low).max() > 1.0  # bicubic alone does not average back to the input
    np.testing.assert_allclose(degradation.numpy(consistent), low, atol=1e-6 * np.abs(low).max())
    assert np.sqrt(np.mean((consistent - truth) ** 2)) < np.sqrt(np.mean((plain - truth) ** 2))


def test_regression_and_residual_reproduces_the_input_and_adds_the_guides_detail(sharpening):
    truth, low, guides, degradation = sharpening
    known = np.ones(low.shape, bool)
    estimate = regression_and_residual(low, known, guides, degradation)
    np.testing.assert_allclose(degradation.numpy(estimate), low, atol=1e-6 * np.abs(low).max())
    plain = consistent_bicubic(low, known, degradation)
    assert np.sqrt(np.mean((estimate - truth) ** 2)) < 0.9 * np.sqrt(
        np.mean((plain - truth) ** 2)
    )  # B03 follows B04's detail closely


def test_the_mask_layer_preview_is_the_cloud_of_the_whole_grid_subsampled(tmp_path, rasters, s2):
    """``MaskLayer.read_decimated``: mask values and polygons evaluated on the subsampled grid, without dilation."""
    template = rasters.crop(s2 / "2018-08-05" / "B04.tif", tmp_path / "t.tif", 0, 0, 100)
    values = np.zeros((100, 100), np.uint8)
    values[10:30, 20:60] = 9  # cloud (values 8-10)
    values[50:70, 50:90] = 3  # cloud shadow: not asked for
    mask = rasters.mask(template, tmp_path / "scl.tif", values > 0)
    ds = gdal.Open(str(mask), gdal.GA_Update)
    ds.GetRasterBand(1).WriteArray(values)
    ds = None
    polygons = rasters.mask(template, tmp_path / "polygons.tif", rasters.block(100, 80, 100, 0, 10))
    layer = MaskLayer(str(mask), ((8.0, 10.0),), str(polygons), 3, 100, 100)
    preview = layer.read_decimated(50)
    expected = (values >= 8)[::2, ::2] | rasters.block(100, 80, 100, 0, 10)[::2, ::2]
    assert preview.shape == (50, 50) and preview.dtype == bool
    np.testing.assert_array_equal(preview, expected)
    assert read_decimated(str(mask), 50).shape == (1, 50, 50)
    np.testing.assert_array_equal(layer.read_decimated(1024), (values >= 8) | rasters.block(100, 80, 100, 0, 10))


def test_super_resolution_keeps_the_step_its_held_out_pixels_choose(sharpening):
    """Super-resolution with the default (validated) stopping: held-out input pixels score every checked step, and
    the kept step is the one they choose, the instant estimate (step 0) unless a step's gain over it is above the
    held-out patches' spread."""
    _, low, guides, _ = sharpening
    settings = Settings(steps=40, check_every=5, method="stacked", device="cpu")
    result = super_resolve(low, guides, settings)
    assert [p.step for p in result.trace] == list(range(0, 41, 5))
    assert all(p.holdout_ssim is not None for p in result.trace)
    assert result.trace[1].gain_lower is not None  # the first step is judged against the estimate kept so far
    replay = StoppingRule(Stopping.VALIDATED, settings.patience)
    for point in result.trace:
        replay.update(point.step, Stopping.VALIDATED.score(point), point.gain_lower is None or point.gain_lower > 0)
    assert result.chosen_step == replay.best_step
    scores = {p.step: p.holdout_ssim for p in result.trace}
    assert scores[result.chosen_step] >= scores[0]  # never a step the held-out pixels rate below the estimate
