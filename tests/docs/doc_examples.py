"""Extract and run the code blocks of the documentation (used by ``test_examples.py``).

Conventions for documentation authors (also summarised in the README's "Test" section):

- Every fenced block names its language. ``text`` blocks (diagrams, folder trees) are not code
  and are skipped; ``python``, ``bash``, ``toml`` and ``yaml`` blocks are checked.
- A block runs unless an HTML comment directly before it says otherwise:
  ``<!-- example: not-run (why) -->``. Such a block is only checked: bash syntax (``bash -n``),
  every ``earthmind`` command parsed by ``earthmind_sdk.cli.build_parser()`` and, for
  ``earthmind run``, the recipe loaded with its overrides by the recipe validator; Python is
  compiled.
- Runnable blocks run in a scratch folder (``workspace``) that holds ``recipes/``, ``tests/``,
  the quickstart's ``out/quickstart`` and every input file the docs name (``INPUTS`` below).
  Model paths under ``/models/`` are the only rewrite: ``MODELS`` maps each to a tiny stand-in.
- The Python blocks of one file share one namespace, in order (a later block may use ``pipe``).
"""
from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "docs/plugins.md", "plugins/sar/README.md", "plugins/multispectral/README.md",
        "kernels/README.md")
RECIPES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "recipes").rglob("*.yaml"))
LANGUAGES = {"python", "bash", "toml", "yaml", "text"}
MARK = re.compile(r"<!--\s*example:\s*not-run\s*\((?P<why>[^)]+)\)\s*-->")

#: The released checkpoints the docs name -> the tiny stand-in that runs here (a path or spec name).
MODELS = {"/models/EarthMind4B_multi": "out/quickstart/checkpoint",  # paired SAR + optical (quickstart-trained)
          "/models/EarthMind-4B": "tiny"}                            # optical (random weights)


@dataclass(frozen=True)
class Block:
    doc: str
    line: int        # 1-based line of the opening fence
    lang: str
    code: str
    run: bool
    why: str         # reason it does not run ("" when it runs)

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(doc: str) -> list[Block]:
    """Fenced code blocks of ``doc`` (relative to the repository root), with their run marker."""
    tokens = MarkdownIt("commonmark").parse((ROOT / doc).read_text(encoding="utf-8"))
    found, previous = [], None
    for token in tokens:
        if token.type == "fence":
            mark = MARK.search(previous.content) if previous is not None and previous.type == "html_block" else None
            found.append(Block(doc, token.map[0] + 1, token.info.strip().split(" ")[0], token.content,
                               mark is None, mark.group("why") if mark else ""))
        if token.type in ("fence", "html_block", "paragraph_open", "heading_open", "bullet_list_open", "table_open"):
            previous = token
    return found


def commands(shell: str) -> list[list[str]]:
    """Logical command lines of a shell block: continuations joined, comments dropped, words split."""
    joined = re.sub(r"\\\n", " ", shell)
    return [words for line in joined.splitlines() if (words := shlex.split(line, comments=True))]


def recipe_commands(recipe: str) -> list[str]:
    """Commands in a recipe's header comment (``# Run: earthmind run ...`` and continuations)."""
    header = []
    for line in (ROOT / recipe).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("#").strip())
    text = re.sub(r"\\\n\s*", " ", "\n".join(header))
    found = []
    for line in text.splitlines():
        if (match := HEADER_COMMAND.search(line)) is not None:
            found.append(line[match.start():].split("   ")[0].strip())  # after 3 spaces: a comment
    return found


HEADER_COMMAND = re.compile(r"torchrun |(?:[A-Z_]+=\S+ )*earthmind (?:run|infer) ")


def earthmind_argv(words: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """``ENV=1 earthmind a b`` -> ({ENV: 1}, [a, b]); ``torchrun ... $(which earthmind) a b`` too.
    ``...`` (the docs' "more of the same") is dropped. None when the line runs no ``earthmind``."""
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    for i, word in enumerate(words):
        if word in ("earthmind", "earthmind)"):  # plain, or ``$(which earthmind)`` split by shlex
            return env, [w for w in words[i + 1:] if w != "..."]
    return None


def check_bash_syntax(code: str) -> None:
    res = subprocess.run(["bash", "-n"], input=code, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def rewrite_models(argv: list[str]) -> list[str]:
    return [MODELS.get(word, word) for word in argv]
