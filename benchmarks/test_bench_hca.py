"""HCA: streaming entropy + relevance + mixing. Providers: triton, reference, compile, original.
Also records peak memory: O(N*D) for ours, O(N^2) for the original full softmax."""
import pytest
import torch

from earthmind_sdk.model.fusion import functional, original

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
DTYPE = torch.bfloat16 if CUDA else torch.float32
CASES = [(1, 3328, 2048), (8, 3328, 2048)] if CUDA else [(1, 1024, 256), (2, 2048, 256)]
T = 32  # question tokens
TILE = 256  # tokens per image tile: the entropy runs inside each tile, as the authors' v2 code does


def _fn(provider, s, o, t):
    if provider == "triton":
        from earthmind_kernels import hca
        return lambda: hca(s, o, t, normalize="batch", tile=TILE)
    if provider == "reference":
        return lambda: functional.hca(s, o, t, normalize="batch", tile=TILE)
    if provider == "compile":
        f = torch.compile(functional.hca)
        return lambda: f(s, o, t, normalize="batch", tile=TILE)
    return lambda: original.hca_original(s, o, t, tile=TILE)


@pytest.mark.parametrize("provider", ["triton", "reference", "compile", "original"])
@pytest.mark.parametrize("B,N,D", CASES, ids=[f"B{b}-N{n}-D{d}" for b, n, d in CASES])
@torch.no_grad()
def test_hca(B, N, D, provider, record, skip_unavailable):
    skip_unavailable(provider)
    s, o = (torch.randn(B, N, D, device=DEVICE, dtype=DTYPE) for _ in range(2))
    t = torch.randn(B, T, D, device=DEVICE, dtype=DTYPE)
    el = s.element_size()
    record("hca", provider, f"B{B}-N{N}-D{D}", 3 * B * N * D * el, _fn(provider, s, o, t), measure_peak=True)
