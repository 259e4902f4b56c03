"""The CLI through its real console-script entry point, with real installed plugin distributions."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EARTHMIND = Path(sys.executable).with_name("earthmind")


def run_cli(*args, env_extra=None, cwd=None):
    env = dict(os.environ)
    env.pop("EARTHMIND_PLUGINS", None)
    env.pop("EARTHMIND_BLOCK_PLUGINS", None)
    env.update(env_extra or {})
    return subprocess.run([str(EARTHMIND), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def make_distribution(root: Path, dist: str, module: str, body: str) -> Path:
    src = root / dist
    (src / module).mkdir(parents=True)
    (src / module / "__init__.py").write_text(textwrap.dedent(body))
    (src / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "0.3.1"

        [project.entry-points.earthmind]
        {dist} = "{module}"

        [tool.setuptools]
        packages = ["{module}"]
    """))
    return src


@pytest.fixture(scope="module")
def installed_plugins(tmp_path_factory):
    """Two throwaway plugin distributions pip-installed into a target on the test env's path."""
    root = tmp_path_factory.mktemp("dists")
    target = root / "site"
    good = make_distribution(root, "earthmind-toyradar", "earthmind_toyradar", """
        from earthmind_sdk.hookspecs import hookimpl

        @hookimpl
        def register_sensors(register):
            register("toyradar", "earthmind_toyradar:ToyRadar", description="a throwaway radar sensor")

        class ToyRadar:
            name = "toyradar"
    """)
    broken = make_distribution(root, "earthmind-broken", "earthmind_broken", """
        import this_module_does_not_exist_anywhere  # noqa
    """)
    exits = make_distribution(root, "earthmind-exits", "earthmind_exits", """
        import sys
        sys.exit(3)
    """)
    base = make_distribution(root, "earthmind-baseexc", "earthmind_baseexc", """
        class Boom(BaseException):
            pass
        raise Boom("not an Exception")
    """)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(good), str(broken), str(exits), str(base)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH")) if p)}


def test_help_on_every_subcommand():
    top = run_cli("--help")
    assert top.returncode == 0 and "plugins" in top.stdout and "run" in top.stdout and "infer" in top.stdout
    for sub in ("plugins", "run", "infer"):
        res = run_cli(sub, "--help")
        assert res.returncode == 0, res.stderr
        assert f"usage: earthmind {sub}" in res.stdout


def test_plugins_json_lists_builtins():
    res = run_cli("plugins", "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    names = {r["name"] for r in rows}
    assert {"core.sensors", "core.model", "core.fusion", "core.tasks", "core.eval"} <= names
    for row in rows:
        assert {"name", "version", "hooks", "components", "error"} <= set(row)


def test_installed_plugin_shows_and_broken_one_is_named(installed_plugins):
    res = run_cli("plugins", "--json", env_extra=installed_plugins)
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    toy = rows["earthmind-toyradar"]
    assert toy["components"] == {"sensors": ["toyradar"]}
    assert toy["version"] == "0.3.1" and toy["hooks"] == ["register_sensors"] and toy["error"] is None
    assert toy["descriptions"] == {"sensors": {"toyradar": "a throwaway radar sensor"}}
    assert "this_module_does_not_exist_anywhere" in rows["earthmind-broken"]["error"]
    assert "SystemExit" in rows["earthmind-exits"]["error"]  # sys.exit at import is isolated
    assert "Boom: not an Exception" in rows["earthmind-baseexc"]["error"]

    text = run_cli("plugins", env_extra=installed_plugins)
    assert text.returncode == 0
    assert "      toyradar  a throwaway radar sensor\n" in text.stdout
    assert "earthmind-broken" in text.stdout and "ERROR" in text.stdout
    failed = text.stderr.split("3 plugin(s) failed to load: ")[1].split()
    assert sorted(n.strip(",") for n in failed) == ["earthmind-baseexc", "earthmind-broken", "earthmind-exits"]


def test_block_variable_hides_installed_plugin(installed_plugins):
    env = dict(installed_plugins, EARTHMIND_BLOCK_PLUGINS="earthmind-broken")
    rows = {r["name"]: r for r in json.loads(run_cli("plugins", "--json", env_extra=env).stdout)}
    assert "earthmind-broken" not in rows and "earthmind-toyradar" in rows


def test_allow_variable_loads_only_named(installed_plugins):
    env = dict(installed_plugins, EARTHMIND_PLUGINS="earthmind-toyradar")
    rows = {r["name"]: r for r in json.loads(run_cli("plugins", "--json", env_extra=env).stdout)}
    assert "earthmind-broken" not in rows and "earthmind-toyradar" in rows


def test_run_reports_validation_error_with_file_and_key(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("job: infer\nseed: many\nsamples: []\n")
    res = run_cli("run", str(recipe))
    assert res.returncode == 2
    assert str(recipe) in res.stderr and "seed" in res.stderr and "expected int" in res.stderr
    res = run_cli("run", str(recipe), "seed=1", "model.dtype=float64")
    assert res.returncode == 2
    assert "model.dtype" in res.stderr and "allowed values: float32, bfloat16, float16" in res.stderr


def test_run_dry_run_applies_overrides(tmp_path):
    recipe = tmp_path / "ok.yaml"
    recipe.write_text("job: infer\nsamples: []\ntask: vqa\n")
    res = run_cli("run", str(recipe), "batch_size=8", "output.dir=/tmp/x", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "batch_size: 8" in res.stdout and "dir: /tmp/x" in res.stdout
