"""Self-validation (core.trust.self_validation): synthetic clouds, GDAL Fill nodata, scores on the hidden pixels."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from mcpn.core.callbacks import Callbacks
from mcpn.core.classic import fill_nodata
from mcpn.core.errors import InputError
from mcpn.core.pipeline.api import inpaint
from mcpn.core.pipeline.inpainting import inpaint_raster
from mcpn.core.raster.masks import CloudMask
from mcpn.core.trust.self_validation import MAX_HIDDEN_SHARE, holdout_mask, synthetic_mask, validate
from osgeo import gdal
from scipy import ndimage
from skimage.metrics import structural_similarity

RGB = ("B04", "B03", "B02")


@pytest.fixture
def real_mask(shared_data):
    """``real_mask(x, y, size)``: a crop of the realistic cloud mask of ../shared/data (about 19 % cloud over its
    256 px)."""

    def read(x: int = 0, y: int = 0, size: int = 256) -> np.ndarray:
        data = gdal.Open(str(shared_data / "s1_sar_guide" / "cloud_mask.tif")).ReadAsArray(x, y, size, size)
        return data.astype(bool)

    return read


@pytest.fixture
def read_bands(s2):
    """``read_bands(date, size, x, y, bands)``: a crop of Sentinel-2 bands of one date, float64."""

    def read(date: str, size: int, x: int = 420, y: int = 380, bands=RGB) -> np.ndarray:
        return np.stack([gdal.Open(str(s2 / date / f"{b}.tif")).ReadAsArray(x, y, size, size) for b in bands]).astype(
            np.float64
        )

    return read


def touches(a: np.ndarray, b: np.ndarray) -> bool:
    """True if ``a`` overlaps ``b`` or is 8-connected to it."""
    return bool((ndimage.binary_dilation(a, structure=np.ones((3, 3), bool)) & b).any())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("window", [(0, 0, 256), (100, 100, 64), (96, 96, 48)])
def test_synthetic_mask_avoids_clouds_and_nodata(seed: int, window: tuple[int, int, int], real_mask) -> None:
    cloud = real_mask(*window)
    invalid = np.zeros_like(cloud)
    invalid[:, : cloud.shape[1] // 8] = True  # a nodata strip along the left edge
    invalid &= ~cloud
    hidden = synthetic_mask(cloud, invalid, seed)
    assert hidden.shape == cloud.shape and hidden.dtype == bool
    assert not touches(hidden, cloud | invalid)
    clear = int((~cloud & ~invalid).sum())
    expected = min(int(cloud.sum()), int(MAX_HIDDEN_SHARE * clear))
    assert 0.75 * expected <= hidden.sum() <= min(1.5 * expected, MAX_HIDDEN_SHARE * clear)


def test_synthetic_mask_is_deterministic_and_shaped_like_the_clouds(real_mask) -> None:
    cloud = real_mask()
    first, again, other = synthetic_mask(cloud, None, 7), synthetic_mask(cloud, None, 7), synthetic_mask(cloud, None, 8)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    # There is room for the real shapes: the synthetic clouds are copies of them (same sizes).
    labels, count = ndimage.label(cloud, structure=np.ones((3, 3), bool))
    real_sizes = sorted(np.bincount(labels.ravel())[1:])
    labels, _ = ndimage.label(first, structure=np.ones((3, 3), bool))
    assert sorted(np.bincount(labels.ravel())[1:]) == real_sizes
    assert first.sum() == cloud.sum()


def test_synthetic_mask_caps_the_cover_and_falls_back() -> None:
    # Clouds over 80 % of the image: at most half of the clear pixels are hidden.
    cloud = np.ones((64, 64), bool)
    cloud[:, 51:] = False
    hidden = synthetic_mask(cloud, None, 0)
    assert 0 < hidden.sum() <= MAX_HIDDEN_SHARE * (~cloud).sum()
    assert not touches(hidden, cloud)
    # One large square leaves a frame too thin for it, even scaled down: random discs instead.
    cloud = np.zeros((64, 64), bool)
    cloud[10:54, 10:54] = True
    result = validate(np.random.default_rng(0).random((1, 64, 64)), cloud, fill_nodata, seed=0)
    assert "random discs" in result.notes[0]
    assert result.hidden_pixels > 0 and not touches(result.hidden, cloud)


def test_synthetic_mask_errors() -> None:
    with pytest.raises(InputError, match="at least 64 clear pixels"):
        synthetic_mask(np.ones((10, 10), bool) ^ np.eye(10, dtype=bool), None, 0)
    cloud = np.zeros((32, 32), bool)
    cloud[:4, :4] = True
    with pytest.raises(InputError, match="at least 64 clear pixels"):
        synthetic_mask(cloud, ~cloud & (np.arange(32)[None] > 1), 0)
    with pytest.raises(InputError, match="no pixel"):
        synthetic_mask(np.zeros((32, 32), bool), None, 0)
    with pytest.raises(InputError, match="must be"):
        synthetic_mask(cloud, np.zeros((16, 16), bool), 0)


def gdal_fillnodata_command(band: np.ndarray, missing: np.ndarray, folder) -> np.ndarray:
    """GDAL's own gdal_fillnodata.py (as QGIS's Fill nodata runs it) on one band written to a file."""
    path, mask_path, out = folder / "band.tif", folder / "valid.tif", folder / "filled.tif"
    for data, name in ((np.where(missing, 0, band), path), (~missing, mask_path)):
        ds = gdal.GetDriverByName("GTiff").Create(str(name), band.shape[1], band.shape[0], 1, gdal.GDT_Float64)
        ds.GetRasterBand(1).WriteArray(data.astype(float))
        ds = None
    distance = str(float(np.hypot(*band.shape)) + 1.0)
    command = ["gdal_fillnodata.py", "-q", "-md", distance, "-si", "0", "-mask", str(mask_path), str(path), str(out)]
    subprocess.run(command, check=True, capture_output=True)
    return gdal.Open(str(out)).ReadAsArray()


def test_fill_nodata_is_gdal_fill_nodata(tmp_path, real_mask, read_bands) -> None:
    image = read_bands("2018-08-05", 48)
    cloud = real_mask(96, 96, 48)
    image[1, 40:, :5] = np.nan  # nodata in one band only
    filled = fill_nodata(image, cloud)
    assert np.isfinite(filled).all()
    known = ~cloud & np.isfinite(image)
    assert np.array_equal(filled[known], image[known])
    np.testing.assert_allclose(filled[0], gdal_fillnodata_command(image[0], cloud, tmp_path), rtol=1e-6)
    with pytest.raises(InputError, match="band 2"):
        fill_nodata(np.stack([image[0], np.full(image.shape[1:], np.nan)]), cloud)


def ssim_on(pred: np.ndarray, truth: np.ndarray, region: np.ndarray) -> list[float]:
    """Per-band SSIM averaged over ``region``: bands mapped by the truth's 1-99th percentiles, Gaussian window."""
    scores = []
    for p, t in zip(pred, truth):
        low, high = np.percentile(t, [1, 99])
        _, full = structural_similarity(
            (p - low) / (high - low),
            (t - low) / (high - low),
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            full=True,
        )
        scores.append(float(full[region].mean()))
    return scores


