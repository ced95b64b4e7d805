"""gtmsim: a go-to-market simulator on Mesa.

Prospects move unaware → aware → lead → opportunity → customer under marketing
programs and sales reps, siloed or aligned. Start with `load_scenario` and `simulate`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from gtmsim.scenario import Scenario, ScenarioError, load_scenario, scenario_from_dict

if TYPE_CHECKING:
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
    "forecast",
    "load_scenario",
    "read_history",
    "scenario_from_dict",
    "simulate",
]


def __getattr__(name: str) -> Any:
    # The model (and Mesa) loads on first use, so `gtmsim --help` and `gtmsim check` start fast.
    if name in ("GTMModel", "RunResult", "simulate"):
        from gtmsim import model

        return getattr(model, name)
    # Calibration and forecasts (pyabc) load on first use too.
    if name == "calibrate":
        from gtmsim.calibration import calibrate

        return calibrate
    if name == "forecast":
        from gtmsim.forecasting import forecast

        return forecast
    if name == "read_history":
        from gtmsim.history import read_history

        return read_history
    raise AttributeError(f"module 'gtmsim' has no attribute {name!r}")
