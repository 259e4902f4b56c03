import pytest
import torch

from earthmind_sdk.contracts import TokenSet
from earthmind_sdk.model.fusion import dispatch, functional, original
from earthmind_sdk.model.fusion.prune import prune
from earthmind_sdk.plugins import registry

D = 24


def _sets(B=2, N=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [TokenSet(torch.randn(B, N, D, generator=g), "sar", grid=(1, N)),
            TokenSet(torch.randn(B, N, D, generator=g), "optical", grid=(1, N))]


def test_fusions_are_registered():
    assert {"concat", "mma", "hca"} <= set(registry("fusions").names())


def test_concat_orders_primary_first():
    sets = _sets()
    out = registry("fusions").build("concat", dim=D)(sets)
    assert torch.equal(out.tokens, torch.cat([sets[0].tokens, sets[1].tokens], 1))
    assert set(out.sensor_weights) == {"sar", "optical"}
    assert torch.equal(out.weights, torch.ones(2, 14))


def test_mma_matches_formula_and_original():
    sets = _sets()
    fusion = registry("fusions").build("mma", dim=D)
    with torch.no_grad():
        fusion.local_query.copy_(torch.randn(2, D) * 0.3)
    out = fusion(sets)
    s, o, Q = sets[0].tokens, sets[1].tokens, fusion.local_query.detach()
    score = torch.stack([(Q[q] * s * o).sum(-1) for q in range(2)]).sum(0)
    w = torch.sigmoid(score)
    assert torch.allclose(out.sensor_weights["sar"], w, atol=1e-5)
    assert torch.allclose(out.tokens, torch.cat([s * w[..., None], o * w[..., None]], 1), atol=1e-5)
    tok_o, w_o = original.mma_original(s, o, Q)
    assert torch.allclose(out.tokens, tok_o, atol=1e-5) and torch.allclose(w, w_o, atol=1e-6)
    out.tokens.sum().backward()
    assert fusion.local_query.grad is not None and fusion.local_query.grad.abs().sum() > 0


def test_mma_without_reweight_is_concat():
    sets = _sets()
    out = registry("fusions").build("mma", dim=D, reweight=False)(sets)
    assert torch.equal(out.tokens, torch.cat([sets[0].tokens, sets[1].tokens], 1))


@pytest.mark.parametrize("with_text", [False, True])
def test_hca_matches_original_in_batch_mode(with_text):
    sets = _sets(N=9)
    text = torch.randn(2, 4, D) if with_text else None
    out = registry("fusions").build("hca", dim=D, normalize="batch")(sets, text)
    fused, alpha = original.hca_original(sets[0].tokens, sets[1].tokens, text)
    assert out.tokens.shape == (2, 9, D)
    assert torch.allclose(out.tokens, fused, atol=1e-4)
    assert torch.allclose(out.sensor_weights["sar"], alpha[:, 0], atol=2e-4)
    assert torch.allclose(out.sensor_weights["sar"] + out.sensor_weights["optical"], torch.ones(2, 9))


def test_hca_sample_normalisation_is_independent_of_batch_mates():
    sets = _sets(B=2, N=9)
    hca = registry("fusions").build("hca", dim=D)
    both = hca(sets)
    alone = hca([TokenSet(ts.tokens[:1], ts.sensor) for ts in sets])
    assert torch.allclose(both.tokens[:1], alone.tokens, atol=1e-6)
    batch = registry("fusions").build("hca", dim=D, normalize="batch")
    b_both = batch(sets)
    b_alone = batch([TokenSet(ts.tokens[:1], ts.sensor) for ts in sets])
    assert not torch.allclose(b_both.tokens[:1], b_alone.tokens, atol=1e-6)


def test_hca_text_relevance_steers_towards_the_matching_sensor():
    sets = _sets(B=1, N=5)
    text = sets[1].tokens[:, :2].clone()  # the question "looks like" optical tokens 0 and 1
    out = registry("fusions").build("hca", dim=D, rel_mix=1.0)(sets, text)
    assert (out.sensor_weights["optical"][0, :2] > 0.9).all()


def test_hca_padding_mask_zeroes_padded_tokens():
    sets = _sets(B=2, N=6)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    for ts in sets:
        ts.mask = mask
    out = registry("fusions").build("hca", dim=D)(sets)
    assert torch.equal(out.tokens[1, 4:], torch.zeros(2, D))
    ref = functional.hca(sets[0].tokens[1:, :4], sets[1].tokens[1:, :4])
    assert torch.allclose(out.tokens[1, :4], ref["tokens"][0], atol=1e-5)


def test_self_entropy_chunked_equals_full():
    x = torch.nn.functional.normalize(torch.randn(2, 37, D, dtype=torch.float64), dim=-1).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: functional.self_entropy(x, 0.1, None, 8), (x,))
    assert torch.allclose(functional.self_entropy(x, 0.1, None, 8), functional.self_entropy_naive(x, 0.1))


@pytest.mark.parametrize("name", ["concat", "mma", "hca"])
def test_keep_ratio_one_is_identity_and_pruning_keeps_order(name):
    sets = _sets(N=8)
    full = registry("fusions").build(name, dim=D)
    pruned = registry("fusions").build(name, dim=D, keep_ratio=1.0)
    pruned.load_state_dict(full.state_dict())
    a, b = full(sets), pruned(sets)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.weights, b.weights)
    half = prune(a, 0.5)
    M = a.tokens.shape[1]
    assert half.tokens.shape[1] == M // 2
    assert (half.source_index.diff(dim=1) > 0).all(), "kept tokens must stay in spatial order"
    top = a.weights.topk(M // 2, dim=1).values.min(1).values
    assert (half.weights >= top[:, None] - 1e-7).all()
    assert torch.equal(half.tokens, a.tokens.gather(1, half.source_index[..., None].expand(-1, -1, D)))


def test_bad_inputs_say_what_and_where():
    sets = _sets()
    with pytest.raises(ValueError, match="exactly 2 token sets"):
        registry("fusions").build("hca", dim=D)(sets[:1])
    bad = [sets[0], TokenSet(torch.randn(2, 5, D), "optical")]
    with pytest.raises(ValueError, match="'sar' .* vs 'optical'"):
        registry("fusions").build("mma", dim=D)(bad)
    with pytest.raises(ValueError, match="must be \\(batch, tokens, 32\\)"):
        registry("fusions").build("concat", dim=32)(sets)


def test_dispatch_env(monkeypatch):
    s = torch.randn(1, 3, D)
    monkeypatch.setenv(dispatch.ENV, "reference")
    assert dispatch.use_triton(s) is False
    monkeypatch.setenv(dispatch.ENV, "auto")
    assert dispatch.use_triton(s) is False  # CPU tensors never go to Triton in auto mode
    monkeypatch.setenv(dispatch.ENV, "bogus")
    with pytest.raises(ValueError, match="EARTHMIND_KERNELS"):
        dispatch.mode()
    monkeypatch.setenv(dispatch.ENV, "triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(dispatch, "kernels_module", lambda: None)
    with pytest.raises(ImportError, match="earthmind-kernels"):
        dispatch.use_triton(s)
