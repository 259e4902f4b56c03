"""Shared helpers every job uses, so that all jobs follow the same rules:

- :mod:`.run_folder`: write only into an empty folder or one an SDK run made (``run.json``);
  ``overwrite`` removes only files SDK runs recorded; output paths checked in one line.
- :mod:`earthmind_sdk.io.atomic`: temporary name, then rename (files and folders); it lives in
  ``io`` so that raster and checkpoint writers use it too, and is re-exported here.
- :mod:`.naming`: output names = input stem + short request hash.
- :mod:`.progress`: progress bar / periodic log line with ETA on stderr; ``--quiet``; callbacks.
- :mod:`.jsonl`: results appended and flushed per batch, resumed by id.
- :mod:`.interrupt`: Ctrl-C -> one line, exit 130, finished results kept.
- :mod:`.shard`: torchrun worlds, whole-batch splits, per-rank JSON-line parts merged in order.
- :mod:`.open_model`: what the user named (checkpoint, bundled spec, spec file) -> model and
  tokenizer; every job opens its model there.
- :mod:`.batch`: scene lists and the batch runner; :mod:`.quickstart`: ``job: quickstart``.

See /docs or ``JOBS_API.md`` for the list of functions.
"""
from ..io.atomic import atomic_dir, atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text
from .interrupt import EXIT_INTERRUPTED, interruptible, sigterm_as_interrupt
from .jsonl import JsonlStream, read_jsonl
from .naming import output_stem, request_hash
from .progress import Progress, ProgressEvent, announce, format_duration, is_quiet, progress, set_quiet
from .run_folder import (MANIFEST, RunFolder, check_output_path, checkpoint_fingerprint, foreign_entries,
                         open_job_folder, open_run_folder, read_manifest, recipe_hash, recorded)

__all__ = [
    "atomic_dir", "atomic_path", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
    "EXIT_INTERRUPTED", "interruptible", "sigterm_as_interrupt",
    "JsonlStream", "read_jsonl",
    "output_stem", "request_hash",
    "Progress", "ProgressEvent", "announce", "format_duration", "is_quiet", "progress", "set_quiet",
    "MANIFEST", "RunFolder", "check_output_path", "checkpoint_fingerprint", "foreign_entries",
    "open_job_folder", "open_run_folder", "read_manifest", "recipe_hash", "recorded",
]
