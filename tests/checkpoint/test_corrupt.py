"""Corrupted and crafted weight files: each is refused in one line naming the file (and tensor),
both from ``load`` and through ``earthmind infer``; NaN/Inf can be allowed explicitly."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from earthmind_sdk.checkpoint import load, save
from earthmind_sdk.errors import CheckpointError

EARTHMIND = Path(sys.executable).with_name("earthmind")
IMAGE = Path(__file__).resolve().parents[1] / "data" / "optical_rmnp_rgb.png"
FLOAT_KEY = "mlp1.1.weight"


@pytest.fixture(scope="module")
def good(tmp_path_factory, tiny_model):
    sharded = tmp_path_factory.mktemp("c") / "sharded"
    save(tiny_model, sharded, max_shard_size="3MB")
    single = sharded.parent / "single"
    save(tiny_model, single)
    return {"sharded": sharded, "single": single}


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _rewrite(file: Path, fn):
    tensors = load_file(str(file))
    fn(tensors)
    save_file(tensors, str(file), metadata={"format": "pt"})


def _zero_byte(d):
    (d / "model.safetensors").write_bytes(b"")
    return "model.safetensors", "empty file"


def _truncated(d):
    f = d / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return "model.safetensors", "truncated"


def _header_garbage(d):
    f = d / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[8:20] = b"\xff" * 12
    f.write_bytes(bytes(data))
    return "model.safetensors", "corrupt safetensors header"


def _header_too_long(d):
    f = d / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[:8] = (10 ** 12).to_bytes(8, "little")
    f.write_bytes(bytes(data))
    return "model.safetensors", "exceeds the file"


def _seven_bytes(d):
    (d / "model.safetensors").write_bytes(b"\x01" * 7)
    return "model.safetensors", "no safetensors header"


def _int_tensor(d):
    _rewrite(d / "model.safetensors", lambda t: t.update({FLOAT_KEY: torch.ones_like(t[FLOAT_KEY], dtype=torch.int32)}))
    return "model.safetensors", f"tensor '{FLOAT_KEY}' is int32, but the parameter is floating point"


def _bool_tensor(d):
    _rewrite(d / "model.safetensors", lambda t: t.update({FLOAT_KEY: torch.ones_like(t[FLOAT_KEY], dtype=torch.bool)}))
    return "model.safetensors", f"tensor '{FLOAT_KEY}' is bool"


def _nan(d):
    def poison(t):
        t[FLOAT_KEY] = t[FLOAT_KEY].clone()
        t[FLOAT_KEY][0, 0] = float("nan")
    _rewrite(d / "model.safetensors", poison)
    return "model.safetensors", f"tensor '{FLOAT_KEY}' holds 1 NaN/Inf"


def _inf(d):
    def poison(t):
        t[FLOAT_KEY] = t[FLOAT_KEY].clone()
        t[FLOAT_KEY][0, :3] = float("inf")
    _rewrite(d / "model.safetensors", poison)
    return "model.safetensors", f"tensor '{FLOAT_KEY}' holds 3 NaN/Inf"


def _index_escape(d):
    idx = d / "model.safetensors.index.json"
    data = json.loads(idx.read_text())
    key = next(iter(data["weight_map"]))
    data["weight_map"][key] = "../" + data["weight_map"][key]
    idx.write_text(json.dumps(data))
    return "model.safetensors.index.json", "not a file name inside the checkpoint folder"


def _index_absolute(d):
    idx = d / "model.safetensors.index.json"
    data = json.loads(idx.read_text())
    data["weight_map"][next(iter(data["weight_map"]))] = "/etc/passwd"
    idx.write_text(json.dumps(data))
    return "model.safetensors.index.json", "not a file name inside the checkpoint folder"


def _trailing_bytes(d):
    with open(d / "model.safetensors", "ab") as fh:
        fh.write(b"\x00" * 16)
    return "model.safetensors", "trailing bytes"


def _shard_truncated(d):
    f = sorted(d.glob("model-*.safetensors"))[0]
    f.write_bytes(f.read_bytes()[:-100])
    return f.name, "truncated"


CASES = {
    "zero-byte": ("single", _zero_byte), "truncated": ("single", _truncated),
    "header-garbage": ("single", _header_garbage), "header-length": ("single", _header_too_long),
    "seven-bytes": ("single", _seven_bytes), "int-for-float": ("single", _int_tensor),
    "bool-for-float": ("single", _bool_tensor), "nan": ("single", _nan), "inf": ("single", _inf),
    "index-escape": ("sharded", _index_escape), "index-absolute": ("sharded", _index_absolute),
    "trailing-bytes": ("single", _trailing_bytes), "shard-truncated": ("sharded", _shard_truncated),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_corrupt_checkpoint_is_one_line_naming_file(good, tmp_path, case):
    kind, make = CASES[case]
    d = _copy(good[kind], tmp_path / "ckpt")
    fname, message = make(d)
    with pytest.raises(CheckpointError) as e:
        load(d)
    text = str(e.value)
    assert message in text and str(d / fname) in text and "\n" not in text, text


def test_nonfinite_weights_load_when_allowed(good, tmp_path):
    d = _copy(good["single"], tmp_path / "ckpt")
    _nan(d)
    model, _ = load(d, allow_nonfinite=True)
    assert torch.isnan(model.state_dict()[FLOAT_KEY]).sum() == 1


@pytest.mark.parametrize("case", ["truncated", "nan", "index-escape"])
def test_corrupt_checkpoint_through_the_console_script(good, tmp_path, case):
    kind, make = CASES[case]
    d = _copy(good[kind], tmp_path / "ckpt")
    fname, message = make(d)
    res = subprocess.run([str(EARTHMIND), "infer", "--model", str(d), "--image", str(IMAGE), "--out",
                          str(tmp_path / "o"), "what is this?"], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert message in res.stderr and str(d / fname) in res.stderr


def test_save_refuses_a_folder_with_foreign_files_and_replaces_only_its_own(tiny_model, tmp_path):
    d = tmp_path / "ck"
    d.mkdir()
    (d / "model-00001-of-00002.safetensors").write_bytes(b"user")
    with pytest.raises(Exception, match="holds files earthmind did not write"):
        save(tiny_model, d, max_shard_size="3MB")
    assert os.listdir(d) == ["model-00001-of-00002.safetensors"] and (d / "model-00001-of-00002.safetensors").read_bytes() == b"user"
    own = tmp_path / "own"
    save(tiny_model, own, max_shard_size="3MB")
    assert len(list(own.glob("model-*.safetensors"))) > 1
    save(tiny_model, own)  # re-saving its own checkpoint replaces it whole (no stale shards)
    assert sorted(p.name for p in own.iterdir() if not p.name.startswith(".")) == ["config.json", "model.safetensors"]
    assert os.listdir(tmp_path) == ["ck", "own"]  # no temporary folder left behind
