"""Experiments: replications on common random numbers, comparisons, sweeps, executors.

An experiment runs several *arms* (the scenarios of a comparison, or the grid points of
a sweep) on the same replication seeds, spawned from one base seed with NumPy's
`SeedSequence`. Replication r of every arm therefore sees the same market and the same
random streams (common random numbers), and arms are compared by paired differences
(Law, *Simulation Modeling and Analysis*, "comparing alternatives").

Runs go to an executor: local worker processes by default, in-process with
`workers=1`, or an existing Dask cluster with `scheduler="tcp://HOST:PORT"`. A run's
table depends only on (scenario, seed, months), so every executor gives the same runs.

With a results folder each finished run is written as it completes
(`runs/<arm>__r<replication>.parquet`); `resume=True` reuses those that pass a check of
their identity and contents (and may add replications), and refuses a folder whose
manifest describes a different experiment; `force=True` replaces that experiment.
"""

from __future__ import annotations

import ast
import concurrent.futures as cf
import datetime as dt
import functools
import itertools
import json
import math
import os
import re
import shutil
import signal
import sys
import time
import tomllib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from gtmsim.metrics import COLUMNS
from gtmsim.model import simulate
from gtmsim.pool import context as pool_context
from gtmsim.pool import cpu_count as _cpu_count
from gtmsim.results import (
    MANIFEST,
    MONTHLY,
    TEMP_SUFFIX,
    ResultsError,
    atomic_write_many,
    csv_writer,
    folder_kind,
    json_writer,
    parquet_writer,
    read_manifest,
    read_parquet,
    remove_temporary,
    safe_name,
    signals_held,
    versions,
    write_json,
    write_parquet,
)
from gtmsim.scenario import (
    _BARE_WORD,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_override,
    scenario_from_dict,
    with_changes,
)

RUNS = "runs.parquet"
SUMMARY = "summary.csv"
RUNS_DIR = "runs"
IDENTITY = ("scenario", "replication", "seed", "month")
SCHEDULER_TIMEOUT_S = 10  # how long to try reaching a Dask scheduler
DASK_RETRIES = 2  # times a run lost with its Dask worker is run again elsewhere
DASK_NO_WORKERS_S = 30  # a cluster without workers this long ends the experiment
MAX_GRID_POINTS = 10_000  # refused before the grid is built, whatever --yes says
MAX_RUNS = 200_000  # arms × replications, refused before any seed or task is made
LONG_WORK_S = 30 * 60  # estimated wall time above which --yes (yes=True) is needed
NOTICE_WORK_S = 60  # estimated wall time above which the estimate is said before starting
# Manifest keys that define an experiment: resuming refuses a folder that differs in any
# (except that more reps, on the same first seeds, extend it).
# "points" holds the overrides of each arm of an analysis verb (gtmsim.analysis.points).
_IDENTITY_KEYS = ("kind", "scenarios", "vary", "points", "reps", "seed", "seeds", "months",
                  "draws")
# Derived files `--force` removes with the results: a report of the old results would mislead.
_DERIVED = ("report.html", "charts", "deck.pptx", "workbook.xlsx", "tables")


class ExperimentError(Exception):
    """Bad experiment input: results folder conflicts, unreachable cluster, bad options."""


class StoredRunWarning(UserWarning):
    """A stored run failed its check on resume and is run again."""


class HorizonWarning(UserWarning):
    """A timeline entry falls after the months of the run (shortened by `months`)."""


class LongWorkWarning(UserWarning):
    """The work is estimated at over a minute: said before it starts."""


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Outcome:
    """A run-level figure the experiment summarises.

    Attributes:
        name: column name in `Experiment.outcomes()` and `summary()`.
        label: readable name.
        unit: as in `gtmsim.metrics`.
        better: +1 when more is better, -1 when less is better ("ahead" in summaries).
        description: how it is computed from the monthly table.
        reduce: monthly table of one run (sorted by month) -> value.
        low, high: the range the figure can take; intervals are clipped to it (and paired
            differences to `low - high` .. `high - low`).
        censored: NaN means "not within the run" rather than "undefined": a mean over
            replications is given only when every replication has a value.
    """

    name: str
    label: str
    unit: str
    better: int
    description: str
    reduce: Callable[[pd.DataFrame], float] = field(repr=False)
    low: float = 0.0
    high: float = math.inf
    censored: bool = False

    @property
    def diff_range(self) -> tuple[float, float]:
        """The range of a paired difference of this figure."""
        return self.low - self.high, self.high - self.low


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def total_cost(m: pd.DataFrame) -> pd.Series:
    """Cost of each month: marketing spend + sales cost + alignment cost."""
    cost = m["marketing_spend"] + m["sales_cost"]
    # Runs stored before the column existed (missing, or empty beside newer runs) had none.
    return cost + m["alignment_cost"].fillna(0.0) if "alignment_cost" in m else cost


def payback_month(m: pd.DataFrame) -> float:
    """First month whose cumulative bookings cover the cumulative cost; NaN if none does."""
    covered = (m["bookings"].cumsum() >= total_cost(m).cumsum()).to_numpy()
    return float(m["month"].iloc[int(covered.argmax())]) if covered.any() else float("nan")


OUTCOMES: tuple[Outcome, ...] = (
    Outcome("cumulative_bookings", "Cumulative bookings", "$", +1,
            "cumulative bookings at the final month",
            lambda m: float(m["cumulative_bookings"].iloc[-1])),
    Outcome("customers", "Customers", "accounts", +1, "customers at the final month",
            lambda m: float(m["customers"].iloc[-1])),
    Outcome("cac", "CAC", "$/customer", -1,
            "(marketing spend + sales cost + alignment cost) / wins, both summed over the run",
            lambda m: _ratio(total_cost(m).sum(), m["wins"].sum())),
    Outcome("win_rate", "Win rate", "fraction", +1, "wins / (wins + losses), summed over the run",
            lambda m: _ratio(m["wins"].sum(), m["wins"].sum() + m["losses"].sum()), high=1.0),
    # The monthly table holds only each month's median, not the leads behind it, so the
    # run-level figure is the median of the monthly medians (months with no lead worked skipped).
    Outcome("lead_response_days_median", "Median lead response", "days", -1,
            "median over months of the monthly median lead response",
            lambda m: float(m["lead_response_days_median"].median())),
    Outcome("leads_decayed", "Leads decayed", "leads", -1,
            "leads that went cold while waiting, summed over the run",
            lambda m: float(m["leads_decayed"].sum())),
    Outcome("leads_unworked", "Leads never worked", "leads", -1,
            "leads that left the queue without a rep response, summed over the run "
            "(overlaps with leads decayed)",
            lambda m: float(m["leads_unworked"].sum())),
    Outcome("total_cost", "Total cost", "$", -1,
            "marketing spend + sales cost + alignment cost, summed over the run",
            lambda m: float(total_cost(m).sum())),
    Outcome("net_bookings", "Net bookings", "$", +1,
            "cumulative bookings − total cost, over the run",
            lambda m: float(m["bookings"].sum() - total_cost(m).sum()), low=-math.inf),
    Outcome("roi", "ROI", "fraction", +1,
            "(cumulative bookings − total cost) / total cost, over the run",
            lambda m: _ratio(m["bookings"].sum() - total_cost(m).sum(), total_cost(m).sum()),
            low=-1.0),
    Outcome("payback_month", "Payback month", "month", -1,
            "first month in which cumulative bookings ≥ cumulative total cost; "
            "empty when that does not happen within the run",
            payback_month, low=1.0, censored=True),
)

# Fewer replications than this and the tables warn that the intervals mean little.
MIN_REPS = 10


def few_reps_warning(n: int) -> str | None:
    """The warning for intervals over `n` replications, or None when there are enough."""
    if n >= MIN_REPS:
        return None
    return (f"Only {n} replication{'s' if n != 1 else ''}: with fewer than {MIN_REPS} the "
            "intervals are rough (the t quantile is large and the standard deviation itself "
            "is poorly known); use --reps 10 or more before deciding.")


@functools.lru_cache(maxsize=256)
def _t_quantile(confidence: float, dof: int) -> float:
    """Two-sided Student-t quantile; cached, as summaries ask for the same few many times."""
    return float(stats.t.ppf((1 + confidence) / 2, dof))


