"""One network for the scene: fitted on a few tiles, applied to every tile, each tile choosing by its own evidence."""

from __future__ import annotations

import numpy as np
from mcpn.core import anchors
from mcpn.core.callbacks import Callbacks
from mcpn.core.choices import TILE_FITS, Scope
from mcpn.core.classic import Anchor
from mcpn.core.config import Settings
from mcpn.core.model import device, fitting
from mcpn.core.model import scene as scene_model
from mcpn.core.pipeline import tiles
from mcpn.core.pipeline.inpainting import inpaint_raster
from mcpn.core.pipeline.runs import NOTE_VARIANTS, summarised
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
    monkeypatch.setattr(tiles.TileJob, "read", lambda job, times: reads.append(job.fitted_on) or original(job, times))
    logs: list[str] = []
    settings = fast(scope="scene", steps=30, tile_size=32, tile_overlap=8)
    result = inpaint_raster(str(poisoned), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"),
                            settings, callbacks=Callbacks(log=logs.append))  # fmt: skip
    assert result.fitted == result.tiles > 3
    # three tiles to choose the scene's estimate on, the same with that estimate to fit on, then every tile once,
    # there with its estimate as it is (cross-fitting an interpolation serves only a fit)
    assert reads == [True] * 2 * 3 + [False] * result.tiles
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


def test_the_scene_chooses_each_bands_estimate_once_on_the_tiles_it_is_fitted_on(
    tmp_path, monkeypatch, rasters, scene, fast
):
    s = scene(size=96)
    cloud = np.zeros((96, 96), bool)
    for row in (8, 40, 72):
        for col in (8, 40, 72):
            cloud[row : row + 14, col : col + 14] = True
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", cloud)
    judged = []  # the candidate sets computed: None when every candidate is judged
    original = anchors.inpainting_estimates
    monkeypatch.setattr(tiles, "SCENE_TILES", 3)
    monkeypatch.setattr(
        anchors,
        "inpainting_estimates",
        lambda t, k, g, names=None, at=None: judged.append(names) or original(t, k, g, names, at),
    )
    logs: list[str] = []
    result = inpaint_raster(str(s["target"]), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"),
                            fast(scope="scene", steps=10, tile_size=32, tile_overlap=8),
                            callbacks=Callbacks(log=logs.append))  # fmt: skip
    chosen = [line for line in logs if "instant estimate for every tile" in line]
    assert len(chosen) == 1 and "held-out pixels of 3 tiles" in chosen[0]
    assert judged.count(None) == 3  # every candidate on the three fitted tiles only
    after = judged[len(judged) - judged[::-1].index(None) + 1 :]  # after the last judged tile's own final estimate
    named = {name for names in after for name in names}
    assert named == {line.split(" ", 2)[2] for line in chosen[0].split(": ", 1)[1].split(", ")}
    assert result.fitted == result.tiles > 3


def test_the_scene_estimate_has_the_least_mean_held_out_error_among_candidates_judged_everywhere():
    image = np.zeros((2, 4, 4))
    first = Anchor(image, ["a", "a"], {"a": np.array([0.1, 0.3]), "b": np.array([0.12, 0.1]), "c": np.array([0, 0])})
    second = Anchor(image, ["b", "b"], {"a": np.array([0.5, 0.3]), "b": np.array([0.2, 0.2])})
    unjudged = Anchor(image, ["a", "a"])
    assert anchors.scene_choice([first, second, unjudged]) == ["b", "b"]  # not "c", missing on the second tile
    assert anchors.scene_choice([unjudged]) is None


def test_the_refinement_fits_the_scene_network_further_on_each_tile_and_keeps_it_by_evidence(
    tmp_path, monkeypatch, rasters, scene, fast
):
    s = scene(size=64)
    cloud = rasters.block(64, 6, 58, 20, 44)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", cloud)
    starts = []  # where each refinement starts (the scene fit itself is called through core.model.device)
    original = scene_model.fit_shared
    monkeypatch.setattr(scene_model, "fit_shared", lambda *a: starts.append(a[4]) or original(*a))
    settings = fast(scope="scene", steps=10, refine_steps=10, tile_size=32, tile_overlap=8)
    result = inpaint_raster(str(s["target"]), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"),
                            settings)  # fmt: skip
    assert len(starts) == result.tiles  # one refinement a tile
    assert all(step == 10 for step, _ in starts)  # counted on after the scene fit's ten steps
    assert result.stages.get("refinement", 0) > 0 and "prediction" not in result.stages
    monkeypatch.setattr(fitting, "gain_lower_bound", lambda gain, weight, labels, seed=0: -1.0)
    result = inpaint_raster(str(s["target"]), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o2.tif"),
                            settings)  # fmt: skip
    assert set(result.chosen_steps) == {0}  # no gain counts: every tile keeps its estimate, refined or not


def test_an_uncertainty_ensemble_fits_every_tile_even_when_the_scene_network_is_asked_for(
    tmp_path, rasters, scene, fast
):
    s = scene(size=64)
    cloud = rasters.block(64, 6, 58, 20, 44)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", cloud)
    logs: list[str] = []
    settings = fast(scope="scene", ensemble=2, steps=5, stopping="fixed", anchor="none", tile_size=32, tile_overlap=8)
    inpaint_raster(str(s["target"]), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"), settings,
                   uncertainty=str(tmp_path / "spread.tif"), callbacks=Callbacks(log=logs.append))  # fmt: skip
    assert rasters.info(tmp_path / "spread.tif")["data"][:, cloud].min() > 0  # not a silent zero spread
    assert any("one network per tile, not for the scene" in line for line in logs)


