"""Scoring runs the metrics each task declares, looked up in the metrics registry: a plugin
task or metric takes effect with no change to the evaluation code."""
import pytest

from earthmind_sdk import plugins
from earthmind_sdk.errors import PluginError
from earthmind_sdk.eval.records import score_rows
from earthmind_sdk.hookspecs import hookimpl
from earthmind_sdk.tasks import Parsed, Task


class WordCount(Task):
    """Answers are read as their number of words."""

    name = "toy_word_count"
    kind = "number"
    metrics = ("toy_abs_error", "bleu4")

    def parse(self, text, **fields):
        return Parsed(len(text.split()) or None, text, self.kind)


class AbsError:
    """Mean absolute difference of the parsed answer and reference."""

    kinds = ("number",)

    def score(self, row, task):
        err = abs(task.parse(row["answer"]).value - task.parse(row["reference"]).value)
        row["abs_error"] = err
        return err

    def reduce(self, items):
        return {"toy_mae": sum(items) / len(items)}


class BoxesOnly(Task):
    name = "toy_boxes_metric_on_text"
    metrics = ("acc_at_iou",)


class NotAMetric:
    """Registered as a metric, but scores nothing."""


class ToyPlugin:
    @staticmethod
    @hookimpl
    def register_tasks(register):
        register("toy_word_count", WordCount, description="answers read as word counts")
        register("toy_boxes_metric_on_text", BoxesOnly)
        register("toy_bad_metric_task", type("Bad", (Task,), {"name": "toy_bad_metric_task",
                                                                "metrics": ("toy_not_a_metric",)}))

    @staticmethod
    @hookimpl
    def register_metrics(register):
        register("toy_abs_error", AbsError, description="mean absolute error of parsed numbers")
        register("toy_not_a_metric", NotAMetric)


@pytest.fixture
def toy_plugin():
    system = plugins.system()
    system.register_plugin("toy-scoring", ToyPlugin())
    yield
    system.unregister_plugin("toy-scoring")


def test_a_plugin_task_is_scored_by_its_declared_plugin_and_builtin_metrics(toy_plugin):
    rows = [{"task": "toy_word_count", "group": "words", "answer": "one two three", "reference": "one two"},
            {"task": "toy_word_count", "group": "words", "answer": "a b", "reference": "a b"},
            {"task": "yes_no", "group": "existence", "answer": "Yes.", "reference": "no"}]
    report = score_rows(rows)
    assert report["toy_mae"] == {"words": 0.5}
    assert [r.get("abs_error") for r in rows] == [1, 0, None]
    assert report["open_ended"] == {"words": {"n": 2, "bleu4": 0.0}}  # bleu4 declared; rouge_l, cider not
    assert report["accuracy"] == {"existence": 0.0}  # the built-in task's accuracy: not the toy task
    assert "unscored" not in report


def test_a_metric_that_cannot_score_the_tasks_answers_is_named(toy_plugin):
    with pytest.raises(PluginError, match="task 'toy_boxes_metric_on_text' declares metric 'acc_at_iou', "
                                          "which scores answers of kind boxes, not 'text'"):
        score_rows([{"task": "toy_boxes_metric_on_text", "answer": "x", "reference": "y"}])
    with pytest.raises(PluginError, match="metric 'toy_not_a_metric' .* needs score\\(row, task\\) and reduce"):
        score_rows([{"task": "toy_bad_metric_task", "answer": "x", "reference": "y"}])


def test_builtin_reports_keep_their_shape_and_rows_no_metric_applies_to_are_counted():
    rows = [
        {"task": "referring_segmentation", "group": "refseg", "answer": "Sure, [SEG].", "reference": "Sure, [SEG].",
         "iou": 0.5, "inter": 1, "union": 2},
        {"task": "referring_segmentation", "group": "refseg", "answer": "Sure, [SEG].", "reference": "Sure, [SEG].",
         "iou": 1.0, "inter": 3, "union": 3},
        {"task": "referring_segmentation", "group": "refseg", "answer": "[SEG]", "reference": "[SEG]"},  # no mask
        {"task": "grounded_conversation", "group": "gcg", "answer": "<p>a harbor</p> [SEG]",
         "reference": "<p>a harbor</p> [SEG]"},
        {"task": "counting", "group": "count", "answer": "There are 3.", "reference": "3"},
        {"task": "multiple_choice", "group": "mcq", "task_args": {"options": ["A. x", "B. y"]},
         "answer": "B", "reference": "A", "reference_text": "A"},
    ]
    report = score_rows(rows)
    assert report["segmentation"] == {"refseg": {"n": 2, "gIoU": 0.75, "cIoU": 0.8}}
    assert report["unscored"] == {"refseg": 1}
    assert report["open_ended"] == {"gcg": {"n": 1, "bleu4": 1.0, "rouge_l": 1.0, "cider": 0.0}}
    assert report["accuracy"] == {"count": 1.0, "mcq": 0.0} and report["m_avg"] == 0.5
    assert report["unparsed"] == {"count": 0, "mcq": 0} and report["exact_match"] == {"mcq": 0.0}
    assert rows[0].get("correct") is None and rows[4]["parsed"] == 3 and rows[3]["rouge_l"] == 1.0
