"""The analysis layer: verbs on one evaluation engine, a module per verb.

- `points`: evaluate points (a base scenario + overrides) × replications on common random
  numbers through `gtmsim.experiment` (executors, resumable folders, manifest).
- `explain`: a gap between two scenarios split into Shapley contributions of each key
  that differs.
- `sensitivity`: Morris screening and Sobol indices (SALib) of key outcomes over ranges
  of scenario keys, replication noise kept apart.
- `optimize`: a plan searched under constraints (Optuna).

Submodules load on first use, so importing `gtmsim.analysis` costs nothing. The verbs'
functions are `gtmsim.explain(...)` and `gtmsim.sensitivity(...)` (or
`gtmsim.analysis.explain.explain`): a package attribute named like its submodule would be
replaced by the submodule once imported.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "evaluate": "gtmsim.analysis.points",
    "read_points": "gtmsim.analysis.points",
    "shapley": "gtmsim.analysis.explain",
}

__all__ = ["evaluate", "read_points", "shapley"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gtmsim.analysis' has no attribute {name!r}")
