"""Generated multi-sensor scenes for the embedded tiny EarthMind.

Each scene is a co-registered optical (RGB reflectance-like, [0, 1]) and SAR (linear
backscatter with gamma speckle) pair on one small grid, with known objects: a water body
(dark in SAR, blue in optical), buildings (bright in SAR, grey in optical) and vegetation
background. Questions about the scene have exact answers, and segmentation targets are exact
masks, so a model trained on them for a few minutes shows the whole pipeline working.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LAND_COVER = ("forest", "farmland", "urban")
NUMBER_WORDS = ("zero", "one", "two", "three", "four")


@dataclass
class Scene:
    optical: np.ndarray          # (3, H, W) float32 in [0, 1]
    sar: np.ndarray              # (1, H, W) float32 linear power
    water: np.ndarray            # (H, W) bool
    buildings: np.ndarray        # (H, W) bool
    n_buildings: int
    land_cover: str
    qa: list[dict] = field(default_factory=list)  # {question, answer, task, task_args, mask}


_BACKGROUND = {  # optical RGB and SAR mean backscatter (linear) per land cover
    "forest": ((0.08, 0.22, 0.07), 0.12),
    "farmland": ((0.35, 0.42, 0.18), 0.06),
    "urban": ((0.45, 0.43, 0.42), 0.25),
}


def make_scene(rng: np.random.Generator, size: int = 56, *, looks: int = 4) -> Scene:
    """One random scene of ``size`` x ``size`` pixels with its question-answer pairs."""
    cover = LAND_COVER[rng.integers(len(LAND_COVER))]
    rgb, sigma0 = _BACKGROUND[cover]
    yy, xx = np.mgrid[0:size, 0:size]
    optical = np.empty((3, size, size), np.float32)
    for c in range(3):
        optical[c] = rgb[c] + rng.normal(0, 0.02, (size, size))
    power = np.full((size, size), sigma0, np.float32)

    water = np.zeros((size, size), bool)
    if rng.random() < 0.5:
        cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
        r = rng.integers(size // 8, size // 4)
        water = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        optical[:, water] = np.array([0.05, 0.12, 0.30], np.float32)[:, None]
        power[water] = 0.005

    buildings = np.zeros((size, size), bool)
    n_buildings = int(rng.integers(0, 4))
    placed = 0
    for _ in range(20):
        if placed == n_buildings:
            break
        h, w = rng.integers(size // 10, size // 6, 2)
        y0, x0 = rng.integers(1, size - h - 1), rng.integers(1, size - w - 1)
        box = (slice(y0 - 1, y0 + h + 1), slice(x0 - 1, x0 + w + 1))
        if water[box].any() or buildings[box].any():
            continue
        buildings[y0:y0 + h, x0:x0 + w] = True
        placed += 1
    n_buildings = placed
    optical[:, buildings] = np.array([0.80, 0.78, 0.75], np.float32)[:, None]
    power[buildings] = 1.5
    optical = np.clip(optical, 0, 1)
    speckle = rng.gamma(looks, 1.0 / looks, (size, size)).astype(np.float32)
    sar = (power * speckle)[None]

    scene = Scene(optical, sar, water, buildings, n_buildings, cover)
    scene.qa = _questions(scene)
    return scene


def _questions(s: Scene) -> list[dict]:
    has_water = bool(s.water.any())
    qa = [
        {"question": "Is there a water body in this scene?", "answer": "Yes" if has_water else "No",
         "task": "vqa", "task_args": {}},
        {"question": "How many buildings are there?", "answer": NUMBER_WORDS[s.n_buildings].capitalize(),
         "task": "vqa", "task_args": {}},
        {"question": "Classify the scene.", "answer": s.land_cover,
         "task": "scene_classification", "task_args": {"labels": list(LAND_COVER)}},
    ]
    if has_water:
        qa.append({"question": "Please segment the water body.", "answer": "Sure, [SEG].",
                   "task": "referring_segmentation", "task_args": {}, "mask": s.water})
    if s.n_buildings:
        qa.append({"question": "Please segment the buildings.", "answer": "Sure, [SEG].",
                   "task": "referring_segmentation", "task_args": {}, "mask": s.buildings})
    return qa


def make_scenes(n: int, *, seed: int = 0, size: int = 56) -> list[Scene]:
    rng = np.random.default_rng(seed)
    return [make_scene(rng, size) for _ in range(n)]
