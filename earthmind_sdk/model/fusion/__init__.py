"""Token fusion: one token set per sensor -> the tokens the language model sees.

Components (registry ``fusions``): ``concat``, ``mma``, ``hca``; pruning in :mod:`.prune`;
plain-torch references in :mod:`.functional` and :mod:`.sap`; kernel dispatch in
:mod:`.dispatch`; the authors' formulations (benchmark baselines only) in :mod:`.original`.
"""
