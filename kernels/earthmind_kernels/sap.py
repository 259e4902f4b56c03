"""SAP loss from the last layer's [SEG]-row queries and keys, fused; no L x L attention.

For [SEG] row r (sample b, position p) and head h (kv head h // group):
    s_hj = scale <q_rh, k_bj>,  j <= p and key_mask[b, j]      lse_h = logsumexp_j s_hj
    a_c  = (1/H) sum_h exp(s_h,img[c] - lse_h)                   (image token c)
    loss = (1/R) sum_r sum_c t_rc (log t_rc - log max(a_rc, eps))
Backward, with ga_c = -t_c / a_c / R (0 where a_c < eps) and delta_h = (1/H) sum_c ga_c p_hc:
    ds_hj = -p_hj delta_h  (every allowed key)  +  p_hc ga_c / H  (image keys)
    dq_h = scale sum_j ds_hj k_j,   dk_j += scale ds_hj q_h  (atomic: rows share keys)
One program per [SEG] row loops over heads and key blocks; memory is O(R * C) for the saved
head-averaged attention plus O(R * H) for the log-sum-exps.
Reference: :func:`earthmind_sdk.model.fusion.sap.sap_loss`.
"""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from earthmind_sdk.model.fusion.sap import SAP_EPS, _check

from ._util import check_device, pow2


@triton.jit
def _sap_fwd(Q, K, SB, SP, IMG, KM, TGT, LSE, A, LOSS, H, L, C, HD, group, scale, eps,
             q_sr, q_sh, k_sb, k_sh, k_sl, img_sb, km_sb,
             BL: tl.constexpr, BC: tl.constexpr, BH: tl.constexpr):
    r = tl.program_id(0)
    b = tl.load(SB + r).to(tl.int64)
    p = tl.load(SP + r)
    dd = tl.arange(0, BH)
    dm = dd < HD
    for c0 in range(0, C, BC):
        cc = c0 + tl.arange(0, BC)
        tl.store(A + r * C + cc, tl.zeros((BC,), dtype=tl.float32), mask=cc < C)
    for h in range(0, H):
        kv = h // group
        q = tl.load(Q + r * q_sr + h * q_sh + dd, mask=dm, other=0.0).to(tl.float32)
        kb = K + b * k_sb + kv * k_sh
        mx = tl.full((BL,), float("-inf"), dtype=tl.float32)
        acc = tl.zeros((BL,), dtype=tl.float32)
        for j0 in range(0, L, BL):
            jj = j0 + tl.arange(0, BL)
            ok = (jj <= p) & (jj < L) & (tl.load(KM + b * km_sb + jj, mask=jj < L, other=0) != 0)
            k = tl.load(kb + jj[:, None] * k_sl + dd[None, :], mask=(jj[:, None] < L) & dm[None, :], other=0.0)
            s = tl.sum(k.to(tl.float32) * q[None, :], axis=1) * scale
            s = tl.where(ok, s, float("-inf"))
            new = tl.maximum(mx, s)
            safe = tl.where(new == float("-inf"), 0.0, new)
            acc = acc * tl.exp(mx - safe) + tl.exp(s - safe)
            mx = new
        gmax = tl.max(mx, axis=0)
        safe_g = tl.where(gmax == float("-inf"), 0.0, gmax)
        lse = safe_g + tl.log(tl.sum(acc * tl.exp(mx - safe_g), axis=0))
        tl.store(LSE + r * H + h, lse)
        for c0 in range(0, C, BC):
            cc = c0 + tl.arange(0, BC)
            cm = cc < C
            kp = tl.load(IMG + b * img_sb + cc, mask=cm, other=0)
            ok = cm & (kp <= p) & (tl.load(KM + b * km_sb + kp, mask=cm, other=0) != 0)
            k = tl.load(kb + kp[:, None] * k_sl + dd[None, :], mask=cm[:, None] & dm[None, :], other=0.0)
            s = tl.sum(k.to(tl.float32) * q[None, :], axis=1) * scale
            pr = tl.where(ok, tl.exp(s - lse), 0.0)
            a = tl.load(A + r * C + cc, mask=cm, other=0.0)
            tl.store(A + r * C + cc, a + pr / H, mask=cm)
    loss = tl.zeros((BC,), dtype=tl.float32)
    for c0 in range(0, C, BC):
        cc = c0 + tl.arange(0, BC)
        cm = cc < C
        t = tl.load(TGT + r * C + cc, mask=cm, other=0.0).to(tl.float32)
        a = tl.load(A + r * C + cc, mask=cm, other=1.0)
        term = tl.where(t > 0, t * tl.log(tl.where(t > 0, t, 1.0)), 0.0) - t * tl.log(tl.maximum(a, eps))
        loss += tl.where(cm, term, 0.0)
    tl.store(LOSS + r, tl.sum(loss, axis=0))