def _t_interval(x: np.ndarray, confidence: float,
                bounds: tuple[float, float] = (-math.inf, math.inf)) -> tuple[float, float, float]:
    """Mean and its Student-t interval, clipped to `bounds` (the range of the figure).

    The interval is NaN with fewer than two values.
    """
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return (float("nan"),) * 3
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    sem = x.std(ddof=1) / len(x) ** 0.5  # as scipy.stats.sem computes it
    half = float(_t_quantile(confidence, len(x) - 1) * sem)
    low, high = bounds
    return mean, max(mean - half, low), min(mean + half, high)


def _cumsum(x: np.ndarray) -> np.ndarray:
    """Running sum as pandas' `cumsum` gives it: a blank adds nothing and stays blank."""
    blank = np.isnan(x)
    out = np.cumsum(np.where(blank, 0.0, x))
    out[blank] = np.nan
    return out


def per_run_outcomes(runs: pd.DataFrame, ids: Sequence[str]) -> pd.DataFrame:
    """One row per run (a distinct combination of `ids`, in order of first appearance):
    the `ids` and each key outcome of `OUTCOMES`.

    Column-wise over all runs at once; each value equals `Outcome.reduce` of that run's
    monthly table sorted by month (the tests hold the two equal).
    """
    ids = list(ids)
    names = [o.name for o in OUTCOMES]
    if runs.empty:
        return pd.DataFrame(columns=[*ids, *names])
    code = runs.groupby(ids, sort=False, dropna=False).ngroup().to_numpy()
    order = np.lexsort((runs["month"].to_numpy(), code))
    code = code[order]
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    ends = np.r_[starts[1:], len(code)]
    last = ends - 1

    def col(name: str) -> np.ndarray:
        return runs[name].to_numpy(dtype=float)[order]

    lengths = ends - starts
    square = bool((lengths == lengths[0]).all())

    def total(x: np.ndarray) -> np.ndarray:
        """Per run, NaN counted as 0, summed pairwise as NumPy and pandas sum."""
        x = np.where(np.isnan(x), 0.0, x)
        if square:  # a run per row: the row sums are pandas' per-run sums to the last bit
            return x.reshape(len(starts), int(lengths[0])).sum(axis=1)
        return np.array([x[a:b].sum() for a, b in zip(starts, ends, strict=True)])

    cost = col("marketing_spend") + col("sales_cost")
    if "alignment_cost" in runs:
        cost = cost + np.nan_to_num(col("alignment_cost"), nan=0.0)
    bookings, wins, losses = col("bookings"), col("wins"), col("losses")
    cost_sum, bookings_sum = total(cost), total(bookings)
    wins_sum, losses_sum = total(wins), total(losses)
    months = runs["month"].to_numpy()[order]
    response = col("lead_response_days_median")
    median = np.full(len(starts), np.nan)
    payback = np.full(len(starts), np.nan)
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        r = response[a:b]
        r = r[~np.isnan(r)]
        if len(r):
            median[i] = np.median(r)
        covered = _cumsum(bookings[a:b]) >= _cumsum(cost[a:b])
        if covered.any():
            payback[i] = float(months[a + int(covered.argmax())])

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)

    net = bookings_sum - cost_sum
    values = {
        "cumulative_bookings": col("cumulative_bookings")[last],
        "customers": col("customers")[last],
        "cac": ratio(cost_sum, wins_sum),
        "win_rate": ratio(wins_sum, wins_sum + losses_sum),
        "lead_response_days_median": median,
        "leads_decayed": total(col("leads_decayed")),
        "leads_unworked": total(col("leads_unworked")),
        "total_cost": cost_sum,
        "net_bookings": net,
        "roi": ratio(net, cost_sum),
        "payback_month": payback,
    }
    if set(values) != set(names):  # an outcome added to OUTCOMES must be added here too
        missing = sorted(set(names) ^ set(values))
        raise AssertionError(f"per_run_outcomes does not compute {missing}")
    first = runs.iloc[order[starts]]
    table = {c: first[c].tolist() for c in ids}
    table |= {n: values[n] for n in names}
    return pd.DataFrame(table, columns=[*ids, *names])


# --------------------------------------------------------------------------- seeds and grids


def replication_seeds(base: int, reps: int) -> list[int]:
    """Seeds for `reps` replications, spawned from `base` (independent streams).

    The r-th seed does not depend on `reps`, so more replications extend the list.
    """
    children = np.random.SeedSequence(base).spawn(reps)
    # 63 bits: a non-negative int64, safe in Parquet and as a scenario seed.
    return [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]


def _toml_value(raw: str, key: str | None = None) -> Any:
    """A TOML value, or a bare word (a preset name) taken as a string.

    With `key`, anything else (`"abc` with one quote, `1e`) is refused, as `--set` does.
    """
    raw = raw.strip()
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if key is not None and not _BARE_WORD.fullmatch(raw):
            raise ScenarioError([f"--vary {key}: {raw!r} is not a valid TOML value; write "
                                 "numbers as 6 or 0.5, true/false, strings as \"text\""]) from None
        return raw


def _linspace(key: str, raw: str) -> list[Any] | None:
    """Values of `START:STOP:COUNT`, or None when `raw` is not of that form."""
    if ":" not in raw or "," in raw:
        return None
    parts = raw.split(":")
    start, stop, count = (_toml_value(p) for p in parts) if len(parts) == 3 else (None,) * 3
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, stop))
    if not numbers or not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ScenarioError([(f"--vary {key}={raw}: expected START:STOP:COUNT with numbers "
                              f"and a whole COUNT ≥ 1, e.g. {key}=2:8:4")])
    if count > MAX_GRID_POINTS:
        raise ScenarioError([f"--vary {key}={raw}: COUNT {count:,} is more than the "
                             f"{MAX_GRID_POINTS:,} grid points an experiment may have"])
    values = np.linspace(start, stop, count) if count > 1 else np.array([start])
    if isinstance(start, int) and isinstance(stop, int) and np.all(values == np.round(values)):
        return [int(v) for v in values]
    return [float(f"{v:.12g}") for v in values]  # 0.30000000000000004 -> 0.3


def parse_vary(texts: Sequence[str]) -> dict[str, list[Any]]:
    """Parse `--vary` options: `KEY=V1,V2,...` or `KEY=START:STOP:COUNT` (inclusive).

    Values are read as TOML values (`6`, `0.5`, `true`, `"x"`), else kept as strings.
    Checking keys and types is left to scenario validation.

    Raises:
        ScenarioError: for malformed options, one message each.
    """
    vary: dict[str, list[Any]] = {}
    problems = []
    for text in texts:
        key, sep, raw = (s.strip() for s in text.partition("="))
        if not sep or not key or not raw:
            problems.append(f"--vary {text}: expected KEY=V1,V2,... or KEY=START:STOP:COUNT")
            continue
        if key in vary:
            problems.append(f"--vary {key}: given twice")
            continue
        try:
            values = _linspace(key, raw)
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        if values is None:
            items = [s.strip() for s in raw.split(",")]
            if not all(items):
                problems.append(f"--vary {text}: empty value in the list")
                continue
            try:
                values = [_toml_value(s, key) for s in items]
            except ScenarioError as exc:
                problems.extend(exc.problems)
                continue
        dup = _first_duplicate(values)
        if dup is not None:
            problems.append(f"--vary {key}: the value {_shown(dup)} is given more than once "
                            "(the same point would run twice); give each value once")
            continue
        vary[key] = values
    if problems:
        raise ScenarioError(problems)
    return vary


def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def _first_duplicate(values: Sequence[Any]) -> Any:
    """The first value equal to an earlier one (2 and 2.0 are equal; True and 1 are not)."""
    seen: list[Any] = []
    for v in values:
        if any(v == w and isinstance(v, bool) == isinstance(w, bool) for w in seen):
            return v
        seen.append(v)
    return None


def grid_size(vary: Mapping[str, Sequence[Any]]) -> int:
    """Number of grid points of `vary`, without building the grid."""
    return math.prod(len(v) for v in vary.values())


