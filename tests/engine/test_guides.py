"""What the guides do: an informative guide gives a better fill than a constant one, and its invalid pixels
(NaN, nodata) are left out of its loss. Small synthetic scenes, a few dozen steps at most, on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mcpn.core.config import Settings
from mcpn.core.model.fitting import fit
from mcpn.core.pipeline.api import inpaint
from mcpn.core.pipeline.inpainting import inpaint_raster
from mcpn.core.pipeline.sample import Sample, domain_scalings
from mcpn.core.raster.masks import CloudMask
from osgeo import gdal

SIZE = 48
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def shapes_scene():
    """Discs of random values on a smooth background (2 bands); the guide has the same discs with other values
    (a different sensor), so only the guide says where the discs under the cloud are."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    discs = np.zeros((SIZE, SIZE))
    for _ in range(14):
        cy, cx, r = rng.uniform(0, SIZE), rng.uniform(0, SIZE), rng.uniform(3, 7)
        discs[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0.5, 1)
    background = 0.2 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    target = np.stack([discs + background, 0.5 * discs - background])
    guide = np.stack([np.sqrt(discs) + 0.05, discs * 0.3 + 0.1 * np.cos(xx / 5)])
    cloud = np.zeros((SIZE, SIZE), bool)
    cloud[14:34, 12:36] = True
    return target, cloud, guide


def fill_error(result, target, cloud) -> float:
    return float(np.sqrt(np.mean((result.image[:, cloud] - target[:, cloud]) ** 2)))


def test_an_informative_guide_fills_better_than_a_constant_one(shapes_scene):
    """The default fit (instant estimate from the guides, corrected by the network) with the guide that shows the
    discs, against the same fit with a constant guide: a much smaller error under the cloud."""
    target, cloud, guide = shapes_scene
    constant = np.full_like(guide, 0.5)
    constant[:, 0, 0] = 0.6  # a band must not be exactly constant to be a guide at all
    informative, flat = (
        fill_error(inpaint(target, cloud, [g], steps=10, check_every=5, device="cpu"), target, cloud)
        for g in (guide, constant)
    )
    assert informative < 0.5 * flat


@pytest.mark.parametrize("method", ["stacked", "direct", "emergent"])
def test_nan_guide_pixels_do_not_enter_the_guides_loss(shapes_scene, method):
    """A guide with NaN pixels gives exactly the fit of the same guide whose pixels there are valid but left out of
    its loss; counted in the loss, those pixels change the fit. The network starts from noise (no anchor), so the
    guide reaches the fit through its loss alone."""
    target, cloud, guide = shapes_scene
    poisoned_pixels = np.zeros_like(cloud)
    poisoned_pixels[4:20, 30:46] = True  # under the cloud and outside it
    with_nan = np.where(poisoned_pixels, np.nan, guide)
    known = ~cloud
    settings = Settings(method=method, anchor="none", stopping="fixed", steps=3, device="cpu")
    scalings = domain_scalings(target, known, [guide])  # the same normalisation for all three

    def problem(guide_values):
        return Sample.prepare(target, known, [guide_values], (SIZE, SIZE), settings, scalings=scalings).problem()

    poisoned, masked, counted = problem(with_nan), problem(guide), problem(guide)
    masked.guide_valid[0][:, :, torch.from_numpy(poisoned_pixels)] = (
        0  # valid values, left out of this guide's loss only
    )
    assert not torch.equal(poisoned.guides[0], masked.guides[0])  # zeros there against the real values
    outputs = [fit([p], settings, CPU)[0].output for p in (poisoned, masked, counted)]
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert not np.array_equal(outputs[0], outputs[2])


def test_nodata_in_a_guide_raster_is_read_as_nan(tmp_path, rasters, s2_scene, fast):
    """A uint16 guide with a nodata value and the same guide as float32 with NaN there give the same fill."""
    holes = rasters.block(48, 0, 24, 0, 24)
    guide = gdal.Open(str(s2_scene["guide"])).ReadAsArray().astype(np.float32)
    guide[:, holes] = np.nan
    paths = []
    for name, gdal_type, nodata in (("nodata", gdal.GDT_UInt16, 0.0), ("nan", gdal.GDT_Float32, None)):
        path = tmp_path / f"guide_{name}.tif"
        gdal.Translate(str(path), str(s2_scene["guide"]), outputType=gdal_type)
        ds = gdal.Open(str(path), gdal.GA_Update)
        for i in range(3):
            ds.GetRasterBand(i + 1).WriteArray(np.nan_to_num(guide[i], nan=0.0) if nodata == 0 else guide[i])
            if nodata is not None:
                ds.GetRasterBand(i + 1).SetNoDataValue(nodata)
        ds = None
        out = tmp_path / f"out_{name}.tif"
        inpaint_raster(str(s2_scene["target"]), CloudMask(str(s2_scene["mask"])), [str(path)], str(out), fast())
        paths.append(out)
    first, second = (rasters.info(p)["data"] for p in paths)
    np.testing.assert_array_equal(first, second)
    cloud = rasters.info(s2_scene["mask"])["data"] == 1
    assert (first[:, cloud] != rasters.info(s2_scene["target"])["data"][:, cloud]).any()  # the cloud was filled
