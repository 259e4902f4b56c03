"""Choose the Triton kernels or the plain-torch references for the fusion hot path.

``EARTHMIND_KERNELS``: ``auto`` (default: Triton when ``earthmind-kernels`` is installed and
the tensors are on CUDA, else the references), ``triton`` (always the kernels; an error if the
package is missing or the tensors cannot run them) or ``reference``. The core never needs
the kernels package.
"""
from __future__ import annotations

import importlib
import os
from typing import Any

import torch

ENV = "EARTHMIND_KERNELS"
CHOICES = ("auto", "triton", "reference")


def mode() -> str:
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise ValueError(f"{ENV}={value!r}: expected one of {', '.join(CHOICES)}")
    return value


def kernels_module() -> Any | None:
    """The ``earthmind_kernels`` package, or None when it (or triton) is not importable."""
    try:
        return importlib.import_module("earthmind_kernels")
    except ImportError:
        return None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def use_triton(*tensors: torch.Tensor) -> bool:
    """Whether this call goes to the Triton kernels."""
    m = mode()
    if m == "reference":
        return False
    on_cuda = all(t.is_cuda for t in tensors)
    if m == "auto":  # import the kernels only when they could run: CPU runs never touch triton
        return on_cuda and kernels_module() is not None
    mod = kernels_module()
    runnable = on_cuda or _interpreting()
    if m == "triton":
        if mod is None:
            raise ImportError(f"{ENV}=triton but the 'earthmind-kernels' package (or triton) is not importable; "
                              f"install kernels/ or set {ENV}=reference")
        if not runnable:
            raise RuntimeError(f"{ENV}=triton but the tensors are on {tensors[0].device}; Triton kernels need CUDA "
                               f"(or TRITON_INTERPRET=1 for testing)")
        return True
    return False


def mma(sar, opt, query):
    """(tokens (B, 2N, D), w (B, N)) by kernel or reference."""
    if use_triton(sar, opt, query):
        return kernels_module().mma(sar, opt, query)
    from .functional import mma as ref

    return ref(sar, opt, query)


def mma_into(sar, opt, query, out, positions, out_row=0):
    """Write w*SAR at ``positions[:, :N]`` and w*optical at ``positions[:, N:]`` of rows
    ``out_row ..`` of ``out`` (rows, L, D) in place -> (out, w). The kernel writes straight into
    ``out``; the reference builds the (B, 2N, D) tokens first and scatters them."""
    if use_triton(sar, opt, query, out):
        return kernels_module().mma_into(sar, opt, query, out, positions, out_row)
    from .functional import mma as ref

    tokens, w = ref(sar, opt, query)
    rows = out[out_row:out_row + sar.shape[0]]
    rows.scatter_(1, positions.long()[..., None].expand(-1, -1, out.shape[-1]), tokens.to(out.dtype))
    return out, w


def hca(sar, opt, text=None, text_mask=None, **kw):
    """HCA result dict by kernel or reference. Padding masks always take the reference."""
    if kw.get("token_mask") is None and use_triton(sar, opt):
        kw.pop("token_mask", None)
        return kernels_module().hca(sar, opt, text, text_mask, **kw)
    from .functional import hca as ref

    return ref(sar, opt, text, text_mask, **kw)


def sap_loss(q_seg, k, seg_batch, seg_pos, img_pos, target, key_mask=None, scale=None):
    if use_triton(q_seg, k):
        return kernels_module().sap_loss(q_seg, k, seg_batch, seg_pos, img_pos, target, key_mask, scale)
    from .sap import sap_loss as ref

    return ref(q_seg, k, seg_batch, seg_pos, img_pos, target, key_mask, scale)
