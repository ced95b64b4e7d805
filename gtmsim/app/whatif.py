"""The what-if engine behind `gtmsim app`: controls, plans, refined comparisons, saving.

Nothing here imports Solara, so the page's logic is tested without a browser:

- `controls_for(reference)` lists the controls (key, label, unit, group) for a reference
  scenario: every marketing program's budget, the team, a hiring month, every alignment
  lever and the size of the runs.
- `build_plan(reference, values)` turns control values (text as typed, or numbers) into a
  validated reference at the app's size and the plan, or into one error per control.
- `Runner.refine(reference, plan, ...)` runs both on common random numbers in worker
  processes and yields a `Snapshot` after the first few replications and after each one
  that finishes; closing the iterator cancels the runs not yet started.
- `figures(snapshot)` computes what the page shows; `save_plan` writes the plan as a
  scenario file that `gtmsim check` accepts.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import os
import re
import threading
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from gtmsim.alignment import LEVER_NAMES, PRESETS
from gtmsim.experiment import (
    OUTCOMES,
    Experiment,
    Task,
    format_value,
    interval_text,
    replication_seeds,
    run_task,
)
from gtmsim.metrics import LEAD_FATES, lead_fates  # noqa: F401 (LEAD_FATES: for the page)
from gtmsim.pool import context as pool_context
from gtmsim.results import atomic_write, check_writable_file
from gtmsim.scenario import (
    _NAME_RE,
    NAME_RULE,
    Scenario,
    ScenarioError,
    scenario_from_dict,
    with_changes,
)

# The app runs a smaller market than the shipped scenarios (50,000 prospects, 24 months)
# so that a change answers in seconds on a laptop; both are controls on the page.
APP_PROSPECTS = 10_000
APP_MONTHS = 12
APP_REPS = 10  # replications a change is refined to (at least MIN_REPS: no few-reps warning)
FIRST_REPS = 3  # the first answer is shown after this many replications
MAX_APP_REPS = 200
CONFIDENCE = 0.95
PLAN_NAME = "what-if"

Kind = Literal["int", "float", "choice"]


@dataclass(frozen=True)
class Control:
    """One control on the page.

    Attributes:
        key: the dotted scenario key it sets, or an app key (`run.*`, `hire.*`).
        label: readable name.
        unit: shown beside the value.
        group: the card it sits in.
        kind: "int", "float" or "choice".
        choices: the allowed values of a choice.
        help: one line under the control.
    """

    key: str
    label: str
    unit: str
    group: str
    kind: Kind
    choices: tuple[str, ...] = ()
    help: str = ""


RUN_GROUP = "Run size (this page only)"
MARKETING_GROUP = "Marketing programs"
SALES_GROUP = "Sales team"
ALIGNMENT_GROUP = "Alignment levers"

# Levers: label, unit, help (ranges come from the scenario schema and are checked there).
_LEVERS: dict[str, tuple[str, str, str]] = {
    "lead_threshold": ("Lead definition threshold", "score 0–1",
                       "minimum lead score (fit and trust) for marketing to pass a lead on"),
    "handoff_days": ("Hand-off every", "days", "leads passed to sales in batches; 0 = at once"),
    "sla_days": ("Follow-up SLA", "days", "a lead not worked in time returns to nurture; 0 = none"),
    "routing": ("Routing", "", "which queued lead a rep works next"),
    "feedback": ("Closed-loop feedback", "0–1", "won deals steer marketing's targeting"),
    "enablement": ("Sales enablement", "0–1", "use of marketing's sales content; raises win odds"),
    "message_consistency": ("Message consistency", "0–1", "one story from both teams"),
    "recycling": ("Recycling to nurture", "share 0–1",
                  "lost, disqualified and returned prospects sent back to nurture"),
    "coordination": ("Coordination time", "share of rep time 0–0.9", "the cost of alignment in time"),
    "marketing_reward": ("Marketing rewarded for", "0 = lead volume, 1 = pipeline", ""),
}
ROUTINGS = ("cherry_pick", "oldest_first", "newest_first")
PRESET_NAMES = ("siloed", "defined", "aligned", "integrated")


def controls_for(reference: Scenario) -> list[Control]:
    """The controls for `reference`, in page order."""
    out = [
        Control("market.prospects", "Prospects", "prospects", RUN_GROUP, "int",
                help=f"the market simulated here (the scenario has "
                     f"{reference.market.prospects:,})"),
        Control("months", "Months", "months", RUN_GROUP, "int",
                help=f"months simulated here (the scenario has {reference.months})"),
        Control("run.reps", "Replications", "runs per plan", RUN_GROUP, "int",
                help=f"refined up to this many; the first answer comes after {FIRST_REPS}"),
        Control("run.seed", "Seed", "", RUN_GROUP, "int",
                help="base seed of the replications (common to reference and plan)"),
    ]
    for name, prog in reference.marketing.programs.items():
        out.append(Control(f"marketing.programs.{name}.monthly_budget", _readable(name),
                           "$/month", MARKETING_GROUP, "float",
                           help=f"{prog.channel.replace('_', ' ')} budget"))
    out += [
        Control("sales.reps", "Reps at the start", "reps", SALES_GROUP, "int"),
        Control("hire.extra", "Reps hired", "reps", SALES_GROUP, "int",
                help="added to the team in the hiring month (0 = no hire)"),
        Control("hire.month", "Hiring month", "month", SALES_GROUP, "int",
                help="a timeline entry; new reps ramp up before they sell at full speed"),
        Control("sales.cost_per_rep_month", "Cost per rep", "$/rep/month", SALES_GROUP, "float"),
        Control("alignment.preset", "Preset", "", ALIGNMENT_GROUP, "choice", PRESET_NAMES,
                help="choosing a preset sets every lever below to its values"),
    ]
    for lever in LEVER_NAMES:
        label, unit, text = _LEVERS[lever]
        kind: Kind = "choice" if lever == "routing" else "float"
        out.append(Control(f"alignment.{lever}", label, unit, ALIGNMENT_GROUP, kind,
                           ROUTINGS if lever == "routing" else (), text))
    out += [
        Control("alignment.cost_monthly", "Alignment cost", "$/month", ALIGNMENT_GROUP, "float",
                help="tooling, ops staff, joint planning"),
        Control("alignment.cost_once", "One-off alignment cost", "$", ALIGNMENT_GROUP, "float",
                help="charged in month 1"),
    ]
    return out


def _readable(name: str) -> str:
    return name.replace("_", " ").capitalize()


def initial_values(reference: Scenario, reps: int = APP_REPS) -> dict[str, Any]:
    """The control values of a plan equal to `reference` (at the app's size)."""
    months = min(APP_MONTHS, reference.months)
    values: dict[str, Any] = {
        "market.prospects": min(APP_PROSPECTS, reference.market.prospects),
        "months": months,
        "run.reps": reps,
        "run.seed": reference.seed,
        "sales.reps": reference.sales.reps,
        "hire.extra": 0,
        "hire.month": min(6, months),
        "sales.cost_per_rep_month": reference.sales.cost_per_rep_month,
        "alignment.preset": _preset_name(reference.alignment.preset),
        "alignment.cost_monthly": reference.alignment.cost_monthly,
        "alignment.cost_once": reference.alignment.cost_once,
    }
    for name, prog in reference.marketing.programs.items():
        values[f"marketing.programs.{name}.monthly_budget"] = prog.monthly_budget
    levers = reference.levers
    for lever in LEVER_NAMES:
        values[f"alignment.{lever}"] = getattr(levers, lever)
    return values


def _preset_name(preset: str) -> str:
    return "siloed" if preset == "undefined" else preset


def preset_values(preset: str) -> dict[str, Any]:
    """The lever values of a named preset, as control values."""
    levers = PRESETS[preset]
    return {f"alignment.{lever}": getattr(levers, lever) for lever in LEVER_NAMES}


def shown(value: Any) -> str:
    """A control value as the text in its field: whole numbers without `.0`."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------- plans


@dataclass
class Plan:
    """Control values made into scenarios, or the errors that stopped them.

    Attributes:
        reference: the reference at the app's size (None when a run-size control is bad).
        plan: the plan, validated (None when any control is bad).
        reps: replications to refine to; seed: their base seed.
        errors: control key -> message, shown next to that control.
        general: problems not tied to one control.
    """

    reference: Scenario | None = None
    plan: Scenario | None = None
    reps: int = APP_REPS
    seed: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.plan is not None and not self.errors and not self.general


def parse_value(control: Control, raw: Any) -> tuple[Any, str | None]:
    """A control's value from what was typed; (value, None) or (None, message)."""
    if control.kind == "choice":
        if raw in control.choices:
            return raw, None
        return None, f"expected one of {', '.join(control.choices)}, got {raw!r}"
    if isinstance(raw, bool):
        return None, f"expected a number, got {raw!r}"
    text = str(raw).strip().replace(",", "").replace("_", "").lstrip("$")
    unit = f" ({control.unit})" if control.unit else ""
    try:
        number = float(text)
    except ValueError:
        what = "a whole number" if control.kind == "int" else "a number"
        return None, f"expected {what}{unit}, got {str(raw)!r}"
    if not math.isfinite(number):
        return None, f"expected a finite number{unit}, got {str(raw)!r}"
    if control.kind == "int":
        if not number.is_integer():
            return None, f"expected a whole number{unit}, got {str(raw)!r}"
        return int(number), None
    return number, None


# `source: key: message`, as `with_changes` words a problem.
_PROBLEM = re.compile(r"^(?P<source>[^:]*): (?P<key>[^ :]+): (?P<msg>.*)$", re.DOTALL)


def build_plan(reference: Scenario, values: Mapping[str, Any]) -> Plan:
    """The reference at the app's size and the plan the control `values` describe.

    Args:
        reference: the reference scenario as loaded (its own size).
        values: control key -> value (text as typed, or a number); missing keys keep the
            reference's value.
    """
    controls = {c.key: c for c in controls_for(reference)}
    given = {**initial_values(reference), **values}
    out = Plan(seed=reference.seed)
    parsed: dict[str, Any] = {}
    for key, control in controls.items():
        value, problem = parse_value(control, given[key])
        if problem:
            out.errors[key] = problem
        else:
            parsed[key] = value
    for key, low, high in (("run.reps", 2, MAX_APP_REPS), ("run.seed", 0, 2**63 - 1),
                           ("hire.extra", 0, 100_000)):
        if key in parsed and not low <= parsed[key] <= high:
            out.errors[key] = f"must be from {low:,} to {high:,}, got {parsed[key]:,}"
    out.reps = parsed.get("run.reps", APP_REPS)
    out.seed = parsed.get("run.seed", reference.seed)
    size = {k: parsed[k] for k in ("market.prospects", "months") if k in parsed}
    if len(size) < 2:
        return out
    try:
        out.reference = with_changes(reference, size, source="app")
    except ScenarioError as exc:
        _place(out, exc.problems, controls, None)
        return out
    months = size["months"]
    if parsed.get("hire.extra") and "hire.month" in parsed and not 1 <= parsed["hire.month"] <= months:
        out.errors["hire.month"] = (f"must be from 1 to {months} (the months simulated), "
                                    f"got {parsed['hire.month']}")
    leaves = {k: v for k, v in parsed.items()
              if not k.startswith(("run.", "hire.")) and k not in size}
    leaves["name"] = PLAN_NAME if reference.name != PLAN_NAME else PLAN_NAME + " 2"
    leaves["question"] = ""
    timeline = [c.model_dump(mode="json") for c in out.reference.timeline]
    hire_at = None
    if parsed.get("hire.extra") and "hire.month" in parsed and "hire.month" not in out.errors \
            and "sales.reps" in parsed:
        hire_at = len(timeline)
        timeline.append({"month": parsed["hire.month"],
                         "set": {"sales.reps": parsed["sales.reps"] + parsed["hire.extra"]},
                         "note": f"{parsed['hire.extra']} reps hired"})
    leaves["timeline"] = timeline
    try:
        plan = with_changes(out.reference, leaves, source="app")
    except ScenarioError as exc:
        _place(out, exc.problems, controls, hire_at)
        return out
    if not out.errors:
        out.plan = plan
    return out


def _place(out: Plan, problems: Sequence[str], controls: Mapping[str, Control],
           hire_at: int | None) -> None:
    """Put each problem next to its control (by the dotted key it names)."""
    for problem in problems:
        m = _PROBLEM.match(problem)
        key, msg = (m["key"], m["msg"]) if m else ("", problem)
        target = None
        if key in controls:
            target = key
        elif hire_at is not None and key.startswith(f"timeline[{hire_at}]"):
            target = "hire.month" if key.endswith(".month") else "hire.extra"
        elif key.startswith("timeline["):
            target = None
        if target:
            out.errors.setdefault(target, msg)
        else:
            out.general.append(f"{key}: {msg}" if m else problem)


def changes(reference: Scenario, plan: Scenario) -> list[str]:
    """What the plan changes, as short phrases ("Reps at the start: 6 reps (was 4)")."""
    controls = controls_for(reference)
    before, after = initial_values(reference), initial_values(plan)
    out = []
    for c in controls:
        if c.group == RUN_GROUP or c.key.startswith("hire."):
            continue
        if c.key == "alignment.preset" and before[c.key] != after[c.key]:
            out.append(f"preset {after[c.key]} (was {before[c.key]})")
        elif before[c.key] != after[c.key]:
            value = after[c.key]
            unit = c.unit if c.unit and not c.unit[0].isdigit() else ""
            if unit.endswith("s") and value == 1:  # "1 day", "1 rep"
                unit = unit[:-1]
            out.append(f"{c.label} {shown(value)}{' ' + unit if unit else ''} "
                       f"(was {shown(before[c.key])})")
    for entry in plan.timeline[len(reference.timeline):]:
        out.append(f"{entry.note or 'timeline change'} in month {entry.month}")
    return out


# --------------------------------------------------------------------------- saving


def save_plan(plan: Scenario, reference: Scenario, path: str | Path, name: str) -> Path:
    """Write `plan` as a scenario file at the reference's own market size and months.

    The file is validated as `gtmsim check` does before it replaces anything at `path`.

    Raises:
        ScenarioError: the name or the scenario is invalid, or the path cannot be written
            (one message each).
    """
    name = name.strip()
    if not name or not _NAME_RE.fullmatch(name) or ".." in name:
        raise ScenarioError([f"name: {NAME_RULE}; got {name!r}"])
    path = Path(path).expanduser()
    if path.suffix != ".toml":
        raise ScenarioError([f"file: expected a path ending in .toml, got {str(path)!r}"])
    said = changes(reference, plan)
    question = (f"What if, starting from {reference.name}, we change: {'; '.join(said)}?"
                if said else f"The same plan as {reference.name}.")
    full = with_changes(plan, {"name": name, "question": question,
                               "market.prospects": reference.market.prospects,
                               "months": reference.months}, source="app")
    header = [f"# {question}",
              f"# Saved by `gtmsim app` from {reference.name}; check with `gtmsim check {path.name}`."]
    text = to_toml(full.to_dict(), header)
    try:
        target = check_writable_file(path)
    except Exception as exc:  # noqa: BLE001 - ResultsError or OSError: said next to the button
        raise ScenarioError([f"file: {exc}"]) from None

    # Read back as `gtmsim check` reads a file, before anything at `path` is replaced.
    scenario_from_dict(tomllib.loads(text), source=str(path))
    try:
        atomic_write(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - an unwritable folder, a full disk
        raise ScenarioError([f"file: cannot write {path}: {exc}"]) from None
    return target


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(k: str) -> str:
    return k if _BARE.fullmatch(k) else json.dumps(k, ensure_ascii=False)


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"TOML has no {v}")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_scalar(x) for x in v if x is not None) + "]"
    if isinstance(v, Mapping):
        inner = ", ".join(f"{_key(k)} = {_scalar(x)}" for k, x in v.items() if x is not None)
        return "{ " + inner + " }" if inner else "{}"
    raise ValueError(f"cannot write {type(v).__name__} as TOML")


