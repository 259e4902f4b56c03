"""Whole-scene mapping through the per-window probability hook (a stand-in for the model that
returns known probabilities): windowing, seam blending, object merging across windows,
nodata skipping, reprojected pairs, resume, grids and the files written."""
import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from rasterio.transform import from_origin

from earthmind_sdk.errors import AlignmentError, JobInterrupted
from earthmind_sdk.inference.map import WindowAnswer, cell_bounds, map_windows
from earthmind_sdk.inference.map_job import map_scenes
from earthmind_sdk.inference.windows import SceneReader, WindowPlan, blend_weights
from earthmind_sdk.jobs import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
UTM = from_origin(500000, 5000000, 10, 10)


def write_scene(path, h, w, *, nodata_rect=None, crs="EPSG:32633", transform=UTM, seed=0):
    data = np.random.default_rng(seed).integers(1, 250, (3, h, w)).astype(np.uint8)
    if nodata_rect is not None:
        r0, r1, c0, c1 = nodata_rect
        data[:, r0:r1, c0:c1] = 0
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=3, dtype="uint8", crs=crs,
                       transform=transform, nodata=0) as dst:
        dst.write(data)
    return path


def disk(rows, cols, r=50, c=70, radius=45, value=0.9):
    return (((rows - r) ** 2 + (cols - c) ** 2) < radius ** 2).astype(np.float32) * value


class FieldPredictor:
    """Returns ``field`` (a function of scene rows/cols) on each window; records the calls."""

    def __init__(self, field=disk):
        self.field, self.calls, self.windows = field, 0, []

    def __call__(self, windows):
        self.calls += 1
        out = []
        for w in windows:
            self.windows.append(w)
            rows, cols = np.mgrid[w.window.slices]
            out.append(WindowAnswer(self.field(rows, cols), "Sure, [SEG].", 1))
        return out


def read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.profile


# -- windows --------------------------------------------------------------------------------------
@pytest.mark.parametrize("h,w,size,overlap", [(100, 140, 40, 10), (37, 200, 64, 16), (64, 64, 64, 8), (10, 10, 32, 4)])
def test_plan_covers_the_grid_with_equal_overlapping_windows(h, w, size, overlap):
    plan = WindowPlan(h, w, size, overlap)
    seen = np.zeros((h, w), int)
    for win in plan:
        assert (win.height, win.width) == (min(size, h), min(size, w))
        seen[win.slices] += 1
    assert (seen >= 1).all()
    for offs, n in ((plan.row_offsets, h), (plan.col_offsets, w)):
        assert offs[0] == 0 and offs[-1] + min(size, n) == n
        assert all(b - a <= size - overlap for a, b in zip(offs, offs[1:]))  # neighbours share >= overlap
    block = (5, 33, 12, 70)
    brute = {x.index for x in plan if x.row_off < block[1] and x.row_off + x.height > block[0]
             and x.col_off < block[3] and x.col_off + x.width > block[2]}
    assert {x.index for x in plan.touching(*block)} == brute


def test_plan_refuses_bad_sizes():
    with pytest.raises(Exception, match="overlap"):
        WindowPlan(10, 10, 8, 8)


def test_blend_weights_fall_towards_borders():
    wts = blend_weights(20, 30, 6)
    assert wts.min() > 0 and wts.max() == 1.0
    assert wts[10, 15] == 1.0 and wts[0, 0] < wts[1, 1] < wts[3, 3] < wts[6, 6]
    assert np.allclose(wts, wts[::-1, ::-1])


def test_cells_tile_the_axis():
    plan = WindowPlan(100, 100, 40, 10)
    cells = cell_bounds(plan.row_offsets, 40, 100)
    assert cells[0][0] == 0 and cells[-1][1] == 100
    assert all(a[1] == b[0] for a, b in zip(cells, cells[1:]))


