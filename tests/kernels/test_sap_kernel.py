import pytest
import torch

from earthmind_kernels import sap_loss
from earthmind_sdk.model.fusion import sap as ref


def _case(dtype, L=41, C=9, hd=16, H=4, Hkv=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(3, H, hd, generator=g).to(dtype).requires_grad_()
    k = torch.randn(2, Hkv, L, hd, generator=g).to(dtype).requires_grad_()
    sb, sp = torch.tensor([0, 1, 1]), torch.tensor([L - 1, L - 11, L - 3])
    img = torch.stack([torch.arange(5, 5 + C), torch.arange(3, 3 + C)])
    km = torch.ones(2, L, dtype=torch.bool)
    km[1, :2] = False  # left padding of sample 1
    t = torch.rand(3, C, generator=g)
    t[0, 2] = 0.0  # zero target mass must contribute nothing
    return q, k, sb, sp, img, t / t.sum(-1, keepdim=True), km


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("L,C,hd", [(41, 9, 16), (70, 33, 24)], ids=["L41-C9-hd16", "L70-C33-hd24"])
def test_sap_loss_and_grads(L, C, hd, dtype, poison, close):
    q, k, sb, sp, img, t, km = _case(dtype, L, C, hd)
    loss = sap_loss(q, k, sb, sp, img, t, km)
    q32, k32 = q.detach().float().requires_grad_(), k.detach().float().requires_grad_()
    loss_r = ref.sap_loss(q32, k32, sb, sp, img, t, km)
    close("loss", loss.reshape(1), loss_r.reshape(1), dtype)
    got = torch.autograd.grad(loss * 2.0, (q, k))
    want = torch.autograd.grad(loss_r * 2.0, (q32, k32))
    for name, a, e in zip(("d_q", "d_k"), got, want):
        close(name, a, e, dtype, scale=5.0 if dtype == torch.float32 else 1.0)


def test_sap_rejects_mismatched_target():
    q, k, sb, sp, img, t, km = _case(torch.float32)
    with pytest.raises(ValueError, match="target must be"):
        sap_loss(q, k, sb, sp, img, t[:, :-1], km)
