"""Every code block of README.md, docs/*.md and the plugin READMEs, and every recipe's header
command, runs here on the tiny model (or, where marked not-run, is checked for syntax, flags and
recipe keys). The conventions are in ``doc_examples.py``.

Extraction: ``markdown-it-py`` (already a dependency through rich/transformers' tooling in the
venv) gives each fence with its language, its line number and the HTML comment before it, in a few
lines. pytest-examples runs Python only and rewrites blocks in place for its formatter; sybil
parses per-parser regions and would need custom parsers for our shell commands and markers anyway.
The blocks run in process: Python through ``exec`` in one namespace per document, ``earthmind``
commands through ``earthmind_sdk.cli.main(argv)``; the one real subprocess is the README's main
command (the quickstart, ``EARTHMIND_SMOKE=1``), shared with ``tests/train`` through the
``quickstart_run`` fixture.
"""
import ast
import contextlib
import io
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from earthmind_sdk.cli import build_parser, main
from earthmind_sdk.recipes import load_recipe

sys.path.insert(0, str(Path(__file__).parent))
from doc_examples import (DOCS, LANGUAGES, RECIPES, ROOT, blocks, check_bash_syntax, commands,  # noqa: E402
                          earthmind_argv, recipe_commands, rewrite_models)

ALL = [b for doc in DOCS for b in blocks(doc)]
CODE = [b for b in ALL if b.lang != "text"]
RUN = [b for b in CODE if b.run]
CHECK = [b for b in CODE if not b.run]
HEADERS = [(recipe, i, cmd) for recipe in RECIPES for i, cmd in enumerate(recipe_commands(recipe))]


def parser():
    from earthmind_sdk.cli import _add_quiet

    p = build_parser()
    _add_quiet(next(a for a in p._actions if a.__class__.__name__ == "_SubParsersAction"))
    return p


def check_earthmind(argv, where):
    """Flags parse as the CLI parses them; ``run`` recipes validate with their overrides."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0 and argv == ["--version"]:
            return None  # printed the version and stopped, as it should
        raise AssertionError(f"{where}: earthmind {' '.join(argv)}: not accepted by the CLI parser") from exc
    if args is not None and args.command == "run":
        load_recipe(ROOT / args.recipe, args.overrides)  # raises RecipeError naming an unknown key or value
    return args


def test_the_docs_have_examples_and_every_block_names_its_language():
    assert len(RUN) >= 12 and len(CHECK) >= 6 and len(HEADERS) >= 10
    unnamed = [b.id for b in ALL if b.lang not in LANGUAGES]
    assert not unnamed, f"code blocks without a known language (use text for diagrams): {unnamed}"


def test_every_file_the_docs_name_exists():
    """Backticked repository paths (``benchmarks/gpu.sh``, ``recipes/map.yaml``) exist."""
    named = re.compile(r"`([\w./-]+/[\w.-]+\.(?:py|yaml|md|sh|json|tif|png|txt|toml))`")
    missing = [(doc, path) for doc in DOCS for path in named.findall((ROOT / doc).read_text(encoding="utf-8"))
               if not ((ROOT / path).exists() or (ROOT / doc).parent.joinpath(path).exists())]
    assert not missing, missing


def test_runnable_shell_blocks_hold_only_earthmind_commands():
    for block in (b for b in RUN if b.lang == "bash"):
        for words in commands(block.code):
            assert earthmind_argv(words) is not None, (
                f"{block.id}: {' '.join(words)!r} is not an earthmind command: mark the block "
                "<!-- example: not-run (why) --> or make it one")


@pytest.mark.parametrize("block", CHECK, ids=lambda b: b.id)
def test_not_run_block_is_valid(block):
    """Blocks that need real weights, a GPU, several nodes or are the install itself: syntax,
    every earthmind flag, every recipe key."""
    if block.lang == "python":
        ast.parse(block.code, filename=block.id)
    elif block.lang == "bash":
        check_bash_syntax(block.code)
        for words in commands(block.code):
            if (found := earthmind_argv(words)) is not None:
                check_earthmind(found[1], block.id)
    elif block.lang == "toml":
        tomllib.loads(block.code)
    elif block.lang == "yaml":
        yaml.safe_load(block.code)


@pytest.fixture(scope="module")
def namespaces():
    return {}


def run_python(block, namespaces):
    """Exec the Python blocks of ``block.doc`` up to ``block`` in one namespace (once each)."""
    ns, done = namespaces.setdefault(block.doc, ({"__name__": "doc_example"}, set()))
    for earlier in (b for b in RUN if b.doc == block.doc and b.lang == "python" and b.line <= block.line):
        if earlier.line not in done:
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(earlier.code, earlier.id, "exec"), ns)  # noqa: S102 - our own documentation
            done.add(earlier.line)
            ns.setdefault("__printed__", {})[earlier.line] = printed.getvalue()
    return ns


@pytest.mark.parametrize("block", RUN, ids=lambda b: b.id)
def test_runnable_block_runs(block, workspace, quickstart_run, namespaces, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    if block.lang == "python":
        run_python(block, namespaces)
    elif block.lang == "bash":
        for words in commands(block.code):
            env, argv = earthmind_argv(words)
            for key, value in env.items():
                monkeypatch.setenv(key, value)
            argv = rewrite_models(argv)
            check_earthmind(argv, block.id)
            if argv == ["run", "recipes/quickstart.yaml"]:
                assert quickstart_run[1].returncode == 0  # the shared subprocess run behind ``workspace``
                continue
            try:
                code = main(argv)
            except SystemExit as exc:  # --version stops the parser
                code = exc.code
            out, err = capsys.readouterr()
            assert code == 0, f"{block.id}: earthmind {' '.join(argv)} -> exit {code}\n{err[-2000:]}"
            assert out.strip(), f"{block.id}: earthmind {' '.join(argv)} printed nothing"
    elif block.lang == "toml":
        tomllib.loads(block.code)
    elif block.lang == "yaml":
        yaml.safe_load(block.code)


def readme_python_example():
    return next(b for b in RUN if b.doc == "README.md" and b.lang == "python")


def test_readme_python_example_prints_an_answer_per_sample(workspace, namespaces, monkeypatch):
    """The README's front-door example (three samples, one with an empty question) on the
    quickstart's model, as a user runs it after the quickstart: one printed line per result."""
    monkeypatch.chdir(workspace)
    first = readme_python_example()
    ns = run_python(first, namespaces)
    results = ns["results"]
    assert len(results) == 3 and all(isinstance(r.answer, str) for r in results)
    printed = ns["__printed__"][first.line].splitlines()
    assert len(printed) == 3 and all(line.startswith(r.answer) for line, r in zip(printed, results))
    assert all(set(r.fusion_weights) == {"sar", "optical"} for r in results)


