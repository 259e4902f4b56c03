"""Multi-tile fusion as the authors compute it: v1 joins the sensors tile by tile
(sar_1, opt_1, sar_2, opt_2, ...); v2's HCA takes the entropy inside each tile and min-maxes it
over all tiles of the sample."""
import pytest
import torch

from earthmind_sdk.contracts import TokenSet
from earthmind_sdk.model.fusion import functional, original
from earthmind_sdk.model.fusion.prune import prune
from earthmind_sdk.model.fusion.tiles import interleave, whole_image_span
from earthmind_sdk.plugins import registry

D, GRID, TILES = 16, (2, 3), 4
C = GRID[0] * GRID[1]


def _sets(B=1, tiles=TILES, seed=0):
    g = torch.Generator().manual_seed(seed)
    # a shared direction plus noise: similar tokens, so the softmax entropies are far from 0
    return [TokenSet(torch.randn(1, 1, D, generator=g) + 0.5 * torch.randn(B, tiles * C, D, generator=g), s,
                     grid=GRID) for s in ("sar", "optical")]


def _tile_by_tile(s, o):
    """The authors' join, written as a loop over tiles."""
    return torch.cat([torch.cat([s[:, t * C:(t + 1) * C], o[:, t * C:(t + 1) * C]], 1) for t in range(s.shape[1] // C)], 1)


@pytest.mark.parametrize("name,args", [("concat", {}), ("mma", {"reweight": False})])
def test_v1_join_is_tile_by_tile(name, args):
    sets = _sets(B=2)
    out = registry("fusions").build(name, dim=D, **args)(sets)
    assert torch.equal(out.tokens, _tile_by_tile(sets[0].tokens, sets[1].tokens))
    one = _sets(tiles=1)  # one tile: the same as all SAR, then all optical
    out1 = registry("fusions").build(name, dim=D, **args)(one)
    assert torch.equal(out1.tokens, torch.cat([one[0].tokens, one[1].tokens], 1))


def test_mma_reweight_per_tile_with_weights_at_their_tokens():
    sets = _sets(B=2)
    fusion = registry("fusions").build("mma", dim=D)
    with torch.no_grad():
        fusion.local_query.copy_(torch.randn(2, D) * 0.3)
    out = fusion(sets)
    s, o, q = sets[0].tokens, sets[1].tokens, fusion.local_query.detach()
    w = torch.sigmoid(((s * o) @ q.sum(0)))
    assert torch.allclose(out.tokens, _tile_by_tile(s * w[..., None], o * w[..., None]), atol=1e-6)
    assert torch.allclose(out.weights, _tile_by_tile(w[..., None], w[..., None])[..., 0], atol=1e-7)
    tok_o, _ = original.mma_original(s, o, q, tile=C)
    assert torch.allclose(out.tokens, tok_o, atol=1e-6)
    # pruning ranks each fused token by its own pair's weight
    half = prune(out, 0.5)
    assert torch.equal(half.weights, out.weights.gather(1, half.source_index))


def _naive_tile_entropy(x):
    xn = torch.nn.functional.normalize(x, dim=-1)
    return torch.cat([functional.self_entropy_naive(xn[:, t * C:(t + 1) * C], 0.1) for t in range(x.shape[1] // C)], 1)


def test_hca_entropy_inside_each_tile_minmax_over_all_tiles():
    sets = _sets(B=2)
    text = torch.randn(2, 5, D)
    fusion = registry("fusions").build("hca", dim=D)
    out = fusion(sets, text)
    parts = functional.hca(sets[0].tokens, sets[1].tokens, text, tile=C)
    assert torch.allclose(out.tokens, parts["tokens"], atol=1e-6)
    for k, ts in enumerate(sets):
        h = _naive_tile_entropy(ts.tokens)
        assert torch.allclose(parts["entropy"][:, k], h, atol=2e-5)
        lo, hi = h.amin(1, keepdim=True), h.amax(1, keepdim=True)  # per sample, over all its tiles
        assert torch.allclose(parts["quality"][:, k], 1 - (h - lo) / (hi - lo + 1e-6), atol=1e-4)
    # not the entropy over all tiles joined
    joined = functional.self_entropy_naive(torch.nn.functional.normalize(sets[0].tokens, dim=-1), 0.1)
    assert not torch.allclose(parts["entropy"][:, 0], joined, atol=1e-3)
    # one sample equals the authors' formulation
    fused, alpha = original.hca_original(sets[0].tokens[:1], sets[1].tokens[:1], text[:1], tile=C)
    assert torch.allclose(out.tokens[:1], fused, atol=1e-5) and torch.allclose(out.sensor_weights["sar"][:1], alpha[:, 0], atol=1e-5)
    # batch mode equals it over the batch
    b = registry("fusions").build("hca", dim=D, normalize="batch")(sets, text)
    fused_b, _ = original.hca_original(sets[0].tokens, sets[1].tokens, text, tile=C)
    assert torch.allclose(b.tokens, fused_b, atol=1e-5)


def test_whole_image_span_finds_the_primary_thumbnail():
    s = torch.arange(TILES * C)[None, :, None].float()
    o = -s - 1
    joined = interleave([s, o], C)[0, :, 0]
    start, stop = whole_image_span(joined.shape[0], TILES * C, C, 2)
    assert torch.equal(joined[start:stop], s[0, -C:, 0])
    assert whole_image_span(TILES * C, TILES * C, C, 2) == (TILES * C - C, TILES * C)
    with pytest.raises(ValueError, match="pruned"):
        whole_image_span(5, TILES * C, C, 2)
