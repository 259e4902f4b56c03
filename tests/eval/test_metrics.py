import math

import numpy as np
import pytest

from earthmind_sdk.eval.metrics import MaskIoU, acc_at_iou, accuracy, bleu4, box_iou, m_avg, rouge_l


def test_accuracy_and_m_avg_weigh_tasks_equally():
    assert accuracy([True, False, True, True]) == 0.75
    assert math.isnan(accuracy([]))
    assert m_avg({"counting": 0.5, "existence": 1.0, "empty": float("nan")}) == 0.75


def test_mask_iou_giou_vs_ciou():
    acc = MaskIoU()
    a = np.zeros((4, 4), bool)
    a[:2] = True                      # 8 px
    assert acc.add(a, a) == 1.0
    small_t = np.zeros((4, 4), bool)
    small_t[0, 0] = True
    assert acc.add(None, small_t) == 0.0  # no mask predicted
    r = acc.result()
    assert r["n"] == 2 and r["gIoU"] == 0.5
    assert r["cIoU"] == pytest.approx(8 / 9)  # big objects dominate cIoU
    with pytest.raises(ValueError, match="differ in shape"):
        acc.add(np.zeros((2, 2)), a)


def test_boxes():
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert acc_at_iou([(0, 0, 2, 2), None, (0, 0, 1, 1)], [(0, 0, 2, 2), (0, 0, 1, 1), (5, 5, 6, 6)]) == pytest.approx(1 / 3)


def test_text_scores():
    ref = "a harbor with three ships next to a long pier"
    assert bleu4([ref], [[ref]]) == pytest.approx(1.0)
    assert bleu4(["completely different words here now"], [[ref]]) == 0.0
    partial = bleu4(["a harbor with three ships near the pier"], [[ref]])
    assert 0.0 < partial < 1.0
    assert rouge_l("the cat sat", "the cat sat on the mat") == pytest.approx(2.44 * 0.5 / (0.5 + 1.44))
    assert rouge_l("", ref) == 0.0