def test_scores_match_an_independent_computation(real_mask, read_bands) -> None:
    target = read_bands("2018-08-05", 64, 400, 400)
    cloud = real_mask(100, 100, 64)
    target[:, 60:, 60:] = np.nan  # a nodata corner
    calls = []

    def fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """A deliberately poor fill: each band's mean of the known pixels, plus a ramp."""
        calls.append((image.copy(), mask.copy()))
        known = ~mask & np.isfinite(image).all(axis=0)
        means = np.array([band[known].mean() for band in image])[:, None, None]
        return np.where(mask | ~known, means + np.arange(64)[None, None], image)

    result = validate(target, cloud, fill, seed=3)
    hidden = result.hidden
    assert result.hidden_pixels == hidden.sum() > 0
    assert not (hidden & (cloud | np.isnan(target).any(axis=0))).any()
    # The fill saw the hidden pixels as NaN and in its mask; nothing else changed.
    ((image, mask),) = calls
    assert np.array_equal(mask, cloud | hidden)
    assert np.isnan(image[:, hidden]).all()
    assert np.array_equal(np.isnan(image[:, ~hidden]), np.isnan(target[:, ~hidden]))

    # Reference outside the hidden pixels: the truth, real gaps filled by GDAL (the benchmarks' own baseline).
    reference = fill_nodata(target, cloud)
    for name, output in (("mcpn", fill(image, mask)), ("gdal", fill_nodata(image, mask))):
        errors = (output - target)[:, hidden]
        assert getattr(result, f"{name}_rmse") == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-9)
        band_rmse = np.sqrt(np.mean(errors**2, axis=1))
        np.testing.assert_allclose(getattr(result, f"{name}_band_rmse"), band_rmse, rtol=1e-9)
        band_ssim = ssim_on(np.where(hidden, output, reference), reference, hidden)
        np.testing.assert_allclose(getattr(result, f"{name}_band_ssim"), band_ssim, rtol=1e-9)
        assert getattr(result, f"{name}_ssim") == pytest.approx(np.mean(band_ssim), rel=1e-9)
    assert result.gdal_ssim > result.mcpn_ssim and result.gdal_rmse < result.mcpn_rmse