def to_toml(data: Mapping[str, Any], header: Sequence[str] = ()) -> str:
    """`data` (a scenario's plain dict) as TOML: tables, arrays of tables, no nulls."""
    lines = [*header]

    def table(node: Mapping[str, Any], path: list[str]) -> None:
        scalars = [(k, v) for k, v in node.items() if v is not None
                   and not isinstance(v, Mapping) and not _is_table_list(v)]
        subtables = [(k, v) for k, v in node.items() if isinstance(v, Mapping)]
        arrays = [(k, v) for k, v in node.items() if _is_table_list(v)]
        if path and (scalars or not subtables):
            lines.extend(["", f"[{'.'.join(_key(p) for p in path)}]"])
        lines.extend(f"{_key(k)} = {_scalar(v)}" for k, v in scalars)
        for k, v in subtables:
            table(v, [*path, k])
        for k, items in arrays:
            for item in items:
                lines.extend(["", f"[[{'.'.join(_key(p) for p in [*path, k])}]]"])
                lines.extend(f"{_key(ik)} = {_scalar(iv)}" for ik, iv in item.items()
                             if iv is not None)

    table(data, [])
    return "\n".join(lines) + "\n"


def _is_table_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Snapshot:
    """The runs finished so far: every replication in `runs` has both arms."""

    reference: Scenario
    plan: Scenario
    runs: pd.DataFrame
    done: int
    total: int
    seed: int

    @property
    def finished(self) -> bool:
        return self.done >= self.total


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Runner:
    """Runs a plan against the reference on common random numbers, a few at a time.

    Reference runs are kept (by scenario and seed), so a change of the plan runs only
    the plan. Runs go to `executor` when given, otherwise to a pool of worker processes
    started on first use, so the page's process stays free to answer the browser.
    """

    def __init__(self, workers: int | None = None, executor: cf.Executor | None = None):
        self.workers = workers or max(1, min(2, os.cpu_count() or 1))
        self._executor = executor
        self._own: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], pd.DataFrame] = {}

    def executor(self) -> cf.Executor:
        with self._lock:
            if self._executor is not None:
                return self._executor
            if self._own is not None and getattr(self._own, "_broken", False):
                self._own.shutdown(wait=False, cancel_futures=True)  # a worker died: start anew
                self._own = None
            if self._own is None:
                self._own = cf.ProcessPoolExecutor(max_workers=self.workers,
                                                   mp_context=pool_context(),
                                                   initializer=_ignore_sigint)
            return self._own

    def close(self) -> None:
        """Stop the worker processes (runs not started are dropped)."""
        with self._lock:
            pool, self._own = self._own, None
        if pool is not None:
            procs = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.join(5)

    def refine(self, reference: Scenario, plan: Scenario, *, reps: int, seed: int,
               first: int = FIRST_REPS) -> Refinement:
        """Start running `plan` and `reference` on `reps` common seeds spawned from `seed`.

        Iterating the result yields a snapshot once `first` replications of both have
        finished, then after each further one; the last has `finished` true. Its
        `cancel()` (from any thread) drops the runs not started: a newer plan supersedes it.
        """
        seeds = replication_seeds(seed, reps)
        months = reference.months
        ref_key = json.dumps(reference.to_dict(), sort_keys=True)
        executor = self.executor()
        job = Refinement(reference, plan, reps, seed, first)
        for r, s in enumerate(seeds):
            cached = self._cache.get((ref_key, s))
            if cached is not None:
                job.got[r][0] = cached
            else:
                task = Task(0, reference, (), r, s, months, "")
                job.pending[executor.submit(run_task, task)] = (r, 0)
            job.pending[executor.submit(run_task, Task(1, plan, (), r, s, months, ""))] = (r, 1)
        job.keep = lambda r, df: self._cache.__setitem__((ref_key, seeds[r]), df)
        return job


