"""MMA: fused reweight + tile-by-tile join, forward / backward / forward+backward per provider.
Target (CUDA, D=2048, 2 x 13 tiles x 256 tokens, bf16): forward at >= 80 % of the copy bandwidth
and >= 3x the eager original."""
import pytest
import torch
from benchcore import CUDA, DEVICE, DTYPE, mode_fn, provider_fn

from earthmind_sdk.model.fusion import functional, original
from earthmind_sdk.model.fusion.tiles import as_tiles

TILE = 256
CASES = [(1, 13 * TILE, 2048), (8, 13 * TILE, 2048)] if CUDA else [(1, 4 * TILE, 256), (4, 8 * TILE, 256)]
#: bytes moved per B*N*D element: forward reads s, o and writes 2 tokens; backward reads s, o
#: and the 2-token gradient and writes ds, do; full is both
FLOOR = {"forward": 4, "backward": 6, "full": 10}


def _forward(provider, s, o, q):
    B, N, D = s.shape
    if provider == "original":
        return lambda: original.mma_original(s, o, q, tile=TILE)[0]
    f = provider_fn(provider, functional.mma, original.mma_original, "mma")
    return lambda: f(as_tiles(s, TILE), as_tiles(o, TILE), q)[0].reshape(B, 2 * N, D)  # as MMAFusion does


@pytest.mark.parametrize("B,N,D", CASES, ids=[f"B{b}-N{n}-D{d}" for b, n, d in CASES])
def test_mma(B, N, D, provider, mode, record):
    s, o = (torch.randn(B, N, D, device=DEVICE, dtype=DTYPE) for _ in range(2))
    q = torch.randn(2, D, device=DEVICE, dtype=DTYPE) * 0.02
    fn = mode_fn(mode, _forward(provider, s, o, q), [s, o, q])
    record("mma", provider, f"B{B}-N{N}-D{D}", FLOOR[mode] * B * N * D * s.element_size(), fn, mode=mode)
