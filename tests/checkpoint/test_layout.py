"""The published layout: SAM2 layer scales stored as ``g_weight``, the model decided from the
folder's contents (never its name), and the explicit ``variant`` override."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from earthmind_sdk.checkpoint import load, save
from earthmind_sdk.checkpoint.layout import checkpoint_name, model_key
from earthmind_sdk.errors import CheckpointError
from earthmind_sdk.model.decoder import SAM2Decoder
from earthmind_sdk.model.graph import build_model
from earthmind_sdk.model.spec import load_spec

TINY_DECODER = {"name": "sam2", "args": SAM2Decoder.tiny_args()}
FUSER = "grounding_encoder.sam2_model.memory_encoder.fuser.layers.{}.{}"


def _published(path, module, keep_local_query=True):
    """Turn one of our folders into the published layout: no earthmind block, the authors' auto_map."""
    cfg = json.loads((path / "config.json").read_text())
    cfg.pop("earthmind")
    cfg["auto_map"] = {"AutoConfig": "configuration_x.Sa2VAChatConfig", "AutoModel": f"{module}.Sa2VAChatModel",
                       "AutoModelForCausalLM": f"{module}.Sa2VAChatModel"}
    (path / "config.json").write_text(json.dumps(cfg))
    if not keep_local_query:
        state = load_file(str(path / "model.safetensors"))
        state.pop("local_query")
        save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})


def _paired(fusion):
    raw = load_spec("tiny").to_dict()
    raw.update(sensors=["sar", "optical"], segment_sensor="sar", fusion=fusion)
    torch.manual_seed(0)
    return build_model(raw).eval()


def test_layer_scales_are_written_as_g_weight_and_read_back(tiny_model, tmp_path):
    save(tiny_model, tmp_path)
    keys = set(load_file(str(tmp_path / "model.safetensors")))
    assert FUSER.format(0, "g_weight") in keys and FUSER.format(1, "g_weight") in keys
    assert not any(k.endswith(".gamma") for k in keys)
    # every other name is the graph's own key
    graph = set(tiny_model.state_dict()) - {"language_model.lm_head.weight"}
    assert {model_key(k) for k in keys} == graph
    back, info = load(tmp_path)
    assert info["mapped"] == {FUSER.format(i, "g_weight"): FUSER.format(i, "gamma") for i in range(2)}
    sam = back.grounding_encoder.sam2_model.memory_encoder.fuser.layers[0].gamma
    assert torch.equal(sam, tiny_model.grounding_encoder.sam2_model.memory_encoder.fuser.layers[0].gamma)


def test_sam2_package_spelling_is_accepted_and_both_spellings_refused(tiny_model, tmp_path):
    save(tiny_model, tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    g = state.pop(FUSER.format(0, "g_weight"))
    state[FUSER.format(0, "gamma")] = g + 1.0  # a file written with the sam2 package's names
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    back, _ = load(tmp_path)
    assert torch.equal(back.grounding_encoder.sam2_model.memory_encoder.fuser.layers[0].gamma, g + 1.0)
    state[FUSER.format(0, "g_weight")] = g
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="two names of one tensor"):
        load(tmp_path)


def test_name_mapping_touches_only_the_two_published_differences():
    assert checkpoint_name("fusion.local_query") == "local_query"
    assert checkpoint_name(FUSER.format(3, "gamma")) == FUSER.format(3, "g_weight")
    assert checkpoint_name("vision_model.encoder.layers.0.ls1") == "vision_model.encoder.layers.0.ls1"
    assert checkpoint_name("language_model.model.norm.gamma") == "language_model.model.norm.gamma"
    for k in ("local_query", FUSER.format(3, "g_weight"), "mlp1.0.weight"):
        assert checkpoint_name(model_key(k)) == k