# -- blending and objects -----------------------------------------------------------------------
def test_consistent_windows_blend_to_the_field_and_an_object_across_windows_is_one_polygon(tmp_path):
    scene = write_scene(tmp_path / "scene.tif", 100, 140)
    pred = FieldPredictor()
    res = map_windows({"optical": str(scene)}, pred, tmp_path / "out", primary="optical", stem="s",
                      window=40, overlap=10, batch_size=4, probability=True)
    assert res.windows == len(WindowPlan(100, 140, 40, 10)) == 15 and pred.calls == 4
    rows, cols = np.mgrid[0:100, 0:140]
    prob, prof = read(res.files["probability"])
    np.testing.assert_allclose(prob, disk(rows, cols), atol=1e-6)
    mask, mprof = read(res.files["mask"])
    assert (mask == (disk(rows, cols) > 0.5)).all()
    # the output grid is exactly the input's
    with rasterio.open(scene) as src:
        for p in (prof, mprof):
            assert p["crs"] == src.crs and p["transform"] == src.transform
            assert (p["height"], p["width"]) == (src.height, src.width)
    # the disk spans 3 x 4 of the 3 x 5 windows and comes out as one object, with its pixels, area and score
    assert res.objects == 1
    info = pyogrio.read_info(res.files["objects_gpkg"])
    assert info["features"] == 1 and info["crs"] == "EPSG:32633"
    _, _, geom, fields = pyogrio.raw.read(res.files["objects_gpkg"])
    names = list(info["fields"])
    pixels = int(disk(rows, cols).astype(bool).sum())
    assert fields[names.index("pixels")][0] == pixels
    assert fields[names.index("area_m2")][0] == pytest.approx(pixels * 100.0)
    assert fields[names.index("score")][0] == pytest.approx(0.9, abs=1e-5)
    import shapely

    poly = shapely.from_wkb(geom[0])
    assert poly.area == pytest.approx(pixels * 100.0)  # pixel-exact outline on the raster grid
    gj = json.loads(Path(res.files["objects_geojson"]).read_text())
    assert len(gj["features"]) == 1
    lon, lat = gj["features"][0]["geometry"]["coordinates"][0][0][0]
    assert 14 < lon < 16 and 44 < lat < 46  # reprojected to WGS 84 (UTM 33N around 500 km E, 5000 km N)
    assert not (tmp_path / "out" / ".s.work").exists()


def test_disagreeing_windows_are_averaged_with_weights_falling_towards_borders(tmp_path):
    scene = write_scene(tmp_path / "scene.tif", 40, 70)

    class ByWindow:  # window k says k / 10 everywhere
        def __call__(self, windows):
            return [WindowAnswer(np.full((w.window.height, w.window.width), w.window.index / 10, np.float32))
                    for w in windows]

    res = map_windows({"optical": str(scene)}, ByWindow(), tmp_path / "out", primary="optical", stem="s",
                      window=40, overlap=10, probability=True)
    assert res.windows == 2  # cols 0..40 and 30..70 overlap on cols 30..40
    prob, _ = read(res.files["probability"])
    assert np.allclose(prob[:, :30], 0.0) and np.allclose(prob[:, 40:], 0.1)
    seam = prob[20, 30:40]
    assert np.all(np.diff(seam) > 0)  # moves smoothly from window 0's value to window 1's
    assert 0 < seam[0] < 0.05 < seam[-1] < 0.1


def test_nothing_found_still_writes_empty_mask_and_layers(tmp_path):
    scene = write_scene(tmp_path / "scene.tif", 50, 50)
    res = map_windows({"optical": str(scene)}, FieldPredictor(lambda r, c: np.zeros(r.shape, np.float32)),
                      tmp_path / "out", primary="optical", stem="s", window=32, overlap=8)
    mask, _ = read(res.files["mask"])
    assert res.objects == 0 and not mask.any()
    assert pyogrio.read_info(res.files["objects_gpkg"])["features"] == 0
    assert json.loads(Path(res.files["objects_geojson"]).read_text())["features"] == []