def grid_points(vary: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The full grid of `vary`, the last key varying fastest."""
    keys = list(vary)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*vary.values())]


# --------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class Task:
    """One run of an experiment: an arm on one replication seed."""

    arm: int
    scenario: Scenario
    point: tuple[tuple[str, Any], ...]  # varied keys and their values (sweeps)
    replication: int
    seed: int
    months: int
    file: str  # file name under runs/


def run_task(task: Task) -> pd.DataFrame:
    """Simulate one task; its monthly table with identity columns in front.

    Pure: the result depends only on the task, whichever process runs it.
    """
    result = simulate(task.scenario, seed=task.seed, months=task.months, keep_model=False)
    return _with_identity(task, result.monthly.copy())


def _with_identity(task: Task, df: pd.DataFrame) -> pd.DataFrame:
    """`df` (a run's monthly table) with the task's identity columns in front, in place."""
    front = {"scenario": task.scenario.name, **dict(task.point),
             "replication": task.replication, "seed": task.seed}
    for i, (name, value) in enumerate(front.items()):
        df.insert(i, name, value)
    return df


def _timed_run(task: Task) -> tuple[pd.DataFrame, float]:
    # CPU time of this thread: unaffected by other load, right for thread and process workers.
    start = time.thread_time()
    return run_task(task), time.thread_time() - start


# What a scenario may differ in from another that it shares a run with until some month.
_OWN_KEYS = ("name", "question", "label", "timeline")


@dataclass(frozen=True)
class Branches:
    """Tasks that are one run until `month`: the same seed and months, and scenarios that
    differ only in timeline entries from `month` on (and in name, question and label).

    They run once up to the end of month `month` − 1, and each goes on from a copy of that
    model, which continues exactly as a run of its own would: the same numbers as running
    each task alone, for the shared months once (forecast plans share the fitted history).
    """

    tasks: tuple[Task, ...]
    month: int

    def __post_init__(self) -> None:
        if not self.tasks or self.month < 1:
            raise ValueError(f"branches: expected at least one task and a month ≥ 1, got "
                             f"{len(self.tasks)} tasks and month {self.month}")
        def until_month(t: Task) -> tuple[Any, ...]:
            own = {k: v for k, v in t.scenario.to_dict().items() if k not in _OWN_KEYS}
            return t.seed, t.months, own, [c for c in t.scenario.timeline if c.month < self.month]

        first = self.tasks[0]
        shared = until_month(first)
        for t in self.tasks[1:]:
            if until_month(t) != shared:
                raise ValueError(f"branches: {t.file} is not the run of {first.file} until "
                                 f"month {self.month}")


def run_branches(group: Branches) -> list[pd.DataFrame]:
    """Each task's monthly table (as `run_task` gives it), the shared months run once."""
    import copy

    from gtmsim.model import GTMModel
    from gtmsim.scenario import with_changes

    first = group.tasks[0]
    shared = min(group.month - 1, first.months)
    trunk = GTMModel(first.scenario, seed=first.seed)
    trunk.run(shared)
    out = []
    for i, task in enumerate(group.tasks):
        model = trunk if i == len(group.tasks) - 1 else copy.deepcopy(trunk)
        later = [c.model_dump() for c in task.scenario.timeline if c.month >= group.month]
        try:
            model.config = with_changes(model.config, {"timeline": later}, f"branch {task.file}")
            df = model.run(task.months - shared)
        except Exception as exc:
            exc.gtmsim_run = task.file  # pickled with the exception: the caller names this run
            raise
        out.append(_with_identity(task, df))
    return out


def _timed_branches(group: Branches) -> tuple[list[pd.DataFrame], float]:
    start = time.thread_time()
    return run_branches(group), time.thread_time() - start


def _ignore_sigint() -> None:
    # Workers leave Ctrl-C to the parent, which cancels pending runs and keeps finished ones.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


_SCHEDULER_ADDRESS = re.compile(
    r"^(?:(?:tcp|tls|ucx|ws|wss)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$"
    r"|^inproc://\S+$")  # inproc: a LocalCluster(processes=False) in this process


def scheduler_timeout() -> float:
    """Seconds to wait for a Dask scheduler (env GTMSIM_SCHEDULER_TIMEOUT, default 10)."""
    raw = os.environ.get("GTMSIM_SCHEDULER_TIMEOUT", "")
    try:
        value = float(raw) if raw.strip() else float(SCHEDULER_TIMEOUT_S)
    except ValueError:
        raise ExperimentError(f"GTMSIM_SCHEDULER_TIMEOUT: expected seconds > 0, got {raw!r}") from None
    if not 0 < value < float("inf"):
        raise ExperimentError(f"GTMSIM_SCHEDULER_TIMEOUT: expected seconds > 0, got {raw!r}")
    return value


def _check_scheduler_address(scheduler: Any) -> str:
    if not isinstance(scheduler, str) or not _SCHEDULER_ADDRESS.match(scheduler.strip()):
        raise ExperimentError(f"--scheduler {scheduler}: expected a Dask scheduler address "
                              "tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786")
    port = re.search(r":(\d{1,5})$", scheduler.strip())
    if port and not 1 <= int(port.group(1)) <= 65535:
        raise ExperimentError(f"--scheduler {scheduler}: port {port.group(1)} is not a port "
                              "(1–65535); Dask schedulers listen on 8786 by default")
    return scheduler.strip()


async def _identity(address: str, timeout: float) -> Any:
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def _refused(address: str, timeout: float) -> None:
    """Say at once when nothing listens at a TCP address (Dask would retry until timeout)."""
    import socket

    found = re.match(r"^(?:tcp://)?(\[[^\]]+\]|[^:/\[\]]+):(\d+)$", address)
    if not found:
        return  # tls, ucx, ws, inproc: left to Dask's own connect
    host, port = found.group(1).strip("[]"), int(found.group(2))
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except ConnectionRefusedError:
        raise ExperimentError(f"cannot reach the Dask scheduler at {address}: the connection "
                              "was refused (nothing listens there); start one with "
                              "`dask scheduler` or check the address") from None
    except OSError:
        return  # unknown host, unreachable network, timeout: Dask's connect reports it


@contextmanager
def _dask_executor(scheduler: str) -> Iterator[cf.Executor]:
    import asyncio

    from distributed import Client

    address = _check_scheduler_address(scheduler)
    timeout = scheduler_timeout()
    try:
        # Client() waits without bound for a server that accepts and never answers:
        # ask the scheduler who it is first, within the timeout.
        _refused(address, timeout)
        asyncio.run(asyncio.wait_for(_identity(address, timeout), timeout))
        # A scheduler that accepts the connection and never answers must not hang the
        # command: the handshake is bounded too (distributed.comm.timeouts.connect).
        import dask

        with dask.config.set({"distributed.comm.timeouts.connect": f"{timeout}s"}):
            client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, ValueError, TimeoutError, asyncio.TimeoutError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExperimentError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                              f"({why}); expected a running scheduler at tcp://HOST:PORT "
                              "(set GTMSIM_SCHEDULER_TIMEOUT to wait longer)") from None
    try:
        try:
            # Without workers the runs would wait forever; say so instead.
            client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, asyncio.TimeoutError):
            raise ExperimentError(f"the Dask scheduler at {address} has no workers") from None
        # A run lost with its worker is run again elsewhere (the runs are pure).
        executor = client.get_executor(pure=False, retries=DASK_RETRIES)
        executor._gtmsim_client = client  # type: ignore[attr-defined]  # for _execute's health check
        yield executor
    finally:
        client.close(timeout=timeout)


