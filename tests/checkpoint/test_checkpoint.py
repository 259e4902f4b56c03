"""HF-format checkpoints: bit-exact round trips, the released layout (config fields and key names,
no ``earthmind`` block), .bin weights, and clear errors for broken directories."""
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import earthmind_sdk
from earthmind_sdk.checkpoint import load, save
from earthmind_sdk.errors import CheckpointError
from earthmind_sdk.model.decoder import SAM2Decoder
from earthmind_sdk.model.graph import build_model
from earthmind_sdk.model.spec import load_spec

RELEASED_PREFIXES = ("vision_model.", "mlp1.", "language_model.", "grounding_encoder.sam2_model.",
                     "text_hidden_fcs.", "local_query")
TINY_DECODER = {"name": "sam2", "args": SAM2Decoder.tiny_args()}


def _keys(path):
    index = path / "model.safetensors.index.json"
    if index.is_file():
        return set(json.loads(index.read_text())["weight_map"])
    with safe_open(str(path / "model.safetensors"), framework="pt") as fh:
        return set(fh.keys())


def _paired_tiny():
    raw = load_spec("tiny").to_dict()
    raw.update(sensors=["sar", "optical"], segment_sensor="sar",
               fusion={"name": "mma", "args": {"num_queries": 2, "reweight": False}})
    torch.manual_seed(0)
    return build_model(raw).eval()


def _assert_same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("shard", ["1GB", "3MB"])
def test_round_trip_is_bit_exact(tiny_model, tmp_path, shard):
    files = save(tiny_model, tmp_path, max_shard_size=shard)
    assert (len(files) > 2) == (shard == "3MB")
    assert (tmp_path / "model.safetensors.index.json").is_file() == (shard == "3MB")
    back, info = load(tmp_path)
    _assert_same(tiny_model, back)
    ids = torch.tensor([[1, 151667, 2]])
    img = [torch.randn(1, 64)]
    with torch.no_grad():
        assert torch.equal(tiny_model(ids, image_embeds=img).logits, back(ids, image_embeds=img).logits)
    got, want = info["spec"].to_dict(), tiny_model.spec.to_dict()
    for key in ("sensors", "segment_sensor", "template", "image", "tokens", "projector", "fusion", "decoder", "name"):
        assert got[key] == want[key], key
    assert got["encoder"]["name"] == "internvit"
    assert want["encoder"]["args"].items() <= got["encoder"]["args"].items()
    llm_want = {k: v for k, v in want["language_model"]["args"].items() if k != "rope_theta"}
    assert llm_want.items() <= got["language_model"]["args"].items()


def test_round_trip_bf16_and_lazy_package_export(tiny_model, tmp_path):
    save(tiny_model, tmp_path, dtype=torch.bfloat16)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["torch_dtype"] == "bfloat16"
    back, info = earthmind_sdk.load(tmp_path)  # dtype None keeps the stored precision
    assert info["dtype"] == torch.bfloat16
    ref = tiny_model.state_dict()
    for k, v in back.state_dict().items():
        assert v.dtype == torch.bfloat16 and torch.equal(v, ref[k].to(torch.bfloat16)), k
    as32, _ = load(tmp_path, dtype=torch.float32)
    assert next(as32.parameters()).dtype == torch.float32


