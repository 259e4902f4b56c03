"""Prompt layout against the released predict_forward layout, templates as data."""
import pytest

from earthmind_sdk.errors import EarthMindError, RecipeError
from earthmind_sdk.text import PromptBuilder, build_prompt, get_template, image_placeholder, region_text
from earthmind_sdk.text.template import TEMPLATES

IMG2 = "<img><IMG_CONTEXT><IMG_CONTEXT></img>"


def test_image_first_with_newline_by_default():
    p = build_prompt("How many ships?", 2)
    assert p == f"<|user|>\n{IMG2}\nHow many ships?<|end|>\n<|assistant|>\n"


def test_image_placeholder_in_question_is_replaced_in_place():
    # EarthMind-Bench: "<image>" + question + "\n" + options, no newline after </img>
    p = build_prompt("<image>What is it?\nA. harbor\nB. airport", 2)
    assert p == f"<|user|>\n{IMG2}What is it?\nA. harbor\nB. airport<|end|>\n<|assistant|>\n"
    with pytest.raises(EarthMindError, match="2 '<image>' placeholders"):
        build_prompt("<image><image>x", 2)


def test_frames_get_one_block_each():
    assert image_placeholder([1, 2]) == "<img><IMG_CONTEXT></img>\n" + IMG2
    assert image_placeholder(3).count("<IMG_CONTEXT>") == 3
    with pytest.raises(EarthMindError, match="at least one token"):
        image_placeholder(0)


def test_regions_follow_the_image():
    r = region_text([1, 2])
    assert r == ("\nThere are 2 part regions in the picture: region1<vp><IMG_CONTEXT></vp>, "
                 "region2<vp><IMG_CONTEXT><IMG_CONTEXT></vp>.\n")
    p = build_prompt("<image>Please describe region2.", 2, region_token_counts=[1, 2])
    assert p == f"<|user|>\n{IMG2}{r}Please describe region2.<|end|>\n<|assistant|>\n"
    assert region_text([]) == ""
    with pytest.raises(EarthMindError, match="region2 cover no image token"):
        region_text([3, 0])
    with pytest.raises(EarthMindError, match="need an image"):
        build_prompt("x", None, region_token_counts=[1])


def test_history_keeps_the_image_in_the_first_turn():
    p = PromptBuilder("phi3_chat").build(question="And planes?", n_image_tokens=2,
                                         history=[("How many ships?", "3"), ("<image>Any bridge?", "No")])
    assert p == (f"<|user|>\n{IMG2}\nHow many ships?<|end|>\n<|assistant|>\n3<|end|>\n"
                 "<|user|>\nAny bridge?<|end|>\n<|assistant|>\nNo<|end|>\n"
                 "<|user|>\nAnd planes?<|end|>\n<|assistant|>\n")
    assert p.count("<img>") == 1


def test_text_only_and_system():
    assert build_prompt("<image>Hi", None) == "<|user|>\nHi<|end|>\n<|assistant|>\n"
    p = build_prompt("Hi", 1, system="You are an EO analyst.", template="qwen_chat")
    assert p == ("<|im_start|>system\nYou are an EO analyst.<|im_end|>\n<|im_start|>user\n"
                 "<img><IMG_CONTEXT></img>\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_templates_as_data():
    assert PromptBuilder("phi3_chat").stop_words == ("<|end|>",)
    assert PromptBuilder("qwen_chat").stop_words == ("<|im_end|>", "<|endoftext|>")
    assert get_template("phi3-chat") is TEMPLATES["phi3_chat"]
    train = build_prompt("Q", 1, template="phi3_chat_train", history=[("P", "A")])
    assert train == "<|user|>\n<img><IMG_CONTEXT></img>\nP<|end|><|assistant|>\nA<|end|><|user|>\nQ<|end|><|assistant|>\n"
    for t in TEMPLATES.values():
        assert "{input}" in t.instruction and (not t.system or "{system}" in t.system)
    with pytest.raises(RecipeError, match="unknown chat template 'nope'"):
        PromptBuilder("nope")


def test_no_placeholder_follows_the_training_layout():
    """The authors' datasets: first human turn = "<image>\\n" + question, stripped."""
    assert build_prompt("  How many ships? \n", 2) == f"<|user|>\n{IMG2}\nHow many ships?<|end|>\n<|assistant|>\n"
    assert build_prompt("", 2) == f"<|user|>\n{IMG2}<|end|>\n<|assistant|>\n"
    assert build_prompt(" <image>keep as given ", 2) == f"<|user|>\n {IMG2}keep as given <|end|>\n<|assistant|>\n"
