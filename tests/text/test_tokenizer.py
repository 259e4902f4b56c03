import pytest

from earthmind_sdk.errors import CheckpointError
from earthmind_sdk.text.prompt import PromptBuilder, image_placeholder, region_text
from earthmind_sdk.text.tokenizer import (RELEASED_IDS, build_qwen_tokenizer, default_tokenizer, load_tokenizer,
                                          special_token_ids)


@pytest.fixture(scope="module")
def tok():
    return default_tokenizer()


def test_released_ids(tok):
    assert tok.convert_tokens_to_ids("<IMG_CONTEXT>") == 151667
    assert tok.convert_tokens_to_ids("</img>") == 151666
    assert tok.convert_tokens_to_ids("<|endoftext|>") == 151643
    assert tok.convert_tokens_to_ids("[SEG]") == 151674
    assert len(tok) == 151679
    ids = special_token_ids(tok)
    assert ids["img_context"] == 151667 and ids["seg"] == 151674 and ids["pad"] == 151643
    assert ids["vp_start"] == RELEASED_IDS["<vp>"]


def test_byte_level_bpe_matches_tiktoken(tok):
    import base64

    import tiktoken

    from earthmind_sdk.text.tokenizer import ASSETS, QWEN_PATTERN

    ranks = {}
    for line in (ASSETS / "qwen.tiktoken").read_text().splitlines():
        b64, rank = line.split()
        ranks[base64.b64decode(b64)] = int(rank)
    ref = tiktoken.Encoding("qwen", pat_str=QWEN_PATTERN, mergeable_ranks=ranks, special_tokens={})
    for text in ["Hello world", "The SAR image shows 13 ships near the harbour.", "你好，遥感图像",
                 "  leading spaces\nand\ttabs", "B8A/B11 ratio = 0.35; NDWI>0"]:
        assert tok(text, add_special_tokens=False)["input_ids"] == ref.encode(text)
    assert tok("Hello world", add_special_tokens=False)["input_ids"] == [9707, 1879]


def test_added_tokens_are_single_ids_and_round_trip(tok):
    text = "<img><IMG_CONTEXT><IMG_CONTEXT></img>\nSure, [SEG]. <p>a harbor</p> [SEG]"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids[:4] == [151665, 151667, 151667, 151666]
    assert ids.count(151674) == 2
    assert tok.decode(ids) == text


def test_save_and_load_from_checkpoint_dir(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    again = load_tokenizer(tmp_path)
    text = "Is there a ship? [SEG]"
    assert again(text, add_special_tokens=False)["input_ids"] == tok(text, add_special_tokens=False)["input_ids"]


def test_missing_files_are_reported(tmp_path):
    with pytest.raises(CheckpointError, match="no tokenizer files"):
        load_tokenizer(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        build_qwen_tokenizer(tmp_path / "nope.tiktoken")
    bad = tmp_path / "short.tiktoken"
    bad.write_text("IQ== 0\n")
    with pytest.raises(CheckpointError, match="151643-rank"):
        build_qwen_tokenizer(bad)


def test_prompt_layout_phi3():
    p = PromptBuilder("phi3_chat").build(question="How many ships?", n_image_tokens=2,
                                         history=[("Is it a port?", "Yes")], region_token_counts=[1, 2])
    assert p == ("<|user|>\n" + image_placeholder(2) + "\n" + region_text([1, 2]) + "Is it a port?<|end|>\n"
                 "<|assistant|>\nYes<|end|>\n<|user|>\nHow many ships?<|end|>\n<|assistant|>\n")
    assert region_text([1, 2]) == ("There are 2 part regions in the picture: region1<vp><IMG_CONTEXT></vp>, "
                                   "region2<vp><IMG_CONTEXT><IMG_CONTEXT></vp>.\n")
    with pytest.raises(Exception, match="unknown chat template"):
        PromptBuilder("nope")
