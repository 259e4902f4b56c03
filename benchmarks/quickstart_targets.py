"""Does the README's main command reach the quickstart's targets, and within 10 minutes?

Runs ``earthmind run recipes/quickstart.yaml`` exactly as the README says (extra ``key=value``
overrides, e.g. ``seed=1``, are passed on), times the whole command, reads its ``results.json``
and prints every target with its value and pass/fail. The run's results, wall time and the
machine's load average go to ``benchmarks/results/quickstart-seed<N>.json``. Not a test: the
timing only means something on an idle machine (2 cores for the README's claim).

    python benchmarks/quickstart_targets.py            # seed 0
    python benchmarks/quickstart_targets.py seed=1     # the same recipe, another seed
    python benchmarks/quickstart_targets.py output.dir=out/qs   # keep the run's folder (else a temporary one)

Exit status 0 when every target is met within the time limit, 1 otherwise.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 600.0


def main(argv: list[str]) -> int:
    overrides = [a for a in argv if "=" in a and not a.startswith("output.dir=")]
    keep = next((a.split("=", 1)[1] for a in argv if a.startswith("output.dir=")), None)
    seed = next((a.split("=", 1)[1] for a in overrides if a.startswith("seed=")), "0")
    exe = Path(sys.executable).with_name("earthmind")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(keep).resolve() if keep else Path(tmp) / "quickstart"
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        res = subprocess.run([str(exe), "run", "recipes/quickstart.yaml", *overrides, f"output.dir={out}"],
                             cwd=ROOT, text=True)
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()
        if res.returncode != 0:
            print(f"quickstart failed with exit status {res.returncode}", file=sys.stderr)
            return 1
        results = json.loads((out / "results.json").read_text())
    checks = dict(results["checks"])
    checks[f"whole command <= {LIMIT_S:.0f} s"] = wall <= LIMIT_S
    print(f"\nquickstart seed={seed}: {wall:.0f} s wall on {os.cpu_count()} cores, "
          f"load average {load_before[0]:.2f} before / {load_after[0]:.2f} after")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    record = {"seed": int(seed), "wall_s": round(wall, 1), "cpu_count": os.cpu_count(),
              "loadavg_before": load_before, "loadavg_after": load_after, "checks": checks,
              "results": {k: v for k, v in results.items() if k not in ("examples",)}}
    dest = ROOT / "benchmarks" / "results" / f"quickstart-seed{seed}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp_dest = dest.with_name(f".{dest.name}.tmp")
    tmp_dest.write_text(json.dumps(record, indent=2))
    os.replace(tmp_dest, dest)
    print(f"written {dest.relative_to(ROOT)}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
