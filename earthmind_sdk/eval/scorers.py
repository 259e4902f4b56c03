"""Metrics as the registry holds them: objects that score prediction rows, so that evaluation
runs whatever each task declares (``Task.metrics``), built-in or from a plugin.

A metric (registered under ``register_metrics``; the registry builds it with no arguments)::

    class MyMetric:
        kinds = ("text",)          # task kinds it can score (None: any)
        def score(self, row, task): ...   # one prediction row -> an item, or None where the
                                          # row lacks what it needs (e.g. no reference mask);
                                          # may complete ``row`` in place (what was parsed)
        def reduce(self, items): ...      # one group's items -> {report section: value}
        def finish(self, report): ...     # optional: corpus-level values from the sections

A row ``{group, task, task_args, answer, reference[, reference_text][, iou, inter, union]
[, mask_box]}`` is what :func:`earthmind_sdk.eval.records.score_rows` reads; a section's value
is stored per group (``report[section][group]``), dict values of several metrics merged. The
arithmetic lives in :mod:`.metrics`.
"""
from __future__ import annotations

from typing import Any, Sequence

from .metrics import MaskIoU, accuracy, bleu4, box_iou, cider_d, m_avg, rouge_l, text_scores


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def squash(text: str) -> str:
    """What the released evaluation scripts compare: lower case, no spaces, no dots, no ``<|end|>``."""
    return text.replace("<|end|>", "").strip().lower().replace(" ", "").replace(".", "")


class Accuracy:
    """Exact match of the parsed answer and the parsed reference (an unparsed answer is wrong and
    counted in ``unparsed``); with the reference's own text, the released evaluators' string
    comparison too (``exact_match``)."""

    kinds = None

    def score(self, row: dict, task) -> Any:
        args = row.get("task_args") or {}
        got = task.parse(str(row["answer"]), **args).value
        expected = task.parse(str(row["reference"]), **args).value
        row.update(parsed=got, expected=expected, correct=got is not None and got == expected)
        if "reference_text" in row:
            row["exact_match"] = squash(str(row["answer"])) == squash(str(row["reference_text"]))
        return row["correct"], got is None, row.get("exact_match")

    def reduce(self, items: Sequence) -> dict[str, Any]:
        out = {"accuracy": _round(accuracy(c for c, _, _ in items)), "unparsed": sum(u for _, u, _ in items)}
        exact = [e for _, _, e in items if e is not None]
        if exact:
            out["exact_match"] = _round(accuracy(exact))
        return out


class MAvg:
    """Mean of the per-group accuracies (EarthMind-Bench's M-Avg), each group counting once."""

    kinds = None

    def score(self, row: dict, task) -> Any:
        return None  # corpus-level: see finish

    def reduce(self, items: Sequence) -> dict[str, Any]:
        return {}

    def finish(self, report: dict[str, Any]) -> None:
        if report.get("accuracy"):
            report["m_avg"] = _round(m_avg(report["accuracy"]))


class _Text:
    """Reference-overlap score of open answers, reported under ``open_ended``."""

    kinds = None
    key = ""

    def score(self, row: dict, task) -> Any:
        return str(row["answer"]), str(row["reference"])

    def reduce(self, items: Sequence) -> dict[str, Any]:
        hyps, refs = [h for h, _ in items], [[r] for _, r in items]
        return {"open_ended": {"n": len(items), self.key: _round(self.corpus(hyps, refs))}}

    def corpus(self, hyps: list[str], refs: list[list[str]]) -> float:
        raise NotImplementedError


class Bleu4(_Text):
    """Corpus BLEU-4 of open answers against their references."""

    key = "bleu4"

    def corpus(self, hyps, refs):
        return bleu4(hyps, refs)


class RougeL(_Text):
    """Mean ROUGE-L F of open answers (each row keeps its own as ``rouge_l``)."""

    key = "rouge_l"

    def score(self, row: dict, task) -> Any:
        row["rouge_l"] = rouge_l(str(row["answer"]), str(row["reference"]))
        return super().score(row, task)

    def corpus(self, hyps, refs):
        import numpy as np

        return float(np.mean([rouge_l(h, r) for h, r in zip(hyps, refs)])) if hyps else float("nan")


class Cider(_Text):
    """Corpus CIDEr-D of open answers against their references."""

    key = "cider"

    def corpus(self, hyps, refs):
        return cider_d(hyps, refs)


class TextScores(RougeL):
    """BLEU-4, ROUGE-L and CIDEr-D of open answers together (:func:`.metrics.text_scores`)."""

    def reduce(self, items: Sequence) -> dict[str, Any]:
        scores = text_scores([h for h, _ in items], [r for _, r in items])
        return {"open_ended": {k: _round(v) for k, v in scores.items()}}


class MaskIoUScore:
    """gIoU and cIoU of the predicted masks, for rows compared with a reference mask (a missing
    prediction counts as IoU 0); reported under ``segmentation``."""

    kinds = None

    def score(self, row: dict, task) -> Any:
        if "union" not in row:
            return None
        return float(row["iou"]), int(row["inter"]), int(row["union"])

    def reduce(self, items: Sequence) -> dict[str, Any]:
        acc = MaskIoU()
        for iou, inter, union in items:
            acc.ious.append(iou)
            acc.inter += inter
            acc.union += union
        return {"segmentation": {k: _round(v) for k, v in acc.result().items()}}


class AccAtIoU:
    """Box grounding Acc@0.5: the answer's first box (or, without one, the box around its
    ``[SEG]`` mask) against the reference box; reported under ``grounding``."""

    kinds = ("boxes",)

    def score(self, row: dict, task) -> Any:
        args = row.get("task_args") or {}
        ref = task.parse(str(row["reference"]), **args).value
        got = task.parse(str(row["answer"]), **args).value
        pred = got[0] if got else row.get("mask_box")
        row["iou"] = box_iou(pred, ref[0]) if pred is not None and ref else 0.0
        return row["iou"] >= 0.5

    def reduce(self, items: Sequence) -> dict[str, Any]:
        return {"grounding": {"n": len(items), "acc@0.5": _round(accuracy(items))}}
