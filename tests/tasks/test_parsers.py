"""Every task's parser on realistic model outputs, malformed ones included: an answer that
names no option, or several, is unparsed (None), never a wrong option."""
import pytest

from earthmind_sdk.plugins import registry
from earthmind_sdk.tasks import get_task

OPTIONS = ["A. Harbor", "B. Airport", "C. Farmland", "D. Dense residential"]
MCQ = [
    ("B", "B"), ("(B) Airport", "B"), ("B. Airport", "B"), ("The answer is C.", "C"), ("Answer: d", "D"),
    ("Airport", "B"), ("It is an airport.", "B"), ("c) Farmland", "C"), ("Option A", "A"),
    ("<|user|>B<|end|>", "B"), ("", None), ("I cannot tell from this image.", None),
    ("Either a harbor or an airport.", None), ("E", None), ("Harbour facilities", None),
]
LABELS = ["forest", "farmland", "dense_residential", "residential", "river"]
SCENES = [
    ("forest", "forest"), ("Forest.", "forest"), ("FARMLAND", "farmland"), ("dense residential", "dense_residential"),
    ("Dense-residential area", "dense_residential"), ("This is a residential area.", "residential"),
    ("Forests", "forest"), ("rivers", "river"), ("The image shows a river.", "river"), ("", None),
    ("desert", None), ("forest next to a river", None), ("The scene is farmland", "farmland"),
]
YES_NO = [
    ("Yes", True), ("yes.", True), ("No", False), ("No, there is not.", False), ("There is no ship.", False),
    ("Yes, there are two ships.", True), ("True", True), ("", None), ("Maybe", None), ("I am not sure", None),
    ("There is not any ship.", False), ("I cannot tell.", None),
]
COUNTS = [
    ("3", 3), ("Three", 3), ("There are 12 ships.", 12), ("two", 2), ("No", 0), ("none", 0),
    ("There are three planes and 3 hangars.", 3), ("", None), ("many", None), ("twenty", 20),
]
VQA = [
    ("Yes.", ("yes", "bool")), ("no", ("no", "bool")), ("Three", (3, "number")), ("12", (12, "number")),
    ("A parking lot", ("parking lot", "text")), ("The River", ("river", "text")), ("", (None, "text")),
    ("Some small buildings near the road", ("some small buildings near road", "text")),
]


@pytest.mark.parametrize("text, want", MCQ)
def test_multiple_choice(text, want):
    assert get_task("multiple_choice").parse(text, options=OPTIONS).value == want


@pytest.mark.parametrize("text, want", SCENES)
def test_scene_classification(text, want):
    assert get_task("scene_classification").parse(text, labels=LABELS).value == want


@pytest.mark.parametrize("text, want", YES_NO)
def test_yes_no(text, want):
    assert get_task("yes_no").parse(text).value is want


@pytest.mark.parametrize("text, want", COUNTS)
def test_counting(text, want):
    assert get_task("counting").parse(text).value == want


@pytest.mark.parametrize("text, want", VQA)
def test_vqa(text, want):
    p = get_task("vqa").parse(text)
    assert (p.value, p.kind) == want


def test_captioning_strips_template_tokens():
    cap = get_task("captioning")
    assert cap.parse("<p>A harbor</p> with ships.<|end|>").value == "A harbor with ships."
    assert cap.parse("  ").value is None
    assert get_task("region_captioning").build_prompt("") .endswith("region1?")


def test_referring_segmentation_counts_seg():
    t = get_task("referring_segmentation")
    assert t.build_prompt("", expression="the flooded field.") == "Please segment the flooded field."
    assert t.parse("Sure, [SEG].").value == 1
    assert t.parse("It is [SEG] and [SEG].").value == 2
    assert t.parse("There is no such object.").value is None


def test_grounded_conversation_pairs_phrases_with_masks():
    t = get_task("grounded_conversation")
    v = t.parse("<p>A harbor</p> [SEG] with <p>two ships</p> [SEG] near <p>the coast</p>.").value
    assert v["phrases"] == ["A harbor", "two ships"] and v["n_masks"] == 2
    assert v["caption"] == "A harbor with two ships near the coast."
    assert t.parse("A plain caption").value is None


def test_prompts_carry_options_and_labels():
    p = get_task("multiple_choice").build_prompt("What is it?", options=["Harbor", "Airport"])
    assert p.splitlines()[:3] == ["What is it?", "A. Harbor", "B. Airport"]
    assert "forest, farmland" in get_task("scene_classification").build_prompt("", labels=LABELS)
    with pytest.raises(ValueError, match="needs 'options'"):
        get_task("multiple_choice").parse("A")


def test_every_registered_task_builds_a_prompt_and_parses():
    args = {"multiple_choice": {"options": OPTIONS}, "scene_classification": {"labels": LABELS}}
    for name in registry("tasks").names():
        task = get_task(name)
        prompt = task.build_prompt("Describe it.", **args.get(name, {}))
        assert isinstance(prompt, str) and prompt
        parsed = task.parse("", **args.get(name, {}))
        assert parsed.value is None and parsed.raw == ""