class Refinement:
    """The runs of one plan against the reference; iterate for snapshots, `cancel()` to stop."""

    POLL_S = 0.1

    def __init__(self, reference: Scenario, plan: Scenario, reps: int, seed: int, first: int):
        self.reference, self.plan, self.reps, self.seed = reference, plan, reps, seed
        self.first = min(first, reps)
        self.pending: dict[cf.Future, tuple[int, int]] = {}
        self.got: dict[int, dict[int, pd.DataFrame]] = {r: {} for r in range(reps)}
        self.keep: Any = lambda r, df: None
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        """Drop the runs not started; iteration ends at its next check."""
        self.cancelled.set()
        for fut in self.pending:
            fut.cancel()

    def __iter__(self) -> Iterator[Snapshot]:
        complete = [r for r, arms in self.got.items() if len(arms) == 2]
        waiting = set(self.pending)
        try:
            while waiting and not self.cancelled.is_set():
                done, waiting = cf.wait(waiting, timeout=self.POLL_S,
                                        return_when=cf.FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: self.pending[f]):
                    if fut.cancelled():
                        continue
                    r, arm = self.pending[fut]
                    df = fut.result()
                    self.got[r][arm] = df
                    if arm == 0:
                        self.keep(r, df)
                    if len(self.got[r]) == 2:
                        complete.append(r)
                        if len(complete) >= self.first and not self.cancelled.is_set():
                            yield Snapshot(self.reference, self.plan, _runs(self.got, complete),
                                           len(complete), self.reps, self.seed)
        finally:
            self.cancel()


