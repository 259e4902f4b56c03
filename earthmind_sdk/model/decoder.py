"""The SAM2 mask decoder (through the ``sam2`` package), driven by ``[SEG]`` prompt embeddings.

The module is the graph's ``grounding_encoder``; its ``sam2_model`` is the package's SAM2Base, so
the released ``grounding_encoder.sam2_model.*`` tensors load with no renaming. Decoding follows
the authors' image path: encode the image once, add ``no_mem_embed`` to the top feature map,
feed a padding point plus the ``[SEG]`` embedding as sparse prompts, let the decoder pick the
best of its multimask outputs by predicted IoU, and resize the 1/4-resolution logits bilinearly
to SAM2's input size and then to the input size (two steps, as their video predictor and
``predict_forward`` do). Their released SAM2 does not suppress masks when it predicts "no
object" (that ``torch.where`` is commented out in their ``SAM2Base``), so neither do we by
default; ``gate_no_object=True`` sets such masks to -1024 (SAM2's own behaviour).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

NO_OBJECT_LOGIT = -1024.0

#: Override keys a spec or checkpoint may set: sizes only, each a number or a list of numbers.
#: Nothing else of the SAM2 configuration is reachable from data (no class names, no strings).
ALLOWED_OVERRIDES = frozenset({
    "image_size",
    "image_encoder.trunk.embed_dim",
    "image_encoder.trunk.num_heads",
    "image_encoder.trunk.stages",
    "image_encoder.trunk.global_att_blocks",
    "image_encoder.trunk.window_pos_embed_bkg_spatial_size",
    "image_encoder.trunk.window_spec",
    "image_encoder.neck.d_model",
    "image_encoder.neck.backbone_channel_list",
    "image_encoder.neck.position_encoding.num_pos_feats",
    "memory_attention.d_model",
    "memory_attention.num_layers",
    "memory_attention.layer.d_model",
    "memory_attention.layer.dim_feedforward",
    "memory_attention.layer.self_attention.embedding_dim",
    "memory_attention.layer.self_attention.feat_sizes",
    "memory_attention.layer.cross_attention.embedding_dim",
    "memory_attention.layer.cross_attention.feat_sizes",
    "memory_attention.layer.cross_attention.kv_in_dim",
    "memory_encoder.out_dim",
    "memory_encoder.position_encoding.num_pos_feats",
    "memory_encoder.fuser.layer.dim",
    "num_maskmem",
    "image_encoder.scalp",
    "image_encoder.neck.fpn_top_down_levels",
    "memory_attention.layer.self_attention.num_heads",
    "memory_attention.layer.cross_attention.num_heads",
    "memory_encoder.fuser.num_layers",
})

#: The only classes the SAM2 configuration may name (the sam2 package's own configs use these).
_SAM2_CLASSES = (
    "sam2.modeling.sam2_base.SAM2Base",
    "sam2.modeling.backbones.image_encoder.ImageEncoder",
    "sam2.modeling.backbones.image_encoder.FpnNeck",
    "sam2.modeling.backbones.hieradet.Hiera",
    "sam2.modeling.position_encoding.PositionEmbeddingSine",
    "sam2.modeling.memory_attention.MemoryAttention",
    "sam2.modeling.memory_attention.MemoryAttentionLayer",
    "sam2.modeling.sam.transformer.RoPEAttention",
    "sam2.modeling.memory_encoder.MemoryEncoder",
    "sam2.modeling.memory_encoder.MaskDownSampler",
    "sam2.modeling.memory_encoder.Fuser",
    "sam2.modeling.memory_encoder.CXBlock",
)
SAM2_CONFIGS = frozenset({"sam2_hiera_t", "sam2_hiera_s", "sam2_hiera_b+", "sam2_hiera_l",
                          "sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l"})


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_sam2_overrides(overrides: Any, where: str = "sam2 decoder") -> dict[str, Any]:
    """Refuse any override that is not an allow-listed size key with a number or list of numbers."""
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise ValueError(f"{where}: overrides must be a mapping of size keys to numbers")
    for key, value in overrides.items():
        if key not in ALLOWED_OVERRIDES:
            raise ValueError(f"{where}: override {str(key)[:80]!r} is not allowed; allowed keys: "
                             f"{', '.join(sorted(ALLOWED_OVERRIDES))}")
        ok = _is_number(value) or (isinstance(value, list) and value and all(_is_number(v) for v in value))
        if not ok:
            raise ValueError(f"{where}: override {key!r} must be a number or a list of numbers, "
                             f"got {type(value).__name__}")
    return dict(overrides)


def sam2_model_config(config: str = "sam2_hiera_l", overrides: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The ``model`` section of one of the sam2 package's own configs, with allow-listed size overrides.

    Only the eight configs the package ships are read (a name is never a path); their class
    names are checked against :data:`_SAM2_CLASSES` when built (:func:`build_sam2_model`)."""
    import yaml

    import sam2

    name = config[:-5] if isinstance(config, str) and config.endswith(".yaml") else config
    if name not in SAM2_CONFIGS:
        raise ValueError(f"sam2 decoder: unknown config {str(config)[:80]!r}; known: {', '.join(sorted(SAM2_CONFIGS))}")
    overrides = check_sam2_overrides(overrides)
    root = Path(sam2.__file__).parent / "configs"
    path = root / ("sam2.1" if name.startswith("sam2.1") else "sam2") / f"{name}.yaml"
    with open(path) as fh:  # plain YAML: the package configs hold no interpolation
        model = copy.deepcopy(yaml.safe_load(fh)["model"])
    for key, value in overrides.items():
        node = model
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"sam2 decoder: override {key!r}: {part!r} is not a section of {name}")
            node = node[part]
        if parts[-1] not in node:
            raise ValueError(f"sam2 decoder: override {key!r}: no such key in {name}")
        node[parts[-1]] = copy.deepcopy(value)
    return model


