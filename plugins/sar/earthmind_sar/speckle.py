"""Speckle filters for SAR intensity (linear power): Lee and refined Lee.

Both work on the multiplicative model I = R * n with E[n] = 1 and var[n] = 1 / L (L = the
equivalent number of looks; about 4.4 for Sentinel-1 IW GRD).

Lee (1980): over a w x w window, local mean m and variance v;
``W = clip(1 - Cu^2 / Ci^2, 0, 1)`` with ``Cu^2 = 1/L`` and ``Ci^2 = v / m^2``;
output ``m + W (I - m)``. Flat areas are averaged, strong texture is left alone.

Refined Lee (Lee 1981): a 7 x 7 window whose statistics come from one of eight
edge-aligned half windows (28 pixels). The 3 x 3 grid of 3 x 3 sub-means picks the direction
with the largest gradient (horizontal, vertical, two diagonals), and the side of the edge the
centre pixel resembles; then ``var_x = (v - m^2 / L) / (1 + 1 / L)``, ``b = var_x / v`` and
output ``m + b (I - m)``. Edges stay sharp because the statistics never straddle them.
"""
from __future__ import annotations

import numpy as np

FILTERS = ("lee", "refined_lee")


def _uniform(x: np.ndarray, size: int) -> np.ndarray:
    from scipy.ndimage import uniform_filter

    return uniform_filter(x, size=size, mode="reflect")


def lee(intensity: np.ndarray, size: int = 7, looks: float = 4.4) -> np.ndarray:
    """Lee filter of a (H, W) non-negative intensity image."""
    _check(intensity, size, looks)
    x = intensity.astype(np.float64)
    m = _uniform(x, size)
    v = np.maximum(_uniform(x * x, size) - m * m, 0.0)
    cu2 = 1.0 / looks
    with np.errstate(divide="ignore", invalid="ignore"):
        ci2 = np.where(m > 0, v / (m * m), 0.0)
        w = np.where(ci2 > 0, np.clip(1.0 - cu2 / ci2, 0.0, 1.0), 0.0)
    return m + w * (x - m)


def _half_windows() -> np.ndarray:
    """The eight 7 x 7 edge-aligned masks, each 28 pixels, centre line included."""
    i, j = np.mgrid[0:7, 0:7]
    masks = [
        j <= 3, j >= 3,            # 0 left, 1 right      (edge runs vertically)
        i <= 3, i >= 3,            # 2 top, 3 bottom      (edge runs horizontally)
        i <= j, i >= j,            # 4 top-right, 5 bottom-left
        i + j <= 6, i + j >= 6,    # 6 top-left, 7 bottom-right
    ]
    return np.stack(masks).astype(np.float64)


def refined_lee(intensity: np.ndarray, looks: float = 4.4) -> np.ndarray:
    """Refined Lee filter (7 x 7, eight edge-aligned windows) of a (H, W) intensity image."""
    from scipy.ndimage import correlate, shift

    _check(intensity, 7, looks)
    x = intensity.astype(np.float64)
    sub = _uniform(x, 3)  # 3 x 3 sub-means; sub-window centres sit at offsets -2, 0, +2

    def g(di: int, dj: int) -> np.ndarray:
        return shift(sub, (-2 * di, -2 * dj), order=0, mode="nearest")

    c = sub
    left, right, top, bottom = g(0, -1), g(0, 1), g(-1, 0), g(1, 0)
    tr, bl, tl, br = g(-1, 1), g(1, -1), g(-1, -1), g(1, 1)
    grads = np.stack([np.abs(right - left), np.abs(bottom - top), np.abs(tr - bl), np.abs(br - tl)])
    direction = np.argmax(grads, axis=0)
    side = np.stack([
        np.where(np.abs(c - left) <= np.abs(c - right), 0, 1),
        np.where(np.abs(c - top) <= np.abs(c - bottom), 2, 3),
        np.where(np.abs(c - tr) <= np.abs(c - bl), 4, 5),
        np.where(np.abs(c - tl) <= np.abs(c - br), 6, 7),
    ])
    choice = np.take_along_axis(side, direction[None], axis=0)[0]
    masks = _half_windows()
    mean = np.empty_like(x)
    var = np.empty_like(x)
    for k, mask in enumerate(masks):
        kern = mask / mask.sum()
        sel = choice == k
        if not sel.any():
            continue
        mk = correlate(x, kern, mode="reflect")
        vk = np.maximum(correlate(x * x, kern, mode="reflect") - mk * mk, 0.0)
        mean[sel], var[sel] = mk[sel], vk[sel]
    var_x = np.maximum((var - mean * mean / looks) / (1.0 + 1.0 / looks), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(var > 0, var_x / var, 0.0)
    return mean + b * (x - mean)


def apply(name: str, intensity: np.ndarray, *, looks: float = 4.4, size: int = 7) -> np.ndarray:
    if name == "lee":
        return lee(intensity, size=size, looks=looks)
    if name == "refined_lee":
        return refined_lee(intensity, looks=looks)
    raise ValueError(f"unknown speckle filter {name!r}; choose one of {', '.join(FILTERS)}")


def _check(x: np.ndarray, size: int, looks: float) -> None:
    if x.ndim != 2:
        raise ValueError(f"speckle filters take a (H, W) image, got shape {x.shape}")
    if size < 3 or size % 2 == 0:
        raise ValueError(f"speckle window must be odd and >= 3, got {size}")
    if not looks > 0:
        raise ValueError(f"looks must be > 0, got {looks}")
