"""Judge-free metrics: exact-match accuracy and its per-task mean (M-Avg), mask gIoU / cIoU,
box Acc@0.5, and reference-based text scores (BLEU-4, ROUGE-L, CIDEr-D) for open-ended
answers, which the original scored with a paid GPT-4 judge.

Text scores follow the COCO caption evaluation definitions (corpus BLEU-4 with the closest
reference length; ROUGE-L F with beta 1.2; CIDEr-D with n = 1..4, sigma 6, clipped tf-idf, x10),
on lower-cased word tokens (``\\w+``) instead of the PTB tokenizer, so values are close to but
not identical with pycocoevalcap's. They are reference-overlap scores: use them to compare
models on the same references, not as a judgement of correctness."""
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
    if len(preds) != len(refs):
        raise ValueError(f"acc_at_iou: {len(preds)} predicted boxes but {len(refs)} references")
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


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(hypothesis: str, reference: str | Sequence[str], beta: float = 1.2) -> float:
    """ROUGE-L F-measure from the longest common subsequence of words; with several references,
    precision and recall are each the best over references (as the COCO evaluation does)."""
    refs = [reference] if isinstance(reference, str) else list(reference)
    h = _words(hypothesis)
    rs = [w for w in (_words(r) for r in refs) if w]
    if not h or not rs:
        return 0.0
    lcs = [_lcs(h, r) for r in rs]
    p = max(c / len(h) for c in lcs)
    rec = max(c / len(r) for c, r in zip(lcs, rs))
    if p == 0 or rec == 0:
        return 0.0
    return (1 + beta ** 2) * p * rec / (rec + beta ** 2 * p)


def cider_d(hypotheses: Sequence[str], references: Sequence[Sequence[str]], sigma: float = 6.0) -> float:
    """Corpus CIDEr-D: per sample, the mean over n = 1..4 of the clipped cosine between tf-idf
    n-gram vectors of the hypothesis and each reference, damped by exp(-(len diff)^2 / 2 sigma^2),
    averaged over references, x10; document frequencies come from the references of the corpus
    (so a single-sample corpus scores 0: every n-gram is in every document)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"cider_d: {len(hypotheses)} hypotheses but {len(references)} reference sets")
    if not hypotheses:
        return float("nan")
    refs_words = [[_words(r) for r in refs] for refs in references]
    df: Counter = Counter()
    for refs in refs_words:
        df.update({g for r in refs for n in range(1, 5) for g in _ngrams(r, n)})
    log_n = math.log(float(len(hypotheses)))

    def vectors(words: list[str]):
        vec, norms = [], []
        for n in range(1, 5):
            v = {g: c * (log_n - math.log(max(1.0, df[g]))) for g, c in _ngrams(words, n).items()}
            vec.append(v)
            norms.append(math.sqrt(sum(x * x for x in v.values())))
        return vec, norms, len(words)

    scores = []
    for hyp, refs in zip(hypotheses, refs_words):
        hv, hn, hl = vectors(_words(hyp))
        per_ref = []
        for r in refs:
            rv, rn, rl = vectors(r)
            total = 0.0
            for n in range(4):
                dot = sum(min(x, rv[n].get(g, 0.0)) * rv[n].get(g, 0.0) for g, x in hv[n].items())
                if hn[n] and rn[n]:
                    total += dot / (hn[n] * rn[n]) * math.exp(-((hl - rl) ** 2) / (2 * sigma ** 2))
            per_ref.append(total / 4)
        scores.append(10.0 * float(np.mean(per_ref)) if per_ref else 0.0)
    return float(np.mean(scores))


def text_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str] | str]) -> dict[str, float]:
    """BLEU-4, mean ROUGE-L and CIDEr-D of a corpus (a reference may be one string or several)."""
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    if len(hypotheses) != len(refs):
        raise ValueError(f"text_scores: {len(hypotheses)} hypotheses but {len(refs)} reference sets")
    rl = [rouge_l(h, rs) for h, rs in zip(hypotheses, refs)]
    return {"n": len(hypotheses), "bleu4": bleu4(hypotheses, refs),
            "rouge_l": float(np.mean(rl)) if rl else float("nan"), "cider": cider_d(hypotheses, refs)}


def mask_to_box(mask: np.ndarray | None) -> tuple[int, int, int, int] | None:
    """The (x0, y0, x1, y1) box around a mask's pixels, x1/y1 exclusive; None for an empty mask.
    How a [SEG] answer is scored on box-grounding benchmarks (Acc@0.5)."""
    if mask is None:
        return None
    m = np.asarray(mask, bool)
    if m.ndim != 2:
        raise ValueError(f"mask_to_box: expected an (H, W) mask, got shape {m.shape}")
    ys, xs = np.nonzero(m)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def per_task_accuracy(task_of: Sequence[str], correct: Sequence[bool]) -> dict[str, float]:
    """Accuracy per task name, for :func:`m_avg`."""
    if len(task_of) != len(correct):
        raise ValueError(f"per_task_accuracy: {len(task_of)} task names but {len(correct)} results")
    groups: dict[str, list[bool]] = {}
    for t, c in zip(task_of, correct):
        groups.setdefault(t, []).append(bool(c))
    return {t: accuracy(v) for t, v in sorted(groups.items())}
