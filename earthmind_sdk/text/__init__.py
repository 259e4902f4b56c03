"""The text side: tokenizer with the released token ids, chat templates, prompt layout.

Importing this package loads no transformers; the tokenizer functions import it when called.
"""
from .prompt import PromptBuilder, build_prompt, image_placeholder, region_text
from .template import TEMPLATES, Template, get_template
from .tokenizer import build_qwen_tokenizer, default_tokenizer, load_tokenizer, special_token_ids
from .tokens import SPECIAL_TOKENS

__all__ = ["PromptBuilder", "build_prompt", "image_placeholder", "region_text", "TEMPLATES", "Template",
           "get_template", "build_qwen_tokenizer", "default_tokenizer", "load_tokenizer", "special_token_ids",
           "SPECIAL_TOKENS"]
