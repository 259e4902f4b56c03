"""The output and interrupt rules through the real console script: a foreign folder is left
byte-identical, bad output paths are one line, a killed evaluation resumes with nothing lost or
duplicated, Ctrl-C exits 130 keeping what finished, progress goes to stderr and --quiet silences it."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from earthmind_sdk.jobs import read_jsonl

EARTHMIND = Path(sys.executable).with_name("earthmind")
ROOT = Path(__file__).resolve().parents[2]
N_QUESTIONS = 36


def cli(*args, **kw):
    env = dict(os.environ, HF_HUB_OFFLINE="1", EARTHMIND_PROGRESS_INTERVAL="0")
    return subprocess.run([str(EARTHMIND), *args], capture_output=True, text=True, env=env, timeout=600, **kw)


def snapshot(folder):
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def foreign(tmp_path):
    d = tmp_path / "mine"
    (d / "sub").mkdir(parents=True)
    (d / "model-00001-of-00002.safetensors").write_bytes(b"\x00user weights")
    (d / "summary.json").write_text('{"mine": true}')
    (d / "sub" / "notes.txt").write_text("keep me")
    return d


@pytest.mark.parametrize("overwrite", ["false", "true"])
def test_quickstart_into_a_foreign_folder_is_refused_and_leaves_it_byte_identical(foreign, overwrite):
    before = snapshot(foreign)
    res = cli("run", str(ROOT / "recipes/quickstart.yaml"), f"output.dir={foreign}", f"output.overwrite={overwrite}")
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "not written by earthmind" in res.stderr and str(foreign) in res.stderr
    assert snapshot(foreign) == before


@pytest.mark.parametrize("target, message", [
    ("{file}/out", "is a file"),
    ("/proc/earthmind-out", "/proc"),
    ("{tmp}/" + "n" * 300, "longer than 255"),
])
def test_invalid_output_paths_are_one_line(tmp_path, target, message):
    (tmp_path / "f").write_text("x")
    target = target.format(file=tmp_path / "f", tmp=tmp_path)
    for args in (["infer", "--image", str(ROOT / "tests/data/optical_rmnp_rgb.png"), "--out", target, "q"],
                 ["run", str(ROOT / "recipes/quickstart.yaml"), f"output.dir={target}"]):
        res = cli(*args)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and message in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr


def _bench(root: Path) -> Path:
    rng = np.random.default_rng(0)
    entries = []
    for k in range(N_QUESTIONS // 3):
        stem = f"scene_{k:03d}"
        for folder in ("rgb", "sar"):
            d = root / "img" / "test" / folder / "img"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)).save(d / f"{stem}.png")
        entries += [
            {"file_name": f"{stem}.png", "question": "Main land cover?", "candidate": ["A. water", "B. forest"],
             "answer": "B", "task_type": "scene_classification"},
            {"file_name": f"{stem}.png", "question": "Is there a bridge?", "candidate": ["yes", "no"],
             "answer": "no", "task_type": "object_existence"},
            {"file_name": f"{stem}.png", "question": "Describe the scene.", "candidate": [],
             "answer": "A forest.", "task_type": "image_caption"},
        ]
    (root / "bench.json").write_text(json.dumps(entries))
    recipe = root / "eval.yaml"
    recipe.write_text(f"job: eval\nmodel: {{spec: tiny-paired}}\n"
                      f"data: {{dataset: earthmind_bench, args: {{root: {root}, annotations: bench.json}}}}\n"
                      f"batch_size: 2\nmax_new_tokens: 24\noutput: {{dir: {root / 'run'}}}\n")
    return recipe


def _start(recipe):
    env = dict(os.environ, HF_HUB_OFFLINE="1", EARTHMIND_PROGRESS_INTERVAL="0")
    # as from a terminal: a test runner started in the background (`cmd &`) hands its children
    # SIGINT ignored, and Python then never turns Ctrl-C into KeyboardInterrupt
    return subprocess.Popen([str(EARTHMIND), "run", str(recipe)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_lines(path: Path, n: int, proc, timeout=300):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.is_file() and path.read_bytes().count(b"\n") >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no predictions appeared")


def test_killed_eval_resumes_with_nothing_lost_or_duplicated(tmp_path):
    recipe = _bench(tmp_path)
    preds = tmp_path / "run" / "predictions.jsonl"
    proc = _start(recipe)
    _wait_for_lines(preds, 6, proc)
    proc.kill()  # SIGKILL: no handler runs
    proc.communicate()
    kept = preds.read_bytes()
    kept_rows = [json.loads(line) for line in kept.splitlines() if line.endswith(b"}")]
    assert 6 <= len(kept_rows) < N_QUESTIONS
    res = cli("run", str(recipe))
    assert res.returncode == 0, res.stderr
    rows = list(read_jsonl(preds))
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == N_QUESTIONS  # 0 lost, 0 duplicated
    assert rows[:len(kept_rows)] == kept_rows  # finished work kept as it was
    scores = json.loads(res.stdout)
    assert scores["resumed_from"] == len(kept_rows)
    assert json.loads((tmp_path / "run" / "scores.json").read_text()) == scores
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["status"] == "finished" and manifest["resumed"] == 1 and manifest["recipe"]["job"] == "eval"
    # progress and the output folder went to stderr, with an ETA; results alone on stdout
    assert f"eval: writing to {tmp_path / 'run'}" in res.stderr and "ETA" in res.stderr
    quiet = cli("run", str(recipe), "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "" and json.loads(quiet.stdout)["resumed_from"] == N_QUESTIONS


def test_ctrl_c_during_eval_is_one_line_exit_130_and_keeps_what_finished(tmp_path):
    recipe = _bench(tmp_path)
    preds = tmp_path / "run" / "predictions.jsonl"
    proc = _start(recipe)
    _wait_for_lines(preds, 4, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    last = err.strip().splitlines()[-1]
    assert last == f"earthmind run: eval interrupted; finished results are kept in {preds}; run the same " \
                   "command again to go on from there"
    assert "Traceback" not in err and out == ""
    rows = list(read_jsonl(preds))
    assert len(rows) >= 4 and len({r["id"] for r in rows}) == len(rows)
