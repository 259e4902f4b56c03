"""The rebuilt Qwen2.5 tokenizer: same ids as tiktoken on the same ranks, added tokens at the
released ids with the released special flags, and loading from a checkpoint folder."""
import base64
import json

import pytest

from earthmind_sdk.errors import CheckpointError
from earthmind_sdk.text.tokenizer import ASSETS, QWEN_PATTERN, build_qwen_tokenizer, default_tokenizer, load_tokenizer, \
    special_token_ids
from earthmind_sdk.text.tokens import SPECIAL_TOKENS, TOKENIZER_SIZE


@pytest.fixture(scope="module")
def tok():
    return default_tokenizer()


def test_released_ids(tok):
    # the ids of the released EarthMind-4B / Sa2VA-4B tokenizer (see earthmind_sdk/text/tokens.py)
    expected = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|file_sep|>": 151664,
                "<img>": 151665, "</img>": 151666, "<IMG_CONTEXT>": 151667, "<quad>": 151668, "</box>": 151673,
                "[SEG]": 151674, "<p>": 151675, "</p>": 151676, "<vp>": 151677, "</vp>": 151678}
    for token, i in expected.items():
        assert tok.convert_tokens_to_ids(token) == i == SPECIAL_TOKENS[token], token
    assert len(tok) == TOKENIZER_SIZE == 151679
    ids = special_token_ids(tok)
    assert ids == {"img_context": 151667, "img_start": 151665, "img_end": 151666, "seg": 151674,
                   "vp_start": 151677, "vp_end": 151678, "pad": 151643, "eos": 151645}


def test_special_flags_follow_the_release(tok):
    """Qwen2.5 marks <tool_call>, <|fim_*|>, <|repo_name|>, <|file_sep|> not special: decoding
    with skip_special_tokens keeps them and drops the others."""
    ids = tok("<tool_call><|im_end|>[SEG]<|fim_pad|><IMG_CONTEXT>x", add_special_tokens=False)["input_ids"]
    assert len(ids) == 6
    assert tok.decode(ids, skip_special_tokens=True) == "<tool_call><|fim_pad|>x"


def test_byte_level_bpe_matches_tiktoken(tok):
    import tiktoken

    ranks = {}
    for line in (ASSETS / "qwen.tiktoken").read_text().splitlines():
        b64, rank = line.split()
        ranks[base64.b64decode(b64)] = int(rank)
    ref = tiktoken.Encoding("qwen", pat_str=QWEN_PATTERN, mergeable_ranks=ranks, special_tokens={})
    for text in ["Hello world", "The SAR image shows 13 ships near the harbour.", "你好，遥感图像",
                 "  leading spaces\nand\ttabs", "B8A/B11 ratio = 0.35; NDWI>0", "don't  stop\r\n\n", "Ünïcödé ́e"]:
        assert tok(text, add_special_tokens=False)["input_ids"] == ref.encode(text), text
    assert tok("Hello world", add_special_tokens=False)["input_ids"] == [9707, 1879]


def test_added_tokens_are_single_ids_and_round_trip(tok):
    text = "<img><IMG_CONTEXT><IMG_CONTEXT></img>\nSure, [SEG]. <p>a harbor</p> [SEG]<vp><IMG_CONTEXT></vp>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids[:4] == [151665, 151667, 151667, 151666]
    assert ids.count(151674) == 2 and 151675 in ids and ids[-3:] == [151677, 151667, 151678]
    assert tok.decode(ids) == text
    # the phi3 template words are plain text for this vocabulary: several pieces, no added id
    end = tok("<|end|>", add_special_tokens=False)["input_ids"]
    assert len(end) > 1 and all(i < 151643 for i in end)


def test_save_and_load_from_checkpoint_dir(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    again = load_tokenizer(tmp_path)
    text = "<img><IMG_CONTEXT></img>Is there a ship? [SEG]"
    assert again(text, add_special_tokens=False)["input_ids"] == tok(text, add_special_tokens=False)["input_ids"]
    assert special_token_ids(again) == special_token_ids(tok)


def test_missing_or_foreign_files_are_reported(tmp_path, tok):
    with pytest.raises(CheckpointError, match="no tokenizer files"):
        load_tokenizer(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        build_qwen_tokenizer(tmp_path / "nope.tiktoken")
    bad = tmp_path / "short.tiktoken"
    bad.write_text("IQ== 0\n")
    with pytest.raises(CheckpointError, match="151643-rank"):
        build_qwen_tokenizer(bad)
    # a plain Qwen tokenizer without the Sa2VA tokens: named, not silently split into BPE pieces
    plain = tmp_path / "plain"
    tok.save_pretrained(plain)
    data = json.loads((plain / "tokenizer.json").read_text())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] not in ("[SEG]", "<vp>", "</vp>")]
    (plain / "tokenizer.json").write_text(json.dumps(data))
    cfg = json.loads((plain / "tokenizer_config.json").read_text())
    cfg["added_tokens_decoder"] = {k: v for k, v in cfg.get("added_tokens_decoder", {}).items()
                                   if v["content"] not in ("[SEG]", "<vp>", "</vp>")}
    (plain / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"lacks the added token\(s\) \['\[SEG\]', '<vp>', '</vp>'\]"):
        load_tokenizer(plain)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "tokenizer_config.json").write_text('{"tokenizer_class": "NoSuchTokenizer", "auto_map": {}}')
    with pytest.raises(CheckpointError, match="broken: tokenizer could not be loaded .*auto_map"):
        load_tokenizer(broken)


def test_bundled_vocabulary_is_the_released_file():
    """The bundled qwen.tiktoken is byte for byte the file of the dashscope 2.0.2 wheel (NOTICE)."""
    import hashlib

    digest = hashlib.sha256((ASSETS / "qwen.tiktoken").read_bytes()).hexdigest()
    assert digest == "b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186"
    assert digest in (ASSETS / "NOTICE").read_text()
