"""Small launch helpers shared by the kernels."""
from __future__ import annotations

import os

import torch
import triton


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def check_device(*tensors: torch.Tensor) -> None:
    """Triton runs CUDA tensors, or CPU tensors under TRITON_INTERPRET=1 (tests)."""
    for t in tensors:
        if t is not None and not t.is_cuda and not interpreting():
            raise RuntimeError(f"earthmind-kernels: tensor on {t.device}; the Triton kernels need CUDA "
                               "(or TRITON_INTERPRET=1). Use EARTHMIND_KERNELS=reference on CPU.")


def pow2(n: int, lo: int = 16, hi: int | None = None) -> int:
    p = max(lo, triton.next_power_of_2(max(int(n), 1)))
    return min(p, hi) if hi is not None else p
