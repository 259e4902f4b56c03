"""Evaluation split across processes: whole batches dealt round-robin, one part file per rank,
rank 0 merges. Two CPU processes under torchrun (gloo) give exactly the one-process predictions
and scores on the EarthMind-Bench fixture (``tests/data/earthmind_bench``, published layout);
a run killed with three processes resumes with one."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from earthmind_sdk.jobs.shard import World, plan_batches
from earthmind_sdk.jobs import read_jsonl

BENCH = Path(__file__).resolve().parents[1] / "data" / "earthmind_bench"
EARTHMIND = Path(sys.executable).with_name("earthmind")
BATCH = 3


@pytest.mark.parametrize("n, size", [(14, 1), (14, 2), (14, 3), (5, 4), (0, 2)])
def test_every_item_once_in_its_one_process_batch(n, size):
    keys = [f"q{i}" for i in range(n)]
    one = plan_batches(keys, BATCH, (), World())
    shares = [plan_batches(keys, BATCH, (), World(rank, size)) for rank in range(size)]
    dealt = [b for share in shares for b in share]
    assert sorted(dealt) == one  # same members per batch, each batch on exactly one rank
    assert [len(s) for s in shares] == [len(one[r::size]) for r in range(size)]  # round-robin


def test_done_items_leave_their_batch_and_the_rest_is_dealt_again():
    keys = [f"q{i}" for i in range(10)]
    done = {"q0", "q1", "q2", "q4"}  # batch 0 finished, batch 1 half
    share0 = plan_batches(keys, BATCH, done, World(0, 2))
    share1 = plan_batches(keys, BATCH, done, World(1, 2))
    assert share0 == [[3, 5], [9]] and share1 == [[6, 7, 8]]


def _recipe(tmp_path: Path) -> Path:
    recipe = tmp_path / "bench.yaml"
    recipe.write_text(f"job: eval\nmodel: {{spec: tiny-paired}}\nbatch_size: {BATCH}\nmax_new_tokens: 6\n"
                      f"data: {{dataset: earthmind_bench, args: {{root: {BENCH}, annotations: test.json}}}}\n")
    return recipe


def _run(cmd, out):
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", EARTHMIND_QUIET="1")
    res = subprocess.run([*cmd, f"output.dir={out}"], capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def _rows(folder: Path) -> list[dict]:
    return list(read_jsonl(folder / "predictions.jsonl"))


def test_two_processes_equal_one_and_resume_with_another_count(tmp_path, monkeypatch):
    recipe = _recipe(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    single = _run([str(EARTHMIND), "run", str(recipe)], one)
    sharded = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    str(EARTHMIND), "run", str(recipe)], two)
    expected = json.loads((BENCH / "test.json").read_text())
    rows = _rows(two)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == len(expected)  # none missing, none duplicated, in input order
    assert ids == [f"{Path(e['file_name']).stem}#{i}" for i, e in enumerate(expected)]
    assert (two / "predictions.jsonl").read_bytes() == (one / "predictions.jsonl").read_bytes()
    scores = json.loads((two / "scores.json").read_text())
    assert scores == json.loads((one / "scores.json").read_text()) and scores["n"] == len(expected)
    assert json.loads(sharded.stdout) == scores and json.loads(single.stdout) == scores  # printed once
    manifest = json.loads((two / "run.json").read_text())
    per_rank = [sum(map(len, plan_batches(ids, BATCH, (), World(r, 2)))) for r in range(2)]
    assert manifest["world_size"] == 2 and manifest["status"] == "finished"
    assert manifest["rows_per_part"] == {f"predictions.rank{r:05d}.jsonl": n for r, n in enumerate(per_rank)}
    assert not (two / "parts").exists()

    # a three-process run killed after ranks 0 and 2 finished their first batch (rank 2 mid-line),
    # resumed by one process: only the missing questions run, the result is the same
    (two / "predictions.jsonl").unlink()
    (two / "parts").mkdir()
    lines = (one / "predictions.jsonl").read_text().splitlines(keepends=True)
    (two / "parts" / "predictions.rank00000.jsonl").write_text("".join(lines[0:3]))
    (two / "parts" / "predictions.rank00002.jsonl").write_text("".join(lines[6:9]) + lines[9][:20])
    import torch

    from earthmind_sdk.inference.pipeline import Pipeline
    from earthmind_sdk.recipes import load_recipe

    asked = []
    real_call = Pipeline.__call__
    monkeypatch.setattr(Pipeline, "__call__", lambda self, samples, **kw: (asked.extend(s.id for s in samples),
                                                                           real_call(self, samples, **kw))[1])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the processes above, so every sum adds up in the same order
    try:
        resumed = load_recipe(recipe, [f"output.dir={two}"]).run()
    finally:
        torch.set_num_threads(threads)
    assert asked == ids[3:6] + ids[9:]
    assert _rows(two) == _rows(one)
    assert resumed == {**scores, "resumed_from": 6}
    assert not (two / "parts").exists()
