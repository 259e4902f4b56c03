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

from earthmind_sdk.inference import Sample

OPTICAL = Path("tests/data/optical_rmnp_rgb.tif").resolve()
EARTHMIND = Path(sys.executable).with_name("earthmind")


@pytest.fixture(scope="module")
def seg_checkpoint(tmp_path_factory):
    from earthmind_sdk.checkpoint import save
    from earthmind_sdk.loading import open_model
    from earthmind_sdk.train.data import Record
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
    rows = [json.loads(line) for line in (tmp_path / "res" / "answers.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["lake", "again"]
    assert all(r["answer"] == "Sure, [SEG]." and len(r["masks"]) == 1 for r in rows)
    assert len({r["masks"][0] for r in rows}) == 2  # same image, two ids: two files
    before = (tmp_path / "res" / "answers.jsonl").read_bytes()
    again = run("run", str(recipe))  # a rerun resumes: everything is done, nothing is rewritten
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "res" / "answers.jsonl").read_bytes() == before
    other = run("run", str(recipe), "max_new_tokens=8")  # another recipe never mixes into this folder
    assert other.returncode == 2 and "different recipe" in other.stderr and other.stderr.count("\n") == 1
