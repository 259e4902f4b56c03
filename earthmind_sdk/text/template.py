"""Chat templates as data, with the field meanings of the xtuner template dictionaries that
Sa2VA and EarthMind name in their checkpoints (``config.json`` ``template``, e.g. "phi3_chat").

A turn is ``instruction.format(input=...)``, then the answer, then ``suffix`` (the end-of-turn
text; with ``suffix_as_eos`` it ends generation), then ``sep`` before the next turn.
Generation stops at any of ``stop_words``; ``<|end|>`` is plain text for the Qwen2.5
tokenizer (several BPE tokens), so stopping is on decoded text.

Quirk kept as its own entry: the released EarthMind/Sa2VA training datasets overwrite the
phi3 instruction with ``'<|user|>\\n{input}<|end|><|assistant|>\\n'`` (no newline before
``<|assistant|>``), while inference uses the template's own instruction; ``phi3_chat_train``
reproduces the training layout.

:data:`TEMPLATES` are the built-in ones; they and a plugin's reach :func:`get_template` through
the ``register_templates`` hook (:mod:`earthmind_sdk.text.plugin`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import PluginError, RecipeError, name_list


@dataclass(frozen=True)
class Template:
    name: str
    instruction: str            # one user turn, with {input}; ends where the answer begins
    suffix: str = ""            # closes an answer
    sep: str = "\n"             # between a closed answer and the next turn
    system: str = ""            # with {system}
    stop_words: tuple[str, ...] = ()
    suffix_as_eos: bool = False

    def format_turn(self, text: str, round: int = 1) -> str:
        return self.instruction.format(input=text, round=round)


_IM = dict(system="<|im_start|>system\n{system}<|im_end|>\n",
           instruction="<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n", suffix="<|im_end|>",
           suffix_as_eos=True)

TEMPLATES: dict[str, Template] = {t.name: t for t in (
    Template("phi3_chat", "<|user|>\n{input}<|end|>\n<|assistant|>\n", "<|end|>", system="<|system|>\n{system}<|end|>\n",
             stop_words=("<|end|>",), suffix_as_eos=True),
    Template("phi3_chat_train", "<|user|>\n{input}<|end|><|assistant|>\n", "<|end|>", sep="",
             system="<|system|>\n{system}<|end|>\n", stop_words=("<|end|>",), suffix_as_eos=True),
    Template("qwen_chat", **_IM, stop_words=("<|im_end|>", "<|endoftext|>")),
    Template("internlm2_chat", **_IM, stop_words=("<|im_end|>",)),
    Template("internlm_chat", "<|User|>:{input}<eoh>\n<|Bot|>:", "<eoa>", system="<|System|>:{system}\n",
             stop_words=("<eoa>",), suffix_as_eos=True),
    Template("llama3_chat", "<|start_header_id|>user<|end_header_id|>\n\n{input}<|eot_id|>"
             "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>", sep="",
             system="<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>", stop_words=("<|eot_id|>",),
             suffix_as_eos=True),
    Template("vicuna", "USER: {input} ASSISTANT:", system="A chat between a curious user and an artificial "
             "intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's "
             "questions. {system}\n "),
    Template("zephyr", "<|user|>\n{input}\n<|assistant|>\n", system="<|system|>\n{system}\n"),
    Template("default", "<|User|>:{input}\n<|Bot|>:", system="<|System|>:{system}\n"),
    Template("gemma", "<start_of_turn>user\n{input}<end_of_turn>\n<start_of_turn>model\n", "<end_of_turn>",
             system="<start_of_turn>system\n{system}<end_of_turn>\n", stop_words=("<end_of_turn>",)),
)}


def get_template(name: str) -> Template:
    """A registered template by name; "phi3-chat" (as some checkpoints spell it) is "phi3_chat"."""
    from ..plugins import registry

    templates = registry("templates")
    key = str(name).strip().replace("-", "_")
    if key not in templates:
        raise RecipeError(f"unknown chat template {str(name)[:80]!r}; known: {name_list(templates.names())}")
    found = templates.get(key)
    if not isinstance(found, Template):
        raise PluginError(f"chat template {key!r} from plugin {templates.entry(key).owner!r} is a "
                          f"{type(found).__name__}, not a earthmind_sdk.text.template.Template")
    return found
