"""Evaluate a pipeline on records with known answers (benchmarks, generated scenes, JSONL).

Closed answers are compared after both sides go through the task's parser ("Yes." = "yes");
an unparsed answer counts as wrong and is counted in ``unparsed``. Where the record keeps the
reference's own text (``meta["reference_text"]``), ``exact_match`` also reports the released
evaluators' string comparison (:func:`squash` of both sides). Open answers (captioning-type
tasks) get BLEU-4, ROUGE-L and CIDEr-D; masks get gIoU / cIoU with a missing mask counting as IoU 0; box answers
(``visual_grounding``) get Acc@0.5, a ``[SEG]`` mask standing for its bounding box. Results
group by the record's ``meta["task_type"]`` when it has one. ``ablate`` blanks one sensor's
image, to check that the model uses it at all. Scoring works on prediction rows
(:func:`score_rows`), so a saved ``predictions.jsonl`` can be re-scored without the model:
``python -m earthmind_sdk.eval.records predictions.jsonl``.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable, Sequence

from ..errors import EarthMindError
from ..jobs.jsonl import json_lines
from .metrics import MaskIoU, accuracy, box_iou, m_avg, mask_to_box, rouge_l, text_scores

OPEN_TASKS = {"captioning", "region_captioning", "grounded_conversation"}


def squash(text: str) -> str:
    """What the released evaluation scripts compare: lower case, no spaces, no dots, no ``<|end|>``."""
    return text.replace("<|end|>", "").strip().lower().replace(" ", "").replace(".", "")


def evaluate_records(pipe, records: Sequence, *, batch_size: int = 8, max_new_tokens: int = 32,
                     ablate: str | Sequence[str] | None = None, predictions: list | None = None,
                     on_rows: Callable[[list[dict]], None] | None = None, skip_ids: Iterable[str] = (),
                     done_rows: Sequence[dict] = (), progress: Any = None, desc: str = "eval") -> dict[str, Any]:
    """Run ``pipe`` on the records' samples and score the answers (see the module docstring);
    ``predictions`` receives one row per record, the input of :func:`score_rows`. ``ablate``
    names one sensor to blank, or several (all of a model's sensors give a blind baseline).

    Records go through in batches of ``batch_size`` cut from the whole list (records already
    done are then left out of theirs, as a sharded run does it): ``on_rows`` receives each batch's rows as
    soon as they exist (to stream them to disk); records whose id is in ``skip_ids`` are not run
    and ``done_rows`` (their earlier rows) are scored with the new ones (resume). ``progress``:
    see :mod:`earthmind_sdk.jobs.progress`."""
    from ..jobs.progress import Progress
    from ..jobs.shard import World, plan_batches

    keys = [str(r.sample.id) for r in records]
    batches = plan_batches(keys, batch_size, skip_ids, World())
    rows = [dict(r) for r in done_rows]
    with Progress(len(records), desc, progress=progress, unit="q",
                  initial=len(records) - sum(map(len, batches))) as bar:
        def got(new: list[dict]) -> None:
            if on_rows is not None:
                on_rows(new)
            rows.extend(new)
            bar.update(len(new))

        predict_batches(pipe, records, batches, batch_size=batch_size, max_new_tokens=max_new_tokens,
                        ablate=ablate, on_rows=got)
    report = score_rows(rows)
    if predictions is not None:
        predictions.extend(rows)
    if ablate:
        report["ablated_sensor"] = ablate
    return report


def predict_batches(pipe, records: Sequence, batches: Sequence[Sequence[int]], *, batch_size: int,
                    max_new_tokens: int, ablate: str | Sequence[str] | None, on_rows: Callable[[list[dict]], None]) -> None:
    """Answer the records of each batch (index lists into ``records``, see
    :func:`earthmind_sdk.jobs.shard.plan_batches`); ``on_rows`` receives each batch's rows,
    completed with what was parsed as the predictions file keeps them."""
    for batch in batches:
        new = _predict_rows(pipe, [(i, records[i]) for i in batch], batch_size=batch_size,
                            max_new_tokens=max_new_tokens, ablate=ablate)
        score_rows(new)  # completes each row with what was parsed, as the file keeps it
        on_rows(new)


def _predict_rows(pipe, chunk: Sequence, *, batch_size: int, max_new_tokens: int,
                  ablate: str | Sequence[str] | None) -> list[dict]:
    """Prediction rows for ``(index, record)`` pairs (the index keeps ablation blanking stable)."""
    samples = [r.sample for _, r in chunk]
    if ablate:
        sensors = [ablate] if isinstance(ablate, str) else list(ablate)
        try:
            samples = [pipe.builder.blank(s, i, sensors) for (i, _), s in zip(chunk, samples)]
        except EarthMindError as exc:
            raise ValueError(f"ablate: {exc}") from None
    results = pipe(samples, batch_size=batch_size, max_new_tokens=max_new_tokens)
    rows = []
    for (_, rec), res in zip(chunk, results):
        task_name = rec.sample.task or "vqa"
        group = rec.meta.get("task_type") or (rec.sample.prompt if task_name == "vqa" else task_name)
        row = {"id": rec.sample.id, "group": group, "task": task_name, "task_args": dict(rec.sample.task_args),
               "answer": res.answer, "reference": rec.answer}
        if "reference_text" in rec.meta:
            row["reference_text"] = rec.meta["reference_text"]
        if rec.masks:
            acc = MaskIoU()
            acc.add(res.masks[0] if res.masks else None, rec.masks[0])
            row.update(iou=acc.ious[0], inter=acc.inter, union=acc.union)
        elif res.masks:
            h, w = res.masks[0].shape
            b = mask_to_box(res.masks[0])
            row["mask_box"] = None if b is None else [b[0] / w, b[1] / h, b[2] / w, b[3] / h]
        rows.append(row)
    return rows


def score_rows(rows: Sequence[dict]) -> dict[str, Any]:
    """Scores of prediction rows ``{group, task, task_args, answer, reference[, reference_text]
    [, iou, inter, union][, mask_box]}``, as ``evaluate_records`` writes them to
    ``predictions.jsonl``: answers can be re-scored without the model. Rows are completed in
    place with what was parsed (``parsed``, ``expected``, ``correct``, ...)."""
    from ..tasks import get_task

    tasks: dict[str, Any] = {}
    correct: dict[str, list[bool]] = defaultdict(list)
    exact: dict[str, list[bool]] = defaultdict(list)
    unparsed: dict[str, int] = defaultdict(int)
    texts: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    masks: dict[str, MaskIoU] = defaultdict(MaskIoU)
    boxes: dict[str, list[bool]] = defaultdict(list)
    for n, row in enumerate(rows):
        missing = [k for k in ("answer", "reference") if k not in row]
        if missing:
            raise ValueError(f"prediction row {n} ({row.get('id')}): missing {missing}")
        name = row.get("task") or "vqa"
        task = tasks.setdefault(name, get_task(name))
        args = row.get("task_args") or {}
        group = row.get("group") or name
        answer, reference = str(row["answer"]), str(row["reference"])
        if "union" in row:
            acc = masks[group]
            acc.inter += int(row["inter"])
            acc.union += int(row["union"])
            acc.ious.append(float(row["iou"]))
        elif task.kind == "boxes":
            ref = task.parse(reference, **args).value
            got = task.parse(answer, **args).value
            pred = got[0] if got else row.get("mask_box")
            row["iou"] = box_iou(pred, ref[0]) if pred is not None and ref else 0.0
            boxes[group].append(row["iou"] >= 0.5)
        elif name in OPEN_TASKS:
            texts[group][0].append(answer)
            texts[group][1].append(reference)
            row["rouge_l"] = rouge_l(answer, reference)
        else:
            got = task.parse(answer, **args).value
            expected = task.parse(reference, **args).value
            row.update(parsed=got, expected=expected, correct=got is not None and got == expected)
            correct[group].append(row["correct"])
            unparsed[group] += got is None
            if "reference_text" in row:
                row["exact_match"] = squash(answer) == squash(str(row["reference_text"]))
                exact[group].append(row["exact_match"])
    report: dict[str, Any] = {"n": len(rows)}
    if correct:
        per_task = {k: round(accuracy(v), 4) for k, v in sorted(correct.items())}
        report["accuracy"] = per_task
        report["m_avg"] = round(m_avg(per_task), 4)
        report["unparsed"] = {k: unparsed[k] for k in sorted(correct)}
    if exact:
        report["exact_match"] = {k: round(accuracy(v), 4) for k, v in sorted(exact.items())}
    if texts:
        report["open_ended"] = {k: {m: round(v, 4) if isinstance(v, float) else v
                                    for m, v in text_scores(h, refs).items()}
                                for k, (h, refs) in sorted(texts.items())}
    if masks:
        report["segmentation"] = {k: {m: round(v, 4) if isinstance(v, float) else v for m, v in acc.result().items()}
                                  for k, acc in sorted(masks.items())}
    if boxes:
        report["grounding"] = {k: {"n": len(v), "acc@0.5": round(accuracy(v), 4)} for k, v in sorted(boxes.items())}
    return report


def score_file(path: str) -> dict[str, Any]:
    """Re-score a ``predictions.jsonl`` written by an eval job (e.g. after changing a parser)."""
    return score_rows([row for _, row in json_lines(path)])


if __name__ == "__main__":  # python -m earthmind_sdk.eval.records runs/x/predictions.jsonl
    import json
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m earthmind_sdk.eval.records PREDICTIONS.jsonl")
    print(json.dumps(score_file(sys.argv[1]), indent=2))
