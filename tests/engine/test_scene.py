"""Whole rasters from files (core.pipeline.inpainting, .super_resolution): any grids and masks, tiles, nodata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mcpn.core.callbacks import Callbacks
from mcpn.core.errors import InputError
from mcpn.core.model.degradation import Degradation
from mcpn.core.pipeline.inpainting import inpaint_raster
from mcpn.core.pipeline.super_resolution import super_resolve_raster
from mcpn.core.raster import masks
from mcpn.core.raster.io import grid_of
from mcpn.core.raster.masks import CloudMask, MaskLayer
from mcpn.core.raster.tiling import Window, tile_windows
from osgeo import gdal

RGB = ["B04", "B03", "B02"]


def test_only_cloudy_tiles_are_fitted_and_clear_pixels_are_kept(tmp_path, rasters, scene, fast):
    s = scene()
    cloud = rasters.block(96, 5, 20, 60, 90)  # the top-right corner only
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", cloud)
    poisoned = rasters.poisoned(s["target"], tmp_path / "poisoned.tif", cloud)
    logs: list[str] = []
    result = inpaint_raster(
        str(poisoned), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "out.tif"),
        fast(tile_size=48, tile_overlap=8, scope="tile"), callbacks=Callbacks(log=logs.append),
    )  # fmt: skip
    assert (result.tiles, result.fitted) == (9, 2)
    assert any("in 2 of 9 tiles" in line for line in logs)
    out, target = rasters.info(tmp_path / "out.tif"), rasters.info(s["target"])
    guide = rasters.info(s["guide"])["data"]
    rasters.assert_filled(out["data"], rasters.info(poisoned)["data"], target["data"], cloud, [guide])
    assert (out["geotransform"], out["crs"], out["dtype"], out["nodata"]) == (
        target["geotransform"], target["crs"], target["dtype"], target["nodata"],
    )  # fmt: skip
    assert out["descriptions"] == RGB
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith((".", "mcpn-"))] == []  # no scratch file left


def test_progress_counts_the_steps_of_all_tiles(tmp_path, rasters, scene, fast):
    s = scene(size=64)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", rasters.block(64, 10, 54, 10, 30))
    seen: list[tuple[int, int]] = []
    callbacks = Callbacks(lambda step, total: seen.append((step, total)))
    result = inpaint_raster(str(s["target"]), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"),
                            fast(tile_size=40, steps=3, scope="tile"), callbacks=callbacks)  # fmt: skip
    assert result.fitted == 4
    assert {total for _, total in seen} == {4 * 3}  # one total: the steps of all tiles
    steps = [step for step, _ in seen]
    assert steps == sorted(steps) and steps[-1] == 12 and len(set(steps)) == 12  # every step of every tile, in order


@pytest.mark.parametrize("scope", ["tile", "scene"])
def test_the_time_of_each_stage_is_measured_and_said(tmp_path, rasters, scene, fast, scope):
    """Preparation, read, estimates, fit, prediction (scene network) and write: each timed, said in one note,
    and together no more than the run's wall time (one process, tiles one after the other)."""
    s = scene(size=64)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", rasters.block(64, 10, 54, 10, 30))
    said: list[str] = []
    result = inpaint_raster(str(s["target"]), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"),
                            fast(tile_size=40, steps=3, scope=scope), callbacks=Callbacks(log=said.append))  # fmt: skip
    expected = {"preparation", "read", "estimates", "fit", "write"} | ({"prediction"} if scope == "scene" else set())
    assert set(result.stages) == expected
    assert all(seconds > 0 for seconds in result.stages.values())
    assert sum(result.stages.values()) <= result.seconds
    (note,) = [n for n in result.notes if n.startswith("time by stage: preparation ")]
    assert f"the whole run {result.seconds:.1f} s" in note