def test_the_time_limit_stops_the_scene_network_and_every_tile_still_gets_its_output(
    tmp_path, monkeypatch, rasters, scene, fast
):
    s = scene(size=64)
    cloud = rasters.block(64, 6, 58, 20, 44)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", cloud)
    fits = []
    original = device.fit_shared
    monkeypatch.setattr(device, "fit_shared", lambda *a: fits.append(original(*a)) or fits[-1])
    logs: list[str] = []
    # 12 s: room beyond what no limit skips (reading the tiles, choosing the estimate), also on a loaded CPU
    settings = fast(scope="scene", steps=10**6, tile_size=32, tile_overlap=8, time_limit=0.2)
    result = inpaint_raster(str(s["target"]), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"),
                            settings, callbacks=Callbacks(log=logs.append))  # fmt: skip
    assert any(line.startswith("scene network: stopped at its share of the time limit") for line in logs)
    assert any("s kept for the instant estimates and the network's passes over 9 tiles" in line for line in logs)
    assert result.stages["fit"] < 12.0  # the limit less the time kept for the tiles, and one step over at most
    assert result.fitted == result.tiles and np.isfinite(rasters.info(tmp_path / "o.tif")["data"]).all()
    assert result.seconds < 12.0 + 1.5  # the whole run: the tiles were given the time they needed
    assert abs(len(fits[0]) - scene_model.CHECKPOINTS) <= 3  # spread over the steps it had time for


def test_tiles_behind_the_time_limit_keep_their_instant_estimate_and_the_run_ends_near_it(
    tmp_path, monkeypatch, rasters, scene, fast
):
    s = scene(size=64)
    cloud = rasters.block(64, 6, 58, 20, 44)
    mask = rasters.mask(s["target"], tmp_path / "mask.tif", cloud)
    monkeypatch.setattr(tiles, "APPLICATION_MARGIN", 0.0)  # nothing kept for the tiles: the fit takes it all
    settings = fast(scope="scene", steps=10**6, tile_size=32, tile_overlap=8, time_limit=0.05)  # 3 s
    result = inpaint_raster(str(s["target"]), CloudMask(str(mask)), [str(s["guide"])], str(tmp_path / "o.tif"),
                            settings)  # fmt: skip
    assert result.fitted == result.tiles and set(result.chosen_steps) == {0}
    assert f"{result.tiles} of {result.tiles} tile(s) stopped at their share of it" in " ".join(result.notes)
    assert result.seconds < 3.0 + 3.0  # over by what no limit skips: reading the tiles, their estimates, the write
    assert np.isfinite(rasters.info(tmp_path / "o.tif")["data"]).all()


def test_super_resolution_of_more_tiles_than_are_fitted_one_by_one_gets_one_network_for_the_scene(sr_scene, fast):
    assert Settings().resolved(super_resolution=True, tiles=TILE_FITS).scope is Scope.TILE
    assert Settings().resolved(super_resolution=True, tiles=TILE_FITS + 1).scope is Scope.SCENE
    assert Settings(scope="tile").resolved(super_resolution=True, tiles=10**4).scope is Scope.TILE  # the user's
    logs: list[str] = []
    result = super_resolve_raster(str(sr_scene["low"]), [str(g) for g in sr_scene["guides"]],
                                  str(sr_scene["tmp"] / "o.tif"), fast(steps=2, tile_size=16, tile_overlap=6),
                                  callbacks=Callbacks(log=logs.append))  # fmt: skip
    assert result.tiles > TILE_FITS
    assert any(f"one network for the scene (auto: one per tile up to {TILE_FITS})" in line for line in logs)
    assert any(line.startswith("fitting one network for the scene on") for line in logs)
    estimates = [note for note in result.notes if note.startswith("the network corrects an instant estimate")]
    assert len(estimates) <= NOTE_VARIANTS  # each tile's detail share is not one more line of the report


def test_the_notes_of_many_tiles_are_summed_up_not_listed_one_by_one():
    notes = [f"the network corrects an instant estimate: bicubic + {share}% of the detail" for share in range(30)]
    assert summarised([*notes, "tiled: 30 tiles", "tiled: 30 tiles", "kept: a", "kept: b"]) == [
        "the network corrects an instant estimate: 30 variants over the tiles, the first: bicubic + 0% of the detail",
        "tiled: 30 tiles",
        "kept: a",
        "kept: b",
    ]


def test_by_default_clouds_are_filled_with_one_network_for_the_scene_and_super_resolution_per_tile(sr_scene, fast):
    assert Settings().resolved().scope is Scope.SCENE
    assert Settings().resolved(super_resolution=True).scope is Scope.TILE
    assert Settings(scope="tile").resolved().scope is Scope.TILE  # a choice the user made stays
    logs: list[str] = []
    result = super_resolve_raster(str(sr_scene["low"]), [str(g) for g in sr_scene["guides"]],
                                  str(sr_scene["tmp"] / "o.tif"), fast(steps=2, tile_size=32, tile_overlap=8),
                                  callbacks=Callbacks(log=logs.append))  # fmt: skip
    assert result.fitted == result.tiles > 1 and not any("network for the scene" in line for line in logs)
