"""Where each token sits when several sensors' tiles are joined: tile by tile, as the authors do.

A sensor's tokens are (B, N, D) with N = T tiles x c tokens per tile (c = rows x cols of the
token grid; the whole-image thumbnail is the last tile). EarthMind v1 joins the sensors inside
each tile, ``cat([sar_tile_tokens, optical_tile_tokens], dim=1)`` on (T, c, D), so the sequence
is sar_1, opt_1, sar_2, opt_2, ...; with one tile this equals "all SAR, then all optical".
v2's HCA computes its self-similarity entropy inside each tile. Everything that derives token
positions from this layout (fusion weights, pruning, region prompts) goes through here.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

Tensor = torch.Tensor


def tile_len(n_tokens: int, grid: Optional[tuple[int, int]]) -> int:
    """Tokens per tile; without a grid the whole sequence counts as one tile."""
    if grid is None:
        return int(n_tokens)
    c = int(grid[0]) * int(grid[1])
    if c < 1 or n_tokens % c:
        raise ValueError(f"{n_tokens} tokens are not whole {grid[0]}x{grid[1]} tiles")
    return c


def as_tiles(x: Tensor, c: int) -> Tensor:
    """(B, N, ...) -> (B * T, c, ...): one row per tile (a view when ``x`` is contiguous)."""
    return x.reshape(x.shape[0] * (x.shape[1] // c), c, *x.shape[2:])


def interleave(parts: Sequence[Tensor], c: int) -> Tensor:
    """Per-sensor (B, N, ...) tensors -> (B, K * N, ...) joined tile by tile (sensor order kept)."""
    b, n = parts[0].shape[:2]
    tiles = [p.reshape(b, n // c, c, *p.shape[2:]) for p in parts]
    return torch.cat(tiles, dim=2).reshape(b, len(parts) * n, *parts[0].shape[2:])


def whole_image_span(n_out: int, n_in: int, c: int, n_sensors: int) -> tuple[int, int]:
    """(start, stop) of the primary sensor's whole-image tile (the last tile) in a fused sequence of
    ``n_out`` tokens built from ``n_sensors`` sets of ``n_in``: joined tile by tile (n_out = K n_in),
    or mixed one to one (n_out = n_in). Region prompts read their tokens there."""
    if n_out == n_in:
        return n_out - c, n_out
    if n_out == n_sensors * n_in:
        start = n_out - n_sensors * c
        return start, start + c
    raise ValueError(f"a fused sequence of {n_out} tokens from {n_sensors} x {n_in} has no whole-image tile "
                     f"(region prompts read the unpruned layout: pass the fusion's full_length)")
