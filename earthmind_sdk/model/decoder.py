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

#: A small SAM2 (Hiera with one block per stage, 64 px input, 32-channel prompts) for tests:
#: same classes and parameter names as Hiera-L, a few hundred thousand parameters.
TINY_OVERRIDES: dict[str, Any] = {
    "image_size": 64,
    "image_encoder.trunk.embed_dim": 8,
    "image_encoder.trunk.num_heads": 1,
    "image_encoder.trunk.stages": [1, 1, 2, 1],  # block 3 is global; pooling blocks (1, 2, 4) must be windowed
    "image_encoder.trunk.global_att_blocks": [3],
    "image_encoder.trunk.window_pos_embed_bkg_spatial_size": [2, 2],
    "image_encoder.trunk.window_spec": [4, 4, 4, 2],
    "image_encoder.neck.d_model": 32,
    "image_encoder.neck.backbone_channel_list": [64, 32, 16, 8],
    "image_encoder.neck.position_encoding.num_pos_feats": 32,
    "memory_attention.d_model": 32,
    "memory_attention.num_layers": 1,
    "memory_attention.layer.d_model": 32,
    "memory_attention.layer.dim_feedforward": 32,
    "memory_attention.layer.self_attention.embedding_dim": 32,
    "memory_attention.layer.self_attention.feat_sizes": [4, 4],
    "memory_attention.layer.cross_attention.embedding_dim": 32,
    "memory_attention.layer.cross_attention.feat_sizes": [4, 4],
    "memory_attention.layer.cross_attention.kv_in_dim": 16,
    "memory_encoder.out_dim": 16,
    "memory_encoder.position_encoding.num_pos_feats": 16,
    "memory_encoder.fuser.layer.dim": 32,
}


def sam2_model_config(config: str = "sam2_hiera_l", overrides: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The ``model`` section of one of the sam2 package's configs, with dotted-key overrides."""
    from omegaconf import OmegaConf  # parses 1e-6 as a float, as hydra does

    import sam2

    root = Path(sam2.__file__).parent / "configs"
    name = config[:-5] if config.endswith(".yaml") else config
    candidates = [root / "sam2" / f"{name}.yaml", root / "sam2.1" / f"{name}.yaml"]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        known = sorted(p.stem for d in ("sam2", "sam2.1") if (root / d).is_dir() for p in (root / d).glob("*.yaml"))
        raise ValueError(f"sam2 decoder: unknown config {config!r}; the sam2 package has {', '.join(known)}")
    model = copy.deepcopy(OmegaConf.to_container(OmegaConf.load(path))["model"])
    for key, value in (overrides or {}).items():
        node = model
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"sam2 decoder: override {key!r}: {part!r} is not a section of {name}")
            node = node[part]
        if parts[-1] not in node:
            raise ValueError(f"sam2 decoder: override {key!r}: no such key in {name}")
        node[parts[-1]] = value
    return model


class SAM2Decoder(nn.Module):
    """``[SEG]`` prompt embeddings (K, prompt_dim) + image -> K mask logits at the input size."""

    def __init__(self, config: str = "sam2_hiera_l", overrides: Optional[dict[str, Any]] = None):
        super().__init__()
        try:
            from hydra.utils import instantiate

            import sam2  # noqa: F401
        except ImportError as exc:
            raise ImportError(f"the sam2 decoder needs the sam2 package (SAM2_BUILD_CUDA=0 pip install "
                              f"--no-build-isolation sam2==1.1.0): {exc}") from exc

        self.config_name = config
        self.overrides = dict(overrides or {})
        self.sam2_model = instantiate(sam2_model_config(config, self.overrides), _recursive_=True)
        self.prompt_dim = int(self.sam2_model.hidden_dim)
        self.image_size = int(self.sam2_model.image_size)

    @classmethod
    def tiny_args(cls) -> dict[str, Any]:
        return dict(config="sam2_hiera_l", overrides=dict(TINY_OVERRIDES))

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
