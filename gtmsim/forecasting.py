"""Forecasts from a calibration: forward runs whose bands carry parameter uncertainty.

`forecast` draws parameter values from a calibration's posterior and runs each draw a few
times past the history's last month, with the history's known inputs in force for the months
it covers. Plans (scenario files that change marketing, sales or alignment keys) start to
differ from the month after the history, and every plan runs on the same draws and the same
replication seeds (common random numbers), so a plan's difference from the current plan is
paired run by run.

The runs go through the experiment engine's tasks and executors (in-process, local processes,
Dask) and are stored one file per run under `runs/` as they finish, so an interrupted
forecast continues with `resume=True` (`gtmsim forecast --resume`) and gives what an
uninterrupted one gives: every run's seed comes from (seed, draw, replication), not from the
order in which runs finish.

The folder: `runs.parquet` (one row per plan, draw, replication and month), `runs/` (one file
per run, what a resume reads back), `draws.parquet`,
`fan.csv` (50/80/95% bands of monthly and cumulative bookings), `summary.csv` (per plan:
bookings over the forecast months and the probability of reaching the target), `plans.csv`
(each plan's paired difference from the first), `fan.png`, `manifest.json`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gtmsim.calibration import Calibration, _leaves, _seed32, read_calibration
from gtmsim.results import (
    MANIFEST,
    TEMP_SUFFIX,
    ResultsError,
    atomic_write_many,
    csv_writer,
    json_writer,
    parquet_writer,
    read_manifest,
    remove_temporary,
    safe_name,
    signals_held,
    versions,
)
from gtmsim.scenario import (
    TIMELINE_SECTIONS,
    Scenario,
    ScenarioError,
    load_scenario,
    scenario_from_dict,
    with_changes,
)

KIND = "forecast"
RUNS = "runs.parquet"
DRAWS = "draws.parquet"
FAN = "fan.csv"
SUMMARY = "summary.csv"
PLANS = "plans.csv"
FAN_CHART = "fan.png"
RUNS_DIR = "runs"
FILES = (RUNS, DRAWS, FAN, SUMMARY, PLANS, FAN_CHART, MANIFEST)
# What a resumed forecast must share with the folder's (the manifest's keys).
# The target is not among them: it changes no run, so a resume can ask another one.
_IDENTITY = ("calibration_digest", "history_months", "months", "plans", "plans_digest",
             "draws", "reps", "seed", "draws_digest")
KEPT = ("bookings", "wins", "new_opportunities", "new_leads", "customers")
LEVELS = (0.50, 0.80, 0.95)
CURRENT = "current"
# Keys a plan may not change: they describe the run, not the go-to-market.
_RUN_KEYS = ("name", "question", "seed", "months", "timeline")


class ForecastError(Exception):
    """Bad forecast input or folder; the message names the option or file."""


def _plan_changes(plan: Scenario, base: Scenario, where: str) -> tuple[dict[str, Any], list[str]]:
    """The marketing, sales and alignment keys `plan` sets differently from `base`."""
    a, b = _leaves(plan.to_dict()), _leaves(base.to_dict())
    changes, problems = {}, []
    for key in sorted(set(a) | set(b)):
        if key.split(".", 1)[0] in _RUN_KEYS or a.get(key) == b.get(key):
            continue
        if key.split(".", 1)[0] not in TIMELINE_SECTIONS:
            problems.append(f"--plan {where}: {key}: a plan can change only marketing.*, sales.* "
                            "and alignment.* keys (the market is what the calibration fitted)")
        elif key not in a:
            problems.append(f"--plan {where}: {key}: the plan removes this key; a plan can set "
                            "keys, not remove them")
        else:
            changes[key] = a[key]
    return changes, problems


def plan_scenario(current: Scenario, plan: Scenario, base: Scenario, start: int,
                  where: str = "") -> Scenario:
    """`current` (the history's inputs, then as is) with `plan`'s differences from `base` set
    at month `start`, and the plan's own timeline shifted to begin there.

    Raises:
        ScenarioError: the plan changes the market, or the result is not a valid scenario.
    """
    changes, problems = _plan_changes(plan, base, where or plan.name)
    if problems:
        raise ScenarioError(problems)
    data = current.to_dict()
    data["name"] = plan.name
    data["question"] = plan.question
    entries = [{"month": start, "set": changes, "note": "plan starts"}] if changes else []
    entries += [{**c.model_dump(mode="json"), "month": c.month + start - 1} for c in plan.timeline]
    data["timeline"] = [*data["timeline"], *entries]
    return scenario_from_dict(data, source=f"--plan {where or plan.name}")


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_folder(folder: Path, resume: bool, identity: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored manifest when resuming (None for a new folder); a finished forecast
    without `resume` is replaced; anything else is refused, with nothing written."""
    entries = [q for q in folder.iterdir()] if folder.is_dir() else []
    entries = [q for q in entries if not (q.name.startswith(".") and q.name.endswith(TEMP_SUFFIX))]
    if folder.exists() and not folder.is_dir():
        raise ForecastError(f"--out {folder}: exists and is not a folder")
    if not entries:
        if resume:
            raise ForecastError(f"--resume: {folder} holds no forecast; nothing to resume "
                                "(leave out --resume to start one)")
        return None
    if not (folder / MANIFEST).is_file():
        raise ForecastError(f"--out {folder}: holds other files and is not a forecast "
                            "folder; give a new or empty folder")
    stored = read_manifest(folder)
    if stored.get("kind") != KIND:
        raise ForecastError(f"--out {folder}: holds {stored.get('kind')} results; give "
                            "another folder")
    if not resume:
        if stored.get("status") != "complete":
            raise ForecastError(f"--out {folder}: holds an unfinished forecast; add --resume "
                                "to continue it, or give another folder")
        return None
    differ = [k for k in _IDENTITY if stored.get(k) != identity.get(k)]
    if differ:
        raise ForecastError(f"--resume: {folder} holds a different forecast (it differs in "
                            f"{', '.join(differ)}); give the same calibration and options, or "
                            "another --out")
    return stored


def _clear(folder: Path) -> None:
    """Remove a finished forecast's results before a new one starts in its folder."""
    for name in (*FILES, RUNS_DIR, "report.html"):
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


@dataclass
class Forecast:
    folder: Path
    manifest: dict[str, Any]
    runs: pd.DataFrame
    fan: pd.DataFrame
    summary: pd.DataFrame
    plans: pd.DataFrame


def _band_table(runs: pd.DataFrame, history_months: int, observed_total: float) -> pd.DataFrame:
    """Per plan and forecast month: median and 50/80/95% bands of monthly bookings and of
    cumulative bookings (the history's own bookings up to its last month, then each run's)."""
    rows = []
    future = runs[runs["month"] > history_months].copy()
    future["cumulative"] = future.groupby(["plan", "draw", "replication"])["bookings"].cumsum() \
        + observed_total
    for (plan, month), g in future.groupby(["plan", "month"], sort=False):
        row = {"plan": plan, "month": int(month)}
        for col, name in (("bookings", "bookings"), ("cumulative", "cumulative_bookings")):
            v = g[col].to_numpy(float)
            row[f"{name}_median"] = float(np.median(v))
            for level in LEVELS:
                lo, hi = np.quantile(v, [(1 - level) / 2, 1 - (1 - level) / 2])
                row[f"{name}_lo{int(level * 100)}"] = float(lo)
                row[f"{name}_hi{int(level * 100)}"] = float(hi)
        rows.append(row)
    return pd.DataFrame(rows)


def plot_fan(fan: pd.DataFrame, history: pd.DataFrame | None, *, column: str = "bookings",
             plan: str | None = None, ax: Any = None) -> Any:
    """The forecast's 50/80/95% bands of `column` ("bookings" or "cumulative_bookings") for
    one plan, continuing the history (dots); other plans' medians as lines."""
    import matplotlib.pyplot as plt

    from gtmsim.charts import PALETTE, _money

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    plans = list(dict.fromkeys(fan["plan"]))
    plan = plan or plans[0]
    d = fan[fan["plan"] == plan]
    for level, alpha in zip(LEVELS[::-1], (0.12, 0.2, 0.3)):
        ax.fill_between(d["month"], d[f"{column}_lo{int(level * 100)}"],
                        d[f"{column}_hi{int(level * 100)}"], color=PALETTE[0], alpha=alpha, lw=0,
                        label=f"{plan}: {level:.0%} band")
    ax.plot(d["month"], d[f"{column}_median"], color=PALETTE[0], lw=2, label=f"{plan}: median")
    for i, other in enumerate(p for p in plans if p != plan):
        o = fan[fan["plan"] == other]
        ax.plot(o["month"], o[f"{column}_median"], color=PALETTE[(i + 1) % len(PALETTE)], lw=2,
                ls="--", label=f"{other}: median")
    if history is not None and "bookings" in history:
        h = history["bookings"]
        y = h.cumsum() if column == "cumulative_bookings" else h
        ax.plot(h.index, y, "o-", color="#333333", ms=3.5, lw=1, label="history")
    ax.set_xlabel("Month")
    ax.set_ylabel("Cumulative bookings ($)" if column == "cumulative_bookings"
                  else "Bookings ($/month)")
    _money(ax)
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8)
    return ax


