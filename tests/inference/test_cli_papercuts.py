"""Newcomer papercuts, each through the real command line: in-process ``main(argv)`` for most,
the installed console script (subprocess) where the process environment matters."""
import importlib.metadata as md
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

import earthmind_sdk
from earthmind_sdk.cli import main
from earthmind_sdk.jobs import read_jsonl

DATA = Path(__file__).resolve().parents[1] / "data"
S1 = DATA / "sentinel1_synthetic_vv_vh.tif"
S2 = DATA / "sentinel2_b02_b03_b04_b08.tif"
OPTICAL = DATA / "optical_rmnp_rgb.tif"
EARTHMIND = Path(sys.executable).with_name("earthmind")


def cli(capsys, *argv):
    """(exit code, stdout, stderr) of ``earthmind *argv`` run in this process."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse and --version exit
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    return lines[0]


def subprocess_cli(*args, env_extra=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1", **(env_extra or {}))
    return subprocess.run([str(EARTHMIND), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


# -- 1. colours from band names ----------------------------------------------------------------
def test_infer_shows_sentinel2_in_true_colour(capsys, tmp_path):
    code, out, err = cli(capsys, "infer", "--image", S2, "--max-new-tokens", 1, "--json", "--out", tmp_path, "What is here?")
    assert code == 0, err
    assert json.loads(out)["composites"] == {"optical": "B04+B03+B02"}


def test_infer_ambiguous_bands_ask_for_rgb_and_the_answer_works(capsys, tmp_path):
    with rasterio.open(S2) as src:
        data, profile = src.read([1, 2, 3]), dict(src.profile, count=3)
    path = tmp_path / "bands.tif"
    with rasterio.open(path, "w", **profile) as dst:  # B2, B3, B4 and no product metadata
        dst.write(data)
        for i, name in enumerate(("B2", "B3", "B4"), start=1):
            dst.set_band_description(i, name)
    code, _, err = cli(capsys, "infer", "--image", path, "--max-new-tokens", 1, "q")
    line = one_error_line(err)
    assert code == 2 and "--image-opt rgb=B4,B3,B2" in line
    code, out, err = cli(capsys, "infer", "--image", path, "--image-opt", "rgb=B4,B3,B2", "--max-new-tokens", 1,
                         "--json", "--out", tmp_path / "o", "q")
    assert code == 0, err
    assert json.loads(out)["composites"] == {"optical": "B4+B3+B2"}


def test_infer_says_which_unnamed_bands_it_used(capsys, tmp_path):
    path = tmp_path / "four.tif"
    with rasterio.open(path, "w", driver="GTiff", count=4, height=16, width=16, dtype="uint16", crs="EPSG:32633",
                       transform=rasterio.Affine(10, 0, 0, 0, -10, 0)) as dst:
        dst.write(np.random.default_rng(0).integers(1, 4000, (4, 16, 16)).astype("uint16"))
    code, _, err = cli(capsys, "infer", "--image", path, "--max-new-tokens", 1, "--out", tmp_path / "o", "q")
    assert code == 0, err
    [line] = [ln for ln in err.splitlines() if "warning" in ln]
    assert line.startswith("earthmind infer: warning:") and "band 4 (band4) ignored" in line


# -- 2. devices and precisions -----------------------------------------------------------------
def test_cuda_without_a_gpu_is_one_line(monkeypatch, capsys, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = cli(capsys, "infer", "--image", OPTICAL, "--device", "cuda", "q")
    assert code == 2 and "no GPU is visible" in one_error_line(err)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"job: infer\nsamples: [{{images: {{optical: {OPTICAL}}}, question: q}}]\n")
    code, _, err = cli(capsys, "run", recipe, "model.device=cuda:0", f"output.dir={tmp_path / 'out'}")
    line = one_error_line(err)
    assert code == 2 and "model.device" in line and "no GPU is visible" in line
    assert not (tmp_path / "out").exists()  # refused before the job made anything
    code, out, err = cli(capsys, "run", recipe, "model.device=cuda:0", "--dry-run")
    assert code == 0 and "device: cuda:0" in out  # a GPU recipe can still be checked on a laptop


def test_missing_gpu_index_and_unknown_device_are_one_line(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    code, _, err = cli(capsys, "infer", "--image", OPTICAL, "--device", "cuda:3", "q")
    assert code == 2 and "shows 1 GPU(s)" in one_error_line(err)
    code, _, err = cli(capsys, "infer", "--image", OPTICAL, "--device", "gpu", "q")
    assert code == 2 and "unknown device 'gpu'" in one_error_line(err)


def test_cuda_hidden_from_the_console_script():
    res = subprocess_cli("infer", "--image", OPTICAL, "--device", "cuda", "q", env_extra={"CUDA_VISIBLE_DEVICES": ""})
    assert res.returncode == 2 and "no GPU is visible" in one_error_line(res.stderr)


def test_float16_refused_on_cpu_bfloat16_allowed(capsys, tmp_path):
    code, _, err = cli(capsys, "infer", "--image", OPTICAL, "--dtype", "float16", "q")
    assert code == 2 and "float16 on CPU" in one_error_line(err)
    code, out, err = cli(capsys, "infer", "--image", OPTICAL, "--dtype", "bfloat16", "--max-new-tokens", 2,
                         "--json", "--out", tmp_path, "q")
    assert code == 0, err
    assert "answer" in json.loads(out)


# -- 3. --version ------------------------------------------------------------------------------
def test_version_lists_sdk_and_plugin_distributions():
    res = subprocess_cli("--version")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"earthmind-sdk {earthmind_sdk.__version__}"
    installed = {ep.dist.metadata["Name"]: ep.dist.version for ep in md.entry_points(group="earthmind")}
    assert installed  # the sar and multispectral plugins are installed in the test environment
    for dist, version in installed.items():
        assert any(ln.startswith(f"{dist} {version}") for ln in lines[1:]), (dist, lines)


# -- 4. capped lists ---------------------------------------------------------------------------
def test_many_band_raster_error_is_capped(capsys, tmp_path):
    path = tmp_path / "cube.tif"
    with rasterio.open(path, "w", driver="GTiff", count=128, height=4, width=4, dtype="uint16", crs="EPSG:32633",
                       transform=rasterio.Affine(10, 0, 0, 0, -10, 0)) as dst:
        dst.write(np.ones((128, 4, 4), np.uint16))
    code, _, err = cli(capsys, "infer", "--image", path, "q")
    line = one_error_line(err)
    assert code == 2 and "… and 118 more" in line and "band128" not in line and len(line) < 400


# -- 6. choosing the sensor of an input -------------------------------------------------------
def test_dual_pol_sar_suggests_sentinel1_then_works_with_it(capsys, tmp_path):
    code, _, err = cli(capsys, "infer", "--model", "tiny-paired", "--image", S2, "--sar", S1, "q")
    assert code == 2 and "--sar-sensor sentinel1" in one_error_line(err)
    code, out, err = cli(capsys, "infer", "--model", "tiny-paired", "--image", S2, "--sar", S1,
                         "--sar-sensor", "sentinel1", "--sar-opt", "composite=vv_vh_ratio", "--sar-opt", "speckle_filter=lee",
                         "--max-new-tokens", 1, "--json", "--out", tmp_path, "q")
    assert code == 0, err
    assert json.loads(out)["composites"] == {"sar": "vv_vh_ratio", "optical": "B04+B03+B02"}


def test_sensor_choice_errors_are_one_line(capsys):
    base = ("infer", "--model", "tiny-paired", "--image", S2, "--sar", S1, "--max-new-tokens", 1)
    code, _, err = cli(capsys, *base, "--sar-sensor", "sentinel2", "q")
    line = one_error_line(err)
    assert code == 2 and "reads multispectral images" in line and "expects a sar sensor" in line
    code, _, err = cli(capsys, *base, "--sar-sensor", "sentinel1", "--sar-opt", "colour=red", "q")
    assert code == 2 and "no option(s) colour" in one_error_line(err)
    code, _, err = cli(capsys, *base, "--sar-sensor", "sentinl1", "q")
    assert code == 2 and "did you mean 'sentinel1'" in one_error_line(err)
    code, _, err = cli(capsys, "infer", "--image", OPTICAL, "--sar-sensor", "sentinel1", "q")
    assert code == 2 and "--sar-sensor given without --sar" in one_error_line(err)


def test_recipe_and_python_take_the_same_sensor_keys(capsys, tmp_path):
    recipe = tmp_path / "pair.yaml"
    recipe.write_text(
        "job: infer\nmodel: {spec: tiny-paired}\nmax_new_tokens: 1\n"
        f"output: {{dir: {tmp_path / 'res'}}}\n"
        "samples:\n"
        f"  - images: {{sar: {S1}, optical: {S2}}}\n"
        "    sensors: {sar: {name: sentinel1, args: {composite: vv_vh_ratio}}}\n"
        "    question: q\n"
    )
    code, _, err = cli(capsys, "run", recipe)
    assert code == 0, err
    row = next(read_jsonl(tmp_path / "res" / "answers.jsonl"))
    assert row["composites"]["sar"] == "vv_vh_ratio"

    from earthmind_sdk.contracts import Sample
    from earthmind_sdk.inference import Pipeline
    from earthmind_sdk.jobs.open_model import open_model

    pipe = Pipeline(*open_model("tiny-paired"))
    result = pipe(Sample(images={"sar": str(S1), "optical": str(S2)}, prompt="q",
                         sensors={"sar": {"name": "sentinel1", "args": {"composite": "vv_vh_ratio"}}}), max_new_tokens=1)
    assert result.composites["sar"] == "vv_vh_ratio"
