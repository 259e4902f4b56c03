"""Progress with rate and ETA for every long job, on stderr so stdout stays parseable.

On a terminal or in a notebook: a ``tqdm.auto`` bar. Otherwise (logs, CI, pipes): one line every
``interval`` seconds, ``<desc>: 120/400 (30%) 4.1 it/s, ETA 1m08s``. ``progress=`` in the Python
API: ``None`` (the default: the process-wide setting, which ``--quiet`` turns off), ``True``,
``False``, or a callable that receives a :class:`ProgressEvent` per update instead.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional, Union

ProgressArg = Union[None, bool, Callable[["ProgressEvent"], None]]

_default_enabled = True


def set_quiet(quiet: bool = True) -> None:
    """Process-wide: silence progress and job announcements (``earthmind --quiet``)."""
    global _default_enabled
    _default_enabled = not quiet


def is_quiet() -> bool:
    """True when progress and announcements are silenced process-wide."""
    return not _default_enabled or os.environ.get("EARTHMIND_QUIET", "") not in ("", "0")


def announce(message: str, progress: ProgressArg = None) -> None:
    """One line to stderr for people (e.g. where a job's outputs go), unless quiet."""
    if progress is False or callable(progress) or (progress is None and is_quiet()):
        return
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ProgressEvent:
    """One update: ``done`` of ``total`` units after ``elapsed`` s; ``eta`` s (None: unknown)."""

    desc: str
    done: int
    total: Optional[int]
    elapsed: float
    rate: Optional[float]
    eta: Optional[float]
    finished: bool = False


def format_duration(seconds: Optional[float]) -> str:
    """``75`` -> ``1m15s``; ``None`` -> ``?``."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def _interactive() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) or "ipykernel" in sys.modules


class Progress:
    """A progress reporter; use as a context manager and call :meth:`update` per unit/batch."""

    def __init__(self, total: Optional[int], desc: str, *, progress: ProgressArg = None,
                 unit: str = "it", interval: Optional[float] = None, initial: int = 0):
        if interval is None:  # EARTHMIND_PROGRESS_INTERVAL: seconds between log lines (default 10)
            interval = float(os.environ.get("EARTHMIND_PROGRESS_INTERVAL") or 10.0)
        self.desc, self.total, self.unit, self.interval = desc, total, unit, interval
        self.done = self._start_done = initial
        self._t0 = self._last_log = time.monotonic()
        self._callback = progress if callable(progress) else None
        enabled = bool(progress) if progress is not None else not is_quiet()
        self._bar = None
        self._log = False
        if self._callback is None and enabled:
            if _interactive():
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, desc=desc, unit=unit, initial=initial, file=sys.stderr,
                                 dynamic_ncols=True, leave=True)
            else:
                self._log = True

    def event(self, finished: bool = False) -> ProgressEvent:
        """The current state (rate from units done in this process, so a resumed run's ETA is honest)."""
        elapsed = time.monotonic() - self._t0
        new = self.done - self._start_done
        rate = new / elapsed if elapsed > 0 and new > 0 else None
        eta = (self.total - self.done) / rate if rate and self.total is not None else None
        return ProgressEvent(self.desc, self.done, self.total, elapsed, rate, eta, finished)

    def update(self, n: int = 1) -> None:
        """``n`` more units done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._callback is not None:
            self._callback(self.event())
        elif self._log and time.monotonic() - self._last_log >= self.interval:
            self._last_log = time.monotonic()
            print(self.line(), file=sys.stderr, flush=True)

    def line(self) -> str:
        """The log line for the current state."""
        e = self.event()
        of = f"/{e.total}" if e.total is not None else ""
        pct = f" ({100 * e.done / e.total:.0f}%)" if e.total else ""
        rate = f"{e.rate:.2f} {self.unit}/s" if e.rate else f"? {self.unit}/s"
        return f"{self.desc}: {e.done}{of}{pct} {rate}, elapsed {format_duration(e.elapsed)}, ETA {format_duration(e.eta)}"

    def close(self) -> None:
        """Finish the bar (or the last log line / final callback)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._callback is not None:
            self._callback(self.event(finished=True))
        elif self._log:
            self._log = False
            print(self.line(), file=sys.stderr, flush=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(total: Optional[int], desc: str, *, progress: ProgressArg = None, unit: str = "it",
             interval: Optional[float] = None, initial: int = 0) -> Progress:
    """A :class:`Progress` (function form, for ``with progress(n, "eval") as bar:``)."""
    return Progress(total, desc, progress=progress, unit=unit, interval=interval, initial=initial)
