"""Shared benchmark machinery (imported by ``conftest.py`` and the benchmark files): providers, modes, bandwidth and memory accounting, JSON out.

Run: ``pytest benchmarks/ --benchmark-json=benchmarks/results/raw.json`` (``benchmarks/gpu.sh``
on a GPU machine). Not part of ``pytest``'s default run (``testpaths`` lists ``tests`` only).
On CUDA the sizes are EarthMind-4B's (D=2048, 256 tokens x 13 tiles per sensor, bf16); on CPU
they are small (fp32). Each op runs per provider (``triton`` kernel, plain-torch ``reference``,
``compile`` = torch.compile(reference), ``original`` = the authors' formulation imported from
:mod:`earthmind_sdk.model.fusion.original`) and per mode (``forward``, ``backward``, ``full`` =
forward + backward, as Liger-Kernel's benchmarks). Every row records achieved GB/s over the
bytes-moved floor, the percentage of a copy's bandwidth measured in the same run and the peak
extra bytes allocated during one call. Rows are appended to
``benchmarks/results/<device>.json.partial`` as they come (a killed run keeps what it measured);
at the end that file, with ratios against ``original``, is moved to ``<device>.json``.
"""
from __future__ import annotations

import importlib
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
    if provider == "compile" and os.environ.get("BENCH_COMPILE") != "1":
        pytest.skip("torch.compile builds every case anew (minutes in all): set BENCH_COMPILE=1 to include it")


PROVIDERS = ["triton", "reference", "compile", "original"]
MODES = ["forward", "backward", "full"]


def provider_fn(provider: str, reference, original, kernel: str):
    """The callable one provider times: ``earthmind_kernels.<kernel>``, the reference, the
    reference under torch.compile, or the original. Skips providers this machine cannot run."""
    provider_skip(provider)
    if provider == "triton":
        return getattr(importlib.import_module("earthmind_kernels"), kernel)
    if provider == "reference":
        return reference
    if provider == "compile":
        return torch.compile(reference)
    return original


def mode_fn(mode: str, forward, leaves):
    """What one timed call runs. ``forward()`` returns the tensor to differentiate; ``leaves``
    are the inputs that need gradients. ``forward``: with autograd recording, as in training;
    ``backward``: the backward of one stored forward (graph kept); ``full``: both."""
    for t in leaves:
        t.requires_grad_(True)
    cot: list[torch.Tensor] = []

    def loss(out):
        if not cot:  # one fixed random cotangent, drawn once (not zeros: they hide wrong indexing)
            cot.append(torch.randn(out.shape, device=out.device, dtype=torch.float32))
        return (out.float() * cot[0]).sum()

    def clear():
        for t in leaves:
            t.grad = None

    if mode == "forward":
        return forward
    if mode == "backward":
        stored = loss(forward())

        def bwd():
            clear()
            stored.backward(retain_graph=True)
        return bwd
    if mode == "full":
        def full():
            clear()
            loss(forward()).backward()
        return full
    raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")


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


def results_path() -> Path:
    name = "cuda-" + DEVICE_NAME.replace(" ", "_") if CUDA else "cpu"
    return Path(os.environ.get("BENCH_RESULTS_DIR", Path(__file__).parent / "results")) / f"{name}.json"


def summary() -> dict:
    """All rows so far and, per (op, mode, case, provider), the ratios against ``original``."""
    out = {"device": DEVICE_NAME, "dtype": str(DTYPE), "torch": torch.__version__,
           "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
           "rows": ROWS, "ratios": []}
    by_key = {(r["op"], r.get("mode", "forward"), r["case"], r["provider"]): r for r in ROWS}
    for (op, mode, case, prov), r in by_key.items():
        base = by_key.get((op, mode, case, "original"))
        if base is None or prov == "original":
            continue
        ratio = {"op": op, "mode": mode, "case": case, "provider": prov,
                 "speedup_vs_original": base["seconds_min"] / r["seconds_min"]}
        if r.get("peak_bytes") and base.get("peak_bytes") is not None:
            ratio["peak_memory_reduction_vs_original"] = base["peak_bytes"] / r["peak_bytes"]
        out["ratios"].append(ratio)
    return out


def write_summary(final: bool) -> None:
    """Rewrite ``<device>.json.partial`` (via a temporary file, then a rename); when ``final``,
    move it to ``<device>.json``."""
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary(), indent=2))
    os.replace(tmp, partial)
    if final:
        os.replace(partial, path)
