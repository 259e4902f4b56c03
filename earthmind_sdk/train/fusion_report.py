"""What the quickstart measures on held-out scenes: closed-question accuracy per subtask against
its chance level, referring-segmentation mIoU, and what SAR adds under clouds.

Inputs are the prediction rows of :func:`earthmind_sdk.eval.records.evaluate_records` (one run
with both sensors, one with SAR removed, one with every sensor blanked) and the records, whose
``meta`` holds ``task_type`` and ``hidden``. Chance is 1 / (number of distinct answers of the
subtask in this question set); ``max_answer_share`` is the most frequent answer's share, the
balance check (it equals chance when labels are perfectly balanced).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Sequence

from .synthetic import CLOSED_SUBTASKS


def _acc(values: Sequence[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def answer_balance(records) -> dict[str, dict[str, Any]]:
    """Per closed subtask: n, chance and the most frequent answer's share."""
    answers: dict[str, list[str]] = defaultdict(list)
    for r in records:
        if r.meta.get("task_type") in CLOSED_SUBTASKS:
            answers[r.meta["task_type"]].append(r.answer)
    out = {}
    for task in CLOSED_SUBTASKS:
        if answers[task]:
            counts = Counter(answers[task])
            out[task] = {"n": len(answers[task]), "chance": round(1 / len(counts), 4),
                         "max_answer_share": round(max(counts.values()) / len(answers[task]), 4)}
    return out


def closed_accuracy(rows: Sequence[dict], records, *, hidden: bool | None = None) -> dict[str, Any]:
    """Accuracy per closed subtask (optionally only hidden / not hidden questions), their mean
    (M-Avg) and the pooled accuracy over all the questions counted."""
    meta = {r.sample.id: r.meta for r in records}
    per: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        m = meta[row["id"]]
        if m.get("task_type") in CLOSED_SUBTASKS and "correct" in row and (hidden is None or m["hidden"] == hidden):
            per[m["task_type"]].append(bool(row["correct"]))
    acc = {t: _acc(per[t]) for t in CLOSED_SUBTASKS if per[t]}
    pooled = [c for v in per.values() for c in v]
    return {"accuracy": acc, "m_avg": round(sum(acc.values()) / len(acc), 4) if acc else None,
            "pooled": _acc(pooled), "n": len(pooled)}


def refseg_miou(rows: Sequence[dict]) -> float | None:
    """Mean over segmentation samples of each sample's IoU (a missing mask counts as 0)."""
    ious = [float(r["iou"]) for r in rows if "union" in r]
    return round(sum(ious) / len(ious), 4) if ious else None


def fusion_report(records, fused: Sequence[dict], optical_only: Sequence[dict] | None = None,
                  blind: Sequence[dict] | None = None) -> dict[str, Any]:
    """The quickstart's ``results.json`` metrics (fractions in 0..1)."""
    balance = answer_balance(records)
    allq = closed_accuracy(fused, records)
    out: dict[str, Any] = {
        "mcq_m_avg": allq["m_avg"],
        "refseg_miou": refseg_miou(fused),
        "subtasks": {t: {**b, "accuracy": allq["accuracy"].get(t)} for t, b in balance.items()},
        "chance_m_avg": round(sum(b["chance"] for b in balance.values()) / len(balance), 4) if balance else None,
    }
    hid = closed_accuracy(fused, records, hidden=True)
    vis = closed_accuracy(fused, records, hidden=False)
    out.update(n_closed=allq["n"], n_hidden=hid["n"], n_visible=vis["n"], cloud_fused_acc=hid["pooled"], visible_fused_acc=vis["pooled"])
    if optical_only is not None:
        out["cloud_optical_only_acc"] = closed_accuracy(optical_only, records, hidden=True)["pooled"]
        out["visible_optical_only_acc"] = closed_accuracy(optical_only, records, hidden=False)["pooled"]
        out["optical_only_m_avg"] = closed_accuracy(optical_only, records)["m_avg"]
    if blind is not None:
        b = closed_accuracy(blind, records)
        out["blind"] = {"m_avg": b["m_avg"], "accuracy": b["accuracy"]}
    return out


def target_checks(r: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets, each as a named pass/fail (all on the held-out split)."""
    subs = r["subtasks"]

    def gap(a: str, b: str) -> float | None:
        return None if r.get(a) is None or r.get(b) is None else r[a] - r[b]

    hidden_gain, visible_cost = gap("cloud_fused_acc", "cloud_optical_only_acc"), gap("visible_fused_acc", "visible_optical_only_acc")
    checks = {
        "mcq_m_avg >= 0.80": r["mcq_m_avg"] is not None and r["mcq_m_avg"] >= 0.80,
        "every subtask >= chance + 0.25": all(s["accuracy"] is not None and s["accuracy"] >= s["chance"] + 0.25
                                               for s in subs.values()),
        "refseg_miou >= 0.5": (r["refseg_miou"] or 0) >= 0.5,
        "hidden: fused - optical only >= 0.20": hidden_gain is not None and hidden_gain >= 0.20,
        "visible: optical only costs <= 0.05": visible_cost is not None and visible_cost <= 0.05,
        "labels balanced (max share <= chance + 0.10)": all(s["max_answer_share"] <= s["chance"] + 0.10 for s in subs.values()),
        ">= 40 questions per closed subtask": all(s["n"] >= 40 for s in subs.values()) and len(subs) == len(CLOSED_SUBTASKS),
        ">= 60 hidden questions": r["n_hidden"] >= 60,
    }
    if "blind" in r:
        checks["blind baseline <= chance + 0.05"] = all(
            (r["blind"]["accuracy"].get(t) or 0) <= s["chance"] + 0.05 for t, s in subs.items())
    return checks


def table(results: dict[str, Any], before: dict[str, Any] | None = None) -> str:
    """A plain-text table of the metrics, before and after training."""
    rows = [("metric", "chance", "before" + (f" (n={before['n_closed']})" if before else ""), "after")]

    def f(v):
        return "-" if v is None else f"{v:.2f}"

    b = before or {}
    for t, s in results["subtasks"].items():
        rows.append((f"{t} (n={s['n']})", f(s["chance"]), f(b.get("subtasks", {}).get(t, {}).get("accuracy")),
                     f(s["accuracy"])))
    rows.append(("closed M-Avg", f(results["chance_m_avg"]), f(b.get("mcq_m_avg")), f(results["mcq_m_avg"])))
    rows.append(("referring segmentation mIoU", "-", f(b.get("refseg_miou")), f(results["refseg_miou"])))
    rows.append((f"hidden by cloud, fused (n={results['n_hidden']})", "", f(b.get("cloud_fused_acc")),
                 f(results["cloud_fused_acc"])))
    if "cloud_optical_only_acc" in results:
        rows.append(("hidden by cloud, SAR removed", "", "", f(results["cloud_optical_only_acc"])))
        rows.append((f"not hidden, fused (n={results['n_visible']})", "", "", f(results["visible_fused_acc"])))
        rows.append(("not hidden, SAR removed", "", "", f(results["visible_optical_only_acc"])))
    if "blind" in results:
        rows.append(("blind (both images blanked) M-Avg", f(results["chance_m_avg"]), "", f(results["blind"]["m_avg"])))
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, width))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
