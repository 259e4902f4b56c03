"""The train job: every shipped recipe validates; tiny training runs in one process and under
torchrun with two CPU processes (gloo), and the saved checkpoint loads."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from earthmind_sdk.cli import main
from earthmind_sdk.recipes import load_recipe

RECIPES = sorted(Path("recipes").rglob("*.yaml"))
EARTHMIND = Path(sys.executable).with_name("earthmind")


@pytest.mark.parametrize("path", RECIPES, ids=[str(p) for p in RECIPES])
def test_every_shipped_recipe_validates_and_shows_its_command(path, capsys):
    assert main(["run", str(path), "--dry-run"]) == 0
    header = path.read_text().splitlines()[:8]
    assert any(line.startswith("#") and f"run {path}" in line for line in header), "header must show the run command"
    recipe = load_recipe(path)
    assert recipe.job in ("train", "eval", "infer", "quickstart", "map")


def test_train_job_single_process(tmp_path):
    out = tmp_path / "run"
    recipe = load_recipe("recipes/train/tiny-synthetic.yaml", [f"output.dir={out}", "train.steps=3"])
    summary = recipe.run()
    assert summary["steps"] == 3 and summary["world_size"] == 1
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [0, 2]
    from earthmind_sdk.checkpoint import load

    model, info = load(out / "checkpoint")
    assert model.spec.sensors == ["optical"]
    assert (out / "checkpoint" / "tokenizer.json").is_file()


def test_train_job_under_torchrun_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(EARTHMIND), "run", "recipes/train/tiny-synthetic.yaml", f"output.dir={out}", "train.steps=3"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    assert (out / "checkpoint" / "config.json").is_file()


def test_quickstart_job_end_to_end_small(tmp_path):
    """The main job at a toy budget: evaluates before/after, saves a loadable checkpoint and
    georeferenced example scenes that `earthmind infer` answers about."""
    out = tmp_path / "qs"
    recipe = load_recipe("recipes/quickstart.yaml", [f"output.dir={out}", "train.steps=2", "train.batch_size=4",
                                                     "data.train_scenes=3", "data.eval_scenes=2"])
    summary = recipe.run()
    assert summary["train"]["steps"] == 2
    for key in ("eval_before_training", "eval_after_training"):
        report = summary[key]
        assert report["n"] > 0 and "accuracy" in report and "segmentation" in report
    saved = json.loads((out / "summary.json").read_text())
    assert saved["checkpoint"] == str(out / "checkpoint")
    example = saved["examples"][0]
    res = subprocess.run([str(EARTHMIND), "infer", "--model", str(out / "checkpoint"), "--image", example["optical"],
                          "--sar", example["sar"], "--json", "--max-new-tokens", "3", "--out", str(tmp_path / "m"),
                          "Is there a water body in this scene?"],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    assert set(payload["fusion_weights"]) == {"sar", "optical"}