def test_nodata_windows_are_skipped_and_marked_not_seen(tmp_path):
    scene = write_scene(tmp_path / "scene.tif", 64, 96, nodata_rect=(0, 64, 0, 40))
    pred = FieldPredictor()
    res = map_windows({"optical": str(scene)}, pred, tmp_path / "out", primary="optical", stem="s",
                      window=32, overlap=8)
    plan = WindowPlan(64, 96, 32, 8)
    empty = [w for w in plan if w.col_off + w.width <= 40]
    assert res.skipped == len(empty) > 0
    assert {w.window.index for w in pred.windows} == {w.index for w in plan} - {w.index for w in empty}
    mask, prof = read(res.files["mask"])
    assert prof["nodata"] == 255 and (mask[:, :24] == 255).all() and (mask[:, 40:] != 255).all()


# -- pairs -----------------------------------------------------------------------------------------
def test_pair_on_other_grid_is_warped_window_by_window_like_the_whole_scene(tmp_path):
    """Real test rasters: Sentinel-1 (20 m) is the output grid, Sentinel-2 (10 m) is warped onto it."""
    from earthmind_sdk.io import read_raster
    from earthmind_sdk.sensors.pairs import align_pair

    s1, s2 = DATA / "sentinel1_synthetic_vv_vh.tif", DATA / "sentinel2_b02_b03_b04_b08.tif"
    whole = align_pair(read_raster(s1), read_raster(s2))
    with SceneReader({"sar": str(s1), "optical": str(s2)}, "sar") as reader:
        assert (reader.height, reader.width) == (48, 48)
        for win in reader.plan(20, 5):
            got = reader.read(win)
            sar, opt = got.images["sar"], got.images["optical"]
            assert sar.transform == opt.transform == reader.window_transform(win)
            assert opt.data.shape == (4, 20, 20) and opt.band_names == ("B02", "B03", "B04", "B08")
            np.testing.assert_allclose(opt.data, whole.data[(slice(None), *win.slices)], rtol=1e-5, atol=1e-3)


def test_pair_that_does_not_overlap_is_refused_before_reading(tmp_path):
    a = write_scene(tmp_path / "a.tif", 30, 30)
    b = write_scene(tmp_path / "b.tif", 30, 30, transform=from_origin(900000, 5000000, 10, 10))
    with pytest.raises(AlignmentError, match="covers 0%"):
        with SceneReader({"sar": str(a), "optical": str(b)}, "sar"):
            pass


def test_map_scenes_pair_uses_the_sar_grid(tmp_path):
    s1, s2 = DATA / "sentinel1_synthetic_vv_vh.tif", DATA / "sentinel2_b02_b03_b04_b08.tif"
    pred = FieldPredictor(lambda r, c: disk(r, c, 24, 24, 10))
    summary = map_scenes("Please segment the flooded field.", {"sar": str(s1), "image": str(s2)},
                         str(tmp_path / "out"), predictor=pred, window=24, overlap=6, progress=False)
    assert summary["ok"] == 1 and summary["task"] == "referring_segmentation"
    rec = list(read_jsonl(summary["records"]))[0]
    assert rec["grid_sensor"] == "sar" and rec["objects"] == 1
    mask, prof = read(rec["files"]["mask"])
    with rasterio.open(s1) as src:
        assert prof["transform"] == src.transform and prof["crs"] == src.crs and mask.shape == (48, 48)
    assert set(pred.windows[0].images) == {"sar", "optical"}


# -- resume --------------------------------------------------------------------------------------
def test_interrupted_map_resumes_from_the_windows_done(tmp_path):
    scene = write_scene(tmp_path / "scene.tif", 80, 80)

    class Interrupting(FieldPredictor):
        def __call__(self, windows):
            if self.calls == 2:
                raise KeyboardInterrupt
            return super().__call__(windows)

    first = Interrupting()
    kw = dict(window=32, overlap=8, batch_size=2, progress=False)
    with pytest.raises(JobInterrupted, match="map interrupted; finished results are kept"):  # Ctrl-C
        map_scenes("Please segment the pond.", {"image": str(scene)}, str(tmp_path / "out"), predictor=first, **kw)
    assert first.calls == 2 and len(first.windows) == 4
    again = FieldPredictor()
    summary = map_scenes("Please segment the pond.", {"image": str(scene)}, str(tmp_path / "out"),
                         predictor=again, **kw)
    total = len(WindowPlan(80, 80, 32, 8))
    assert len(again.windows) == total - 4  # only the windows not yet done
    rec = list(read_jsonl(summary["records"]))[-1]
    assert rec["resumed"] == 4 and rec["status"] == "ok"
    fresh = map_scenes("Please segment the pond.", {"image": str(scene)}, str(tmp_path / "fresh"),
                       predictor=FieldPredictor(), **kw)
    frec = list(read_jsonl(fresh["records"]))[0]
    assert (read(rec["files"]["mask"])[0] == read(frec["files"]["mask"])[0]).all()


