"""SAP loss (forward + backward): [SEG]-row q/k path vs the last layer's full eager attention
(the ``output_attentions`` route; the real original keeps that L x L map for EVERY layer, so the
memory ratio here is a lower bound). Providers: triton, reference, compile, original."""
import pytest
import torch

from earthmind_sdk.model.fusion import sap

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
DTYPE = torch.bfloat16 if CUDA else torch.float32
#: (batch, seq len, heads, kv heads, head dim, image tokens, [SEG] rows per sample)
CASES = [(1, 4096, 16, 2, 128, 3328, 1), (2, 4096, 16, 2, 128, 3328, 2)] if CUDA else [(1, 1024, 8, 2, 64, 512, 1)]


def _inputs(B, L, H, Hkv, hd, C, R):
    q_all = torch.randn(B, H, L, hd, device=DEVICE, dtype=DTYPE, requires_grad=True)
    k = torch.randn(B, Hkv, L, hd, device=DEVICE, dtype=DTYPE, requires_grad=True)
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


def _fn(provider, q_all, k, sb, sp, img, t, H, Hkv):
    def rows_q():
        return q_all[sb, :, sp]  # (R, H, hd)

    if provider == "original":
        def f():
            loss = sap.sap_loss_from_attentions(_eager_rows(q_all, k, H, Hkv), sb, sp, img, t)
            loss.backward()
    elif provider == "triton":
        from earthmind_kernels import sap_loss

        def f():
            sap_loss(rows_q(), k, sb, sp, img, t).backward()
    elif provider == "compile":
        g = torch.compile(sap.sap_loss)

        def f():
            g(rows_q(), k, sb, sp, img, t).backward()
    else:
        def f():
            sap.sap_loss(rows_q(), k, sb, sp, img, t).backward()

    def run():
        q_all.grad = k.grad = None
        f()
    return run


@pytest.mark.parametrize("provider", ["triton", "reference", "compile", "original"])
@pytest.mark.parametrize("case", CASES, ids=[f"B{c[0]}-L{c[1]}-H{c[2]}-C{c[5]}-R{c[6]}" for c in CASES])
def test_sap(case, provider, record, skip_unavailable):
    skip_unavailable(provider)
    B, L, H, Hkv, hd, C, R = case
    inputs = _inputs(*case)
    floor = inputs[1].numel() * inputs[1].element_size() * 2  # read k, write dk
    record("sap", provider, f"B{B}-L{L}-H{H}-C{C}-R{R}", floor, _fn(provider, *inputs, H, Hkv), measure_peak=True)