def _runs(got: Mapping[int, Mapping[int, pd.DataFrame]], complete: Sequence[int]) -> pd.DataFrame:
    order = sorted(complete)
    return pd.concat([got[r][0] for r in order] + [got[r][1] for r in order], ignore_index=True)


# --------------------------------------------------------------------------- figures

SHOWN_OUTCOMES = ("cumulative_bookings", "total_cost", "net_bookings", "roi", "payback_month",
                  "customers", "win_rate")


@dataclass(frozen=True)
class Figures:
    """What the page shows of a snapshot.

    Attributes:
        table: one row per shown outcome: label, reference, plan, difference, its interval
            (text), and the numbers behind them (`diff`, `diff_low`, `diff_high`).
        monthly: per arm and month, the mean cumulative bookings and its interval.
        difference: per month, the mean paired difference of cumulative bookings and its
            interval.
        fates: mean leads per replication by fate, one row per arm.
        warning: the few-replications warning, if any.
    """

    table: pd.DataFrame
    monthly: pd.DataFrame
    difference: pd.DataFrame
    fates: pd.DataFrame
    warning: str | None
    n: int


def _interval(x: np.ndarray) -> tuple[float, float, float]:
    x = x[~np.isnan(x)]
    mean = float(x.mean()) if len(x) else float("nan")
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf((1 + CONFIDENCE) / 2, len(x) - 1) * stats.sem(x))
    if not math.isfinite(half):  # identical values: no spread
        half = 0.0
    return mean, mean - half, mean + half


