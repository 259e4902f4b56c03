"""Readers for the published formats of EarthMind's training mixture, as registered datasets.

Each reader checks every entry up front (a malformed one is named by file and index, then
skipped or fatal as ``on_error`` says) and builds a :class:`~earthmind_sdk.contracts.Record`
only when asked for it (``dataset[i]``), so a mixture of 100k referring expressions does not
hold 100k decoded masks. ``length(i)`` is a cheap text-length estimate for length-grouped
sampling.

* :mod:`.llava`   - LLaVA-style conversation JSON (multi-turn, ``<image>`` placement)
* :mod:`.refseg`  - RRSIS-D (RefCOCO style) and RefSegRS as they ship
* :mod:`.osprey`  - Osprey-style region captions (masks as ``<vp>`` region prompts)
* :mod:`.paired`  - the authors' paired SAR + optical folders
* :mod:`.mixture` - several datasets with per-dataset repeats
"""
