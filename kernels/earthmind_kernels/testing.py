"""Tolerance tables for comparing the kernels with their references, shared by the interpreter
tests (``tests/kernels``) and the on-device correctness check (``benchmarks/check_kernels.py``)."""
from __future__ import annotations

import math

import torch

#: (atol, rtol) per dtype; bf16 compares RMS(error) <= atol + rtol * RMS(reference).
TOL = {torch.float32: (2e-4, 2e-4), torch.bfloat16: (5e-3, 2e-2)}


def _report(name, actual, expected, bad):
    idx = bad.nonzero()
    worst = (actual.float() - expected.float()).abs().flatten().argmax().item()
    return (f"{name}: {int(bad.sum())} of {bad.numel()} elements differ; first at {idx[:3].tolist()}; "
            f"worst flat index {worst}: {actual.flatten()[worst].item()} vs {expected.flatten()[worst].item()}")


def assert_close_dtype(name, actual, expected, dtype, scale=1.0, reduced=False):
    """Compare per the dtype's tolerance; NaN (a poisoned, unwritten element) always fails.

    ``reduced``: each element is a sum over thousands of terms (a gradient reduced over tokens),
    so an element that cancels to near 0 still carries the rounding of its large terms: fp32
    atol then scales with the tensor's RMS (on the H200, d_query of MMA at 3,328 tokens had
    elements 1e-3 off at RMS ~300)."""
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} vs {tuple(expected.shape)}"
    a, e = actual.detach().float(), expected.detach().float()
    assert not torch.isnan(a).any(), _report(name, a, e, torch.isnan(a))
    atol, rtol = TOL[dtype]
    if reduced and dtype != torch.bfloat16 and e.numel():
        atol *= max(1.0, math.sqrt(float((e ** 2).mean())))
    if dtype == torch.bfloat16:
        rms = lambda x: math.sqrt(float((x ** 2).mean())) if x.numel() else 0.0  # noqa: E731
        err, ref = rms(a - e), rms(e)
        assert err <= (atol + rtol * ref) * scale, f"{name}: RMS error {err:.3g} vs RMS {ref:.3g} (bf16)"
    else:
        bad = (a - e).abs() > (atol + rtol * e.abs()) * scale
        assert not bad.any(), _report(name, a, e, bad)
