"""Every task's parser on realistic model outputs, malformed ones included. An answer that
names no option, several, or one that is not offered is unparsed (value None, raw text kept),
never a wrong option."""
import pytest

from earthmind_sdk.tasks import Parsed, Task, get_task, task_names

OPTIONS = ["A. Harbor", "B. Airport", "C. Farmland", "D. Dense residential"]
MCQ = [
    ("B", "B"), ("b", "B"), ("(B) Airport", "B"), ("B. Airport", "B"), ("B: Airport", "B"), ("[C]", "C"),
    ("The answer is C.", "C"), ("Answer: d", "D"), ("The correct answer is option A.", "A"),
    ("Airport", "B"), ("airports", "B"), ("It is an airport.", "B"), ("c) Farmland", "C"), ("Option A", "A"),
    ("<|user|>B<|end|>", "B"), ("B<|end|>", "B"), ("A harbor", "A"), ("C is correct.", "C"),
    ("dense-residential", "D"), ("I choose D", "D"), ("B, because there is a runway.", "B"),
    ("I think the answer is B because the runway is visible.", "B"), ("Answer: (C) Farmland", "C"),
    ("Answer: B\n\nExplanation: runways and a harbor are visible.", "B"), ("Airport (B)", "B"),
    # malformed: unparsed, never a wrong option
    ("", None), ("   ", None), ("I cannot tell from this image.", None), ("Either a harbor or an airport.", None),
    ("E", None), ("The answer is F.", None), ("Harbour facilities", None), ("A or B", None),
    ("(B) Harbor", None),  # letter and text disagree
    ("The image shows a large open area with several structures and roads; it is hard to say what it is "
     "exactly, maybe it could be used for transport or agriculture.", None),
    ("It is not an airport.", None), ("A. Harbor\nB. Airport", None),  # the options echoed back
]
YN_OPTIONS = ["yes", "no"]
MCQ_YN = [("Yes", "A"), ("No.", "B"), ("No, there is no bridge.", "B"), ("There is not any bridge.", "B"),
          ("A", "A"), ("B. no", "B"), ("Not sure.", None), ("", None)]
NUM_OPTIONS = ["A. 1", "B. 2", "C. 3", "D. 4"]
MCQ_NUM = [("3", "C"), ("three", "C"), ("There are 3 ships.", "C"), ("C. 3", "C"), ("Two", "B"),
           ("There are 7 ships.", None), ("2 or 3", None), ("many", None)]

LABELS = ["forest", "farmland", "dense_residential", "residential", "river", "parking_lot", "industry"]
SCENES = [
    ("forest", "forest"), ("Forest.", "forest"), ("FARMLAND", "farmland"), ("dense residential", "dense_residential"),
    ("Dense-residential area", "dense_residential"), ("This is a residential area.", "residential"),
    ("Forests", "forest"), ("rivers", "river"), ("The image shows a river.", "river"), ("Parking lot", "parking_lot"),
    ("parkinglot", "parking_lot"), ("industries", "industry"), ("The scene is farmland", "farmland"),
    ("<p>forest</p><|end|>", "forest"),
    ("", None), ("desert", None), ("forest next to a river", None), ("This is not a forest.", None),
    ("I am not able to classify this image because the resolution is too low and the colours are unusual.", None),
]
YES_NO = [
    ("Yes", True), ("yes.", True), ("YES", True), ("No", False), ("No, there is not.", False),
    ("There is no ship.", False), ("Yes, there are two ships.", True), ("True", True), ("A ship is visible.", True),
    ("There is a bridge in the image.", True), ("There is not any ship.", False), ("No ship can be seen.", False),
    ("The object isn't present.", False), ("It does not exist.", False),
    ("", None), ("Maybe", None), ("I am not sure", None), ("I cannot tell.", None), ("Hard to say.", None), ("Yes and no.", None), ("It is hard to tell.", None),
    ("I am unable to determine that.", None), ("It is a parking lot.", None),
    ("The image is blurry.", None),
]
COUNTS = [
    ("3", 3), ("3.", 3), ("Three", 3), ("There are 12 ships.", 12), ("two", 2), ("No", 0), ("none", 0),
    ("There are no ships.", 0), ("There are three planes and 3 hangars.", 3), ("twenty", 20), ("twenty-one", 21),
    ("1,200", 1200), ("There is a single ship.", 1), ("About 5.", 5), ("7 ships, 2 boats", 7),
    ("", None), ("many", None), ("several", None), ("2-3", None), ("between 4 and 6", None),
    ("more than 10", None), ("I can't count them.", None), ("3.5", None),
    ("There are 3, maybe 4.", None), ("In 2019 there were 5 ships.", 5),
]
VQA = [
    ("Yes.", ("yes", "bool")), ("no", ("no", "bool")), ("No, it is not.", ("no", "bool")),
    ("Three", (3, "number")), ("12", (12, "number")), ("There are 4 buildings.", (4, "number")),
    ("A parking lot", ("parking lot", "text")), ("The River.", ("river", "text")), ("rural", ("rural", "text")),
    ("", (None, "text")), ("<|end|>", (None, "text")),
    ("Some small buildings near the road", ("some small buildings near road", "text")),
]


@pytest.mark.parametrize("text, want", MCQ)
def test_multiple_choice(text, want):
    p = get_task("multiple_choice").parse(text, options=OPTIONS)
    assert p.value == want and p.raw == text and p.kind == "option"


