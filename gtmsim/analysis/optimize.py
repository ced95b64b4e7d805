"""Optimise a plan: search numeric scenario keys under constraints with Optuna.

Every trial is one point (the starting scenario with the varied keys set) evaluated on the
same replication seeds through `gtmsim.experiment.compare` (common random numbers: trials
differ only where their plans differ), on the experiment's executors, each point in its
own resumable results folder under `points/`. The study lives in an Optuna RDB storage, an
SQLite file `study.db` in the results folder: an interrupted search continues with
`resume=True`, and `optuna-dashboard sqlite:///DIR/study.db` shows it.

The sampler is Optuna's TPE, seeded afresh for every trial from (seed, trial index), so a
search of N trials gives the same trials whether it ran at once or was interrupted and
resumed. Constraints on derived quantities (mean monthly marketing spend, monthly cost,
headcount, ...) go to TPE as constraint values (feasible when ≤ 0). Because the best of
many noisy trials flatters itself (the optimiser's curse), the best few are evaluated
again on fresh seeds and compared with the starting plan by paired intervals; the plan
chosen there is written as `best.toml`, a scenario file that `extends` the start.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gtmsim import experiment as ex
from gtmsim.analysis import points as _points
from gtmsim.results import (
    MANIFEST,
    ResultsError,
    atomic_write,
    atomic_write_many,
    csv_writer,
    folder_kind,
    json_writer,
    parquet_writer,
    read_manifest,
    safe_name,
    versions,
)
from gtmsim.scenario import (
    Scenario,
    ScenarioError,
    _override_pairs,
    find_scenario,
    load_scenario,
    shipped_dir,
    with_changes,
)

if TYPE_CHECKING:
    import optuna
    from matplotlib.axes import Axes

KIND = "optimize"
TRIALS = "trials.parquet"
SUMMARY = "summary.csv"
BEST = "best.toml"
STUDY_DB = "study.db"
POINTS_DIR = "points"
REEVALUATION_DIR = "reevaluation"
CHARTS_DIR = "charts"
PARETO_DIR = "pareto"
STUDY_NAME = "gtmsim-optimize"
MAX_REJECTED_IN_A_ROW = 500  # proposals breaking a plan limit before the search gives up
# Manifest keys that define a study: resuming refuses a folder that differs in any
# (`trials` may grow: more trials continue the same search).
_IDENTITY_KEYS = ("kind", "scenario", "vary", "constraints", "objectives", "target", "reps",
                  "seed", "seeds", "months", "startup_trials", "draws")
POSTERIOR_STREAM = 0xD4A  # seeds the posterior draws apart from the replication seeds


class OptimizeError(ex.ExperimentError):
    """Bad optimisation input or a results folder that cannot hold this study."""


# --------------------------------------------------------------------------- objectives


@dataclass(frozen=True)
class Objective:
    """What a study optimises, computed per replication from a run's key outcomes."""

    name: str
    outcome: str | None  # the key outcome (`gtmsim.experiment.OUTCOMES`); None for p_target
    direction: str  # "maximize" or "minimize"
    label: str
    unit: str


OBJECTIVES: dict[str, Objective] = {
    "bookings": Objective("bookings", "cumulative_bookings", "maximize",
                          "Cumulative bookings", "$"),
    "net": Objective("net", "net_bookings", "maximize", "Net bookings (bookings − cost)", "$"),
    "cac": Objective("cac", "cac", "minimize", "CAC", "$/customer"),
    "p_target": Objective("p_target", None, "maximize",
                          "Probability of reaching the bookings target", "fraction"),
    "cost": Objective("cost", "total_cost", "minimize", "Total cost", "$"),
}


def _objective_values(obj: Objective, outcomes: pd.DataFrame, target: float | None) -> np.ndarray:
    """One value per replication."""
    if obj.outcome is None:
        return (outcomes["cumulative_bookings"].to_numpy(dtype=float) >= float(target)).astype(float)
    return outcomes[obj.outcome].to_numpy(dtype=float)


def _mean_se(obj: Objective, values: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error (binomial for a probability)."""
    x = values[~np.isnan(values)]
    if len(x) == 0:
        return float("nan"), float("nan")
    mean = float(x.mean())
    if obj.outcome is None:
        return mean, math.sqrt(mean * (1 - mean) / len(x))
    return mean, float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")


# --------------------------------------------------------------------------- constraints


@dataclass(frozen=True)
class Quantity:
    """A derived quantity a constraint may name, reduced from one run's monthly table."""

    name: str
    unit: str
    description: str
    reduce: Callable[[pd.DataFrame], float] = field(repr=False)


def _quantities() -> dict[str, Quantity]:
    found = {
        "marketing_spend": Quantity("marketing_spend", "$/month", "mean monthly marketing spend",
                                    lambda m: float(m["marketing_spend"].mean())),
        "sales_cost": Quantity("sales_cost", "$/month", "mean monthly sales cost",
                               lambda m: float(m["sales_cost"].mean())),
        "monthly_cost": Quantity("monthly_cost", "$/month",
                                 "mean monthly total cost (marketing + sales + alignment)",
                                 lambda m: float(ex.total_cost(m).mean())),
        "headcount": Quantity("headcount", "reps", "the largest sales team in any month",
                              lambda m: float(m["reps"].max())),
    }
    for o in ex.OUTCOMES:  # every key outcome, as a mean over replications
        found.setdefault(o.name, Quantity(o.name, o.unit, o.description, o.reduce))
    return found


QUANTITIES: dict[str, Quantity] = _quantities()
# Quantities a plan fixes before any simulation (spend and team follow the plan, not the market).
PLAN_QUANTITIES = ("marketing_spend", "sales_cost", "monthly_cost", "headcount", "total_cost")


def _plan_quantities_over(plan: Scenario, months: int,
                          draws: Sequence[Mapping[str, Any]] | None) -> dict[str, float]:
    """`plan_quantities` of `plan`, or with parameter draws their mean over the draws (the
    replications run with them, and constraints hold on means over replications)."""
    if not draws:
        return plan_quantities(plan, months)
    each = [plan_quantities(with_changes(plan, dict(d), "--posterior") if d else plan, months)
            for d in draws]
    return {k: float(np.mean([q[k] for q in each])) for k in each[0]}


def plan_quantities(scenario: Scenario, months: int | None = None) -> dict[str, float]:
    """The plan quantities of `scenario` over `months`, read from the plan month by month
    as the model applies it (timeline changes at the start of their month, in file order;
    the one-off alignment cost in month 1 or the month a change sets it)."""
    from gtmsim.scenario import flatten_changes

    horizon = months or scenario.months
    config = scenario
    spend, sales, cost, reps = [], [], [], []
    for month in range(1, horizon + 1):
        once = month == 1
        for change in scenario.timeline:
            if change.month == month:
                config = with_changes(config, change.set, f"timeline month {month}")
                once = once or "alignment.cost_once" in flatten_changes(change.set)[0]
        m = sum(p.monthly_budget for p in config.marketing.programs.values())
        s = config.sales.reps * config.sales.cost_per_rep_month
        a = config.alignment.cost_monthly + (config.alignment.cost_once if once else 0.0)
        spend.append(m)
        sales.append(s)
        cost.append(m + s + a)
        reps.append(config.sales.reps)
    return {"marketing_spend": float(np.mean(spend)), "sales_cost": float(np.mean(sales)),
            "monthly_cost": float(np.mean(cost)), "headcount": float(max(reps)),
            "total_cost": float(np.sum(cost))}

_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|≤|≥|<|>)\s*"
                         r"([-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Constraint:
    """`quantity <= bound` or `quantity >= bound`, on the mean over replications."""

    quantity: str
    op: str  # "<=" or ">="
    bound: float

    @property
    def text(self) -> str:
        return f"{self.quantity}{self.op}{self.bound:g}"

    def violation(self, value: float) -> float:
        """≤ 0 when the constraint holds (Optuna's convention); how far off otherwise."""
        if not math.isfinite(value):
            return math.inf
        return value - self.bound if self.op == "<=" else self.bound - value

    def holds(self, value: float) -> bool:
        return self.violation(value) <= 1e-9 * max(1.0, abs(self.bound))


