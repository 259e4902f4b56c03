"""Plain-torch references for the fusion hot path: MMA (v1) and HCA (v2).

These are the formulas of ``shared/reference/earthmind.md`` written once, in float32
internally, and used (a) when the ``earthmind-kernels`` package is absent or not applicable,
(b) as the ground truth the Triton kernels are tested against. Shapes: ``sar``/``opt`` are
(B, N, D), the paired token sets (N = tiles x tokens per tile); ``text`` is (B, T, D), the
embeddings of the prompt tokens after the image. HCA's entropy runs inside each tile (``tile``).

Memory: nothing here builds (B, 2, N, D) stacks, and :func:`self_entropy` never holds more
than a (B, chunk, N) block of the N x N self-similarity (forward or backward), so HCA's peak
memory is O(N*D). :func:`self_entropy_naive` is the one-line N x N definition, kept for tests.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

#: Rows of the self-similarity computed at once by :func:`self_entropy`.
ENTROPY_CHUNK = 128
#: Added to (max - min) in the quality min-max normalisation.
MINMAX_EPS = 1e-6


def _f(x: Tensor) -> Tensor:
    """Compute dtype: float32, or float64 when given float64 (gradcheck)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _check_pair(sar: Tensor, opt: Tensor, where: str) -> None:
    if sar.dim() != 3 or opt.dim() != 3:
        raise ValueError(f"{where}: token sets must be (batch, tokens, dim); got {tuple(sar.shape)} and {tuple(opt.shape)}")
    if sar.shape != opt.shape:
        raise ValueError(
            f"{where}: the two sensors' token sets must have the same shape, got "
            f"{tuple(sar.shape)} (primary) and {tuple(opt.shape)} (secondary)"
        )


# ----------------------------------------------------------------------------------------
# MMA: Modality Mutual Attention (EarthMind v1 training)
# ----------------------------------------------------------------------------------------
def mma_weights(sar: Tensor, opt: Tensor, query: Tensor) -> Tensor:
    """w_i = sigmoid(sum_q sum_d Q[q, d] s_i[d] o_i[d]), (B, N) float32.

    The sum over the query rows is taken first (``Q.sum(0)``): it is the same number and
    turns the score into one weighted row-dot per token.
    """
    _check_pair(sar, opt, "mma")
    if query.dim() != 2 or query.shape[-1] != sar.shape[-1]:
        raise ValueError(f"mma: query must be (queries, {sar.shape[-1]}), got {tuple(query.shape)}")
    qsum = _f(query).sum(0).to(sar.dtype)
    score = torch.matmul(sar * opt, qsum)  # one (B, N, D) temporary, then a GEMV
    return torch.sigmoid(_f(score))


def mma(sar: Tensor, opt: Tensor, query: Tensor) -> tuple[Tensor, Tensor]:
    """Reweight both modalities by w_i and concatenate [SAR; optical] -> ((B, 2N, D), w (B, N))."""
    w = mma_weights(sar, opt, query)
    wd = w.unsqueeze(-1).to(sar.dtype)
    B, N, D = sar.shape
    if torch.is_grad_enabled() and (sar.requires_grad or opt.requires_grad or query.requires_grad):
        return torch.cat([sar * wd, opt * wd], dim=1), w
    tokens = sar.new_empty(B, 2 * N, D)  # write both halves in place: no stack, no cat copy
    torch.mul(sar, wd, out=tokens[:, :N])
    torch.mul(opt, wd, out=tokens[:, N:])
    return tokens, w


def scatter_tokens(out: Tensor, positions: Tensor, tokens: Tensor) -> Tensor:
    """Write ``tokens`` (B, M, D) into ``out`` (B, L, D) at ``positions`` (B, M); returns the
    new buffer (out-of-place, autograd-friendly: ``out``'s gradient is zero where overwritten)."""
    if positions.shape != tokens.shape[:2]:
        raise ValueError(f"positions {tuple(positions.shape)} must be (batch, tokens) = {tuple(tokens.shape[:2])}")
    idx = positions.long().unsqueeze(-1).expand(-1, -1, out.shape[-1])
    return out.scatter(1, idx, tokens.to(out.dtype))


# ----------------------------------------------------------------------------------------
# HCA: Hierarchical Cross-modal Attention (EarthMind v2)
# ----------------------------------------------------------------------------------------
def self_entropy_naive(xhat: Tensor, tau: float = 0.1, mask: Optional[Tensor] = None) -> Tensor:
    """H_i = entropy of row i of softmax(X^ X^T / tau): the N x N definition (tests only)."""
    x = _f(xhat)
    s = torch.einsum("bnd,bmd->bnm", x, x) / tau
    if mask is not None:
        s = s.masked_fill(~mask[:, None, :], float("-inf"))
    logp = torch.log_softmax(s, dim=-1)
    h = -(logp.exp() * logp.nan_to_num(neginf=0.0)).sum(-1)
    return h if mask is None else h.masked_fill(~mask, 0.0)


