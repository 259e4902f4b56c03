"""InternVL dynamic tiling and the image normalisations of the vision tower and of SAM2.

Two pixel paths (spec ``image.resample``):

* ``"pil"`` (default): the authors' path, bit for bit. The frame is put on the 8-bit grid
  (``round(255 x)``: exact for 8-bit sources, whose frames are k/255; for 16-bit and float
  sources it is what saving the sensor's [0, 1] frame as an 8-bit PNG does, which is what the
  models were trained on), then resized by PIL (bicubic) as an RGB image, converted to a tensor
  (``/ 255`` in float32) and normalised. The SAM2 input is the PIL bicubic 1024 resize of the
  same 8-bit image.
* ``"torch"``: float frames resized by torch's antialiased bicubic, no 8-bit rounding (keeps
  16-bit and float precision; differs from the release by up to ~0.26 in normalised units).

Tiling rule (InternVL ``dynamic_preprocess``): among the grids (cols, rows) with
min_tiles <= cols*rows <= max_tiles, ordered by tile count, take the one whose aspect ratio
cols/rows is closest to the image's width/height; on a tie, a later (larger) grid wins only when
the image area exceeds half the grid's pixel area. Resize to (cols*S, rows*S), cut row-major
into S x S tiles, and append an S x S thumbnail of the whole image when there is more than one tile.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The authors' SAM2 preprocessing builds mean/std as bfloat16 tensors; these are those values.
SAM_MEAN = tuple(float(torch.tensor(v, dtype=torch.bfloat16)) for v in IMAGENET_MEAN)
SAM_STD = tuple(float(torch.tensor(v, dtype=torch.bfloat16)) for v in IMAGENET_STD)


def candidate_grids(min_tiles: int, max_tiles: int) -> list[tuple[int, int]]:
    """(cols, rows) grids with min_tiles <= cols*rows <= max_tiles, by tile count, then cols, rows."""
    if not 1 <= min_tiles <= max_tiles:
        raise ValueError(f"tiling needs 1 <= min_tiles <= max_tiles, got {min_tiles}, {max_tiles}")
    grids = {(c, r) for c in range(1, max_tiles + 1) for r in range(1, max_tiles + 1)
             if min_tiles <= c * r <= max_tiles}
    return sorted(grids, key=lambda g: (g[0] * g[1], g[0], g[1]))


def closest_grid(width: int, height: int, tile: int, min_tiles: int = 1, max_tiles: int = 12) -> tuple[int, int]:
    """The (cols, rows) grid InternVL picks for a width x height image."""
    if width <= 0 or height <= 0:
        raise ValueError(f"tiling: image size must be positive, got {width}x{height}")
    aspect = width / height
    area = width * height
    best, best_diff = (1, 1), float("inf")
    for cols, rows in candidate_grids(min_tiles, max_tiles):
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and area > 0.5 * tile * tile * cols * rows:
            best = (cols, rows)
    return best


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic, antialiased (as PIL's resize), clamped back to [0, 1]; (C, H, W) -> (C, *size)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    out = F.interpolate(image[None].float(), size=size, mode="bicubic", align_corners=False, antialias=True)[0]
    return out.clamp_(0.0, 1.0)


def tile_image(image: torch.Tensor, tile: int, min_tiles: int = 1, max_tiles: int = 12,
               use_thumbnail: bool = True) -> torch.Tensor:
    """(3, H, W) in [0, 1] -> (T, 3, tile, tile) tiles in [0, 1] (not normalised)."""
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"tiling expects one (3, H, W) image, got shape {tuple(image.shape)}")
    h, w = int(image.shape[1]), int(image.shape[2])
    cols, rows = closest_grid(w, h, tile, min_tiles, max_tiles)
    big = resize(image, (rows * tile, cols * tile))
    tiles = big.reshape(3, rows, tile, cols, tile).permute(1, 3, 0, 2, 4).reshape(rows * cols, 3, tile, tile)
    if use_thumbnail and rows * cols > 1:
        tiles = torch.cat([tiles, resize(image, (tile, tile))[None]])
    return tiles


def to_uint8(frame: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W, 3) uint8, round(255 x) in float64 (halves to even): exact for
    frames made from 8-bit data."""
    return np.ascontiguousarray((frame.detach().double().clamp(0, 1) * 255).round().to(torch.uint8)
                                .permute(1, 2, 0).cpu().numpy())


def _pil_to_tensor(image) -> torch.Tensor:
    """A PIL RGB image -> (3, H, W) float32 in [0, 1], as torchvision's ToTensor (uint8 / 255)."""
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous().float().div(255)


def resize_pil(rgb8: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, *size) float32 in [0, 1] through PIL's bicubic resize."""
    from PIL import Image

    image = Image.fromarray(rgb8, mode="RGB")
    h, w = int(size[0]), int(size[1])
    if image.size != (w, h):
        image = image.resize((w, h), Image.Resampling.BICUBIC)
    return _pil_to_tensor(image)


def tile_image_pil(rgb8: np.ndarray, tile: int, min_tiles: int = 1, max_tiles: int = 12,
                   use_thumbnail: bool = True) -> torch.Tensor:
    """(H, W, 3) uint8 -> (T, 3, tile, tile) in [0, 1]: PIL bicubic resize to the grid, row-major
    crops, PIL thumbnail when there is more than one tile (the authors' ``dynamic_preprocess``)."""
    from PIL import Image

    if rgb8.ndim != 3 or rgb8.shape[2] != 3 or rgb8.dtype != np.uint8:
        raise ValueError(f"tiling expects one (H, W, 3) uint8 image, got {rgb8.dtype} {rgb8.shape}")
    image = Image.fromarray(rgb8, mode="RGB")
    w, h = image.size
    cols, rows = closest_grid(w, h, tile, min_tiles, max_tiles)
    big = image if image.size == (cols * tile, rows * tile) else \
        image.resize((cols * tile, rows * tile), Image.Resampling.BICUBIC)
    crops = [big.crop((c * tile, r * tile, (c + 1) * tile, (r + 1) * tile)) for r in range(rows) for c in range(cols)]
    if use_thumbnail and rows * cols > 1:
        crops.append(image if image.size == (tile, tile) else image.resize((tile, tile), Image.Resampling.BICUBIC))
    return torch.stack([_pil_to_tensor(c) for c in crops])


def normalize(images: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    m = torch.tensor(mean, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    s = torch.tensor(std, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    return (images - m) / s


def check_frame(frame: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(frame, torch.Tensor):
        raise TypeError(f"{what}: expected a torch tensor (3, H, W) in [0, 1], got {type(frame).__name__}")
    if frame.dim() != 3 or frame.shape[0] != 3:
        raise ValueError(f"{what}: expected one frame (3, H, W) in [0, 1], got shape {tuple(frame.shape)}")
    if not frame.is_floating_point():
        raise ValueError(f"{what}: expected a float frame in [0, 1], got dtype {frame.dtype}")
    return frame.float()
