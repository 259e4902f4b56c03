"""HCA (Hierarchical Cross-modal Attention), streaming: no N x N matrix, no (B, 2, N, D) stack.

Three kernels, each beside the plain-torch reference in
:mod:`earthmind_sdk.model.fusion.functional` (which they are tested against):

1. ``_entropy_fwd`` / ``_entropy_grad`` -- H_i, the entropy of row i of softmax(S), S = X^ X^T / tau,
   by an online ("flash") pass over key blocks keeping running max mx, l = sum e^(S - mx) and
   u = sum e^(S - mx) S:  lse = mx + log l,  m = u / l,  H = lse - m.
   Backward: dH_i/dS_ij = -P_ij (S_ij - m_i); S is symmetric, so
   dX^_i = (1/tau) sum_j [-gH_i P_ij (S_ij - m_i) - gH_j P_ji (S_ij - m_j)] x^_j with
   P_ij = e^(S_ij - lse_i), P_ji = e^(S_ij - lse_j): ``_entropy_grad`` recomputes each S block
   once from (lse, m), writes the bracket as a row slab, and a batched matmul applies it to X^.
2. ``_relevance_fwd`` -- beta_i = max_j cos(x_i, t_j) / text_tau and its argmax (backward by
   gather in torch: only the argmax gets gradient).
3. ``_mix_fwd`` / ``_mix_bwd`` -- alpha = rel_mix softmax_mod(beta) + (1 - rel_mix) softmax_mod(q),
   fused = alpha_s s + alpha_o o; backward gives ds, do and dalpha (chained to beta, q in torch).
Between 1 and 3 the min-max of H over tokens (a global reduction over (B, N), tiny) runs in
torch, with the reference's own :func:`sensor_quality`.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from earthmind_sdk.model.fusion.functional import sensor_quality

from ._util import check_device, interpreting, pow2

BM, BN, BD = 64, 64, 64


def _upcast(x: torch.Tensor) -> bool:
    """Half-precision dots run natively on GPUs; Triton's interpreter mis-computes bf16
    ``tl.dot``, so there the operands are widened to fp32 first (same products, fp32 sums)."""
    return interpreting() and x.dtype in (torch.bfloat16, torch.float16)


def _prec(x: torch.Tensor) -> str:
    """fp32 tokens get IEEE fp32 dots: Triton's default for fp32 is tf32 (about 3e-4 relative),
    which the entropy's 1/tau = 10 amplifies past the fp32 tolerance. Half-precision dots are
    exact products with fp32 sums either way."""
    return "ieee" if x.dtype == torch.float32 else "tf32"


@triton.jit
def _sim_block(X, xb, rows, cols, N, D, stride_n, inv_tau, BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr,
               UPCAST: tl.constexpr, PREC: tl.constexpr):
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for d0 in range(0, D, BD):
        dd = d0 + tl.arange(0, BD)
        dm = dd < D
        a = tl.load(xb + rows[:, None] * stride_n + dd[None, :], mask=(rows[:, None] < N) & dm[None, :], other=0.0)
        b = tl.load(xb + cols[:, None] * stride_n + dd[None, :], mask=(cols[:, None] < N) & dm[None, :], other=0.0)
        if UPCAST:
            a, b = a.to(tl.float32), b.to(tl.float32)
        acc += tl.dot(a, tl.trans(b), input_precision=PREC)
    return acc * inv_tau


@triton.jit
def _entropy_fwd(X, H, LSE, M, N, D, stride_b, stride_n, inv_tau,
                 BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, UPCAST: tl.constexpr, PREC: tl.constexpr):
    b = tl.program_id(0)
    rows = tl.program_id(1) * BM + tl.arange(0, BM)
    xb = X + b * stride_b
    mx = tl.full((BM,), float("-inf"), dtype=tl.float32)
    l = tl.zeros((BM,), dtype=tl.float32)
    u = tl.zeros((BM,), dtype=tl.float32)
    for j0 in range(0, N, BN):
        cols = j0 + tl.arange(0, BN)
        s = _sim_block(X, xb, rows, cols, N, D, stride_n, inv_tau, BM, BN, BD, UPCAST, PREC)
        s = tl.where(cols[None, :] < N, s, float("-inf"))
        new = tl.maximum(mx, tl.max(s, axis=1))
        scale = tl.exp(mx - new)
        p = tl.exp(s - new[:, None])
        l = l * scale + tl.sum(p, axis=1)
        u = u * scale + tl.sum(p * tl.where(cols[None, :] < N, s, 0.0), axis=1)
        mx = new
    lse = mx + tl.log(l)
    m = u / l
    rm = rows < N
    tl.store(H + b * N + rows, lse - m, mask=rm)
    tl.store(LSE + b * N + rows, lse, mask=rm)
    tl.store(M + b * N + rows, m, mask=rm)


@triton.jit
def _entropy_grad(X, GH, LSE, M, G, r0, r_end, N, D, stride_b, stride_n, g_sb, g_sr, inv_tau,
                  BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, UPCAST: tl.constexpr, PREC: tl.constexpr):
    """One (BM x BN) block of dS/tau for rows r0.. of one batch row: S computed once per block."""
    b = tl.program_id(0)
    rows = r0 + tl.program_id(1) * BM + tl.arange(0, BM)
    cols = tl.program_id(2) * BN + tl.arange(0, BN)
    xb = X + b * stride_b
    rm = rows < r_end
    cm = cols < N
    gh_i = tl.load(GH + b * N + rows, mask=rm, other=0.0)
    lse_i = tl.load(LSE + b * N + rows, mask=rm, other=0.0)
    m_i = tl.load(M + b * N + rows, mask=rm, other=0.0)
    gh_j = tl.load(GH + b * N + cols, mask=cm, other=0.0)
    lse_j = tl.load(LSE + b * N + cols, mask=cm, other=0.0)
    m_j = tl.load(M + b * N + cols, mask=cm, other=0.0)
    s = _sim_block(X, xb, rows, cols, N, D, stride_n, inv_tau, BM, BN, BD, UPCAST, PREC)
    valid = rm[:, None] & cm[None, :]
    d = -gh_i[:, None] * tl.exp(s - lse_i[:, None]) * (s - m_i[:, None]) \
        - gh_j[None, :] * tl.exp(s - lse_j[None, :]) * (s - m_j[None, :])
    d = tl.where(valid, d, 0.0) * inv_tau
    tl.store(G + b * g_sb + (rows - r0)[:, None] * g_sr + cols[None, :], d.to(G.dtype.element_ty), mask=valid)


def _grad_rows(B: int, N: int, D: int) -> int:
    """Rows of dS held at once: the whole (B, N, N) when it is no larger than X (N <= D, e.g. one
    256-token tile at D = 2048), else row chunks of about D, so extra memory stays O(N * D)."""
    return N if N <= D else max(BM, (D // BM) * BM)


class FlashSelfEntropy(torch.autograd.Function):
    """H (B, N) float32 of normalised tokens ``xhat`` (B, N, D), O(N * D) memory."""

    @staticmethod
    def forward(ctx, xhat: torch.Tensor, tau: float):
        x = xhat.contiguous()
        B, N, D = x.shape
        h = torch.empty(B, N, device=x.device, dtype=torch.float32)
        lse, m = torch.empty_like(h), torch.empty_like(h)
        bd = min(BD, pow2(D))
        _entropy_fwd[(B, triton.cdiv(N, BM))](x, h, lse, m, N, D, x.stride(0), x.stride(1), 1.0 / tau,
                                               BM=BM, BN=BN, BD=bd, UPCAST=_upcast(x), PREC=_prec(x))
        ctx.save_for_backward(x, lse, m)
        ctx.tau = tau
        return h

    @staticmethod
    def backward(ctx, gh):
        # dX = (dS/tau) X with dS symmetric-summed per block: each similarity block is computed
        # once (not once per feature chunk), written as a (B, rows, N) slab in X's dtype, and the
        # product with X runs as one batched matmul (tensor cores on GPUs)
        x, lse, m = ctx.saved_tensors
        B, N, D = x.shape
        bd = min(BD, pow2(D))
        gh = gh.float().contiguous()
        rows = _grad_rows(B, N, D)
        dx = x.new_empty(B, N, D) if rows < N else None
        for r0 in range(0, N, rows):
            r1 = min(N, r0 + rows)
            g = torch.empty(B, r1 - r0, N, device=x.device, dtype=x.dtype)
            _entropy_grad[(B, triton.cdiv(r1 - r0, BM), triton.cdiv(N, BN))](
                x, gh, lse, m, g, r0, r1, N, D, x.stride(0), x.stride(1), g.stride(0), g.stride(1),
                1.0 / ctx.tau, BM=BM, BN=BN, BD=bd, UPCAST=_upcast(x), PREC=_prec(x))
            part = torch.bmm(g, x)
            if dx is None:
                return part, None
            dx[:, r0:r1] = part
        return dx, None


@triton.jit
def _relevance_fwd(X, T, TM, BETA, ARG, N, T_len, D, x_sb, x_sn, t_sb, t_sn, inv_tau,
                   BM: tl.constexpr, BT: tl.constexpr, BD: tl.constexpr, UPCAST: tl.constexpr,
                   PREC: tl.constexpr):
    b = tl.program_id(0)
    rows = tl.program_id(1) * BM + tl.arange(0, BM)
    best = tl.full((BM,), float("-inf"), dtype=tl.float32)
    arg = tl.full((BM,), -1, dtype=tl.int32)
    for j0 in range(0, T_len, BT):
        cols = j0 + tl.arange(0, BT)
        cm = cols < T_len
        acc = tl.zeros((BM, BT), dtype=tl.float32)
        for d0 in range(0, D, BD):
            dd = d0 + tl.arange(0, BD)
            dm = dd < D
            a = tl.load(X + b * x_sb + rows[:, None] * x_sn + dd[None, :], mask=(rows[:, None] < N) & dm[None, :], other=0.0)
            t = tl.load(T + b * t_sb + cols[:, None] * t_sn + dd[None, :], mask=cm[:, None] & dm[None, :], other=0.0)
            if UPCAST:
                a, t = a.to(tl.float32), t.to(tl.float32)
            acc += tl.dot(a, tl.trans(t), input_precision=PREC)
        ok = tl.load(TM + b * T_len + cols, mask=cm, other=0)
        acc = tl.where(cm[None, :] & (ok[None, :] != 0), acc, float("-inf"))
        blk_max = tl.max(acc, axis=1)
        blk_arg = tl.argmax(acc, axis=1).to(tl.int32) + j0
        better = blk_max > best
        arg = tl.where(better, blk_arg, arg)
        best = tl.where(better, blk_max, best)
    found = arg >= 0
    rm = rows < N
    tl.store(BETA + b * N + rows, tl.where(found, best * inv_tau, 0.0), mask=rm)
    tl.store(ARG + b * N + rows, arg, mask=rm)


class TextRelevance(torch.autograd.Function):
    """beta (B, N) = max_j <x^_i, t^_j> / text_tau over valid question tokens (0 if none)."""

    @staticmethod
    def forward(ctx, xhat, that, tmask, text_tau: float):
        x, t = xhat.contiguous(), that.to(xhat.dtype).contiguous()
        B, N, D = x.shape
        T_len = t.shape[1]
        beta = torch.empty(B, N, device=x.device, dtype=torch.float32)
        arg = torch.empty(B, N, device=x.device, dtype=torch.int32)
        bd = min(BD, pow2(D))
        _relevance_fwd[(B, triton.cdiv(N, BM))](x, t, tmask, beta, arg, N, T_len, D, x.stride(0), x.stride(1),
                                                 t.stride(0), t.stride(1), 1.0 / text_tau, BM=BM, BT=16, BD=bd, UPCAST=_upcast(x),
                                                 PREC=_prec(x))
        ctx.save_for_backward(x, t, arg)
        ctx.text_tau = text_tau
        return beta

    @staticmethod
    def backward(ctx, gb):
        x, t, arg = ctx.saved_tensors
        found = (arg >= 0)
        idx = arg.clamp_min(0).long()
        g = (gb.float() * found) / ctx.text_tau  # (B, N)
        t_sel = t.float().gather(1, idx[..., None].expand(-1, -1, t.shape[-1]))
        dx = g[..., None] * t_sel
        dt = torch.zeros_like(t, dtype=torch.float32).scatter_add_(1, idx[..., None].expand(-1, -1, x.shape[-1]),
                                                                   g[..., None] * x.float())
        return dx.to(x.dtype), dt.to(t.dtype), None, None


@triton.jit
def _mix_fwd(S, O, BETA, Q, OUT, ALPHA, N, D, s_sb, s_sn, o_sb, o_sn, rel_mix,
             BM: tl.constexpr, BD: tl.constexpr):
    b = tl.program_id(0)
    rows = tl.program_id(1) * BM + tl.arange(0, BM)
    dd = tl.program_id(2) * BD + tl.arange(0, BD)
    rm = rows < N
    m2 = rm[:, None] & (dd[None, :] < D)
    bs = tl.load(BETA + (b * 2) * N + rows, mask=rm, other=0.0)
    bo = tl.load(BETA + (b * 2 + 1) * N + rows, mask=rm, other=0.0)
    qs = tl.load(Q + (b * 2) * N + rows, mask=rm, other=0.0)
    qo = tl.load(Q + (b * 2 + 1) * N + rows, mask=rm, other=0.0)
    a_o = rel_mix * tl.sigmoid(bo - bs) + (1.0 - rel_mix) * tl.sigmoid(qo - qs)
    a_s = 1.0 - a_o
    s = tl.load(S + b * s_sb + rows[:, None] * s_sn + dd[None, :], mask=m2, other=0.0).to(tl.float32)
    o = tl.load(O + b * o_sb + rows[:, None] * o_sn + dd[None, :], mask=m2, other=0.0).to(tl.float32)
    out = a_s[:, None] * s + a_o[:, None] * o
    tl.store(OUT + (b * N + rows[:, None]) * D + dd[None, :], out.to(OUT.dtype.element_ty), mask=m2)
    if tl.program_id(2) == 0:
        tl.store(ALPHA + (b * 2) * N + rows, a_s, mask=rm)
        tl.store(ALPHA + (b * 2 + 1) * N + rows, a_o, mask=rm)


@triton.jit
def _mix_bwd(S, O, G, ALPHA, DS, DO, DA, N, D, s_sb, s_sn, o_sb, o_sn,
             BM: tl.constexpr, BD: tl.constexpr):
    b = tl.program_id(0)
    rows = tl.program_id(1) * BM + tl.arange(0, BM)
    rm = rows < N
    a_s = tl.load(ALPHA + (b * 2) * N + rows, mask=rm, other=0.0)
    a_o = tl.load(ALPHA + (b * 2 + 1) * N + rows, mask=rm, other=0.0)
    da_s = tl.zeros((BM,), dtype=tl.float32)
    da_o = tl.zeros((BM,), dtype=tl.float32)
    for d0 in range(0, D, BD):
        dd = d0 + tl.arange(0, BD)
        m2 = rm[:, None] & (dd[None, :] < D)
        g = tl.load(G + (b * N + rows[:, None]) * D + dd[None, :], mask=m2, other=0.0).to(tl.float32)
        s = tl.load(S + b * s_sb + rows[:, None] * s_sn + dd[None, :], mask=m2, other=0.0).to(tl.float32)
        o = tl.load(O + b * o_sb + rows[:, None] * o_sn + dd[None, :], mask=m2, other=0.0).to(tl.float32)
        da_s += tl.sum(g * s, axis=1)
        da_o += tl.sum(g * o, axis=1)
        tl.store(DS + (b * N + rows[:, None]) * D + dd[None, :], (a_s[:, None] * g).to(DS.dtype.element_ty), mask=m2)
        tl.store(DO + (b * N + rows[:, None]) * D + dd[None, :], (a_o[:, None] * g).to(DO.dtype.element_ty), mask=m2)
    tl.store(DA + (b * 2) * N + rows, da_s, mask=rm)
    tl.store(DA + (b * 2 + 1) * N + rows, da_o, mask=rm)


class MixSum(torch.autograd.Function):
    """(fused (B, N, D), alpha (B, 2, N)) from tokens and per-sensor beta, q (B, 2, N)."""

    @staticmethod
    def forward(ctx, sar, opt, beta, q, rel_mix: float):
        s, o = sar.contiguous(), opt.contiguous()
        B, N, D = s.shape
        beta, q = beta.float().contiguous(), q.float().contiguous()
        out = torch.empty_like(s)
        alpha = torch.empty(B, 2, N, device=s.device, dtype=torch.float32)
        bd = min(256, pow2(D))
        _mix_fwd[(B, triton.cdiv(N, 16), triton.cdiv(D, bd))](s, o, beta, q, out, alpha, N, D, s.stride(0),
                                                               s.stride(1), o.stride(0), o.stride(1), rel_mix,
                                                               BM=16, BD=bd)
        ctx.save_for_backward(s, o, beta, q, alpha)
        ctx.rel_mix = rel_mix
        return out, alpha

    @staticmethod
    def backward(ctx, g, g_alpha):
        s, o, beta, q, alpha = ctx.saved_tensors
        B, N, D = s.shape
        ds, do = torch.empty_like(s), torch.empty_like(o)
        da = torch.empty(B, 2, N, device=s.device, dtype=torch.float32)
        bd = min(256, pow2(D))
        _mix_bwd[(B, triton.cdiv(N, 16))](s, o, g.contiguous(), alpha, ds, do, da, N, D, s.stride(0), s.stride(1),
                                           o.stride(0), o.stride(1), BM=16, BD=bd)
        if g_alpha is not None:
            da = da + g_alpha.float()
        rm = ctx.rel_mix
        pb, pq = torch.softmax(beta, 1), torch.softmax(q, 1)
        dbeta = rm * pb * (da - (pb * da).sum(1, keepdim=True))
        dq = (1 - rm) * pq * (da - (pq * da).sum(1, keepdim=True))
        return ds, do, dbeta, dq, None


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length in fp32, then stored in the input dtype. ``F.normalize`` on bf16
    rounds each row's norm to bf16 (up to 0.4 % off), and the self-similarity S_ii = |x^_i|^2 / tau
    dominates each entropy row: on the H200, bf16 alpha at D = 2048 was 0.027 RMS off the fp32
    reference with it (limit 0.015) and within the limit without it; rounding x^ alone costs
    about 0.006 (CPU emulation)."""
    return F.normalize(x.float(), dim=-1).to(x.dtype)


