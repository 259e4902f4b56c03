"""The released token ids of EarthMind-4B / Sa2VA-4B (Qwen2.5 vocabulary), as data.

Where each range comes from:

* 0..151642: Qwen2/Qwen2.5 byte-level BPE ranks (``qwen.tiktoken``, 151,643 ranks).
* 151643..151664: Qwen2.5's 22 added tokens, in the order of Qwen2.5's ``tokenizer.json``
  ``added_tokens`` / ``tokenizer_config.json`` ``added_tokens_decoder``. The first 14 are
  ``special: true``; ``<tool_call>``, ``</tool_call>``, the four ``<|fim_*|>``,
  ``<|repo_name|>`` and ``<|file_sep|>`` are ``special: false`` (kept by
  ``decode(skip_special_tokens=True)``).
* 151665..151673: InternVL2.5's additions, appended by its fine-tuning code with
  ``tokenizer.add_tokens([IMG_START, IMG_END, IMG_CONTEXT, QUAD_START, QUAD_END, REF_START,
  REF_END, BOX_START, BOX_END], special_tokens=True)``; InternVL2_5-4B's tokenizer_config
  lists ``<img>`` 151665, ``</img>`` 151666, ``<IMG_CONTEXT>`` 151667.
* 151674..151678: Sa2VA's (and EarthMind's) ``special_tokens = ['[SEG]', '<p>', '</p>',
  '<vp>', '</vp>']`` added in that order with ``special_tokens=True`` on top of InternVL2.5-4B's
  151,674-token tokenizer (Sa2VA configs ``sa2va_4b.py``; EarthMind ``earthmind_4b_sft.py``).

The language model's embedding table is larger than the tokenizer (rows up to 151,680 in the
tiny test models), so every id here has a row.
"""
from __future__ import annotations

QWEN_BASE_VOCAB = 151643
QWEN_SPECIAL = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)
#: Qwen2.5 added tokens flagged ``special: false`` in the released tokenizer.
QWEN_NOT_SPECIAL = frozenset(QWEN_SPECIAL[14:])
INTERNVL_TOKENS = ("<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>")
SA2VA_TOKENS = ("[SEG]", "<p>", "</p>", "<vp>", "</vp>")

ADDED_TOKENS = QWEN_SPECIAL + INTERNVL_TOKENS + SA2VA_TOKENS
#: token -> released id, for every added token (151643..151678).
SPECIAL_TOKENS: dict[str, int] = {tok: QWEN_BASE_VOCAB + i for i, tok in enumerate(ADDED_TOKENS)}
TOKENIZER_SIZE = QWEN_BASE_VOCAB + len(ADDED_TOKENS)  # 151679

IMG_START, IMG_END, IMG_CONTEXT = "<img>", "</img>", "<IMG_CONTEXT>"
SEG, P_START, P_END, VP_START, VP_END = SA2VA_TOKENS
IMAGE_PLACEHOLDER = "<image>"  # in prompts; replaced by the image tokens, never tokenized itself