def test_readme_python_example_prints_masks(workspace, seg_paired_checkpoint, monkeypatch):
    """The same block with its checkpoint path pointed at a model that learned to segment: the
    segmentation sample gets a boolean mask on the SAR input's grid, and its count is printed."""
    monkeypatch.chdir(workspace)
    code = readme_python_example().code
    assert '"out/quickstart/checkpoint"' in code
    ns, printed = {"__name__": "doc_example"}, io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code.replace('"out/quickstart/checkpoint"', repr(str(seg_paired_checkpoint))),  # noqa: S102
                     "README.md", "exec"), ns)
    seg = ns["results"][1]
    assert "[SEG]" in seg.answer and seg.parsed.value == len(seg.masks) >= 1
    assert all(m.dtype == bool and m.shape == (48, 48) for m in seg.masks)
    assert f" {len(seg.masks)} {{'sar'" in printed.getvalue().splitlines()[1]  # answer, value, mask count, weights


@pytest.mark.parametrize("recipe,index,command", HEADERS, ids=[f"{r}#{i}" for r, i, _ in HEADERS])
def test_recipe_header_command(recipe, index, command, workspace, monkeypatch, capsys):
    """The first header command of a recipe that runs on CPU runs (EARTHMIND_SMOKE=1); the others,
    and those needing real weights, GPUs or torchrun, are validated with ``--dry-run``."""
    monkeypatch.chdir(workspace)
    words = commands(command)[0]
    env, argv = earthmind_argv(words)
    args = check_earthmind(argv, recipe)
    if args.command == "infer":  # what to try on the job's output
        assert main(argv) == 0, capsys.readouterr().err[-2000:]
        assert capsys.readouterr().out.strip()
        return
    assert argv[:2] == ["run", recipe], f"{recipe}: header command {command!r} runs another recipe"
    resolved = load_recipe(ROOT / recipe, args.overrides).config
    runs_here = index == 0 and words[0] != "torchrun" and resolved["model"]["device"] == "cpu"
    if recipe == "recipes/quickstart.yaml" and runs_here:
        return  # it is the quickstart_run fixture behind ``workspace``, checked in tests/train
    monkeypatch.setenv("EARTHMIND_SMOKE", "1")
    code = main(argv if runs_here else [*argv, "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, f"{recipe}: {command} -> exit {code}\n{err[-2000:]}"
    assert out.strip()
