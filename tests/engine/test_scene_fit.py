"""One network for the scene: fitted on a few tiles, applied to every tile, each tile choosing by its own evidence."""

from __future__ import annotations

import numpy as np
from mcpn.core.callbacks import Callbacks
from mcpn.core.model import fitting
from mcpn.core.pipeline import tiles
from mcpn.core.pipeline.inpainting import inpaint_raster
from mcpn.core.pipeline.super_resolution import super_resolve_raster
from mcpn.core.raster.masks import CloudMask


def test_a_scene_network_fills_every_tile_on_the_tiles_grid(tmp_path, monkeypatch, rasters, scene, fast):
    s = scene(size=96)
    cloud = np.zeros((96, 96), bool)
    for row in (8, 40, 72):  # a cloud in every tile
        for col in (8, 40, 72):
            cloud[row : row + 14, col : col + 14] = True
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", cloud)
    poisoned = rasters.poisoned(s["target"], tmp_path / "poisoned.tif", cloud)
    reads = []
    original = tiles.TileJob.read
    monkeypatch.setattr(tiles, "SCENE_TILES", 3)
    monkeypatch.setattr(tiles.TileJob, "read", lambda job, times: reads.append(job.index) or original(job, times))
    logs: list[str] = []
    settings = fast(scope="scene", steps=30, tile_size=32, tile_overlap=8)
    result = inpaint_raster(str(poisoned), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"),
                            settings, callbacks=Callbacks(log=logs.append))  # fmt: skip
    assert result.fitted == result.tiles > 3
    assert len(reads) == 3 + result.tiles  # three tiles to fit the network on, then every tile once
    assert any("one network for the scene on 3 of" in line for line in logs)
    info = rasters.info(tmp_path / "o.tif")
    assert info["data"].dtype == rasters.info(poisoned)["data"].dtype
    data = [rasters.info(p)["data"] for p in (tmp_path / "o.tif", poisoned, s["target"], s["guide"])]
    rasters.assert_filled(*data[:3], cloud, data[3:])


def test_each_tile_keeps_its_instant_estimate_unless_its_own_evidence_says_otherwise(
    tmp_path, monkeypatch, rasters, scene, fast
):
    s = scene(size=64)
    cloud = rasters.block(64, 6, 58, 20, 44)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", cloud)
    monkeypatch.setattr(fitting, "gain_lower_bound", lambda gain, weight, labels, seed=0: -1.0)
    result = inpaint_raster(str(s["target"]), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"),
                            fast(scope="scene", steps=20, tile_size=32, tile_overlap=8))  # fmt: skip
    assert result.chosen_steps and set(result.chosen_steps) == {0}  # no gain counts: every tile keeps its estimate


def test_super_resolution_with_a_scene_network_fills_every_tile(sr_scene, fast, rasters):
    out = sr_scene["tmp"] / "o.tif"
    result = super_resolve_raster(str(sr_scene["low"]), [str(g) for g in sr_scene["guides"]], str(out),
                                  fast(scope="scene", steps=10, tile_size=32, tile_overlap=8))  # fmt: skip
    assert result.fitted == result.tiles > 1
    assert np.isfinite(rasters.info(out)["data"].astype(float)).all()
