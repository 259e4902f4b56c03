import pytest

from earthmind_sdk.errors import RecipeError
from earthmind_sdk.recipes import Field, apply_override, load_recipe, validate

SCHEMA = {
    "name": Field(str, required=True),
    "lr": Field(float, default=1e-4),
    "steps": Field(int, default=10),
    "precision": Field(str, default="fp32", choices=("fp32", "bf16")),
    "optim": Field(dict, schema={"betas": Field(list, default=[0.9, 0.999], items=Field(float)),
                                 "clip": Field(float, default=1.0)}),
}


def test_defaults_and_nested_defaults():
    out = validate({"name": "x"}, SCHEMA, source="r.yaml", path="")
    assert out == {"name": "x", "lr": 1e-4, "steps": 10, "precision": "fp32",
                   "optim": {"betas": [0.9, 0.999], "clip": 1.0}}


def test_int_promoted_to_float_but_bool_is_not_int():
    assert validate({"name": "x", "lr": 1}, SCHEMA, source="r", path="")["lr"] == 1.0
    with pytest.raises(RecipeError, match=r"r.yaml: steps: expected int, got bool"):
        validate({"name": "x", "steps": True}, SCHEMA, source="r.yaml", path="")


@pytest.mark.parametrize("config, message", [
    ({}, "name: required key is missing"),
    ({"name": "x", "setps": 3}, "setps: unknown key; did you mean 'steps'?"),
    ({"name": "x", "precision": "bf61"}, "precision: 'bf61' is not allowed (did you mean 'bf16'?); allowed values: fp32, bf16"),
    ({"name": "x", "optim": {"betas": [0.9, "a"]}}, "optim.betas[1]: expected float, got str"),
    ({"name": "x", "optim": {"clip": "high"}}, "optim.clip: expected float"),
])
def test_errors_name_key_path(config, message):
    with pytest.raises(RecipeError) as err:
        validate(config, SCHEMA, source="r.yaml", path="")
    assert message in str(err.value)
    assert str(err.value).startswith("r.yaml: ")


def test_override_parsing():
    cfg = {"a": {"b": 1}}
    apply_override(cfg, "a.b=3")
    apply_override(cfg, "a.c=[1, 2]")
    apply_override(cfg, "d.e=null")
    apply_override(cfg, "f=hello world")
    assert cfg == {"a": {"b": 3, "c": [1, 2]}, "d": {"e": None}, "f": "hello world"}
    with pytest.raises(RecipeError, match="key.path=value"):
        apply_override(cfg, "novalue")
    with pytest.raises(RecipeError, match="a.b is not a mapping"):
        apply_override(cfg, "a.b.c=1")


def test_malformed_yaml_names_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("job: infer\nsamples: [\n  - a: 1\n")
    with pytest.raises(RecipeError) as err:
        load_recipe(p)
    assert str(p) in str(err.value) and "malformed YAML" in str(err.value) and "line" in str(err.value)


def test_unknown_job_and_missing_file(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("job: trian\n")
    with pytest.raises(RecipeError, match="'trian' is not allowed"):
        load_recipe(p)
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")
    p.write_text("- just\n- a list\n")
    with pytest.raises(RecipeError, match="mapping at the top level"):
        load_recipe(p)
