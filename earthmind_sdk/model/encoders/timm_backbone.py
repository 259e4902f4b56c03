"""Any timm vision backbone as the encoder, so a recipe can build an EO model on another tower.

Pretrained weights come only from a local file (``pretrained_file``): nothing is downloaded.
Prefix tokens (class, register tokens) are dropped; CNNs' feature maps are flattened to tokens.
The input the tower expects (``mean``, ``std``, and ``image_size`` when not given) is timm's
own data configuration of the model (``resolve_model_data_config``, from its ``pretrained_cfg``),
which preprocessing uses; nothing is guessed from the model's name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn


class TimmBackbone(nn.Module):
    def __init__(self, model_name: str, image_size: Optional[int] = None, pretrained_file: Optional[str] = None,
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
        self.model = _create(timm, model_name, image_size, kwargs)
        data = timm.data.resolve_model_data_config(self.model)
        self.mean = tuple(float(v) for v in data["mean"])
        self.std = tuple(float(v) for v in data["std"])
        self.model_name = model_name
        image_size = int(image_size if image_size is not None else data["input_size"][-1])
        self.image_size = image_size
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


def _create(timm, name: str, image_size: Optional[int], kwargs: dict[str, Any]):
    """The timm model, built for ``image_size`` when its constructor takes ``img_size`` (a
    transformer's position table); a model that refuses the argument (a CNN) takes any size."""
    if image_size is None or "img_size" in kwargs:
        return timm.create_model(name, num_classes=0, **kwargs)
    try:
        return timm.create_model(name, num_classes=0, img_size=int(image_size), **kwargs)
    except TypeError as exc:
        if "img_size" not in str(exc):
            raise
        return timm.create_model(name, num_classes=0, **kwargs)
