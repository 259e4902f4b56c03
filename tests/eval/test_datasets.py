"""Public-benchmark readers and the scoring of records, with a scripted pipeline standing in
for the model (the model path is covered by test_bench's eval job)."""
import json

import numpy as np
import pytest
from PIL import Image

from earthmind_sdk.contracts import Record, Result, Sample
from earthmind_sdk.errors import EarthMindError
from earthmind_sdk.eval.datasets import ClassificationFolder, VQAFile
from earthmind_sdk.eval.records import evaluate_records, score_file, squash
from earthmind_sdk.plugins import registry
from earthmind_sdk.tasks import get_task


def _png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)


def test_vqa_file_inline_and_separate_answers(tmp_path):
    for name in ("a.png", "b.png"):
        _png(tmp_path / "img" / name)
    inline = [{"image_id": "a.png", "question_id": 7, "question": "Is there a road?", "ground_truth": "yes",
               "type": "presence"},
              {"image_id": "b.png", "question_id": 8, "question": "How many ships?", "ground_truth": "3",
               "type": "count"}]
    (tmp_path / "vrs.json").write_text(json.dumps(inline))
    ds = VQAFile(str(tmp_path / "vrs.json"), str(tmp_path / "img"))
    recs = list(ds)
    assert [r.answer for r in recs] == ["yes", "3"] and [r.meta["task_type"] for r in recs] == ["presence", "count"]
    assert recs[0].sample.prompt == "<image>Is there a road?Answer the question using a single word or phrase."
    assert recs[0].sample.images == {"optical": str(tmp_path / "img" / "a.png")} and recs[0].sample.id == "7"
    # GeoChat-Bench / RSVQA-HR: JSON lines + a separate answers file with inactive entries
    (tmp_path / "hr.jsonl").write_text('{"question_id": 1, "image": "a", "text": "Is it rural?", "category": "comp"}\n'
                                      '{"question_id": 2, "image": "b.png", "text": "x?", "category": "presence"}\n')
    (tmp_path / "answers.json").write_text(json.dumps({"answers": [
        {"question_id": 1, "answer": "no", "active": True}, {"question_id": 2, "answer": "yes", "active": False}]}))
    with pytest.raises(EarthMindError, match=r"hr.jsonl:2: no answer .*question_id 2"):
        VQAFile(str(tmp_path / "hr.jsonl"), str(tmp_path / "img"), answers=str(tmp_path / "answers.json"))
    ds = VQAFile(str(tmp_path / "hr.jsonl"), str(tmp_path / "img"), answers=str(tmp_path / "answers.json"), limit=1,
                 suffix="")
    assert len(ds) == 1 and ds.records[0].answer == "no" and ds.records[0].sample.images["optical"].endswith("a.png")
    assert "vqa_file" in registry("datasets") and "classification_folder" in registry("datasets")


@pytest.mark.parametrize("rows, message", [
    ([{"image_id": "a.png", "ground_truth": "yes"}], r"vrs.json \[0\]: no question text"),
    ([{"question": "q", "ground_truth": "yes"}], r"\[0\]: no image"),
    ([{"question": "q", "image_id": "zz.png", "ground_truth": "yes"}], r"\[0\]: image .*zz.png not found"),
    ([{"question": "q", "image_id": "a.png"}], r"\[0\]: no answer"),
    (["just text"], r"\[0\]: expected an object, found str"),
    ({"x": 1}, r"expected a JSON list \(or JSON lines\) of question entries, found dict"),
])
def test_vqa_file_errors_name_file_and_entry(tmp_path, rows, message):
    _png(tmp_path / "img" / "a.png")
    (tmp_path / "vrs.json").write_text(json.dumps(rows))
    with pytest.raises(EarthMindError, match=message):
        VQAFile(str(tmp_path / "vrs.json"), str(tmp_path / "img"))


