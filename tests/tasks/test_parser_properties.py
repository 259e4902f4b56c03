"""Properties over arbitrary text: parsers never raise, and never return a value outside what
was offered (a letter that is not an option, a label that is not in the list)."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from earthmind_sdk.tasks import get_task
from earthmind_sdk.tasks.answers import parse_number, parse_option, parse_yes_no

OPTIONS = ["A. harbor", "B. airport", "C. 3", "D. dense residential"]
LABELS = ["forest", "river", "dense_residential", "residential"]
WORDS = st.sampled_from(["A", "B", "E", "(C)", "answer", "is", "not", "no", "yes", "harbor", "airport", "3", "three",
                         "forest", "rivers", "dense", "residential", "[SEG]", "<|end|>", "<p>", ".", ",", "\n", "maybe"])
TEXT = st.one_of(st.text(max_size=60), st.lists(WORDS, max_size=12).map(" ".join))
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(TEXT)
def test_closed_parsers_stay_inside_the_offered_answers(text):
    assert parse_option(text, OPTIONS) in (None, "A", "B", "C", "D")
    assert get_task("scene_classification").parse(text, labels=LABELS).value in (None, *LABELS)
    assert parse_yes_no(text) in (None, True, False)
    n = parse_number(text)
    assert n is None or (isinstance(n, int) and n >= 0)


@FAST
@given(TEXT)
def test_every_task_parses_anything_without_raising(text):
    args = {"multiple_choice": {"options": OPTIONS}, "scene_classification": {"labels": LABELS}}
    for name in ("vqa", "yes_no", "counting", "multiple_choice", "scene_classification", "captioning",
                 "region_captioning", "referring_segmentation", "grounded_conversation", "visual_grounding"):
        p = get_task(name).parse(text, **args.get(name, {}))
        assert p.raw == text


@FAST
@given(st.sampled_from(OPTIONS), st.sampled_from(["{}", "{}.", "The answer is {}.", "Answer: {}", "({})"]))
def test_an_option_given_back_is_read_as_itself(option, form):
    letter, body = option.split(". ", 1)
    assert parse_option(form.format(letter), OPTIONS) == letter
    assert parse_option(form.format(option), OPTIONS) == letter
    assert parse_option(body, OPTIONS) == letter
