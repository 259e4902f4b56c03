"""SAP loss: [SEG]-row q/k path vs the last layer's full eager attention (the
``output_attentions`` route; the real original keeps that L x L map for EVERY layer, so the
memory ratio here is a lower bound), forward / backward / forward+backward.
Target (CUDA, 4,096 tokens): >= 10x less peak memory than the eager route."""
import pytest
import torch
from benchcore import CUDA, DEVICE, DTYPE, mode_fn, provider_fn

from earthmind_sdk.model.fusion import sap

#: (batch, seq len, heads, kv heads, head dim, image tokens, [SEG] rows per sample)
CASES = [(1, 4096, 16, 2, 128, 3328, 1), (2, 4096, 16, 2, 128, 3328, 2)] if CUDA else [(1, 1024, 8, 2, 64, 512, 1)]


def _inputs(B, L, H, Hkv, hd, C, R):
    q_all = torch.randn(B, H, L, hd, device=DEVICE, dtype=DTYPE)
    k = torch.randn(B, Hkv, L, hd, device=DEVICE, dtype=DTYPE)
    sb = torch.arange(B, device=DEVICE).repeat_interleave(R)
    sp = torch.tensor([L - 1 - 3 * i for i in range(R)] * B, device=DEVICE)
    img = torch.arange(8, 8 + C, device=DEVICE).expand(B, C)
    t = torch.rand(B * R, C, device=DEVICE)
    return q_all, k, sb, sp, img, t / t.sum(-1, keepdim=True)


def _eager_rows(q_all, k, H, Hkv):
    """The eager route: full causal L x L softmax of the last layer, as output_attentions has it."""
    kk = k.repeat_interleave(H // Hkv, dim=1)
    s = torch.matmul(q_all, kk.transpose(-1, -2)) * q_all.shape[-1] ** -0.5
    L = s.shape[-1]
    causal = torch.ones(L, L, dtype=torch.bool, device=s.device).tril()
    return torch.softmax(s.masked_fill(~causal, float("-inf")), dim=-1, dtype=torch.float32)


def _forward(provider, q_all, k, sb, sp, img, t, H, Hkv):
    if provider == "original":
        return lambda: sap.sap_loss_from_attentions(_eager_rows(q_all, k, H, Hkv), sb, sp, img, t)
    f = provider_fn(provider, sap.sap_loss, None, "sap_loss")
    return lambda: f(q_all[sb, :, sp], k, sb, sp, img, t)  # the [SEG] rows' queries only


@pytest.mark.parametrize("case", CASES, ids=[f"B{c[0]}-L{c[1]}-H{c[2]}-C{c[5]}-R{c[6]}" for c in CASES])
def test_sap(case, provider, mode, record):
    B, L, H, Hkv, hd, C, R = case
    q_all, k, *rest = _inputs(*case)
    floor = k.numel() * k.element_size() * (1 if mode == "forward" else 2)  # read k (, write dk)
    fn = mode_fn(mode, _forward(provider, q_all, k, *rest, H, Hkv), [q_all, k])
    record("sap", provider, f"B{B}-L{L}-H{H}-C{C}-R{R}", floor, fn, mode=mode)
