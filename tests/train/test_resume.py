"""Checkpoints and resume on CPU: a real run on a data mixture with the length-grouped sampler
is killed (SIGKILL) part-way, resumed, stopped with SIGTERM (one line, a checkpoint, exit 130),
resumed again, and ends bit-equal to an uninterrupted run; a changed recipe is refused."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from earthmind_sdk.errors import OutputError
from earthmind_sdk.recipes import load_recipe
from earthmind_sdk.jobs import read_jsonl

EARTHMIND = Path(sys.executable).with_name("earthmind")
# MKL_CBWR: MKL may pick a different kernel for differently aligned buffers, and tensors read
# back from a checkpoint need not sit where the uninterrupted run's did; once (of several runs
# on a loaded machine) the first resumed step then differed in the 6th digit. Strict conditional
# numerical reproducibility makes the result independent of alignment.
ENV = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MKL_CBWR="AUTO,STRICT")
# Enough steps after the SIGTERM at step 4 that a fast machine cannot finish the run before the
# signal lands (at 6 steps a CI machine at 14 step/s reached the end first and exited 0).
STEPS = 12


def _recipe(tmp_path: Path, layouts) -> Path:
    recipe = {
        "job": "train", "seed": 3,
        "model": {"spec": "tiny", "dtype": "float32", "device": "cpu"},
        "data": {"dataset": "mixture", "args": {"parts": [
            {"dataset": "synthetic_scenes", "args": {"n_scenes": 2, "size": 56, "sensors": ["optical"]}, "repeat": 2},
            {"dataset": "refsegrs", "args": layouts.refsegrs(tmp_path / "refsegrs"), "repeat": 3},
            {"dataset": "llava", "args": layouts.llava(tmp_path / "llava", n=2)},
        ]}},
        "train": {"steps": STEPS, "batch_size": 2, "grad_accum": 2, "lr": 2e-3, "weight_decay": 0.01, "freeze": [],
                  "num_points": 64, "lora": {"r": 4, "alpha": 8, "dropout": 0.1}, "log_every": 1,
                  "save_every": 2, "keep_last": 2, "group_by_length": True, "tensorboard": False},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _start(recipe: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([str(EARTHMIND), "run", str(recipe), f"output.dir={out}", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def _wait_for(proc: subprocess.Popen, path: Path, timeout: float = 300) -> None:
    t0 = time.monotonic()
    while not path.is_file():
        assert proc.poll() is None, f"run ended before {path} appeared: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() - t0 < timeout, f"{path} did not appear"
        time.sleep(0.05)


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=600)
    return proc.returncode, err


def test_killed_run_resumes_bit_equal(tmp_path, layouts):
    recipe = _recipe(tmp_path, layouts)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    reference = _start(recipe, whole)  # runs beside the interrupted one
    run = _start(recipe, broken)
    _wait_for(run, broken / "checkpoints" / "step-2" / "state.json")
    run.send_signal(signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL

    run = _start(recipe, broken, "train.resume=true")
    _wait_for(run, broken / "checkpoints" / "step-4" / "state.json")
    run.send_signal(signal.SIGTERM)
    code, err = _finish(run)
    lines = [line for line in err.strip().splitlines() if line.startswith("error") or "stopped" in line]
    assert code == 130, err[-2000:]
    assert len(lines) == 1 and "train stopped after step" in lines[0] and "train.resume=true" in lines[0], err[-2000:]
    stopped_at = int(lines[0].split("after step ")[1].split()[0])
    assert (broken / "checkpoints" / f"step-{stopped_at}" / "state.json").is_file()

    with pytest.raises(OutputError, match="different recipe"):  # refused before any model is built
        load_recipe(recipe, [f"output.dir={broken}", "train.resume=true", "train.lr=0.1"]).run()

    run = _start(recipe, broken, "train.resume=true")
    code, err = _finish(run)
    assert code == 0, err[-3000:]
    assert "resuming from" in err
    code, err = _finish(reference)
    assert code == 0, err[-3000:]

    a, b = load_file(str(whole / "checkpoint" / "model.safetensors")), load_file(str(broken / "checkpoint" / "model.safetensors"))
    assert a.keys() == b.keys()
    differing = [k for k in a if not (a[k] == b[k]).all()]
    assert not differing, f"{len(differing)} tensors differ, e.g. {differing[:3]}"
    log_a = list(read_jsonl(whole / "train_log.jsonl"))
    log_b = list(read_jsonl(broken / "train_log.jsonl"))
    assert [(r["step"], r["loss"], r["lr"]) for r in log_a] == [(r["step"], r["loss"], r["lr"]) for r in log_b]
    assert [r["step"] for r in log_a] == list(range(STEPS))
    kept = sorted(set(range(2, STEPS, 2)) | {stopped_at})[-2:]  # every save_every: 2 step below the end; keep_last: 2
    assert {p.name for p in (broken / "checkpoints").iterdir()} == {f"step-{n}" for n in kept}
    assert (broken / "loss_curve.png").stat().st_size > 1000
    manifest = json.loads((broken / "run.json").read_text())
    assert manifest["status"] == "finished" and manifest["resumed"] == 2
