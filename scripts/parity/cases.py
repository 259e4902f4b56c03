"""What the parity harness compares: models, cases, targets. Plain data, imported by both sides
(the authors' venv and ours), so it needs nothing beyond the standard library."""
from __future__ import annotations

#: The tiny models built with the authors' code. Folder names deliberately do not say which
#: version they hold; the v1 folder's name contains "multi" (the old name-based rule would call
#: it v2), and a second v1 folder (hard links) has a neutral name.
MODELS = {
    "v1": {"folder": "model_a_multi", "aliases": ["model_c"], "fusion": "concat"},
    "v2": {"folder": "model_b", "aliases": [], "fusion": "hca"},
}

#: Seeds of the tiny builds (torch.manual_seed before the authors' constructor).
SEEDS = {"v1": 8, "v2": 9}

QUESTION = "<image>\nPlease segment the river in this image."
#: the same question without the placeholder: our prompt must place the image as the authors'
#: training data did ("<image>\n" + question), checked on token ids.
QUESTION_BARE = "Please segment the river in this image."

#: greedy steps generated; step 0 is forced to [SEG] on both sides (same logits processor), so
#: that the mask path runs on the [SEG] the model itself then reads as input.
NEW_TOKENS = 6
FORCE_SEG_STEP = 0


def force_seg(seg_id: int):
    """The logits processor both sides pass to ``generate``: only ``seg_id`` is possible at
    generated step ``FORCE_SEG_STEP``, every other step is left alone. Imports lazily, so this
    module stays importable with the standard library alone."""
    import torch
    from transformers import LogitsProcessor

    class ForceAt(LogitsProcessor):
        def __init__(self):
            self.calls = 0

        def __call__(self, input_ids, scores):
            if self.calls == FORCE_SEG_STEP:
                scores = torch.full_like(scores, float("-inf"))
                scores[:, seg_id] = 0.0
            self.calls += 1
            return scores

    return ForceAt()

#: inputs are 8-bit PNGs written by `ours.py prepare` from tests/data (see README.md)
CASES = [
    {"name": "v1_optical_1tile", "model": "v1", "images": {"optical": "optical_sq96.png"}},
    {"name": "v1_optical_13tile", "model": "v1", "images": {"optical": "optical_rmnp_rgb.png"}},
    {"name": "v1_paired_1tile", "model": "v1", "images": {"sar": "s1_sq96.png", "optical": "s2_sq96.png"}},
    {"name": "v1_paired_13tile", "model": "v1", "images": {"sar": "s1_96x72.png", "optical": "s2_96x72.png"}},
    {"name": "v2_paired_1tile", "model": "v2", "images": {"sar": "s1_sq96.png", "optical": "s2_sq96.png"}},
    {"name": "v2_paired_13tile", "model": "v2", "images": {"sar": "s1_96x72.png", "optical": "s2_96x72.png"}},
]

TOL = 1e-4


class Recorder:
    """Wraps methods of a model instance (either side's) to record inputs and outputs in ``rec``;
    ``restore()`` puts the original methods back."""

    def __init__(self):
        self.rec: dict = {}
        self._undo = []

    def wrap(self, obj, name, fn):
        orig = getattr(obj, name)
        had = name in vars(obj)
        setattr(obj, name, fn(orig))
        self._undo.append((obj, name, orig, had))

    def restore(self):
        for obj, name, orig, had in reversed(self._undo):
            if had:
                setattr(obj, name, orig)
            else:
                delattr(obj, name)
        self._undo.clear()
