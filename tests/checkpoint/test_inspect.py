"""``earthmind inspect``: what load will decide, from config.json and the weight headers."""
import json

import torch
from safetensors.torch import load_file

from earthmind_sdk.checkpoint import load, save
from earthmind_sdk.cli import main
from earthmind_sdk.model.decoder import SAM2Decoder
from earthmind_sdk.model.graph import build_model
from earthmind_sdk.model.spec import load_spec

TINY_DECODER = {"name": "sam2", "args": SAM2Decoder.tiny_args()}


def _published_v1(path):
    raw = load_spec("tiny").to_dict()
    raw.update(sensors=["sar", "optical"], segment_sensor="sar",
               fusion={"name": "mma", "args": {"num_queries": 2, "reweight": False}})
    torch.manual_seed(0)
    save(build_model(raw), path)
    cfg = json.loads((path / "config.json").read_text())
    cfg.pop("earthmind")
    (path / "config.json").write_text(json.dumps(cfg))


def test_inspect_reports_what_load_decides(tmp_path, capsys):
    folder = tmp_path / "EarthMind4B_multi"  # the name says "multi", the contents say v1
    _published_v1(folder)
    assert main(["inspect", str(folder), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    _, info = load(folder, spec={"decoder": TINY_DECODER})
    assert r["variant"] == info["variant"] == "earthmind-v1" and "local_query" in r["why"]
    assert r["sensors"] == info["spec"].sensors and r["fusion"] == info["spec"].fusion
    assert "tile by tile" in r["fusion_text"]
    keys = load_file(str(folder / "model.safetensors"))
    assert r["tensors"] == len(keys) and r["parameters"] == sum(v.numel() for v in keys.values())
    assert r["mapped"] == info["mapped"] and any(k.endswith("g_weight") for k in r["mapped"])
    assert r["tied_embeddings"] is True and r["stored_dtypes"] == {"float32": len(keys)} and not r["problems"]
    assert main(["inspect", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "EarthMind v1" in text and "lm_head tied" in text and "mapped:" in text


def test_inspect_flags_an_untied_head_that_is_not_stored_and_takes_a_variant(tmp_path, capsys):
    folder = tmp_path / "ckpt"
    _published_v1(folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["llm_config"]["tie_word_embeddings"] = False
    (folder / "config.json").write_text(json.dumps(cfg))
    assert main(["inspect", str(folder)]) == 1
    assert "PROBLEM" in capsys.readouterr().out
    assert main(["inspect", str(folder), "--variant", "v2", "--json"]) == 1
    r = json.loads(capsys.readouterr().out)
    assert r["variant"] == "earthmind-v2" and r["fusion"]["name"] == "hca" and "lm_head" in r["problems"][0]


def test_inspect_names_a_bad_folder(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err
