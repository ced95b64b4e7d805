"""gtmsim: a go-to-market simulator on Mesa.

Prospects move unaware → aware → lead → opportunity → customer under marketing
programs and sales reps, siloed or aligned. Start with `load_scenario` and `simulate`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from gtmsim.scenario import Scenario, ScenarioError, load_scenario, scenario_from_dict

if TYPE_CHECKING:
    from gtmsim.analysis.optimize import optimize
    from gtmsim.calibration import calibrate
    from gtmsim.forecasting import forecast
    from gtmsim.history import read_history
    from gtmsim.model import GTMModel, RunResult, simulate

try:
    __version__ = version("gtmsim")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = [
    "GTMModel",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "__version__",
    "calibrate",
    "explain",
    "forecast",
    "load_scenario",
    "optimize",
    "read_history",
    "scenario_from_dict",
    "sensitivity",
    "simulate",
]


# Where each public name lives; its module (Mesa, SALib, Optuna, pyabc) loads on first use,
# so `gtmsim --help` and `gtmsim check` start fast.
_LAZY = {
    "GTMModel": "gtmsim.model",
    "RunResult": "gtmsim.model",
    "simulate": "gtmsim.model",
    "explain": "gtmsim.analysis.explain",
    "optimize": "gtmsim.analysis.optimize",
    "sensitivity": "gtmsim.analysis.sensitivity",
    "calibrate": "gtmsim.calibration",
    "forecast": "gtmsim.forecasting",
    "read_history": "gtmsim.history",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gtmsim' has no attribute {name!r}")
