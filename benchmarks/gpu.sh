#!/usr/bin/env bash
# One GPU session's worth of measurement, in under 5 minutes, with what the GPU machine has
# (Python 3.12, torch, triton, transformers, timm, einops, pluggy, peft, pytest-benchmark; no
# sam2, hydra-core, iopath, rasterio or xformers; no network):
#   1. set-up: the SDK and kernels installed with pip --no-deps (GPU machine only), wheels in .whl/ if any
#   2. correctness first: every kernel vs its reference, fp32 and bf16 (benchmarks/check_kernels.py);
#      a failure stops the run before any timing
#   3. kernel benchmarks (MMA, HCA, SAP; forward, backward, forward+backward) and the end-to-end
#      benchmark (batched inference, LoRA step), one pytest session whose rows go to
#      benchmarks/results/<device>.json.partial as they come and to <device>.json at the end
# Without a GPU it runs the same steps on the CPU (kernels under TRITON_INTERPRET=1 at small
# shapes, GPU-only parts skipped) and blocks the packages the GPU machine lacks, so a dry run here
# shows the GPU run will not trip over them. Usage: bash benchmarks/gpu.sh   (PYTHON=... to pick one)
# Environment: BENCH_STAGE_SECONDS (default 200: the benchmark session's limit),
#              BENCH_BLOCK_IMPORTS (CPU default: rasterio,sam2,hydra,iopath,xformers,imagecodecs).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
T0=$(date +%s)
RESULTS=$ROOT/benchmarks/results
mkdir -p "$RESULTS"
say() { printf '[gpu.sh %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

export PYTHONPATH="$ROOT:$ROOT/kernels:$ROOT/plugins/sar:$ROOT/plugins/multispectral${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  GPU=1
  say "GPU: $(nvidia-smi -L | head -1)"
  if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      && export PYTHONPATH="$PYTHONPATH:/tmp/site" && say "wheels from .whl/ installed"
  fi
  "$PY" -m pip install -q --no-deps --no-build-isolation -e . -e kernels >/tmp/gpu-sh-pip.log 2>&1 \
    && say "earthmind-sdk and earthmind-kernels installed (--no-deps, editable)" \
    || say "pip install failed (see /tmp/gpu-sh-pip.log); running from PYTHONPATH"
else
  GPU=0
  say "no GPU: CPU dry run (kernels under TRITON_INTERPRET=1, GPU-only parts skipped); nothing installed"
  BLOCK=${BENCH_BLOCK_IMPORTS-rasterio,sam2,hydra,iopath,xformers,imagecodecs}
  if [ -n "$BLOCK" ]; then  # behave like the GPU machine: these packages are not there
    SHIM=$(mktemp -d)
    cat >"$SHIM/sitecustomize.py" <<PYEOF
import sys
BLOCKED = set("$BLOCK".split(","))
class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by benchmarks/gpu.sh: absent on the GPU machine)")
        return None
sys.meta_path.insert(0, _Absent())
PYEOF
    export PYTHONPATH="$SHIM:$PYTHONPATH"
    say "blocked as on the GPU machine: $BLOCK"
  fi
fi

"$PY" - <<'PYEOF'
import importlib, platform, torch
def present(m):
    try:
        return importlib.util.find_spec(m) is not None
    except ImportError:  # blocked (CPU dry run)
        return False
have = {m: present(m) for m in ("triton", "transformers", "peft", "xformers", "sam2", "rasterio")}
print(f"python {platform.python_version()}, torch {torch.__version__}, cuda {torch.cuda.is_available()}"
      + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "")
      + ", " + ", ".join(f"{m} {'yes' if v else 'absent'}" for m, v in have.items()))
if not have["xformers"]:
    print("xformers absent: the vision encoder uses torch SDPA; the xformers path is skipped")
PYEOF

CARD=$("$PY" -c "import torch; print(torch.cuda.get_device_name().replace(' ', '_') if torch.cuda.is_available() else 'cpu')")
PREFIX=$([ "$GPU" = 1 ] && echo "cuda-$CARD" || echo cpu)

say "correctness: kernels vs references (fp32, bf16)"
if ! timeout 90 "$PY" benchmarks/check_kernels.py --out "$RESULTS/$PREFIX-check.json"; then
  say "correctness check FAILED or timed out: no timings taken (see $RESULTS/$PREFIX-check.json)"
  [ -n "${OUT:-}" ] && cp "$RESULTS/$PREFIX-check.json" "$OUT"/ 2>/dev/null
  exit 1
fi

say "benchmarks: kernels (MMA, HCA, SAP x forward/backward/full), then end to end"
# only pytest-benchmark is loaded: other installed plugins (hydra's, here) must not matter
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 timeout "${BENCH_STAGE_SECONDS:-200}" "$PY" -m pytest -p pytest_benchmark.plugin \
  -p no:cacheprovider -q -s \
  benchmarks/test_bench_mma.py benchmarks/test_bench_hca.py benchmarks/test_bench_sap.py benchmarks/test_bench_e2e.py \
  --benchmark-json="$RESULTS/$PREFIX-pytest-benchmark.json" 2>&1 \
  | grep -E '^(mma|hca|sap|e2e) |passed|failed|error|skipped|Error' 
RC=${PIPESTATUS[0]}
if [ -f "$RESULTS/$PREFIX.json.partial" ]; then  # killed by the time limit: keep what was measured
  mv "$RESULTS/$PREFIX.json.partial" "$RESULTS/$PREFIX.json"
  say "benchmark session stopped early (rc $RC): $RESULTS/$PREFIX.json holds the rows measured so far"
fi
"$PY" - "$RESULTS/$PREFIX.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"\n{d['device']} ({d['dtype']}), load average {d.get('load_average')}")
for r in d["ratios"]:
    extra = f", peak memory {r['peak_memory_reduction_vs_original']:.1f}x less" if "peak_memory_reduction_vs_original" in r else ""
    print(f"{r['op']:4s} {r.get('mode', 'forward'):8s} {r['case']:26s} {r['provider']:9s} {r['speedup_vs_original']:6.2f}x vs original{extra}")
for r in d["rows"]:
    if r["op"] == "e2e":
        keys = ("images_per_second", "speedup_vs_batch1", "samples_per_second", "peak_bytes")
        print(f"e2e  {r['mode']:9s} {r['provider']:8s} {r['seconds_min'] * 1e3:9.1f} ms  "
              + "  ".join(f"{k} {r[k]:.3g}" for k in keys if k in r))
PYEOF
[ -n "${OUT:-}" ] && cp "$RESULTS/$PREFIX"*.json "$OUT"/ 2>/dev/null
say "done (rc $RC); results in $RESULTS/$PREFIX.json"
exit "$RC"