def test_classification_folder(tmp_path):
    for label, n in (("airport", 2), ("dense_residential", 1)):
        for k in range(n):
            _png(tmp_path / "aid" / label / f"{k}.jpg")
    ds = ClassificationFolder(str(tmp_path / "aid"))
    assert ds.labels == ["airport", "dense_residential"] and [r.answer for r in ds] == ["airport"] * 2 + ["dense_residential"]
    s = ds.records[0].sample
    assert get_task(s.task).parse("Dense residential area.", **s.task_args).value == "dense_residential"
    assert len(ClassificationFolder(str(tmp_path / "aid"), limit_per_class=1)) == 2
    with pytest.raises(EarthMindError, match=r"folder\(s\) \['dense_residential'\] are not in the label list"):
        ClassificationFolder(str(tmp_path / "aid"), labels=["airport"])
    (tmp_path / "aid" / "empty").mkdir()
    with pytest.raises(EarthMindError, match="empty: class folder holds no image"):
        ClassificationFolder(str(tmp_path / "aid"))


class ScriptedPipeline:
    """Answers (and masks) fixed in advance, parsed by the real tasks."""

    class _Builder:
        def task(self, sample):
            return get_task(sample.task or "vqa")

    def __init__(self, answers, masks=None):
        self.answers, self.masks = answers, masks or {}
        self.builder = self._Builder()

    def __call__(self, samples, **kw):
        out = []
        for i, s in enumerate(samples):
            text = self.answers[i]
            out.append(Result(answer=text, parsed=self.builder.task(s).parse(text, **s.task_args),
                              masks=self.masks.get(i, []), id=s.id))
        return out


def test_scores_per_task_with_unparsed_exact_match_text_and_boxes(tmp_path):
    opts = {"options": ["A. harbor", "B. airport"], "letters": False, "instruction": ""}
    mask = np.zeros((10, 10), bool)
    mask[0:5, 0:5] = True
    recs = [
        Record(Sample({}, "q", task="multiple_choice", task_args=opts, id="m1"), "B",
               meta={"task_type": "scene", "reference_text": "B"}),
        Record(Sample({}, "q", task="multiple_choice", task_args=opts, id="m2"), "A",
               meta={"task_type": "scene", "reference_text": "A"}),
        Record(Sample({}, "q", task="yes_no", id="y1"), "no", meta={"task_type": "existence", "reference_text": "no"}),
        Record(Sample({}, "q", task="captioning", id="c1"), "a harbor with ships", meta={"task_type": "caption"}),
        Record(Sample({}, "q", task="visual_grounding", id="g1"), "[0.0, 0.0, 0.5, 0.5]", meta={"task_type": "vg"}),
        Record(Sample({}, "q", task="visual_grounding", id="g2"), "[0.5, 0.5, 1.0, 1.0]", meta={"task_type": "vg"}),
    ]
    answers = ["The answer is B.", "I cannot tell.", "No.", "a harbor with ships", "Sure, [SEG].",
               "<box>[[0, 0, 500, 500]]</box>"]
    rows = []
    report = evaluate_records(ScriptedPipeline(answers, masks={4: [mask]}), recs, predictions=rows)
    assert report["accuracy"] == {"existence": 1.0, "scene": 0.5} and report["m_avg"] == 0.75
    assert report["unparsed"] == {"existence": 0, "scene": 1}
    assert report["exact_match"] == {"existence": 1.0, "scene": 0.0}  # "The answer is B." != "B" as a string
    assert report["open_ended"]["caption"] == {"n": 1, "bleu4": 1.0, "rouge_l": 1.0, "cider": 0.0}  # one doc: idf 0
    assert report["grounding"] == {"vg": {"n": 2, "acc@0.5": 0.5}}  # the [SEG] mask's box hits, the text box misses
    assert [r["id"] for r in rows] == ["m1", "m2", "y1", "c1", "g1", "g2"]
    assert rows[1]["parsed"] is None and rows[1]["correct"] is False
    assert squash("Yes.<|end|>") == squash(" yes") == "yes"
    # the saved rows re-score to the same report without the model
    path = tmp_path / "predictions.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert score_file(str(path)) == report
    path.write_text('{"answer": "x"}\n')
    with pytest.raises(ValueError, match=r"row 0 \(None\): missing \['reference'\]"):
        score_file(str(path))