def test_saved_config_and_keys_follow_released_layout(tmp_path):
    m = _paired_tiny()
    save(m, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "sa2va_chat" and cfg["architectures"] == ["Sa2VAChatModel"]
    assert cfg["llm_config"]["architectures"] == ["Qwen2ForCausalLM"]
    assert cfg["vision_config"]["model_type"] == "intern_vit_6b"
    assert cfg["vision_config"]["architectures"] == ["InternVisionModel"]
    for field in ("template", "downsample_ratio", "force_image_size", "ps_version", "select_layer",
                  "dynamic_image_size", "use_thumbnail", "min_dynamic_patch", "max_dynamic_patch", "pad2square",
                  "use_backbone_lora", "use_llm_lora"):
        assert field in cfg, field
    assert cfg["template"] == "phi3_chat" and cfg["ps_version"] == "v2" and cfg["force_image_size"] == 28
    keys = _keys(tmp_path)
    assert all(k.startswith(RELEASED_PREFIXES) for k in keys), sorted(k for k in keys if not k.startswith(RELEASED_PREFIXES))
    assert "local_query" in keys and "fusion.local_query" not in keys
    assert "language_model.lm_head.weight" not in keys  # tied embeddings
    assert {"text_hidden_fcs.0.weight", "text_hidden_fcs.2.weight", "mlp1.0.weight", "mlp1.3.bias"} <= keys


def _strip_earthmind(path, auto_map=None):
    cfg = json.loads((path / "config.json").read_text())
    cfg.pop("earthmind")
    if auto_map is not None:
        cfg["auto_map"] = {k: v.replace(v.split(".")[0], auto_map) if k != "AutoConfig" else v
                           for k, v in cfg["auto_map"].items()}
    (path / "config.json").write_text(json.dumps(cfg))


def test_released_v1_layout_loads_with_defaults(tmp_path):
    """No earthmind block (as released): local_query -> v1 mma without reweighting, SAR + optical."""
    m = _paired_tiny()
    save(m, tmp_path / "EarthMind-4B")
    _strip_earthmind(tmp_path / "EarthMind-4B")
    back, info = load(tmp_path / "EarthMind-4B", spec={"decoder": TINY_DECODER})
    spec = info["spec"]
    assert spec.sensors == ["sar", "optical"] and spec.segment_sensor == "sar"
    assert spec.fusion == {"name": "mma", "args": {"reweight": False, "num_queries": 2}}
    assert any("local_query" in n for n in info["notes"])
    _assert_same(m, back)


def test_released_sa2va_and_v2_layouts_by_contents(tmp_path, tiny_model):
    """Published configs have no earthmind block: auto_map (EarthMind's or Sa2VA's modeling
    module) and the absence of local_query decide; the folder names say nothing."""
    for name, module in (("ckpt_a", "modeling_sa2va_chat"), ("ckpt_b", "modeling_earthmind_chat")):
        save(tiny_model, tmp_path / name)
        _strip_earthmind(tmp_path / name, auto_map=module)
        _, info = load(tmp_path / name, spec={"decoder": TINY_DECODER})
        if module == "modeling_sa2va_chat":
            assert info["spec"].fusion is None and info["spec"].sensors == ["optical"]
            assert info["variant"] == "sa2va"
        else:
            assert info["spec"].fusion["name"] == "hca" and info["spec"].sensors == ["sar", "optical"]
            assert info["variant"] == "earthmind-v2" and info["spec"].segment_sensor == "sar"


def test_released_layout_defaults_to_hiera_l(tmp_path, tiny_model):
    """Without an override the released default (Hiera-L) is built; the tiny SAM2's tensors are
    then reported as missing / unexpected, with a hint about the decoder."""
    save(tiny_model, tmp_path)
    _strip_earthmind(tmp_path)
    with pytest.raises(CheckpointError, match=r"missing tensor\(s\): grounding_encoder\.sam2_model\..*"
                                              r"only SAM2 tensors differ"):
        load(tmp_path)


def test_bin_weights_are_read(tiny_model, tmp_path):
    save(tiny_model, tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    (tmp_path / "model.safetensors").unlink()
    torch.save(state, tmp_path / "pytorch_model.bin")
    back, info = load(tmp_path)
    assert info["files"] == ["pytorch_model.bin"]
    _assert_same(tiny_model, back)


def test_missing_shard(tiny_model, tmp_path):
    save(tiny_model, tmp_path, max_shard_size="3MB")
    (tmp_path / "model-00002-of-00004.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"missing: model-00002-of-00004\.safetensors \(\d+ tensors"):
        load(tmp_path)


def _edit_single(path, fn):
    state = load_file(str(path / "model.safetensors"))
    fn(state)
    save_file(state, str(path / "model.safetensors"))


def test_missing_and_unexpected_keys_are_listed(tiny_model, tmp_path):
    save(tiny_model, tmp_path)
    _edit_single(tmp_path, lambda s: (s.pop("mlp1.1.weight"), s.pop("text_hidden_fcs.2.bias"),
                                      s.__setitem__("extra.head.weight", torch.zeros(2))))
    with pytest.raises(CheckpointError) as err:
        load(tmp_path)
    msg = str(err.value)
    assert "2 missing tensor(s): mlp1.1.weight, text_hidden_fcs.2.bias" in msg
    assert "1 unexpected tensor(s): extra.head.weight" in msg


def test_wrong_shape_names_the_parameter(tiny_model, tmp_path):
    save(tiny_model, tmp_path)
    _edit_single(tmp_path, lambda s: s.__setitem__("mlp1.1.weight", torch.zeros(64, 10)))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: tensor 'mlp1\.1\.weight' has shape \(64, 10\) "
                                              r"but the model built from config\.json expects \(64, 128\)"):
        load(tmp_path)


@pytest.mark.parametrize("edit,match", [
    (lambda c: c.update(model_type="llava"), r"model_type 'llava' is not supported"),
    (lambda c: c["llm_config"].update(architectures=["InternLM2ForCausalLM"]),
     r"InternLM2ForCausalLM.*supported language models: LlamaForCausalLM, Phi3ForCausalLM, Qwen2ForCausalLM$"),
    # the name is a registry key, never an import path: a "module:attr" string is just unknown
    (lambda c: c["llm_config"].update(architectures=["earthmind_sdk.model.llm:qwen2"]),
     r"\['earthmind_sdk\.model\.llm:qwen2'\] is not supported"),
    (lambda c: c["llm_config"].update(architectures="Qwen2ForCausalLM"), r"architectures Qwen2ForCausalLM is not supported"),
    (lambda c: c.update(architectures=["LlavaForConditionalGeneration"]), r"do not include 'Sa2VAChatModel'"),
])
def test_unknown_architecture(tiny_model, tmp_path, edit, match):
    save(tiny_model, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    edit(cfg)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=match):
        load(tmp_path)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not a directory"):
        load(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(CheckpointError, match="invalid JSON"):
        load(tmp_path)


def test_tokenizer_hook_and_resave(tiny_model, tmp_path):
    class Tok:
        def save_pretrained(self, path):
            (Path(path) / "tokenizer.json").write_text("{}")

    save(tiny_model, tmp_path / "out", max_shard_size="3MB", tokenizer=Tok())
    assert (tmp_path / "out" / "tokenizer.json").is_file()
    save(tiny_model, tmp_path / "out")  # re-saving unsharded removes the stale shards
    assert not list((tmp_path / "out").glob("model-*.safetensors"))
    shutil.rmtree(tmp_path / "out")


def test_phi3_language_model_round_trip(tmp_path):
    from earthmind_sdk.model.llm import tiny_config

    raw = load_spec("tiny").to_dict()
    raw.update(language_model={"name": "phi3", "args": tiny_config("phi3")}, decoder=None)
    torch.manual_seed(0)
    m = build_model(raw).eval()
    save(m, tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["llm_config"]["architectures"] == ["Phi3ForCausalLM"]
    back, info = load(tmp_path)
    assert type(back.language_model).__name__ == "Phi3ForCausalLM" and back.grounding_encoder is None
    _assert_same(m, back)
