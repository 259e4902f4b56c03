"""The shared job helpers: run folder rule, atomic writes, naming, progress, JSON-line streams, Ctrl-C."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from earthmind_sdk.errors import JobInterrupted, OutputError
from earthmind_sdk.jobs import (JsonlStream, Progress, atomic_dir, atomic_path, atomic_write_text,
                                check_output_path, checkpoint_fingerprint, foreign_entries, interruptible,
                                open_run_folder, output_stem, read_jsonl, read_manifest, recipe_hash)


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- run folder -------------------------------------------------------------------------------

def test_new_folder_gets_a_manifest_with_versions_recipe_and_fingerprint(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"a": 1}')
    run = open_run_folder(tmp_path / "out", job="eval", recipe={"job": "eval", "seed": 1}, checkpoint=ckpt)
    m = json.loads((tmp_path / "out" / "run.json").read_text())
    assert m["run_id"] == run.run_id and m["job"] == "eval" and m["sdk_version"]
    assert m["recipe"] == {"job": "eval", "seed": 1} and m["recipe_hash"] == recipe_hash({"seed": 1, "job": "eval"})
    assert m["checkpoint"]["files"] == {"config.json": 8}
    assert isinstance(m["plugins"], dict) and not any(k.startswith("core.") for k in m["plugins"])
    before = checkpoint_fingerprint(ckpt)["sha256"]
    (ckpt / "config.json").write_text('{"a": 2}')
    assert checkpoint_fingerprint(ckpt)["sha256"] != before


def test_foreign_non_empty_folder_is_refused_and_left_untouched(tmp_path):
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"user data")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    before = snapshot(tmp_path)
    for kw in ({}, {"overwrite": True}, {"resume": True}, {"shared": True}):
        with pytest.raises(OutputError, match="not written by earthmind") as e:
            open_run_folder(tmp_path, job="train", **kw)
        assert "\n" not in str(e.value)
    assert snapshot(tmp_path) == before


def test_overwrite_removes_only_what_earlier_runs_wrote(tmp_path):
    run = open_run_folder(tmp_path, job="train")
    run.write_text("summary.json", "{}")
    run.write_text("checkpoint/model.safetensors", "weights")
    (tmp_path / "checkpoint" / "user.txt").write_text("foreign")  # dropped in by the user later
    (tmp_path / "user.csv").write_text("foreign too")
    assert foreign_entries(tmp_path) == ["user.csv"]
    with pytest.raises(OutputError, match="set overwrite"):
        open_run_folder(tmp_path, job="train")
    run2 = open_run_folder(tmp_path, job="train", overwrite=True)
    assert run2.run_id != run.run_id
    assert not (tmp_path / "summary.json").exists() and not (tmp_path / "checkpoint" / "model.safetensors").exists()
    assert (tmp_path / "checkpoint" / "user.txt").read_text() == "foreign"
    assert (tmp_path / "user.csv").read_text() == "foreign too"
    run2.finish(summary={"ok": 1})
    assert read_manifest(tmp_path)["status"] == "finished"


def test_resume_keeps_files_and_needs_the_same_recipe(tmp_path):
    run = open_run_folder(tmp_path, job="eval", recipe={"x": 1})
    run.write_text("predictions.jsonl", '{"id": 1}\n')
    again = open_run_folder(tmp_path, job="eval", recipe={"x": 1}, resume=True)
    assert again.run_id == run.run_id and (tmp_path / "predictions.jsonl").exists()
    with pytest.raises(OutputError, match="different recipe"):
        open_run_folder(tmp_path, job="eval", recipe={"x": 2}, resume=True)
    with pytest.raises(OutputError, match="'eval' run"):
        open_run_folder(tmp_path, job="train")


@pytest.mark.parametrize("make, match", [
    (lambda t: (t / "f").write_text("x") and t / "f" / "out", "is a file"),
    (lambda t: t / "f2", "exists and is a file"),
    (lambda t: "/proc/earthmind-out", "/proc"),
    (lambda t: t / ("x" * 300), "longer than 255"),
])
def test_invalid_output_paths_are_one_line(tmp_path, make, match):
    (tmp_path / "f2").write_text("x")
    with pytest.raises(OutputError, match=match) as e:
        check_output_path(make(tmp_path))
    assert "\n" not in str(e.value)


def test_parallel_shared_runs_join_one_manifest(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from earthmind_sdk.jobs import open_run_folder, output_stem
        run = open_run_folder({str(tmp_path / 'o')!r}, job="infer", shared=True)
        name = output_stem("scene.tif", {{"q": sys.argv[1]}}) + ".txt"
        run.write_text(name, sys.argv[1])
        print(run.run_id)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i)], stdout=subprocess.PIPE, text=True)
             for i in range(4)]
    ids = {p.communicate()[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs) and len(ids) == 1
    files = sorted(p.name for p in (tmp_path / "o").glob("scene-*.txt"))
    assert len(files) == 4
    assert sorted((tmp_path / "o" / f).read_text() for f in files) == ["0", "1", "2", "3"]
    assert sorted(read_manifest(tmp_path / "o") and open_run_folder(tmp_path / "o", job="infer", shared=True).written()) \
        == sorted(files)


# --- atomic writes and naming ----------------------------------------------------------------------

def test_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.tif"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".tif" and tmp.parent == tmp_path
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.tif"]


def test_atomic_dir_appears_whole_or_not_at_all(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "ck") as d:
            (d / "part").write_text("x")
            raise RuntimeError
    assert os.listdir(tmp_path) == []
    with atomic_dir(tmp_path / "ck") as d:
        (d / "part").write_text("x")
    assert (tmp_path / "ck" / "part").read_text() == "x"
    with pytest.raises(OutputError):
        with atomic_dir(tmp_path / "ck"):
            pass


def test_output_names_differ_per_input_and_request_and_repeat_for_the_same(tmp_path):
    a = output_stem(tmp_path / "scene.tif", {"q": "segment water"})
    assert a.startswith("scene-") and len(a) == len("scene-") + 8
    assert a == output_stem(tmp_path / "scene.tif", {"q": "segment water"})
    assert a != output_stem(tmp_path / "scene.tif", {"q": "segment roads"})
    assert a != output_stem(tmp_path / "other" / "scene.tif", {"q": "segment water"})
    assert output_stem("we ird/na me?.tif", {}).startswith("na_me_-")


# --- progress ------------------------------------------------------------------------------------

def test_progress_logs_a_line_with_eta_to_stderr_when_not_a_terminal(capsys):
    with Progress(4, "eval", interval=0.0) as bar:
        for _ in range(4):
            bar.update()
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("eval: 1/4 (25%)") and "ETA" in lines[0] and "it/s" in lines[0]
    assert lines[-1].startswith("eval: 4/4 (100%)")


def test_progress_callback_and_off_switch(capsys):
    events = []
    with Progress(3, "train", progress=events.append, initial=1) as bar:
        bar.update(2)
    assert [(e.done, e.total, e.finished) for e in events] == [(3, 3, False), (3, 3, True)]
    assert events[0].eta == 0
    with Progress(3, "train", progress=False, interval=0.0) as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""


# --- JSON-line stream ------------------------------------------------------------------------------

def test_stream_resumes_by_id_and_drops_a_partial_last_line(tmp_path):
    f = tmp_path / "p.jsonl"
    with JsonlStream(f) as s:
        s.write([{"id": 1}, {"id": 2}])
    with open(f, "a") as fh:
        fh.write('{"id": 3, "ans')  # killed mid-line
    assert [r["id"] for r in read_jsonl(f)] == [1, 2]
    with JsonlStream(f) as s:
        assert s.done_ids() == {"1", "2"}
        s.write({"id": 3})
    assert [r["id"] for r in read_jsonl(f)] == [1, 2, 3]


def test_stream_refuses_a_foreign_line_in_one_line(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"id": 1}\nnot json\n')
    with pytest.raises(OutputError, match=r"p\.jsonl:2: not valid JSON \(.*\); this file was not written by earthmind"):
        JsonlStream(f)


def test_one_json_lines_reader_for_inputs_and_outputs(tmp_path):
    from earthmind_sdk.errors import DataError
    from earthmind_sdk.jobs.jsonl import json_lines, json_rows

    f = tmp_path / "a.jsonl"
    f.write_text('{"q": 1}\n\n[2]\nnope\n{"q": 4}')
    with pytest.raises(DataError, match=r"a\.jsonl:4: not valid JSON \(Expecting value\)"):
        list(json_lines(f))
    # an annotation file: a bad line is an entry the caller's policy judges; reading goes on
    assert list(json_rows(f, "conversation", invalid=lambda why: why)) == [
        (f"{f}:1", {"q": 1}), (f"{f}:3", [2]), (f"{f}:4", "not valid JSON (Expecting value)"), (f"{f}:5", {"q": 4})]
    # the same rows as a JSON list, or held under a key
    g = tmp_path / "b.json"
    g.write_text('{"questions": [{"q": 1}, [2]]}')
    assert list(json_rows(g, "question", list_key="questions")) == [(f"{g} [0]", {"q": 1}), (f"{g} [1]", [2])]
    with pytest.raises(DataError, match=r"b\.json: expected a JSON list \(or JSON lines\) of question entries, found dict"):
        list(json_rows(g, "question"))
    with pytest.raises(DataError, match="c.json: question file not found"):
        list(json_rows(tmp_path / "c.json", "question"))


# --- interrupts ------------------------------------------------------------------------------------

def test_interruptible_turns_ctrl_c_into_one_line():
    with pytest.raises(JobInterrupted, match="eval interrupted; finished results are kept in /x; rerun"):
        with interruptible("eval", kept="/x", resume_hint="rerun to resume"):
            raise KeyboardInterrupt


def test_sigterm_in_a_job_is_one_line_and_exit_130(tmp_path):
    code = textwrap.dedent("""
        import os, signal, sys, time
        from earthmind_sdk.cli import main
        from earthmind_sdk import cli
        def slow(args):
            from earthmind_sdk.jobs import interruptible
            with interruptible("demo", kept="here"):
                print("ready", flush=True)
                time.sleep(30)
        cli._cmd_plugins = slow
        sys.exit(main(["plugins"]))
    """)
    # SIGINT as from a terminal, even when the test runner was started in the background
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130
    assert err.strip() == "earthmind plugins: demo interrupted; finished results are kept in here"


def test_an_unexpected_failure_is_still_one_line_unless_debugging(monkeypatch, capsys):
    from earthmind_sdk import cli

    def boom(args):
        raise ValueError("two\nlines")

    monkeypatch.setattr(cli, "_cmd_plugins", boom)
    monkeypatch.delenv("EARTHMIND_DEBUG", raising=False)
    assert cli.main(["plugins"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: ValueError: two lines" in err
    monkeypatch.setenv("EARTHMIND_DEBUG", "1")
    with pytest.raises(ValueError):
        cli.main(["plugins"])
