"""Spatial Attention Prompting (SAP, EarthMind v1 training) without ``output_attentions``.

The loss needs only the last layer's attention rows at the ``[SEG]`` positions, columns at the
image tokens, averaged over heads: KL(target || attn), batchmean over the ``[SEG]`` rows.
The original asks the LLM for ``output_attentions=True`` (eager attention, every layer's full
L x L map kept). Here the rows are recomputed from the last layer's post-RoPE queries (only
the ``[SEG]`` rows) and keys, which :class:`LastLayerQK` captures with a forward pre-hook:
cost O(R * H * L) for R ``[SEG]`` rows instead of O(layers * H * L^2).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

#: Floor on the attention probability inside the log (an image token the row never attends).
SAP_EPS = 1e-12


def _check(q_seg: Tensor, k: Tensor, seg_batch: Tensor, seg_pos: Tensor, img_pos: Tensor,
           target: Optional[Tensor]) -> None:
    if q_seg.dim() != 3 or k.dim() != 4:
        raise ValueError(f"sap: q_seg must be (rows, heads, head_dim) and k (batch, kv_heads, L, head_dim); "
                         f"got {tuple(q_seg.shape)} and {tuple(k.shape)}")
    R, H, hd = q_seg.shape
    if k.shape[-1] != hd or H % k.shape[1]:
        raise ValueError(f"sap: q heads {H} x {hd} do not match k heads {k.shape[1]} x {k.shape[-1]}")
    if seg_batch.shape != (R,) or seg_pos.shape != (R,):
        raise ValueError(f"sap: seg_batch and seg_pos must be ({R},), got {tuple(seg_batch.shape)}, {tuple(seg_pos.shape)}")
    if img_pos.dim() != 2 or img_pos.shape[0] != k.shape[0]:
        raise ValueError(f"sap: img_pos must be (batch={k.shape[0]}, image_tokens), got {tuple(img_pos.shape)}")
    if target is not None and target.shape != (R, img_pos.shape[1]):
        raise ValueError(f"sap: target must be (rows={R}, image_tokens={img_pos.shape[1]}), got {tuple(target.shape)}")


def sap_attention(q_seg: Tensor, k: Tensor, seg_batch: Tensor, seg_pos: Tensor, img_pos: Tensor,
                  key_mask: Optional[Tensor] = None, scale: Optional[float] = None) -> Tensor:
    """Head-averaged causal attention of each ``[SEG]`` row over the image tokens, (R, C) fp32.

    q_seg (R, H, hd) post-RoPE queries of the [SEG] rows; k (B, Hkv, L, hd) post-RoPE keys;
    seg_batch/seg_pos (R,) sample and sequence position of each row; img_pos (B, C) sequence
    positions of the image tokens; key_mask (B, L) bool, False at padding keys.
    """
    _check(q_seg, k, seg_batch, seg_pos, img_pos, None)
    R, H, hd = q_seg.shape
    L = k.shape[2]
    scale = hd ** -0.5 if scale is None else scale
    kk = k[seg_batch.long()].float().repeat_interleave(H // k.shape[1], dim=1)  # (R, H, L, hd)
    s = torch.einsum("rhd,rhld->rhl", q_seg.float(), kk) * scale
    allowed = torch.arange(L, device=k.device)[None, :] <= seg_pos.long()[:, None]
    if key_mask is not None:
        allowed = allowed & key_mask.bool()[seg_batch.long()]
    s = s.masked_fill(~allowed[:, None, :], float("-inf"))
    p = torch.softmax(s, dim=-1)
    cols = img_pos.long()[seg_batch.long()][:, None, :].expand(-1, H, -1)
    return p.gather(-1, cols).mean(1)


def sap_kl(attn: Tensor, target: Tensor, eps: float = SAP_EPS) -> Tensor:
    """KL(target || attn) summed over image tokens, averaged over rows (``batchmean``)."""
    t = target.float()
    kl = torch.xlogy(t, t) - t * torch.log(attn.float().clamp_min(eps))
    return kl.sum() / max(attn.shape[0], 1)


def sap_loss(q_seg: Tensor, k: Tensor, seg_batch: Tensor, seg_pos: Tensor, img_pos: Tensor, target: Tensor,
             key_mask: Optional[Tensor] = None, scale: Optional[float] = None) -> Tensor:
    """The SAP loss from the last layer's [SEG]-row queries and keys (plain-torch reference)."""
    _check(q_seg, k, seg_batch, seg_pos, img_pos, target)
    return sap_kl(sap_attention(q_seg, k, seg_batch, seg_pos, img_pos, key_mask, scale), target)


def sap_loss_from_attentions(attn: Tensor, seg_batch: Tensor, seg_pos: Tensor, img_pos: Tensor,
                             target: Tensor) -> Tensor:
    """The original route: ``attn`` (B, H, L, L) = the last layer's ``output_attentions``."""
    rows = attn[seg_batch.long(), :, seg_pos.long()].float()  # (R, H, L)
    cols = img_pos.long()[seg_batch.long()][:, None, :].expand(-1, rows.shape[1], -1)
    return sap_kl(rows.gather(-1, cols).mean(1), target)


