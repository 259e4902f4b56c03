"""Evaluation throughput, one process vs two under torchrun, with the tiny model (random
weights: speed, not quality) on the EarthMind-Bench fixture (``tests/data/earthmind_bench``)
repeated ``--repeat`` times.

Every configuration gets the same cores: threads per rank = cores / processes
(``OMP_NUM_THREADS``), so the processes do not oversubscribe them. Throughput is questions per
second of the whole command (start, model load, evaluation, merge), measured in this run; the
result is the ratio 2 processes / 1 process, and the two runs' predictions are checked equal.

Run: ``python benchmarks/shard_eval.py [--repeat 8] [--cores N]``; prints a JSON summary
(recorded in ``benchmarks/RESULTS.md``, written to ``benchmarks/results/shard_eval-cpu.json``).
Not part of the test suite.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent / "tests" / "data" / "earthmind_bench"
EARTHMIND = Path(sys.executable).with_name("earthmind")


def make_bench(root: Path, repeat: int) -> int:
    shutil.copytree(BENCH / "img", root / "img")
    entries = json.loads((BENCH / "test.json").read_text()) * repeat
    (root / "test.json").write_text(json.dumps(entries))
    return len(entries)


def run(root: Path, out: Path, procs: int, cores: int, batch: int, tokens: int) -> float:
    recipe = root / "bench.yaml"
    recipe.write_text(f"job: eval\nmodel: {{spec: tiny-paired}}\nbatch_size: {batch}\nmax_new_tokens: {tokens}\n"
                      f"data: {{dataset: earthmind_bench, args: {{root: {root}, annotations: test.json}}}}\n")
    launch = [str(EARTHMIND)] if procs == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                  "--nproc_per_node", str(procs), str(EARTHMIND)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", EARTHMIND_QUIET="1", OMP_NUM_THREADS=str(max(1, cores // procs)))
    t0 = time.perf_counter()
    subprocess.run([*launch, "run", str(recipe), f"output.dir={out}"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=8)
    ap.add_argument("--cores", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=16)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n = make_bench(root, a.repeat)
        load_before = os.getloadavg()
        secs = {p: run(root, root / f"out{p}", p, a.cores, a.batch, a.tokens) for p in (1, 2)}
        same = (root / "out1" / "predictions.jsonl").read_bytes() == (root / "out2" / "predictions.jsonl").read_bytes()
        summary = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "questions": n, "batch_size": a.batch, "max_new_tokens": a.tokens, "cores_used": a.cores,
            "threads_per_rank": {p: max(1, a.cores // p) for p in (1, 2)},
            "seconds": {p: round(s, 1) for p, s in secs.items()},
            "questions_per_s": {p: round(n / s, 3) for p, s in secs.items()},
            "ratio_2_over_1": round(secs[1] / secs[2], 3),
            "predictions_equal": same,
            "load_average_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
        }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "shard_eval-cpu.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