def test_tiles_fitted_apart_and_blended_give_the_untiled_fill(tmp_path, rasters, s2, fast):
    """A real target (2018-08-05) and guide (2018-07-21): each of 9 tiles starts from its own instant estimate (the
    output of a one-step fit), so the tiles disagree, and the feathered blend must not show where a tile ends. The
    difference to one untiled fit changes across each tile edge in the cloud at most twice as much as beside it
    (measured: at most 1.5 times; a plain average of the tiles: up to 2.7 times)."""
    size, cloud = 64, rasters.block(64, 20, 44, 18, 46)  # across the tiles' edges (rows and columns 24 and 32)
    target = rasters.stack([s2 / "2018-08-05" / f"{b}.tif" for b in RGB], tmp_path / "target.tif", 400, 400, size)
    guide = rasters.stack([s2 / "2018-07-21" / f"{b}.tif" for b in RGB], tmp_path / "guide.tif", 400, 400, size)
    mask = rasters.mask(target, tmp_path / "mask.tif", cloud)
    runs = {}
    for name, tile_size in (("tiled", 32), ("untiled", 64)):
        out = tmp_path / f"{name}.tif"
        settings = fast(tile_size=tile_size, steps=1, stopping="fixed", scope="tile")
        runs[name] = inpaint_raster(str(target), CloudMask(str(mask)), [str(guide)], str(out), settings).fitted
    assert (runs["tiled"], runs["untiled"]) == (9, 1)
    tiled, untiled = (rasters.info(tmp_path / f"{name}.tif")["data"].astype(np.float64) for name in runs)
    difference = (tiled - untiled)[:, 20:44, 18:46]
    edges = {w.row for w in tile_windows(size, size, 32, 8)} | {w.col for w in tile_windows(size, size, 32, 8)}
    for axis, first, line in ((1, 20, "row"), (2, 18, "column")):
        steps = np.abs(np.diff(difference, axis=axis)).mean(axis=tuple({0, 1, 2} - {axis}))  # steps[i]: i to i + 1
        for edge in sorted(edges & set(range(first + 2, first + len(steps) - 1))):
            at, beside = steps[edge - 1 - first], (steps[edge - 2 - first] + steps[edge - first]) / 2
            assert at <= 2 * beside, f"a seam at {line} {edge}: {at:.3g} against {beside:.3g}"


def test_no_cloud_copies_the_target_and_a_full_mask_is_an_error(tmp_path, rasters, scene, fast):
    s = scene(size=48)
    clear = rasters.mask(s["target"], tmp_path / "clear.tif", np.zeros((48, 48), bool))
    result = inpaint_raster(str(s["target"]), CloudMask(str(clear)), [str(s["guide"])], str(tmp_path / "o.tif"), fast())
    assert result.fitted == 0
    assert np.array_equal(rasters.info(tmp_path / "o.tif")["data"], rasters.info(s["target"])["data"])
    full = rasters.mask(s["target"], tmp_path / "full.tif", np.ones((48, 48), bool))
    with pytest.raises(InputError, match="no pixel of the target is known"):
        inpaint_raster(str(s["target"]), CloudMask(str(full)), [str(s["guide"])], str(tmp_path / "f.tif"), fast())
    assert not (tmp_path / "f.tif").exists()


@pytest.mark.parametrize("epsg", [4326, 3857])
def test_guides_and_masks_in_another_crs_are_warped_to_the_target_grid(tmp_path, epsg, rasters, scene, fast):
    s = scene(size=64)
    cloud = rasters.block(64, 20, 40, 20, 44)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", cloud)
    guide = gdal.Warp(str(tmp_path / f"guide_{epsg}.tif"), str(s["guide"]), dstSRS=f"EPSG:{epsg}")
    mask_other = gdal.Warp(str(tmp_path / f"mask_{epsg}.tif"), str(mask), dstSRS=f"EPSG:{epsg}", resampleAlg="near")
    guide = mask_other = None  # noqa: F841 (close the files)
    aligned = inpaint_raster(
        str(s["target"]), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "aligned.tif"), fast()
    )
    warped = inpaint_raster(
        str(s["target"]), CloudMask(str(tmp_path / f"mask_{epsg}.tif")), [str(tmp_path / f"guide_{epsg}.tif")],
        str(tmp_path / "warped.tif"), fast(),
    )  # fmt: skip
    assert aligned.fitted == warped.fitted == 1
    a, w = rasters.info(tmp_path / "aligned.tif"), rasters.info(tmp_path / "warped.tif")
    assert (w["size"], w["geotransform"], w["crs"]) == (a["size"], a["geotransform"], a["crs"])
    layer = MaskLayer(str(tmp_path / f"mask_{epsg}.tif"), ((1.0, 1.0),), None, 0, 64, 64)
    from mcpn.core.raster.io import aligned_path

    on_grid = aligned_path(str(tmp_path / f"mask_{epsg}.tif"), grid_of(str(s["target"])), str(tmp_path), "near")
    warped_mask = MaskLayer(on_grid, layer.ranges, None, 0, 64, 64).read(Window(0, 0, 64, 64))
    assert (warped_mask != cloud).mean() < 0.05  # the same clouds, up to resampling at the edges


