"""Run in a subprocess by test_payloads.py: load crafted checkpoints and recipes with an audit
hook armed, and report, per case, the error and every write, file-system change, process or
import that happened while loading. Usage: python payload_harness.py CASES.json OUT.json"""
import json
import os
import sys

ARMED = False
EVENTS: list = []
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_CHANGES = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link", "os.truncate",
            "os.chmod", "os.chown", "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.copytree",
            "shutil.move", "shutil.rmtree", "os.system", "subprocess.Popen", "os.exec", "os.posix_spawn",
            "os.fork", "os.startfile", "pickle.find_class", "exec", "ctypes.dlopen", "os.putenv"}


def _hook(event, args):
    if not ARMED:
        return
    if event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                  (mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writing:
            EVENTS.append(f"open for writing: {path}")
    elif event == "import":
        EVENTS.append(f"import {args[0]}")
    elif event in _CHANGES:
        EVENTS.append(f"{event}: {str(args)[:200]}")


def main(cases_file, out_file):
    global ARMED
    with open(cases_file) as fh:
        spec = json.load(fh)
    from earthmind_sdk.checkpoint import load
    from earthmind_sdk.errors import EarthMindError
    from earthmind_sdk.recipes import recipe_from_dict

    ckpt = spec["checkpoint"]
    clean_cfg = open(os.path.join(ckpt, "config.json")).read()

    def attempt(kind, payload):
        if kind == "config":
            with open(os.path.join(ckpt, "config.json"), "w") as fh:
                fh.write(payload)
            return lambda: load(ckpt)
        if kind == "recipe":
            return lambda: recipe_from_dict(json.loads(payload), source="crafted.yaml")
        if kind == "control":  # what the payload would do if it reached Hydra: the hook must see it
            from hydra.utils import instantiate

            return lambda: instantiate(json.loads(payload))
        raise ValueError(kind)

    # warm-up, not armed: every module a legitimate load (and its error path) needs is imported
    load(ckpt)
    for case in spec["cases"][:3]:
        try:
            attempt(case["kind"], case["payload"])()
        except Exception:  # noqa: BLE001
            pass
    sys.addaudithook(_hook)
    results = []
    for case in spec["cases"]:
        run = attempt(case["kind"], case["payload"])
        EVENTS.clear()
        ARMED = True
        try:
            run()
            error = None
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            error = [type(exc).__name__, isinstance(exc, EarthMindError), str(exc)]
        finally:
            ARMED = False
        results.append({"name": case["name"], "error": error, "events": list(EVENTS)})
    with open(os.path.join(ckpt, "config.json"), "w") as fh:
        fh.write(clean_cfg)
    with open(out_file, "w") as fh:
        json.dump(results, fh)


if __name__ == "__main__":
    main(*sys.argv[1:3])
