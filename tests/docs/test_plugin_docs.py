"""Every plugin hook has its own section in docs/plugins.md, with an example that is real plugin
code: it compiles, and registered as a plugin it fills that hook's kind with a described entry.
A hook added to ``hookspecs`` without its section fails here."""
import types
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from earthmind_sdk import hookspecs
from earthmind_sdk.plugins import PluginSystem

ROOT = Path(__file__).resolve().parents[2]
DOC = "docs/plugins.md"
HOOKS = sorted(name for name, fn in vars(hookspecs).items() if hasattr(fn, f"{hookspecs.PROJECT}_spec"))


def sections() -> dict[str, list[tuple[int, str]]]:
    """Level-3 heading text -> the (line, code) of the Python blocks under it."""
    tokens = MarkdownIt("commonmark").parse((ROOT / DOC).read_text(encoding="utf-8"))
    found: dict[str, list[tuple[int, str]]] = {}
    current = None
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            current = tokens[i + 1].content.strip("` ") if token.tag == "h3" else None
            if current is not None:
                found[current] = []
        elif token.type == "fence" and current is not None and token.info.strip() == "python":
            found[current].append((token.map[0] + 1, token.content))
    return found


def test_hooks_are_found():
    assert len(HOOKS) == 12 and "register_jobs" in HOOKS and "register_architectures" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_whose_example_registers(hook):
    found = sections()
    assert hook in found, f"{DOC} has no '### `{hook}`' section: document the hook with an example"
    assert found[hook], f"{DOC}: the {hook} section has no python example"
    ns = {"__name__": f"doc_{hook}", "hookimpl": hookspecs.hookimpl}
    for line, code in found[hook]:
        exec(compile(code, f"{DOC}:{line}", "exec"), ns)  # noqa: S102 - our own documentation
    assert hook in ns, f"{DOC}: the {hook} section's example defines no {hook} function"
    plugin = types.ModuleType(f"doc_{hook}")
    plugin.__dict__.update({hook: ns[hook]})
    info = PluginSystem(entry_points=[], builtins=()).register_plugin("doc-example", plugin)
    kind = hook.removeprefix("register_")
    assert info.error is None and info.hooks == [hook]
    assert list(info.components) == [kind] and info.components[kind]
    assert all(info.descriptions[kind].values())
