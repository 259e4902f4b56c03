import pytest

from earthmind_sdk.errors import DuplicateComponentError, UnknownComponentError
from earthmind_sdk.registry import Registry


def test_register_get_build_and_lazy_target():
    reg = Registry("sensors")
    reg.register("ordered", "collections:OrderedDict", owner="p1")
    assert reg.names() == ["ordered"]
    assert reg.entry("ordered").owner == "p1"
    obj = reg.build("ordered", a=1)
    assert dict(obj) == {"a": 1}
    from collections import OrderedDict

    assert reg.get("ordered") is OrderedDict


def test_duplicate_names_both_owners():
    reg = Registry("fusions")
    reg.register("hca", dict, owner="earthmind-sdk")
    with pytest.raises(DuplicateComponentError) as err:
        reg.register("hca", list, owner="my-plugin")
    assert "earthmind-sdk" in str(err.value) and "my-plugin" in str(err.value)
    assert reg.get("hca") is dict  # first registration kept


def test_unknown_name_did_you_mean():
    reg = Registry("sensors")
    for name in ("sentinel1", "sentinel2", "optical"):
        reg.register(name, dict, owner="x")
    with pytest.raises(UnknownComponentError) as err:
        reg.get("sentinel-1")
    msg = str(err.value)
    assert "did you mean 'sentinel1'" in msg
    assert "optical" in msg  # known names listed


def test_bad_lazy_target_is_reported():
    reg = Registry("tasks")
    reg.register("broken", "no_colon_here", owner="x")
    with pytest.raises(ValueError, match="module:attribute"):
        reg.get("broken")


def test_value_kind_entries_are_plain_names_never_imported():
    reg = Registry("architectures")
    reg.register("Qwen2ForCausalLM", "qwen2", owner="core")
    reg.register("Odd", "os:system", owner="p")  # looks like a lazy target: still only a name
    assert reg.get("Qwen2ForCausalLM") == "qwen2" and reg.get("Odd") == "os:system"
    with pytest.raises(ValueError, match="plain names"):
        reg.register("Bad", dict, owner="p")


def test_every_hook_fills_one_kind():
    """The manager calls ``register_<kind>`` for each kind: a hook without a kind would be ignored."""
    from earthmind_sdk import hookspecs
    from earthmind_sdk.registry import KINDS

    hooks = {n for n in dir(hookspecs) if n.startswith("register_")}
    assert hooks == {f"register_{k}" for k in KINDS}