def _entropy_block(xb: Tensor, x: Tensor, tau: float, mask: Optional[Tensor]):
    s = torch.einsum("bcd,bnd->bcn", xb, x) / tau
    if mask is not None:
        s = s.masked_fill(~mask[:, None, :], float("-inf"))
    lse = torch.logsumexp(s, dim=-1, keepdim=True)
    p = torch.exp(s - lse)
    m = (p * s.nan_to_num(neginf=0.0)).sum(-1, keepdim=True)  # E_p[S]
    return s, p, lse, m


class _SelfEntropy(torch.autograd.Function):
    """Chunked self-similarity entropy with an analytic backward.

    H_i = lse_i - m_i with m_i = sum_j P_ij S_ij; dH_i/dS_ij = -P_ij (S_ij - m_i). Because S is
    symmetric, dX_i = (1/tau) sum_j (dS_ij + dS_ji) x_j, and each row block gets both terms
    from the saved (lse, m) without ever storing P.
    """

    @staticmethod
    def forward(ctx, xhat: Tensor, tau: float, mask: Optional[Tensor], chunk: int):
        x = _f(xhat)
        B, N, _ = x.shape
        h = x.new_empty(B, N)
        lse_all = x.new_empty(B, N)
        m_all = x.new_empty(B, N)
        for i in range(0, N, chunk):
            _, _, lse, m = _entropy_block(x[:, i:i + chunk], x, tau, mask)
            lse_all[:, i:i + chunk] = lse[..., 0]
            m_all[:, i:i + chunk] = m[..., 0]
            h[:, i:i + chunk] = (lse - m)[..., 0]
        if mask is not None:
            h = h.masked_fill(~mask, 0.0)
        ctx.save_for_backward(xhat, lse_all, m_all, mask if mask is not None else x.new_empty(0))
        ctx.tau, ctx.chunk, ctx.has_mask = tau, chunk, mask is not None
        return h

    @staticmethod
    def backward(ctx, gh: Tensor):
        xhat, lse_all, m_all, mask = ctx.saved_tensors
        mask = mask if ctx.has_mask else None
        x = _f(xhat)
        gh = gh.to(x.dtype)
        if mask is not None:
            gh = gh.masked_fill(~mask, 0.0)
        dx = torch.zeros_like(x)
        N = x.shape[1]
        for i in range(0, N, ctx.chunk):
            xb = x[:, i:i + ctx.chunk]
            s = torch.einsum("bcd,bnd->bcn", xb, x) / ctx.tau
            s0 = s
            if mask is not None:
                s = s.masked_fill(~mask[:, None, :], float("-inf"))
            # row term: -gh_i P_ij (S_ij - m_i)
            p_row = torch.exp(s - lse_all[:, i:i + ctx.chunk, None])
            d = -gh[:, i:i + ctx.chunk, None] * p_row * (s0 - m_all[:, i:i + ctx.chunk, None])
            # column term: -gh_j P_ji (S_ji - m_j), with S_ji = S_ij
            s_col = s0 if mask is None else s0.masked_fill(~mask[:, i:i + ctx.chunk, None], float("-inf"))
            p_col = torch.exp(s_col - lse_all[:, None, :])
            d = d - gh[:, None, :] * p_col * (s0 - m_all[:, None, :])
            if mask is not None:
                d = d.masked_fill(~mask[:, None, :], 0.0)
            dx[:, i:i + ctx.chunk] = torch.einsum("bcn,bnd->bcd", d, x) / ctx.tau
        return dx.to(xhat.dtype), None, None, None


def self_entropy(xhat: Tensor, tau: float = 0.1, mask: Optional[Tensor] = None,
                 chunk: int = ENTROPY_CHUNK) -> Tensor:
    """H (B, N) float32, rows of softmax(X^ X^T / tau), in O(chunk * N) extra memory."""
    return _SelfEntropy.apply(xhat, tau, mask, chunk)


def minmax_quality(h: Tensor, mode: str = "sample", mask: Optional[Tensor] = None) -> Tensor:
    """q = 1 - (H - min) / (max - min + eps).

    ``mode="sample"`` (default): min/max over each sample's own tokens, so a sample's fusion
    does not depend on what else is in the batch. ``mode="batch"``: min/max over the whole
    batch, as the original v2 code does (compatibility option).
    """
    if mode not in ("sample", "batch"):
        raise ValueError(f"hca normalize must be 'sample' or 'batch', got {mode!r}")
    dims = (-1,) if mode == "sample" else (0, 1)
    if mask is None:
        lo = h.amin(dim=dims, keepdim=True)
        hi = h.amax(dim=dims, keepdim=True)
    else:
        lo = h.masked_fill(~mask, float("inf")).amin(dim=dims, keepdim=True)
        hi = h.masked_fill(~mask, float("-inf")).amax(dim=dims, keepdim=True)
    return 1.0 - (h - lo) / (hi - lo + MINMAX_EPS)