def figures(snap: Snapshot) -> Figures:
    """The table, the monthly bands, the paired difference and the lead fates."""
    ref, plan = snap.reference.name, snap.plan.name
    runs = snap.runs
    experiment = Experiment(kind="compare", runs=runs, arms=[snap.reference, snap.plan],
                            keys=(), seed=snap.seed, seeds=[])
    summary = experiment.summary(CONFIDENCE).set_index(["scenario", "outcome"])
    outcome = {o.name: o for o in OUTCOMES}
    rows = []
    for name in SHOWN_OUTCOMES:
        o = outcome[name]
        r, p = summary.loc[(ref, name)], summary.loc[(plan, name)]
        rows.append({
            "outcome": name, "label": o.label, "unit": o.unit,
            "reference": format_value(o.unit, r["mean"]),
            "plan": format_value(o.unit, p["mean"]),
            "difference": format_value(o.unit, p["diff"], signed=True),
            "interval": interval_text(o.unit, p["diff_ci_low"], p["diff_ci_high"], signed=True),
            "diff": p["diff"], "diff_low": p["diff_ci_low"], "diff_high": p["diff_ci_high"],
            "reference_mean": r["mean"], "plan_mean": p["mean"],
        })
    table = pd.DataFrame(rows)
    cum = runs.pivot_table(index=["replication", "month"], columns="scenario",
                           values="cumulative_bookings")
    monthly_rows, diff_rows = [], []
    for month, block in cum.groupby(level="month"):
        for arm in (ref, plan):
            mean, lo, hi = _interval(block[arm].to_numpy(dtype=float))
            monthly_rows.append({"scenario": arm, "month": month, "mean": mean,
                                 "low": max(lo, 0.0), "high": hi})  # bookings are never < 0
        mean, lo, hi = _interval((block[plan] - block[ref]).to_numpy(dtype=float))
        diff_rows.append({"month": month, "mean": mean, "low": lo, "high": hi})
    return Figures(table=table, monthly=pd.DataFrame(monthly_rows),
                   difference=pd.DataFrame(diff_rows), fates=lead_fates(runs),
                   warning=summary.attrs.get("warning"), n=snap.done)


def headline(fig: Figures, reference: str) -> str:
    """One sentence: the plan's bookings against the reference, with the interval."""
    row = fig.table.set_index("outcome").loc["cumulative_bookings"]
    net = fig.table.set_index("outcome").loc["net_bookings"]
    if not math.isfinite(row["diff_low"]):
        return (f"The plan books {row['difference']} against {reference} "
                f"(interval after 2 replications or more).")
    if row["diff_low"] == row["diff_high"] == 0:
        return f"The plan books the same as {reference}: change a control to compare."
    more = "more" if row["diff"] >= 0 else "less"
    net_more = "more" if net["diff"] >= 0 else "less"
    return (f"The plan books {format_value('$', abs(row['diff']))} {more} than {reference} "
            f"({CONFIDENCE:.0%} CI {row['interval']}); net of its cost, "
            f"{format_value('$', abs(net['diff']))} {net_more} ({net['interval']}).")