def _stop_processes(pool: cf.ProcessPoolExecutor) -> None:
    """Cancel what has not started, end the worker processes now and the fork server."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + 5
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(1)
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    if server is not None and getattr(server, "_forkserver_pid", None) is not None:
        try:
            server._stop()
        except (OSError, ChildProcessError):
            pass


@contextmanager
def executor_for(workers: int | None = None, scheduler: str | None = None,
                 tasks: int | None = None) -> Iterator[cf.Executor | None]:
    """The executor for `workers` / `scheduler`; None means run in-process.

    Leaving the block by an exception (Ctrl-C, a signal, a failed run) cancels the runs
    not started and ends the worker processes at once; finished runs are kept by the caller.

    Args:
        workers: local worker processes (default: all cores); 1 runs in-process.
        scheduler: address of a running Dask scheduler, e.g. "tcp://10.0.0.5:8786".
        tasks: number of runs, to avoid starting idle workers.

    Raises:
        ExperimentError: both given, a malformed address, or the scheduler cannot be reached.
    """
    if workers is not None and scheduler is not None:
        raise ExperimentError("give either workers or a Dask scheduler, not both")
    if scheduler is not None:
        with _dask_executor(scheduler) as executor:
            yield executor
        return
    n = _cpu_count() if workers is None else _whole("workers", workers)
    n = min(n, tasks) if tasks else n
    top = _unguarded_main_call() if n > 1 else None
    if top is not None:
        # One line, pointing at the script's own line.
        warnings.warn_explicit(_UNGUARDED, RuntimeWarning, top.f_code.co_filename, top.f_lineno,
                               module="__main__",
                               registry=top.f_globals.setdefault("__warningregistry__", {}))
        n = 1
    if n <= 1:
        yield None
        return
    # Workers fork from a server that has loaded gtmsim and its kernels once (gtmsim.pool).
    pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=pool_context(),
                                  initializer=_ignore_sigint)
    try:
        yield pool
    except BaseException:
        _stop_processes(pool)
        raise
    pool.shutdown(wait=True, cancel_futures=True)


_UNGUARDED = ("gtmsim runs this experiment in this process: the script calls it outside "
              "`if __name__ == \"__main__\":`, and worker processes would run the script "
              "again; put the call under that guard to use worker processes")


def _is_main_guard(node: ast.AST) -> bool:
    if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)):
        return False
    test = node.test
    sides = [test.left, *test.comparators]
    if len(sides) != 2 or not isinstance(test.ops[0], ast.Eq):
        return False
    names = {s.id for s in sides if isinstance(s, ast.Name)}
    consts = {s.value for s in sides if isinstance(s, ast.Constant)}
    return names == {"__name__"} and consts == {"__main__"}


def _unguarded_main_call() -> Any:
    """The main script's module-level frame when its top level, outside the
    `if __name__ == "__main__":` guard, is what is calling us (else None): spawned and
    forkserver workers import the main script, so they would run that call again."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path:
        return None  # interactive, -c or a notebook: workers do not re-run anything
    frame = sys._getframe(1)
    top = None
    while frame is not None:
        if frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>":
            top = frame
        frame = frame.f_back
    if top is None:
        return None  # called from a function the script's guard (or a library) called
    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    line = top.f_lineno
    for node in ast.walk(tree):
        if _is_main_guard(node) and node.lineno <= line <= (node.end_lineno or node.lineno):
            return None
    return top


def _whole(name: str, value: Any, *, low: int = 1, high: int | None = None,
           optional: bool = False) -> Any:
    """`value` if it is a whole number in [low, high] (or None when optional)."""
    if value is None and optional:
        return None
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or value < low or (high is not None and value > high):
        span = f"{low} to {high}" if high is not None else f"≥ {low}"
        raise ExperimentError(f"{name}: expected a whole number {span}"
                              f"{' or None' if optional else ''}, got {value!r}")
    return int(value)


def _worker_error(task: Task, exc: BaseException) -> BaseException:
    """What the caller sees for a run that failed in a worker."""
    if isinstance(exc, ScenarioError):
        # Rebuilt here so that the problem list arrives whole even if the exception was
        # unpickled from its joined message (a str, which would split into characters).
        problems = getattr(exc, "problems", None)
        if isinstance(problems, str):
            problems = problems.splitlines()
        if not isinstance(problems, (list, tuple)) or not all(isinstance(p, str) for p in problems):
            problems = str(exc).splitlines()
        return ScenarioError(list(problems) or [f"run {task.file}: {type(exc).__name__}"])
    if isinstance(exc, ExperimentError):
        return ExperimentError(str(exc))
    if isinstance(exc, ModuleNotFoundError):
        return ExperimentError(f"the workers cannot import gtmsim ({exc}); install the "
                               "same gtmsim version on every worker")
    if isinstance(exc, cf.BrokenExecutor):  # a process pool's BrokenProcessPool among them
        return ExperimentError("a worker process ended abruptly (killed, or out of memory?) "
                               f"while running {task.file}; finished runs are kept, run the "
                               "same command with --resume to continue")
    if type(exc).__name__ == "KilledWorker":
        return ExperimentError(f"the Dask workers running {task.file} died {DASK_RETRIES + 1} "
                               "times; finished runs are kept, run the same command with "
                               "--resume to continue")
    return RuntimeError(f"run {task.file} (seed {task.seed}) failed: "
                        f"{type(exc).__name__}: {exc}")


def _check_cluster(executor: cf.Executor, since: list[float]) -> None:
    """Raise when a Dask cluster has had no workers for `DASK_NO_WORKERS_S` seconds."""
    client = getattr(executor, "_gtmsim_client", None)
    if client is None:
        return
    try:
        workers = client.scheduler_info().get("workers", {})
    except Exception:  # noqa: BLE001 - an unreachable scheduler counts as no workers
        workers = {}
    if workers:
        since[0] = time.monotonic()
    elif time.monotonic() - since[0] > DASK_NO_WORKERS_S:
        raise ExperimentError(f"the Dask cluster at {client.scheduler.address} has had no "
                              f"workers for {DASK_NO_WORKERS_S:g} s; finished runs are kept, "
                              "run the same command with --resume to continue")


def _in_flight(executor: cf.Executor) -> int:
    """Runs submitted to `executor` and not yet finished, at most: four per local worker
    (one running and a few queued, so that no worker waits while this process stores a
    result); on a Dask cluster, whose size can change, 1,024."""
    if isinstance(executor, cf.ProcessPoolExecutor):
        return 4 * max(1, getattr(executor, "_max_workers", 1))
    return 1024


def _execute(tasks: Sequence[Task | Branches], executor: cf.Executor | None,
             on_result: Callable[[Task, pd.DataFrame, float], None]) -> None:
    """Run `tasks` (runs, or groups of runs that share their first months), handing each
    run's result and its run time to `on_result` in this process as it completes; a group's
    time is shared evenly among its runs."""
    def timed(item: Task | Branches) -> Callable[[Any], Any]:
        return _timed_branches if isinstance(item, Branches) else _timed_run

    def hand_over(item: Task | Branches, result: Any) -> None:
        if isinstance(item, Branches):
            frames, seconds = result
            with signals_held():
                for task, df in zip(item.tasks, frames, strict=True):
                    on_result(task, df, seconds / len(item.tasks))
        else:
            with signals_held():
                on_result(item, *result)

    if executor is None:
        for item in tasks:
            hand_over(item, timed(item)(item))
        return
    # Runs are submitted as others finish, a few per worker ahead: waiting on every run of a
    # large experiment at once cost the parent time in proportion to the runs not yet done,
    # at every run that finished.
    ahead = iter(tasks)
    limit = _in_flight(executor)
    futures: dict[cf.Future, Task | Branches] = {}

    def submit_more() -> None:
        while len(futures) < limit and (item := next(ahead, None)) is not None:
            futures[executor.submit(timed(item), item)] = item

    submit_more()
    seen = [time.monotonic()]
    try:
        while futures:
            ready, _ = cf.wait(futures, timeout=1.0, return_when=cf.FIRST_COMPLETED)
            for future in ready:
                item = futures.pop(future)
                try:
                    result = future.result()
                except Exception as exc:
                    task = item if isinstance(item, Task) else next(
                        (t for t in item.tasks if t.file == getattr(exc, "gtmsim_run", None)),
                        item.tasks[0])  # a failure in the shared months: the group's first
                    raise _worker_error(task, exc) from None
                hand_over(item, result)
            submit_more()
            if not ready:
                _check_cluster(executor, seen)
    finally:
        for future in futures:
            future.cancel()


# --------------------------------------------------------------------------- results folder


