"""SAP from [SEG]-row q/k equals SAP from full eager ``output_attentions`` on a tiny Qwen2."""
import pytest
import torch

from earthmind_sdk.model.fusion import sap


@pytest.fixture
def tiny_qwen2(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    cfg._attn_implementation = "eager"
    return Qwen2ForCausalLM(cfg).eval()


def _batch(L=30, C=10):
    g = torch.Generator().manual_seed(1)
    embeds = torch.randn(2, L, 64, generator=g) * 0.5
    attn_mask = torch.ones(2, L, dtype=torch.long)
    attn_mask[1, -4:] = 0  # right padding in sample 1
    img = torch.stack([torch.arange(3, 3 + C), torch.arange(5, 5 + C)])
    seg_b, seg_p = torch.tensor([0, 0, 1]), torch.tensor([L - 1, L - 5, L - 6])
    t = torch.rand(3, C, generator=g)
    t[:, :3] = 0
    return embeds, attn_mask, img, seg_b, seg_p, t / t.sum(-1, keepdim=True)


def test_sap_from_qk_equals_sap_from_eager_attentions(tiny_qwen2):
    lm = tiny_qwen2
    embeds, am, img, sb, sp, t = _batch()
    e1 = embeds.clone().requires_grad_()
    out = lm(inputs_embeds=e1, attention_mask=am, output_attentions=True)
    loss_eager = sap.sap_loss_from_attentions(out.attentions[-1], sb, sp, img, t)
    (g_eager,) = torch.autograd.grad(loss_eager, e1)

    e2 = embeds.clone().requires_grad_()
    with sap.LastLayerQK(lm) as cap:
        lm(inputs_embeds=e2, attention_mask=am)
    q, k = cap.qk(sb, sp)
    loss = sap.sap_loss(q, k, sb, sp, img, t, key_mask=am.bool())
    (g,) = torch.autograd.grad(loss, e2)
    assert torch.allclose(loss, loss_eager, rtol=1e-5, atol=1e-6)
    assert torch.allclose(g, g_eager, rtol=1e-4, atol=1e-7)
    assert g.abs().sum() > 0
