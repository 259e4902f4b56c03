"""The fusions as the EarthMind authors formulated them: BASELINES for benchmarks and tests.

Not used by the SDK's model. They follow the published code's structure: the two token sets
are stacked into a (B, 2, N, D) tensor, HCA builds the full N x N self-similarity softmax and
min-max normalises the entropy over the whole batch. Numbers equal :mod:`.functional` (with
``normalize="batch"`` for HCA); speed and memory do not.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def mma_original(sar: Tensor, opt: Tensor, query: Tensor) -> tuple[Tensor, Tensor]:
    """Stack, per-query scores, sigmoid, scale the stack, flatten to [SAR; optical]."""
    stacked = torch.stack([sar, opt], dim=1)                       # (B, 2, N, D)
    mutual = stacked[:, 0] * stacked[:, 1]                          # (B, N, D)
    scores = torch.einsum("bnd,qd->bnq", mutual, query).sum(-1)     # (B, N)
    w = torch.sigmoid(scores)
    weighted = stacked * w[:, None, :, None]                        # (B, 2, N, D)
    B, _, N, D = weighted.shape
    return weighted.reshape(B, 2 * N, D), w


def hca_original(sar: Tensor, opt: Tensor, text: Optional[Tensor] = None, text_mask: Optional[Tensor] = None,
                 tau: float = 0.1, text_tau: float = 0.2, rel_mix: float = 0.7) -> tuple[Tensor, Tensor]:
    """Full N x N softmax per modality, batch-wide min-max; returns (fused (B, N, D), alpha (B, 2, N))."""
    stacked = torch.stack([sar, opt], dim=1)                        # (B, 2, N, D)
    xn = F.normalize(stacked, dim=-1)
    sim = torch.matmul(xn, xn.transpose(-1, -2)) / tau              # (B, 2, N, N)
    attn = torch.softmax(sim, dim=-1)
    ent = -(attn * torch.log(attn + 1e-12)).sum(-1)                 # (B, 2, N)
    lo = ent.amin(dim=(0, 2), keepdim=True)
    hi = ent.amax(dim=(0, 2), keepdim=True)
    quality = 1.0 - (ent - lo) / (hi - lo + 1e-6)
    if text is not None:
        tn = F.normalize(text, dim=-1)
        cos = torch.matmul(xn, tn[:, None].transpose(-1, -2))       # (B, 2, N, T)
        if text_mask is not None:
            cos = cos.masked_fill(~text_mask.bool()[:, None, None, :], float("-inf"))
        rel = cos.max(-1).values / text_tau
    else:
        rel = torch.zeros_like(quality)
    alpha = rel_mix * torch.softmax(rel, dim=1) + (1 - rel_mix) * torch.softmax(quality, dim=1)
    fused = (alpha[..., None] * stacked).sum(1)
    return fused, alpha
