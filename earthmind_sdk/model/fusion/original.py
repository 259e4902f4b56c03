"""The fusions as the EarthMind authors formulated them: BASELINES for benchmarks and tests.

Not used by the SDK's model. They follow the published code's structure, one image tile per row
of a (tiles, c, D) batch: MMA stacks the two token sets into a (B, 2, N, D) tensor and joins each
tile's [SAR; optical]; HCA normalises tokens by ``x / (|x| + 1e-6)``, builds the full c x c
self-similarity softmax of each tile, takes ``-sum A log(A + 1e-10)`` as the entropy and
min-max normalises it over all tiles of the batch (for one sample: over all its tiles, as the
v2 code does). Numbers equal :mod:`.functional` (with ``normalize="batch"`` and the same ``tile``
for HCA) to float rounding; speed and memory do not.
"""
from __future__ import annotations

from typing import Optional

import torch

Tensor = torch.Tensor
_EPS = 1e-6


def mma_original(sar: Tensor, opt: Tensor, query: Tensor, tile: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """Stack, per-query scores, sigmoid, scale the stack, join [SAR_t; optical_t] tile by tile."""
    B, N, D = sar.shape
    c = N if tile is None else int(tile)
    stacked = torch.stack([sar, opt], dim=1)                       # (B, 2, N, D)
    mutual = stacked[:, 0] * stacked[:, 1]                          # (B, N, D)
    scores = torch.einsum("bnd,qd->bnq", mutual, query).sum(-1)     # (B, N)
    w = torch.sigmoid(scores)
    weighted = stacked * w[:, None, :, None]                        # (B, 2, N, D)
    tiles = weighted.reshape(B, 2, N // c, c, D).transpose(1, 2)    # (B, T, 2, c, D)
    return tiles.reshape(B, 2 * N, D), w


def _unit(x: Tensor) -> Tensor:
    return x / (x.norm(dim=-1, keepdim=True) + _EPS)


def hca_original(sar: Tensor, opt: Tensor, text: Optional[Tensor] = None, text_mask: Optional[Tensor] = None,
                 tau: float = 0.1, text_tau: float = 0.2, rel_mix: float = 0.7,
                 tile: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """Full c x c softmax per tile and modality, min-max over all tiles of the batch;
    returns (fused (B, N, D), alpha (B, 2, N))."""
    B, N, D = sar.shape
    c = N if tile is None else int(tile)
    stacked = torch.stack([sar, opt], dim=1)                        # (B, 2, N, D)
    xn = _unit(stacked)
    xt = xn.reshape(B, 2, N // c, c, D)                             # one softmax per tile
    attn = torch.softmax(torch.matmul(xt, xt.transpose(-1, -2)) / tau, dim=-1)
    ent = -(attn * torch.log(attn + 1e-10)).sum(-1).reshape(B, 2, N)
    lo = ent.amin(dim=(0, 2), keepdim=True)
    hi = ent.amax(dim=(0, 2), keepdim=True)
    quality = 1.0 - (ent - lo) / (hi - lo + _EPS)
    if text is not None and text.shape[1] > 0:
        cos = torch.matmul(xn, _unit(text)[:, None].transpose(-1, -2))  # (B, 2, N, T)
        if text_mask is not None:
            cos = cos.masked_fill(~text_mask.bool()[:, None, None, :], float("-inf"))
        rel = cos.max(-1).values / text_tau
    else:
        rel = torch.zeros_like(quality)
    alpha = rel_mix * torch.softmax(rel, dim=1) + (1 - rel_mix) * torch.softmax(quality, dim=1)
    fused = (alpha[..., None] * stacked).sum(1)
    return fused, alpha