@triton.jit
def _sap_bwd(Q, K, SB, SP, IMG, KM, TGT, LSE, A, DQ, DK, H, L, C, HD, group, scale, eps, gscale,
             q_sr, q_sh, k_sb, k_sh, k_sl, img_sb, km_sb, dk_sb, dk_sh, dk_sl,
             BL: tl.constexpr, BC: tl.constexpr, BH: tl.constexpr):
    r = tl.program_id(0)
    b = tl.load(SB + r).to(tl.int64)
    p = tl.load(SP + r)
    dd = tl.arange(0, BH)
    dm = dd < HD
    for h in range(0, H):
        kv = h // group
        q = tl.load(Q + r * q_sr + h * q_sh + dd, mask=dm, other=0.0).to(tl.float32)
        lse = tl.load(LSE + r * H + h)
        kb = K + b * k_sb + kv * k_sh
        dkb = DK + b * dk_sb + kv * dk_sh
        dq = tl.zeros((BH,), dtype=tl.float32)
        # image keys: ds = p * ga / H; also accumulate delta = (1/H) sum_c ga_c p_c
        delta_vec = tl.zeros((BC,), dtype=tl.float32)
        for c0 in range(0, C, BC):
            cc = c0 + tl.arange(0, BC)
            cm = cc < C
            kp = tl.load(IMG + b * img_sb + cc, mask=cm, other=0)
            ok = cm & (kp <= p) & (tl.load(KM + b * km_sb + kp, mask=cm, other=0) != 0)
            k = tl.load(kb + kp[:, None] * k_sl + dd[None, :], mask=cm[:, None] & dm[None, :], other=0.0).to(tl.float32)
            s = tl.sum(k * q[None, :], axis=1) * scale
            pr = tl.where(ok, tl.exp(s - lse), 0.0)
            t = tl.load(TGT + r * C + cc, mask=cm, other=0.0).to(tl.float32)
            a = tl.load(A + r * C + cc, mask=cm, other=1.0)
            ga = tl.where(a >= eps, -t / tl.maximum(a, eps), 0.0) * gscale
            ds = pr * ga / H
            delta_vec += ds
            dq += tl.sum(ds[:, None] * k, axis=0)
            tl.atomic_add(dkb + kp[:, None] * dk_sl + dd[None, :], ds[:, None] * q[None, :] * scale,
                          mask=ok[:, None] & dm[None, :])
        delta = tl.sum(delta_vec, axis=0)
        # every allowed key: ds = -p * delta
        for j0 in range(0, L, BL):
            jj = j0 + tl.arange(0, BL)
            ok = (jj <= p) & (jj < L) & (tl.load(KM + b * km_sb + jj, mask=jj < L, other=0) != 0)
            k = tl.load(kb + jj[:, None] * k_sl + dd[None, :], mask=(jj[:, None] < L) & dm[None, :], other=0.0).to(tl.float32)
            s = tl.sum(k * q[None, :], axis=1) * scale
            ds = tl.where(ok, -tl.exp(s - lse) * delta, 0.0)
            dq += tl.sum(ds[:, None] * k, axis=0)
            tl.atomic_add(dkb + jj[:, None] * dk_sl + dd[None, :], ds[:, None] * q[None, :] * scale,
                          mask=ok[:, None] & dm[None, :])
        tl.store(DQ + (r * H + h) * HD + dd, dq * scale, mask=dm)