@pytest.mark.parametrize("name", ["EarthMind4B_multi", "run_7"])
def test_v1_is_recognised_by_local_query_whatever_the_folder_is_called(tmp_path, name):
    m = _paired({"name": "mma", "args": {"num_queries": 2, "reweight": False}})
    save(m, tmp_path / name)
    _published(tmp_path / name, "modeling_earthmind_chat")
    back, info = load(tmp_path / name, spec={"decoder": TINY_DECODER})
    assert info["variant"] == "earthmind-v1" and "local_query" in info["variant_reason"]
    assert info["spec"].fusion == {"name": "mma", "args": {"reweight": False, "num_queries": 2}}
    assert info["spec"].sensors == ["sar", "optical"] and info["spec"].segment_sensor == "sar"
    assert torch.equal(back.fusion.local_query, m.fusion.local_query)


def test_v2_and_sa2va_by_contents_and_the_variant_override(tmp_path):
    m = _paired({"name": "hca", "args": {}})
    save(m, tmp_path / "v1_multi_copy")  # a misleading name: the contents say v2
    _published(tmp_path / "v1_multi_copy", "modeling_earthmind_chat")
    _, info = load(tmp_path / "v1_multi_copy", spec={"decoder": TINY_DECODER})
    assert info["variant"] == "earthmind-v2" and info["spec"].fusion == {"name": "hca", "args": {}}

    save(m, tmp_path / "plain")
    _published(tmp_path / "plain", "modeling_sa2va_chat")
    _, info = load(tmp_path / "plain", spec={"decoder": TINY_DECODER})
    assert info["variant"] == "sa2va" and info["spec"].fusion is None and info["spec"].sensors == ["optical"]
    _, info = load(tmp_path / "plain", spec={"decoder": TINY_DECODER}, variant="v2")
    assert info["variant"] == "earthmind-v2" and info["spec"].fusion["name"] == "hca"
    assert info["variant_reason"] == "variant given to load()"
    with pytest.raises(CheckpointError, match="variant 'v3'"):
        load(tmp_path / "plain", spec={"decoder": TINY_DECODER}, variant="v3")


def test_variant_does_not_override_our_own_block(tiny_model, tmp_path):
    save(tiny_model, tmp_path)
    with pytest.raises(CheckpointError, match="earthmind block"):
        load(tmp_path, variant="v2")


def test_saved_auto_map_names_the_authors_module(tmp_path, tiny_model):
    save(_paired({"name": "hca", "args": {}}), tmp_path / "a")
    save(tiny_model, tmp_path / "b")
    a = json.loads((tmp_path / "a" / "config.json").read_text())["auto_map"]["AutoModel"]
    b = json.loads((tmp_path / "b" / "config.json").read_text())["auto_map"]["AutoModel"]
    assert a == "modeling_earthmind_chat.Sa2VAChatModel" and b == "modeling_sa2va_chat.Sa2VAChatModel"


def _set_tie(path, tie):
    cfg = json.loads((path / "config.json").read_text())
    cfg["llm_config"]["tie_word_embeddings"] = tie
    (path / "config.json").write_text(json.dumps(cfg))


def test_tied_embeddings_follow_config_json(tiny_model, tmp_path):
    save(tiny_model, tmp_path)  # tiny is tied: no lm_head stored
    assert "language_model.lm_head.weight" not in load_file(str(tmp_path / "model.safetensors"))
    back, _ = load(tmp_path)
    lm = back.language_model
    assert lm.lm_head.weight.data_ptr() == lm.get_input_embeddings().weight.data_ptr()
    # config says untied but the file has no lm_head: refused by name, never left random
    _set_tie(tmp_path, False)
    with pytest.raises(CheckpointError, match=r"missing tensor\(s\): language_model\.lm_head\.weight"):
        load(tmp_path)
    # untied with its own lm_head: loaded as stored, not tied
    state = load_file(str(tmp_path / "model.safetensors"))
    head = torch.randn_like(state["language_model.model.embed_tokens.weight"])
    state["language_model.lm_head.weight"] = head
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    back, _ = load(tmp_path)
    assert torch.equal(back.language_model.lm_head.weight, head)
    assert not torch.equal(back.language_model.lm_head.weight, back.language_model.get_input_embeddings().weight)


def test_release_specs_build_untied():
    for name in ("earthmind-4b", "earthmind-4b-multi", "sa2va-4b"):
        assert load_spec(name).language_model["args"]["tie_word_embeddings"] is False