@pytest.mark.parametrize("what", ["guide", "cloud mask"])
def test_a_guide_or_mask_that_does_not_overlap_is_named_in_the_error(tmp_path, rasters, s2, scene, fast, what):
    s = scene(size=48)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", rasters.block(48, 10, 20, 10, 20))
    far = tmp_path / "far.tif"
    gdal.Translate(str(far), str(s["guide"] if what == "guide" else mask))
    ds = gdal.Open(str(far), gdal.GA_Update)
    gt = list(ds.GetGeoTransform())
    gt[0] += 1e6  # 1000 km east
    ds.SetGeoTransform(gt)
    ds = None
    guide, mask = (far, mask) if what == "guide" else (s["guide"], far)
    with pytest.raises(InputError, match=f"The {what} 'far.tif' does not overlap the input raster"):
        inpaint_raster(str(s["target"]), CloudMask(str(mask)), [str(guide)], str(tmp_path / "o.tif"), fast())
    assert not (tmp_path / "o.tif").exists()


@pytest.fixture
def mask_layer(tmp_path, rasters, s2):
    """``mask_layer(values, spec, dilation, polygons)``: the values as a mask raster on a 10 m UTM grid, read as
    the cloud mask ``spec`` (and the polygons); the layer and its grid."""
    from mcpn.core.raster.io import rasterise

    def make(values: np.ndarray, spec: str, dilation: int = 0, polygons: str | None = None):
        template = rasters.crop(s2 / "2018-08-05" / "B04.tif", tmp_path / "template.tif", 400, 400, values.shape[0])
        path = tmp_path / "classes.tif"
        ds = gdal.GetDriverByName("GTiff").CreateCopy(str(path), gdal.Open(str(template)))
        ds.GetRasterBand(1).WriteArray(values)
        ds = None
        grid = grid_of(str(path))
        burnt = rasterise(polygons, grid, str(tmp_path / "burnt.tif")) if polygons else None
        ranges = tuple(masks.parse_mask_values(spec))
        return MaskLayer(str(path), ranges, burnt, dilation, grid.height, grid.width), grid

    return make


def test_scl_values_thresholds_and_dilation_give_the_expected_pixels(mask_layer):
    rng = np.random.default_rng(0)
    scl = rng.integers(0, 12, (64, 64)).astype(np.uint16)
    layer, _ = mask_layer(scl, "3,8-10")
    whole = Window(0, 0, 64, 64)
    assert np.array_equal(layer.read(whole), np.isin(scl, [3, 8, 9, 10]))
    probability = (rng.random((64, 64)) * 100).astype(np.uint16)
    layer, _ = mask_layer(probability, ">=40")
    assert np.array_equal(layer.read(whole), probability >= 40)
    sparse = np.zeros((64, 64), np.uint16)
    sparse[[5, 30, 31, 60], [40, 2, 33, 61]] = 1
    layer, _ = mask_layer(sparse, "1", dilation=3)
    expected = masks.dilate(sparse == 1, 3)
    for window in (Window(0, 0, 32, 32), Window(20, 25, 30, 39), Window(32, 32, 32, 32)):  # halos across windows
        rows, cols = slice(window.row, window.row + window.height), slice(window.col, window.col + window.width)
        assert np.array_equal(layer.read(window), expected[rows, cols])


def test_polygon_masks_in_another_crs_are_rasterised_on_the_grid(tmp_path, rasters, mask_layer):
    _, grid = mask_layer(np.zeros((64, 64), np.uint16), "1")
    x0, _, _, y0, _, _ = grid.geotransform
    square = [(x0 + 100, y0 - 100), (x0 + 300, y0 - 100), (x0 + 300, y0 - 250), (x0 + 100, y0 - 250)]
    from osgeo import osr

    source, wgs84 = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromWkt(grid.crs_wkt)
    wgs84.ImportFromEPSG(4326)
    for srs in (source, wgs84):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_wgs84 = osr.CoordinateTransformation(source, wgs84)
    ring = [list(to_wgs84.TransformPoint(x, y)[:2]) for x, y in square]
    feature = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}}
    path = tmp_path / "clouds.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    layer, _ = mask_layer(np.zeros((64, 64), np.uint16), "1", polygons=str(path))
    got = layer.read(Window(0, 0, 64, 64))
    expected = rasters.block(64, 10, 25, 10, 30)  # 10 m pixels: rows 100-250 m, columns 100-300 m
    assert (got != expected).sum() <= 4 * 15  # the same square, up to a pixel at its edges