def _blocks(L: int, C: int, hd: int) -> tuple[int, int, int]:
    bh = pow2(hd)
    return min(pow2(L), max(16, 8192 // bh)), min(pow2(C), max(16, 8192 // bh)), bh


class _SAP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q_seg, k, seg_batch, seg_pos, img_pos, target, key_mask, scale):
        R, H, hd = q_seg.shape
        B, Hkv, L, _ = k.shape
        C = img_pos.shape[1]
        q = q_seg.contiguous()
        k = k if k.stride(-1) == 1 else k.contiguous()
        sb, sp = seg_batch.to(torch.int64).contiguous(), seg_pos.to(torch.int64).contiguous()
        img = img_pos.to(torch.int64).contiguous()
        km = (torch.ones(B, L, dtype=torch.int8, device=k.device) if key_mask is None
              else key_mask.to(torch.int8).contiguous())
        tgt = target.float().contiguous()
        lse = torch.empty(R, H, device=k.device, dtype=torch.float32)
        a = torch.empty(R, C, device=k.device, dtype=torch.float32)
        loss_r = torch.empty(R, device=k.device, dtype=torch.float32)
        bl, bc, bh = _blocks(L, C, hd)
        if R:
            _sap_fwd[(R,)](q, k, sb, sp, img, km, tgt, lse, a, loss_r, H, L, C, hd, H // Hkv, scale, SAP_EPS,
                           q.stride(0), q.stride(1), k.stride(0), k.stride(1), k.stride(2), img.stride(0), km.stride(0),
                           BL=bl, BC=bc, BH=bh)
        ctx.save_for_backward(q, k, sb, sp, img, km, tgt, lse, a)
        ctx.scale = scale
        ctx.k_dtype = k.dtype
        return loss_r.sum() / max(R, 1)

    @staticmethod
    def backward(ctx, g):
        q, k, sb, sp, img, km, tgt, lse, a = ctx.saved_tensors
        R, H, hd = q.shape
        B, Hkv, L, _ = k.shape
        C = img.shape[1]
        dq = torch.empty(R, H, hd, device=q.device, dtype=torch.float32)
        dk = torch.zeros(B, Hkv, L, hd, device=k.device, dtype=torch.float32)
        bl, bc, bh = _blocks(L, C, hd)
        gscale = float(g) / max(R, 1)
        if R:
            _sap_bwd[(R,)](q, k, sb, sp, img, km, tgt, lse, a, dq, dk, H, L, C, hd, H // Hkv, ctx.scale, SAP_EPS, gscale,
                           q.stride(0), q.stride(1), k.stride(0), k.stride(1), k.stride(2), img.stride(0), km.stride(0),
                           dk.stride(0), dk.stride(1), dk.stride(2), BL=bl, BC=bc, BH=bh)
        return dq.to(q.dtype), dk.to(ctx.k_dtype), None, None, None, None, None, None


def sap_loss(q_seg: torch.Tensor, k: torch.Tensor, seg_batch: torch.Tensor, seg_pos: torch.Tensor,
             img_pos: torch.Tensor, target: torch.Tensor, key_mask: Optional[torch.Tensor] = None,
             scale: Optional[float] = None) -> torch.Tensor:
    """Scalar SAP loss; gradients flow to ``q_seg`` and ``k`` (same contract as the reference)."""
    _check(q_seg, k, seg_batch, seg_pos, img_pos, target)
    check_device(q_seg, k)
    scale = q_seg.shape[-1] ** -0.5 if scale is None else float(scale)
    return _SAP.apply(q_seg, k, seg_batch, seg_pos, img_pos, target, key_mask, scale)