def sensor_quality(h: Tensor, normalize: str = "sample", token_mask: Optional[Tensor] = None) -> Tensor:
    """Quality (B, 2, N) from per-sensor entropies (B, 2, N); each sensor normalised on its own."""
    return torch.stack([minmax_quality(h[:, k], normalize, token_mask) for k in range(h.shape[1])], 1)


def text_relevance(xhat: Tensor, text: Optional[Tensor], text_mask: Optional[Tensor] = None,
                   text_tau: float = 0.2) -> Tensor:
    """beta_i = max_j cos(x_i, t_j) / text_tau over the valid question tokens; 0 without text."""
    B, N, _ = xhat.shape
    if text is None or text.shape[1] == 0:
        return _f(xhat).new_zeros(B, N)
    that = F.normalize(_f(text), dim=-1)
    cos = torch.einsum("bnd,btd->bnt", _f(xhat), that)
    if text_mask is not None:
        cos = cos.masked_fill(~text_mask.bool()[:, None, :], float("-inf"))
    beta = cos.amax(-1) / text_tau
    return torch.where(torch.isfinite(beta), beta, torch.zeros_like(beta))


def hca_mix(beta: Tensor, quality: Tensor, rel_mix: float = 0.7) -> Tensor:
    """alpha (B, 2, N): rel_mix softmax_mod(beta) + (1 - rel_mix) softmax_mod(q); index 0 = SAR."""
    return rel_mix * torch.softmax(beta, dim=1) + (1.0 - rel_mix) * torch.softmax(quality, dim=1)


def hca_token_weight(alpha: Tensor, beta: Tensor, quality: Tensor, rel_mix: float, text_tau: float,
                     has_text: bool) -> Tensor:
    """One number per fused token, in [0, 1], used to rank tokens for pruning: the
    alpha-weighted mixture of each sensor's quality and (cosine) text relevance mapped to [0, 1]."""
    score = quality if not has_text else rel_mix * (beta * text_tau + 1.0) / 2.0 + (1.0 - rel_mix) * quality
    return (alpha * score).sum(1)


def tiled_entropy(xhat: Tensor, tile: Optional[int], tau: float = 0.1, mask: Optional[Tensor] = None,
                  chunk: int = ENTROPY_CHUNK) -> Tensor:
    """H (B, N): the self-similarity entropy inside each run of ``tile`` tokens (one image tile),
    as the authors compute it with tiles as the batch dimension; ``tile`` None: over all N."""
    B, N, _ = xhat.shape
    if tile is None or tile == N:
        return self_entropy(xhat, tau, mask, chunk)
    if tile < 1 or N % tile:
        raise ValueError(f"hca: {N} tokens are not whole tiles of {tile}")
    m = None if mask is None else mask.reshape(B * (N // tile), tile)
    return self_entropy(xhat.reshape(B * (N // tile), tile, -1), tau, m, chunk).reshape(B, N)


def hca(sar: Tensor, opt: Tensor, text: Optional[Tensor] = None, text_mask: Optional[Tensor] = None, *,
        tau: float = 0.1, text_tau: float = 0.2, rel_mix: float = 0.7, normalize: str = "sample",
        token_mask: Optional[Tensor] = None, chunk: int = ENTROPY_CHUNK, tile: Optional[int] = None) -> dict[str, Tensor]:
    """HCA fusion -> dict(tokens (B, N, D), alpha (B, 2, N), entropy, quality, relevance (B, 2, N)).

    ``tile``: tokens per image tile; the entropy runs inside each tile and the min-max over all
    tiles of a sample (``normalize="sample"``) or of the batch. ``token_mask`` (B, N) bool marks
    real (non-padding) tokens; padded tokens get weight 0.
    """
    _check_pair(sar, opt, "hca")
    if text is not None and (text.dim() != 3 or text.shape[0] != sar.shape[0] or text.shape[-1] != sar.shape[-1]):
        raise ValueError(f"hca: text embeddings must be (batch={sar.shape[0]}, T, dim={sar.shape[-1]}), got {tuple(text.shape)}")
    xs = F.normalize(_f(sar), dim=-1)
    xo = F.normalize(_f(opt), dim=-1)
    h = torch.stack([tiled_entropy(xs, tile, tau, token_mask, chunk), tiled_entropy(xo, tile, tau, token_mask, chunk)], 1)
    q = sensor_quality(h, normalize, token_mask)
    beta = torch.stack([text_relevance(xs, text, text_mask, text_tau), text_relevance(xo, text, text_mask, text_tau)], 1)
    alpha = hca_mix(beta, q, rel_mix)
    fused = alpha[:, 0, :, None] * _f(sar) + alpha[:, 1, :, None] * _f(opt)
    if token_mask is not None:
        fused = fused * token_mask[..., None]
    return {"tokens": fused.to(sar.dtype), "alpha": alpha, "entropy": h, "quality": q, "relevance": beta}