def test_a_perfect_fill_scores_perfectly(real_mask, read_bands) -> None:
    target = read_bands("2018-08-05", 48)
    result = validate(target, real_mask(96, 96, 48), lambda image, mask: target.copy(), seed=0)
    assert result.mcpn_ssim == pytest.approx(1.0) and result.mcpn_rmse == 0.0
    assert result.gdal_ssim < 1.0 and result.gdal_rmse > 0.0


def test_validation_of_a_real_mcpn_fit(real_mask, read_bands) -> None:
    target, guide = read_bands("2018-08-05", 48), read_bands("2018-07-21", 48, bands=RGB + ("B08",))
    cloud = real_mask(96, 96, 48)
    runs = []

    def fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        result = inpaint(image, mask, [guide], steps=20, seed=0, device="cpu", check_every=10)
        runs.append(result)
        return result.image

    result = validate(target, cloud, fill, seed=0)
    assert len(runs) == 1 and runs[0].filled[result.hidden].all()
    assert result.hidden_pixels >= 0.75 * cloud.sum()
    hidden = result.hidden
    error = runs[0].image[:, hidden] - target[:, hidden].astype(float)  # the fit's own pixels, recomputed here
    assert result.mcpn_rmse == pytest.approx(np.sqrt(np.mean(error**2)), rel=1e-6)
    assert 0 < result.mcpn_ssim < 1 and 0 < result.gdal_ssim < 1 and result.gdal_rmse > 0
    assert len(result.mcpn_band_ssim) == len(result.gdal_band_rmse) == 3


def test_no_holdout_where_no_patch_fits_between_the_gaps():
    """Clear pixels only in 1 px wide strips: no patch fits, so no held-out pixels (the fit runs without them)."""
    missing = np.ones((64, 64), dtype=bool)
    missing[:, ::3] = False
    assert holdout_mask(missing, 0.1, seed=0) is None


def test_a_run_scores_the_instant_estimate_its_fit_starts_from(tmp_path, rasters, scene, fast):
    """A run's self-validation scores the instant estimate beside MCPN and GDAL Fill nodata. After one step the fit's
    output is still that estimate, so their scores agree; the log gives all three."""
    s = scene(size=48)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", rasters.block(48, 8, 20, 10, 26))
    logs: list[str] = []
    settings = fast(steps=1, stopping="fixed", self_validation=True)
    result = inpaint_raster(str(s["target"]), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"),
                            settings, callbacks=Callbacks(log=logs.append))  # fmt: skip
    check = result.validation
    assert check.instant_rmse == pytest.approx(check.mcpn_rmse, rel=1e-4)
    assert check.instant_ssim == pytest.approx(check.mcpn_ssim, abs=1e-4)
    assert check.instant_band_rmse == pytest.approx(check.mcpn_band_rmse, rel=1e-4)
    assert check.instant_rmse != pytest.approx(check.gdal_rmse, rel=1e-2)  # a guide regression, not GDAL's fill
    line = next(line for line in logs if line.startswith("self-validation on"))
    assert f"instant estimate SSIM {check.instant_ssim:.3f}, RMSE {check.instant_rmse:.4g}" in line
    started = inpaint_raster(str(s["target"]), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "n.tif"),
                             fast(steps=1, anchor="none", self_validation=True))  # fmt: skip
    assert started.validation.instant_ssim is None  # from noise: no estimate to score
