"""The fusion components: ``concat`` (v1 inference), ``mma`` (v1 training), ``hca`` (v2).

Each takes one :class:`TokenSet` per sensor, primary (SAR in EarthMind paired mode) first,
and returns a :class:`FusionOutput` whose ``weights`` rank the fused tokens and whose
``sensor_weights`` show, per input token, how much each sensor counted. ``keep_ratio`` < 1
prunes the fused tokens (see :mod:`.prune`); at 1.0 the output is exactly the unpruned one.
Tokens are (batch, tiles x tokens per tile, dim), the tile size taken from the TokenSet's
``grid``; joined sequences are laid out tile by tile (:mod:`.tiles`), as the authors' code does.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from earthmind_sdk.contracts import FusionOutput, TokenSet

from . import dispatch
from .prune import prune
from .tiles import as_tiles, interleave, tile_len

Tensor = torch.Tensor


class Fusion(nn.Module):
    """Shared checks and the optional pruning step."""

    name = "fusion"
    n_sensors: Optional[int] = None  # None: any number
    #: True when ``forward`` reads ``text_embeds`` (the question after the image): the batch
    #: builder computes them only for such a fusion. A plugin fusion declares it the same way.
    uses_text: bool = False

    def __init__(self, dim: int, keep_ratio: float = 1.0):
        super().__init__()
        if not 0.0 < keep_ratio <= 1.0:
            raise ValueError(f"{self.name}: keep_ratio must be in (0, 1], got {keep_ratio}")
        self.dim = int(dim)
        self.keep_ratio = float(keep_ratio)

    def _check(self, token_sets: Sequence[TokenSet]) -> None:
        if not token_sets:
            raise ValueError(f"{self.name} fusion got no token sets")
        if self.n_sensors is not None and len(token_sets) != self.n_sensors:
            raise ValueError(f"{self.name} fusion takes exactly {self.n_sensors} token sets (primary first), got "
                             f"{len(token_sets)}: {[ts.sensor for ts in token_sets]}")
        first = token_sets[0].tokens
        for ts in token_sets:
            t = ts.tokens
            if t.dim() != 3 or t.shape[-1] != self.dim:
                raise ValueError(f"{self.name} fusion: tokens of sensor {ts.sensor!r} must be (batch, tokens, {self.dim}), "
                                 f"got {tuple(t.shape)}")
            if t.shape[0] != first.shape[0]:
                raise ValueError(f"{self.name} fusion: sensor {ts.sensor!r} has batch {t.shape[0]}, "
                                 f"{token_sets[0].sensor!r} has {first.shape[0]}")
        if self.n_sensors == 2 and token_sets[0].tokens.shape != token_sets[1].tokens.shape:
            raise ValueError(f"{self.name} fusion pairs tokens one to one: {token_sets[0].sensor!r} "
                             f"{tuple(token_sets[0].tokens.shape)} vs {token_sets[1].sensor!r} "
                             f"{tuple(token_sets[1].tokens.shape)}")

    @staticmethod
    def _tile(token_sets: Sequence[TokenSet]) -> int:
        """Tokens per tile shared by all sensors (the whole sequence when a set has no grid)."""
        first = token_sets[0]
        c = tile_len(first.tokens.shape[1], first.grid)
        for ts in token_sets[1:]:
            if tile_len(ts.tokens.shape[1], ts.grid) != c:
                raise ValueError(f"sensors {first.sensor!r} and {ts.sensor!r} have different tile sizes "
                                 f"({first.grid} vs {ts.grid})")
        return c

    def _finish(self, out: FusionOutput) -> FusionOutput:
        return prune(out, self.keep_ratio) if self.keep_ratio < 1.0 else out

    def extra_repr(self) -> str:
        return f"dim={self.dim}, keep_ratio={self.keep_ratio}"


class ConcatFusion(Fusion):
    """Tile by tile [primary; secondary; ...] tokens, all weights 1 (EarthMind v1 inference).
    Sensors with different token counts are appended whole, primary first."""

    name = "concat"

    def forward(self, token_sets: Sequence[TokenSet], text_embeds: Optional[Tensor] = None,
                text_mask: Optional[Tensor] = None) -> FusionOutput:
        self._check(token_sets)
        parts = [ts.tokens for ts in token_sets]
        if len({p.shape for p in parts}) == 1:
            tokens = interleave(parts, self._tile(token_sets))
        else:
            tokens = torch.cat(parts, dim=1)
        sw = {ts.sensor: ts.tokens.new_ones(ts.tokens.shape[:2], dtype=torch.float32) for ts in token_sets}
        weights = tokens.new_ones(tokens.shape[:2], dtype=torch.float32)
        return self._finish(FusionOutput(tokens=tokens, weights=weights, sensor_weights=sw))


class MMAFusion(Fusion):
    """Modality Mutual Attention (EarthMind v1 training): a learned query ``local_query``
    (queries x dim) scores each token pair, w_i = sigmoid(score_i) scales both tokens, then
    [SAR; optical] are joined tile by tile. ``reweight=False`` gives the released inference code's
    plain join with the same parameter present (for loading v1 checkpoints)."""

    name = "mma"
    n_sensors = 2

    def __init__(self, dim: int, num_queries: int = 2, reweight: bool = True, keep_ratio: float = 1.0,
                 init_std: float = 0.02):
        super().__init__(dim, keep_ratio)
        self.reweight = bool(reweight)
        self.local_query = nn.Parameter(torch.randn(num_queries, dim) * init_std)

    def forward(self, token_sets: Sequence[TokenSet], text_embeds: Optional[Tensor] = None,
                text_mask: Optional[Tensor] = None) -> FusionOutput:
        self._check(token_sets)
        s, o = token_sets[0].tokens, token_sets[1].tokens
        c = self._tile(token_sets)
        B, N, D = s.shape
        if self.reweight:  # one row per tile: the reference / kernel joins [s_t; o_t] inside each row
            tokens, w = dispatch.mma(as_tiles(s, c), as_tiles(o, c), self.local_query)
            tokens, w = tokens.reshape(B, 2 * N, D), w.reshape(B, N)
        else:
            tokens, w = interleave([s, o], c), s.new_ones(s.shape[:2], dtype=torch.float32)
        sw = {token_sets[0].sensor: w, token_sets[1].sensor: w}
        return self._finish(FusionOutput(tokens=tokens, weights=interleave([w, w], c), sensor_weights=sw))


    def can_write_into(self) -> bool:
        """Whether :meth:`fuse_into` applies (reweighting on, nothing pruned)."""
        return self.reweight and self.keep_ratio >= 1.0

    def fuse_into(self, token_sets: Sequence[TokenSet], out: Tensor, positions: Tensor,
                  out_row: int = 0) -> FusionOutput:
        """Write the fused tokens straight into rows ``out_row .. out_row + B`` of ``out`` (rows, L, D),
        the LLM's ``inputs_embeds``, at ``positions`` (B, 2N): the sequence positions of the image
        tokens in order. The tile-by-tile
        layout maps tile t's SAR tokens to positions[2ct : 2ct + c] and its optical tokens to the
        next c. Equal to ``forward`` followed by a scatter, without building the (B, 2N, D) tokens
        (Triton ``mma_into`` on CUDA). ``tokens`` of the result is a view of ``out`` when the image
        positions are one contiguous run (the usual prompt), else a gathered copy."""
        if not self.can_write_into():
            raise ValueError("mma.fuse_into needs reweight=True and keep_ratio=1")
        self._check(token_sets)
        s, o = token_sets[0].tokens, token_sets[1].tokens
        c = self._tile(token_sets)
        B, N, D = s.shape
        if positions.shape != (B, 2 * N):
            raise ValueError(f"mma.fuse_into: positions must be (batch={B}, 2N={2 * N}), got {tuple(positions.shape)}")
        pair = positions.reshape(B, N // c, 2, c)  # tile by tile: [sar_t; opt_t]
        by_sensor = torch.cat([pair[:, :, 0].reshape(B, N), pair[:, :, 1].reshape(B, N)], 1)
        _, w = dispatch.mma_into(s, o, self.local_query, out, by_sensor, out_row)
        rows = out[out_row:out_row + B]
        start = positions[:, :1]
        run = torch.arange(2 * N, device=positions.device)
        if bool((positions == start + run).all()) and bool((start == start[0]).all()):
            tokens = rows[:, int(start[0, 0]):int(start[0, 0]) + 2 * N]
        else:
            tokens = rows.gather(1, positions.long()[..., None].expand(-1, -1, D))
        sw = {token_sets[0].sensor: w, token_sets[1].sensor: w}
        return FusionOutput(tokens=tokens, weights=interleave([w, w], c), sensor_weights=sw)


class DeferredTokens:
    """A sample's fused tokens, not built yet: :meth:`EarthMindModel.embed` has them written
    straight into the language model's ``inputs_embeds`` (:meth:`MMAFusion.fuse_into`), which
    skips building (2N, D) tokens and copying them into the buffer. ``output`` holds the
    :class:`FusionOutput` once written; :meth:`materialize` runs the fusion the ordinary way
    (needed where the tokens themselves are read first, e.g. region prompts)."""

    def __init__(self, fusion: MMAFusion, token_sets: Sequence[TokenSet]):
        self.fusion, self.token_sets = fusion, list(token_sets)
        t = self.token_sets[0].tokens
        self.shape = (2 * t.shape[1], t.shape[2])
        self.output: Optional[FusionOutput] = None

    def to(self, *args, **kwargs) -> "DeferredTokens":
        """Dtype and device follow the buffer at write time."""
        return self

    def write(self, out: Tensor, row: int, positions: Tensor) -> FusionOutput:
        """Into row ``row`` of the buffer ``out`` (B, L, D), at ``positions`` (2N,)."""
        self.output = self.fusion.fuse_into(self.token_sets, out, positions[None], row)
        return self.output

    def materialize(self) -> FusionOutput:
        return self.fusion(self.token_sets)


class HCAFusion(Fusion):
    """Hierarchical Cross-modal Attention (EarthMind v2): parameter-free.

    Per sensor, quality q = 1 - minmax(entropy of softmax(X^ X^T / tau) rows, X^ the tokens of
    one tile; min-max over all tiles) and text relevance beta = max_j cos(x_i, t_j) / text_tau
    (t: the text after the image, see ``BatchBuilder.question_embeds``); alpha = rel_mix softmax(beta) + (1 - rel_mix)
    softmax(q) over the two sensors; fused x_i = sum_m alpha_m x_m,i (N tokens).
    ``normalize="sample"`` (default) min-maxes each sample on its own; ``"batch"`` reproduces
    the original's batch-wide min-max, where one sample's fusion depends on its batch-mates.
    """

    name = "hca"
    n_sensors = 2
    uses_text = True

    def __init__(self, dim: int, tau: float = 0.1, text_tau: float = 0.2, rel_mix: float = 0.7,
                 normalize: str = "sample", keep_ratio: float = 1.0):
        super().__init__(dim, keep_ratio)
        if normalize not in ("sample", "batch"):
            raise ValueError(f"hca: normalize must be 'sample' or 'batch', got {normalize!r}")
        if not 0.0 <= rel_mix <= 1.0:
            raise ValueError(f"hca: rel_mix must be in [0, 1], got {rel_mix}")
        self.tau, self.text_tau, self.rel_mix, self.normalize = float(tau), float(text_tau), float(rel_mix), normalize

    def forward(self, token_sets: Sequence[TokenSet], text_embeds: Optional[Tensor] = None,
                text_mask: Optional[Tensor] = None) -> FusionOutput:
        from .functional import hca_token_weight

        self._check(token_sets)
        s, o = token_sets[0].tokens, token_sets[1].tokens
        masks = [ts.mask for ts in token_sets if ts.mask is not None]
        token_mask = None
        if masks:
            token_mask = masks[0].bool()
            for m in masks[1:]:
                token_mask = token_mask & m.bool()
        if text_embeds is not None:
            text_embeds = text_embeds.to(s.dtype)
        r = dispatch.hca(s, o, text_embeds, text_mask, tau=self.tau, text_tau=self.text_tau, rel_mix=self.rel_mix,
                         normalize=self.normalize, token_mask=token_mask, tile=self._tile(token_sets))
        alpha = r["alpha"]
        has_text = text_embeds is not None and text_embeds.shape[1] > 0
        weights = hca_token_weight(alpha, r["relevance"], r["quality"], self.rel_mix, self.text_tau, has_text)
        if token_mask is not None:
            weights = weights.masked_fill(~token_mask, 0.0)
        sw = {token_sets[0].sensor: alpha[:, 0], token_sets[1].sensor: alpha[:, 1]}
        return self._finish(FusionOutput(tokens=r["tokens"], weights=weights, sensor_weights=sw))
