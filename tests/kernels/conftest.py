"""Kernel tests run on CPU through Triton's interpreter: set before any @triton.jit is created."""
import os

os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402
from earthmind_kernels.testing import TOL, assert_close_dtype  # noqa: E402,F401


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
