"""Every file of tests/data/bad_inputs gives a correct result or one EarthMindError line naming it."""
import shutil
from pathlib import Path

import pytest

from earthmind_sdk.errors import EarthMindError

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_inputs"
CASES = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file() and p.name != "README.md")
#: cases that are fine: the reader must give this result
GOOD = {
    "recipes/lr_as_yaml_string.yaml": lambda r: r.config["train"]["lr"] == 0.001,
    "rasters/png_named.jpg": lambda r: r.data.shape == (3, 96, 128),
}


def _read(case: str, tmp_path: Path):
    file = CORPUS / case
    kind = case.split("/")[0]
    if kind == "recipes":
        from earthmind_sdk.recipes import load_recipe

        return load_recipe(file), str(file)
    if kind == "rasters":
        from earthmind_sdk.io import read_raster

        return read_raster(file), str(file)
    if kind == "configs":
        from earthmind_sdk.checkpoint import load

        shutil.copy(file, tmp_path / "config.json")
        return load(tmp_path), str(tmp_path / "config.json")
    if kind == "annotations":
        from earthmind_sdk.eval.bench import EarthMindBench

        shutil.copy(file, tmp_path / "bench.json")
        return list(EarthMindBench(str(tmp_path), "bench.json")), str(tmp_path / "bench.json")
    raise AssertionError(f"no reader for {case}")


def test_corpus_has_cases_of_every_kind():
    assert {c.split("/")[0] for c in CASES} == {"recipes", "rasters", "configs", "annotations"} and len(CASES) >= 20


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_a_correct_result_or_one_line_naming_the_file(case, tmp_path):
    try:
        result, _ = _read(case, tmp_path)
    except EarthMindError as exc:
        assert case not in GOOD, f"{case} should load: {exc}"
        where = str(CORPUS / case) if case.split("/")[0] in ("recipes", "rasters") else str(tmp_path)
        msg = str(exc)
        assert where in msg and "\n" not in msg and len(msg) < 500, msg
        return
    assert case in GOOD, f"{case} was accepted silently"
    assert GOOD[case](result)
