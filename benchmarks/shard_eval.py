"""Evaluation throughput, one process vs two under torchrun, with the tiny model (random
weights: speed, not quality) on the EarthMind-Bench fixture (``tests/data/earthmind_bench``)
repeated ``--repeat`` times.

Every configuration gets the same cores: threads per rank = cores / processes
(``OMP_NUM_THREADS``), so the processes do not oversubscribe them. Throughput is questions per
second of the whole command (start, model load, evaluation, merge), measured in this run; the
result is the ratio 2 processes / 1 process on the same cores (and / 1 process on one core), and
the runs' predictions are compared.

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


def run(root: Path, out: Path, procs: int, threads: int, batch: int, tokens: int) -> float:
    recipe = root / "bench.yaml"
    recipe.write_text(f"job: eval\nmodel: {{spec: tiny-paired}}\nbatch_size: {batch}\nmax_new_tokens: {tokens}\n"
                      f"data: {{dataset: earthmind_bench, args: {{root: {root}, annotations: test.json}}}}\n")
    launch = [str(EARTHMIND)] if procs == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                  "--nproc_per_node", str(procs), str(EARTHMIND)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", EARTHMIND_QUIET="1", OMP_NUM_THREADS=str(threads))
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
        # (processes, threads per process): all the cores either way, plus one process on one core
        configs = {"1x%d" % a.cores: (1, a.cores), "2x%d" % max(1, a.cores // 2): (2, max(1, a.cores // 2)),
                   "1x1": (1, 1)}
        secs = {name: run(root, root / f"out{name}", p, t, a.batch, a.tokens) for name, (p, t) in configs.items()}
        preds = {name: (root / f"out{name}" / "predictions.jsonl").read_bytes() for name in configs}
        one, two = list(configs)[:2]
        summary = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "questions": n, "batch_size": a.batch, "max_new_tokens": a.tokens, "cores_used": a.cores,
            "configs": "processes x threads per process",
            "seconds": {k: round(s, 1) for k, s in secs.items()},
            "questions_per_s": {k: round(n / s, 3) for k, s in secs.items()},
            "ratio_2_procs_over_1_proc_same_cores": round(secs[one] / secs[two], 3),
            "ratio_2_procs_over_1_proc_1_thread": round(secs["1x1"] / secs[two], 3),
            "predictions_equal": {k: preds[k] == preds["1x1"] for k in configs},
            "load_average_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
        }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "shard_eval-cpu.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
