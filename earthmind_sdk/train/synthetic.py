"""Generated multi-sensor scenes for the embedded tiny EarthMind: SAR sees what clouds hide.

Each scene is a co-registered optical (RGB reflectance, [0, 1]) and SAR (linear backscatter
power with gamma speckle) pair on one grid, with exact object masks:

- water: dark in SAR (specular reflection away from the sensor), blue in optical;
- buildings: very bright in SAR (double bounce between wall and ground), light roofs in optical;
- tarmac (a runway or car park): as dark and smooth as calm water in SAR, grey in optical, so
  only optical tells it from water;
- land cover background (forest, farmland, urban) with its own texture in both sensors.

Clouds exist only in optical: thin cloud veils the ground (still visible), thick cloud is
opaque, and thick cloud casts a shadow that darkens the optical ground beside it. SAR is
unaffected by both. Each scene has one of three skies: clear (at most a thin veil), broken
(thick clouds over part of the scene, never over more than a quarter of any object, so the
optical image still shows every object) and overcast (thick cloud over the whole scene: only SAR sees
the ground).

Questions span EarthMind-Bench's closed subtasks (existence, counting, classification, spatial
relation) plus referring segmentation. The answers of every closed subtask are balanced by
construction (each value drawn equally often over a set of scenes). A question is ``hidden``
when what it asks about lies at least 90 % under thick cloud, computed from the masks: the
object's mask, or the whole scene when the answer is about absence or the whole scene.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LAND_COVER = ("forest", "farmland", "urban")
NUMBER_WORDS = ("zero", "one", "two", "three")
SKIES = ("clear", "broken", "broken", "overcast")  # drawn equally often: half the scenes broken
HIDDEN_COVER = 0.9  # share of a question's mask under thick cloud that makes it "hidden"
BROKEN_MAX_COVER = 0.25  # most of an object a broken sky's thick cloud may hide: optical still sees it
# Building sides as a share of the scene (14-17 px at 112 px). Four tokens a side (28 px each)
# cannot tell buildings apart; the count is read from the bright area, which this narrow range
# keeps unambiguous (three of the smallest cover more than two of the largest).
BUILDING_SIDE = (0.125, 0.152)
CLOSED_SUBTASKS = ("existence", "counting", "classification", "spatial_relation")

QUESTIONS = {
    "existence": "Is there a water body in this scene?",
    "counting": "How many buildings are there?",
    "classification": "Classify the scene.",
    "spatial_relation": "Is the water body to the left or to the right of the buildings?",
}
# the spatial question is asked both ways round: twice the examples of the rarest subtask, and
# an answer that depends on which object the question names, not on a memorised side
SPATIAL_REVERSED = "Are the buildings to the left or to the right of the water body?"

# linear backscatter (sigma0) and optical RGB of each surface; roofs are tiled (terracotta): a
# white roof would look like a cloud, and optical alone could not count buildings in a broken sky
_SAR = {"forest": 0.12, "farmland": 0.05, "urban": 0.25, "water": 0.004, "tarmac": 0.005, "building": 2.0}
_RGB = {"forest": (0.08, 0.22, 0.07), "farmland": (0.36, 0.42, 0.17), "urban": (0.45, 0.43, 0.42),
        "water": (0.04, 0.11, 0.30), "tarmac": (0.22, 0.22, 0.23), "building": (0.70, 0.40, 0.28)}
_CLOUD_RGB = np.array([0.88, 0.89, 0.91], np.float32)[:, None, None]


@dataclass
class Scene:
    optical: np.ndarray          # (3, H, W) float32 in [0, 1], clouds and shadows included
    sar: np.ndarray              # (1, H, W) float32 linear power
    water: np.ndarray            # (H, W) bool
    buildings: np.ndarray        # (H, W) bool
    n_buildings: int
    land_cover: str
    sky: str = "clear"
    thick_cloud: np.ndarray | None = None   # (H, W) bool
    thin_cloud: np.ndarray | None = None    # (H, W) bool
    shadow: np.ndarray | None = None        # (H, W) bool, cloud shadow on the optical ground
    tarmac: np.ndarray | None = None        # (H, W) bool
    qa: list[dict] = field(default_factory=list)  # {question, answer, task, task_args, subtask, hidden[, mask][, focus]}


def cloud_cover(mask: np.ndarray, thick: np.ndarray) -> float:
    """Share of ``mask`` under thick cloud (0 for an empty mask)."""
    n = int(mask.sum())
    return float((mask & thick).sum()) / n if n else 0.0


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Bilinear upsampling of a (cells + 1)^2 random grid: smooth blobs about size/cells wide."""
    coarse = rng.random((cells + 1, cells + 1))
    at = np.linspace(0, cells, size)
    grid = np.arange(cells + 1)
    rows = np.stack([np.interp(at, grid, r) for r in coarse])          # (cells+1, size)
    return np.stack([np.interp(at, grid, c) for c in rows.T]).T          # (size, size)