@pytest.mark.parametrize("options, corpus", [(YN_OPTIONS, MCQ_YN), (NUM_OPTIONS, MCQ_NUM)], ids=["yes-no", "numbers"])
def test_multiple_choice_special_option_sets(options, corpus):
    task = get_task("multiple_choice")
    assert [task.parse(text, options=options).value for text, _ in corpus] == [want for _, want in corpus]


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


CAPTIONS = [
    ("A harbor with ships.<|end|>", "A harbor with ships."),
    ("<p>A harbor</p> with ships.", "A harbor with ships."),
    ("Sure, [SEG]. A harbor.", "A harbor."),
    ("Sure, the image shows a dense residential area.", "the image shows a dense residential area."),
    ("  A river\n crosses   farmland.  ", "A river crosses farmland."),
    ("<|im_end|>", None), ("", None), ("   ", None),
]


@pytest.mark.parametrize("name", ["captioning", "region_captioning"])
def test_captions_are_stripped_of_template_tokens(name):
    cap = get_task(name)
    assert [cap.parse(t).value for t, _ in CAPTIONS] == [w for _, w in CAPTIONS]
    assert get_task("region_captioning").build_prompt("", region=2).endswith("region2?")


SEGS = [("Sure, [SEG].", 1), ("It is [SEG].", 1), ("[SEG]", 1), ("It is [SEG] and [SEG].", 2),
        ("Sure, it is [SEG].<|end|>", 1), ("There is no such object.", None), ("", None), ("[SEG ]", None),
        ("Sure, it is <p>the lake</p> [SEG].", 1), ("[SEG][SEG][SEG]", 3)]


def test_referring_segmentation_counts_seg():
    t = get_task("referring_segmentation")
    assert t.build_prompt("", expression="the flooded field.") == "Please segment the flooded field."
    assert [t.parse(a).value for a, _ in SEGS] == [w for _, w in SEGS]


def test_grounded_conversation_pairs_phrases_with_masks():
    t = get_task("grounded_conversation")
    v = t.parse("<p>A harbor</p> [SEG] with <p>two ships</p> [SEG] near <p>the coast</p>.").value
    assert v["phrases"] == ["A harbor", "two ships"] and v["n_masks"] == 2 and v["aligned"]
    assert v["caption"] == "A harbor with two ships near the coast."
    v = t.parse("<p>A road</p>[SEG] and [SEG]<|end|>").value
    assert v["phrases"] == ["A road"] and v["n_masks"] == 2 and not v["aligned"]
    assert t.parse("A plain caption").value is None
    assert t.parse("").value is None


BOXES = [
    ("<ref>the ship</ref><box>[[100, 200, 300, 400]]</box>", [(0.1, 0.2, 0.3, 0.4)]),
    ("{<10><20><30><40>|<0>}", [(0.1, 0.2, 0.3, 0.4)]),
    ("[0.1, 0.2, 0.3, 0.4]", [(0.1, 0.2, 0.3, 0.4)]),
    ("The box is [30, 40, 10, 20].", [(0.1, 0.2, 0.3, 0.4)]),  # pixels of a 100 x 100 image, corners swapped
    ("[1,2]", None), ("no box", None), ("", None),
]


def test_visual_grounding_boxes():
    t = get_task("visual_grounding")
    for text, want in BOXES:
        got = t.parse(text, width=100, height=100).value
        if want is None:
            assert got is None, text
        else:
            assert got == [pytest.approx(b) for b in want], text
    assert t.parse("[30, 40, 10, 20]").value is None  # pixels without an image size: unparsed


def test_prompts_carry_options_and_labels():
    mc = get_task("multiple_choice")
    p = mc.build_prompt("What is it?", options=["Harbor", "Airport"])
    assert p.splitlines() == ["What is it?", "A. Harbor", "B. Airport",
                              "Answer with the option's letter from the given choices directly."]
    bench = mc.build_prompt("<image>Is there a bridge?", options=["yes", "no"], letters=False, instruction="")
    assert bench == "<image>Is there a bridge?\nyes\nno"
    assert "forest, farmland, dense residential" in get_task("scene_classification").build_prompt("", labels=LABELS)
    with pytest.raises(ValueError, match="needs 'options'"):
        mc.parse("A")
    with pytest.raises(ValueError, match="needs 'labels'"):
        get_task("scene_classification").parse("forest", labels=[])
    with pytest.raises(ValueError, match="repeat a letter"):
        mc.parse("A", options=["A. x", "A. y"])


def test_every_registered_task_is_a_task_and_leaves_garbage_unparsed():
    args = {"multiple_choice": {"options": OPTIONS}, "scene_classification": {"labels": LABELS}}
    assert {"vqa", "yes_no", "counting", "multiple_choice", "scene_classification", "captioning", "region_captioning",
            "referring_segmentation", "grounded_conversation", "visual_grounding"} <= set(task_names())
    from earthmind_sdk.plugins import registry

    metrics = set(registry("metrics").names())
    for name in task_names():
        task = get_task(name)
        assert isinstance(task, Task) and task.name == name and task.metrics and task.metric == task.metrics[0]
        assert set(task.metrics) <= metrics, (name, task.metrics)
        prompt = task.build_prompt("Describe it.", **args.get(name, {}))
        assert isinstance(prompt, str) and prompt
        for garbage in ("", "<|end|>"):
            parsed = task.parse(garbage, **args.get(name, {}))
            assert isinstance(parsed, Parsed) and parsed.value is None and parsed.raw == garbage
            assert parsed.to_json() == {"value": None, "kind": task.kind, "raw": garbage}
