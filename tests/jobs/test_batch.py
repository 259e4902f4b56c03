"""The batch runner: scene lists from folders, globs, CSVs and STAC ItemCollections; failed
scenes reported one line each without stopping; a rerun resumes."""
import json
import shutil
from pathlib import Path

import pytest

from earthmind_sdk.jobs import open_run_folder
from earthmind_sdk.jobs.shard import ShardedStream, World
from earthmind_sdk.jobs.batch import Scene, SceneListError, run_batch, scenes_from
from earthmind_sdk.jobs import read_jsonl

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "scenes"
    d.mkdir()
    for name in ("optical_rmnp_rgb.tif", "landsat8_oli_b2_b3_b4.tif", "sentinel2_b02_b03_b04_b08.tif"):
        shutil.copy(DATA / name, d / name)
    (d / "notes.txt").write_text("not a raster")
    return d


def test_folder_and_glob_list_rasters_sorted(folder):
    scenes = scenes_from(folder)
    assert [s.id for s in scenes] == ["landsat8_oli_b2_b3_b4", "optical_rmnp_rgb", "sentinel2_b02_b03_b04_b08"]
    assert all(set(s.inputs) == {"image"} and Path(s.inputs["image"]).is_file() for s in scenes)
    assert [s.id for s in scenes_from(str(folder / "*_b0*.tif"))] == ["sentinel2_b02_b03_b04_b08"]
    with pytest.raises(SceneListError, match="no scenes found"):
        scenes_from(str(folder / "*.jp2"))


def test_csv_of_pairs_with_relative_paths(folder):
    shutil.copy(DATA / "sentinel1_synthetic_vv_vh.tif", folder / "s1.tif")
    (folder / "pairs.csv").write_text("id,sar,image\nflood-1,s1.tif,sentinel2_b02_b03_b04_b08.tif\n,s1.tif,\n")
    scenes = scenes_from(folder / "pairs.csv")
    assert scenes[0].id == "flood-1" and scenes[0].inputs == {"sar": str(folder / "s1.tif"),
                                                              "image": str(folder / "sentinel2_b02_b03_b04_b08.tif")}
    assert scenes[1].id == "s1" and set(scenes[1].inputs) == {"sar"}
    (folder / "bad.csv").write_text("path,label\na.tif,1\n")
    with pytest.raises(SceneListError, match=r"bad.csv:1: the header must name columns.*unknown: path, label"):
        scenes_from(folder / "bad.csv")


def test_stac_item_collection_with_local_assets(folder):
    def item(i, href):
        return {"type": "Feature", "stac_version": "1.0.0", "id": f"scene-{i}", "properties": {"datetime": "2024-01-01T00:00:00Z"},
                "geometry": None, "links": [],
                "assets": {"visual": {"href": href, "type": "image/tiff; application=geotiff"},
                           "thumb": {"href": "thumb.png", "type": "image/png"}}}

    col = {"type": "FeatureCollection", "features": [item(0, "optical_rmnp_rgb.tif"),
                                                     item(1, "landsat8_oli_b2_b3_b4.tif")]}
    (folder / "items.json").write_text(json.dumps(col))
    scenes = scenes_from(folder / "items.json")
    assert [s.id for s in scenes] == ["scene-0", "scene-1"]
    assert Path(scenes[1].inputs["image"]) == folder / "landsat8_oli_b2_b3_b4.tif"
    with pytest.raises(SceneListError, match="has no asset 'vv'"):
        scenes_from(folder / "items.json", assets={"sar": "vv"})
    (folder / "broken.json").write_text("{}")
    with pytest.raises(SceneListError, match="broken.json: not a STAC ItemCollection"):
        scenes_from(folder / "broken.json")


def test_failed_scenes_are_one_line_each_and_the_run_goes_on_then_resumes(tmp_path, capsys):
    scenes = [Scene(f"s{i}", {"image": f"/x/{i}.tif"}) for i in range(5)]
    seen = []

    def process(chunk):
        for s in chunk:
            if s.id == "s2":
                raise ValueError("bad pixels")
        seen.extend(s.id for s in chunk)
        return [{"answer": s.id.upper()} for s in chunk]

    run = open_run_folder(tmp_path, job="infer", resume=True)
    with ShardedStream(run, "r.jsonl", World()) as out:
        counts = run_batch(scenes, process, out, batch_size=2, progress=False)
    assert counts == {"scenes": 5, "ok": 4, "failed": 1, "resumed": 0}
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["scenes: s2: failed: ValueError: bad pixels"]
    rows = list(read_jsonl(tmp_path / "r.jsonl"))
    assert [r["id"] for r in rows] == ["s0", "s1", "s2", "s3", "s4"]  # batch [s2, s3] retried one by one
    assert rows[2]["status"] == "failed" and rows[3] == {"id": "s3", "status": "ok", "inputs": {"image": "/x/3.tif"},
                                                         "answer": "S3"}
    seen.clear()
    with ShardedStream(run, "r.jsonl", World()) as out:
        counts = run_batch(scenes, lambda chunk: seen.extend(s.id for s in chunk) or [{"answer": "again"} for _ in chunk],
                           out, progress=False)
    assert counts["resumed"] == 4 and counts["ok"] == 5 and counts["failed"] == 0 and seen == ["s2"]
    rows = list(read_jsonl(tmp_path / "r.jsonl"))
    assert [(r["id"], r["answer"]) for r in rows] == [("s0", "S0"), ("s1", "S1"), ("s2", "again"), ("s3", "S3"),
                                                      ("s4", "S4")]  # one record per scene, in input order