def test_the_uncertainty_is_the_spread_of_fits_with_successive_seeds(tmp_path, rasters, scene, fast):
    """An ensemble of 3 (seeds 4, 5, 6) against 3 runs with those seeds: the output is their mean and the
    uncertainty layer their standard deviation on the filled pixels, 0 on the clear ones (target's units; a
    float32 target, so that nothing is rounded or clipped before the mean is taken)."""
    s = scene(size=48)
    target = tmp_path / "target_float.tif"
    gdal.Translate(str(target), str(s["target"]), outputType=gdal.GDT_Float32, noData="none")
    cloud = rasters.block(48, 10, 30, 12, 36)
    mask = rasters.mask(target, tmp_path / "mask.tif", cloud)
    settings = dict(steps=5, stopping="fixed", anchor="none")  # fits that differ by seed

    def run(name: str, **changes) -> np.ndarray:
        uncertainty = str(tmp_path / "spread.tif") if name == "ensemble" else None
        inpaint_raster(str(target), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / f"{name}.tif"),
                       fast(**settings, **changes), uncertainty=uncertainty)  # fmt: skip
        return rasters.info(tmp_path / f"{name}.tif")["data"].astype(np.float64)

    members = np.stack([run(f"seed_{seed}", seed=seed) for seed in (4, 5, 6)])
    mean = run("ensemble", seed=4, ensemble=3)
    spread = rasters.info(tmp_path / "spread.tif")
    assert (spread["size"], spread["bands"], spread["dtype"]) == ((48, 48), 3, gdal.GDT_Float32)
    assert (spread["data"][:, ~cloud] == 0).all()
    assert spread["data"][:, cloud].min() > 0
    np.testing.assert_allclose(mean[:, cloud], members.mean(axis=0)[:, cloud], rtol=1e-5, atol=1e-2)
    np.testing.assert_allclose(spread["data"][:, cloud], members.std(axis=0)[:, cloud], rtol=1e-4, atol=1e-2)


def averaged_to(path: Path, bounds: tuple, width: int, height: int) -> np.ndarray:
    """A raster averaged onto ``width`` x ``height`` px over ``bounds`` (GDAL's average resampling), float64."""
    warped = gdal.Warp("", str(path), format="MEM", outputBounds=bounds, width=width, height=height,
                       resampleAlg="average")  # fmt: skip
    return warped.ReadAsArray().astype(np.float64)


def test_super_resolution_is_tiled_on_the_guide_grid_at_integer_and_non_integer_factors(
    tmp_path, sr_scene, rasters, s2, fast
):
    """x2 (B8A, 20 m), x6 (B09, 60 m, its grid shifted by 20 m from the guides') and x3.43 (14 px over the 48 px
    guides), in tiles of 24 output px. With no sensor blur, each result averages back to its input read over the
    guides' extent, to the data type's rounding; with one, it degrades back through it."""
    guides = [str(g) for g in sr_scene["guides"]]
    guide = rasters.info(guides[0])
    x, _, _, y, _, _ = guide["geotransform"]
    extent = (x, y - 480, x + 480, y)
    odd = tmp_path / "b8a_34m.tif"  # 480 m / 14 px: a factor that does not divide the grid
    gdal.Warp(str(odd), str(s2 / "2018-08-05" / "B8A.tif"), outputBounds=extent, width=14, height=14,
              resampleAlg="average")  # fmt: skip
    b09 = rasters.crop(s2 / "2018-08-05" / "B09.tif", tmp_path / "b09_60m.tif", 70, 63, 8)
    for low, pixels in ((sr_scene["low"], 24), (b09, 8), (odd, 14)):
        out = tmp_path / f"{low.stem}_10m.tif"
        result = super_resolve_raster(str(low), guides, str(out), fast(tile_size=24, tile_overlap=4, sensor_blur=0))
        assert result.tiles == result.fitted > 1, low.name
        got = rasters.info(out)
        assert (got["size"], got["geotransform"]) == (guide["size"], guide["geotransform"])
        assert got["dtype"] == rasters.info(low)["dtype"]
        given = averaged_to(low, extent, pixels, pixels)
        back = averaged_to(out, extent, pixels, pixels)
        assert np.abs(back - given).max() <= 1, low.name  # rounding to uint16
    untiled = tmp_path / "odd_untiled.tif"
    assert super_resolve_raster(str(odd), guides, str(untiled), fast(sensor_blur=0)).tiles == 1
    assert np.abs(averaged_to(untiled, extent, 14, 14) - rasters.info(odd)["data"]).max() <= 1  # rounding
    blurred = tmp_path / "odd_blurred.tif"
    result = super_resolve_raster(str(odd), guides, str(blurred), fast(tile_size=24, tile_overlap=4, sensor_blur=0.5))
    assert result.notes[0] == "sensor blur 0.5 low-resolution pixels (given)"
    sensor = Degradation("area", (48, 48), (14, 14), blur=0.5)
    back = sensor.numpy(rasters.info(blurred)["data"].astype(float))
    assert np.abs(back - rasters.info(odd)["data"]).max() <= 1  # rounding


