import pytest
import torch

from earthmind_kernels import mma, mma_into
from earthmind_sdk.model.fusion import functional as ref

CASES = [(1, 1, 24), (2, 7, 24), (1, 257, 96), (2, 7, 96)]


def _inputs(B, N, D, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(B, N, D, generator=g).to(dtype).requires_grad_()
    o = torch.randn(B, N, D, generator=g).to(dtype).requires_grad_()
    q = (torch.randn(2, D, generator=g) * 0.2).to(dtype).requires_grad_()
    return s, o, q


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("B,N,D", CASES, ids=[f"B{b}-N{n}-D{d}" for b, n, d in CASES])
def test_mma_forward_backward(B, N, D, dtype, poison, close):
    s, o, q = _inputs(B, N, D, dtype)
    tok, w = mma(s, o, q)
    s32, o32, q32 = (x.detach().float().requires_grad_() for x in (s, o, q))
    tok_r, w_r = ref.mma(s32, o32, q32)
    close("w", w, w_r, dtype)
    close("tokens", tok, tok_r, dtype)
    g = torch.randn(tok.shape, generator=torch.Generator().manual_seed(1))
    grads = torch.autograd.grad((tok.float() * g).sum(), (s, o, q))
    grads_r = torch.autograd.grad((tok_r * g).sum(), (s32, o32, q32))
    for name, a, e in zip(("d_sar", "d_opt", "d_query"), grads, grads_r):
        close(name, a, e, dtype, scale=3.0 if name == "d_query" else 1.0)


@pytest.mark.parametrize("B,N,D", [(2, 7, 24), (1, 1, 96)])
def test_mma_writes_into_embedding_buffer(B, N, D, close):
    s, o, q = _inputs(B, N, D, torch.float32, seed=3)
    L = 2 * N + 5
    base = torch.randn(B, L, D, requires_grad=True)
    g = torch.Generator().manual_seed(4)
    pos = torch.stack([torch.randperm(L, generator=g)[: 2 * N] for _ in range(B)])
    buf = base * 1.0
    out, w = mma_into(s, o, q, buf, pos)
    assert out.data_ptr() == buf.data_ptr(), "mma_into must write in place, not allocate"
    expected = ref.scatter_tokens(base * 1.0, pos, ref.mma(s, o, q)[0])
    close("buffer", out, expected, torch.float32)
    untouched = torch.ones(B, L, dtype=torch.bool)
    untouched.scatter_(1, pos, False)
    assert torch.equal(out[untouched], base.detach()[untouched])
    gout = torch.randn(out.shape, generator=g)
    got = torch.autograd.grad((out * gout).sum(), (s, o, q, base))
    want = torch.autograd.grad((expected * gout).sum(), (s, o, q, base))
    for name, a, e in zip(("d_sar", "d_opt", "d_query", "d_buffer"), got, want):
        close(name, a, e, torch.float32)


def test_mma_rejects_bad_shapes():
    s = torch.randn(1, 3, 24)
    with pytest.raises(ValueError, match="query must be"):
        mma(s, s, torch.randn(2, 16))
    with pytest.raises(ValueError, match="positions must be"):
        mma_into(s, s, torch.randn(2, 24), torch.zeros(1, 10, 24), torch.zeros(1, 5, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_model_embed_through_mma_into_equals_reference_path(dtype, monkeypatch, close):
    """The model's MMA path with the Triton kernel: DeferredTokens written by ``mma_into`` into
    rows of the (B, L, D) inputs_embeds (tile by tile, two samples of different tile counts)
    equal the reference fuse-then-copy path, values and gradients."""
    from earthmind_sdk.contracts import TokenSet
    from earthmind_sdk.model.fusion.modules import DeferredTokens
    from earthmind_sdk.model.graph import build_model
    from earthmind_sdk.model.spec import load_spec

    raw = load_spec("tiny").to_dict()
    raw.update(sensors=["sar", "optical"], fusion={"name": "mma", "args": {}}, decoder=None)
    torch.manual_seed(0)
    m = build_model(raw).to(dtype)
    with torch.no_grad():
        m.fusion.local_query.normal_(0, 0.3)
    g = torch.Generator().manual_seed(1)
    c, D, img = m.tokens_per_tile, m.hidden_size, m.img_context_token_id
    samples = [[TokenSet(torch.randn(1, t * c, D, generator=g).to(dtype).requires_grad_(), k, grid=m.token_grid)
                for k in ("sar", "optical")] for t in (3, 1)]
    rows = [[1, 2] + [img] * (2 * s[0].tokens.shape[1]) + [3] for s in samples]
    ids = torch.tensor([[0] * (len(rows[0]) - len(r)) + r for r in rows])
    monkeypatch.setenv("EARTHMIND_KERNELS", "triton")
    got = m.embed(ids, [DeferredTokens(m.fusion, s) for s in samples])
    monkeypatch.setenv("EARTHMIND_KERNELS", "reference")
    want = m.embed(ids, [m.fuse(s).tokens[0] for s in samples])
    close("inputs_embeds", got, want, dtype)
    gout = torch.randn(got.shape, generator=g)
    leaves = [ts.tokens for s in samples for ts in s] + [m.fusion.local_query]
    monkeypatch.setenv("EARTHMIND_KERNELS", "triton")
    g_got = torch.autograd.grad((got.float() * gout).sum(), leaves)
    g_want = torch.autograd.grad((want.float() * gout).sum(), leaves)
    for i, (a, e) in enumerate(zip(g_got, g_want)):
        close(f"gradient {i}", a, e, dtype, scale=3.0 if i == len(leaves) - 1 else 1.0)
