"""MMA: fused reweight + concatenate. Providers: triton, reference (eager), compile, original."""
import pytest
import torch

from earthmind_sdk.model.fusion import functional, original

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
DTYPE = torch.bfloat16 if CUDA else torch.float32
CASES = [(1, 3328, 2048), (8, 3328, 2048)] if CUDA else [(1, 1024, 256), (4, 2048, 256)]


def _fn(provider, s, o, q):
    if provider == "triton":
        from earthmind_kernels import mma
        return lambda: mma(s, o, q)
    if provider == "reference":
        return lambda: functional.mma(s, o, q)
    if provider == "compile":
        f = torch.compile(functional.mma)
        return lambda: f(s, o, q)
    return lambda: original.mma_original(s, o, q)


@pytest.mark.parametrize("provider", ["triton", "reference", "compile", "original"])
@pytest.mark.parametrize("B,N,D", CASES, ids=[f"B{b}-N{n}-D{d}" for b, n, d in CASES])
@torch.no_grad()
def test_mma(B, N, D, provider, record, skip_unavailable):
    skip_unavailable(provider)
    s, o = (torch.randn(B, N, D, device=DEVICE, dtype=DTYPE) for _ in range(2))
    q = torch.randn(2, D, device=DEVICE, dtype=DTYPE) * 0.02
    el = s.element_size()
    record("mma", provider, f"B{B}-N{N}-D{D}", 4 * B * N * D * el, _fn(provider, s, o, q))
