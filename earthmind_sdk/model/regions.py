"""Region prompts (``<vp>``): the image tokens under each region, as EarthMind / Sa2VA insert them.

Each region (an (H, W) mask or an (x0, y0, x1, y1) box in input pixels) is nearest-resized to the
token grid of the tile that shows the whole image (the only tile, or the thumbnail, which comes
last); the tokens under it are returned in raster order. A region too small to cover any token
cell keeps the single cell at its centre, so every region yields at least one token. When the
fusion pruned tokens, the cells are looked up at their kept positions (``cell_index``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F


def region_mask(region: Any, image_size: tuple[int, int]) -> torch.Tensor:
    """A bool (H, W) mask from a mask or an (x0, y0, x1, y1) pixel box."""
    h, w = image_size
    r = torch.as_tensor(np.asarray(region) if not isinstance(region, torch.Tensor) else region)
    if r.dim() == 1:
        if r.numel() != 4:
            raise ValueError(f"region box must be (x0, y0, x1, y1), got {r.numel()} values")
        x0, y0, x1, y1 = (float(v) for v in r)
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"region box {(x0, y0, x1, y1)} is empty (needs x1 > x0 and y1 > y0)")
        ys = torch.arange(h).float() + 0.5
        xs = torch.arange(w).float() + 0.5
        return ((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :]
    if r.dim() != 2:
        raise ValueError(f"region must be an (H, W) mask or a 4-value box, got shape {tuple(r.shape)}")
    if tuple(r.shape) != (h, w):
        raise ValueError(f"region mask has shape {tuple(r.shape)} but the image is {h}x{w}")
    return r.bool()


def grid_mask(mask: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Nearest resize of a bool (H, W) mask to the token grid; never empty."""
    small = F.interpolate(mask[None, None].float(), size=tuple(grid), mode="nearest")[0, 0] > 0.5
    if not small.any():
        ys, xs = torch.nonzero(mask, as_tuple=True)
        if ys.numel() == 0:
            raise ValueError("region mask is empty")
        cy = int(ys.float().mean() * grid[0] / mask.shape[0])
        cx = int(xs.float().mean() * grid[1] / mask.shape[1])
        small[min(cy, grid[0] - 1), min(cx, grid[1] - 1)] = True
    return small


def region_embeds(image_tokens: torch.Tensor, grid: tuple[int, int], regions: Sequence[Any],
                  image_size: tuple[int, int], cell_index: torch.Tensor | None = None) -> list[torch.Tensor]:
    """image_tokens (n, D) of one image -> one (k_r, D) tensor per region.

    ``cell_index`` (rows x cols,) long: the row of ``image_tokens`` holding each token-grid cell
    of the whole image, -1 where pruning dropped it (default: the last rows x cols tokens, in
    raster order). A region keeps the tokens of its cells that are there; one with none is refused."""
    cells = int(grid[0]) * int(grid[1])
    if image_tokens.dim() != 2 or image_tokens.shape[0] < (cells if cell_index is None else 1):
        raise ValueError(f"region prompts need at least one {grid[0]}x{grid[1]} token grid, "
                         f"got image tokens of shape {tuple(image_tokens.shape)}")
    if cell_index is None:
        cell_index = torch.arange(image_tokens.shape[0] - cells, image_tokens.shape[0])
    if tuple(cell_index.shape) != (cells,):
        raise ValueError(f"cell_index must give one token row per {grid[0]}x{grid[1]} grid cell, "
                         f"got shape {tuple(cell_index.shape)}")
    cell_index = cell_index.to(image_tokens.device).long()
    out = []
    for i, region in enumerate(regions):
        try:
            sel = grid_mask(region_mask(region, image_size), grid).flatten().to(image_tokens.device)
        except ValueError as exc:
            raise ValueError(f"region {i}: {exc}") from None
        rows = cell_index[sel]
        rows = rows[rows >= 0]
        if rows.numel() == 0:
            raise ValueError(f"region {i}: token pruning kept none of the {int(sel.sum())} token(s) under it; "
                             f"raise the fusion's keep_ratio (or give a larger region)")
        out.append(image_tokens[rows])
    return out
