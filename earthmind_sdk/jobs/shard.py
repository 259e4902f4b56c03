"""One job over many processes (``torchrun``, one machine or many): the work is split by whole
batches, each rank streams its own part file, rank 0 merges.

Why whole batches: a batch holds the same members as in a one-process run, so padding (and
with it every number) is the same and a sharded run equals a one-process run exactly. Batches
are cut from the full input list (minus what is already done) and dealt round-robin: batch k
goes to rank k % world size.

Files: one process streams into ``<name>`` itself; under torchrun rank r streams into
``parts/<stem>.rank<r><suffix>``. What counts as done is every complete row of ``<name>`` and of
every part file, whoever wrote it, so a rerun after a kill skips it even with another number of
processes. At the end rank 0 writes ``<name>`` once, one row per input in input order, and
removes the part files. With several machines the run folder must be on a shared filesystem.
Only rank 0 opens the run folder, writes ``run.json`` and shows progress.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from ..errors import OutputError
from .jsonl import JsonlStream, read_jsonl

PARTS = "parts"
#: how long a rank that finished waits for the others (a rank's share of a big run can take hours)
WAIT = timedelta(hours=24)


@dataclass(frozen=True)
class World:
    """This process's place among the ``size`` processes of a job (``torchrun`` sets the env)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, device: str) -> str:
        """``cuda`` -> this process's own GPU (``cuda:<local rank>``) when there are several."""
        return f"cuda:{self.local_rank}" if self.size > 1 and device == "cuda" else device

    def barrier(self, while_waiting: Optional[Callable[[], None]] = None) -> None:
        """Wait for every rank; ``while_waiting`` is called about twice a second meanwhile."""
        if self.size == 1:
            return
        import torch.distributed as dist

        work = dist.barrier(async_op=True)
        while not work.is_completed():
            if while_waiting is not None:
                while_waiting()
            time.sleep(0.5)
        work.wait()

    def from_main(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        if self.size == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def current_world() -> World:
    """The world of this process; under torchrun the process group is started here (gloo on
    CPU, NCCL on GPU) if nobody did yet."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    w = World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))
    if size > 1:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            cuda = torch.cuda.is_available()
            if cuda:
                torch.cuda.set_device(w.local_rank)
            dist.init_process_group("nccl" if cuda else "gloo", timeout=WAIT)
    return w


def open_on_main(world: World, open_folder: Callable[[], Any]):
    """The run folder: rank 0 opens it (checks, ``run.json``) with ``open_folder()``, the other
    ranks join it once that succeeded; a refusal on rank 0 is the same one line on every rank."""
    from .run_folder import RunFolder, read_manifest

    run, error = None, None
    if world.main:
        try:
            run = open_folder()
        except OutputError as exc:
            error = str(exc)
            if world.size == 1:
                raise
    path, error = world.from_main((str(run.path) if run is not None else None, error))
    if error is not None:
        raise OutputError(error)
    if run is None:
        manifest = read_manifest(path) or {}
        run = RunFolder(Path(path), str(manifest.get("run_id")), manifest, shared=True)  # finish(): rank 0's
    return run


def plan_batches(keys: Sequence[str], batch_size: int, done: Iterable[str], world: World) -> list[list[int]]:
    """This rank's batches, as index lists into ``keys``: the one-process batches of the whole
    list, done members removed, empty batches dropped, then every ``world.size``-th from
    ``world.rank``."""
    bs = max(1, int(batch_size))
    done = set(done)
    left = [[i for i in range(s, min(s + bs, len(keys))) if keys[i] not in done] for s in range(0, len(keys), bs)]
    return [b for b in left if b][world.rank::world.size]


def _prefer(old: dict, new: dict) -> dict:
    """Of two rows for one id, the one that counts: a finished one over a failed one, else the later."""
    return old if old.get("status") == "ok" and new.get("status") not in (None, "ok") else new


class ShardedStream:
    """JSON-line results of a run folder written by one process or many (see the module doc).

    ``earlier`` holds the rows every source held when the stream opened (all ranks see the same:
    no rank writes before all have read); :meth:`write` appends this rank's rows;
    :meth:`merge` (every rank calls it) waits for all and, on rank 0, writes ``name`` in order.
    """

    def __init__(self, run, name: str, world: World, *, key: str = "id"):
        self.run, self.world, self.key = run, world, key
        self.final = run.file(name)
        stem, suffix = Path(name).stem, Path(name).suffix
        self._pattern = f"{stem}.rank*{suffix}"
        self.own = self.final if world.size == 1 else run.file(Path(PARTS) / f"{stem}.rank{world.rank:05d}{suffix}")
        self.earlier = self._read()
        self.rows_per_part: dict[str, int] = {}
        self.merged: Optional[list[dict]] = None
        self._counted = len(self.earlier)
        world.barrier()
        self._stream = JsonlStream(self.own, key=key)
        self.run.record(self.own)

    def _sources(self) -> list[Path]:
        return [self.final, *sorted((self.run.path / PARTS).glob(self._pattern))]

    def _read(self) -> list[dict]:
        return [row for src in self._sources() for row in read_jsonl(src)]

    def done_ids(self, status: Optional[str] = None) -> set[str]:
        """Ids with a row (with ``status``, when given) in any source when the stream opened."""
        return {str(r.get(self.key)) for r in self.earlier if status is None or r.get("status") == status}

    def write(self, rows: "dict | list[dict]") -> None:
        self._stream.write(rows)

    def count(self) -> int:
        """Complete rows in all sources now (for rank 0's progress over every rank's work)."""
        n = 0
        for src in self._sources():
            try:
                n += src.read_bytes().count(b"\n")
            except OSError:
                pass
        return n

    def advance(self, bar, n: int) -> None:
        """Move ``bar`` on: by ``n`` on most ranks (their bars are off), by what every rank
        wrote meanwhile on rank 0."""
        if not self.world.main or self.world.size == 1:
            bar.update(n)
            return
        now = self.count()
        if now > self._counted:
            bar.update(now - self._counted)
            self._counted = now

    def merge(self, keys: Sequence[str], on_wait: Optional[Callable[[], None]] = None) -> Optional[list[dict]]:
        """Close this rank's part, wait for every rank; rank 0 writes ``name`` (the row that
        counts for each of ``keys``, in that order), removes the parts (``rows_per_part`` keeps
        how many rows each held) and returns the rows (also kept as ``merged``)."""
        from ..io.atomic import atomic_write_text
        import json

        self._stream.close()
        self.world.barrier(on_wait if self.world.main else None)
        if not self.world.main:
            return None
        if on_wait is not None:
            on_wait()  # every part complete now: the last progress step
        wanted = {str(k) for k in keys}
        best: dict[str, dict] = {}
        for row in self._read():
            k = str(row.get(self.key))
            if k in wanted:
                best[k] = _prefer(best[k], row) if k in best else row
        rows = [best[str(k)] for k in keys if str(k) in best]
        self.rows_per_part = {p.name: sum(1 for _ in read_jsonl(p)) for p in self._sources()[1:]}
        self.merged = rows
        atomic_write_text(self.final, "".join(json.dumps(r, default=str) + "\n" for r in rows))
        self.run.record(self.final)
        for part in self._sources()[1:]:
            part.unlink()
        try:
            (self.run.path / PARTS).rmdir()
        except OSError:
            pass
        return rows

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> "ShardedStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
