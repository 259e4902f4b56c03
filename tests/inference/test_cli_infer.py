"""End to end: train a tiny model to answer with [SEG], save it in the released layout, then
`earthmind infer` and `earthmind run` on a georeferenced GeoTIFF write masks on the input's grid."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from earthmind_sdk.contracts import Sample
from earthmind_sdk.jobs import read_jsonl

OPTICAL = Path(__file__).resolve().parents[1] / "data" / "optical_rmnp_rgb.tif"
EARTHMIND = Path(sys.executable).with_name("earthmind")


@pytest.fixture(scope="module")
def seg_checkpoint(tmp_path_factory):
    from earthmind_sdk.checkpoint import save
    from earthmind_sdk.contracts import Record
    from earthmind_sdk.jobs.open_model import open_model
    from earthmind_sdk.train.trainer import Trainer, TrainConfig

    torch.manual_seed(0)
    model, tok = open_model("tiny")
    mask = np.zeros((96, 128), bool)
    mask[20:60, 30:90] = True
    rec = Record(Sample(images={"optical": str(OPTICAL)}, prompt="Please segment the lake.",
                        task="referring_segmentation"), "Sure, [SEG].", [mask])
    trainer = Trainer(model, tok, TrainConfig(steps=80, batch_size=2, lr=1e-2, warmup_ratio=0.0,
                                              weight_decay=0.0, freeze=(), num_points=256))
    history = trainer.fit([rec])
    assert history[-1]["lm"] < 0.1 * history[0]["lm"]  # it learned the answer
    path = tmp_path_factory.mktemp("ckpt") / "tiny-seg"
    save(model.eval(), path, tokenizer=tok)
    return path


def run(*args, cwd=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([str(EARTHMIND), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def test_infer_cli_writes_georeferenced_masks(seg_checkpoint, tmp_path):
    out = tmp_path / "out"
    res = run("infer", "--model", str(seg_checkpoint), "--image", str(OPTICAL), "--out", str(out), "--json",
              "--task", "referring_segmentation", "Please segment the lake.")
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["answer"] == "Sure, [SEG]." and payload["parsed"]["value"] == 1
    assert len(payload["masks"]) == 1 and payload["masks"][0].endswith(".tif")
    with rasterio.open(OPTICAL) as src, rasterio.open(payload["masks"][0]) as m:
        assert m.crs == src.crs and m.transform == src.transform
        assert (m.height, m.width) == (src.height, src.width) and m.count == 1
    assert Path(payload["overlays"][0]).is_file()

    text = run("infer", "--model", str(seg_checkpoint), "--image", str(OPTICAL), "--out", str(tmp_path / "o2"),
               "Please segment the lake.")
    assert text.returncode == 0 and text.stdout.splitlines()[0] == "Sure, [SEG]."


def test_infer_cli_png_input_gives_png_mask(seg_checkpoint, tmp_path):
    res = run("infer", "--model", str(seg_checkpoint), "--image", str(OPTICAL.with_suffix(".png")),
              "--out", str(tmp_path), "--json", "Please segment the lake.")
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    assert payload["masks"][0].endswith(".png")
    assert payload["parsed"]["kind"] == "masks"  # task guessed from "segment" in the question


def test_infer_cli_errors(seg_checkpoint, tmp_path):
    res = run("infer", "--model", str(tmp_path / "missing"), "--image", str(OPTICAL), "q")
    assert res.returncode == 2 and "not a bundled spec" in res.stderr
    res = run("infer", "--model", str(seg_checkpoint), "--image", str(tmp_path / "none.tif"), "q")
    assert res.returncode == 2 and "none.tif" in res.stderr
    res = run("infer", "--model", str(seg_checkpoint), "--image", str(OPTICAL), "--sar", str(OPTICAL), "q")
    assert res.returncode == 2 and "none is sar" in res.stderr


def test_run_infer_recipe_writes_answers(seg_checkpoint, tmp_path):
    recipe = tmp_path / "infer.yaml"
    recipe.write_text(
        "job: infer\n"
        f"model: {{checkpoint: {seg_checkpoint}}}\n"
        "task: referring_segmentation\n"
        f"output: {{dir: {tmp_path / 'res'}}}\n"
        "samples:\n"
        f"  - {{id: lake, images: {{optical: {OPTICAL}}}, question: Please segment the lake.}}\n"
        f"  - {{id: again, images: {{optical: {OPTICAL}}}, question: Please segment the lake.}}\n"
    )
    res = run("run", str(recipe))
    assert res.returncode == 0, res.stderr
    rows = list(read_jsonl(tmp_path / "res" / "answers.jsonl"))
    assert [r["id"] for r in rows] == ["lake", "again"]
    assert all(r["answer"] == "Sure, [SEG]." and len(r["masks"]) == 1 for r in rows)
    assert len({r["masks"][0] for r in rows}) == 2  # same image, two ids: two files
    before = (tmp_path / "res" / "answers.jsonl").read_bytes()
    again = run("run", str(recipe))  # a rerun resumes: everything is done, nothing is rewritten
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "res" / "answers.jsonl").read_bytes() == before
    other = run("run", str(recipe), "max_new_tokens=8")  # another recipe never mixes into this folder
    assert other.returncode == 2 and "different recipe" in other.stderr and other.stderr.count("\n") == 1


def test_infer_cli_several_inputs_one_batch_one_line_each(seg_checkpoint, tmp_path):
    out = tmp_path / "many"
    res = run("infer", "--model", str(seg_checkpoint), "--image", str(OPTICAL), "--image", str(tmp_path / "gone.tif"),
              "--image", str(OPTICAL.with_suffix(".png")), "--out", str(out), "Please segment the lake.")
    assert res.returncode == 1, res.stderr  # one input failed; the others were answered
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r["id"], r["status"]) for r in rows] == [("0", "ok"), ("1", "failed"), ("2", "ok")]
    assert rows[0]["answer"] == rows[2]["answer"] == "Sure, [SEG]."
    assert rows[0]["masks"][0].endswith(".tif") and rows[2]["masks"][0].endswith(".png")
    assert rows[0]["masks"][0] != rows[2]["masks"][0]  # collision-free names
    assert "gone.tif: no such file" in rows[1]["error"]
    assert "infer: 1: failed:" in res.stderr and "2/3 answered" in res.stderr
    recorded = list(out.glob("answers-*.jsonl"))
    assert len(recorded) == 1 and len(recorded[0].read_text().splitlines()) == 3
    bad = run("infer", "--model", str(seg_checkpoint), "--image", str(OPTICAL), "--image", str(OPTICAL),
              "--sar", str(OPTICAL), "--out", str(out), "q")
    assert bad.returncode == 2 and "2 --image but 1 --sar" in bad.stderr


def test_map_cli_end_to_end_grid_crs_and_files(seg_checkpoint, tmp_path):
    """The tiny model over a real raster in 6 overlapping windows: files on the input's exact grid."""
    out = tmp_path / "map"
    res = run("map", "--model", str(seg_checkpoint), "--image", str(OPTICAL), "--out", str(out), "--window", "64",
              "--overlap", "16", "--probability", "--json", "--max-new-tokens", "8", "Please segment the lake.")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["ok"] == 1 and summary["task"] == "referring_segmentation"
    [rec] = read_jsonl(summary["records"])
    assert rec["windows"] == 6 and set(rec["files"]) == {"mask", "probability", "objects_gpkg", "objects_geojson"}
    with rasterio.open(OPTICAL) as src:
        for key in ("mask", "probability"):
            with rasterio.open(rec["files"][key]) as m:
                assert m.crs == src.crs and m.transform == src.transform and (m.height, m.width) == (96, 128)
                assert m.driver == "GTiff" and m.profile.get("tiled")
        with rasterio.open(rec["files"]["probability"]) as p, rasterio.open(rec["files"]["mask"]) as m:
            prob, mask = p.read(1), m.read(1)
    # every pixel seen; the mask is the blended probability thresholded (the tiny model's quality is not tested)
    assert np.isfinite(prob).all() and 0 <= prob.min() and prob.max() <= 1
    assert (mask == (prob > 0.5)).all()
    assert rec["objects"] >= 0 and Path(rec["files"]["objects_gpkg"]).is_file()
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_parallel_infer_runs_in_one_folder_never_collide(seg_checkpoint, tmp_path):
    """Four runs at once into one --out: each reports its own files, named after its input and
    request; a rerun of the same request replaces its own files, never leaving a stale one."""
    out = tmp_path / "shared"
    jpg = tmp_path / "lake copy.jpg"
    jpg.write_bytes(OPTICAL.with_suffix(".jpg").read_bytes())
    # two requests on one input differ only in a setting (the tiny model answers [SEG] to the
    # question it was trained on, not to paraphrases), so their names must come from the request
    q = "Please segment the lake."
    requests = [(OPTICAL, ["--max-new-tokens", "64"]), (OPTICAL, ["--max-new-tokens", "48"]),
                (OPTICAL.with_suffix(".png"), []), (jpg, [])]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    procs = [subprocess.Popen([str(EARTHMIND), "infer", "--model", str(seg_checkpoint), "--image", str(img),
                               "--out", str(out), "--json", *extra, q], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for img, extra in requests]
    results = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1] for r in results]
    payloads = [json.loads(r[0]) for r in results]
    masks = [p["masks"][0] for p in payloads]
    assert len(set(masks)) == 4 and len({p["overlays"][0] for p in payloads}) == 4
    for (img, _), mask in zip(requests, masks):
        assert Path(mask).name.startswith(Path(img).stem.replace(" ", "_") + "-")
        assert Path(mask).suffix == (".tif" if img.suffix == ".tif" else ".png")
        assert Path(mask).is_file()
    assert (out / "run.json").is_file()
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert len(files) == 9  # 4 masks, 4 overlays, run.json
    again = run("infer", "--model", str(seg_checkpoint), "--image", str(OPTICAL), "--out", str(out), "--json",
                "Please segment the lake.")
    assert json.loads(again.stdout)["masks"] == [masks[0]]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == files
