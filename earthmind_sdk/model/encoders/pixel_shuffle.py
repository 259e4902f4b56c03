"""InternVL pixel shuffle: fold each r x r block of patch tokens into one token with r*r*C channels.

Channel order inside a folded token is (row offset, column offset, channel), which is what
InternVL's view/permute sequence produces with ``ps_version="v2"``; ``"v1"`` additionally
transposes the token grid (the original's bug, kept for checkpoints trained with it).
"""
from __future__ import annotations

import torch


def pixel_shuffle(x: torch.Tensor, scale: float = 0.5, version: str = "v2") -> torch.Tensor:
    """(n, h, w, c) -> (n, h*scale, w*scale, c/scale^2)."""
    if version not in ("v1", "v2"):
        raise ValueError(f"ps_version must be 'v1' or 'v2', got {version!r}")
    n, h, w, c = x.shape
    r = round(1.0 / scale)
    if abs(r * scale - 1.0) > 1e-6:
        raise ValueError(f"downsample_ratio must be 1/integer, got {scale}")
    if h % r or w % r:
        raise ValueError(f"pixel shuffle by {r}: the token grid {h}x{w} is not divisible by {r}")
    x = x.reshape(n, h // r, r, w // r, r, c).permute(0, 1, 3, 2, 4, 5).reshape(n, h // r, w // r, r * r * c)
    if version == "v1":
        x = x.transpose(1, 2).contiguous()
    return x