def test_super_resolution_keeps_the_inputs_nodata(tmp_path, sr_scene, rasters, s2, fast):
    """A swath edge (nodata) in the low-resolution input stays nodata in the output, pixel block by pixel block."""
    low = gdal.Open(str(sr_scene["low"]), gdal.GA_Update)
    band = low.GetRasterBand(1)
    band_values = band.ReadAsArray()
    band_values[:, :8] = 0  # the left third of the 20 m band: no data
    band.WriteArray(band_values)
    band.SetNoDataValue(0)
    low = None
    guides = [str(g) for g in sr_scene["guides"]]
    super_resolve_raster(str(sr_scene["low"]), guides, str(tmp_path / "sr.tif"), fast())
    out = rasters.info(tmp_path / "sr.tif")
    assert out["nodata"] == 0
    assert (out["data"][:, :16] == 0).all() and (out["data"][:, 16:] > 0).all()
    # An input without a nodata value that covers only part of the guides: nothing can mark the rest
    # missing, so the fitted values are kept there.
    part = rasters.crop(s2 / "2018-08-05" / "B8A.tif", tmp_path / "b8a_part.tif", 210, 190, 20)
    super_resolve_raster(str(part), guides, str(tmp_path / "part.tif"), fast())
    out = rasters.info(tmp_path / "part.tif")
    assert out["nodata"] is None and out["size"] == (48, 48) and (out["data"][40:, 40:] > 0).all()


def test_a_data_type_the_output_cannot_take_is_refused_before_fitting(tmp_path, rasters, scene, fast):
    s = scene(size=48)
    int64 = tmp_path / "int64.tif"
    gdal.Translate(str(int64), str(s["target"]), outputType=gdal.GDT_Int64)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", rasters.block(48, 10, 30, 12, 36))
    steps = []
    with pytest.raises(InputError, match="data type Int64, which is not supported"):
        inpaint_raster(str(int64), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"),
                       fast(), callbacks=Callbacks(lambda step, _: steps.append(step)))  # fmt: skip
    assert steps == [] and not (tmp_path / "o.tif").exists()


def test_the_spread_is_zero_where_every_fit_keeps_the_instant_estimate(tmp_path, rasters, s2, fast):
    """A float32 target that is a linear function of its guide: the instant estimate is exact, no step of the
    network beats it on the held-out pixels, every member keeps it, and the uncertainty is 0 (it then says nothing
    about the error, as the README warns)."""
    guide = rasters.stack([s2 / "2018-07-21" / f"{b}.tif" for b in RGB], tmp_path / "guide.tif", 400, 400, 48)
    target = tmp_path / "target.tif"
    gdal.Translate(str(target), str(guide), outputType=gdal.GDT_Float32, scaleParams=[[0, 1, 100, 101.5]])
    mask = rasters.mask(target, tmp_path / "mask.tif", rasters.block(48, 12, 36, 10, 30))
    spread = tmp_path / "spread.tif"
    result = inpaint_raster(str(target), CloudMask(str(mask)), [str(guide)], str(tmp_path / "o.tif"),
                            fast(ensemble=2, steps=10, check_every=5), uncertainty=str(spread))  # fmt: skip
    assert result.chosen_steps == [0]
    assert (rasters.info(spread)["data"] == 0).all()


def test_the_uncertainty_layer_may_be_neither_an_input_nor_the_output(tmp_path, rasters, scene, fast):
    s = scene(size=48)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", rasters.block(48, 10, 30, 12, 36))
    before = s["target"].read_bytes()
    for uncertainty, message in (
        (s["target"], "is an input file"),
        (tmp_path / "o.tif", "also given for another output"),
    ):
        with pytest.raises(InputError, match=message):
            inpaint_raster(str(s["target"]), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"),
                           fast(ensemble=2), uncertainty=str(uncertainty))  # fmt: skip
    assert s["target"].read_bytes() == before and not (tmp_path / "o.tif").exists()