def _fan_writer(fan: pd.DataFrame, history: pd.DataFrame | None) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        # A Figure of its own, not pyplot's: writing the file leaves the caller's backend
        # (a notebook's inline one) and its open figures alone.
        from matplotlib.figure import Figure

        fig = Figure(figsize=(13.33, 7.5), layout="constrained")
        axes = fig.subplots(1, 2)
        plot_fan(fan, history, column="bookings", ax=axes[0])
        plot_fan(fan, history, column="cumulative_bookings", ax=axes[1])
        axes[0].set_title("Monthly bookings", loc="left", fontweight="bold")
        axes[1].set_title("Cumulative bookings", loc="left", fontweight="bold")
        fig.suptitle("Forecast from the calibration's posterior: 50/80/95% bands",
                     fontsize=13, fontweight="bold")
        fig.savefig(tmp, format="png", dpi=100)

    return write


def _shared_history(tasks: Sequence[exp.Task], stored: Mapping[str, Any],
                    start: int) -> list[exp.Task | exp.Branches]:
    """The runs still to do, the plans of one draw and replication as one group: they are
    the same run through the history (the plans start in month `start`), so the history is
    simulated once and each plan goes on from a copy of it. Runs already stored are left
    out (a group of one is a plain run), and the plans of a group that are not one run
    through the history (a plan that changes more than the timeline from `start` on) run
    whole."""
    from gtmsim import experiment as exp

    groups: dict[tuple[Any, int], list[exp.Task]] = {}
    for task in tasks:
        if task.file not in stored:
            groups.setdefault((task.point, task.replication), []).append(task)
    work: list[exp.Task | exp.Branches] = []
    for group in groups.values():
        try:
            work.append(exp.Branches(tuple(group), start) if len(group) > 1 else group[0])
        except ValueError:
            work += group
    return work


