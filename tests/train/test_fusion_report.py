"""The quickstart's metrics from prediction rows: chance and balance per subtask, M-Avg,
hidden vs not hidden with and without SAR, blind baseline, mIoU, target checks."""
from types import SimpleNamespace

import pytest

from earthmind_sdk.train.fusion_report import fusion_report, table, target_checks


def rec(i, task, answer, hidden, mask=False):
    return SimpleNamespace(sample=SimpleNamespace(id=f"q{i}"), answer=answer, masks=[1] if mask else [],
                           meta={"task_type": task, "hidden": hidden})


@pytest.fixture
def records():
    out = []
    for i in range(8):
        out.append(rec(len(out), "existence", "Yes" if i % 2 else "No", hidden=i < 4))
        out.append(rec(len(out), "counting", ["Zero", "One", "Two", "Three"][i % 4], hidden=i < 4))
    out.append(rec(len(out), "referring_segmentation", "Sure, [SEG].", hidden=False, mask=True))
    return out


def rows(records, correct):
    out = []
    for r in records:
        if r.masks:
            out.append({"id": r.sample.id, "iou": 0.75, "inter": 3, "union": 4})
        else:
            out.append({"id": r.sample.id, "correct": correct(r)})
    return out


def test_report_splits_hidden_questions_and_compares_sensors(records):
    fused = rows(records, lambda r: True)
    optical = rows(records, lambda r: not r.meta["hidden"])  # SAR removed: only what optical sees
    blind = rows(records, lambda r: r.answer in ("Yes", "Zero"))
    rep = fusion_report(records, fused, optical, blind)
    assert rep["subtasks"]["existence"] == {"n": 8, "chance": 0.5, "max_answer_share": 0.5, "accuracy": 1.0}
    assert rep["subtasks"]["counting"]["chance"] == 0.25
    assert rep["mcq_m_avg"] == 1.0 and rep["chance_m_avg"] == 0.375
    assert rep["n_hidden"] == 8 and rep["cloud_fused_acc"] == 1.0 and rep["cloud_optical_only_acc"] == 0.0
    assert rep["visible_fused_acc"] == rep["visible_optical_only_acc"] == 1.0
    assert rep["blind"]["accuracy"] == {"existence": 0.5, "counting": 0.25}
    assert rep["refseg_miou"] == 0.75
    checks = target_checks(rep)
    assert checks["hidden: fused - optical only >= 0.20"] and checks["visible: optical only costs <= 0.05"]
    assert checks["blind baseline <= chance + 0.05"] and checks["labels balanced (max share <= chance + 0.10)"]
    assert not checks[">= 40 questions per closed subtask"] and not checks[">= 60 hidden questions"]
    assert "closed M-Avg" in table(rep, fusion_report(records, rows(records, lambda r: False)))


def test_unbalanced_labels_and_a_blind_model_above_chance_fail(records):
    existence = [r for r in records if r.meta["task_type"] == "existence"]
    for r in existence[:6]:
        r.answer = "Yes"  # 7 Yes / 1 No
    blind = rows(records, lambda r: r.answer in ("Yes", "Zero"))
    rep = fusion_report(records, rows(records, lambda r: True), blind=blind)
    assert rep["subtasks"]["existence"]["max_answer_share"] == 0.875
    checks = target_checks(rep)
    assert not checks["labels balanced (max share <= chance + 0.10)"]
    assert not checks["blind baseline <= chance + 0.05"]  # always "Yes" scores 0.875 > 0.55
