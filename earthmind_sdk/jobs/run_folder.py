"""The run folder: where a job writes, and the ``run.json`` manifest that marks it as ours.

A job writes only into an empty (or new) folder, or one an earlier SDK run made. ``run.json``
records the run id, SDK and plugin versions, the resolved recipe and its hash, the checkpoint's
fingerprint and every file the run wrote (``files``). ``overwrite`` removes exactly those files;
anything else in the folder is foreign and is never touched. A non-empty folder without a
manifest is refused in one line.

``shared=True`` (``earthmind infer --out``): several runs may add files to one folder at the
same time; each file name is unique per request (:func:`.naming.output_stem`) and the list of
written files is appended to ``.earthmind-files`` (one ``O_APPEND`` write per file: safe across
processes), so no run rewrites another's entry.
"""
from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import OutputError
from ..io.atomic import TMP_MARK, atomic_write_json, atomic_write_text, temp_sibling

MANIFEST = "run.json"
LEDGER = ".earthmind-files"
MANIFEST_KIND = "earthmind-run"


def check_output_path(path: "str | os.PathLike[str]", *, what: str = "output") -> Path:
    """One-line :class:`OutputError` when ``path`` cannot become a writable folder: under a file,
    in a read-only or virtual file system (``/proc``), name too long, or no permission."""
    p = Path(path).expanduser()
    absolute = Path(os.path.abspath(p))
    for part in absolute.parts:
        if len(part.encode()) > 255:
            raise OutputError(f"{what} folder {str(p)[:60]}...: the name {part[:24]}... is longer than 255 bytes")
    if absolute.parts[1:2] in (("proc",), ("sys",), ("dev",)):
        raise OutputError(f"{what} folder {p}: inside /{absolute.parts[1]}, which is not a place for files")
    try:
        if p.exists() and not p.is_dir():
            raise OutputError(f"{what} folder {p}: exists and is a file")
        ancestor = absolute
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise OutputError(f"{what} folder {p}: {ancestor} is a file, not a folder")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise OutputError(f"{what} folder {p}: {ancestor} is not writable")
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{what} folder {p}: {_reason(exc)}") from None
    return p


def _reason(exc: OSError | RuntimeError) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
        return "the path is too long"
    return getattr(exc, "strerror", None) or str(exc)


def checkpoint_fingerprint(path: "str | os.PathLike[str] | None") -> dict[str, Any] | None:
    """What identifies a checkpoint folder without hashing gigabytes: name and size of every
    file, plus a SHA-256 of ``config.json`` and of each safetensors header (which lists every
    tensor's dtype, shape and byte range)."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_dir():
        return {"name": str(path)}
    h = hashlib.sha256()
    files = {}
    for f in sorted(x for x in p.iterdir() if x.is_file()):
        size = f.stat().st_size
        files[f.name] = size
        h.update(f"{f.name}:{size}\n".encode())
        if f.name == "config.json":
            h.update(f.read_bytes())
        elif f.suffix == ".safetensors" and size >= 8:
            with open(f, "rb") as fh:
                n = int.from_bytes(fh.read(8), "little")
                h.update(fh.read(min(n, 100_000_000)))
    return {"path": str(p.resolve()), "sha256": h.hexdigest(), "files": files}


def recipe_hash(recipe: Any) -> str:
    """SHA-256 of the resolved recipe as canonical JSON."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()


def _versions() -> tuple[str, dict[str, str | None]]:
    from .._version import __version__

    try:
        from ..plugins import plugin_infos

        plugins = {i.distribution or i.name: i.version for i in plugin_infos() if not i.builtin and not i.error}
    except Exception:  # noqa: BLE001 - the manifest must not fail because a plugin is broken
        plugins = {}
    return __version__, plugins


