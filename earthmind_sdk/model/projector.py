"""Projectors: folded vision tokens -> the language model's embedding space.

``mlp1`` is InternVL's: LayerNorm(in) -> Linear(in, out) -> GELU -> Linear(out, out), with the
indices 0..3 the released ``mlp1.{0,1,3}`` keys expect.
"""
from __future__ import annotations

from typing import Any

from torch import nn


class MLP1(nn.Sequential):
    def __init__(self, in_dim: int, out_dim: int, eps: float = 1e-5):
        super().__init__(nn.LayerNorm(in_dim, eps=eps), nn.Linear(in_dim, out_dim), nn.GELU(),
                         nn.Linear(out_dim, out_dim))
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)

    @classmethod
    def tiny_args(cls) -> dict[str, Any]:
        return {}


class LinearProjector(nn.Linear):
    """One linear layer (for quick experiments with other backbones)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__(in_dim, out_dim)
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)

    @classmethod
    def tiny_args(cls) -> dict[str, Any]:
        return {}
