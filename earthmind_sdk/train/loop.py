"""The training loop: sampler, checkpoints, resume, stop on SIGTERM / Ctrl-C, logs, progress.

A stop signal (SIGTERM from a scheduler, SIGINT from Ctrl-C) is honoured at the next step
boundary: every rank agrees on the step (one tiny all-reduce per step), a checkpoint is saved
there and the job ends with one line saying how to resume. A second signal stops at once
without saving. A kill (SIGKILL, power loss) loses at most the steps since the last
``save_every`` checkpoint.
"""
from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import torch

from ..errors import JobInterrupted, RecipeError
from ..jobs import Progress, announce, atomic_write_text
from . import checkpointing as ckpt
from .formats.mixture import Indexed
from .sampler import BalancedSampler, BatchSampler


class StopSignal:
    """SIGTERM / SIGINT set a flag (read at step boundaries); a second one interrupts at once."""

    def __init__(self, quiet: bool = False):
        self.requested, self.quiet = False, quiet
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame):  # noqa: ARG002
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if not self.quiet:
            announce(f"train: {signal.Signals(signum).name} received; saving a checkpoint after this step "
                     "(send it again to stop now without saving)")

    def __enter__(self) -> "StopSignal":
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)

    def agreed(self, world: int) -> bool:
        """True on every rank when any rank was asked to stop."""
        if world == 1:
            return self.requested
        import torch.distributed as dist

        flag = torch.tensor([1.0 if self.requested else 0.0])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


class TrainProgress(Progress):
    """The jobs progress bar / log line, with the last loss, lr and tokens/s after it."""

    postfix = ""

    def show(self, logged: dict[str, Any], tokens_per_s: Optional[float]) -> None:
        parts = [f"loss {logged['loss']:.4f}", f"lr {logged['lr']:.2e}"]
        if tokens_per_s:
            parts.append(f"{tokens_per_s:,.0f} tok/s")
        self.postfix = ", ".join(parts)
        if self._bar is not None:
            self._bar.set_postfix_str(self.postfix, refresh=False)
        self.update(1)

    def line(self) -> str:
        return super().line() + (f" | {self.postfix}" if self.postfix else "")


def _gather(obj: Any, world: int) -> list:
    if world == 1:
        return [obj]
    import torch.distributed as dist

    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def _group_sums(groups: list[str], values: list[float], world: int) -> dict[str, tuple[float, int]]:
    """{group: (sum, records)} over the global batch (every rank gets the same)."""
    out: dict[str, tuple[float, int]] = {}
    for part in _gather(list(zip(groups, values)), world):
        for g, v in part:
            total, count = out.get(g, (0.0, 0))
            out[g] = (total + float(v), count + 1)
    return out


def groups_and_chance(data: Indexed) -> tuple[list[str], dict[str, float]]:
    """Each record's group (:meth:`Indexed.group`), and each group's error when answering
    without looking: 1 - its most common answer's share (closed answers); 1 for a group with
    masks, whose answer text alone says nothing. One pass over the records."""
    groups: list[str] = []
    answers: dict[str, dict[str, int]] = {}
    masked: set[str] = set()
    for i in range(len(data)):
        r = data[i]
        g = data.group(i, r)
        groups.append(g)
        if r.masks:
            masked.add(g)
        counts = answers.setdefault(g, {})
        counts[r.answer] = counts.get(r.answer, 0) + 1
    chance = {g: 1.0 if g in masked else 1.0 - max(c.values()) / sum(c.values()) for g, c in answers.items()}
    return groups, chance


