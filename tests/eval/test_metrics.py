import math

import numpy as np
import pytest

from earthmind_sdk.eval.metrics import (MaskIoU, acc_at_iou, accuracy, bleu4, box_iou, cider_d, m_avg, mask_to_box,
                                        per_task_accuracy, rouge_l, text_scores)
from earthmind_sdk.plugins import registry


def test_accuracy_and_m_avg_weigh_tasks_equally():
    assert accuracy([True, False, True, True]) == 0.75
    assert math.isnan(accuracy([]))
    assert m_avg({"counting": 0.5, "existence": 1.0, "empty": float("nan")}) == 0.75
    per = per_task_accuracy(["count", "count", "count", "exist"], [True, True, False, False])
    assert per == {"count": pytest.approx(2 / 3), "exist": 0.0}
    assert m_avg(per) == pytest.approx(1 / 3)  # not the pooled 2/4
    with pytest.raises(ValueError, match="3 task names but 2 results"):
        per_task_accuracy(["a", "b", "c"], [True, False])


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


def test_boxes_and_masks_as_boxes():
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert acc_at_iou([(0, 0, 2, 2), None, (0, 0, 1, 1)], [(0, 0, 2, 2), (0, 0, 1, 1), (5, 5, 6, 6)]) == pytest.approx(1 / 3)
    m = np.zeros((10, 12), bool)
    m[2:5, 3:9] = True
    assert mask_to_box(m) == (3, 2, 9, 5)
    assert mask_to_box(np.zeros((3, 3))) is None and mask_to_box(None) is None
    assert acc_at_iou([mask_to_box(m)], [(3, 2, 9, 6)]) == 1.0   # IoU 18/24
    with pytest.raises(ValueError, match="2 predicted boxes but 1"):
        acc_at_iou([None, None], [(0, 0, 1, 1)])


# Reference values from pycocoevalcap 1.2 (Bleu(4), Rouge(), Cider()) on the same corpus with
# the same \w+ lower-case tokens; our implementations are independent.
HYPS = ["a harbor with three large ships next to a pier", "a dense residential area with many small buildings",
        "a river crosses farmland near a bridge", "an airport with two runways"]
REFS = [["three ships are docked in a harbor next to a long pier", "a harbor with ships"],
        ["many small buildings in a dense residential area"],
        ["a bridge over a river between fields of farmland", "farmland on both sides of a river"],
        ["an airport with a long runway and planes"]]


def test_text_scores_match_the_coco_caption_evaluation():
    s = text_scores(HYPS, REFS)
    assert s["n"] == 4
    assert s["bleu4"] == pytest.approx(0.2361818936021521, abs=1e-9)
    assert s["rouge_l"] == pytest.approx(0.5238101164658762, abs=1e-12)
    assert s["cider"] == pytest.approx(3.099530465107784, abs=1e-12)


def test_text_score_properties():
    ref = "a harbor with three ships next to a long pier"
    assert bleu4([ref], [[ref]]) == pytest.approx(1.0)
    assert bleu4(["completely different words here now"], [[ref]]) == 0.0
    assert 0.0 < bleu4(["a harbor with three ships near the pier"], [[ref]]) < 1.0
    assert rouge_l("the cat sat", "the cat sat on the mat") == pytest.approx(2.44 * 0.5 / (0.5 + 1.44))
    assert rouge_l("", ref) == 0.0
    # a perfect caption of every image scores CIDEr-D 10; one image alone scores 0 (idf is 0)
    assert cider_d(HYPS, [[h] for h in HYPS]) == pytest.approx(10.0)
    assert cider_d([ref], [[ref]]) == 0.0
    assert cider_d(HYPS[::-1], REFS) < cider_d(HYPS, REFS)
    assert text_scores(["x"], ["x y"])["n"] == 1  # a single reference string is accepted
    with pytest.raises(ValueError, match="2 hypotheses but 1 reference"):
        cider_d(["a", "b"], [["a"]])


def test_metrics_are_registered():
    names = set(registry("metrics").names())
    assert {"accuracy", "m_avg", "mask_iou", "acc_at_iou", "bleu4", "rouge_l", "cider", "text_scores"} <= names
    cider = registry("metrics").build("cider")  # a scorer of prediction rows, its arithmetic cider_d's
    rows = [{"answer": h, "reference": r[0]} for h, r in zip(HYPS, REFS)]
    items = [cider.score(row, None) for row in rows]
    want = round(cider_d(HYPS, [r[:1] for r in REFS]), 4)
    assert want > 0 and cider.reduce(items) == {"open_ended": {"n": len(HYPS), "cider": want}}