# -- questions as a grid --------------------------------------------------------------------------
def test_question_gives_a_grid_layer_with_answer_per_cell(tmp_path):
    scene = write_scene(tmp_path / "scene.tif", 60, 90)

    class Answers:
        def __call__(self, windows):
            return [WindowAnswer(None, "Yes" if w.window.col_off > 40 else "No", w.window.col_off > 40)
                    for w in windows]

    summary = map_scenes("Is there a ship?", {"image": str(scene)}, str(tmp_path / "out"), predictor=Answers(),
                         window=32, overlap=8, progress=False)
    assert summary["task"] == "vqa"
    [rec] = read_jsonl(summary["records"])
    assert set(rec["files"]) == {"cells_gpkg", "cells_geojson"}
    _, _, geoms, fields = pyogrio.raw.read(rec["files"]["cells_gpkg"])
    import shapely

    polys = shapely.from_wkb(geoms)
    assert len(polys) == len(WindowPlan(60, 90, 32, 8))
    assert shapely.union_all(polys).area == pytest.approx(60 * 90 * 100.0)  # cells tile the scene
    assert sum(p.area for p in polys) == pytest.approx(60 * 90 * 100.0)   # without overlapping
    info = pyogrio.read_info(rec["files"]["cells_gpkg"])
    answers = list(fields[list(info["fields"]).index("answer")])
    values = list(fields[list(info["fields"]).index("value")])
    assert set(answers) == {"Yes", "No"} and set(values) == {"true", "false"}


def test_map_recipe_validates_and_runs_with_the_stand_in(tmp_path, monkeypatch):
    """recipes/map.yaml is a valid `job: map`; its runner resolves scenes relative to the recipe."""
    from earthmind_sdk.inference import map_job
    from earthmind_sdk.recipes import load_recipe

    recipe = load_recipe(ROOT / "recipes/map.yaml", [f"output.dir={tmp_path / 'out'}"])
    assert recipe.job == "map" and recipe.config["window"] == 64
    seen = {}

    def fake(question, scenes, out, **kw):  # the recipe's runner hands map_scenes plain values
        seen.update(question=question, scenes=scenes, out=out, **kw)
        return {"ok": 1}

    monkeypatch.setattr(map_job, "map_scenes", fake)
    assert recipe.run() == {"ok": 1}
    assert seen["scenes"][0].inputs == {"image": str(ROOT / "recipes" / "../tests/data/optical_rmnp_rgb.tif")}
    assert Path(seen["scenes"][0].inputs["image"]).resolve() == DATA / "optical_rmnp_rgb.tif"
    assert seen["window"] == 64 and seen["overlap"] == 16 and seen["model"] == "tiny" and seen["probability"]
    with pytest.raises(Exception, match="scenes or catalogue"):
        load_recipe(ROOT / "recipes/map.yaml", ["scenes=null"]).run()


def test_scene_without_georeferencing_is_mapped_in_pixel_coordinates(tmp_path):
    res = map_windows({"optical": str(DATA / "optical_rmnp_rgb.png")}, FieldPredictor(lambda r, c: np.full(r.shape, 0.8, np.float32)),
                      tmp_path / "out", primary="optical", stem="s", window=48, overlap=12)
    mask, prof = read(res.files["mask"])
    assert prof["crs"] is None and mask.shape == (96, 128) and (mask == 1).all()
    _, _, geoms, _ = pyogrio.raw.read(res.files["objects_gpkg"])
    import shapely

    assert res.objects == 1 and shapely.from_wkb(geoms[0]).bounds == (0.0, 0.0, 128.0, 96.0)
