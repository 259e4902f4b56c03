"""Evaluate a pipeline on records with known answers (benchmarks, generated scenes, JSONL).

Each answer is scored by the metrics its task declares (``Task.metrics``, through the
``metrics`` registry: a plugin task or metric takes part like a built-in one; see
:mod:`.scorers`). The built-in ones: closed answers (``accuracy``, ``m_avg``) are compared
after both sides go through the task's parser ("Yes." = "yes"); an unparsed answer counts as
wrong and is counted in ``unparsed``. Where the record keeps the reference's own text
(``meta["reference_text"]``), ``exact_match`` also reports the released evaluators' string
comparison (:func:`squash` of both sides). Open answers (captioning-type tasks) get BLEU-4,
ROUGE-L and CIDEr-D; masks get gIoU / cIoU with a missing mask counting as IoU 0; box answers
(``visual_grounding``) get Acc@0.5, a ``[SEG]`` mask standing for its bounding box. Results
group by the record's ``meta["task_type"]`` when it has one. ``ablate`` removes one sensor's
image (see :meth:`~earthmind_sdk.model.batching.BatchBuilder.ablate`; naming all of a model's
sensors blanks them, a blind baseline), to measure what the model gets from it. Scoring works on prediction rows
(:func:`score_rows`), so a saved ``predictions.jsonl`` can be re-scored without the model:
``python -m earthmind_sdk.eval.records predictions.jsonl``.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable, Sequence

from ..errors import EarthMindError
from ..jobs.jsonl import json_lines
from .metrics import MaskIoU, mask_to_box
from .scorers import squash  # noqa: F401 - part of this module's API


def evaluate_records(pipe, records: Sequence, *, batch_size: int = 8, max_new_tokens: int = 32,
                     ablate: str | Sequence[str] | None = None, predictions: list | None = None,
                     on_rows: Callable[[list[dict]], None] | None = None, skip_ids: Iterable[str] = (),
                     done_rows: Sequence[dict] = (), progress: Any = None, desc: str = "eval") -> dict[str, Any]:
    """Run ``pipe`` on the records' samples and score the answers (see the module docstring);
    ``predictions`` receives one row per record, the input of :func:`score_rows`. ``ablate``
    names one sensor to remove, or several (all of a model's sensors are blanked: a blind baseline).

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
    """Prediction rows for ``(index, record)`` pairs (the index names a sample in ablation errors)."""
    samples = [r.sample for _, r in chunk]
    if ablate:
        sensors = [ablate] if isinstance(ablate, str) else list(ablate)
        try:
            samples = [pipe.builder.ablate(s, i, sensors) for (i, _), s in zip(chunk, samples)]
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
    ``predictions.jsonl``: answers can be re-scored without the model. Each row is scored by
    the metrics its task declares (``Task.metrics``, looked up in the ``metrics`` registry:
    built-in or from a plugin, see :mod:`.scorers`), per group; rows that none of them could
    score (e.g. a segmentation question without a reference mask) are counted in ``unscored``.
    Rows are completed in place with what was parsed (``parsed``, ``expected``, ``correct``, ...)."""
    from ..tasks import get_task

    tasks: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    items: dict[str, dict[str, list]] = {}
    unscored: dict[str, int] = defaultdict(int)
    for n, row in enumerate(rows):
        missing = [k for k in ("answer", "reference") if k not in row]
        if missing:
            raise ValueError(f"prediction row {n} ({row.get('id')}): missing {missing}")
        name = row.get("task") or "vqa"
        task = tasks.setdefault(name, get_task(name))
        group = row.get("group") or name
        scored = False
        for metric_name in task.metrics:
            metric = _metric(metric_name, task, metrics)
            item = metric.score(row, task)
            if item is not None:
                items.setdefault(metric_name, {}).setdefault(group, []).append(item)
                scored = True
        if not scored:
            unscored[group] += 1
    report: dict[str, Any] = {"n": len(rows)}
    for metric_name, groups in items.items():
        for group, got in groups.items():
            for section, value in metrics[metric_name].reduce(got).items():
                slot = report.setdefault(section, {})
                if isinstance(value, dict) and isinstance(slot.get(group), dict):
                    slot[group].update(value)
                else:
                    slot[group] = value
    for section in list(report):
        if isinstance(report[section], dict):
            report[section] = dict(sorted(report[section].items()))
    for metric in metrics.values():
        if hasattr(metric, "finish"):
            metric.finish(report)
    if unscored:
        report["unscored"] = dict(sorted(unscored.items()))
    return report


def _metric(name: str, task, built: dict[str, Any]):
    """The scorer a task names (built once per scoring run); one that cannot score rows, or not
    this task's kind of answer, is a plugin error naming both."""
    from ..errors import PluginError
    from ..plugins import registry

    if name not in built:
        metric = registry("metrics").build(name)
        if not (callable(getattr(metric, "score", None)) and callable(getattr(metric, "reduce", None))):
            raise PluginError(f"metric {name!r} (declared by task {task.name!r}) cannot score prediction rows: "
                              f"it needs score(row, task) and reduce(items) (see earthmind_sdk.eval.scorers)")
        built[name] = metric
    metric = built[name]
    kinds = getattr(metric, "kinds", None)
    if kinds is not None and task.kind not in kinds:
        raise PluginError(f"task {task.name!r} declares metric {name!r}, which scores answers of kind "
                          f"{', '.join(kinds)}, not {task.kind!r}")
    return metric


def score_file(path: str) -> dict[str, Any]:
    """Re-score a ``predictions.jsonl`` written by an eval job (e.g. after changing a parser)."""
    return score_rows([row for _, row in json_lines(path)])


if __name__ == "__main__":  # python -m earthmind_sdk.eval.records runs/x/predictions.jsonl
    import json
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m earthmind_sdk.eval.records PREDICTIONS.jsonl")
    print(json.dumps(score_file(sys.argv[1]), indent=2))
