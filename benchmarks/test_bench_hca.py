"""HCA: per-tile streaming entropy + relevance + mixing, forward / backward / forward+backward.
Targets (CUDA, 13 tiles x 256 tokens, D=2048): >= 5x the eager original (the per-tile formula),
and peak extra memory growing at most 2.2x when the token count doubles (the second case)."""
import pytest
import torch
from benchcore import CUDA, DEVICE, DTYPE, mode_fn, provider_fn

from earthmind_sdk.model.fusion import functional, original

T = 32  # question tokens
TILE = 256  # tokens per image tile: the entropy runs inside each tile, as the authors' v2 code does
CASES = [(1, 13 * TILE, 2048), (1, 26 * TILE, 2048)] if CUDA else [(1, 4 * TILE, 256), (1, 8 * TILE, 256)]


def _forward(provider, s, o, t):
    if provider == "original":
        return lambda: original.hca_original(s, o, t, tile=TILE)[0]
    f = provider_fn(provider, functional.hca, original.hca_original, "hca")
    return lambda: f(s, o, t, normalize="batch", tile=TILE)["tokens"]


@pytest.mark.parametrize("B,N,D", CASES, ids=[f"B{b}-N{n}-D{d}" for b, n, d in CASES])
def test_hca(B, N, D, provider, mode, record):
    s, o = (torch.randn(B, N, D, device=DEVICE, dtype=DTYPE) for _ in range(2))
    t = torch.randn(B, T, D, device=DEVICE, dtype=DTYPE)
    reads = {"forward": 3, "backward": 5, "full": 8}[mode]  # s, o, out (+ grad in, ds, do)
    fn = mode_fn(mode, _forward(provider, s, o, t), [s, o, t])
    record("hca", provider, f"B{B}-N{N}-D{D}", reads * B * N * D * s.element_size(), fn, mode=mode)
