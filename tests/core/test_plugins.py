"""Plugin discovery with fake entry points (nothing installed)."""
import subprocess
import sys

import pytest

from earthmind_sdk import plugins
from earthmind_sdk.plugins import PluginLoadWarning, PluginSystem

GOOD = """
from earthmind_sdk.hookspecs import hookimpl

@hookimpl
def register_sensors(register):
    register("toy_radar", "collections:OrderedDict", description="a toy sensor")

@hookimpl
def register_metrics(register):
    register("toy_metric", "builtins:len")
"""


def test_fake_entry_point_registers_components(plugin_dir, clean_env):
    ep = plugin_dir("toy_plugin", GOOD)
    system = PluginSystem(entry_points=[ep]).load()
    assert "toy_radar" in system.registry("sensors")
    assert system.registry("metrics").get("toy_metric") is len
    info = system.infos["toy-plugin"]
    assert info.error is None
    assert info.hooks == ["register_metrics", "register_sensors"]
    assert info.components == {"sensors": ["toy_radar"], "metrics": ["toy_metric"]}
    assert info.descriptions == {"sensors": {"toy_radar": "a toy sensor"}, "metrics": {"toy_metric": ""}}
    assert system.registry("sensors").entry("toy_radar").owner == "toy-plugin"


def test_plugin_that_fails_to_import_is_reported_and_rest_works(plugin_dir, clean_env):
    bad = plugin_dir("broken_plugin", "raise RuntimeError('boom at import')\n")
    good = plugin_dir("toy_plugin", GOOD)
    with pytest.warns(PluginLoadWarning, match="broken-plugin"):
        system = PluginSystem(entry_points=[bad, good]).load()
    assert "boom at import" in system.infos["broken-plugin"].error
    assert "import failed" in system.infos["broken-plugin"].error
    assert "toy_radar" in system.registry("sensors")


def test_plugin_that_raises_while_registering_is_rolled_back(plugin_dir, clean_env):
    ep = plugin_dir("half_plugin", """
        from earthmind_sdk.hookspecs import hookimpl

        @hookimpl
        def register_sensors(register):
            register("half_sensor", "collections:OrderedDict")
            raise ValueError("second sensor config missing")
    """)
    with pytest.warns(PluginLoadWarning, match="second sensor config missing"):
        system = PluginSystem(entry_points=[ep]).load()
    assert "half_sensor" not in system.registry("sensors")
    assert "registration failed" in system.infos["half-plugin"].error


def test_plugin_with_wrong_hook_signature_is_reported(plugin_dir, clean_env):
    ep = plugin_dir("sig_plugin", """
        from earthmind_sdk.hookspecs import hookimpl

        @hookimpl
        def register_sensors(register, unexpected_argument):
            pass
    """)
    with pytest.warns(PluginLoadWarning):
        system = PluginSystem(entry_points=[ep]).load()
    assert "unexpected_argument" in system.infos["sig-plugin"].error


def test_duplicate_name_across_plugins_names_both(plugin_dir, clean_env):
    first = plugin_dir("first_plugin", GOOD)
    second = plugin_dir("second_plugin", GOOD)
    with pytest.warns(PluginLoadWarning):
        system = PluginSystem(entry_points=[first, second]).load()
    err = system.infos["second-plugin"].error
    assert "toy_radar" in err and "first-plugin" in err and "second-plugin" in err
    assert system.registry("sensors").entry("toy_radar").owner == "first-plugin"
    # the failed plugin's other component was withdrawn too
    assert system.registry("metrics").entry("toy_metric").owner == "first-plugin"


def test_allow_list_loads_only_named(plugin_dir, monkeypatch):
    a = plugin_dir("toy_plugin", GOOD)
    b = plugin_dir("never_imported", "raise RuntimeError('must not be imported')\n")
    monkeypatch.setenv(plugins.ALLOW_ENV, "toy-plugin")
    monkeypatch.delenv(plugins.BLOCK_ENV, raising=False)
    system = PluginSystem(entry_points=[a, b]).load()
    assert "never-imported" not in system.infos
    assert "toy_radar" in system.registry("sensors")
    # built-ins still load under an allow list
    assert all(name in system.infos for name, _ in plugins.BUILTIN_PLUGINS)


