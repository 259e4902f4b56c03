"""Ctrl-C during a job: one line, exit code 130, finished results kept.

Jobs wrap their loop in :func:`interruptible`; a ``KeyboardInterrupt`` (or SIGTERM, turned into
one) becomes :class:`JobInterrupted` naming where the finished results are and how to resume.
The CLI prints it as one line and exits with :data:`EXIT_INTERRUPTED`.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator, Optional

from ..errors import JobInterrupted

EXIT_INTERRUPTED = 130


def _raise_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (``kill``, schedulers) like Ctrl-C inside the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interruptible(job: str, *, kept: Optional[str] = None, resume_hint: Optional[str] = None) -> Iterator[None]:
    """Turn Ctrl-C/SIGTERM inside the block into one-line :class:`JobInterrupted`.

    ``kept``: where finished results are (e.g. the run folder); ``resume_hint``: how to go on."""
    try:
        with sigterm_as_interrupt():
            yield
    except KeyboardInterrupt:
        msg = f"{job} interrupted"
        if kept:
            msg += f"; finished results are kept in {kept}"
        if resume_hint:
            msg += f"; {resume_hint}"
        raise JobInterrupted(msg) from None
