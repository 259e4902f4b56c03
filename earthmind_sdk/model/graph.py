"""The EarthMind graph: one torch module whose submodules carry the released checkpoint's prefixes.

Data contract (one path for inference and training)::

    frames (3, H, W) in [0, 1] --preprocess--> tiles (T, 3, S, S)
      --encode_images--> (T, tokens_per_tile, D)      vision_model -> drop cls -> pixel shuffle -> mlp1
      --fuse--> FusionOutput                          one TokenSet per sensor (primary first)
      --embed--> inputs_embeds (B, L, D)              image embeddings at the <IMG_CONTEXT> positions
      --forward / language_model.generate--> logits, hidden states
      [SEG] hidden (K, D) --seg_prompts--> (K, prompt_dim) --decode_masks--> mask logits (K, H, W)

Submodules: ``vision_model``, ``mlp1``, ``language_model`` (the HF causal LM), ``fusion``
(optional; its ``local_query`` is stored top-level in checkpoints), ``grounding_encoder``
(SAM2, optional) and ``text_hidden_fcs``.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch
from torch import nn

from ..contracts import FusionOutput, TokenSet
from ..errors import EarthMindError, RecipeError
from . import regions as _regions
from . import tiling
from .encoders.pixel_shuffle import pixel_shuffle
from .spec import ModelSpec, load_spec


def _build(kind: str, part: dict[str, Any], where: str, **context: Any):
    from ..plugins import registry

    try:
        return registry(kind).build(part["name"], **context, **part["args"])
    except TypeError as exc:
        raise RecipeError(f"model spec: {where}: {part['name']!r} rejected its arguments: {exc}") from None


def check_encoder_input(encoder: Any, name: str) -> None:
    """An encoder declares the input it expects: ``image_size`` (pixels per tile side) and the
    per-channel ``mean`` and ``std`` its tiles are normalised with (three numbers each, std > 0)."""
    problems = []
    size = getattr(encoder, "image_size", None)
    if not isinstance(size, int) or size < 1:
        problems.append(f"image_size {size!r} (a positive integer)")
    for attr in ("mean", "std"):
        value = getattr(encoder, attr, None)
        try:
            ok = len(value) == 3 and all(math.isfinite(float(v)) and (attr == "mean" or float(v) > 0) for v in value)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            problems.append(f"{attr} {value!r} (three numbers{', each > 0' if attr == 'std' else ''})")
    if problems:
        raise RecipeError(f"model spec: encoder {name!r} must declare its input: " + "; ".join(problems))


class EarthMindModel(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        img = spec.image
        self.vision_model = _build("encoders", spec.encoder, "encoder")
        check_encoder_input(self.vision_model, spec.encoder["name"])
        if self.vision_model.image_size != img["size"]:
            raise RecipeError(f"model spec: image.size is {img['size']} but the encoder takes "
                              f"{self.vision_model.image_size} px images")
        if hasattr(self.vision_model, "select_layer"):
            self.vision_model.select_layer = int(img["select_layer"])
        self.downsample_ratio = float(img["downsample_ratio"])
        self.ps_version = img["ps_version"]
        r = round(1.0 / self.downsample_ratio)
        gh, gw = self.vision_model.grid
        if gh % r or gw % r:
            raise RecipeError(f"model spec: image.downsample_ratio {self.downsample_ratio}: the encoder's "
                              f"{gh}x{gw} patch grid is not divisible by {r}")
        self.token_grid = (gh // r, gw // r)
        self.tokens_per_tile = self.token_grid[0] * self.token_grid[1]
        self.language_model = _build("language_models", spec.language_model, "language_model")
        hidden = int(self.language_model.config.hidden_size)
        self.hidden_size = hidden
        self.mlp1 = _build("projectors", spec.projector, "projector",
                           in_dim=self.vision_model.out_dim * r * r, out_dim=hidden)
        self.fusion = _build("fusions", spec.fusion, "fusion", dim=hidden) if spec.fusion else None
        self.grounding_encoder = _build("decoders", spec.decoder, "decoder") if spec.decoder else None
        prompt_dim = int(self.grounding_encoder.prompt_dim) if self.grounding_encoder is not None else 256
        self.text_hidden_fcs = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                             nn.Linear(hidden, prompt_dim), nn.Dropout(0.0))
        self.img_context_token_id = int(spec.tokens["img_context_token_id"])
        self.seg_token_id = spec.tokens.get("seg_token_id")

    # -- properties the pipeline reads ------------------------------------------------------
    @property
    def fusion_uses_text(self) -> bool:
        """Whether the fusion wants the question's token embeddings: what it declares
        (``uses_text``, e.g. text-guided HCA), never decided from its name."""
        return bool(getattr(self.fusion, "uses_text", False)) if self.fusion is not None else False

    @property
    def sam_image_size(self) -> int:
        return int(self.grounding_encoder.image_size) if self.grounding_encoder is not None else 1024

    # -- vision side -------------------------------------------------------------------------
    @property
    def pixel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) the vision encoder declares for its input."""
        return tuple(self.vision_model.mean), tuple(self.vision_model.std)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """One frame (3, H, W) in [0, 1] -> normalised tiles (T, 3, S, S), InternVL dynamic tiling,
        normalised with the encoder's declared mean and std."""
        frame = tiling.check_frame(frames, "preprocess")
        img = self.spec.image
        args = (img["size"], img["min_tiles"], img["max_tiles"], img["use_thumbnail"])
        if img.get("resample", "pil") == "pil":  # the authors' 8-bit PIL path (see model.tiling)
            tiles = tiling.tile_image_pil(tiling.to_uint8(frame), *args)
        else:
            tiles = tiling.tile_image(frame, *args)
        return tiling.normalize(tiles, *self.pixel_stats)

    def preprocess_sam(self, frames: torch.Tensor) -> torch.Tensor:
        """One frame (3, H, W) in [0, 1] -> the SAM2 input (3, S, S): plain resize, bf16-rounded ImageNet stats."""
        frame = tiling.check_frame(frames, "preprocess_sam")
        size = self.sam_image_size
        if self.spec.image.get("resample", "pil") == "pil":
            resized = tiling.resize_pil(tiling.to_uint8(frame), (size, size))
        else:
            resized = tiling.resize(frame, (size, size))
        return tiling.normalize(resized, tiling.SAM_MEAN, tiling.SAM_STD)

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(T, 3, S, S) -> (T, tokens_per_tile, D): vision tower, pixel shuffle, mlp1."""
        if pixel_values.dim() != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"encode_images expects (T, 3, S, S) tiles, got shape {tuple(pixel_values.shape)}")
        t = pixel_values.shape[0]
        x = self.vision_model(pixel_values)
        gh, gw = self.vision_model.grid
        x = pixel_shuffle(x.reshape(t, gh, gw, -1), self.downsample_ratio, self.ps_version)
        return self.mlp1(x.reshape(t, self.tokens_per_tile, -1))

    def fuse(self, token_sets: Sequence[TokenSet], text_embeds: Optional[torch.Tensor] = None,
             text_mask: Optional[torch.Tensor] = None) -> FusionOutput:
        """One TokenSet per sensor (primary first) -> the tokens the LLM sees, with per-token weights."""
        if self.fusion is None:
            if len(token_sets) != 1:
                raise EarthMindError(f"this model has no fusion, so it takes one sensor's tokens; got "
                                     f"{[ts.sensor for ts in token_sets]}")
            ts = token_sets[0]
            ones = ts.tokens.new_ones(ts.tokens.shape[:2], dtype=torch.float32)
            return FusionOutput(tokens=ts.tokens, weights=ones, sensor_weights={ts.sensor: ones})
        return self.fusion(token_sets, text_embeds=text_embeds, text_mask=text_mask)

    def region_embeds(self, image_tokens: torch.Tensor, grid: tuple[int, int], regions: Sequence[Any],
                      image_size: Optional[tuple[int, int]] = None,
                      cell_index: Optional[torch.Tensor] = None) -> list[torch.Tensor]:
        """Image tokens (n, D) + regions (masks (H, W) or boxes (x0, y0, x1, y1)) -> [(k_r, D)] for <vp>;
        ``cell_index``: where each whole-image grid cell sits in ``image_tokens`` (see :mod:`.regions`)."""
        if image_size is None:
            shapes = {tuple(torch.as_tensor(r).shape) for r in regions if torch.as_tensor(r).dim() == 2}
            if len(shapes) != 1:
                raise ValueError("region_embeds: pass image_size=(H, W) (needed for boxes)")
            image_size = shapes.pop()
        return _regions.region_embeds(image_tokens, tuple(grid), regions, tuple(image_size), cell_index)

    # -- language side -----------------------------------------------------------------------
    def embed(self, input_ids: torch.Tensor, image_embeds: Optional[Sequence[Any]] = None) -> torch.Tensor:
        """Token embeddings (B, L, D) with image embeddings placed at the <IMG_CONTEXT> positions.

        An entry of ``image_embeds`` is a sample's (n, D) tensor or a
        :class:`~earthmind_sdk.model.fusion.modules.DeferredTokens`, whose fusion writes its tokens
        straight into the buffer (MMA through ``mma_into``) instead of being copied in."""
        from .fusion.modules import DeferredTokens

        emb = self.language_model.get_input_embeddings()(input_ids)
        is_img = input_ids == self.img_context_token_id
        image_embeds = list(image_embeds or [])
        if image_embeds and len(image_embeds) != input_ids.shape[0]:
            raise EarthMindError(f"embed: {input_ids.shape[0]} samples but {len(image_embeds)} image embedding sets")
        counts = is_img.sum(1).tolist()
        for b, n in enumerate(counts):
            given = int(image_embeds[b].shape[0]) if image_embeds else 0
            if n != given:
                raise EarthMindError(f"embed: sample {b} has {n} <IMG_CONTEXT> tokens (id {self.img_context_token_id}) "
                                     f"but {given} image embeddings")
        if not any(counts):
            return emb
        out = emb.clone()
        for b, e in enumerate(image_embeds):
            if counts[b] == 0:
                continue
            pos = is_img[b].nonzero()[:, 0]
            if isinstance(e, DeferredTokens):
                e.write(out, b, pos)
            else:
                out[b, pos] = e.reshape(-1, emb.shape[-1]).to(emb.dtype)
        return out

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                image_embeds: Optional[Sequence[torch.Tensor]] = None, labels: Optional[torch.Tensor] = None,
                **kw: Any):
        """The HF causal-LM output (loss with labels; hidden_states with output_hidden_states=True)."""
        inputs_embeds = self.embed(input_ids, image_embeds)
        return self.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels, **kw)

    # -- masks -------------------------------------------------------------------------------
    def seg_prompts(self, hidden: torch.Tensor) -> torch.Tensor:
        """[SEG] last-layer hidden states (K, D) -> SAM2 prompt embeddings (K, prompt_dim)."""
        w = self.text_hidden_fcs[0].weight
        return self.text_hidden_fcs(hidden.to(w.dtype))

    def decode_masks(self, sam_images: torch.Tensor, prompts: Sequence[torch.Tensor],
                     sizes: Sequence[tuple[int, int]], gate_no_object: bool = False) -> list[torch.Tensor]:
        """SAM2 inputs (B, 3, S, S), prompts[b] (K_b, prompt_dim), sizes[b] (H, W) -> [(K_b, H, W) logits].

        Each image goes through SAM2's image encoder once however many prompts it has; K_b = 0 -> empty."""
        if self.grounding_encoder is None:
            raise EarthMindError("this model has no mask decoder (spec decoder: null)")
        return self.grounding_encoder(sam_images, prompts, sizes, gate_no_object)


def build_model(spec: "str | dict | ModelSpec") -> EarthMindModel:
    """Spec (bundled name, YAML path, dict or :class:`ModelSpec`) -> an :class:`EarthMindModel`
    with freshly initialised weights."""
    return EarthMindModel(load_spec(spec))