def read_manifest(folder: "str | os.PathLike[str]") -> dict[str, Any] | None:
    """The folder's ``run.json`` when it is an SDK manifest, else None."""
    f = Path(folder) / MANIFEST
    if not f.is_file():
        return None
    try:
        data = json.loads(f.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("kind") == MANIFEST_KIND else None


@dataclass
class RunFolder:
    """An opened run folder. Write through :meth:`write_text`/:meth:`write_json` or
    :meth:`target` + :func:`.atomic.atomic_path`, and :meth:`record` what you wrote."""

    path: Path
    run_id: str
    manifest: dict[str, Any]
    shared: bool = False
    _recorded: set[str] = field(default_factory=set)

    def file(self, relative: "str | os.PathLike[str]") -> Path:
        """``path / relative``, parents created, refused when it would leave the folder."""
        target = (self.path / relative)
        if not target.resolve().is_relative_to(self.path.resolve()):
            raise OutputError(f"{self.path}: output name {relative} leaves the run folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def record(self, *paths: "str | os.PathLike[str]") -> None:
        """Note files this run wrote (relative or absolute inside the folder): ``overwrite`` may
        remove them later; nothing else is ever removed."""
        lines = []
        for p in paths:
            rel = os.path.relpath(Path(p).resolve() if Path(p).is_absolute() else (self.path / p).resolve(),
                                  self.path.resolve())
            if rel not in self._recorded:
                self._recorded.add(rel)
                lines.append(rel)
        if lines:
            fd = os.open(self.path / LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, "".join(line + "\n" for line in lines).encode())
            finally:
                os.close(fd)

    def record_tree(self, relative: "str | os.PathLike[str]") -> None:
        """Record every file under a subfolder this run wrote (e.g. a saved checkpoint)."""
        root = self.path / relative
        self.record(*(p for p in sorted(root.rglob("*")) if p.is_file()))

    def write_text(self, relative: str, text: str) -> Path:
        """Write a text file atomically and record it."""
        out = atomic_write_text(self.file(relative), text)
        self.record(out)
        return out

    def write_json(self, relative: str, obj: Any) -> Path:
        """Write a JSON file atomically and record it."""
        out = atomic_write_json(self.file(relative), obj)
        self.record(out)
        return out

    def written(self) -> list[str]:
        """Relative paths every SDK run recorded in this folder (ledger order, no repeats)."""
        return _ledger(self.path)

    def finish(self, **fields: Any) -> None:
        """Mark the run complete in ``run.json`` (with e.g. a summary); shared folders keep
        their first manifest."""
        if self.shared:
            return
        self.manifest.update(fields, finished=_now(), status="finished")
        atomic_write_json(self.path / MANIFEST, self.manifest)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _ledger(folder: Path) -> list[str]:
    f = folder / LEDGER
    if not f.is_file():
        return []
    seen: dict[str, None] = {}
    for line in f.read_text(errors="replace").splitlines():
        if line.strip():
            seen.setdefault(line.strip(), None)
    return list(seen)


def _foreign(folder: Path, manifest: dict[str, Any] | None) -> list[str]:
    """Entries of ``folder`` the SDK did not write (none when it has no manifest: all are)."""
    ours = set(_ledger(folder)) | {MANIFEST, LEDGER} if manifest else set()
    tops = {r.split(os.sep)[0] for r in ours}
    return sorted(e.name for e in folder.iterdir() if e.name not in tops and TMP_MARK not in e.name)


def _remove_recorded(folder: Path) -> int:
    """Remove files the ledger lists (and folders left empty by that); foreign files stay."""
    removed = 0
    root = folder.resolve()
    for rel in _ledger(folder):
        target = (folder / rel)
        if not target.resolve().is_relative_to(root) or target.is_symlink() and not target.exists():
            continue
        if target.is_file():
            target.unlink()
            removed += 1
            parent = target.parent
            while parent.resolve() != root:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent
    for name in os.listdir(folder):
        if TMP_MARK in name and name.startswith("."):
            stale = folder / name
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    (folder / LEDGER).unlink(missing_ok=True)
    return removed


def open_run_folder(path: "str | os.PathLike[str]", *, job: str, recipe: Any = None,
                    checkpoint: "str | os.PathLike[str] | None" = None, overwrite: bool = False,
                    resume: bool = False, shared: bool = False, what: str = "output.dir") -> RunFolder:
    """Open (create) the folder a job writes into, enforcing the output-folder rule.

    - new or empty folder: used, ``run.json`` written;
    - folder with an SDK manifest: ``resume`` keeps its files (a rerun skips what is done),
      ``overwrite`` first removes the files earlier runs recorded, ``shared`` adds to it;
      otherwise refused;
    - any other non-empty folder: refused, nothing touched.
    """
    folder = check_output_path(path, what=what)
    manifest = read_manifest(folder)
    entries = [e for e in os.listdir(folder) if not (e.startswith(".") and TMP_MARK in e)]
    if entries and manifest is None:
        shown = ", ".join(sorted(entries)[:3]) + (" ..." if len(entries) > 3 else "")
        raise OutputError(f"{what}: {folder} holds files not written by earthmind ({shown}); "
                          "choose an empty or new folder")
    if manifest is not None and manifest.get("job") != job and not overwrite:
        raise OutputError(f"{what}: {folder} holds a '{manifest.get('job')}' run ({manifest.get('run_id')}), "
                          f"not a '{job}' run; choose another folder or set overwrite")
    rhash = recipe_hash(recipe) if recipe is not None else None
    if manifest is not None:
        if shared and manifest.get("job") == job:
            return RunFolder(folder, manifest["run_id"], manifest, shared=True)
        if resume and not overwrite:
            if rhash is not None and manifest.get("recipe_hash") not in (None, rhash):
                raise OutputError(f"{what}: {folder} holds run {manifest.get('run_id')} of a different recipe "
                                  "(hash differs); resume needs the same recipe, or set overwrite")
            manifest["resumed"] = manifest.get("resumed", 0) + 1
            manifest["status"] = "running"
            atomic_write_json(folder / MANIFEST, manifest)
            return RunFolder(folder, manifest["run_id"], manifest)
        if not overwrite:
            raise OutputError(f"{what}: {folder} holds the results of run {manifest.get('run_id')}; "
                              "set overwrite to replace them (only files earlier runs wrote are removed) "
                              "or choose another folder")
        _remove_recorded(folder)
    sdk, plugins = _versions()
    manifest = {
        "kind": MANIFEST_KIND,
        "run_id": f"{_dt.datetime.now(_dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}",
        "job": job,
        "started": _now(),
        "status": "running",
        "sdk_version": sdk,
        "plugins": plugins,
        "recipe": recipe,
        "recipe_hash": rhash,
        "checkpoint": checkpoint_fingerprint(checkpoint),
    }
    if shared:
        # the first of several parallel runs wins (link() refuses an existing name, atomically);
        # the others join its manifest
        tmp = temp_sibling(folder / MANIFEST)
        tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        try:
            os.link(tmp, folder / MANIFEST)
        except FileExistsError:
            joined = read_manifest(folder)
            if joined is None:
                raise OutputError(f"{what}: {folder} holds a run.json not written by earthmind") from None
            return RunFolder(folder, joined["run_id"], joined, shared=True)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        atomic_write_json(folder / MANIFEST, manifest)
    return RunFolder(folder, manifest["run_id"], manifest, shared=shared)


def open_job_folder(config: dict[str, Any], *, job: str, source: str, resume: bool = False,
                    shared: bool = False, progress: Any = None) -> RunFolder:
    """The run folder of a recipe job: ``config["output"]`` gives ``dir`` and ``overwrite``,
    ``config["model"]["checkpoint"]`` is fingerprinted, the resolved recipe goes to ``run.json``.
    Errors name the recipe file; the folder is announced on stderr."""
    from .progress import announce

    out = config.get("output") or {}
    ckpt = (config.get("model") or {}).get("checkpoint")
    try:
        run = open_run_folder(out.get("dir", "out"), job=job, recipe=config, checkpoint=ckpt,
                              overwrite=bool(out.get("overwrite")), resume=resume, shared=shared)
    except OutputError as exc:
        raise OutputError(f"{source}: {exc}") from None
    announce(f"{job}: writing to {run.path} (run {run.run_id})", progress)
    return run


def foreign_entries(folder: "str | os.PathLike[str]") -> list[str]:
    """Top-level names in ``folder`` that no SDK run recorded (for messages and tests)."""
    f = Path(folder)
    return _foreign(f, read_manifest(f))


def recorded(folder: "str | os.PathLike[str]") -> Iterable[str]:
    """Files SDK runs recorded in ``folder``."""
    return _ledger(Path(folder))
