"""Sensors in the model contract: a spec's sensor options are written into config.json, read
back on load and used to prepare inputs; a published folder (no earthmind block) gets each
sensor's defaults; a crafted config.json is refused in one line naming the file and the key."""
import json
from pathlib import Path

import pytest
import torch

from earthmind_sdk.checkpoint import load, read_config, save
from earthmind_sdk.contracts import Sample
from earthmind_sdk.errors import CheckpointError, RecipeError
from earthmind_sdk.model.batching import BatchBuilder
from earthmind_sdk.model.graph import build_model
from earthmind_sdk.model.spec import load_spec
from earthmind_sdk.plugins import registry
from earthmind_sdk.text.tokenizer import default_tokenizer

S1 = Path(__file__).resolve().parents[1] / "data" / "sentinel1_synthetic_vv_vh.tif"
SAR_ARGS = {"band": "VV", "speckle_filter": "refined_lee", "composite": "grey"}


def _paired(sar_entry="sar"):
    raw = load_spec("tiny").to_dict()
    raw.update(sensors=[sar_entry, "optical"], segment_sensor="sar", decoder=None,
               fusion={"name": "mma", "args": {"num_queries": 2, "reweight": False}})
    torch.manual_seed(0)
    return build_model(raw).eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny paired checkpoint whose SAR input is declared with options."""
    path = tmp_path_factory.mktemp("ckpt") / "sar_refined_lee"
    save(_paired({"name": "sar", "args": SAR_ARGS}), path)
    return path


def _frames(builder, sample):
    return builder.prepare(sample, 0)["sar"].frames


def test_sensor_options_round_trip_and_prepare_the_inputs(saved):
    cfg = json.loads((saved / "config.json").read_text())
    assert cfg["earthmind"]["sensors"] == [{"name": "sar", "args": SAR_ARGS}, "optical"]
    model, info = load(saved)
    assert info["spec"].sensors == ["sar", "optical"]
    assert info["spec"].sensor_args == {"sar": SAR_ARGS}
    assert info["spec"].to_dict()["sensors"] == cfg["earthmind"]["sensors"]
    builder = BatchBuilder(model, default_tokenizer())
    sensor = builder.sensor("sar")
    assert (sensor.speckle_filter, sensor.band_choice) == ("refined_lee", "VV")
    # the declared options decide the pixels: as the sensor built with them, not its defaults
    want = registry("sensors").build("sar", **SAR_ARGS).load(str(S1)).frames
    got = _frames(builder, Sample(images={"sar": str(S1)}, prompt=""))
    assert torch.equal(got, want)
    plain = registry("sensors").build("sar", band="VV").load(str(S1)).frames
    assert not torch.equal(got, plain)


def test_caller_options_merge_over_the_declared_ones(saved):
    model, _ = load(saved)
    builder = BatchBuilder(model, default_tokenizer())
    lee = Sample(images={"sar": str(S1)}, prompt="", sensors={"sar": {"name": "sar", "args": {"speckle_filter": "lee"}}})
    sensor = builder.sensor_for(lee, "sar", "test")
    assert (sensor.speckle_filter, sensor.band_choice) == ("lee", "VV")  # band still the declared one
    want = registry("sensors").build("sar", **{**SAR_ARGS, "speckle_filter": "lee"}).load(str(S1)).frames
    assert torch.equal(_frames(builder, lee), want)
    # another sensor starts from its own defaults, not from the declared sar options
    other = Sample(images={"sar": str(S1)}, prompt="", sensors={"sar": "sentinel1"})
    assert builder.sensor_for(other, "sar", "test").speckle_filter is None


def test_published_folder_gets_each_sensors_defaults(tmp_path):
    """No earthmind block (a released checkpoint): no declared options, the sensors' defaults
    (the release-faithful preparation), exactly as before the contract existed."""
    path = tmp_path / "EarthMind4B_multi"
    save(_paired(), path)
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["earthmind"]["sensors"] == ["sar", "optical"]  # no options declared: plain names
    cfg.pop("earthmind")
    (path / "config.json").write_text(json.dumps(cfg))
    model, info = load(path)
    assert info["variant"] == "earthmind-v1"
    assert info["spec"].sensor_args == {}
    builder = BatchBuilder(model, default_tokenizer())
    for name in ("sar", "optical"):
        assert vars(builder.sensor(name)) == vars(registry("sensors").build(name))


def _config(tmp_path, sensors):
    cfg = {"model_type": "sa2va_chat", "architectures": ["Sa2VAChatModel"],
           "llm_config": {"architectures": ["Qwen2ForCausalLM"]}, "vision_config": {},
           "earthmind": {"sensors": sensors}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return tmp_path


@pytest.mark.parametrize("sensors,match", [
    ([{"name": "sar", "args": {"speckle_filter": {"_target_": "os.system"}}}],
     r"earthmind\.sensors\[0\]\.args\.speckle_filter\._target_: '_target_' keys are not allowed"),
    ([{"name": "sar", "args": "os.system('x')"}], r"earthmind\.sensors\[0\]\.args: expected a mapping"),
    ([{"name": "sar", "args": {"speckle_filter": "${oc.env:HOME}"}}], r"interpolation"),
    ([{"name": "os.path:join", "args": {}}], r"earthmind\.sensors\[0\]\.name: no sensor 'os.path:join' is installed"),
    (["optical", {"name": "sar", "args": {"exec": "rm"}}], r"earthmind\.sensors\[1\]\.args: unknown argument\(s\) exec"),
    ([{"name": "sar", "args": {}, "target": "x"}], r"earthmind\.sensors\[0\]: unknown key\(s\) target"),
    ([], r"earthmind\.sensors: expected a non-empty list"),
])
def test_crafted_sensor_block_is_refused_naming_file_and_key(tmp_path, sensors, match):
    path = _config(tmp_path, sensors)
    with pytest.raises(CheckpointError, match=match) as exc:
        read_config(path)
    assert str(path / "config.json") in str(exc.value) and "\n" not in str(exc.value)


def test_crafted_block_refused_by_load_before_any_sensor_is_built(saved, tmp_path, monkeypatch):
    import shutil

    path = tmp_path / "crafted"
    shutil.copytree(saved, path)
    cfg = json.loads((path / "config.json").read_text())
    cfg["earthmind"]["sensors"][0] = {"name": "sar", "args": {"speckle_filter": "refined_lee", "looks": [1, {"x": None}]}}
    (path / "config.json").write_text(json.dumps(cfg))
    built = []
    monkeypatch.setattr(registry("sensors"), "build", lambda *a, **k: built.append(a))
    model, info = load(path)  # plain values bind: accepted, and nothing is built at load
    assert info["spec"].sensor_args["sar"]["looks"] == [1, {"x": None}] and not built
    cfg["earthmind"]["sensors"][0] = {"name": "sentinel3", "args": {}}
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"config\.json: earthmind\.sensors\[0\]\.name: no sensor 'sentinel3'"):
        load(path)


def test_spec_entries_are_checked_like_the_rest_of_a_spec():
    base = load_spec("tiny").to_dict()
    with pytest.raises(RecipeError, match=r"model spec: sensors\[0\]\.args: unknown argument\(s\) speckle"):
        load_spec({**base, "sensors": [{"name": "optical", "args": {"speckle": "lee"}}]})
    with pytest.raises(RecipeError, match=r"sensors\[0\]\.args\.rgb: options must be plain values"):
        load_spec({**base, "sensors": [{"name": "optical", "args": {"rgb": object()}}]})
    with pytest.raises(RecipeError, match=r"lists the sensor 'optical' twice"):
        load_spec({**base, "sensors": ["optical", {"name": "optical", "args": {}}]})
    spec = load_spec({**base, "sensors": [{"name": "optical", "args": {}}]})  # no options: a plain name
    assert spec.sensors == ["optical"] and spec.sensor_args == {} and spec.to_dict()["sensors"] == ["optical"]
