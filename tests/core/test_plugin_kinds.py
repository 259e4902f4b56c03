"""A throwaway plugin adds a job, a chat template and a language model with the checkpoint
architecture that names it, through the same hooks the built-ins use; each then works where
the built-in ones do (``earthmind run``, prompts, ``load``) and is gone with the plugin."""
import json

import pytest
import torch

from earthmind_sdk import plugins
from earthmind_sdk.checkpoint import load, save
from earthmind_sdk.cli import main
from earthmind_sdk.model.spec import load_spec
from earthmind_sdk.errors import CheckpointError, PluginError, RecipeError
from earthmind_sdk.plugins import PluginSystem
from earthmind_sdk.recipes import load_recipe
from earthmind_sdk.text import build_prompt, get_template

TOY = """
from earthmind_sdk.hookspecs import hookimpl
from earthmind_sdk.recipes import Field, Job, job_schema
from earthmind_sdk.text.template import Template

TOY_JOB = Job("toy_kinds:run_toy", job_schema({
    "greeting": Field(str, required=True, doc="what to say"),
    "times": Field(int, default=1, ge=1),
}), smoke=("times=1",))
TOY_CHAT = Template("toy_chat", "[user] {input} [bot] ", "[done]", stop_words=("[done]",), suffix_as_eos=True)


def run_toy(recipe, source):
    return {"said": recipe["greeting"] * recipe["times"], "seed": recipe["seed"], "source": source}


def toy_lm(**config):
    from earthmind_sdk.model.llm import qwen2

    lm = qwen2(**config)
    lm.built_by = "toy-kinds"
    return lm


@hookimpl
def register_jobs(register):
    register("toy_job", "toy_kinds:TOY_JOB", description="says the greeting several times")


@hookimpl
def register_templates(register):
    register("toy_chat", "toy_kinds:TOY_CHAT", description="square-bracket turns")


@hookimpl
def register_language_models(register):
    register("toy_lm", "toy_kinds:toy_lm", description="Qwen2 marked as built by the toy plugin")


@hookimpl
def register_architectures(register):
    register("ToyForCausalLM", "toy_lm", description="checkpoints of the toy language model")
"""


@pytest.fixture
def toy_installed(plugin_dir, clean_env):
    """The plugin loaded from a (fake) entry point into the process-wide plugin system."""
    ep = plugin_dir("toy_kinds", TOY)
    old = plugins.reset(PluginSystem(entry_points=[ep]).load())
    yield plugins.system()
    plugins.reset(old)


@pytest.fixture
def toy_absent(clean_env):
    old = plugins.reset(PluginSystem(entry_points=[]).load())
    yield
    plugins.reset(old)


