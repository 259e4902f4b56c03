"""The package layering is a rule, checked on the source: every ``import`` of every module
(function-local ones included, parsed with :mod:`ast`, nothing imported) goes to its own layer
or a lower one, and the README's architecture table names every package with its layer.

Layers, bottom up (the README's architecture section says the same):

0 core      contracts, errors, registry, hookspecs, plugins, schema, devices, recipes, _version
1 data      io, sensors, text, tasks
2 model     model (graph, build, spec, batching, encoders, fusion; specs in configs/)
3 jobs      checkpoint, jobs, inference, eval, train, plots
4 entry     cli, __main__, and the package's own __init__ (the lazy ``load`` / ``save``)

Inside the jobs layer: ``eval`` does not import ``train``, ``inference`` imports neither
``eval`` nor ``train``, ``checkpoint`` imports none of the three.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "earthmind_sdk"

LAYERS: dict[str, int] = {
    "_version": 0, "contracts": 0, "errors": 0, "registry": 0, "hookspecs": 0, "plugins": 0,
    "schema": 0, "devices": 0, "recipes": 0,
    "io": 1, "sensors": 1, "text": 1, "tasks": 1,
    "model": 2, "configs": 2,
    "checkpoint": 3, "jobs": 3, "inference": 3, "eval": 3, "train": 3, "plots": 3,
    "cli": 4, "__main__": 4, "__init__": 4,
    "assets": 0,  # package data (the tokenizer files), no code
}
LAYER_NAMES = ("core", "data", "model", "jobs", "entry")
#: imports forbidden inside a layer, importer -> what it must not import
APART: dict[str, set[str]] = {"eval": {"train"}, "inference": {"eval", "train"},
                              "checkpoint": {"inference", "eval", "train"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of everything ``source`` (the text of ``module``) imports, anywhere in it.
    ``from X import a`` yields ``X.a`` as well as ``X`` (``a`` may be a submodule or a name in X)."""
    out: set[str] = set()
    here = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module:  # ``from . import a`` imports ``a``, not more of the package than any import does
                out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)
    return out


def top_part(name: str) -> str | None:
    """``earthmind_sdk.model.graph`` -> ``model``; ``earthmind_sdk`` itself -> ``__init__``;
    None outside the package."""
    parts = name.split(".")
    if parts[0] != "earthmind_sdk":
        return None
    if len(parts) > 1 and (parts[1] in LAYERS or (PKG / parts[1]).exists() or (PKG / f"{parts[1]}.py").exists()):
        return parts[1]
    return "__init__"  # the package itself, or a name from its __init__ (``from . import __version__``)


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """One line per package that ``module`` must not import and does."""
    own = top_part(module)
    bad, seen = [], set()
    for name in sorted(imported(source, module, is_package)):
        other = top_part(name)
        if other is None or other == own or other in seen:
            continue
        seen.add(other)
        if other not in LAYERS:
            bad.append(f"{module} imports {name}: {other!r} has no layer (add it to LAYERS and the README)")
        elif LAYERS[other] > LAYERS[own]:
            bad.append(f"{module} ({LAYER_NAMES[LAYERS[own]]}) imports {name} ({LAYER_NAMES[LAYERS[other]]})")
        elif other in APART.get(own, ()):
            bad.append(f"{module} imports {name}: {own} must not import {other}")
    return bad


def modules():
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def parts_of_package() -> set[str]:
    """Every top-level module and folder of earthmind_sdk, and every sub-package (a folder
    with ``__init__.py``), as README-style paths relative to ``earthmind_sdk/``."""
    found = {p.stem for p in PKG.glob("*.py")} | {p.name + "/" for p in PKG.iterdir()
                                                  if p.is_dir() and p.name != "__pycache__"}
    found |= {str(p.parent.relative_to(PKG)) + "/" for p in PKG.rglob("*/*/__init__.py")}
    return found


def test_every_module_keeps_to_its_layer():
    bad = []
    for path in modules():
        bad += violations(path.read_text(), module_name(path), path.name == "__init__.py")
    assert not bad, "\n".join(bad)


def test_every_top_level_part_has_a_layer():
    tops = {p.split("/")[0] for p in parts_of_package()}
    assert tops == set(LAYERS), f"without a layer: {sorted(tops - set(LAYERS))}; stale: {sorted(set(LAYERS) - tops)}"


