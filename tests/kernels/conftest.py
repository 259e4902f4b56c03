"""Kernel tests run on CPU through Triton's interpreter: set before any @triton.jit is created."""
import os

os.environ["TRITON_INTERPRET"] = "1"

import math  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

#: (atol, rtol) per dtype; bf16 compares RMS(error) <= atol + rtol * RMS(reference).
TOL = {torch.float32: (2e-4, 2e-4), torch.bfloat16: (5e-3, 2e-2)}


def _report(name, actual, expected, bad):
    idx = bad.nonzero()
    worst = (actual.float() - expected.float()).abs().flatten().argmax().item()
    return (f"{name}: {int(bad.sum())} of {bad.numel()} elements differ; first at {idx[:3].tolist()}; "
            f"worst flat index {worst}: {actual.flatten()[worst].item()} vs {expected.flatten()[worst].item()}")


def assert_close_dtype(name, actual, expected, dtype, scale=1.0):
    """Compare per the dtype's tolerance; NaN (a poisoned, unwritten element) always fails."""
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} vs {tuple(expected.shape)}"
    a, e = actual.detach().float(), expected.detach().float()
    assert not torch.isnan(a).any(), _report(name, a, e, torch.isnan(a))
    atol, rtol = TOL[dtype]
    if dtype == torch.bfloat16:
        rms = lambda x: math.sqrt(float((x ** 2).mean())) if x.numel() else 0.0  # noqa: E731
        err, ref = rms(a - e), rms(e)
        assert err <= (atol + rtol * ref) * scale, f"{name}: RMS error {err:.3g} vs RMS {ref:.3g} (bf16)"
    else:
        bad = (a - e).abs() > (atol + rtol * e.abs()) * scale
        assert not bad.any(), _report(name, a, e, bad)


@pytest.fixture
def close():
    return assert_close_dtype


@pytest.fixture
def poison(monkeypatch):
    """Every torch.empty / empty_like during the test is filled with NaN (ints: a huge value),
    so an element a kernel forgot to write shows up in the comparison."""
    real_empty, real_like = torch.empty, torch.empty_like

    def fill(t):
        if t.is_floating_point():
            t.fill_(float("nan"))
        elif t.dtype != torch.bool:
            t.fill_(torch.iinfo(t.dtype).max // 2)
        return t

    monkeypatch.setattr(torch, "empty", lambda *a, **k: fill(real_empty(*a, **k)))
    monkeypatch.setattr(torch, "empty_like", lambda *a, **k: fill(real_like(*a, **k)))
    return fill


def case_id(B, N, D, dtype):
    return f"B{B}-N{N}-D{D}-{str(dtype).replace('torch.', '')}"
