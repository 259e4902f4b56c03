"""InternViT (InternVL's vision tower), written for this SDK.

Submodule and parameter names follow the released checkpoints (``embeddings.class_embedding``,
``embeddings.patch_embedding``, ``embeddings.position_embedding``,
``encoder.layers.N.{attn.qkv, attn.proj, ls1, ls2, norm1, norm2, mlp.fc1, mlp.fc2}``, plus
``attn.q_norm``/``attn.k_norm`` for the 6B variant) so a checkpoint's ``vision_model.*`` tensors
load with no renaming. Constructor arguments are the fields of ``config.json``'s ``vision_config``.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attention

#: vision_config fields this implementation reads; the rest of a config is bookkeeping.
CONFIG_FIELDS = (
    "hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "image_size",
    "patch_size", "num_channels", "qkv_bias", "qk_normalization", "norm_type", "layer_norm_eps",
    "hidden_act", "initializer_factor", "initializer_range", "drop_path_rate", "select_layer",
)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def _norm(kind: str, dim: int, eps: float) -> nn.Module:
    if kind == "layer_norm":
        return nn.LayerNorm(dim, eps=eps)
    if kind == "rms_norm":
        return RMSNorm(dim, eps=eps)
    raise ValueError(f"internvit: norm_type must be 'layer_norm' or 'rms_norm', got {kind!r}")


_ACTS = {"gelu": nn.GELU, "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh"), "relu": nn.ReLU,
         "silu": nn.SiLU}


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def _act(name: str) -> nn.Module:
    if name == "quick_gelu":
        return QuickGELU()
    if name not in _ACTS:
        raise ValueError(f"internvit: hidden_act {name!r} is not supported; use quick_gelu or {', '.join(_ACTS)}")
    return _ACTS[name]()


def sincos_2d(grid: tuple[int, int], dim: int) -> torch.Tensor:
    """(h * w, dim) position codes in raster order: the first half of the channels encode the
    row, the second the column, each as sines and cosines of dim / 4 geometric frequencies."""
    if dim % 4:
        raise ValueError(f"sincos position codes need a width divisible by 4, got {dim}")
    h, w = grid
    freq = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4))
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                indexing="ij")

    def code(pos: torch.Tensor) -> torch.Tensor:
        angle = pos.reshape(-1, 1) * freq
        return torch.cat([angle.sin(), angle.cos()], dim=1)

    return torch.cat([code(rows), code(cols)], dim=1)


class Embeddings(nn.Module):
    def __init__(self, dim: int, image_size: int, patch_size: int, channels: int):
        super().__init__()
        self.image_size, self.patch_size = image_size, patch_size
        self.class_embedding = nn.Parameter(torch.randn(1, 1, dim))
        self.patch_embedding = nn.Conv2d(channels, dim, kernel_size=patch_size, stride=patch_size)
        self.num_patches = (image_size // patch_size) ** 2
        self.position_embedding = nn.Parameter(torch.randn(1, self.num_patches + 1, dim))

    def _pos(self, h: int, w: int) -> torch.Tensor:
        """Patch position embeddings for an h x w grid (bicubic resize when it differs from the trained one)."""
        pos = self.position_embedding[:, 1:]
        side = self.image_size // self.patch_size
        if (h, w) == (side, side):
            return pos
        grid = pos.float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
        return grid.reshape(1, -1, h * w).permute(0, 2, 1).to(pos.dtype)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.patch_embedding(pixel_values.to(self.patch_embedding.weight.dtype))  # (B, D, h, w)
        b, _, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(b, -1, -1).to(x.dtype)
        pos = torch.cat([self.position_embedding[:, :1], self._pos(h, w)], dim=1).to(x.dtype)
        return torch.cat([cls, x], dim=1) + pos


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool, qk_norm: bool, norm_type: str, eps: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"internvit: hidden_size {dim} is not divisible by num_attention_heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.qk_normalization = qk_norm
        if qk_norm:
            self.q_norm = _norm(norm_type, dim, eps)
            self.k_norm = _norm(norm_type, dim, eps)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, d).unbind(2)
        if self.qk_normalization:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.reshape(b, n, self.heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        out = attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out)


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int, act: str):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = _act(act)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Layer(nn.Module):
    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        dim, eps, norm = cfg["hidden_size"], cfg["layer_norm_eps"], cfg["norm_type"]
        self.attn = Attention(dim, cfg["num_attention_heads"], cfg["qkv_bias"], cfg["qk_normalization"], norm, eps)
        self.mlp = MLP(dim, cfg["intermediate_size"], cfg["hidden_act"])
        self.norm1 = _norm(norm, dim, eps)
        self.norm2 = _norm(norm, dim, eps)
        self.ls1 = nn.Parameter(cfg["initializer_factor"] * torch.ones(dim))
        self.ls2 = nn.Parameter(cfg["initializer_factor"] * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x)) * self.ls1
        return x + self.mlp(self.norm2(x)) * self.ls2


class Encoder(nn.Module):
    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg["num_hidden_layers"]))


class InternViT(nn.Module):
    """images (T, 3, S, S) -> patch tokens (T, (S/p)^2, hidden), class token dropped.

    ``select_layer`` picks the hidden state that leaves the tower (-1: the last layer; the
    layers after it are still built, so checkpoints load, but are not run). Declares the input
    it was trained on: ``mean`` / ``std`` (InternVL's ImageNet statistics, its
    ``build_transform``) and ``image_size``; preprocessing normalises with them.
    """

    #: InternVL's ``IMAGENET_MEAN`` / ``IMAGENET_STD``
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __init__(self, hidden_size: int = 1024, intermediate_size: int = 4096, num_attention_heads: int = 16,
                 num_hidden_layers: int = 24, image_size: int = 448, patch_size: int = 14, num_channels: int = 3,
                 qkv_bias: bool = True, qk_normalization: bool = False, norm_type: str = "layer_norm",
                 layer_norm_eps: float = 1e-6, hidden_act: str = "gelu", initializer_factor: float = 0.1,
                 initializer_range: float = 0.02, drop_path_rate: float = 0.0, select_layer: int = -1,
                 position_init: str = "normal"):
        super().__init__()
        if position_init not in ("normal", "sincos"):
            raise ValueError(f"internvit: position_init must be 'normal' or 'sincos', got {position_init!r}")
        if image_size % patch_size:
            raise ValueError(f"internvit: image_size {image_size} is not a multiple of patch_size {patch_size}")
        if not -num_hidden_layers - 1 <= select_layer <= num_hidden_layers:
            raise ValueError(f"internvit: select_layer {select_layer} is outside the {num_hidden_layers} layers")
        cfg = dict(hidden_size=hidden_size, intermediate_size=intermediate_size,
                   num_attention_heads=num_attention_heads, num_hidden_layers=num_hidden_layers,
                   qkv_bias=qkv_bias, qk_normalization=qk_normalization, norm_type=norm_type,
                   layer_norm_eps=layer_norm_eps, hidden_act=hidden_act, initializer_factor=initializer_factor)
        self.config = dict(cfg, image_size=image_size, patch_size=patch_size, num_channels=num_channels,
                           initializer_range=initializer_range, drop_path_rate=drop_path_rate)
        self.embeddings = Embeddings(hidden_size, image_size, patch_size, num_channels)
        self.encoder = Encoder(cfg)
        self.select_layer = select_layer
        self.out_dim = hidden_size
        self.image_size = image_size
        self.patch_size = patch_size
        self.grid = (image_size // patch_size, image_size // patch_size)
        self._init(initializer_range, position_init)

    @classmethod
    def tiny_args(cls) -> dict[str, Any]:
        from ..spec import tiny_args

        return tiny_args("encoder")

    def _init(self, std: float, position_init: str = "normal") -> None:
        """Weights for training from scratch (a checkpoint replaces them). ``position_init``
        "sincos" starts the patch position embeddings as fixed 2-D sine-cosine codes (as MAE
        does) instead of small noise, so that from the first step each token says where in the
        image it sits: a tiny model trained for minutes otherwise barely learns left from right."""
        nn.init.trunc_normal_(self.embeddings.position_embedding, std=std)
        if position_init == "sincos":
            with torch.no_grad():
                self.embeddings.position_embedding[0, 1:] = sincos_2d(self.grid, self.out_dim)
        nn.init.trunc_normal_(self.embeddings.class_embedding, std=std)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def vision_config(self) -> dict[str, Any]:
        """The ``vision_config`` block of a released ``config.json`` for this tower."""
        return dict(self.config, architectures=["InternVisionModel"], model_type="intern_vit_6b",
                    use_flash_attn=True, norm_type=self.config["norm_type"])

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(pixel_values)
        # hidden_states[select_layer] in HF terms, where index 0 is the embedding output
        n_layers = len(self.encoder.layers)
        n_run = n_layers + 1 + self.select_layer if self.select_layer < 0 else self.select_layer
        for layer in self.encoder.layers[:n_run]:
            x = layer(x)
        return x[:, 1:]