def fit(trainer, records: Iterable, *, log_path: Optional[Path] = None, run_dir: Optional[Path] = None,
        save_every: int = 0, keep_last: int = 0, resume: bool = False, group_by_length: bool = False,
        progress=None, record: Optional[Callable[..., None]] = None, metrics: Optional[Callable] = None
        ) -> list[dict[str, Any]]:
    """Train ``trainer.cfg.steps`` steps on ``records`` (any dataset; see :class:`Indexed`)."""
    cfg, rank, world = trainer.cfg, trainer.rank, trainer.world
    data = Indexed(records)
    if not len(data):
        raise RecipeError("train: the dataset holds no records")
    if cfg.balance is not None:
        if group_by_length:
            raise RecipeError("train: balance and group_by_length each choose the batches; use one")
        groups, chance = groups_and_chance(data)
        sampler = BalancedSampler(groups, cfg.batch_size, seed=cfg.seed, world=world, rank=rank,
                                  chance=chance, **cfg.balance)
    else:
        lengths = [data.length(i) for i in range(len(data))] if group_by_length else None
        sampler = BatchSampler(len(data), cfg.batch_size, seed=cfg.seed, world=world, rank=rank, lengths=lengths)
    history: list[dict[str, Any]] = []
    start, elapsed0 = 0, 0.0
    found = ckpt.latest(run_dir) if (resume and run_dir is not None) else None
    if found is not None:
        state = ckpt.load(found, model=trainer.model, optimizer=trainer.opt, rank=rank, world=world, owner=trainer)
        sampler.load_state_dict(state["sampler"])
        history, start = state["history"], int(state["step"])
        elapsed0 = history[-1]["elapsed_s"] if history else 0.0
        if rank == 0:
            announce(f"train: resuming from {found} (step {start} of {cfg.steps})", progress)
    if log_path is not None and rank == 0:
        kept = [json.dumps(h) for h in history if h["step"] % cfg.log_every == 0 or h["step"] == cfg.steps - 1]
        atomic_write_text(log_path, "".join(line + "\n" for line in kept))  # a resumed run drops later lines
        if record is not None:
            record(log_path)

    def save(step: int) -> Path:
        rngs = _gather(ckpt.rng_state(trainer), world)
        weights, opt_state = ckpt.trainable_state(trainer.model), ckpt.optimizer_state(trainer.opt)
        path = ckpt.step_folder(run_dir, step)
        if rank == 0:
            path = ckpt.save(run_dir, step, weights=weights, optimizer=opt_state, rng_states=rngs,
                             state={"sampler": sampler.state_dict(), "history": history,
                                    "scheduler": {"kind": "warmup_cosine", "step": step, "steps": cfg.steps,
                                                  "lr": history[-1]["lr"] if history else cfg.lr}},
                             keep_last=keep_last, record=record)
        if world > 1:
            import torch.distributed as dist

            dist.barrier()
        return path

    t0 = time.perf_counter()
    with StopSignal(quiet=rank != 0) as stop, TrainProgress(cfg.steps, "train", progress=progress if rank == 0 else False,
                                             unit="step", initial=start) as bar:
        for step in range(start, cfg.steps):
            t_step = time.perf_counter()
            indices = sampler.next()
            logged = trainer.step(step, [data[i] for i in indices])
            if isinstance(sampler, BalancedSampler):
                sampler.update(_group_sums([groups[i] for i in indices], trainer.record_errors, world))
                logged["mix"] = {g: round(float(v), 4) for g, v in zip(sampler.names, sampler.shares())}
            logged.update(step=step, elapsed_s=round(elapsed0 + time.perf_counter() - t0, 3))
            history.append(logged)
            if rank == 0:
                if log_path is not None and (step % cfg.log_every == 0 or step == cfg.steps - 1):
                    with open(log_path, "a") as fh:
                        fh.write(json.dumps(logged) + "\n")
                if metrics is not None:
                    metrics(logged)
                dt = time.perf_counter() - t_step
                bar.show(logged, logged.get("tokens", 0) / dt if dt > 0 else None)
            done = step + 1
            stopping = stop.agreed(world)
            if run_dir is not None and save_every and done < cfg.steps and (done % save_every == 0 or stopping):
                where = save(done)
            elif run_dir is not None and stopping:
                where = save(done)
            if stopping and done < cfg.steps:
                kept = f"checkpoint saved in {where}" if run_dir is not None else "nothing saved (no run folder)"
                raise JobInterrupted(f"train stopped after step {done} of {cfg.steps}; {kept}; "
                                     "rerun the same command with train.resume=true to continue")
    if world > 1:
        trainer.check_replicas()
    return history
