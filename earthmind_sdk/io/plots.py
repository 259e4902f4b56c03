"""Figures for reports: loss curves of a training run.

One helper for every job that plots training (the train job's ``loss.png``, the quickstart's
figures), drawn with matplotlib's file-only backend (no display needed).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

#: loss parts drawn when present, in this order, beside the weighted total ("loss")
PARTS = ("loss", "lm", "mask", "dice", "sap", "align")


def plot_loss_curves(history: Sequence[dict[str, Any]], path: "str | os.PathLike[str]", *,
                     title: str = "training loss", smooth: int = 0) -> Path:
    """Draw each loss part of ``history`` (rows with ``step`` and loss values) against the step
    and write a PNG atomically. ``smooth`` > 1 adds a running mean over that many steps."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..jobs import atomic_path

    steps = [int(h["step"]) for h in history]
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    try:
        for name in PARTS:
            values = [h.get(name) for h in history]
            if not any(v is not None for v in values):
                continue
            xs = [s for s, v in zip(steps, values) if v is not None]
            ys = [float(v) for v in values if v is not None]
            line, = ax.plot(xs, ys, lw=1.0, alpha=0.45 if smooth > 1 else 1.0, label=name)
            if smooth > 1 and len(ys) >= smooth:
                run = [sum(ys[i - smooth + 1:i + 1]) / smooth for i in range(smooth - 1, len(ys))]
                ax.plot(xs[smooth - 1:], run, lw=1.6, color=line.get_color())
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        with atomic_path(Path(path)) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return Path(path)
