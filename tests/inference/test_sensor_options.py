"""Sensor options on the command line: a checkpoint's declared sensor options reach
``earthmind infer``, ``--sar-opt`` overrides them, and ``--min-overlap`` (the flag the pair
overlap error names) changes what a pair must cover."""
import json
from pathlib import Path

import pytest
import rasterio
import torch

from earthmind_sdk.checkpoint import save
from earthmind_sdk.model.graph import build_model
from earthmind_sdk.model.spec import load_spec
from earthmind_sdk.text.tokenizer import default_tokenizer

from .test_cli_papercuts import S1, S2, cli, one_error_line


@pytest.fixture(scope="module")
def vv_checkpoint(tmp_path_factory):
    """A tiny paired checkpoint whose SAR input reads the VV band of a dual-pol file."""
    raw = load_spec("tiny-paired").to_dict()
    raw.update(sensors=[{"name": "sar", "args": {"band": "VV"}}, "optical"], decoder=None)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "vv"
    save(build_model(raw).eval(), path, tokenizer=default_tokenizer())
    return path


def test_checkpoint_sensor_options_reach_the_cli_and_flags_override_them(capsys, tmp_path, vv_checkpoint):
    base = ("infer", "--model", vv_checkpoint, "--image", S2, "--sar", S1, "--max-new-tokens", 1, "--out", tmp_path)
    # the generic sar sensor refuses a dual-pol file unless told which band: the checkpoint tells it
    code, out, err = cli(capsys, *base, "--json", "q")
    assert code == 0, err
    assert json.loads(out)["composites"]["sar"] == "grey"
    code, _, err = cli(capsys, *base, "--sar-opt", "band=HH", "q")  # the flag wins over the declaration
    assert code == 2 and "no band 'HH'" in one_error_line(err)


def _shifted_copy(src: Path, dst: Path, dx_pixels: int) -> Path:
    with rasterio.open(src) as ds:
        profile, data, t = ds.profile, ds.read(), ds.transform
        descriptions = ds.descriptions
    profile["transform"] = rasterio.Affine(t.a, t.b, t.c + dx_pixels * t.a, t.d, t.e, t.f)
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data)
        out.descriptions = descriptions
    return dst


def test_min_overlap_flag_is_the_one_the_error_names(capsys, tmp_path):
    edge = _shifted_copy(S2, tmp_path / "edge.tif", 72)  # covers a quarter of the SAR footprint
    base = ("infer", "--model", "tiny-paired", "--sar", S1, "--sar-sensor", "sentinel1", "--image", edge,
            "--max-new-tokens", 1, "--out", tmp_path, "--json")
    code, _, err = cli(capsys, *base, "q")
    line = one_error_line(err)
    assert code == 2 and "covers only 25%" in line and "--min-overlap" in line
    code, out, err = cli(capsys, *base, "--min-overlap", "0.2", "q")
    assert code == 0, err
    assert json.loads(out)["answer"] is not None
    code, _, err = cli(capsys, *base, "--min-overlap", "1.5", "q")
    assert code == 2 and "--min-overlap" in err and "between 0 and 1" in err


def test_map_uses_declared_sensor_options_and_min_overlap(capsys, tmp_path, vv_checkpoint):
    from earthmind_sdk.errors import AlignmentError
    from earthmind_sdk.inference.windows import SceneReader

    edge = _shifted_copy(S2, tmp_path / "edge.tif", 72)
    with pytest.raises(AlignmentError, match=r"covers 25% .*--min-overlap"):  # map's own pair check
        with SceneReader({"sar": str(S1), "optical": str(edge)}, "sar"):
            pass
    # the dual-pol SAR scene is read through the checkpoint's declared band, the pair accepted at 0.2
    code, out, err = cli(capsys, "map", "--model", vv_checkpoint, "--sar", S1, "--image", edge, "--json",
                         "--out", tmp_path / "mapped", "--min-overlap", "0.2", "--max-new-tokens", 1, "Is there water?")
    assert code == 0, err
    assert json.loads(out)["ok"] == 1
