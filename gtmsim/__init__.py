"""gtmsim: a go-to-market simulator on Mesa.

Prospects move unaware → aware → lead → opportunity → customer under marketing
programs and sales reps, siloed or aligned. Start with `load_scenario` and `simulate`.
"""

from importlib.metadata import PackageNotFoundError, version

from gtmsim.model import GTMModel, RunResult, simulate
from gtmsim.scenario import Scenario, ScenarioError, load_scenario, scenario_from_dict

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
    "load_scenario",
    "scenario_from_dict",
    "simulate",
]