def test_plugin_registers_every_new_kind_with_descriptions(toy_installed, capsys):
    info = toy_installed.infos["toy-kinds"]
    assert info.error is None
    assert info.hooks == ["register_architectures", "register_jobs", "register_language_models", "register_templates"]
    assert main(["plugins", "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == "toy-kinds")
    assert row["descriptions"] == {
        "jobs": {"toy_job": "says the greeting several times"},
        "templates": {"toy_chat": "square-bracket turns"},
        "language_models": {"toy_lm": "Qwen2 marked as built by the toy plugin"},
        "architectures": {"ToyForCausalLM": "checkpoints of the toy language model"},
    }
    assert main(["plugins"]) == 0
    text = capsys.readouterr().out
    assert "      toy_job  says the greeting several times" in text
    assert "      ToyForCausalLM  checkpoints of the toy language model" in text


def test_plugin_job_runs_through_earthmind_run(toy_installed, tmp_path, capsys):
    recipe = tmp_path / "toy.yaml"
    recipe.write_text("job: toy_job\ngreeting: hi\nseed: 4\n")
    assert main(["run", str(recipe), "times=3"]) == 0
    assert json.loads(capsys.readouterr().out) == {"said": "hihihi", "seed": 4, "source": str(recipe)}
    assert main(["run", str(recipe), "--dry-run"]) == 0
    assert "times: 1" in capsys.readouterr().out  # the plugin's schema default
    assert main(["run", str(recipe), "times=0"]) == 2  # its schema validates like a built-in's
    assert f"{recipe}: times" in capsys.readouterr().err


def test_plugin_job_that_is_not_a_job_is_named(plugin_dir, clean_env, tmp_path, capsys):
    ep = plugin_dir("not_a_job", """
        from earthmind_sdk.hookspecs import hookimpl

        @hookimpl
        def register_jobs(register):
            register("bogus", "builtins:print")
    """)
    old = plugins.reset(PluginSystem(entry_points=[ep]).load())
    try:
        recipe = tmp_path / "bogus.yaml"
        recipe.write_text("job: bogus\n")
        with pytest.raises(PluginError, match=r"job 'bogus' from plugin 'not-a-job' is a builtin_function_or_method"):
            load_recipe(recipe)
        assert main(["run", str(recipe), "--dry-run"]) == 2  # one line, no traceback
        assert "error: job 'bogus' from plugin 'not-a-job'" in capsys.readouterr().err
    finally:
        plugins.reset(old)


def test_plugin_template_lays_out_prompts(toy_installed):
    assert get_template("toy-chat").suffix == "[done]"
    assert load_spec({"base": "tiny", "template": "toy-chat"}).template == "toy-chat"
    assert build_prompt("is it flooded?", None, template="toy_chat") == "[user] is it flooded? [bot] "
    assert build_prompt("and now?", None, template="toy_chat", history=[("first?", "yes")]) == \
        "[user] first? [bot] yes[done]\n[user] and now? [bot] "


def test_without_the_plugin_its_names_are_unknown(toy_absent, tmp_path):
    recipe = tmp_path / "toy.yaml"
    recipe.write_text("job: toy_job\ngreeting: hi\n")
    with pytest.raises(RecipeError, match=r"job: 'toy_job' is not allowed; allowed values: eval, infer, map"):
        load_recipe(recipe)
    with pytest.raises(RecipeError, match=r"unknown chat template 'toy_chat'; known: default, gemma"):
        get_template("toy_chat")
    with pytest.raises(RecipeError, match=r"model spec: template: unknown chat template 'toy_chat'"):
        load_spec({"base": "tiny", "template": "toy_chat"})


def _toy_checkpoint(model, folder):
    """A checkpoint of ``model`` whose config.json names the toy architecture and template, as a
    checkpoint written by the toy plugin's own code would (no ``earthmind.language_model``)."""
    save(model, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["llm_config"]["architectures"] = ["ToyForCausalLM"]
    cfg["template"] = "toy_chat"
    del cfg["earthmind"]["language_model"]
    (folder / "config.json").write_text(json.dumps(cfg))


def test_plugin_language_model_loads_from_a_checkpoint_naming_it(tiny_model, tmp_path, toy_installed):
    _toy_checkpoint(tiny_model, tmp_path / "ckpt")
    loaded, _ = load(tmp_path / "ckpt")
    assert loaded.language_model.built_by == "toy-kinds"
    assert loaded.spec.language_model["name"] == "toy_lm" and loaded.spec.template == "toy_chat"
    saved, got = tiny_model.state_dict(), loaded.state_dict()  # every weight, the LLM's included
    assert saved.keys() == got.keys()
    assert all(torch.equal(saved[k], got[k]) for k in saved)


def test_checkpoint_naming_an_uninstalled_architecture_is_refused(tiny_model, tmp_path, toy_absent):
    _toy_checkpoint(tiny_model, tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match=r"config\.json: llm_config\.architectures \['ToyForCausalLM'\] is not "
                                              r"supported; supported language models: LlamaForCausalLM"):
        load(tmp_path / "ckpt")


def test_a_language_model_without_its_architecture_is_not_saved(tiny_model, tmp_path, clean_env):
    """Saving writes ``llm_config.architectures`` from the model's class; a class no plugin maps
    would make a checkpoint nothing can load, so the save is refused and writes nothing."""

    without_model = [b for b in plugins.BUILTIN_PLUGINS if b[0] != "core.model"]  # no architectures table
    system = PluginSystem(entry_points=[], builtins=without_model).load()
    old = plugins.reset(system)
    try:
        with pytest.raises(CheckpointError, match=r"cannot save: the language model is a Qwen2ForCausalLM, which no "
                                                  r"plugin registers as a checkpoint architecture"):
            save(tiny_model, tmp_path / "ckpt")
    finally:
        plugins.reset(old)
    assert not (tmp_path / "ckpt").exists()
