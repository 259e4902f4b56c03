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
from earthmind_sdk.jobs import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").rglob("*.yaml"))
EARTHMIND = Path(sys.executable).with_name("earthmind")


@pytest.mark.parametrize("path", RECIPES, ids=[p.relative_to(ROOT).as_posix() for p in RECIPES])
def test_every_shipped_recipe_validates_and_shows_its_command(path, capsys):
    assert main(["run", str(path), "--dry-run"]) == 0
    header = path.read_text().splitlines()[:8]
    shown = f"run {path.relative_to(ROOT).as_posix()}"
    assert any(line.startswith("#") and shown in line for line in header), "header must show the run command"
    recipe = load_recipe(path)
    assert recipe.job in ("train", "eval", "infer", "quickstart", "map")


def test_train_job_single_process(tmp_path):
    out = tmp_path / "run"
    recipe = load_recipe(ROOT / "recipes/train/tiny-synthetic.yaml", [f"output.dir={out}", "train.steps=3"])
    summary = recipe.run()
    assert summary["steps"] == 3 and summary["world_size"] == 1
    log = list(read_jsonl(out / "train_log.jsonl"))
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
         str(EARTHMIND), "run", str(ROOT / "recipes/train/tiny-synthetic.yaml"), f"output.dir={out}", "train.steps=3"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    assert (out / "checkpoint" / "config.json").is_file()


def test_quickstart_smoke_runs_every_stage_and_the_loss_falls(quickstart_run, tmp_path):
    """The README's main command, shortened the one documented way (EARTHMIND_SMOKE=1; run once,
    shared with tests/docs): every stage runs, the loss falls, results.json holds the metrics, the
    example GeoTIFF pairs and figures exist, and `earthmind infer` answers about an example with
    the saved checkpoint."""
    work, res = quickstart_run
    out = work / "out" / "quickstart"
    assert res.returncode == 0, res.stderr[-3000:]
    assert "EARTHMIND_SMOKE=1: shortened run" in res.stderr
    assert "closed M-Avg" in res.stdout  # the table
    results = json.loads((out / "results.json").read_text())
    assert list(results["stages"]) == ["data", "evaluate before training", "train", "evaluate after training",
                                       "save checkpoint", "examples and figures"]
    assert results["train"]["steps"] == 20
    log = list(read_jsonl(out / "train_log.jsonl"))
    first, last = log[0]["lm"], sum(r["lm"] for r in log[-3:]) / 3
    assert last < first - 0.3, (first, last)
    for key in ("mcq_m_avg", "refseg_miou", "cloud_fused_acc", "cloud_optical_only_acc"):
        assert results[key] is None or 0.0 <= results[key] <= 1.0, key
    assert set(results["subtasks"]) <= {"existence", "counting", "classification", "spatial_relation"}
    assert all(0 < s["chance"] <= 0.5 for s in results["subtasks"].values())
    assert "blind" in results and results["checks"]
    assert (out / "loss_curve.png").stat().st_size > 1000
    assert len(results["examples"]) == 2
    for example in results["examples"]:
        assert example["sky"] in ("overcast", "broken")
        assert Path(work, example["figure"]).read_bytes()[:4] == b"\x89PNG"
    example = results["examples"][0]
    res = subprocess.run([str(EARTHMIND), "infer", "--model", str(out / "checkpoint"), "--image", str(work / example["optical"]),
                          "--sar", str(work / example["sar"]), "--json", "--max-new-tokens", "3", "--out", str(tmp_path / "m"),
                          "Is there a water body in this scene?"],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    assert set(payload["fusion_weights"]) == {"sar", "optical"}
    assert len(payload["fusion_weights"]["sar"]) == 16  # 112 px -> 4 x 4 tokens


def test_smoke_shortening_is_declared_by_the_job_and_user_overrides_win(monkeypatch):
    monkeypatch.setenv("EARTHMIND_SMOKE", "1")
    recipe = load_recipe(ROOT / "recipes/quickstart.yaml", ["train.steps=5"])
    assert recipe.config["train"]["steps"] == 5 and recipe.config["data"]["train_scenes"] == 8
    monkeypatch.delenv("EARTHMIND_SMOKE")
    assert load_recipe(ROOT / "recipes/quickstart.yaml").config["train"]["steps"] > 100


def test_v1_sft_recipe_runs_at_tiny_size(tmp_path):
    """The paper's SFT recipe as shipped (LoRA r=128, frozen ViT and SAM2 image encoder, the loss
    weights with SAP, gradient accumulation and checkpointing, a mixture with repeats), with
    only the model, the data and the length shrunk: two steps of the tiny model on generated scenes."""
    from safetensors.torch import load_file

    from earthmind_sdk.plugins import registry

    path = ROOT / "recipes/train/earthmind-v1-sft.yaml"
    parts = load_recipe(path).config["data"]["args"]["parts"]
    scenes = "{dataset: synthetic_scenes, args: {n_scenes: %d, size: 28, sensors: [optical], seed: %d}%s}"
    kept = {"rrsisd": scenes % (2, 0, ", repeat: 3"), "vrsbench_vqa": scenes % (1, 1, "")}
    overrides = [f"data.args.parts.{k}={kept.get(k, 'null')}" for k in parts] + [
        "model.spec=tiny", "model.checkpoint=null", "model.dtype=float32", "model.device=cpu",
        "train.steps=2", "train.num_points=64", "train.save_every=1", f"output.dir={tmp_path / 'run'}"]
    recipe = load_recipe(path, overrides)
    t = recipe.config["train"]
    assert t["lora"]["r"] == 128 and t["sap"] and t["grad_accum"] == 4 and t["gradient_checkpointing"]
    mixture = registry("datasets").build(recipe.config["data"]["dataset"], **recipe.config["data"]["args"])
    one = registry("datasets").build("synthetic_scenes", n_scenes=2, size=28, sensors=["optical"])
    assert mixture.repeats == [3, 1] and len(mixture) == 3 * len(one) + len(mixture.parts[1])

    summary = recipe.run()
    assert summary["steps"] == 2
    log = list(read_jsonl(tmp_path / "run" / "train_log.jsonl"))
    assert {"lm", "mask", "dice", "sap"} <= set().union(*log), log
    trained = load_file(str(tmp_path / "run" / "checkpoints" / "step-1" / "trainable.safetensors"))
    lora_a = [v for k, v in trained.items() if "lora_A" in k]
    assert lora_a and all(v.shape[0] == 128 for v in lora_a)
    assert not any(k.startswith(("vision_model.", "grounding_encoder.sam2_model.image_encoder.")) for k in trained)
    assert any(k.startswith("grounding_encoder.sam2_model.sam_mask_decoder.") for k in trained)
    assert not any("base_layer" in k or k.endswith("embed_tokens.weight") for k in trained)  # the LLM itself is frozen
