"""Chat templates as data (the field names follow the Sa2VA/xtuner template dictionaries)."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import RecipeError


@dataclass(frozen=True)
class Template:
    name: str
    instruction: str            # one user turn, with {input}; ends where the answer begins
    suffix: str                 # closes an answer
    sep: str = "\n"
    system: str = ""            # with {system}
    stop_words: tuple[str, ...] = ()


TEMPLATES = {
    "phi3_chat": Template("phi3_chat", "<|user|>\n{input}<|end|>\n<|assistant|>\n", "<|end|>",
                          system="<|system|>\n{system}<|end|>\n", stop_words=("<|end|>",)),
    "qwen_chat": Template("qwen_chat", "<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n",
                          "<|im_end|>", system="<|im_start|>system\n{system}<|im_end|>\n",
                          stop_words=("<|im_end|>", "<|endoftext|>")),
    "internlm2_chat": Template("internlm2_chat", "<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n",
                               "<|im_end|>", system="<|im_start|>system\n{system}<|im_end|>\n",
                               stop_words=("<|im_end|>",)),
}


def get_template(name: str) -> Template:
    if name not in TEMPLATES:
        raise RecipeError(f"unknown chat template {name!r}; known: {', '.join(TEMPLATES)}")
    return TEMPLATES[name]
