"""Shared benchmark machinery: device/size selection, bandwidth and memory accounting, JSON out.

Run: ``pytest benchmarks/ --benchmark-json=benchmarks/results/raw.json``. Not part of ``pytest``'s
default run (``testpaths`` lists ``tests`` only). On CUDA the sizes are EarthMind-4B's (D=2048,
256 tokens x 13 tiles per sensor, batch 1 and 8, bf16); on CPU they are small (fp32).
Every result row records achieved GB/s, the bytes-moved floor, the percentage of a copy's
bandwidth measured in the same run and (HCA, SAP) the peak bytes allocated during one call.
A summary with ratios against the original formulation is written to
``benchmarks/results/<device>.json`` at the end of the session.
"""
from __future__ import annotations

import json
import os
import platform
import time
import weakref
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
DTYPE = torch.bfloat16 if CUDA else torch.float32
DEVICE_NAME = torch.cuda.get_device_name() if CUDA else f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"

ROWS: list[dict] = []


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def kernels_available() -> bool:
    try:
        import earthmind_kernels  # noqa: F401
    except ImportError:
        return False
    return CUDA


def provider_skip(provider: str) -> None:
    if provider == "triton" and not kernels_available():
        pytest.skip("triton provider needs CUDA and the earthmind-kernels package")
    if provider == "compile" and not CUDA and os.environ.get("BENCH_COMPILE") != "1":
        pytest.skip("torch.compile on CPU is slow to build here; set BENCH_COMPILE=1 to include it")


def _time(fn, reps: int = 5) -> float:
    fn()
    sync()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


_COPY_CACHE: dict[int, float] = {}


def copy_gbps(nbytes: int) -> float:
    """Bandwidth of ``dst.copy_(src)`` moving ``nbytes`` (read + write), measured in this run."""
    n = max(nbytes // 2 // 4, 1024)
    if n not in _COPY_CACHE:
        src = torch.randn(n, device=DEVICE)
        dst = torch.empty_like(src)
        _COPY_CACHE[n] = 2 * n * 4 / _time(lambda: dst.copy_(src), reps=10) / 1e9
    return _COPY_CACHE[n]


class PeakBytes(TorchDispatchMode):
    """Peak bytes held by tensors created inside the block (CPU-friendly; on CUDA use
    ``torch.cuda.max_memory_allocated``). Views of one storage are counted once."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: dict[int, int] = {}

    def _free(self, key: int, n: int) -> None:
        self._refs[key] -= 1
        if self._refs[key] == 0:
            del self._refs[key]
            self.live -= n

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                st = t.untyped_storage()
                key, n = st.data_ptr(), st.nbytes()
                if n == 0:
                    continue
                if key not in self._refs:
                    self._refs[key] = 0
                    self.live += n
                    self.peak = max(self.peak, self.live)
                self._refs[key] += 1
                weakref.finalize(t, self._free, key, n)
        return out


def peak_bytes(fn) -> int:
    if CUDA:
        sync()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        sync()
        return torch.cuda.max_memory_allocated() - base
    with PeakBytes() as pb:
        fn()
    return pb.peak


@pytest.fixture
def record(benchmark):
    """record(op, provider, case, floor_bytes, fn, peak_fn=None): time with pytest-benchmark and
    store GB/s, % of copy bandwidth and (optionally) peak memory."""

    def _record(op: str, provider: str, case: str, floor_bytes: int, fn, measure_peak: bool = False):
        def run():
            fn()
            sync()

        benchmark.pedantic(run, rounds=20, warmup_rounds=1, iterations=1)
        t = benchmark.stats.stats.min
        gbps = floor_bytes / t / 1e9
        copy = copy_gbps(floor_bytes)
        row = {"op": op, "provider": provider, "case": case, "device": DEVICE_NAME, "dtype": str(DTYPE),
               "seconds_min": t, "seconds_median": benchmark.stats.stats.median, "floor_bytes": floor_bytes,
               "achieved_GBps": gbps, "copy_GBps": copy, "pct_of_copy": 100.0 * gbps / copy}
        if measure_peak:
            row["peak_bytes"] = peak_bytes(fn)
        benchmark.extra_info.update(row)
        ROWS.append(row)
        print(f"\n{op:5s} {provider:9s} {case:24s} {t * 1e3:9.3f} ms  {gbps:7.2f} GB/s  floor {floor_bytes / 1e6:8.2f} MB"
              f"  {row['pct_of_copy']:5.1f}% of copy ({copy:.1f} GB/s)"
              + (f"  peak {row['peak_bytes'] / 1e6:.2f} MB" if measure_peak else ""))

    return _record


def pytest_sessionfinish(session, exitstatus):
    if not ROWS:
        return
    summary = {"device": DEVICE_NAME, "dtype": str(DTYPE), "torch": torch.__version__, "rows": ROWS, "ratios": []}
    by_key = {(r["op"], r["case"], r["provider"]): r for r in ROWS}
    for (op, case, prov), r in by_key.items():
        base = by_key.get((op, case, "original"))
        if base is None or prov == "original":
            continue
        ratio = {"op": op, "case": case, "provider": prov,
                 "speedup_vs_original": base["seconds_min"] / r["seconds_min"]}
        if "peak_bytes" in r and "peak_bytes" in base and r["peak_bytes"]:
            ratio["peak_memory_reduction_vs_original"] = base["peak_bytes"] / r["peak_bytes"]
        summary["ratios"].append(ratio)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    name = "cuda-" + DEVICE_NAME.replace(" ", "_") if CUDA else "cpu"
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2))


@pytest.fixture
def skip_unavailable():
    """skip_unavailable(provider): skip providers this machine cannot run."""
    return provider_skip
