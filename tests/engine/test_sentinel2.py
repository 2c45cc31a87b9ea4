"""The Sentinel-2 cloud-free product (core.pipeline.sentinel2) on small real products built from ../shared/data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from mcpn.core.callbacks import Callbacks
from mcpn.core.errors import InputError
from mcpn.core.model.degradation import Degradation
from mcpn.core.pipeline.sentinel2 import sentinel2_product
from mcpn.core.raster.masks import CloudMask
from mcpn.core.raster.sentinel2 import BANDS, open_product
from osgeo import gdal
from s2_product import build  # scripts/, put on sys.path by tests/conftest.py

TEN = ["B02", "B03", "B04", "B08"]


def truth(folder, band: str, x: int, y: int, size: int) -> np.ndarray:
    """A band of the clear date on the product's window at its own resolution."""
    factor = BANDS[band][0] // 10
    return gdal.Open(str(folder / f"{band}.tif")).ReadAsArray(x // factor, y // factor, size // factor, size // factor)


def block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    h, w = values.shape
    return values.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def test_level2a_product_offset_removed_clear_pixels_kept(s2_products, rasters, fast):
    """Ten named bands on the 10 m grid, nodata 0; clear 10 m pixels equal the reflectance after the offset, the
    clear 20 m pixels average back to it; the cloud and shadow are filled, and the mask says where. One progress
    bar runs through the three fits."""
    scene = s2_products()
    size, tmp = scene["size"], scene["tmp"]
    out, filled, progress = tmp / "product.tif", tmp / "filled.tif", []
    callbacks = Callbacks(progress=lambda done, total: progress.append(done / total))
    result = sentinel2_product(
        scene["target"].safe, [scene["guide"].safe], str(out), fast(steps=20), filled=str(filled), callbacks=callbacks
    )
    assert result.fitted == 3  # 10 m fill, 20 m fill, 20 m -> 10 m
    assert progress == sorted(progress) and progress[0] < 1 / 3 and progress[-1] > 2 / 3
    got = rasters.info(out)
    assert got["size"] == (size, size) and got["bands"] == 10 and got["nodata"] == 0
    assert got["dtype"] == gdal.GDT_UInt16
    assert got["descriptions"] == list(BANDS)
    ds = gdal.Open(str(out))
    assert ds.GetRasterBand(5).GetMetadataItem("WAVELENGTH") == "704.1"
    first = gdal.Open(str(scene["truth"] / "B02.tif")).GetGeoTransform()
    assert got["geotransform"][0] == pytest.approx(first[0] + 420 * 10)
    assert got["geotransform"][3] == pytest.approx(first[3] - 378 * 10)
    cloud = scene["target"].cloud
    (blur_note,) = [note for note in result.notes if note.startswith("sensor blur ")]
    sensor = Degradation("area", (size, size), (size // 2, size // 2), blur=float(blur_note.split()[2]))
    for index, band in enumerate(BANDS):
        clean = truth(scene["truth"], band, 420, 378, size).astype(np.float64)
        values = got["data"][index].astype(np.float64)
        if BANDS[band][0] == 10:
            np.testing.assert_array_equal(values[~cloud], clean[~cloud])
            rasters.assert_filled(values, np.where(cloud, -1, clean), clean, cloud)
        else:
            clear = ~block_mean(cloud, 2).astype(bool)  # the 20 m input there is the clear date's
            np.testing.assert_allclose(sensor.numpy(values)[clear], clean[clear], atol=1.0)
    mask = gdal.Open(str(filled)).ReadAsArray()
    np.testing.assert_array_equal(mask, cloud.astype(np.uint8))


def test_inputs_folder_metadata_file_and_zip(s2_products, tmp_path):
    """A product opens from its folder, its metadata file or its zip; the baseline 04.00 offset is read."""
    scene = s2_products()
    target = scene["target"]
    archive = shutil.make_archive(str(tmp_path / "S2B_MSIL2A_zipped"), "zip", tmp_path, target.safe.split("/")[-1])
    for path in (target.safe, target.metadata, archive):
        product = open_product(path)
        assert product.level == "2A" and product.tile == "T30STF" and product.orbit == "R094"
        assert product.offset("B02") == -1000 and product.offset("B12") == -1000
    assert open_product(scene["guide"].safe).offset("B02") == 0


def test_area_of_interest_and_ten_metre_bands_only(s2_products, rasters, fast):
    """An area of interest is snapped to the 20 m pixels; 10 m bands alone need one fit only."""
    scene = s2_products()
    gt = gdal.Open(str(scene["truth"] / "B02.tif")).GetGeoTransform()
    x0, y1 = gt[0] + 420 * 10, gt[3] - 378 * 10
    area = (x0 + 105, y1 - 305, x0 + 395, y1 - 95)  # 290 x 210 m, not on the 20 m pixels
    out = scene["tmp"] / "small.tif"
    result = sentinel2_product(
        scene["target"].metadata, [scene["guide"].metadata], str(out), fast(), area=area, bands=TEN
    )
    got = rasters.info(out)
    assert result.fitted == 1 and got["descriptions"] == TEN
    assert got["size"] == (30, 24)  # x 100-400 m, y 80-320 m from the corner
    assert got["geotransform"][0] == pytest.approx(x0 + 100) and got["geotransform"][3] == pytest.approx(y1 - 80)


def test_level1c_needs_a_mask(s2_products, rasters, fast):
    """Level-1C has no scene classification: the run asks for a mask, and runs with one."""
    scene = s2_products(level="1C")
    out = scene["tmp"] / "l1c.tif"
    with pytest.raises(InputError, match="Level-1C .* give a cloud mask layer"):
        sentinel2_product(scene["target"].safe, [scene["guide"].safe], str(out), fast(), bands=TEN)
    assert not out.exists()
    template = next(Path(scene["target"].safe).rglob("*_B02.jp2"))
    mask = rasters.mask(template, scene["tmp"] / "mask.tif", scene["target"].cloud)
    sentinel2_product(
        scene["target"].safe, [scene["guide"].safe], str(out), fast(), mask=CloudMask(str(mask)), bands=TEN
    )
    values = rasters.info(out)["data"][0].astype(np.float64)
    clean = truth(scene["truth"], "B02", 420, 378, scene["size"])
    np.testing.assert_array_equal(values[~scene["target"].cloud], clean[~scene["target"].cloud])


def test_guide_cloudy_over_part_of_the_gaps(s2_products, s2, rasters, fast):
    """Where every guide is cloudy too the pixels stay nodata, marked 2, and the log says how many and where."""
    scene = s2_products()
    size = scene["size"]
    overlap = np.zeros((size, size), bool)
    overlap[size // 4 : size // 2, size // 4 : size // 2] = True  # half of the target's cloud
    guide = build(
        str(s2 / "2018-07-21"), str(scene["tmp"] / "g"), 420, 378, size, date="20180721T110621", cloud=overlap
    )
    out, filled, said = scene["tmp"] / "out.tif", scene["tmp"] / "filled.tif", []
    sentinel2_product(
        scene["target"].safe,
        [guide.safe],
        str(out),
        fast(),
        bands=TEN,
        filled=str(filled),
        callbacks=Callbacks(log=said.append),
    )
    assert any(f"{int(overlap.sum())} of {int(scene['target'].cloud.sum())} cloudy pixels" in line for line in said)
    mask = gdal.Open(str(filled)).ReadAsArray()
    assert (mask == 2).sum() == overlap.sum() and (rasters.info(out)["data"][:, overlap] == 0).all()


@pytest.mark.parametrize("case", ["not_sentinel2", "truncated_zip", "no_overlap", "as_cloudy"])
def test_errors_in_users_words_and_no_output(s2_products, s2, tmp_path, fast, case):
    scene = s2_products()
    target, guides = scene["target"].safe, [scene["guide"].safe]

    if case == "not_sentinel2":
        target, expected = str(s2 / "2018-08-05" / "B02.tif"), "is not a Sentinel-2 product"
    elif case == "truncated_zip":
        archive = shutil.make_archive(str(tmp_path / "S2B_MSIL2A_partial"), "zip", tmp_path, target.split("/")[-1])
        data = Path(archive).read_bytes()
        Path(archive).write_bytes(data[: len(data) // 2])
        target, expected = archive, "still being downloaded"
    elif case == "no_overlap":
        far = build(str(s2 / "2018-07-21"), str(tmp_path / "far"), 900, 900, 48, tile="T30STG", orbit=51)
        guides, expected = [far.safe], r"guide product .*T30STG.*R051.* does not overlap"
    else:
        cloudy = build(str(s2 / "2018-07-21"), str(tmp_path / "cloudy"), 420, 378, 48, cloud=scene["target"].cloud)
        guides, expected = [cloudy.safe], "Every guide product is cloudy"
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "out.tif"
    with pytest.raises(InputError, match=expected):
        sentinel2_product(target, guides, str(out), fast(), filled=str(tmp_path / "filled.tif"))
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_radar_guide_covers_what_every_guide_product_hides(s2_products, s2, fast):
    """A guide product as cloudy as the target is no error when a radar guide covers the gaps: all are filled."""
    scene = s2_products()
    cloudy = build(str(s2 / "2018-07-21"), str(scene["tmp"] / "cloudy"), 420, 378, 48, cloud=scene["target"].cloud)
    radar = str(s2 / "2018-07-21" / "B08.tif")  # any raster of positive values over the place stands in for sigma0
    out, filled = scene["tmp"] / "out.tif", scene["tmp"] / "filled.tif"
    sentinel2_product(
        scene["target"].safe, [cloudy.safe], str(out), fast(), radar_guides=[radar], bands=TEN, filled=str(filled)
    )
    np.testing.assert_array_equal(gdal.Open(str(filled)).ReadAsArray(), scene["target"].cloud)
