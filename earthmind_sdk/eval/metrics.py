"""Judge-free metrics: exact-match accuracy and its per-task mean (M-Avg), mask gIoU / cIoU,
box Acc@0.5, and reference-based text scores (BLEU-4, ROUGE-L) for open-ended answers, which
the original scored with a paid GPT-4 judge."""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable, Sequence

import numpy as np


def accuracy(correct: Iterable[bool]) -> float:
    """Share of True; NaN for no items (an empty task is not a perfect one)."""
    values = [bool(c) for c in correct]
    return float(np.mean(values)) if values else float("nan")


def m_avg(per_task: dict[str, float]) -> float:
    """Mean of per-task accuracies (EarthMind-Bench's M-Avg): each task counts once."""
    vals = [v for v in per_task.values() if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


class MaskIoU:
    """Accumulates gIoU (mean per-sample IoU) and cIoU (sum of intersections / sum of unions)."""

    def __init__(self):
        self.inter = 0
        self.union = 0
        self.ious: list[float] = []

    def add(self, pred: np.ndarray | None, target: np.ndarray) -> float:
        target = np.asarray(target, bool)
        pred = np.zeros_like(target) if pred is None else np.asarray(pred, bool)
        if pred.shape != target.shape:
            raise ValueError(f"predicted mask {pred.shape} and target {target.shape} differ in shape")
        i = int(np.logical_and(pred, target).sum())
        u = int(np.logical_or(pred, target).sum())
        self.inter += i
        self.union += u
        iou = i / u if u else 1.0  # both empty: a correct "nothing there"
        self.ious.append(iou)
        return iou

    def result(self) -> dict[str, float]:
        return {"n": len(self.ious), "gIoU": float(np.mean(self.ious)) if self.ious else float("nan"),
                "cIoU": self.inter / self.union if self.union else float("nan")}


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def acc_at_iou(preds: Sequence[Sequence[float] | None], refs: Sequence[Sequence[float]], thr: float = 0.5) -> float:
    """Share of boxes with IoU >= thr (VRSBench / RSVG grounding Acc@0.5); a missing box is a miss."""
    return accuracy(p is not None and box_iou(p, r) >= thr for p, r in zip(preds, refs))


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _ngrams(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def bleu4(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 (uniform weights, brevity penalty against the closest reference length)."""
    matches, totals = [0] * 4, [0] * 4
    hyp_len = ref_len = 0
    for hyp, refs in zip(hypotheses, references):
        h = _words(hyp)
        rs = [_words(r) for r in refs]
        hyp_len += len(h)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rs)[1] if rs else 0
        for n in range(1, 5):
            hc = _ngrams(h, n)
            maxref: Counter = Counter()
            for r in rs:
                maxref |= _ngrams(r, n)
            matches[n - 1] += sum(min(c, maxref[g]) for g, c in hc.items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    if min(totals) == 0 or min(matches) == 0:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(matches, totals)) / 4
    bp = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / max(hyp_len, 1))
    return bp * math.exp(log_p)


def rouge_l(hypothesis: str, reference: str, beta: float = 1.2) -> float:
    """ROUGE-L F-measure from the longest common subsequence of words."""
    h, r = _words(hypothesis), _words(reference)
    if not h or not r:
        return 0.0
    prev = [0] * (len(r) + 1)
    for x in h:
        cur = [0]
        for j, y in enumerate(r, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(h), lcs / len(r)
    return (1 + beta ** 2) * p * rec / (rec + beta ** 2 * p)