def _jsonable(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(data, list) and data and isinstance(data[0], dict):
        out = {}
        for i, v in enumerate(data):
            out.update(_flat(v, f"{prefix}[{i}]"))
        return out
    return {prefix: data}


def _differences(stored: Mapping[str, Any], wanted: Mapping[str, Any], limit: int = 6) -> list[str]:
    old, new = _flat(dict(stored)), _flat(dict(wanted))
    keys = sorted(set(old) | set(new), key=lambda k: (k not in new, k))
    absent = "(absent)"
    lines = [f"{k}: {_short(old.get(k, absent))} in the folder, {_short(new.get(k, absent))} now"
             for k in keys if old.get(k, absent) != new.get(k, absent)]
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return lines


def _short(value: Any) -> str:
    if isinstance(value, list) and len(value) > 4:
        return f"a list of {len(value)}"
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


class _Folder:
    """An experiment's results folder: the manifest, one file per run, the combined tables."""

    def __init__(self, path: Path):
        self.path = path
        self.runs_dir = path / RUNS_DIR
        self.replace = False  # --force: old results are removed before the first write

    def check(self, identity: dict[str, Any], resume: bool, force: bool,
              tasks: Sequence[Task]) -> tuple[set[str], dict[str, Any] | None]:
        """Check the folder against the experiment, writing nothing.

        Returns:
            The run files already there (checked again when read), and the stored
            manifest (None if new or replaced).

        Raises:
            ExperimentError: the folder holds another experiment, or holds this one and
                neither `resume` nor `force` was asked for.
            ResultsError: the path is not a folder, holds files that are not gtmsim
                results, or its manifest is unreadable.
        """
        if folder_kind(self.path) is None:
            return set(), None
        if force:
            self.replace = True
            return set(), None
        stored = read_manifest(self.path)
        stored_identity = {k: stored.get(k) for k in _IDENTITY_KEYS}
        extends = self._extends(stored_identity, identity)
        if stored_identity != identity and not extends:
            what = stored.get("kind", "something")
            diff = "\n  ".join(_differences(stored_identity, identity))
            advice = ("--resume continues only the same experiment (it may add replications); "
                      "add --force instead of --resume to replace its results" if resume
                      else "choose another --out, or add --force to replace its results")
            raise ExperimentError(f"{self.path}: holds a different {what} experiment; {advice}. "
                                  f"Differences:\n  {diff}")
        done = {t.file for t in tasks if (self.runs_dir / t.file).exists()}
        if not resume:
            if extends:
                state = (f"with {stored_identity['reps']} of the {identity['reps']} "
                         "replications; add --resume to run the others")
            else:
                state = ("complete" if len(done) == len(tasks)
                         else f"{len(done)} of {len(tasks)} runs done")
                state = f"({state}); add --resume to continue or reuse it"
            raise ExperimentError(f"{self.path}: already holds this experiment {state}, "
                                  "--force to replace its results, or choose another --out")
        return done, stored

    @staticmethod
    def _extends(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
        """Whether `wanted` is `stored` with more replications on the same first seeds
        (and, with parameter draws, the same first draws)."""
        grows = ("reps", "seeds", "draws")
        same = all(stored[k] == wanted[k] for k in _IDENTITY_KEYS if k not in grows)
        old, new = stored.get("seeds"), wanted["seeds"]
        old_draws, new_draws = stored.get("draws"), wanted.get("draws")
        draws_agree = (old_draws is None and new_draws is None) or (
            isinstance(old_draws, list) and isinstance(new_draws, list)
            and new_draws[:len(old_draws)] == old_draws)
        return (same and draws_agree and isinstance(old, list)
                and isinstance(stored.get("reps"), int)
                and stored["reps"] < wanted["reps"] and new[:len(old)] == old)

    def prepare(self) -> None:
        """Before the first write: remove what a signal left, and with --force the old results.

        The old runs go first, so an interrupted --force never leaves old runs beside a
        new manifest.
        """
        if self.replace:
            for name in (RUNS_DIR, RUNS, SUMMARY, MONTHLY, *_DERIVED):
                path = self.path / name
                try:
                    if path.is_dir() and not path.is_symlink():
                        # Renamed first: one step takes every old run out of use.
                        gone = self.path / f".{name}.old{TEMP_SUFFIX}"
                        shutil.rmtree(gone, ignore_errors=True)
                        path.rename(gone)
                        shutil.rmtree(gone)
                    else:
                        path.unlink(missing_ok=True)
                except OSError as exc:
                    raise ResultsError(f"{path}: cannot remove ({exc.strerror or exc})") from None
        if self.path.is_dir():
            remove_temporary(self.path)
            for left in self.path.glob(f".*.old{TEMP_SUFFIX}"):
                shutil.rmtree(left, ignore_errors=True)
        if self.runs_dir.is_dir():
            remove_temporary(self.runs_dir)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json(manifest, self.path / MANIFEST)

    def store(self, task: Task, df: pd.DataFrame) -> None:
        write_parquet(df, self.runs_dir / task.file)

    def load(self, task: Task) -> pd.DataFrame | None:
        """The stored run of `task` if it passes its check; else None, with a warning."""
        path = self.runs_dir / task.file
        try:
            df = read_parquet(path)
            problem = _stored_run_problem(task, df)
        except ResultsError as exc:
            problem = str(exc).removeprefix(f"{path}: ")
        if problem is None:
            return df
        warnings.warn(f"{path}: {problem}; running it again", StoredRunWarning, stacklevel=2)
        return None

    def finish(self, exp: Experiment, manifest: dict[str, Any]) -> None:
        # All three complete before any replaces the old: the manifest says complete last.
        atomic_write_many({
            self.path / RUNS: parquet_writer(exp.runs),
            self.path / SUMMARY: csv_writer(exp.summary()),
            self.path / MANIFEST: json_writer(manifest),
        })


def _stored_run_problem(task: Task, df: pd.DataFrame) -> str | None:
    """Why a stored run cannot stand for `task` (None if it can): its identity columns
    (scenario, varied point, replication, seed), its columns and its months."""
    point = dict(task.point)
    expected = ["scenario", *point, "replication", "seed", *COLUMNS]
    if list(df.columns) != expected:
        return "its columns are not those of a run of this experiment"
    if df["month"].tolist() != list(range(1, task.months + 1)):
        return f"it does not hold months 1 to {task.months}"
    wanted = {"scenario": task.scenario.name, **point, "replication": task.replication,
              "seed": task.seed}
    for column, value in wanted.items():
        if not (df[column] == value).all():
            got = df.loc[df[column] != value, column].iloc[0]
            got = got.item() if hasattr(got, "item") else got  # NumPy scalar -> Python
            return f"it is a run of {column} {got!r}, expected {value!r}"
    return None


# --------------------------------------------------------------------------- experiments


def _common(mine: np.ndarray, theirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in `mine` and in `theirs` of the replications both hold, in the order of
    `mine` (each replication appears once per arm)."""
    _, i, j = np.intersect1d(mine, theirs, assume_unique=True, return_indices=True)
    keep = np.argsort(i, kind="stable")
    return i[keep], j[keep]


@dataclass
class Experiment:
    """The result of `compare` or `sweep`.

    Attributes:
        kind: "compare" or "sweep".
        runs: tidy table, one row per arm × replication × month: `scenario`, the varied
            keys (sweeps), `replication`, `seed`, `month`, then the monthly metrics.
        arms: one scenario per arm (the compared scenarios, or each grid point).
        keys: the varied keys (empty for a comparison).
        seed: the base seed the replication seeds were spawned from.
        seeds: the replication seeds; replication r of every arm ran on `seeds[r]`.
        folder: the results folder, if one was written.
        resumed: runs read back from the folder instead of simulated.
        elapsed_s: wall time of this call.
        cpu_s: CPU seconds of the runs simulated in this call, summed; with `elapsed_s`
            it shows how well the executor spread them.
    """

    kind: str
    runs: pd.DataFrame
    arms: list[Scenario]
    keys: tuple[str, ...]
    seed: int
    seeds: list[int]
    folder: Path | None = None
    resumed: int = 0
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    # (the runs table it was computed from, per-run outcomes): see `outcomes()`.
    _outcomes: tuple[pd.DataFrame, pd.DataFrame] | None = field(
        default=None, init=False, repr=False, compare=False)

    @property
    def arm_columns(self) -> list[str]:
        """Columns identifying an arm: `scenario` and the varied keys."""
        return ["scenario", *self.keys]

    def outcomes(self) -> pd.DataFrame:
        """One row per arm × replication: identity columns and each key outcome (`OUTCOMES`).

        Computed once and kept until `runs` is replaced; each call returns a copy.
        """
        kept = self._outcomes
        if kept is None or kept[0] is not self.runs:
            ids = [*self.arm_columns, "replication", "seed"]
            kept = (self.runs, per_run_outcomes(self.runs, ids))
            self._outcomes = kept
        return kept[1].copy()

    def summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """Per arm and key outcome: mean with a t interval, and the paired difference
        from the first arm (common random numbers).

        Columns: the arm columns, `outcome`, `n` (replications with a value), `mean`,
        `ci_low`, `ci_high`; then against the first arm, over replications where both
        have a value: `diff` (mean paired difference), `diff_ci_low`, `diff_ci_high`
        (paired-t), `diff_pct` (diff / |the first arm's mean|, %, so its sign is the
        difference's even when the mean is negative, as net bookings can be), `ahead` (share of
        replications in which this arm does better, by the outcome's direction); and
        `reps` (replications of the arm). The first arm's difference columns are empty.

        Intervals are clipped to the outcome's range (`Outcome.low` .. `Outcome.high`;
        differences to `Outcome.diff_range`). A censored outcome (payback month) gets a
        mean only when every replication has a value: a replication that never pays back
        within the run would otherwise drop out and flatter the mean. With fewer than
        `MIN_REPS` replications, `attrs["warning"]` holds a warning (see `few_reps_warning`).
        """
        per_run = self.outcomes()
        arm_cols = self.arm_columns
        code = per_run.groupby(arm_cols, sort=False, dropna=False).ngroup().to_numpy()
        arms = [np.flatnonzero(code == i) for i in range(int(code.max()) + 1)] if len(code) else []
        replication = per_run["replication"].to_numpy()
        values = {o.name: per_run[o.name].to_numpy(dtype=float) for o in OUTCOMES}
        idents = per_run[arm_cols]
        ref = arms[0] if arms else None
        rows = []
        for arm in arms:
            ident = {c: idents[c].iloc[arm[0]] for c in arm_cols}
            if arm is not ref:
                mine, theirs = _common(replication[arm], replication[ref])
            for o in OUTCOMES:
                x = values[o.name][arm]
                n = int(np.count_nonzero(~np.isnan(x)))
                if o.censored and n < len(x):
                    mean = lo = hi = np.nan
                else:
                    bounds = (o.low, o.high)
                    if o.name == "net_bookings":  # bookings ≥ 0, so net ≥ −(the largest cost)
                        bounds = (-float(values["total_cost"][arm].max()), o.high)
                    mean, lo, hi = _t_interval(x, confidence, bounds)
                row = {**ident, "outcome": o.name, "n": n,
                       "mean": mean, "ci_low": lo, "ci_high": hi,
                       "diff": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan,
                       "diff_pct": np.nan, "ahead": np.nan, "reps": len(x)}
                if arm is not ref:
                    a, b = x[mine], values[o.name][ref][theirs]
                    both = ~np.isnan(a) & ~np.isnan(b)
                    d = (a - b)[both]
                    if len(d) and not (o.censored and not both.all()):
                        dmean, dlo, dhi = _t_interval(d, confidence, o.diff_range)
                        base = float(b[both].mean())
                        row.update(diff=dmean, diff_ci_low=dlo, diff_ci_high=dhi,
                                   diff_pct=100 * dmean / abs(base) if base else np.nan,
                                   ahead=float(np.mean(d * o.better > 0)))
                rows.append(row)
        table = pd.DataFrame(rows)
        warning = few_reps_warning(min(len(a) for a in arms)) if arms else None
        if warning:
            table.attrs["warning"] = warning
        return table

    def summary_view(self, confidence: float = 0.95) -> pd.DataFrame:
        """`summary()` as readable text for notebooks: money as $1,234k, rates as %,
        counts with thousands separators, intervals as "low to high".

        One row per arm and outcome; `summary()` stays numeric for code. Carries the same
        `attrs["warning"]`.
        """
        s = self.summary(confidence)
        outcome = {o.name: o for o in OUTCOMES}
        pct = f"{confidence:.0%}"
        rows = []
        for _, r in s.iterrows():
            o = outcome[r["outcome"]]
            ref = not math.isfinite(r["diff"])
            row = {c: r[c] for c in self.arm_columns}
            row |= {"outcome": o.label,
                    "mean": _mean_text(o, r),
                    f"{pct} CI": interval_text(o.unit, r["ci_low"], r["ci_high"]),
                    "Δ vs first": "" if ref else format_value(o.unit, r["diff"], signed=True),
                    f"{pct} CI of Δ": "" if ref else interval_text(
                        o.unit, r["diff_ci_low"], r["diff_ci_high"], signed=True),
                    "Δ %": "" if ref or not math.isfinite(r["diff_pct"])
                    else f"{r['diff_pct']:+.1f}%",
                    "ahead": "" if ref or not math.isfinite(r["ahead"]) else f"{r['ahead']:.0%}",
                    "n": f"{r['n']:,}"}
            rows.append(row)
        view = pd.DataFrame(rows)
        view.attrs = dict(s.attrs)
        return view


def format_value(unit: str, value: float, *, signed: bool = False) -> str:
    """A figure as text in its unit: $1,234k / $12.3M for money, % for fractions (pp for
    signed differences), thousands separators for counts, "–" for an empty value."""
    if value is None or not math.isfinite(value):
        return "–"
    sign = "−" if value < 0 else ("+" if signed else "")
    v = abs(value)
    if unit == "$" or unit.startswith("$/"):
        if v >= 10e6:
            return f"{sign}${v / 1e6:,.1f}M"
        if v >= 1e4:
            return f"{sign}${v / 1e3:,.0f}k"
        return f"{sign}${v:,.0f}"
    if unit == "fraction":
        return f"{sign}{v * 100:.1f} pp" if signed else f"{sign}{v:.1%}"
    if unit in ("days", "month"):
        return f"{sign}{v:,.1f}"
    return f"{sign}{v:,.0f}" if v >= 100 else f"{sign}{v:,.1f}"


def interval_text(unit: str, low: float, high: float, *, signed: bool = False) -> str:
    """An interval as "low to high" in the unit, or "–"."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "–"
    return f"{format_value(unit, low, signed=signed)} to {format_value(unit, high, signed=signed)}"


def _mean_text(o: Outcome, row: Mapping[str, Any]) -> str:
    if o.censored and row["n"] < row["reps"]:
        return not_within_run(row["n"], row["reps"])
    return format_value(o.unit, row["mean"])


def not_within_run(n: int, reps: int) -> str:
    """How a censored outcome (payback) reads when some replications have no value:
    n/reps is how many replications reached it within the run."""
    return f"{n} of {reps} runs pay back"


def _overridden(scenario: Scenario | str | Path,
                overrides: Mapping[str, Any] | Sequence[str] | None) -> Scenario:
    if isinstance(scenario, Scenario):
        if not overrides:
            return scenario
        if not isinstance(overrides, Mapping):
            overrides = dict(parse_override(s) for s in overrides)
        return with_changes(scenario, overrides, "--set")
    return load_scenario(scenario, overrides)


def _file_stem(name: str) -> str:
    """A scenario name as a file name: see `gtmsim.results.safe_name`."""
    return safe_name(name)


def default_folder(kind: str, names: Sequence[str], keys: Sequence[str] = ()) -> Path:
    """The CLI's default results folder, e.g. `results/compare-siloed-aligned`.

    Always one folder directly under `results/`, whatever the names hold.
    """
    return Path("results") / safe_name("-".join([kind, *(_file_stem(n) for n in [*names, *keys])]),
                                       kind)


def estimate_run_seconds(scenario: Scenario, months: int | None = None) -> float:
    """Rough CPU seconds of one run, to warn before huge work.

    A month costs a fixed part plus parts growing with the prospects and the reps (the
    largest team the timeline sets). Calibrated by timing `baseline` (CPU seconds, compiled
    kernels, one core of a 2-core x86 machine, December 2026): 0.008 s a month at 2,000
    prospects, 0.014 at 50,000, 0.037 at 200,000 (4 reps), 0.043 at 300 reps and 0.127 at
    1,000 reps (2,000 prospects); a rough figure, good to a factor of about two.
    """
    reps = [scenario.sales.reps]
    for change in scenario.timeline:
        value = change.set.get("sales.reps", (change.set.get("sales") or {}).get("reps")
                               if isinstance(change.set.get("sales"), dict) else None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            reps.append(value)
    per_month = 0.0075 + 1e-7 * scenario.market.prospects + 1.2e-4 * max(reps)
    return (scenario.months if months is None else months) * per_month


def duration(seconds: float) -> str:
    """A readable length of time: "45 s", "12 minutes", "3 hours", "9 days"."""
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.0f} {unit}"
    return f"{seconds:,.0f} s"


def check_work(tasks: Sequence[Task | Branches], workers: int, *, yes: bool) -> float:
    """The estimated wall seconds of `tasks` on `workers`; a `Branches` group counts its
    shared months once, as it runs them.

    Raises:
        ExperimentError: the estimate is over `LONG_WORK_S` and `yes` is false.
    """
    if not tasks:
        return 0.0
    cache: dict[tuple[int, int], float] = {}

    def seconds(sc: Scenario, months: int) -> float:
        key = (id(sc), months)
        if key not in cache:
            cache[key] = estimate_run_seconds(sc, months)
        return cache[key]

    total, runs = 0.0, 0
    for t in tasks:
        if isinstance(t, Branches):
            first = t.tasks[0]
            shared = min(t.month - 1, first.months)
            total += seconds(first.scenario, shared) + sum(
                seconds(b.scenario, b.months - shared) for b in t.tasks)
            runs += len(t.tasks)
        else:
            total += seconds(t.scenario, t.months)
            runs += 1
    workers = max(1, min(workers, len(tasks)))
    wall = total / workers
    if wall > LONG_WORK_S and not yes:
        each = total / runs
        raise ExperimentError(
            f"this is long work: about {runs:,} run{'s' if runs > 1 else ''} × "
            f"{each:,.1f} s ≈ {duration(wall)} on {workers} worker{'s' if workers > 1 else ''}; "
            "add --yes (yes=True) to start anyway")
    if wall > NOTICE_WORK_S:
        warnings.warn(f"about {runs:,} run{'s' if runs > 1 else ''} × "
                      f"{total / runs:,.1f} s ≈ {duration(wall)} on {workers} "
                      f"worker{'s' if workers > 1 else ''} (an estimate)", LongWorkWarning,
                      stacklevel=3)
    return wall


def _build_tasks(arms: list[Scenario], points: list[dict[str, Any]], seeds: list[int],
                 months: int | None,
                 draws: Sequence[Mapping[str, Any]] | None = None) -> list[Task]:
    """A task per arm × replication; with `draws`, replication r of every arm runs with
    the keys of `draws[r]` set (one parameter draw per replication, shared by the arms).

    Raises:
        ScenarioError: draws that do not make valid scenarios, every problem at once.
    """
    tasks = []
    problems: list[str] = []
    for a, (sc, point) in enumerate(zip(arms, points, strict=True)):
        # Grid points share the scenario name, so their files carry the grid index too.
        stem = _file_stem(sc.name) + (f"__v{a:03d}" if point else "")
        for r, s in enumerate(seeds):
            run = sc
            if draws is not None and draws[r]:
                try:
                    run = with_changes(sc, dict(draws[r]), f"posterior draw {r}")
                except ScenarioError as exc:
                    problems.extend(p for p in exc.problems if p not in problems)
                    continue
            tasks.append(Task(arm=a, scenario=run, point=tuple(point.items()), replication=r,
                              seed=s, months=months or sc.months, file=f"{stem}__r{r:04d}.parquet"))
    if problems:
        raise ScenarioError(problems)
    return tasks


def _run(kind: str, loaded: list[Scenario], arms: list[Scenario],
         points: list[dict[str, Any]], *, reps: int,
         seed: int | None, months: int | None, identity_extra: dict[str, Any],
         overrides: Any, workers: int | None, scheduler: str | None,
         executor: cf.Executor | None, out: str | Path | None, resume: bool, force: bool,
         progress: Callable[[int, int], None] | None,
         command: Sequence[str] | None, yes: bool = False,
         draws: Sequence[Mapping[str, Any]] | None = None) -> Experiment:
    """Run every arm on every replication seed; `loaded` is what the manifest records.

    `draws`: one mapping of dotted keys per replication (parameter draws, e.g. from a
    calibration's posterior), set on every arm's run of that replication."""
    start = time.perf_counter()
    for sc in loaded:
        for line in sc.horizon_warnings(months):
            warnings.warn(f"{sc.name}: {line}", HorizonWarning, stacklevel=3)
    if resume and force:
        raise ExperimentError("resume and force exclude each other: --resume continues the "
                              "folder's experiment, --force replaces it")
    if len(arms) * reps > MAX_RUNS:
        raise ExperimentError(f"{len(arms):,} {'scenarios' if kind == 'compare' else 'grid points'}"
                              f" × {reps:,} replications = {len(arms) * reps:,} runs, more than "
                              f"the {MAX_RUNS:,} an experiment may have")
    if draws is not None and (isinstance(draws, Mapping) or len(draws) != reps
                              or not all(isinstance(d, Mapping) for d in draws)):
        raise ExperimentError(f"draws: expected one mapping of keys to values per replication "
                              f"({reps}), got {draws!r:.200}")
    base = loaded[0].seed if seed is None else seed
    seeds = replication_seeds(base, reps)
    keys = tuple(points[0]) if points else ()
    tasks = _build_tasks(arms, points, seeds, months, draws)
    total = len(tasks)
    manifest = _jsonable({
        "kind": kind,
        "scenarios": [s.to_dict() for s in loaded],
        **identity_extra,
        "reps": reps,
        "seed": base,
        "seeds": seeds,
        "months": months,
        "draws": None if draws is None else [dict(d) for d in draws],
        "overrides": overrides if isinstance(overrides, Mapping) else list(overrides or []),
        "outcomes": {o.name: o.description for o in OUTCOMES},
        "versions": versions(),
        "command": list(command) if command is not None else list(sys.argv),
        "options": {"workers": workers, "scheduler": scheduler},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "complete": False,
        "runs_total": total,
        "files": [RUNS, SUMMARY, MANIFEST, f"{RUNS_DIR}/"],
    })
    if out is not None and not str(out).strip():
        raise ExperimentError("out: an empty folder name; give a folder, e.g. results/x")
    folder = _Folder(Path(out)) if out is not None else None
    finished: set[str] = set()
    if folder:
        finished, stored = folder.check({k: manifest.get(k) for k in _IDENTITY_KEYS}, resume, force,
                                        tasks)
        if stored:
            manifest["created"] = stored.get("created", manifest["created"])

    frames: dict[str, pd.DataFrame] = {}
    for task in tasks:
        if task.file in finished:
            df = folder.load(task)  # type: ignore[union-attr]
            if df is not None:
                frames[task.file] = df
    finished = set(frames)
    resumed = len(frames)
    if progress:
        progress(resumed, total)

    cpu = [0.0]

    def done(task: Task, df: pd.DataFrame, seconds: float) -> None:
        cpu[0] += seconds
        if folder:
            try:
                folder.store(task, df)
            except ResultsError as exc:
                raise ResultsError(f"{exc}; the {len(frames)} finished runs are kept in "
                                   f"{folder.path}: make room, then run the same command "
                                   "with --resume") from None
        frames[task.file] = df
        if progress:
            progress(len(frames), total)

    todo = [t for t in tasks if t.file not in finished]
    # Local workers as asked; for a cluster, as many as this machine has cores (a guess).
    n = getattr(executor, "_max_workers", None) if executor is not None else workers
    check_work(todo, n or _cpu_count(), yes=yes)
    own = executor is None and bool(todo)
    # The executor comes first: an unreachable scheduler must leave the folder untouched.
    with executor_for(workers, scheduler, tasks=len(todo)) if own else nullcontext(executor) as ex:
        if folder:
            folder.prepare()
            folder.write_manifest(manifest)
        _execute(todo, ex, done)

    runs = pd.concat([frames[t.file] for t in tasks], ignore_index=True)
    exp = Experiment(kind=kind, runs=runs, arms=arms, keys=keys, seed=base, seeds=seeds,
                     folder=folder.path if folder else None, resumed=resumed,
                     elapsed_s=time.perf_counter() - start, cpu_s=cpu[0])
    if folder:
        manifest.update(complete=True, runs_done=total,
                        finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        elapsed_s=round(exp.elapsed_s, 3), cpu_s=round(exp.cpu_s, 3),
                        resumed=resumed)
        folder.finish(exp, manifest)
    return exp


def _check_options(*, reps: Any, seed: Any, months: Any, workers: Any, scheduler: Any,
                   executor: Any) -> None:
    """The API checks its arguments as the CLI does its options."""
    _whole("reps", reps)
    _whole("seed", seed, low=0, high=2**63 - 1, optional=True)
    _whole("months", months, high=600, optional=True)
    _whole("workers", workers, optional=True)
    if scheduler is not None:
        _check_scheduler_address(scheduler)
    if executor is not None and not isinstance(executor, cf.Executor):
        raise ExperimentError("executor: expected a concurrent.futures.Executor, "
                              f"got {type(executor).__name__}")


def _repeated_values(base: Scenario, vary: Mapping[str, Sequence[Any]]) -> list[str]:
    """One message per key with a value that, once validated, repeats an earlier one."""
    problems = []
    for key, values in vary.items():
        dup = _first_duplicate(list(values))
        if dup is None:  # equal once validated, e.g. 2 and 2.0 for a whole-number key
            try:
                seen = [json.dumps(with_changes(base, {key: v}, "--vary").to_dict(),
                                   sort_keys=True) for v in values]
            except ScenarioError:
                continue  # reported with the grid's other problems
            first: set[str] = set()
            for v, d in zip(values, seen, strict=True):
                if d in first:
                    dup = v
                    break
                first.add(d)
        if dup is not None:
            problems.append(f"--vary {key}: the value {_shown(dup)} is given more than once "
                            "(the same point would run twice); give each value once")
    return problems


def compare(
    scenarios: Sequence[Scenario | str | Path],
    *,
    reps: int = 10,
    seed: int | None = None,
    months: int | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    executor: cf.Executor | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    command: Sequence[str] | None = None,
    yes: bool = False,
    draws: Sequence[Mapping[str, Any]] | None = None,
) -> Experiment:
    """Run scenarios on common random numbers and compare them with the first.

    Args:
        scenarios: `Scenario`s, files or shipped names; the first is the reference.
        reps: replications per scenario.
        seed: base seed for the replication seeds (default: the first scenario's seed).
        months: months to simulate (default: the scenarios' own, which must agree).
        overrides: dotted keys set on every scenario (as for `load_scenario`).
        workers: local worker processes (default: all cores); 1 runs in-process.
        scheduler: a Dask scheduler address, e.g. "tcp://10.0.0.5:8786".
        executor: a `concurrent.futures.Executor` you own (overrides workers/scheduler),
            e.g. `distributed.Client(...).get_executor()`.
        out: results folder; each finished run is stored there as it completes.
        resume: continue the same experiment in `out`, skipping finished runs that pass
            their check (the others run again, with a `StoredRunWarning`); with more
            `reps` than the folder holds, only the new replications run.
        force: replace the results in `out` (a gtmsim results folder) with this
            experiment's; the old runs are removed first.
        progress: called as `progress(done, total)` after each run (and once at start).
        command: recorded in the manifest (default: `sys.argv`).
        yes: start even when the work is estimated at over 30 minutes (otherwise
            refused with the estimate).
        draws: one mapping of dotted keys per replication (e.g. posterior draws of
            calibrated keys, `gtmsim.analysis.points.posterior_draws`): replication r of
            every scenario runs with `draws[r]` set, so the paired differences also
            carry the uncertainty of those keys. Recorded in the manifest.

    Raises:
        ScenarioError: a scenario or override is invalid.
        ExperimentError: bad options, a conflicting folder, an unreachable scheduler,
            work estimated at over 30 minutes without `yes`.
        ResultsError: `out` holds other files, or a results file cannot be written.
    """
    if isinstance(scenarios, (str, Path, Scenario)) or not scenarios:
        raise ExperimentError("compare: scenarios: expected a list of scenarios, files or "
                              f"shipped names, got {scenarios!r}")
    _check_options(reps=reps, seed=seed, months=months, workers=workers, scheduler=scheduler,
                   executor=executor)
    problems: list[str] = []
    arms: list[Scenario] = []
    for s in scenarios:
        try:
            arms.append(_overridden(s, overrides))
        except ScenarioError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
    if problems:
        raise ScenarioError(problems)
    names = [a.name for a in arms]
    stems = [_file_stem(n) for n in names]
    if len(set(stems)) < len(stems):
        dup = next(n for n, st in zip(names, stems, strict=True) if stems.count(st) > 1)
        raise ExperimentError(f"compare: two scenarios are named '{dup}' (as file names); "
                              "give each a different `name` in its file")
    if months is None and len({a.months for a in arms}) > 1:
        got = ", ".join(f"{a.name}: {a.months}" for a in arms)
        raise ExperimentError(f"compare: the scenarios run for different months ({got}); "
                              "pass months (--months) to compare them over the same horizon")
    return _run("compare", arms, arms, [{} for _ in arms], reps=reps, seed=seed, months=months,
                identity_extra={"vary": None}, overrides=overrides, workers=workers,
                scheduler=scheduler, executor=executor, out=out, resume=resume, force=force,
                progress=progress, command=command, yes=yes, draws=draws)


def sweep(
    scenario: Scenario | str | Path,
    vary: Mapping[str, Sequence[Any]],
    *,
    reps: int = 10,
    seed: int | None = None,
    months: int | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    executor: cf.Executor | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    command: Sequence[str] | None = None,
    yes: bool = False,
) -> Experiment:
    """Run the full grid of `vary` × replications on common random numbers.

    Args:
        scenario: a `Scenario`, file or shipped name.
        vary: dotted key -> values, e.g. `{"sales.reps": [4, 6, 8]}`; see `parse_vary`.
            Grid points are compared with the first (every key at its first value).
        reps, seed, months, overrides, workers, scheduler, executor, out, resume,
        force, progress, command, yes: as for `compare`.

    Raises:
        ScenarioError: an unknown key, a wrong-typed or repeated value, naming the key.
        ExperimentError: as for `compare`, and a grid of over `MAX_GRID_POINTS` points.
    """
    if not isinstance(vary, Mapping) or not vary or any(
            isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or len(v) == 0
            for v in vary.values()):
        raise ExperimentError("sweep: vary: expected at least one key with a list of values, "
                              f"e.g. {{'sales.reps': [4, 6, 8]}}, got {vary!r}")
    _check_options(reps=reps, seed=seed, months=months, workers=workers, scheduler=scheduler,
                   executor=executor)
    if "seed" in vary:
        raise ScenarioError(["--vary seed: replications set the seeds; use reps and seed instead"])
    size = grid_size(vary)
    if size > MAX_GRID_POINTS:
        counts = " × ".join(f"{len(v):,}" for v in vary.values())
        raise ExperimentError(f"sweep: the grid has {counts} = {size:,} points, more than the "
                              f"{MAX_GRID_POINTS:,} an experiment may have; vary fewer values")
    base = _overridden(scenario, overrides)
    problems = _repeated_values(base, vary)
    if problems:
        raise ScenarioError(problems)
    points = grid_points(vary)
    arms = []
    for point in points:
        try:
            arms.append(with_changes(base, point, "--vary"))
        except ScenarioError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
    if problems:
        raise ScenarioError(problems)
    return _run("sweep", [base], arms, points, reps=reps, seed=seed, months=months,
                identity_extra={"vary": {k: list(v) for k, v in vary.items()}},
                overrides=overrides, workers=workers, scheduler=scheduler, executor=executor,
                out=out, resume=resume, force=force, progress=progress, command=command,
                yes=yes)


def read_experiment(folder: str | Path) -> Experiment:
    """An experiment read back from its results folder (for notebooks and reports).

    Raises:
        ResultsError: the manifest or runs.parquet is missing, truncated or malformed.
        ExperimentError: the folder holds a single run, not an experiment.
        ScenarioError: a scenario recorded in the manifest is invalid.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.get("kind") not in ("compare", "sweep"):
        raise ExperimentError(f"{folder}: not a compare or sweep results folder")
    mpath = folder / MANIFEST
    scenarios, vary = manifest.get("scenarios"), manifest.get("vary")
    seeds, seed = manifest.get("seeds"), manifest.get("seed")
    if (not isinstance(scenarios, list) or not scenarios
            or not all(isinstance(d, dict) for d in scenarios)
            or not (vary is None or isinstance(vary, dict))
            or not isinstance(seeds, list) or not isinstance(seed, int)):
        raise ResultsError(f"{mpath}: malformed (expected scenarios, vary, seed and seeds "
                           "as gtmsim writes them)")
    keys = tuple(vary or ())
    runs = read_parquet(folder / RUNS, ["scenario", *keys, "replication", "seed", "month"])
    loaded = [scenario_from_dict(d, str(mpath)) for d in scenarios]
    if keys:
        arms = [with_changes(loaded[0], p, "--vary") for p in grid_points(vary)]
    else:
        arms = loaded
    return Experiment(kind=manifest["kind"], runs=runs, arms=arms, keys=keys,
                      seed=seed, seeds=seeds, folder=folder)


__all__ = [
    "IDENTITY",
    "MIN_REPS",
    "OUTCOMES",
    "Experiment",
    "ExperimentError",
    "Outcome",
    "HorizonWarning",
    "LongWorkWarning",
    "StoredRunWarning",
    "Task",
    "compare",
    "default_folder",
    "estimate_run_seconds",
    "executor_for",
    "few_reps_warning",
    "format_value",
    "grid_points",
    "grid_size",
    "parse_vary",
    "read_experiment",
    "replication_seeds",
    "run_task",
    "Branches",
    "run_branches",
    "sweep",
]