def build_sam2_model(node: Any) -> Any:
    """Build SAM2 from a configuration tree whose ``_target_`` entries must be one of
    :data:`_SAM2_CLASSES` (imported from the sam2 package here, never by a name from data).
    YAML's ``1e-6`` (a string to PyYAML) is read as a number, as Hydra does."""
    import importlib

    if isinstance(node, list):
        return [build_sam2_model(v) for v in node]
    if isinstance(node, str):
        if "${" in node:
            raise ValueError(f"sam2 decoder: interpolation {node[:40]!r} is not allowed")
        try:
            return float(node) if any(c in node for c in "e.") and node.lstrip("+-")[:1].isdigit() else node
        except ValueError:
            return node
    if not isinstance(node, dict):
        return node
    target = node.get("_target_")
    kwargs = {k: build_sam2_model(v) for k, v in node.items() if k != "_target_"}
    if target is None:
        return kwargs
    if target not in _SAM2_CLASSES:
        raise ValueError(f"sam2 decoder: class {str(target)[:80]!r} is not one SAM2 is built from")
    module, _, cls = target.rpartition(".")
    return getattr(importlib.import_module(module), cls)(**kwargs)


class SAM2Decoder(nn.Module):
    """``[SEG]`` prompt embeddings (K, prompt_dim) + image -> K mask logits at the input size."""

    def __init__(self, config: str = "sam2_hiera_l", overrides: Optional[dict[str, Any]] = None):
        super().__init__()
        try:
            import sam2  # noqa: F401
        except ImportError as exc:
            raise ImportError(f"the sam2 decoder needs the sam2 package (SAM2_BUILD_CUDA=0 pip install "
                              f"--no-build-isolation sam2==1.1.0): {exc}") from exc

        self.config_name = config
        self.overrides = check_sam2_overrides(overrides)
        self.sam2_model = build_sam2_model(sam2_model_config(config, self.overrides))
        self.prompt_dim = int(self.sam2_model.hidden_dim)
        self.image_size = int(self.sam2_model.image_size)

    @classmethod
    def tiny_args(cls) -> dict[str, Any]:
        from .spec import tiny_args

        return tiny_args("decoder")

    def args(self) -> dict[str, Any]:
        return {"config": self.config_name, "overrides": dict(self.overrides)}

    def encode(self, images: torch.Tensor) -> dict[str, Any]:
        """Image features, computed once per image: top map (+ no-memory embedding) and high-res maps."""
        sam = self.sam2_model
        dtype = next(sam.parameters()).dtype
        backbone = sam.forward_image(images.to(dtype))
        _, feats, _, sizes = sam._prepare_backbone_features(backbone)
        b = images.shape[0]
        top = feats[-1]
        if sam.directly_add_no_mem_embed:
            top = top + sam.no_mem_embed
        top = top.permute(1, 2, 0).reshape(b, -1, *sizes[-1])
        high = [f.permute(1, 2, 0).reshape(b, -1, *s) for f, s in zip(feats[:-1], sizes[:-1])]
        return {"top": top, "high": high}

    def masks(self, feats: dict[str, Any], index: torch.Tensor, prompts: torch.Tensor,
              gate_no_object: bool = False) -> torch.Tensor:
        """Low-resolution logits (K, h, w) for prompt k on image ``index[k]``. ``gate_no_object=True``
        floors them at -1024 where SAM2 predicts "no object" (the released models do not)."""
        sam = self.sam2_model
        k = prompts.shape[0]
        top = feats["top"][index]
        high = [h[index] for h in feats["high"]] if sam.use_high_res_features_in_sam else None
        coords = torch.zeros(k, 1, 2, device=top.device)
        labels = -torch.ones(k, 1, dtype=torch.int32, device=top.device)
        sparse, dense = sam.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        sparse = torch.cat([sparse, prompts[:, None].to(sparse.dtype)], dim=1)
        multimask = sam._use_multimask(True, None)
        logits, ious, _, obj = sam.sam_mask_decoder(
            image_embeddings=top, image_pe=sam.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense.to(top.dtype),
            multimask_output=multimask, repeat_image=False, high_res_features=high,
        )
        if sam.pred_obj_scores and gate_no_object:
            logits = torch.where(obj[:, :, None, None] > 0, logits, torch.full_like(logits, NO_OBJECT_LOGIT))
        logits = logits.float()
        if multimask:
            best = ious.argmax(-1)
            logits = logits[torch.arange(k, device=logits.device), best]
        else:
            logits = logits[:, 0]
        return logits

    def forward(self, images: torch.Tensor, prompts: Sequence[torch.Tensor],
                sizes: Sequence[tuple[int, int]], gate_no_object: bool = False) -> list[torch.Tensor]:
        """images (B, 3, S, S) normalised; prompts[b] (K_b, prompt_dim); sizes[b] (H, W) -> [(K_b, H, W)]."""
        if len(prompts) != images.shape[0] or len(sizes) != images.shape[0]:
            raise ValueError(f"sam2 decoder: {images.shape[0]} images but {len(prompts)} prompt sets and "
                             f"{len(sizes)} sizes")
        for b, p in enumerate(prompts):
            if p.dim() != 2 or p.shape[-1] != self.prompt_dim:
                raise ValueError(f"sam2 decoder: prompts for image {b} must be (K, {self.prompt_dim}), got {tuple(p.shape)}")
        out: list[torch.Tensor] = [images.new_zeros((0, int(h), int(w)), dtype=torch.float32) for h, w in sizes]
        todo = [b for b, p in enumerate(prompts) if p.shape[0] > 0]
        if not todo:
            return out
        feats = self.encode(images[todo])
        index = torch.cat([torch.full((prompts[b].shape[0],), i, dtype=torch.long) for i, b in enumerate(todo)])
        low = self.masks(feats, index.to(images.device), torch.cat([prompts[b] for b in todo]), gate_no_object)
        side = (self.image_size, self.image_size)
        full = low[:, None] if tuple(low.shape[-2:]) == side else \
            F.interpolate(low[:, None], size=side, mode="bilinear", align_corners=False)
        start = 0
        for b in todo:
            n = prompts[b].shape[0]
            size = tuple(int(s) for s in sizes[b])
            part = full[start:start + n]
            out[b] = (part if size == side else F.interpolate(part, size=size, mode="bilinear", align_corners=False))[:, 0]
            start += n
        return out
