"""InternVL dynamic tiling: our grid choice equals InternVL's rule (written out literally here
with PIL, as the original does it) on odd sizes, and the tiles match PIL's bicubic closely."""
import numpy as np
import pytest
import torch
from PIL import Image

from earthmind_sdk.model import tiling


def internvl_grid(width, height, image_size, min_num=1, max_num=12):
    """The original rule: a set of ratios sorted by tile count, closest aspect ratio, area tie-break."""
    target = set((i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
                 if min_num <= i * j <= max_num)
    target = sorted(target, key=lambda x: x[0] * x[1])
    aspect = width / height
    best_diff, best = float("inf"), (1, 1)
    for ratio in target:
        diff = abs(aspect - ratio[0] / ratio[1])
        if diff < best_diff:
            best_diff, best = diff, ratio
        elif diff == best_diff and width * height > 0.5 * image_size * image_size * ratio[0] * ratio[1]:
            best = ratio
    return best


def internvl_tiles(img: Image.Image, image_size, max_num=12, use_thumbnail=True):
    cols, rows = internvl_grid(img.width, img.height, image_size, 1, max_num)
    big = img.resize((cols * image_size, rows * image_size), Image.BICUBIC)
    tiles = []
    for i in range(cols * rows):
        box = ((i % cols) * image_size, (i // cols) * image_size,
               (i % cols + 1) * image_size, (i // cols + 1) * image_size)
        tiles.append(big.crop(box))
    if use_thumbnail and len(tiles) > 1:
        tiles.append(img.resize((image_size, image_size), Image.BICUBIC))
    return np.stack([np.asarray(t) for t in tiles]).astype(np.float32) / 255.0


ODD_SIZES = [(1, 1), (3, 997), (997, 3), (449, 447), (448, 448), (895, 449), (1000, 333), (333, 1000),
             (1345, 449), (2000, 150), (37, 41), (1793, 1345), (4480, 448), (449, 5000), (672, 448)]


@pytest.mark.parametrize("w,h", ODD_SIZES)
@pytest.mark.parametrize("max_tiles", [1, 6, 12])
def test_grid_matches_internvl_rule(w, h, max_tiles):
    assert tiling.closest_grid(w, h, 448, 1, max_tiles) == internvl_grid(w, h, 448, 1, max_tiles)


def test_grid_on_many_random_sizes():
    rng = np.random.default_rng(0)
    for w, h in rng.integers(1, 3000, size=(300, 2)):
        assert tiling.closest_grid(int(w), int(h), 448) == internvl_grid(int(w), int(h), 448)


def _smooth_image(h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.5 + 0.4 * np.sin(x / 7.0), 0.5 + 0.4 * np.cos(y / 9.0), (x + y) / (x + y).max()], -1)
    return np.round(img * 255).astype(np.uint8)


@pytest.mark.parametrize("w,h", [(71, 29), (29, 71), (57, 57), (130, 41)])
def test_tiles_match_pil(w, h):
    arr = _smooth_image(h, w)
    ref = internvl_tiles(Image.fromarray(arr), 28)
    ours = tiling.tile_image(torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0, 28)
    assert ours.shape == (ref.shape[0], 3, 28, 28)
    diff = (ours.permute(0, 2, 3, 1).numpy() - ref)
    assert np.abs(diff).mean() < 0.01 and np.abs(diff).max() < 0.08


def test_thumbnail_only_when_several_tiles():
    one = tiling.tile_image(torch.rand(3, 28, 28), 28)
    assert one.shape[0] == 1
    many = tiling.tile_image(torch.rand(3, 28, 56), 28)
    assert many.shape[0] == 3  # 2x1 grid + thumbnail
    assert tiling.tile_image(torch.rand(3, 28, 56), 28, use_thumbnail=False).shape[0] == 2


def test_sam_stats_are_bf16_rounded():
    assert tiling.SAM_MEAN == pytest.approx((0.484375, 0.455078, 0.40625), abs=1e-6)
    assert tiling.SAM_STD == pytest.approx((0.228516, 0.223633, 0.224609), abs=1e-6)


def test_bad_frames_are_refused(tiny_model):
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        tiny_model.preprocess(torch.rand(4, 10, 10))
    with pytest.raises(ValueError, match="float"):
        tiny_model.preprocess(torch.zeros(3, 10, 10, dtype=torch.uint8))
