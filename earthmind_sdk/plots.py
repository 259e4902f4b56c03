"""Figures written by jobs: a training log's loss curves, and one multi-sensor scene with the
model's answer (optical, SAR, target, predicted mask, per-token fusion weights).

matplotlib draws off-screen (Agg), so jobs write PNGs on machines without a display. Each
figure is written atomically (:func:`earthmind_sdk.io.atomic.atomic_path`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .jobs.jsonl import read_jsonl

LOSS_KEYS = ("lm", "mask", "dice", "sap")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    from .io.atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def read_log(path: str | Path) -> list[dict]:
    """The rows of a ``train_log.jsonl``."""
    return list(read_jsonl(path))


def loss_curve(rows: Iterable[dict] | str | Path, path: str | Path, title: str = "training loss") -> Path:
    """One line per loss part found in the rows (``step`` on x, log-scaled y)."""
    rows = read_log(rows) if isinstance(rows, (str, Path)) else list(rows)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key in LOSS_KEYS:
        pts = [(r["step"], r[key]) for r in rows if key in r and r[key] > 0]
        if pts:
            ax.plot(*zip(*pts), label=key)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def sar_db(power: np.ndarray, lo: float = -25.0, hi: float = 5.0) -> np.ndarray:
    """Linear SAR power as dB scaled to [0, 1] for display."""
    db = 10 * np.log10(np.maximum(power, 1e-6))
    return np.clip((db - lo) / (hi - lo), 0, 1)


def scene_figure(path: str | Path, *, optical: np.ndarray, sar: np.ndarray, target: np.ndarray | None,
                 predicted: np.ndarray | None, sar_share: np.ndarray | None, grid: Sequence[int],
                 title: str = "", panel_inches: float = 2.6) -> Path:
    """Five panels: optical (3, H, W) in [0, 1], SAR (H, W) linear power, target and predicted
    masks, and ``sar_share`` (N,) = the SAR weight of each of the ``grid`` tokens, drawn as a
    heat map over the SAR image. Panels are large enough to read small scenes."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 5, figsize=(5 * panel_inches, panel_inches + 0.6))
    h, w = sar.shape[-2:]
    empty = np.zeros((h, w), bool)
    panels = [("optical (with clouds)", np.transpose(np.clip(optical, 0, 1), (1, 2, 0)), None),
              ("SAR (dB)", sar_db(sar), "gray"),
              ("target mask", empty if target is None else target, "gray"),
              ("predicted mask", empty if predicted is None else predicted, "gray")]
    for ax, (name, img, cmap) in zip(axes, panels):
        ax.imshow(img, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(name, fontsize=9)
    ax = axes[4]
    ax.imshow(sar_db(sar), cmap="gray", vmin=0, vmax=1)
    if sar_share is not None:
        heat = np.asarray(sar_share, np.float32).reshape(tuple(grid))
        im = ax.imshow(heat, cmap="magma", vmin=0, vmax=1, alpha=0.6, extent=(-0.5, w - 0.5, h - 0.5, -0.5),
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title("fusion weight of SAR per token", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
