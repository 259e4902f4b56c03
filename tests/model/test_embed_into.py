"""MMA tokens written straight into the LLM's inputs_embeds (``fuse_into`` / ``DeferredTokens``)
equal the reference path (fuse, then copy into the buffer): values, weights and every gradient,
in the tile-by-tile layout, for contiguous and scattered image positions."""
import numpy as np
import pytest
import torch

from earthmind_sdk.contracts import SensorImage, TokenSet
from earthmind_sdk.contracts import Sample
from earthmind_sdk.inference import Pipeline
from earthmind_sdk.model.fusion.modules import DeferredTokens
from earthmind_sdk.model.graph import build_model
from earthmind_sdk.model.spec import load_spec
from earthmind_sdk.text.tokenizer import default_tokenizer

IMG = 151667


def paired_mma_model():
    raw = load_spec("tiny").to_dict()
    raw.update(sensors=["sar", "optical"], fusion={"name": "mma", "args": {"num_queries": 2}}, decoder=None)
    torch.manual_seed(0)
    m = build_model(raw)
    with torch.no_grad():
        m.fusion.local_query.normal_(0, 0.3)  # weights far from 0.5
    return m


def _sets(m, tiles, seed):
    g = torch.Generator().manual_seed(seed)
    n = tiles * m.tokens_per_tile
    return [TokenSet(torch.randn(1, n, m.hidden_size, generator=g).requires_grad_(), s, grid=m.token_grid)
            for s in ("sar", "optical")]


def _ids(n_img, scattered):
    if not scattered:  # left padding, text, one run of image tokens, text
        return [0, 0, 1, 2] + [IMG] * n_img + [3, 4]
    out = [1]
    for _ in range(n_img):
        out += [IMG, 5]
    return out


def check_into_equals_reference(m, scattered):
    """Shared with the kernel test (tests/kernels), which runs it through Triton's mma_into."""
    samples = [_sets(m, 3, 1), _sets(m, 1, 2)]  # different tile counts in one batch
    rows = [_ids(2 * s[0].tokens.shape[1], scattered) for s in samples]
    width = max(map(len, rows))
    ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
    deferred = [DeferredTokens(m.fusion, s) for s in samples]
    got = m.embed(ids, deferred)
    fused = [m.fuse(s) for s in samples]
    want = m.embed(ids, [f.tokens[0] for f in fused])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    for d, f in zip(deferred, fused):
        torch.testing.assert_close(d.output.tokens, f.tokens, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(d.output.weights, f.weights, atol=1e-6, rtol=1e-6)
        for k in f.sensor_weights:
            torch.testing.assert_close(d.output.sensor_weights[k], f.sensor_weights[k], atol=1e-6, rtol=1e-6)
    if not scattered:  # one contiguous run: the output's tokens are a view of the buffer, no copy
        assert deferred[0].output.tokens.data_ptr() != fused[0].tokens.data_ptr()
        assert got.untyped_storage().data_ptr() == deferred[0].output.tokens.untyped_storage().data_ptr()
    gout = torch.randn(got.shape, generator=torch.Generator().manual_seed(3))
    leaves = [ts.tokens for s in samples for ts in s] + [m.fusion.local_query]
    g_got = torch.autograd.grad((got * gout).sum(), leaves)
    g_want = torch.autograd.grad((want * gout).sum(), leaves)
    for i, (a, e) in enumerate(zip(g_got, g_want)):
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-4, msg=f"gradient {i}")


@pytest.mark.parametrize("scattered", [False, True], ids=["contiguous", "scattered"])
def test_deferred_mma_equals_fuse_then_copy(scattered):
    check_into_equals_reference(paired_mma_model(), scattered)


def test_fuse_into_lays_tokens_out_tile_by_tile():
    m = paired_mma_model()
    s, o = _sets(m, 2, 4)
    c = m.tokens_per_tile
    buf = torch.zeros(1, 4 * c + 3, m.hidden_size)
    pos = torch.arange(3, 3 + 4 * c)[None]
    with torch.no_grad():
        out = m.fusion.fuse_into([s, o], buf, pos)
    w = out.sensor_weights["sar"][0, :, None]
    st, ot = s.tokens[0] * w, o.tokens[0] * w
    want = torch.cat([st[:c], ot[:c], st[c:], ot[c:]])  # sar_1, opt_1, sar_2, opt_2
    torch.testing.assert_close(buf[0, 3:], want, atol=1e-6, rtol=1e-6)
    assert torch.equal(buf[0, :3], torch.zeros(3, m.hidden_size))
    with pytest.raises(ValueError, match="positions must be"):
        m.fusion.fuse_into([s, o], buf, pos[:, 1:])


def test_pipeline_writes_mma_tokens_into_the_buffer_same_logits(monkeypatch):
    m = paired_mma_model().eval()
    pipe = Pipeline(m, default_tokenizer())
    g = torch.Generator().manual_seed(5)
    sample = lambda h, w: Sample(images={k: SensorImage(torch.rand(1, 3, h, w, generator=g), sensor=k)  # noqa: E731
                                         for k in ("sar", "optical")}, prompt="What is here?")
    samples = [sample(28, 70), sample(28, 28)]
    batch = pipe.builder.build(samples)
    assert all(isinstance(e, DeferredTokens) for e in batch.image_embeds)
    logits, _ = pipe.logits(samples)
    monkeypatch.setattr(type(m.fusion), "can_write_into", lambda self: False)  # the fuse-then-copy path
    ref, _ = pipe.logits(samples)
    torch.testing.assert_close(logits, ref, atol=1e-5, rtol=1e-5)
    assert np.isfinite(logits.numpy()).all()