def test_empty_allow_list_loads_no_third_party(plugin_dir, monkeypatch):
    a = plugin_dir("toy_plugin", GOOD)
    monkeypatch.setenv(plugins.ALLOW_ENV, "")
    system = PluginSystem(entry_points=[a]).load()
    assert "toy-plugin" not in system.infos


def test_block_list(plugin_dir, monkeypatch):
    a = plugin_dir("toy_plugin", GOOD)
    monkeypatch.delenv(plugins.ALLOW_ENV, raising=False)
    monkeypatch.setenv(plugins.BLOCK_ENV, "toy-plugin, core.eval")
    system = PluginSystem(entry_points=[a]).load()
    assert "toy-plugin" not in system.infos
    assert "core.eval" not in system.infos
    assert "core.sensors" in system.infos


def test_register_and_unregister_in_process_plugin(clean_env):
    class Local:
        @staticmethod
        @plugins.hookspecs.hookimpl
        def register_tasks(register):
            register("local_task", "builtins:str")

    system = PluginSystem(entry_points=[]).load()
    info = system.register_plugin("local", Local())
    assert info.components == {"tasks": ["local_task"]}
    system.unregister_plugin("local")
    assert "local_task" not in system.registry("tasks")


def test_builtins_load_cleanly(clean_env):
    system = PluginSystem(entry_points=[]).load()
    errors = {i.name: i.error for i in system.plugin_infos() if i.error}
    assert errors == {}


def test_every_builtin_entry_has_a_one_line_description(clean_env):
    system = PluginSystem(entry_points=[]).load()
    for info in system.plugin_infos():
        for kind, names in info.components.items():
            for name in names:
                text = info.descriptions[kind][name]
                assert 10 <= len(text) <= 120 and "\n" not in text, (info.name, kind, name, text)
                assert system.registry(kind).entry(name).description == text


def test_builtins_fill_the_new_kinds_through_their_hooks(clean_env):
    system = PluginSystem(entry_points=[]).load()
    assert set(system.registry("jobs").names()) == {"eval", "infer", "map", "quickstart", "train"}
    assert system.registry("jobs").entry("train").owner == "core.jobs"
    assert system.registry("templates").entry("phi3_chat").owner == "core.text"
    assert system.registry("architectures").get("Qwen2ForCausalLM") == "qwen2"
    assert "register_architectures" in system.infos["core.model"].hooks


def test_listing_plugins_imports_no_torch():
    code = (
        "import sys, earthmind_sdk.plugins as p\n"
        "infos = p.plugin_infos()\n"
        "assert infos, 'no plugins listed'\n"
        "heavy = [m for m in ('torch', 'transformers', 'numpy') if m in sys.modules]\n"
        "print(heavy)\n"
        "sys.exit(1 if 'torch' in heavy or 'transformers' in heavy else 0)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_broken_lazy_target_names_its_plugin(clean_env, plugin_dir):
    from earthmind_sdk.errors import PluginError

    plugin_dir("lazy_exits", "import sys\nsys.exit(5)\n")

    class Lazy:
        @staticmethod
        @plugins.hookspecs.hookimpl
        def register_tasks(register):
            register("gone_task", "no_such_module_anywhere:Task")
            register("exit_task", "lazy_exits:Task")

    system = PluginSystem(entry_points=[]).load()
    system.register_plugin("lazy-plugin", Lazy(), distribution="earthmind-lazy")
    with pytest.raises(PluginError, match=r"'gone_task' from plugin 'lazy-plugin' cannot be loaded: "
                                          r"no_such_module_anywhere:Task -> ModuleNotFoundError"):
        system.registry("tasks").get("gone_task")
    with pytest.raises(PluginError, match=r"'exit_task' from plugin 'lazy-plugin'.*SystemExit"):
        system.registry("tasks").get("exit_task")
