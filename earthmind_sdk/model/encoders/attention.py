"""Attention backend: xformers on CUDA when installed, else torch SDPA (CPU and everything else).

xformers has no CPU kernels, so it is only tried for CUDA tensors; any failure falls back.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

try:  # pragma: no cover - GPU-only path
    import xformers.ops as _xops
except Exception:  # noqa: BLE001 - not installed or broken: SDPA serves
    _xops = None


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Non-causal attention on (B, heads, N, head_dim) tensors -> same shape."""
    if _xops is not None and q.is_cuda:  # pragma: no cover - needs CUDA + xformers
        try:
            out = _xops.memory_efficient_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
            return out.transpose(1, 2)
        except Exception:  # noqa: BLE001 - unsupported dtype/shape: use SDPA
            pass
    return F.scaled_dot_product_attention(q, k, v)
