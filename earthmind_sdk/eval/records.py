"""Evaluate a pipeline on records with known answers (generated scenes, JSONL data).

Answers are compared after both sides go through the task's parser, so "Yes." and "yes"
agree; segmentation is scored by gIoU (mean per-sample IoU) and cIoU (cumulative
intersection over cumulative union), with a missing mask counting as IoU 0.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np


def evaluate_records(pipe, records: Sequence, *, batch_size: int = 8, max_new_tokens: int = 16) -> dict[str, Any]:
    results = pipe([r.sample for r in records], batch_size=batch_size, max_new_tokens=max_new_tokens)
    correct: dict[str, list[bool]] = defaultdict(list)
    inter = union = 0
    ious: list[float] = []
    for rec, res in zip(records, results):
        task = pipe.builder.task(rec.sample)
        if rec.masks:
            target = rec.masks[0]
            pred = res.masks[0] if res.masks else np.zeros_like(target)
            if pred.shape != target.shape:
                raise ValueError(f"{rec.sample.id}: mask {pred.shape} vs target {target.shape}")
            i = int(np.logical_and(pred, target).sum())
            u = int(np.logical_or(pred, target).sum())
            inter, union = inter + i, union + u
            ious.append(i / u if u else 1.0)
            continue
        expected = task.parse(rec.answer, **rec.sample.task_args)
        key = rec.sample.prompt if rec.sample.task in (None, "vqa") else rec.sample.task
        correct[key].append(_value(res.parsed) is not None and _value(res.parsed) == _value(expected))
    report: dict[str, Any] = {"n": len(records)}
    report["accuracy"] = {k: round(float(np.mean(v)), 4) for k, v in sorted(correct.items())}
    if ious:
        report["segmentation"] = {"n": len(ious), "gIoU": round(float(np.mean(ious)), 4),
                                  "cIoU": round(inter / union if union else 1.0, 4)}
    return report


def _value(parsed: Any) -> Any:
    """The comparable value of a task's parse result (parsers may return a rich object)."""
    return getattr(parsed, "value", parsed)