def sap_target_from_mask(mask: Tensor, grid: tuple[int, int] = (16, 16)) -> Tensor:
    """GT mask(s) (..., H, W) -> max-pooled to the token grid, flattened, normalised to sum 1."""
    m = mask.float()
    lead = m.shape[:-2]
    pooled = F.adaptive_max_pool2d(m.reshape(-1, 1, *m.shape[-2:]), grid).reshape(*lead, grid[0] * grid[1])
    total = pooled.sum(-1, keepdim=True)
    if bool((total == 0).any()):
        raise ValueError("sap_target_from_mask: a mask is empty, so its SAP target is undefined; drop that [SEG] row")
    return pooled / total


def sap_target_for_tokens(mask: Tensor, grid: tuple[int, int], n_tokens: int,
                          source_index: Optional[Tensor] = None) -> Optional[Tensor]:
    """One ``[SEG]`` row's target over the image tokens the language model sees.

    ``mask`` (H, W) is pooled to the token grid (:func:`sap_target_from_mask`) and laid on each
    of the ``n_tokens // cells`` grids of the unpruned fused sequence (one per fused sensor),
    renormalised. When the fusion pruned tokens, ``source_index`` (k,) gives the unpruned
    position of each kept token: the target is gathered there and renormalised over the kept
    tokens. None when pruning removed every token the mask covers (the row has no target)."""
    from .prune import remap_sap_target, sap_target_lost

    cells = int(grid[0]) * int(grid[1])
    if n_tokens % cells:
        raise ValueError(f"SAP: {n_tokens} image tokens are not whole {tuple(grid)} token grids (multi-tile input?)")
    t = sap_target_from_mask(torch.as_tensor(mask)[None], tuple(grid))[0]
    t = t.repeat(n_tokens // cells) / (n_tokens // cells)
    if source_index is None:
        return t
    src = source_index.to(t.device)[None]
    if bool(sap_target_lost(t[None], src)[0]):
        return None
    return remap_sap_target(t[None], src)[0]


class LastLayerQK:
    """Captures the last decoder layer's post-RoPE queries (at chosen rows) and keys.

    How: a forward pre-hook (with kwargs) on the last layer's ``self_attn`` receives the
    normalised hidden states and the rotary ``(cos, sin)`` the layer was given; the keys and
    the ``[SEG]``-row queries are recomputed from them with the layer's own ``q_proj``/``k_proj``
    and the model's ``apply_rotary_pos_emb``. The recomputation is differentiable, so the SAP
    loss trains the model through it. Works for HF Llama-family layers (Qwen2, Llama, Phi3
    layouts with separate q/k projections).

    Usage::

        with LastLayerQK(lm) as cap:
            out = lm(inputs_embeds=..., attention_mask=...)
        q_seg, k = cap.qk(seg_batch, seg_pos)
    """

    def __init__(self, lm: torch.nn.Module):
        layers = _decoder_layers(lm)
        self.attn = layers[-1].self_attn
        self._handle = None
        self.hidden: Optional[Tensor] = None
        self.cos_sin: Optional[tuple[Tensor, Tensor]] = None

    def __enter__(self) -> "LastLayerQK":
        self._handle = self.attn.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _hook(self, module, args, kwargs):
        self.hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        pe = kwargs.get("position_embeddings")
        if pe is None and len(args) > 1:
            pe = args[1]
        if pe is None:
            raise RuntimeError("LastLayerQK: the attention layer got no position_embeddings (cos, sin)")
        self.cos_sin = pe

    def qk(self, seg_batch: Tensor, seg_pos: Tensor) -> tuple[Tensor, Tensor]:
        """(q_seg (R, H, hd), k (B, Hkv, L, hd)), both post-RoPE."""
        if self.hidden is None:
            raise RuntimeError("LastLayerQK: run the model inside the `with` block first")
        a = self.attn
        h = self.hidden
        B, L, _ = h.shape
        hd = a.head_dim
        cos, sin = self.cos_sin
        k = a.k_proj(h).view(B, L, -1, hd).transpose(1, 2)
        hs = h[seg_batch.long(), seg_pos.long()]  # (R, hidden)
        q = a.q_proj(hs).view(hs.shape[0], -1, hd)  # (R, H, hd)
        c_r = cos[seg_batch.long() if cos.shape[0] > 1 else torch.zeros_like(seg_batch).long(), seg_pos.long()]
        s_r = sin[seg_batch.long() if sin.shape[0] > 1 else torch.zeros_like(seg_batch).long(), seg_pos.long()]
        q = q * c_r[:, None, :] + _rotate_half(q) * s_r[:, None, :]
        k = k * cos[:, None] + _rotate_half(k) * sin[:, None]
        return q, k


def _rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _decoder_layers(lm: torch.nn.Module):
    for path in ("model.layers", "model.model.layers", "layers", "language_model.model.layers"):
        obj = lm
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return obj
    raise ValueError(f"LastLayerQK: cannot find decoder layers in {type(lm).__name__} (looked for model.layers)")
