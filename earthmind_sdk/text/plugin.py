"""Built-in chat templates, registered through the ``register_templates`` hook like a plugin's.

Templates are plain data in a module with no heavy imports, so they are registered as objects.
"""
from earthmind_sdk.hookspecs import hookimpl

_DESCRIPTIONS = {
    "phi3_chat": "Phi-3 turns (<|user|> ... <|end|>); the template EarthMind and Sa2VA checkpoints name",
    "phi3_chat_train": "phi3_chat as the released training data lays it out (no newline before <|assistant|>)",
    "qwen_chat": "Qwen ChatML turns (<|im_start|> ... <|im_end|>)",
    "internlm2_chat": "InternLM2 ChatML turns (<|im_start|> ... <|im_end|>)",
    "internlm_chat": "InternLM turns (<|User|>: ... <eoh>, answer ends <eoa>)",
    "llama3_chat": "Llama 3 header turns (<|start_header_id|> ... <|eot_id|>)",
    "vicuna": "Vicuna USER: / ASSISTANT: turns with its system sentence",
    "zephyr": "Zephyr turns (<|user|>, <|assistant|>)",
    "default": "xtuner's default turns (<|User|>:, <|Bot|>:)",
    "gemma": "Gemma turns (<start_of_turn>user ... <end_of_turn>)",
}


@hookimpl
def register_templates(register):
    from .template import TEMPLATES

    for name, template in TEMPLATES.items():
        register(name, template, description=_DESCRIPTIONS[name])
