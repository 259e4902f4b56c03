"""Any timm vision backbone as the encoder, so a recipe can build an EO model on another tower.

Pretrained weights come only from a local file (``pretrained_file``): nothing is downloaded.
Prefix tokens (class, register tokens) are dropped; CNNs' feature maps are flattened to tokens.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn


class TimmBackbone(nn.Module):
    def __init__(self, model_name: str, image_size: int = 224, pretrained_file: Optional[str] = None,
                 model_args: Optional[dict[str, Any]] = None):
        super().__init__()
        import timm

        if not timm.list_models(model_name) and model_name not in timm.list_models():
            raise ValueError(f"timm encoder: unknown timm model {model_name!r}")
        kwargs = dict(model_args or {})
        if pretrained_file is not None:
            path = Path(pretrained_file)
            if not path.is_file():
                raise FileNotFoundError(f"timm encoder {model_name}: pretrained_file {path} does not exist")
            kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
        if "img_size" not in kwargs and _takes_img_size(model_name):
            kwargs["img_size"] = image_size
        self.model = timm.create_model(model_name, num_classes=0, **kwargs)
        self.model_name = model_name
        self.image_size = int(image_size)
        self.num_prefix_tokens = int(getattr(self.model, "num_prefix_tokens", 0))
        was_training = self.model.training
        self.model.eval()  # batch norm cannot see a batch of one in training mode
        with torch.no_grad():
            probe = self._features(torch.zeros(1, 3, image_size, image_size))
        self.model.train(was_training)
        self.out_dim = int(probe.shape[-1])
        self.grid = tuple(probe.shape[1:3])

    @classmethod
    def tiny_args(cls) -> dict[str, Any]:
        return dict(model_name="vit_tiny_patch16_224", image_size=32,
                    model_args=dict(depth=1, embed_dim=16, num_heads=2, patch_size=8))

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, h, w, C) feature grid."""
        f = self.model.forward_features(x)
        if f.dim() == 4:  # CNN: (B, C, h, w)
            return f.permute(0, 2, 3, 1)
        tokens = f[:, self.num_prefix_tokens:]
        n = tokens.shape[1]
        side = int(round(n ** 0.5))
        if side * side != n:
            raise ValueError(f"timm encoder {self.model_name}: {n} patch tokens do not form a square grid")
        return tokens.reshape(tokens.shape[0], side, side, -1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        dtype = next(self.model.parameters()).dtype
        f = self._features(pixel_values.to(dtype))
        return f.flatten(1, 2)


def _takes_img_size(name: str) -> bool:
    return any(k in name for k in ("vit", "deit", "eva", "beit", "swin", "dino"))
