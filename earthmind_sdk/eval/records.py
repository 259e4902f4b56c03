"""Evaluate a pipeline on records with known answers (benchmarks, generated scenes, JSONL).

Closed answers are compared after both sides go through the task's parser ("Yes." = "yes");
open answers (captioning-type tasks) get BLEU-4 and ROUGE-L; masks get gIoU / cIoU with a
missing mask counting as IoU 0. Results group by the record's ``meta["task_type"]`` when it has
one. ``ablate`` blanks one sensor's image, to check that the model uses it at all.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np

from .metrics import MaskIoU, accuracy, bleu4, m_avg, rouge_l

OPEN_TASKS = {"captioning", "region_captioning", "grounded_conversation"}


def _blank(pipe, sample, index: int, sensor: str):
    """The sample with one sensor's prepared (aligned) image replaced by zeros."""
    import copy

    import torch

    from ..contracts import SensorImage

    if sensor not in sample.images:
        raise ValueError(f"ablate: sample {sample.id or index} has no {sensor!r} image (it has {sorted(sample.images)})")
    prepared = pipe.builder.prepare(sample, index)
    real = prepared[sensor]
    prepared[sensor] = SensorImage(torch.zeros_like(real.frames), sensor=sensor, raster=real.raster)
    blanked = copy.copy(sample)
    blanked.images = prepared
    return blanked


def evaluate_records(pipe, records: Sequence, *, batch_size: int = 8, max_new_tokens: int = 32,
                     ablate: str | None = None, predictions: list | None = None) -> dict[str, Any]:
    samples = [r.sample for r in records]
    if ablate:
        samples = [_blank(pipe, s, i, ablate) for i, s in enumerate(samples)]
    results = pipe(samples, batch_size=batch_size, max_new_tokens=max_new_tokens)
    correct: dict[str, list[bool]] = defaultdict(list)
    texts: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    masks: dict[str, MaskIoU] = defaultdict(MaskIoU)
    for rec, res in zip(records, results):
        task_name = rec.sample.task or "vqa"
        task = pipe.builder.task(rec.sample)
        group = rec.meta.get("task_type") or (rec.sample.prompt if task_name == "vqa" else task_name)
        row = {"id": rec.sample.id, "group": group, "answer": res.answer, "reference": rec.answer}
        if rec.masks:
            iou = masks[group].add(res.masks[0] if res.masks else None, rec.masks[0])
            row["iou"] = iou
        elif task_name in OPEN_TASKS:
            texts[group][0].append(res.answer)
            texts[group][1].append(rec.answer)
            row["rouge_l"] = rouge_l(res.answer, rec.answer)
        else:
            expected = task.parse(rec.answer, **rec.sample.task_args).value
            got = res.parsed.value if hasattr(res.parsed, "value") else res.parsed
            row.update(parsed=got, expected=expected, correct=got is not None and got == expected)
            correct[group].append(row["correct"])
        if predictions is not None:
            predictions.append(row)
    report: dict[str, Any] = {"n": len(records)}
    if correct:
        per_task = {k: round(accuracy(v), 4) for k, v in sorted(correct.items())}
        report["accuracy"] = per_task
        report["m_avg"] = round(m_avg(per_task), 4)
    if texts:
        report["open_ended"] = {k: {"n": len(h), "bleu4": round(bleu4(h, [[r] for r in refs]), 4),
                                    "rouge_l": round(float(np.mean([rouge_l(a, b) for a, b in zip(h, refs)])), 4)}
                                for k, (h, refs) in sorted(texts.items())}
    if masks:
        report["segmentation"] = {k: {m: round(v, 4) if isinstance(v, float) else v for m, v in acc.result().items()}
                                  for k, acc in sorted(masks.items())}
    if ablate:
        report["ablated_sensor"] = ablate
    return report
