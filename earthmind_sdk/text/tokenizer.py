"""Tokenizers with the released EarthMind / Sa2VA token ids.

Released checkpoints ship their tokenizer files; :func:`load_tokenizer` reads them offline,
without remote code. For tiny models and tests, :func:`build_qwen_tokenizer` rebuilds the real
Qwen2.5 byte-level BPE from a ``qwen.tiktoken`` file (the bundled copy by default) and appends
the added tokens in the released order, so ids match the 4B model's (see
:mod:`earthmind_sdk.text.tokens` for every id and where it comes from):
``<img>`` 151665, ``</img>`` 151666, ``<IMG_CONTEXT>`` 151667, ``[SEG]`` 151674, ``<vp>`` 151677.
"""
from __future__ import annotations

import functools
from pathlib import Path

from ..errors import CheckpointError
from .tokens import (ADDED_TOKENS, IMG_CONTEXT, IMG_END, IMG_START, P_END, P_START, QWEN_BASE_VOCAB,  # noqa: F401
                     QWEN_NOT_SPECIAL, SEG, SPECIAL_TOKENS, TOKENIZER_SIZE, VP_END, VP_START)

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "tokenizer"
#: Qwen2's pre-tokenizer split (the ``Split`` regex of its tokenizer.json).
QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def build_qwen_tokenizer(tiktoken_path: str | Path | None = None):
    """The Qwen2.5 BPE from a ``qwen.tiktoken`` file plus the released added tokens."""
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    path = Path(tiktoken_path) if tiktoken_path else ASSETS / "qwen.tiktoken"
    if not path.is_file():
        raise CheckpointError(f"{path}: tiktoken vocabulary not found")
    core = TikTokenConverter(vocab_file=str(path), pattern=QWEN_PATTERN).converted()
    if core.get_vocab_size() != QWEN_BASE_VOCAB:
        raise CheckpointError(f"{path}: expected the {QWEN_BASE_VOCAB}-rank Qwen vocabulary, "
                              f"found {core.get_vocab_size()} ranks")
    core.normalizer = normalizers.NFC()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, clean_up_tokenization_spaces=False)
    for token in ADDED_TOKENS:  # one by one: ids follow the released order whatever the flags
        special = token not in QWEN_NOT_SPECIAL
        tok.add_tokens([AddedToken(token, special=special, normalized=False)], special_tokens=special)
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    check_released_ids(tok, where=str(path))
    return tok


@functools.lru_cache(maxsize=1)
def _cached_default():
    return build_qwen_tokenizer()


def default_tokenizer():
    """The bundled Qwen2.5 tokenizer with released ids (built once per process, ~2 s)."""
    return _cached_default()


def _llm_config(path: Path):
    """The language model's config for AutoTokenizer, so that it does not read the checkpoint's
    ``config.json`` itself (transformers does not know ``sa2va_chat`` and would warn)."""
    import json

    from transformers import AutoConfig, PretrainedConfig

    try:
        llm = dict(json.loads((path / "config.json").read_text())["llm_config"])
        return AutoConfig.for_model(llm.pop("model_type"), **{k: v for k, v in llm.items()
                                                               if k not in ("architectures", "auto_map")})
    except Exception:  # noqa: BLE001 - no usable llm_config: the tokenizer files must name their class
        return PretrainedConfig()


def load_tokenizer(checkpoint_dir: str | Path):
    """A checkpoint directory's own tokenizer files, offline and without remote code."""
    from transformers import AutoTokenizer

    path = Path(checkpoint_dir)
    files = [f for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json") if (path / f).is_file()]
    if not files:
        raise CheckpointError(f"{path}: no tokenizer files (tokenizer.json / tokenizer_config.json / vocab.json)")
    try:
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False, local_files_only=True,
                                            config=_llm_config(path))
    except Exception as exc:  # noqa: BLE001 - reported with the folder named
        hint = ""
        cfg = path / "tokenizer_config.json"
        if cfg.is_file() and "auto_map" in cfg.read_text(errors="replace"):
            hint = (" (its tokenizer_config.json names remote code in 'auto_map', which is not run; "
                    "a tokenizer.json beside it is enough)")
        raise CheckpointError(f"{path}: tokenizer could not be loaded{hint}: {type(exc).__name__}: {exc}") from None
    added = tok.get_added_vocab()
    missing = [t for t in (IMG_START, IMG_END, IMG_CONTEXT, SEG, P_START, P_END, VP_START, VP_END) if t not in added]
    if missing:
        raise CheckpointError(f"{path}: tokenizer lacks the added token(s) {missing} (they would be split into "
                              f"ordinary BPE pieces); an EarthMind / Sa2VA tokenizer has them")
    return tok


def check_released_ids(tok, where: str = "tokenizer") -> None:
    wrong = {t: (tok.convert_tokens_to_ids(t), i) for t, i in SPECIAL_TOKENS.items() if tok.convert_tokens_to_ids(t) != i}
    if wrong:
        detail = ", ".join(f"{t} is {got} (released: {want})" for t, (got, want) in list(wrong.items())[:5])
        raise CheckpointError(f"{where}: token ids differ from the released model: {detail}")


def special_token_ids(tok) -> dict[str, int]:
    """Ids the pipeline needs: image context, [SEG], padding and the end-of-text fallback stop."""
    def one(token: str) -> int:
        i = tok.convert_tokens_to_ids(token)
        if i is None or i == tok.unk_token_id:
            raise CheckpointError(f"tokenizer has no {token!r} token")
        return int(i)

    pad = tok.pad_token_id if tok.pad_token_id is not None else one("<|endoftext|>")
    return {"img_context": one(IMG_CONTEXT), "img_start": one(IMG_START), "img_end": one(IMG_END),
            "seg": one(SEG), "vp_start": one(VP_START), "vp_end": one(VP_END),
            "pad": int(pad), "eos": int(tok.eos_token_id if tok.eos_token_id is not None else pad)}