@pytest.mark.parametrize("module, source", [
    ("earthmind_sdk.model.extra", "import torch\ndef f():\n    from ..inference.pipeline import Pipeline\n"),
    ("earthmind_sdk.io.extra", "from earthmind_sdk.jobs import atomic_path\n"),
    ("earthmind_sdk.contracts.extra", "from ..train import data\n"),
    ("earthmind_sdk.sensors.extra", "if True:\n    import earthmind_sdk.eval.records\n"),
    ("earthmind_sdk.text.extra", "class A:\n    def m(self):\n        from ..model import graph\n"),
    ("earthmind_sdk.eval.extra", "from ..train.data import SyntheticScenes\n"),
    ("earthmind_sdk.inference.extra", "def f():\n    from ..eval.records import score_rows\n"),
    ("earthmind_sdk.checkpoint.extra", "from ..train.trainer import Trainer\n"),
    ("earthmind_sdk.jobs.extra", "from .. import __version__\n"),
])
def test_a_violating_import_is_caught(module, source):
    assert len(violations(source, module)) == 1


@pytest.mark.parametrize("module, source", [
    ("earthmind_sdk.model.extra", "from ..contracts import Sample\nfrom ..sensors.choice import build_sensor\n"),
    ("earthmind_sdk.train.extra", "from ..eval.records import score_rows\nfrom ..jobs import announce\n"),
    ("earthmind_sdk.jobs.extra", "def f():\n    from ..train.trainer import Trainer\n"),
    ("earthmind_sdk.cli", "from . import __version__\nimport numpy\n"),
    ("earthmind_sdk.jobs.extra", "from .._version import __version__\n"),
])
def test_an_allowed_import_passes(module, source):
    assert violations(source, module) == []


def test_the_contracts_import_neither_numpy_nor_torch():
    """Core contracts are plain dataclasses: sensors and plugins can be listed without torch."""
    code = ("import sys, earthmind_sdk.contracts as c\n"
            "assert c.Sample and c.Result and c.Record and c.Raster\n"
            "print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr


# -- the README's architecture section --------------------------------------------------------

def architecture_rows(readme: str) -> list[tuple[str, set[str]]]:
    """(layer, paths) per row of the table under ``## Architecture``: the backticked entries of
    the "where" column, relative to ``earthmind_sdk/``, with ``{a,b}.py`` expanded."""
    section = readme.split("\n## Architecture", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] not in LAYER_NAMES:
            continue  # the header, the rule line, or a row of the table of what lies outside the package
        paths = set()
        for item in re.findall(r"`([^`]+)`", cells[1]):
            item = item.removeprefix("earthmind_sdk/")
            brace = re.fullmatch(r"(.*)\{([^}]*)\}(.*)", item)
            paths |= {brace[1] + x + brace[3] for x in brace[2].split(",")} if brace else {item}
        rows.append((cells[0], paths))
    return rows


def missing_from_table(rows, parts: set[str]) -> list[str]:
    """Parts not named in the table (``x`` matches ``x.py``), or named under the wrong layer."""
    where = {}
    for layer, paths in rows:
        for p in paths:
            where[p.removesuffix(".py")] = layer
    out = []
    for part in sorted(parts):
        layer = LAYER_NAMES[LAYERS[part.split("/")[0]]]
        if part not in where:
            out.append(f"{part}: not in the README's architecture table")
        elif where[part] != layer:
            out.append(f"{part}: README says layer {where[part]!r}, the code {layer!r}")
    return out


def test_readme_architecture_table_lists_every_package_in_its_layer():
    rows = architecture_rows((ROOT / "README.md").read_text())
    assert rows, "no table under ## Architecture"
    assert missing_from_table(rows, parts_of_package()) == []
    named = {p.removesuffix(".py") for _, paths in rows for p in paths}
    stale = {p for p in named if not (PKG / p).exists() and not (PKG / f"{p}.py").exists()}
    assert not stale, f"the README's architecture table names what does not exist: {sorted(stale)}"


def test_a_package_missing_from_the_table_is_caught():
    rows = [("core", {"contracts/", "errors.py"}), ("model", {"model/", "model/fusion/"})]
    assert missing_from_table(rows, {"contracts/", "errors", "model/", "model/fusion/"}) == []
    assert missing_from_table(rows, {"contracts/", "errors", "model/", "model/fusion/", "model/encoders/"}) == [
        "model/encoders/: not in the README's architecture table"]
    wrong = [("data", {"model/"})]
    assert missing_from_table(wrong, {"model/"}) == ["model/: README says layer 'data', the code 'model'"]