def _clouds(rng, size: int, sky: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thick and thin cloud masks and the thin veil's opacity for one sky."""
    noise = _smooth_noise(rng, size, 4)
    if sky == "overcast":
        return np.ones((size, size), bool), np.zeros((size, size), bool), np.zeros((size, size), np.float32)
    if sky == "clear":
        thick = np.zeros((size, size), bool)
        thin = noise > rng.uniform(0.6, 1.0)  # sometimes a thin veil, sometimes nothing
    else:
        cut = np.quantile(noise, 1.0 - rng.uniform(0.2, 0.45))
        thick = noise > cut
        thin = (noise > cut - 0.15) & ~thick
    alpha = (rng.uniform(0.3, 0.55) * (0.6 + 0.4 * _smooth_noise(rng, size, 6))).astype(np.float32)
    return thick, thin, np.where(thin, alpha, 0.0).astype(np.float32)


def _dilate(mask: np.ndarray, steps: int = 2) -> np.ndarray:
    """``mask`` grown by ``steps`` pixels (4-neighbourhood)."""
    out = mask.copy()
    for _ in range(steps):
        g = out.copy()
        g[1:] |= out[:-1]
        g[:-1] |= out[1:]
        g[:, 1:] |= out[:, :-1]
        g[:, :-1] |= out[:, 1:]
        out = g
    return out


def _place(rng, size, draw, occupied, thick, tries=60):
    """A mask from ``draw()`` that keeps 2 pixels away from ``occupied`` and lies at most
    ``BROKEN_MAX_COVER`` under thick cloud; None when no draw fits."""
    for _ in range(tries):
        m = draw()
        if (_dilate(m) & occupied).any() or cloud_cover(m, thick) > BROKEN_MAX_COVER:
            continue
        return m
    return None


def make_scene(rng: np.random.Generator, size: int = 112, *, water: bool | None = None,
               n_buildings: int | None = None, land_cover: str | None = None, sky: str | None = None,
               water_side: int | None = None, looks: int = 4) -> Scene:
    """One scene; attributes left as None are drawn at random."""
    water = bool(rng.random() < 0.5) if water is None else water
    n_buildings = int(rng.integers(0, 4)) if n_buildings is None else n_buildings
    cover = land_cover or LAND_COVER[rng.integers(len(LAND_COVER))]
    sky = sky or SKIES[rng.integers(len(SKIES))]
    yy, xx = np.mgrid[0:size, 0:size]
    thick, thin, veil = _clouds(rng, size, sky)
    # overcast hides everything anyway; placement only keeps objects mostly visible elsewhere
    avoid = thick if sky != "overcast" else np.zeros_like(thick)

    # layout: when there are both water and buildings, they sit in opposite halves
    water_side = int(rng.integers(2)) if water_side is None else water_side  # 0 = left, 1 = right
    both = water and n_buildings > 0
    half = size // 2
    occupied = np.zeros((size, size), bool)
    water_mask = np.zeros((size, size), bool)
    if water:
        def draw_water():
            ry, rx = rng.integers(size // 9, size // 5, 2)
            lo, hi = rx + 2, size - rx - 2
            if both:
                lo, hi = (lo, half - rx - 2) if water_side == 0 else (half + rx + 2, hi)
            cy, cx = rng.integers(ry + 2, size - ry - 2), rng.integers(lo, hi + 1)
            return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        m = _place(rng, size, draw_water, occupied, avoid)
        if m is None:
            return make_scene(rng, size, water=water, n_buildings=n_buildings, land_cover=cover, sky=sky,
                              water_side=water_side, looks=looks)
        water_mask = m
        occupied |= m

    buildings = np.zeros((size, size), bool)
    for _ in range(n_buildings):
        def draw_building():
            h, w = rng.integers(max(2, round(size * BUILDING_SIDE[0])), max(3, round(size * BUILDING_SIDE[1])) + 1, 2)
            lo, hi = (1, size - w - 1)
            if both:
                lo, hi = (half + 2, size - w - 1) if water_side == 0 else (1, half - w - 2)
            y0, x0 = rng.integers(1, size - h - 1), rng.integers(lo, hi)
            m = np.zeros((size, size), bool)
            m[y0:y0 + h, x0:x0 + w] = True
            return m
        m = _place(rng, size, draw_building, occupied, avoid)
        if m is None:  # crowded: draw the whole scene again rather than change its answer
            return make_scene(rng, size, water=water, n_buildings=n_buildings, land_cover=cover, sky=sky,
                              water_side=water_side, looks=looks)
        buildings |= m
        occupied |= m

    tarmac = np.zeros((size, size), bool)
    if sky != "overcast" and rng.random() < 0.5:
        def draw_tarmac():
            long, short = rng.integers(size // 3, size // 2), rng.integers(size // 14, size // 9)
            h, w = (short, long) if rng.random() < 0.5 else (long, short)
            y0, x0 = rng.integers(1, size - h - 1), rng.integers(1, size - w - 1)
            m = np.zeros((size, size), bool)
            m[y0:y0 + h, x0:x0 + w] = True
            return m
        m = _place(rng, size, draw_tarmac, occupied, avoid)
        if m is not None:
            tarmac = m

    # ground truth in both sensors
    optical = np.empty((3, size, size), np.float32)
    texture = _smooth_noise(rng, size, 8 if cover != "farmland" else 3)
    for c in range(3):
        optical[c] = _RGB[cover][c] * (0.8 + 0.4 * texture) + rng.normal(0, 0.015, (size, size))
    power = (_SAR[cover] * (0.7 + 0.6 * texture)).astype(np.float32)
    for name, m in (("water", water_mask), ("tarmac", tarmac), ("building", buildings)):
        optical[:, m] = np.array(_RGB[name], np.float32)[:, None]
        power[m] = _SAR[name]

    # optical only: cloud shadow (thick cloud shifted along the sun direction), veil, opaque cloud
    dy, dx = size // 12, size // 10
    shadow = np.zeros((size, size), bool)
    shadow[dy:, dx:] = thick[:-dy, :-dx]
    shadow &= ~thick
    optical[:, shadow] *= 0.45
    optical = optical * (1 - veil[None]) + _CLOUD_RGB * veil[None]
    puff = _CLOUD_RGB * (0.93 + 0.07 * _smooth_noise(rng, size, 10)[None])
    optical = np.where(thick[None], puff, optical)
    optical = np.clip(optical, 0, 1).astype(np.float32)
    speckle = rng.gamma(looks, 1.0 / looks, (size, size)).astype(np.float32)
    sar = (power * speckle)[None]

    scene = Scene(optical, sar, water_mask, buildings, n_buildings, cover, sky, thick, thin & ~thick, shadow, tarmac)
    scene.qa = _questions(scene, water_side)
    return scene


def _questions(s: Scene, water_side: int) -> list[dict]:
    whole = np.ones_like(s.water)

    def closed(subtask, answer, about, task="vqa", task_args=None, question=None, focus=None):
        return {"question": question or QUESTIONS[subtask], "answer": answer, "task": task, "task_args": task_args or {},
                "subtask": subtask, "hidden": cloud_cover(about, s.thick_cloud) >= HIDDEN_COVER,
                **({"focus": focus} if focus is not None else {})}

    has_water = bool(s.water.any())
    land = ~(s.water | s.buildings | (s.tarmac if s.tarmac is not None else False))  # where the cover class shows
    qa = [
        closed("existence", "Yes" if has_water else "No", s.water if has_water else whole,
               focus=s.water if has_water else None),
        closed("counting", NUMBER_WORDS[s.n_buildings].capitalize(), s.buildings if s.n_buildings else whole,
               focus=s.buildings if s.n_buildings else None),
        closed("classification", s.land_cover, whole, "scene_classification", {"labels": list(LAND_COVER)},
               focus=land),
    ]
    if has_water and s.n_buildings:
        sides = ("Left", "Right") if water_side == 0 else ("Right", "Left")
        qa.append(closed("spatial_relation", sides[0], s.water | s.buildings, focus=s.water))
        qa.append(closed("spatial_relation", sides[1], s.water | s.buildings, question=SPATIAL_REVERSED,
                         focus=s.buildings))
    for what, m in (("water body", s.water), ("buildings", s.buildings)):
        if m.any():
            qa.append({"question": f"Please segment the {what}.", "answer": "Sure, [SEG].",
                       "task": "referring_segmentation", "task_args": {}, "subtask": "referring_segmentation",
                       "hidden": cloud_cover(m, s.thick_cloud) >= HIDDEN_COVER, "mask": m})
    return qa


def _balanced(rng: np.random.Generator, n: int, values) -> list:
    """``n`` values, each of ``values`` equally often (up to one), in random order."""
    out = [values[i % len(values)] for i in range(n)]
    rng.shuffle(out)
    return out


def make_scenes(n: int, *, seed: int = 0, size: int = 112) -> list[Scene]:
    """``n`` scenes whose closed answers are balanced: each (water?, 0-3 buildings) pair equally
    often, so water is in half of them, each count in a quarter, and 3/8 of them have both (the
    spatial question); each land cover and sky equally often, independently. Left and right in
    the spatial question alternate within the scenes that have both water and buildings."""
    rng = np.random.default_rng(seed)
    layout = _balanced(rng, n, [(w, c) for w in (False, True) for c in range(len(NUMBER_WORDS))])
    cover = _balanced(rng, n, LAND_COVER)
    sky = _balanced(rng, n, SKIES)
    side = iter(_balanced(rng, sum(w and c > 0 for w, c in layout), (0, 1)))
    return [make_scene(rng, size, water=w, n_buildings=c, land_cover=cover[i], sky=sky[i],
                       water_side=next(side) if w and c else None)
            for i, (w, c) in enumerate(layout)]