def parse_constraint(text: str) -> Constraint:
    """Parse `QUANTITY<=NUMBER` or `QUANTITY>=NUMBER` (no code is evaluated).

    `<` and `>` read as `<=` and `>=` (the quantities are continuous).

    Raises:
        ScenarioError: unparsable, or naming an unknown quantity (with the nearest name).
    """
    if not isinstance(text, str):
        raise ScenarioError([f"--constraint {text!r}: expected text like marketing_spend<=48000"])
    found = _CONSTRAINT.match(text)
    if not found:
        raise ScenarioError([(f"--constraint {text}: cannot read it; expected QUANTITY<=NUMBER "
                              "or QUANTITY>=NUMBER, e.g. marketing_spend<=48000")])
    name, op, raw = found.groups()
    if name not in QUANTITIES:
        near = difflib.get_close_matches(name, list(QUANTITIES), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise ScenarioError([(f"--constraint {text}: unknown quantity '{name}'{hint} Known: "
                              f"{', '.join(QUANTITIES)}")])
    bound = float(raw.replace("_", ""))
    if not math.isfinite(bound):
        raise ScenarioError([f"--constraint {text}: the bound must be a finite number"])
    return Constraint(name, {"<": "<=", "≤": "<=", ">": ">=", "≥": ">="}.get(op, op), bound)


# --------------------------------------------------------------------------- varied keys

_VARY = re.compile(r"^(?P<low>[^:]+):(?P<high>[^:]+)(?::(?P<kind>[A-Za-z]+))?$")
_TIMELINE_KEY = re.compile(r"^timeline\[(\d+)\]\.(month|set\.(.+))$")


@dataclass(frozen=True)
class Vary:
    """A numeric scenario key searched between `low` and `high` (inclusive)."""

    key: str
    low: float
    high: float
    integer: bool

    def spec(self) -> str:
        return f"{self.key}={_num(self.low)}:{_num(self.high)}{':int' if self.integer else ''}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _current(start: Scenario, key: str) -> tuple[bool, Any, str | None]:
    """(found, value, problem) of a dotted key in the starting scenario."""
    data = start.to_dict()
    tl = _TIMELINE_KEY.match(key)
    if tl:
        i = int(tl.group(1))
        entries = data.get("timeline", [])
        if i >= len(entries):
            return False, None, (f"{key}: the scenario has {len(entries)} timeline entr"
                                 f"{'y' if len(entries) == 1 else 'ies'} (timeline[0] is the first)")
        if tl.group(2) == "month":
            return True, entries[i]["month"], None
        sub = tl.group(3)
        if sub not in entries[i]["set"]:
            near = difflib.get_close_matches(sub, list(entries[i]["set"]), n=1)
            hint = f"; did you mean 'timeline[{i}].set.{near[0]}'?" if near else ""
            return False, None, f"{key}: timeline[{i}] does not set '{sub}'{hint}"
        return True, entries[i]["set"][sub], None
    node: Any = data
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(parts[:depth]) or "the scenario"
            names = list(node) if isinstance(node, dict) else []
            near = difflib.get_close_matches(part, [str(n) for n in names], n=1)
            hint = (f"; did you mean '{'.'.join([*parts[:depth], near[0]])}'?" if near
                    else (f"; {where} holds {', '.join(map(str, names))}" if names else ""))
            return False, None, f"{key}: unknown key '{part}' in {where}{hint}"
        node = node[part]
    return True, node, None


def start_value(start: Scenario, key: str) -> Any:
    """The starting plan's value of a varied key (a lever left to the preset: the preset's)."""
    _, value, _ = _current(start, key)
    if value is None and key.startswith("alignment."):
        value = getattr(start.levers, key.split(".", 1)[1], None)
    return value


def _apply(start: Scenario, point: Mapping[str, Any], source: str = "--vary") -> Scenario:
    """The starting scenario with the point's keys set, validated again."""
    leaves: dict[str, Any] = {}
    timeline = start.to_dict().get("timeline", [])
    touched = False
    for key, value in point.items():
        tl = _TIMELINE_KEY.match(key)
        if tl:
            entry = timeline[int(tl.group(1))]
            if tl.group(2) == "month":
                entry["month"] = value
            else:
                entry["set"][tl.group(3)] = value
            touched = True
        else:
            leaves[key] = value
    if touched:
        leaves["timeline"] = timeline
    return with_changes(start, leaves, source)


def parse_vary(texts: Sequence[str], start: Scenario) -> list[Vary]:
    """Parse `--vary KEY=LOW:HIGH[:int]` against the starting scenario.

    A key the scenario holds as a whole number (`sales.reps`, a timeline entry's month) is
    searched over whole numbers without `:int`. Keys: any numeric scenario key — dotted
    (`marketing.programs.content.monthly_budget`, `alignment.sla_days`), a timeline entry's
    month (`timeline[0].month`) or a value it sets (`timeline[0].set.sales.reps`).

    Raises:
        ScenarioError: every problem found, one message each.
    """
    problems: list[str] = []
    found: list[Vary] = []
    for text in texts:
        key, sep, raw = (s.strip() for s in str(text).partition("="))
        if not sep or not key or not raw:
            problems.append(f"--vary {text}: expected KEY=LOW:HIGH or KEY=LOW:HIGH:int, "
                            "e.g. sales.reps=2:10")
            continue
        if any(v.key == key for v in found):
            problems.append(f"--vary {key}: given twice")
            continue
        if key in ("seed", "months", "name", "question"):
            problems.append(f"--vary {key}: not a plan key (use --seed/--reps for seeds and "
                            "--months for the horizon)")
            continue
        m = _VARY.match(raw)
        low = high = None
        here: list[str] = []
        if not m or (m.group("kind") and m.group("kind") != "int"):
            here.append(f"--vary {key}={raw}: expected LOW:HIGH or LOW:HIGH:int with numbers, "
                        f"e.g. {key}=0:48000")
        else:
            try:
                low, high = float(m.group("low")), float(m.group("high"))
            except ValueError:
                here.append(f"--vary {key}={raw}: LOW and HIGH must be numbers, e.g. {key}=0:48000")
            else:
                if not (math.isfinite(low) and math.isfinite(high)):
                    here.append(f"--vary {key}={raw}: LOW and HIGH must be finite numbers")
                elif low >= high:
                    here.append(f"--vary {key}={raw}: LOW ({_num(low)}) must be below HIGH "
                                f"({_num(high)})")
        ok, value, problem = _current(start, key)
        if problem:
            here.append(f"--vary {problem}")
        integer = bool(m and m.group("kind") == "int")
        if ok:
            if value is not None and not _is_number(value):
                shown = json.dumps(value) if isinstance(value, str) else type(value).__name__
                here.append(f"--vary {key}: not a numeric key (it holds {shown}); optimize "
                            "searches numbers between LOW and HIGH")
                ok = False
            elif isinstance(value, int) and not isinstance(value, bool):
                integer = True  # the schema holds it as a whole number
        if (integer and low is not None and high is not None and not here
                and not (low.is_integer() and high.is_integer())):
            here.append(f"--vary {key}={raw}: a whole-number key needs whole LOW and HIGH")
        if ok and not here:
            for end in (low, high):
                v = int(end) if integer else end
                try:
                    _apply(start, {key: v})
                except ScenarioError as exc:
                    here += [f"--vary {key}={raw}: {p.removeprefix('--vary: ')}"
                             for p in exc.problems]
        if here:
            problems += [p for p in here if p not in problems]
            continue
        found.append(Vary(key, float(low), float(high), integer))
    if not texts:
        problems.append("--vary: give at least one KEY=LOW:HIGH to search")
    if problems:
        raise ScenarioError(problems)
    return found


def parse_objectives(text: str | Sequence[str], target: float | None) -> list[Objective]:
    """`bookings`, `net`, `cac`, `p_target` or `cost`; several, comma-separated, give a
    Pareto front (e.g. `bookings,cost`)."""
    names = ([s.strip() for s in text.split(",")] if isinstance(text, str)
             else [str(s).strip() for s in text])
    problems = []
    found: list[Objective] = []
    for name in names:
        if name not in OBJECTIVES:
            near = difflib.get_close_matches(name, list(OBJECTIVES), n=1)
            hint = f"did you mean '{near[0]}'? " if near else ""
            problems.append(f"--objective {name}: unknown objective; {hint}expected one of "
                            f"{', '.join(OBJECTIVES)} (comma-separated for a Pareto front)")
        elif any(o.name == name for o in found):
            problems.append(f"--objective {name}: given twice")
        else:
            found.append(OBJECTIVES[name])
    if not names or not any(names):
        problems.append("--objective: expected one of " + ", ".join(OBJECTIVES))
    uses_target = any(o.outcome is None for o in found)
    if uses_target and (target is None or not _is_number(target) or not math.isfinite(target)):
        problems.append("--objective p_target: needs --target X, the cumulative bookings to reach")
    if target is not None and not uses_target:
        problems.append("--target: only the p_target objective uses a target; add "
                        "--objective p_target or leave --target out")
    if problems:
        raise ScenarioError(problems)
    return found


# --------------------------------------------------------------------------- results


@dataclass
class OptimizeResult:
    """The result of `optimize`.

    Attributes:
        folder: the results folder.
        trials: one row per trial (see `trials.parquet` in docs/analysis.md).
        start: the starting plan (with `--set` overrides).
        best: the chosen plan's values of the varied keys (None when no trial was feasible).
        best_scenario: the chosen plan as a scenario (None when no trial was feasible).
        reevaluation: the start and the best few on fresh seeds, compared with the start.
        summary_table: the re-evaluation's summary, one row per plan and key outcome.
        objectives, constraints, vary: what was searched.
        resumed: trials read back from the study instead of evaluated.
        elapsed_s: wall time of this call.
    """

    folder: Path
    trials: pd.DataFrame
    start: Scenario
    best: dict[str, Any] | None
    best_scenario: Scenario | None
    best_trial: int | None
    reevaluation: ex.Experiment | None
    summary_table: pd.DataFrame
    objectives: list[Objective]
    constraints: list[Constraint]
    vary: list[Vary]
    resumed: int = 0
    elapsed_s: float = 0.0
    kept_start: bool = False  # no searched plan did better than the start on fresh seeds

    def summary(self) -> pd.DataFrame:
        return self.summary_table

    def study(self) -> optuna.Study:
        """The Optuna study, loaded from `study.db`."""
        import optuna

        return optuna.load_study(study_name=STUDY_NAME, storage=_storage_url(self.folder))


def _storage_url(folder: Path) -> str:
    return f"sqlite:///{(Path(folder) / STUDY_DB).resolve()}"


def _point_folder(folder: Path, point: Mapping[str, Any]) -> Path:
    """Each distinct point has its own resumable compare folder (a repeated point reuses it)."""
    digest = hashlib.sha1(json.dumps(dict(point), sort_keys=True).encode()).hexdigest()[:12]
    return folder / POINTS_DIR / digest


def _sampler_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def _draw_seed(seed: int) -> tuple[int, int]:
    """The seed of the posterior draws of a study (or of its re-evaluation) on `seed`."""
    return seed % 2**32, POSTERIOR_STREAM


def _fresh_base(seed: int) -> int:
    """The base seed of the re-evaluation: independent of the search's seeds."""
    state = np.random.SeedSequence([seed, 0x0E7A]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def _evaluate(runs: pd.DataFrame, exp_: ex.Experiment, objectives: Sequence[Objective],
              constraints: Sequence[Constraint], target: float | None) -> dict[str, Any]:
    """Objective means and standard errors, quantities and feasibility of one point."""
    outcomes = exp_.outcomes()
    out: dict[str, Any] = {}
    for obj in objectives:
        out[f"{obj.name}_mean"], out[f"{obj.name}_se"] = _mean_se(
            obj, _objective_values(obj, outcomes, target))
    per_run = [g.sort_values("month") for _, g in runs.groupby("replication", sort=True)]
    violations = []
    for c in constraints:
        q = QUANTITIES[c.quantity]
        value = float(np.nanmean([q.reduce(m) for m in per_run]))
        out[c.quantity] = value
        violations.append(c.violation(value))
    out["violations"] = violations
    out["feasible"] = all(v <= 1e-9 * max(1.0, abs(c.bound))
                          for v, c in zip(violations, constraints, strict=True))
    return out


def _check_folder(folder: Path, identity: dict[str, Any], resume: bool, force: bool) -> bool:
    """Whether the folder holds this study already (to resume); writes nothing.

    Raises:
        ResultsError / OptimizeError: the folder cannot hold this study.
    """
    if not folder.exists():
        return False
    if not folder.is_dir():
        raise ResultsError(f"{folder}: exists and is not a folder")
    entries = [p.name for p in folder.iterdir() if not p.name.endswith(".tmp")]
    if not entries:
        return False
    if MANIFEST not in entries:
        folder_kind(folder)  # raises: other files, not a results folder
    stored = read_manifest(folder)
    if stored.get("kind") != KIND:
        raise OptimizeError(f"{folder}: holds a {stored.get('kind', 'different')} results folder, "
                            "not an optimize study; choose another --out")
    if force:
        return False
    if not resume:
        raise OptimizeError(f"{folder}: already holds an optimize study; add --resume to continue "
                            "it (a larger --trials adds trials), --force to replace it, or "
                            "choose another --out")
    diff = [k for k in _IDENTITY_KEYS if stored.get(k) != identity.get(k)]
    if diff:
        raise OptimizeError(f"{folder}: holds a different optimize study (differs in "
                            f"{', '.join(diff)}); --resume continues only the same study, "
                            "--force replaces it")
    return True


def _clear(folder: Path) -> None:
    """--force: remove what an optimize study wrote."""
    for name in (POINTS_DIR, REEVALUATION_DIR, CHARTS_DIR, PARETO_DIR):
        shutil.rmtree(folder / name, ignore_errors=True)
    for name in (STUDY_DB, TRIALS, SUMMARY, BEST, MANIFEST, "report.html"):
        (folder / name).unlink(missing_ok=True)


# --------------------------------------------------------------------------- best.toml


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = [f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()
                 if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    raise TypeError(f"cannot write {value!r} as TOML")


def _leaves(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out = []
    for k, v in data.items():
        if isinstance(v, Mapping) and v:
            out += _leaves(v, (*prefix, str(k)))
        elif v is not None:
            out.append(((*prefix, str(k)), v))
    return out


def _extends_ref(source: Path | None, folder: Path) -> str | None:
    """How best.toml names the starting file: a shipped name, or a path relative to it."""
    if source is None:
        return None
    source = source.resolve()
    if source.parent == shipped_dir().resolve():
        return source.stem
    try:
        return os.path.relpath(source, folder.resolve())
    except ValueError:  # another drive on Windows
        return str(source)


def best_toml(start: Scenario, source: Path | None, folder: Path, values: Mapping[str, Any],
              overrides: Sequence[tuple[str, Any]], header: Sequence[str]) -> str:
    """A scenario file that `extends` the start and sets the chosen values.

    Without a starting file (a `Scenario` given in Python), the whole scenario is written.
    """
    lines = [f"# {h}" for h in header]
    ref = _extends_ref(source, folder)
    best = _apply(start, values)
    name = safe_name(f"{start.name}-best"[: 100]) if start.name else "best"
    settings: dict[str, Any] = {}
    if ref is None:
        data = best.to_dict()
        data.pop("name", None)
        data.pop("question", None)
        timeline = data.pop("timeline", [])
        settings = {".".join(k): v for k, v in _leaves(data)}
        if timeline:
            settings["timeline"] = timeline
    else:
        for key, value in overrides:
            settings[key] = value
        timeline_changed = False
        for key, value in values.items():
            if _TIMELINE_KEY.match(key):
                timeline_changed = True
            else:
                settings[key] = value
        if timeline_changed:
            settings["timeline"] = best.to_dict()["timeline"]
    if ref is not None:
        lines.append(f"extends = {_toml_value(ref)}")
    lines.append(f"name = {_toml_value(name)}")
    question = f"The plan gtmsim optimize chose, starting from {start.name}"
    lines.append(f"question = {_toml_value(question)}")
    for key, value in settings.items():
        if key == "timeline":
            continue
        lines.append(f"{'.'.join(_toml_key(p) for p in key.split('.'))} = {_toml_value(value)}")
    if "timeline" in settings:
        entries = [{k: v for k, v in e.items() if not (k == "note" and v == "")}
                   for e in settings["timeline"]]
        lines.append("timeline = [")
        lines += [f"  {_toml_value(e)}," for e in entries]
        lines.append("]")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- charts


def plot_search(trials: pd.DataFrame, objective: str | None = None, *,
                ax: Axes | None = None) -> Axes:
    """The objective of each trial (mean ± 1.96 standard errors), feasible trials filled,
    infeasible hollow, and the best feasible so far as a step line."""
    import matplotlib.pyplot as plt

    from gtmsim.charts import PALETTE

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    name = objective or next(c[:-5] for c in trials.columns if c.endswith("_mean"))
    obj = OBJECTIVES[name]
    t = trials[(trials["state"] == "COMPLETE") & trials["simulated"]].sort_values("trial")
    mean, se = t[f"{name}_mean"], t[f"{name}_se"].fillna(0.0)
    feas = t["feasible"].astype(bool)
    ax.errorbar(t.loc[feas, "trial"], mean[feas], yerr=1.96 * se[feas], fmt="o",
                color=PALETTE[0], ms=5, capsize=2, label="feasible trial")
    if (~feas).any():
        ax.errorbar(t.loc[~feas, "trial"], mean[~feas], yerr=1.96 * se[~feas], fmt="o",
                    mfc="none", color="#7f7f7f", ms=5, capsize=2,
                    label="breaks a constraint")
    if feas.any():
        sign = 1 if obj.direction == "maximize" else -1
        best = (sign * mean.where(feas)).cummax() * sign
        ax.step(t["trial"], best, where="post", color=PALETTE[1], label="best feasible so far")
    if "start" in t and t["start"].any():
        s = t[t["start"]]
        ax.scatter(s["trial"], s[f"{name}_mean"], marker="*", s=140, color=PALETTE[3],
                   zorder=3, label="starting plan")
    _money_axis(ax.yaxis, obj.unit)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{obj.label} ({obj.unit})")
    ax.set_title(f"The search: {obj.label.lower()} by trial (mean ± 1.96 SE over replications)")
    ax.legend(loc="best", fontsize="small")
    return ax


def plot_pareto(trials: pd.DataFrame, objectives: Sequence[str], *, ax: Axes | None = None) -> Axes:
    """Two objectives of every feasible trial, the Pareto front joined."""
    import matplotlib.pyplot as plt

    from gtmsim.charts import PALETTE

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    a, b = (OBJECTIVES[n] for n in objectives[:2])
    t = trials[(trials["state"] == "COMPLETE") & trials["simulated"]
               & trials["feasible"].astype(bool)]
    ax.scatter(t[f"{a.name}_mean"], t[f"{b.name}_mean"], color="#7f7f7f", s=18, label="trial")
    front = t[t["pareto"].astype(bool)].sort_values(f"{a.name}_mean")
    ax.plot(front[f"{a.name}_mean"], front[f"{b.name}_mean"], "o-", color=PALETTE[1],
            label="Pareto front")
    _money_axis(ax.xaxis, a.unit)
    _money_axis(ax.yaxis, b.unit)
    ax.set_xlabel(f"{a.label} ({a.unit})")
    ax.set_ylabel(f"{b.label} ({b.unit})")
    ax.set_title("Pareto front of the feasible trials")
    ax.legend(loc="best", fontsize="small")
    return ax


def _money_axis(axis: Any, unit: str) -> None:
    import matplotlib.ticker

    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(
        lambda v, _pos: ex.format_value(unit, v)))


def _png_writer(draw: Callable[[Axes], Any]) -> Callable[[Path], None]:
    """`gtmsim.analysis.plots.figure_writer` on the Agg backend; matplotlib loads here."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from gtmsim.analysis.plots import figure_writer

    return figure_writer(draw)


# --------------------------------------------------------------------------- the search


def _trials_table(study: optuna.Study, vary: Sequence[Vary], objectives: Sequence[Objective],
                  constraints: Sequence[Constraint], folder: Path) -> pd.DataFrame:
    rows = []
    front = _pareto_front(study, objectives) if len(objectives) > 1 else set()
    for t in study.get_trials(deepcopy=False):
        if not t.user_attrs.get("evaluated"):
            continue
        u = t.user_attrs
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name,
                               "start": bool(u.get("start", False)),
                               "simulated": bool(u.get("simulated", False))}
        for v in vary:
            row[v.key] = t.params.get(v.key)
        for o in objectives:
            row[f"{o.name}_mean"] = u.get(f"{o.name}_mean", np.nan)
            row[f"{o.name}_se"] = u.get(f"{o.name}_se", np.nan)
        for c in constraints:
            row[c.quantity] = u.get(c.quantity, np.nan)
        row["feasible"] = bool(u.get("feasible", False))
        if len(objectives) > 1:
            row["pareto"] = t.number in front and row["feasible"]
        row["folder"] = u.get("folder", "")
        row["seconds"] = u.get("seconds", np.nan)
        rows.append(row)
    cols = ["trial", "state", "start", "simulated", *(v.key for v in vary),
            *(f"{o.name}_{s}" for o in objectives for s in ("mean", "se")),
            *dict.fromkeys(c.quantity for c in constraints), "feasible",
            *(["pareto"] if len(objectives) > 1 else []), "folder", "seconds"]
    table = pd.DataFrame(rows, columns=cols)
    for v in vary:
        table[v.key] = table[v.key].astype("int64" if v.integer else "float64")
    return table


def _pareto_front(study: optuna.Study, objectives: Sequence[Objective]) -> set[int]:
    """Numbers of the feasible complete trials no other feasible trial dominates."""
    import optuna

    signs = np.array([1.0 if o.direction == "maximize" else -1.0 for o in objectives])
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.user_attrs.get("feasible") and t.user_attrs.get("simulated")]
    values = np.array([np.asarray(t.values) * signs for t in done]).reshape(len(done), -1)
    front = set()
    for i, t in enumerate(done):
        dominated = np.any(np.all(values >= values[i], axis=1) & np.any(values > values[i], axis=1))
        if not dominated:
            front.add(t.number)
    return front


def _candidates(trials: pd.DataFrame, objectives: Sequence[Objective], top: int) -> list[int]:
    """Trial numbers to evaluate again: the best `top` feasible distinct plans (single
    objective), or up to `top` plans of the Pareto front, best on the first objective first."""
    ok = trials[(trials["state"] == "COMPLETE") & trials["simulated"] & trials["feasible"]
                & ~trials["start"]]
    if len(objectives) > 1:
        ok = ok[ok["pareto"]]
    first = objectives[0]
    ok = ok.sort_values(f"{first.name}_mean", ascending=first.direction == "minimize",
                        kind="stable")
    seen: set[str] = set()
    picked = []
    for _, r in ok.iterrows():
        sig = r["folder"]  # one folder per distinct point
        if sig in seen:
            continue
        seen.add(sig)
        picked.append(int(r["trial"]))
        if len(picked) >= top:
            break
    return picked


def optimize(
    scenario: Scenario | str | Path,
    vary: Sequence[str] | Sequence[Vary],
    *,
    constraints: Sequence[str] = (),
    objective: str | Sequence[str] = "bookings",
    target: float | None = None,
    trials: int = 40,
    reps: int = 8,
    seed: int | None = None,
    months: int | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    top: int = 3,
    reevaluate_reps: int | None = None,
    startup_trials: int = 10,
    progress: Callable[[int, int], None] | None = None,
    command: Sequence[str] | None = None,
    yes: bool = False,
    posterior: str | Path | None = None,
) -> OptimizeResult:
    """Search the varied keys for the plan that does best on the objective(s) under the
    constraints; evaluate the best few again on fresh seeds against the starting plan.

    Args:
        scenario: the starting plan: a `Scenario`, a file or a shipped name.
        vary: `KEY=LOW:HIGH[:int]` texts (or `Vary`s); see `parse_vary`.
        constraints: `QUANTITY<=NUMBER` / `QUANTITY>=NUMBER` on a mean over replications;
            quantities in `QUANTITIES` (marketing_spend, monthly_cost, headcount, ...).
        objective: "bookings", "net", "cac", "p_target", "cost", or several
            comma-separated for a Pareto front ("bookings,cost").
        target: cumulative bookings to reach, for "p_target".
        trials: trials in the study in all (with `resume`, more continue the search).
        reps: replications per trial; every trial runs on the same seeds.
        seed: base seed of the replication seeds and the sampler (default: the scenario's).
        months, overrides, workers, scheduler, yes: as for `gtmsim.experiment.compare`.
        out: the results folder (default results/optimize-<name>).
        resume: continue the study in `out`; force: replace it.
        top: plans evaluated again on fresh seeds beside the starting plan.
        reevaluate_reps: replications of that re-evaluation (default: `reps`).
        startup_trials: random trials before TPE models the results (Optuna's n_startup_trials).
        progress: called as `progress(done, total)` after each trial (and once at start).
        command: recorded in the manifest (default: `sys.argv`).
        posterior: a finished calibration folder (`gtmsim calibrate --out`): replication
            r of every trial also runs on posterior draw r of the calibrated keys, the
            same draws for every trial (common random numbers extended to the market's
            parameters), and the re-evaluation on fresh seeds draws afresh. The plan
            chosen is then the best on average over what the calibration left uncertain.
            A calibrated key may be neither varied nor set with `overrides`.

    Raises:
        ScenarioError: bad scenario, keys, ranges, constraints or objectives — every
            problem at once, before anything is written.
        OptimizeError: bad options or a results folder that cannot hold this study.
    """
    begin = time.perf_counter()
    problems: list[str] = []
    for name, value, low in (("trials", trials, 1), ("reps", reps, 1), ("top", top, 1),
                             ("startup_trials", startup_trials, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            problems.append(f"--{name.replace('_', '-')}: expected a whole number ≥ {low}, "
                            f"got {value!r}")
    if reevaluate_reps is not None and (not isinstance(reevaluate_reps, int)
                                        or isinstance(reevaluate_reps, bool)
                                        or reevaluate_reps < 2):
        problems.append(f"reevaluate_reps: expected a whole number ≥ 2, got {reevaluate_reps!r}")
    try:
        ex._check_options(reps=1, seed=seed, months=months, workers=workers,
                          scheduler=scheduler, executor=None)
    except ex.ExperimentError as exc:
        problems.append(str(exc))
    if workers is not None and scheduler is not None:
        problems.append("--workers and --scheduler exclude each other; give one")
    if resume and force:
        problems.append("--resume and --force exclude each other")
    start: Scenario | None = None
    source: Path | None = None
    try:
        if isinstance(scenario, Scenario):
            start = ex._overridden(scenario, overrides)
        else:
            source = find_scenario(scenario)
            start = load_scenario(scenario, overrides)
    except ScenarioError as exc:
        problems += exc.problems
    pairs, bad = _override_pairs(overrides if isinstance(overrides, Mapping)
                                 else list(overrides or []))
    problems += [p for p in bad if p not in problems]
    varied: list[Vary] = []
    if start is not None:
        if vary and all(isinstance(v, Vary) for v in vary):
            vary = [v.spec() for v in vary]  # checked like text
        try:
            varied = parse_vary(list(vary), start)
        except ScenarioError as exc:
            problems += exc.problems
    parsed: list[Constraint] = []
    for text in constraints:
        try:
            parsed.append(parse_constraint(text))
        except ScenarioError as exc:
            problems += exc.problems
    objectives: list[Objective] = []
    try:
        objectives = parse_objectives(objective, target)
    except ScenarioError as exc:
        problems += exc.problems
    def whole(x: Any, low: int) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x >= low

    draws = fresh_draws = None
    if posterior is not None:
        first = seed if whole(seed, 0) else start.seed if start is not None else 0
        taken = {**_points.set_keys(overrides), **{v.key: "--vary" for v in varied}}
        n = reps if whole(reps, 1) else 1
        n_fresh = reevaluate_reps if whole(reevaluate_reps, 2) else n
        try:
            _, draws = _points.posterior_draws(posterior, n, _draw_seed(first), taken,
                                               check=start)
            _, fresh_draws = _points.posterior_draws(
                posterior, n_fresh, _draw_seed(_fresh_base(first)), taken, check=start)
        except ScenarioError as exc:
            problems += [p for p in exc.problems if p not in problems]
    if problems or start is None:
        raise ScenarioError(problems)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    horizon = months or start.months
    base = start.seed if seed is None else seed
    seeds = ex.replication_seeds(base, reps)
    folder = Path(out) if out is not None else ex.default_folder(KIND, [start.name])
    identity = ex._jsonable({
        "kind": KIND, "scenario": start.to_dict(), "vary": [v.spec() for v in varied],
        "constraints": [c.text for c in parsed], "objectives": [o.name for o in objectives],
        "target": target, "reps": reps, "seed": base, "seeds": seeds, "months": horizon,
        "startup_trials": startup_trials, "draws": draws,
    })
    resuming = _check_folder(folder, identity, resume, force)
    # The whole search, estimated before anything is written.
    per_run = ex.estimate_run_seconds(start, horizon)
    n_workers = workers or ex._cpu_count()
    wall = per_run * reps * (trials + top + 1) / max(1, min(n_workers, reps))
    if wall > ex.LONG_WORK_S and not yes:
        raise OptimizeError(f"this is long work: about {trials} trials × {reps} replications × "
                            f"{per_run:,.1f} s ≈ {ex.duration(wall)}; add --yes (yes=True) to "
                            "start anyway")

    if force and folder.exists():
        _clear(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {**identity, "trials": trials, "top": top,
                "posterior": None if posterior is None else str(posterior),
                "reevaluate_reps": reevaluate_reps or reps,
                "reevaluate_seed": _fresh_base(base),
                "overrides": [[k, v] for k, v in pairs],
                "sampler": {"name": "TPESampler", "n_startup_trials": startup_trials,
                            "seed": "SeedSequence([seed, trial index])"},
                "storage": f"sqlite:///{STUDY_DB}", "study_name": STUDY_NAME,
                "versions": {**versions(), "optuna": optuna.__version__},
                "command": list(command) if command is not None else list(sys.argv),
                "options": {"workers": workers, "scheduler": scheduler},
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "complete": False,
                "files": [TRIALS, SUMMARY, BEST, STUDY_DB, MANIFEST, f"{POINTS_DIR}/",
                          f"{REEVALUATION_DIR}/", f"{CHARTS_DIR}/"]}
    if resuming:
        manifest["created"] = read_manifest(folder).get("created", manifest["created"])
    atomic_write(folder / MANIFEST, json_writer(ex._jsonable(manifest)))

    study = optuna.create_study(
        storage=_storage_url(folder), study_name=STUDY_NAME, load_if_exists=True,
        directions=[o.direction for o in objectives])
    running = optuna.trial.TrialState.RUNNING
    for t in study.get_trials(deepcopy=False, states=(running,)):
        # A trial an interrupt left running: closed as failed, its point asked again first
        # (its finished runs are read back from its point folder).
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"start": bool(t.user_attrs.get("start"))})
    if not study.get_trials(deepcopy=False):
        ok, values = True, {}
        for v in varied:
            value = start_value(start, v.key)
            ok = ok and value is not None and v.low <= value <= v.high
            values[v.key] = value
        if ok:  # the starting plan is the first trial: the search never does worse unseen
            study.enqueue_trial(values, user_attrs={"start": True})
    distributions = {
        v.key: (optuna.distributions.IntDistribution(int(v.low), int(v.high)) if v.integer
                else optuna.distributions.FloatDistribution(v.low, v.high)) for v in varied}

    def evaluated() -> int:  # trials simulated: plans rejected before simulating do not count
        return sum(1 for t in study.get_trials(deepcopy=False) if t.user_attrs.get("simulated"))

    done = resumed = evaluated()
    if progress:
        progress(min(done, trials), trials)
    cmd = list(command) if command is not None else list(sys.argv)
    failures = rejected = 0
    with ex.executor_for(workers, scheduler, tasks=reps) as pool, warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        while done < trials:
            study.sampler = optuna.samplers.TPESampler(
                seed=_sampler_seed(base, done), n_startup_trials=startup_trials,
                multivariate=True)
            trial = study.ask(distributions)
            point = {k: trial.params[k] for k in distributions}
            known = {c.quantity for c in parsed} & set(PLAN_QUANTITIES)
            try:
                plan = _apply(start, point)
                # With draws the plan quantities are means over them, as the runs' are (and
                # each draw is checked on the plan).
                fixed = _plan_quantities_over(plan, horizon, draws) if known or draws else {}
            except ScenarioError as exc:
                # A combination no end of the ranges showed (e.g. a timeline state): skipped.
                trial.set_user_attr("problem", "; ".join(exc.problems))
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                failures += 1
                if failures > 10 * trials:
                    raise OptimizeError("the search keeps proposing plans the scenario "
                                        "refuses: " + "; ".join(exc.problems)) from None
                continue
            if known:
                broken = [(c, c.violation(fixed[c.quantity])) for c in parsed
                          if c.quantity in known and not c.holds(fixed[c.quantity])]
                if broken:
                    # The plan breaks a limit it fixes itself: told to the sampler as
                    # infeasible without simulating it (it does not count as a trial run).
                    for k, v in fixed.items():
                        if k in known:
                            trial.set_user_attr(k, v)
                    trial.set_user_attr("feasible", False)
                    trial.set_user_attr("simulated", False)
                    trial.set_user_attr("evaluated", True)
                    for c in parsed:
                        v = {b.text: x for b, x in broken}.get(c.text, 0.0)
                        trial.set_constraint(c.text, min(v, 1e300))
                    study.tell(trial, [-math.inf if o.direction == "maximize" else math.inf
                                       for o in objectives])
                    rejected += 1
                    if rejected > MAX_REJECTED_IN_A_ROW:
                        raise OptimizeError(
                            f"the sampler proposed {rejected} plans in a row that break "
                            f"{', '.join(c.text for c, _ in broken)} before any simulation; "
                            "the ranges leave (almost) no room within the limits: narrow the "
                            "ranges or relax the limits")
                    continue
            rejected = 0
            where = _point_folder(folder, point)
            t0 = time.perf_counter()
            run = ex.compare([plan], reps=reps, seed=base, months=horizon,
                             workers=1 if pool is None else None, executor=pool, out=where,
                             resume=True, command=cmd, yes=True, draws=draws)
            result = _evaluate(run.runs, run, objectives, parsed, target)
            for k, v in result.items():
                trial.set_user_attr(k, v)
            for c, v in zip(parsed, result["violations"], strict=True):
                trial.set_constraint(c.text, min(v, 1e300))  # read by TPE: feasible when ≤ 0
            trial.set_user_attr("folder", str(where.relative_to(folder)))
            trial.set_user_attr("seconds", round(time.perf_counter() - t0, 3))
            trial.set_user_attr("evaluated", True)
            trial.set_user_attr("simulated", True)
            values = [result[f"{o.name}_mean"] for o in objectives]
            if all(math.isfinite(v) for v in values):
                study.tell(trial, values)
            else:  # e.g. CAC without a single win: no value to compare
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            done += 1
            if progress:
                progress(done, trials)

        table = _trials_table(study, varied, objectives, parsed, folder)
        picked = _candidates(table, objectives, top)
        reeval, chosen, summary = None, None, pd.DataFrame()
        names = {}
        if picked or table["start"].any():  # the start is evaluated again even alone
            plans = [start]
            for n in picked:
                params = {v.key: table.loc[table["trial"] == n, v.key].item() for v in varied}
                params = {k: (int(x) if isinstance(x, (np.integer,)) else
                              float(x) if isinstance(x, np.floating) else x)
                          for k, x in params.items()}
                label = f"trial {n}"
                names[label] = (n, params)
                plans.append(with_changes(_apply(start, params), {"name": label}, "--vary"))
            reeval = ex.compare(plans, reps=reevaluate_reps or reps, seed=_fresh_base(base),
                                months=horizon, workers=1 if pool is None else None,
                                executor=pool, out=folder / REEVALUATION_DIR, force=True,
                                command=cmd, yes=True, draws=fresh_draws)
            summary = reeval.summary()
            by_arm = {name: g for name, g in reeval.runs.groupby("scenario", sort=False)}
            rows = []
            first = objectives[0]
            sign = 1 if first.direction == "maximize" else -1
            start_trial = table.loc[table["start"], "trial"]
            start_n = int(start_trial.iloc[0]) if len(start_trial) else None
            start_params = {v.key: start_value(start, v.key) for v in varied}
            # The start competes too: when no searched plan does better on fresh seeds, the
            # honest answer is to keep it.
            for label, (n, params) in [(start.name, (start_n, start_params)), *names.items()]:
                sub = ex.Experiment(kind="compare", runs=by_arm[label], arms=[], keys=(),
                                    seed=reeval.seed, seeds=reeval.seeds)
                got = _evaluate(by_arm[label], sub, objectives, parsed, target)
                rows.append((label, n, params, got))
            feasible = [r for r in rows if r[3]["feasible"]] or []
            if feasible:
                chosen = max(feasible, key=lambda r: sign * r[3][f"{first.name}_mean"])
            summary.insert(1, "trial", summary["scenario"].map(
                {start.name: start_n, **{label: n for label, (n, _) in names.items()}}
            ).astype("Int64"))
            summary.insert(2, "chosen", summary["scenario"] == (chosen[0] if chosen else None))

    best_values = chosen[2] if chosen else None
    best_trial = chosen[1] if chosen else None
    kept_start = bool(chosen) and chosen[0] == start.name
    best_scenario = _apply(start, best_values) if best_values else None
    files: dict[Path, Callable[[Path], None]] = {
        folder / TRIALS: parquet_writer(table),
        folder / SUMMARY: csv_writer(summary),
        folder / CHARTS_DIR / "search.png": _png_writer(
            lambda ax: plot_search(table, objectives[0].name, ax=ax)),
    }
    if len(objectives) > 1 and table["feasible"].any():
        files[folder / CHARTS_DIR / "pareto.png"] = _png_writer(
            lambda ax: plot_pareto(table, [o.name for o in objectives], ax=ax))
    stale_best = folder / BEST
    if best_values is not None:
        header = _best_header(start, best_trial, objectives, parsed, summary, chosen, horizon,
                              reevaluate_reps or reps)
        files[folder / BEST] = _text_writer(best_toml(start, source, folder, best_values, pairs,
                                                      header))
        if len(objectives) > 1:
            for label, (n, params) in names.items():
                files[folder / PARETO_DIR / f"trial-{n:04d}.toml"] = _text_writer(
                    best_toml(start, None if source is None else source, folder / PARETO_DIR,
                              params, pairs, [f"Pareto-front plan of trial {n}"]))
    manifest.update(complete=True, trials_done=int(table["simulated"].sum()),
                    plans_refused=int((~table["simulated"]).sum()), resumed=resumed,
                    best_trial=best_trial, best=best_values, kept_start=kept_start,
                    finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    elapsed_s=round(time.perf_counter() - begin, 3))
    files[folder / MANIFEST] = json_writer(ex._jsonable(manifest))
    if best_values is None:
        stale_best.unlink(missing_ok=True)  # no feasible plan: an old best.toml would mislead
    atomic_write_many(files)
    return OptimizeResult(folder=folder, trials=table, start=start, best=best_values,
                          best_scenario=best_scenario, best_trial=best_trial,
                          reevaluation=reeval, summary_table=summary, objectives=objectives,
                          constraints=parsed, vary=varied, resumed=resumed,
                          kept_start=kept_start,
                          elapsed_s=time.perf_counter() - begin)


def _text_writer(text: str) -> Callable[[Path], None]:
    return lambda tmp: tmp.write_text(text, encoding="utf-8")


def _best_header(start: Scenario, trial: int | None, objectives: Sequence[Objective],
                 constraints: Sequence[Constraint], summary: pd.DataFrame, chosen: Any,
                 months: int, reps: int) -> list[str]:
    first = objectives[0]
    kept = chosen is not None and chosen[0] == start.name
    lines = [(f"No searched plan beat the starting plan {start.name} on fresh seeds: this is the "
              "starting plan." if kept else
              f"The plan `gtmsim optimize` chose (trial {trial}), starting from {start.name}."),
             (f"Objective: {', '.join(o.name for o in objectives)}; constraints: "
              f"{', '.join(c.text for c in constraints) or 'none'}; {months} months.")]
    if chosen is not None and first.outcome is not None:
        row = summary[(summary["scenario"] == chosen[0]) & (summary["outcome"] == first.outcome)]
        if len(row):
            r = row.iloc[0]
            lines.append(
                f"On {reps} fresh replication{'s' if reps != 1 else ''}: {first.label.lower()} "
                f"{ex.format_value(first.unit, r['mean'])}, "
                f"{ex.format_value(first.unit, r['diff'], signed=True)} vs the start "
                f"(paired 95% CI {ex.interval_text(first.unit, r['diff_ci_low'], r['diff_ci_high'], signed=True)}).")
    return lines


__all__ = [
    "OBJECTIVES",
    "QUANTITIES",
    "Constraint",
    "Objective",
    "OptimizeError",
    "OptimizeResult",
    "Vary",
    "best_toml",
    "optimize",
    "parse_constraint",
    "parse_objectives",
    "parse_vary",
    "plan_quantities",
    "plot_pareto",
    "plot_search",
    "start_value",
]
