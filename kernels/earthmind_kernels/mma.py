"""MMA (Modality Mutual Attention), fused: score, sigmoid, scale, write into the LLM buffer.

Math (q = sum of the learned query rows, s/o the SAR/optical tokens of one position):
    score_i = sum_d q_d s_id o_id,  w_i = sigmoid(score_i)
    out[pos_s[i]] = w_i s_i,  out[pos_o[i]] = w_i o_i
Backward, with g_s/g_o the output gradient at those positions:
    dw_i = <g_s, s_i> + <g_o, o_i>,  dscore_i = dw_i w_i (1 - w_i)
    ds_i = w_i g_s + dscore_i q * o_i,  do_i = w_i g_o + dscore_i q * s_i,
    dq = sum_i dscore_i s_i * o_i  (the same for every query row)
One program handles BLOCK_N positions with the whole feature row in registers, so each input
element is read once and each output written once: no (B, 2, N, D) intermediates.
Reference: :func:`earthmind_sdk.model.fusion.functional.mma` / ``scatter_tokens``.
"""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from ._util import check_device, pow2


@triton.jit
def _mma_fwd(S, O, Qs, OUT, POS, W, N, D, s_sb, s_sn, o_sb, o_sn, out_sb, out_sn, pos_sb, row0,
             BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    b = tl.program_id(0)
    rows = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.arange(0, BLOCK_D)
    rm = rows < N
    cm = cols < D
    m2 = rm[:, None] & cm[None, :]
    s = tl.load(S + b * s_sb + rows[:, None] * s_sn + cols[None, :], mask=m2, other=0.0).to(tl.float32)
    o = tl.load(O + b * o_sb + rows[:, None] * o_sn + cols[None, :], mask=m2, other=0.0).to(tl.float32)
    q = tl.load(Qs + cols, mask=cm, other=0.0).to(tl.float32)
    score = tl.sum(s * o * q[None, :], axis=1)
    w = tl.sigmoid(score)
    tl.store(W + b * N + rows, w, mask=rm)
    ps = tl.load(POS + b * pos_sb + rows, mask=rm, other=0)
    po = tl.load(POS + b * pos_sb + N + rows, mask=rm, other=0)
    dst = OUT + (row0 + b) * out_sb
    tl.store(dst + ps[:, None] * out_sn + cols[None, :], (s * w[:, None]).to(OUT.dtype.element_ty), mask=m2)
    tl.store(dst + po[:, None] * out_sn + cols[None, :], (o * w[:, None]).to(OUT.dtype.element_ty), mask=m2)


@triton.jit
def _mma_bwd(S, O, Qs, G, POS, W, DS, DO, DQP, N, D, s_sb, s_sn, o_sb, o_sn, g_sb, g_sn, pos_sb, n_blocks, row0,
             BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    b = tl.program_id(0)
    blk = tl.program_id(1)
    rows = blk * BLOCK_N + tl.arange(0, BLOCK_N)
    cols = tl.arange(0, BLOCK_D)
    rm = rows < N
    cm = cols < D
    m2 = rm[:, None] & cm[None, :]
    s = tl.load(S + b * s_sb + rows[:, None] * s_sn + cols[None, :], mask=m2, other=0.0).to(tl.float32)
    o = tl.load(O + b * o_sb + rows[:, None] * o_sn + cols[None, :], mask=m2, other=0.0).to(tl.float32)
    q = tl.load(Qs + cols, mask=cm, other=0.0).to(tl.float32)
    w = tl.load(W + b * N + rows, mask=rm, other=0.0)
    ps = tl.load(POS + b * pos_sb + rows, mask=rm, other=0)
    po = tl.load(POS + b * pos_sb + N + rows, mask=rm, other=0)
    gs = tl.load(G + (row0 + b) * g_sb + ps[:, None] * g_sn + cols[None, :], mask=m2, other=0.0).to(tl.float32)
    go = tl.load(G + (row0 + b) * g_sb + po[:, None] * g_sn + cols[None, :], mask=m2, other=0.0).to(tl.float32)
    dw = tl.sum(gs * s + go * o, axis=1)
    dscore = dw * w * (1.0 - w)
    ds = w[:, None] * gs + dscore[:, None] * q[None, :] * o
    do = w[:, None] * go + dscore[:, None] * q[None, :] * s
    tl.store(DS + (b * N + rows[:, None]) * D + cols[None, :], ds.to(DS.dtype.element_ty), mask=m2)
    tl.store(DO + (b * N + rows[:, None]) * D + cols[None, :], do.to(DO.dtype.element_ty), mask=m2)
    dq = tl.sum(dscore[:, None] * s * o, axis=0)
    tl.store(DQP + (b * n_blocks + blk) * D + cols, dq, mask=cm)


def _config(D: int) -> tuple[int, int, int]:
    block_d = pow2(D)
    block_n = max(1, min(16, 8192 // block_d))
    warps = 8 if block_d >= 2048 else 4
    return block_n, block_d, warps


class _MMA(torch.autograd.Function):
    """Returns the written buffer only; w goes to the given (B, N) float32 tensor (no gradient
    flows through w), because autograd lets a Function that writes in place into a view (a row
    of the batch's ``inputs_embeds``) return just one tensor."""

    @staticmethod
    def forward(ctx, sar, opt, query, out, positions, w, row0):
        B, N, D = sar.shape
        buffer_given = out is not None
        if not buffer_given:
            out = torch.empty(B, 2 * N, D, device=sar.device, dtype=sar.dtype)
            positions = torch.arange(2 * N, device=sar.device).expand(B, 2 * N)
        sar_c, opt_c = sar.contiguous() if sar.stride(-1) != 1 else sar, opt.contiguous() if opt.stride(-1) != 1 else opt
        qsum = query.float().sum(0).contiguous()
        bn, bd, warps = _config(D)
        grid = (B, triton.cdiv(N, bn))
        _mma_fwd[grid](sar_c, opt_c, qsum, out, positions, w, N, D, sar_c.stride(0), sar_c.stride(1),
                       opt_c.stride(0), opt_c.stride(1), out.stride(0), out.stride(1), positions.stride(0), row0,
                       BLOCK_N=bn, BLOCK_D=bd, num_warps=warps)
        ctx.save_for_backward(sar_c, opt_c, qsum, positions, w)
        ctx.nq, ctx.qdtype, ctx.buffer_given, ctx.row0 = query.shape[0], query.dtype, buffer_given, row0
        if buffer_given:
            ctx.mark_dirty(out)
        return out

    @staticmethod
    def backward(ctx, g):
        sar, opt, qsum, positions, w = ctx.saved_tensors
        B, N, D = sar.shape
        g = g if g.stride(-1) == 1 else g.contiguous()
        ds = torch.empty_like(sar)
        do = torch.empty_like(opt)
        bn, bd, warps = _config(D)
        nb = triton.cdiv(N, bn)
        dqp = torch.empty(B, nb, D, device=sar.device, dtype=torch.float32)
        _mma_bwd[(B, nb)](sar, opt, qsum, g, positions, w, ds, do, dqp, N, D, sar.stride(0), sar.stride(1),
                          opt.stride(0), opt.stride(1), g.stride(0), g.stride(1), positions.stride(0), nb, ctx.row0,
                          BLOCK_N=bn, BLOCK_D=bd, num_warps=warps)
        dq = dqp.sum((0, 1)).to(ctx.qdtype).expand(ctx.nq, D).contiguous()
        gbuf = None
        if ctx.buffer_given and ctx.needs_input_grad[3]:
            gbuf = g.clone()
            gbuf[ctx.row0:ctx.row0 + B].scatter_(1, positions[..., None].expand(-1, -1, D), 0)
        return ds, do, dq, gbuf, None, None, None


def _weights(sar: torch.Tensor) -> torch.Tensor:
    return torch.empty(sar.shape[:2], device=sar.device, dtype=torch.float32)


def _check(sar, opt, query):
    if sar.dim() != 3 or sar.shape != opt.shape:
        raise ValueError(f"mma: sar/opt must be equal (batch, tokens, dim) tensors, got {tuple(sar.shape)}, {tuple(opt.shape)}")
    if query.dim() != 2 or query.shape[1] != sar.shape[2]:
        raise ValueError(f"mma: query must be (queries, {sar.shape[2]}), got {tuple(query.shape)}")
    check_device(sar, opt, query)


def mma(sar: torch.Tensor, opt: torch.Tensor, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[w*SAR; w*optical] (B, 2N, D) and w (B, N) float32."""
    _check(sar, opt, query)
    w = _weights(sar)
    return _MMA.apply(sar, opt, query, None, None, w, 0), w


def mma_into(sar: torch.Tensor, opt: torch.Tensor, query: torch.Tensor, out: torch.Tensor,
             positions: torch.Tensor, out_row: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Write w*SAR at ``positions[:, :N]`` and w*optical at ``positions[:, N:]`` of rows
    ``out_row .. out_row + B`` of ``out`` (rows, L, D), in place (the language model's
    ``inputs_embeds``; pass the whole buffer and a row rather than a view of it: autograd cannot
    chain an in-place Function on a view). Returns (out, w)."""
    _check(sar, opt, query)
    B, N, D = sar.shape
    if out.dim() != 3 or out.shape[0] < out_row + B or out.shape[2] != D or out.stride(-1) != 1:
        raise ValueError(f"mma_into: out must be a (rows >= {out_row + B}, L, dim={D}) tensor with unit last stride, "
                         f"got {tuple(out.shape)}")
    if positions.shape != (B, 2 * N):
        raise ValueError(f"mma_into: positions must be (batch={B}, 2N={2 * N}), got {tuple(positions.shape)}")
    positions = positions.to(torch.int64).contiguous()
    w = _weights(sar)
    return _MMA.apply(sar, opt, query, out, positions, w, int(out_row)), w