def hca(sar: torch.Tensor, opt: torch.Tensor, text: Optional[torch.Tensor] = None,
        text_mask: Optional[torch.Tensor] = None, *, tau: float = 0.1, text_tau: float = 0.2,
        rel_mix: float = 0.7, normalize: str = "sample", tile: Optional[int] = None,
        **_ignored) -> dict[str, torch.Tensor]:
    """Same contract and numbers as :func:`earthmind_sdk.model.fusion.functional.hca` (no padding
    masks): entropy inside each run of ``tile`` tokens (one image tile; None: all N), min-max
    over all tiles."""
    if sar.dim() != 3 or sar.shape != opt.shape:
        raise ValueError(f"hca: sar/opt must be equal (batch, tokens, dim) tensors, got {tuple(sar.shape)}, {tuple(opt.shape)}")
    check_device(sar, opt, text)
    B, N, D = sar.shape
    tile = N if tile is None else int(tile)
    if tile < 1 or N % tile:
        raise ValueError(f"hca: {N} tokens are not whole tiles of {tile}")
    xs, xo = _unit(sar), _unit(opt)
    # tiles as the kernel's batch dimension: the entropy grid is (B * tiles, row blocks of one tile)
    h = torch.stack([FlashSelfEntropy.apply(x.reshape(B * (N // tile), tile, D), tau).reshape(B, N)
                     for x in (xs, xo)], 1)
    q = sensor_quality(h, normalize)
    if text is None or text.shape[1] == 0:
        beta = torch.zeros_like(h)
    else:
        if text.shape[0] != sar.shape[0] or text.shape[-1] != sar.shape[-1]:
            raise ValueError(f"hca: text must be (batch={sar.shape[0]}, T, dim={sar.shape[-1]}), got {tuple(text.shape)}")
        tm = (torch.ones(text.shape[:2], dtype=torch.int8, device=text.device) if text_mask is None
              else text_mask.to(torch.int8)).contiguous()
        that = _unit(text)
        beta = torch.stack([TextRelevance.apply(xs, that, tm, text_tau), TextRelevance.apply(xo, that, tm, text_tau)], 1)
    fused, alpha = MixSum.apply(sar, opt, beta, q, rel_mix)
    return {"tokens": fused, "alpha": alpha, "entropy": h, "quality": q, "relevance": beta}
