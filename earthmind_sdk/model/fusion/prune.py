"""Token pruning after any fusion, and the bookkeeping that keeps the rest consistent.

:func:`prune` keeps the top ``keep_ratio`` of fused tokens by fusion weight and returns them
in their original (spatial) order; ``source_index`` says where each kept token sat in the
unpruned fused sequence (``unpruned_length`` tokens). Region prompts (``<vp>`` token indices)
and the SAP target grid are expressed over the unpruned sequence; :func:`kept_positions`,
:func:`remap_token_indices` and :func:`remap_sap_target` move them onto the pruned one (the
batch builder for regions, the trainer's SAP through :func:`~.sap.sap_target_for_tokens`). At ``keep_ratio=1.0`` everything is returned unchanged.
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch

from earthmind_sdk.contracts import FusionOutput

Tensor = torch.Tensor


def kept_count(m: int, keep_ratio: float) -> int:
    """How many of ``m`` tokens survive: ceil(m * keep_ratio), at least 1."""
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio}")
    return max(1, min(m, math.ceil(m * keep_ratio - 1e-9)))


def prune(out: FusionOutput, keep_ratio: float) -> FusionOutput:
    """Keep the top fraction of ``out.tokens`` by ``out.weights``, in original order.

    Ties are broken towards the earlier token, so equal weights (plain concat) keep a prefix.
    ``sensor_weights`` are per input token and stay as they are.
    """
    B, M, _ = out.tokens.shape
    if out.weights.shape != (B, M):
        raise ValueError(f"prune: weights must be (batch, tokens) = {(B, M)}, got {tuple(out.weights.shape)}")
    k = kept_count(M, keep_ratio)
    prev = out.source_index
    if prev is None:
        prev = torch.arange(M, device=out.tokens.device).expand(B, M)
    full = out.full_length
    if k == M:
        return replace(out, source_index=prev, unpruned_length=full)
    # stable ranking: weight descending, then position ascending
    order = torch.argsort(out.weights.float(), dim=1, descending=True, stable=True)
    keep = order[:, :k].sort(dim=1).values
    tokens = out.tokens.gather(1, keep[..., None].expand(-1, -1, out.tokens.shape[-1]))
    return FusionOutput(tokens=tokens, weights=out.weights.gather(1, keep),
                        sensor_weights=dict(out.sensor_weights), source_index=prev.gather(1, keep),
                        unpruned_length=full)


def kept_positions(positions: Tensor, source_index: Tensor | None, m_full: int) -> Tensor:
    """Positions over one sample's unpruned sequence of ``m_full`` tokens -> positions over its
    pruned one (``source_index`` (k,)), -1 where the token was pruned; unchanged without pruning."""
    if source_index is None:
        return positions.long()
    return _inverse(source_index[None].to(positions.device), m_full)[0][positions.long()]


def _inverse(source_index: Tensor, m_full: int) -> Tensor:
    """(B, M_full) long: new position of each unpruned position, -1 where pruned."""
    B, k = source_index.shape
    inv = torch.full((B, m_full), -1, dtype=torch.long, device=source_index.device)
    inv.scatter_(1, source_index.long(), torch.arange(k, device=source_index.device).expand(B, k))
    return inv


def remap_token_indices(indices: Tensor, source_index: Tensor, batch: int, m_full: int) -> Tensor:
    """Token indices of sample ``batch`` over the unpruned sequence -> indices over the pruned
    one; pruned tokens are dropped (a region may lose some of its tokens, or all of them)."""
    new = _inverse(source_index[batch:batch + 1], m_full)[0][indices.long()]
    return new[new >= 0]


def remap_sap_target(target: Tensor, source_index: Tensor) -> Tensor:
    """SAP target (B, M_full) or rows (R, M_full) with ``source_index`` (R, k) -> (.., k),
    renormalised to sum 1. A row whose mass was all pruned becomes uniform and is flagged by
    :func:`sap_target_lost`."""
    t = target.gather(-1, source_index.long())
    total = t.sum(-1, keepdim=True)
    uniform = torch.full_like(t, 1.0 / t.shape[-1])
    return torch.where(total > 0, t / total.clamp_min(1e-30), uniform)


def sap_target_lost(target: Tensor, source_index: Tensor) -> Tensor:
    """(rows,) bool: True where pruning removed every token the target covers."""
    return target.gather(-1, source_index.long()).sum(-1) <= 0
