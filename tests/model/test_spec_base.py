"""``base:`` in model specs: a plain-data merge over a bundled spec or a file beside the spec."""
import json
from pathlib import Path

import pytest

from earthmind_sdk.errors import EarthMindError
from earthmind_sdk.model.spec import load_spec

DATA = Path(__file__).resolve().parents[1] / "data" / "specs"


@pytest.mark.parametrize("name", ["earthmind-4b", "earthmind-4b-multi", "sa2va-4b", "tiny", "tiny-paired"])
def test_bundled_specs_equal_their_expansion_before_base(name):
    # tests/data/specs/*.json: each spec as it loaded when every file spelled out all its keys
    expected = json.loads((DATA / f"{name}.json").read_text())
    assert json.loads(json.dumps(load_spec(name).to_dict())) == expected


def test_base_merges_mappings_and_replaces_a_component_naming_another(tmp_path):
    (tmp_path / "common.yaml").write_text("base: earthmind-4b\nimage: {max_tiles: 6}\n")
    (tmp_path / "mine.yaml").write_text("base: common.yaml\nfusion: {name: concat}\n"
                                        "language_model: {args: {num_hidden_layers: 2}}\n")
    spec = load_spec(tmp_path / "mine.yaml")
    four_b = load_spec("earthmind-4b")
    assert spec.name == "mine"
    assert spec.fusion == {"name": "concat", "args": {}}  # not mma's args merged into concat
    assert spec.image == {**four_b.image, "max_tiles": 6}
    assert spec.language_model["args"] == {**four_b.language_model["args"], "num_hidden_layers": 2}
    assert spec.sensors == ["sar", "optical"] and spec.encoder == four_b.encoder


def test_inline_spec_starts_from_a_bundled_spec():
    spec = load_spec({"base": "tiny", "image": {"max_tiles": 2}})
    assert spec.image["max_tiles"] == 2 and spec.encoder == load_spec("tiny").encoder


def test_merged_spec_goes_through_the_validator(tmp_path):
    (tmp_path / "bad.yaml").write_text("base: tiny\nsensors: [sar, optical]\n")
    with pytest.raises(EarthMindError, match="bad.yaml: fusion: a spec with 2 sensors needs a fusion"):
        load_spec(tmp_path / "bad.yaml")


@pytest.mark.parametrize("files,match", [
    ({"a.yaml": "base: b.yaml\n", "b.yaml": "base: a.yaml\n"}, r"a\.yaml: base: a -> b -> a is a cycle"),
    ({"a.yaml": "base: a.yaml\n"}, r"base: a -> a is a cycle"),
    ({"a.yaml": "base: tinyy\n"}, r"a\.yaml: base: 'tinyy' is not a bundled spec \(.*tiny"),
    ({"a.yaml": "base: gone.yaml\n"}, r"a\.yaml: base: no file gone\.yaml beside the spec"),
    ({"a.yaml": "base: ../a.yaml\n"}, r"base: '\.\./a\.yaml': name a file in the spec's own folder"),
    ({"a.yaml": "base: /etc/x.yaml\n"}, r"base: '/etc/x\.yaml': name a file in the spec's own folder"),
    ({"a.yaml": "base: [tiny]\n"}, r"a\.yaml: base: expected a bundled spec name"),
])
def test_bad_base_is_one_clear_error(tmp_path, files, match):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(EarthMindError, match=match):
        load_spec(tmp_path / "a.yaml")


def test_inline_spec_cannot_name_a_file():
    with pytest.raises(EarthMindError, match="an inline spec may only start from a bundled spec"):
        load_spec({"base": "tiny.yaml"})


def test_quickstart_spec_is_tiny_paired_with_a_wider_encoder_and_language_model():
    qs, tp = load_spec("quickstart-paired").to_dict(), load_spec("tiny-paired").to_dict()
    for key in ("sensors", "segment_sensor", "image", "fusion", "tokens", "template"):
        assert qs[key] == tp[key], key
    # the same SAM2 at twice the input size (feature grids follow it)
    sam_q, sam_t = qs["decoder"]["args"]["overrides"], tp["decoder"]["args"]["overrides"]
    assert sam_q["image_size"] == 2 * sam_t["image_size"] == 128
    changed = {k for k in sam_q.keys() | sam_t.keys() if sam_q.get(k) != sam_t.get(k)}
    assert changed == {"image_size", "image_encoder.trunk.window_pos_embed_bkg_spatial_size",
                       "memory_attention.layer.self_attention.feat_sizes",
                       "memory_attention.layer.cross_attention.feat_sizes"}
    assert qs["encoder"]["args"]["position_init"] == "sincos"
    assert qs["encoder"]["args"]["hidden_size"] > tp["encoder"]["args"]["hidden_size"]
    assert qs["language_model"]["args"]["hidden_size"] > tp["language_model"]["args"]["hidden_size"]
    assert qs["language_model"]["args"]["vocab_size"] == tp["language_model"]["args"]["vocab_size"]