def forecast(
    calibration: str | Path | Calibration,
    *,
    months: int = 12,
    plans: Sequence[str | Path | Scenario] = (),
    target: float | None = None,
    draws: int = 100,
    reps: int = 2,
    seed: int | None = None,
    out: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
    command: Sequence[str] | None = None,
) -> Forecast:
    """Forecast `months` past the history from posterior draws × replications.

    Args:
        calibration: a calibration folder (or a read `Calibration`).
        months: months to forecast after the history's last month.
        plans: scenarios to compare with the current plan (the calibrated scenario as it
            stands at the history's end); each starts to differ the month after the history.
        target: bookings over the forecast months; the summary gives P(reaching it).
        draws: posterior draws (resampled by weight); reps: runs per draw.
        seed: default: the calibration's seed.
        out: the folder (default: CALIBRATION_DIR/forecast). A finished forecast there is
            replaced; an unfinished one needs `resume`.
        workers / scheduler: local processes or a Dask scheduler address.
        resume: continue the forecast in `out` (same calibration and options), running only
            the runs it does not hold yet; the result equals an uninterrupted forecast's.
        progress: called as `progress(runs done, runs in all)`.

    Raises:
        ScenarioError / ForecastError / ResultsError: bad input, every problem at once;
            nothing is written.
        KeyboardInterrupt: the finished runs are kept in `out/runs/`; `resume=True` continues.
    """
    from gtmsim import experiment as exp

    started = time.perf_counter()
    cal = calibration if isinstance(calibration, Calibration) else read_calibration(calibration)
    if cal.manifest.get("status") != "complete":
        raise ForecastError(f"{cal.folder}: the calibration did not finish (status "
                            f"{cal.manifest.get('status')!r}); run it again with --resume first")
    problems: list[str] = []
    for name, value, low in (("months", months, 1), ("draws", draws, 1), ("reps", reps, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            problems.append(f"--{name}: expected a whole number ≥ {low}, got {value!r}")
    if target is not None and not (isinstance(target, (int, float)) and math.isfinite(target)
                                   and target >= 0):
        problems.append(f"--target: expected bookings ≥ 0 in $, got {target!r}")
    if workers is not None and scheduler is not None:
        problems.append("--workers and --scheduler exclude each other; give one")
    base = cal.scenario
    hist = cal.history
    T = hist.months
    if problems:
        raise ScenarioError(problems)
    horizon = T + months
    current = hist.apply(base, horizon)
    current = scenario_from_dict({**current.to_dict(), "name": CURRENT}, source="current plan")
    arms = [current]
    for p in plans:
        try:
            # Loaded with the calibration's --set overrides, so that a plan extending the same
            # scenario differs from it only where the plan file says.
            plan = p if isinstance(p, Scenario) else load_scenario(
                p, cal.manifest.get("overrides") or None)
            arms.append(plan_scenario(current, plan, base, T + 1, str(p) if not
                                      isinstance(p, Scenario) else p.name))
        except ScenarioError as exc:
            problems += exc.problems
    names = [a.name for a in arms]
    if len(set(names)) < len(names):
        problems.append(f"--plan: two plans share a name ({', '.join(names)}); give each plan "
                        "its own `name`")
    if problems:
        raise ScenarioError(list(dict.fromkeys(problems)))
    seed = int(cal.manifest["seed"]) if seed is None else seed
    folder = Path(out) if out is not None else cal.folder / "forecast"
    post = cal.posterior
    rng = np.random.default_rng(_seed32(seed, 11))
    picks = rng.choice(len(post), size=draws, p=post["weight"].to_numpy())
    values = [{f.key: int(post[f.key].iloc[i]) if f.integer else float(post[f.key].iloc[i])
               for f in cal.fits} for i in picks]
    tasks = []
    for a, arm in enumerate(arms):
        stem = f"p{a:02d}_{safe_name(arm.name)}"
        for d, v in enumerate(values):
            sc = with_changes(arm, v, source=f"posterior draw {d}")
            for r in range(reps):
                s = _seed32(seed, 12, d, r)  # the same for every plan: common random numbers
                tasks.append(exp.Task(arm=a, scenario=sc, point=(("draw", d),), replication=r,
                                      seed=s, months=horizon,
                                      file=f"{stem}__d{d:05d}__r{r:03d}.parquet"))
    total = len(tasks)
    identity = {
        "calibration_digest": _digest({k: cal.manifest.get(k) for k in
                                       ("history_digest", "fit", "seed", "generations",
                                        "parameters", "columns")}),
        "history_months": T, "months": months, "plans": names,
        "plans_digest": _digest([a.to_dict() for a in arms]),
        "draws": draws, "reps": reps, "seed": seed, "draws_digest": _digest(values),
    }
    stored = _check_folder(folder, resume, identity)
    manifest = {
        "kind": KIND, "status": "running", "calibration": str(cal.folder), **identity,
        "target": target,
        "plan_files": [str(p) if not isinstance(p, Scenario) else p.name for p in plans],
        "runs_total": total,
        "versions": versions(), "command": list(command) if command is not None else list(sys.argv),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": [*FILES, f"{RUNS_DIR}/"],
    }
    store = exp._Folder(folder)
    frames: dict[str, pd.DataFrame] = {}
    if stored is not None:
        manifest["created"] = stored.get("created", manifest["created"])
        for task in tasks:
            if (store.runs_dir / task.file).is_file():
                df = store.load(task)  # checked: a damaged or foreign file runs again
                if df is not None:
                    frames[task.file] = df
    resumed = len(frames)
    if progress is not None:
        progress(resumed, total)

    def done(task: exp.Task, df: pd.DataFrame, seconds: float) -> None:
        store.store(task, df)
        frames[task.file] = df
        if progress is not None:
            progress(len(frames), total)

    todo = [t for t in tasks if t.file not in frames]
    work = _shared_history(tasks, frames, T + 1)
    exp.check_work(work, workers or exp._cpu_count(), yes=True)  # says when it is long
    # The executor comes first: an unreachable scheduler must leave the folder untouched.
    with exp.executor_for(workers, scheduler, tasks=max(len(work), 1)) as executor:
        with signals_held():
            if stored is None and folder.is_dir():
                _clear(folder)
            folder.mkdir(parents=True, exist_ok=True)
            remove_temporary(folder)
            if store.runs_dir.is_dir():
                remove_temporary(store.runs_dir)
            atomic_write_many({folder / MANIFEST: json_writer(manifest)})
        exp._execute(work, executor, done)
    tables = []
    for task in tasks:
        df = frames[task.file]
        tables.append(pd.DataFrame({
            "plan": task.scenario.name, "draw": dict(task.point)["draw"],
            "replication": task.replication, "seed": task.seed,
            "month": df["month"].to_numpy(), **{c: df[c].to_numpy(dtype=float) for c in KEPT}}))
    runs = pd.concat(tables, ignore_index=True)
    observed = hist.table["bookings"] if "bookings" in hist.table else None
    observed_total = float(observed.sum()) if observed is not None else 0.0
    fan = _band_table(runs, T, observed_total)
    window = (runs[runs["month"] > T].groupby(["plan", "draw", "replication"], sort=False)
              ["bookings"].sum().rename("window").reset_index())
    summary_rows, plan_rows = [], []
    ref = window[window["plan"] == CURRENT].set_index(["draw", "replication"])["window"]
    for name in names:
        w = window[window["plan"] == name].set_index(["draw", "replication"])["window"]
        row = {"plan": name, "months": months, "runs": len(w), "mean": float(w.mean()),
               "median": float(w.median()), "q05": float(w.quantile(0.05)),
               "q95": float(w.quantile(0.95)),
               "target": target, "p_target": float((w >= target).mean()) if target is not None
               else math.nan}
        summary_rows.append(row)
        if name != CURRENT:
            diff = (w - ref.reindex(w.index))
            per_draw = diff.groupby(level="draw").mean()
            lo, hi = np.quantile(per_draw, [0.025, 0.975])
            plan_rows.append({"plan": name, "vs": CURRENT, "diff_mean": float(diff.mean()),
                              "diff_lo95": float(lo), "diff_hi95": float(hi),
                              "diff_pct": float(diff.mean() / ref.mean() * 100)
                              if ref.mean() else math.nan,
                              "ahead": float((diff > 0).mean()),
                              "draws": int(per_draw.size), "reps": reps})
    summary = pd.DataFrame(summary_rows)
    plans_df = pd.DataFrame(plan_rows, columns=["plan", "vs", "diff_mean", "diff_lo95",
                                                "diff_hi95", "diff_pct", "ahead", "draws", "reps"])
    draws_df = pd.DataFrame(values)
    draws_df.insert(0, "draw", range(draws))
    manifest.update(status="complete", resumed=resumed,
                    finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    elapsed_s=round(time.perf_counter() - started, 3))
    history_table = hist.table.reindex(range(1, T + 1)) if observed is not None else None
    atomic_write_many({folder / RUNS: parquet_writer(runs), folder / DRAWS: parquet_writer(draws_df),
                       folder / FAN: csv_writer(fan), folder / SUMMARY: csv_writer(summary),
                       folder / PLANS: csv_writer(plans_df),
                       folder / FAN_CHART: _fan_writer(fan, history_table),
                       folder / MANIFEST: json_writer(manifest)})
    return Forecast(folder, manifest, runs, fan, summary, plans_df)


def read_forecast(folder: str | Path) -> Forecast:
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.get("kind") != KIND:
        raise ResultsError(f"{folder}: not a forecast folder")
    if manifest.get("status", "complete") != "complete":
        raise ResultsError(f"{folder}: the forecast did not finish; run the same command with "
                           "--resume to continue it")
    return Forecast(folder, manifest, pd.read_parquet(folder / RUNS), pd.read_csv(folder / FAN),
                    pd.read_csv(folder / SUMMARY), pd.read_csv(folder / PLANS))


__all__ = ["Forecast", "ForecastError", "forecast", "plan_scenario", "plot_fan", "read_forecast"]
