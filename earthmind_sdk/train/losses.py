"""EarthMind's training losses (weights from the v1 config): LM cross-entropy (1.0), mask
sigmoid cross-entropy on importance-sampled points (2.0), Dice (0.5) and SAP KL (0.1).

The point sampling follows the Mask2Former/Sa2VA recipe: oversample 3x uniformly at random,
keep the 75 % most uncertain (|logit| smallest) and fill the rest at random; the default
12,544 points is the released setting (112 x 112).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

DEFAULT_WEIGHTS = {"lm": 1.0, "mask": 2.0, "dice": 0.5, "sap": 0.1}


def sample_points(logits: torch.Tensor, num_points: int = 12544, oversample: float = 3.0,
                  importance: float = 0.75, generator: torch.Generator | None = None) -> torch.Tensor:
    """(K, H, W) logits -> (K, P, 2) point coordinates in [0, 1] (x, y), uncertainty-weighted."""
    k = logits.shape[0]
    n_over = int(num_points * oversample)
    coords = torch.rand(k, n_over, 2, device=logits.device, generator=generator)
    sampled = _point_sample(logits[:, None].float(), coords)[:, 0]  # (K, n_over)
    n_imp = int(importance * num_points)
    idx = (-sampled.abs()).topk(n_imp, dim=1).indices
    chosen = torch.gather(coords, 1, idx[..., None].expand(-1, -1, 2))
    rest = torch.rand(k, num_points - n_imp, 2, device=logits.device, generator=generator)
    return torch.cat([chosen, rest], dim=1)


def _point_sample(x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear values of (K, C, H, W) at (K, P, 2) coords in [0, 1] -> (K, C, P)."""
    grid = coords[:, :, None] * 2.0 - 1.0
    return F.grid_sample(x, grid, align_corners=False)[..., 0]


def mask_losses(logits: torch.Tensor, target: torch.Tensor, *, num_points: int = 12544,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmoid CE and Dice between (K, H, W) mask logits and (K, H', W') binary targets,
    both evaluated at the same sampled points (target sizes may differ from the logits')."""
    if logits.shape[0] != target.shape[0]:
        raise ValueError(f"{logits.shape[0]} predicted masks but {target.shape[0]} target masks")
    if logits.shape[0] == 0:
        zero = logits.sum() * 0.0
        return zero, zero
    with torch.no_grad():
        coords = sample_points(logits.detach(), num_points, generator=generator)
        tgt = _point_sample(target[:, None].float(), coords)[:, 0]
    pred = _point_sample(logits[:, None].float(), coords)[:, 0]
    ce = F.binary_cross_entropy_with_logits(pred, tgt, reduction="none").mean(1).mean()
    return ce, dice_loss(pred, tgt)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - (2|P∩T| + eps) / (|P| + |T| + eps) on sigmoid probabilities, mean over masks."""
    p = logits.sigmoid().flatten(1)
    t = target.flatten(1)
    num = 2 * (p * t).sum(1) + eps
    den = p.sum(1) + t.sum(1) + eps
    return (1 - num / den).mean()


@dataclass
class LossReport:
    total: torch.Tensor
    parts: dict[str, float]


def combine(parts: dict[str, torch.Tensor], weights: dict[str, float] | None = None) -> LossReport:
    """Weighted sum of named losses; unknown names are refused rather than silently dropped."""
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    unknown = sorted(set(parts) - set(weights))
    if unknown:
        raise KeyError(f"no weight for loss(es) {unknown}; known: {sorted(weights)}")
    total = sum(weights[k] * v for k, v in parts.items())
    return LossReport(total, {k: float(v.detach()) for k, v in parts.items()})
