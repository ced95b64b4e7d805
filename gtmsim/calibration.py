"""Calibration: fit scenario keys to a company's monthly history by ABC-SMC (pyabc).

`calibrate` draws the fitted keys from their priors, simulates the history's months with
the history's known inputs as timeline, and keeps the draws whose monthly columns come close
to the history, generation after generation with a shrinking tolerance (approximate
Bayesian computation by sequential Monte Carlo, Toni et al. 2009; pyabc, Schälte et al. 2022).

The distance is the root mean square, over every observed (column, month) cell, of the
difference divided by the simulation noise of that cell, measured once from replications at
the prior's centre: a distance of about 1.4 is as close as two runs of the same parameters
come to each other. Reproducible from one seed: the NumPy global generator pyabc draws from
is seeded anew at every generation from (seed, generation), and every simulation's seed is
drawn from a generator seeded per sampling task, so the result does not depend on how many
workers ran it, and a resumed calibration equals an uninterrupted one.

The folder (see docs/calibration.md): `posterior.parquet`, `summary.csv`, `abc.db` (pyabc's
SQLite history), `noise.csv`, `history.parquet`, `ppc.parquet`, `ppc_coverage.csv`,
`ppc.png`, `manifest.json`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gtmsim.history import History, HistoryError, check_fit_columns, read_history
from gtmsim.metrics import METRICS
from gtmsim.results import (
    MANIFEST,
    TEMP_SUFFIX,
    ResultsError,
    atomic_write_many,
    csv_writer,
    json_writer,
    parquet_writer,
    read_manifest,
    read_parquet,
    remove_temporary,
    signals_held,
    versions,
)
from gtmsim.scenario import (
    Scenario,
    ScenarioError,
    _override_pairs,
    load_scenario,
    scenario_from_dict,
    with_changes,
)

KIND = "calibration"
POSTERIOR = "posterior.parquet"
SUMMARY = "summary.csv"
DATABASE = "abc.db"
NOISE = "noise.csv"
HISTORY = "history.parquet"
PPC = "ppc.parquet"
COVERAGE = "ppc_coverage.csv"
PPC_CHART = "ppc.png"
FILES = (POSTERIOR, SUMMARY, DATABASE, NOISE, HISTORY, PPC, COVERAGE, PPC_CHART, MANIFEST)
# ASSUMPTION: a summary's noise is never taken below that of Poisson counts (for counts) or
# 1% of its mean (money, times): a pilot of a few runs can show too little spread.
PILOT_REPS = 8
PPC_DRAWS = 40
_IDENTITY = ("scenario", "parameters", "history_digest", "columns", "fit", "seed", "population",
             "reps", "months", "blocks")


class CalibrationError(Exception):
    """Bad calibration input or folder; the message names the option or file."""


# --------------------------------------------------------------------------- fitted keys


@dataclass(frozen=True)
class Fit:
    """One fitted key: a uniform prior on [low, high], or log-uniform when `log`."""

    key: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    @property
    def prior_low(self) -> float:
        return math.log(self.low) if self.log else self.low

    @property
    def prior_high(self) -> float:
        return math.log(self.high) if self.log else self.high

    def value(self, x: float) -> float | int:
        """The key's value for a draw `x` on the prior's scale."""
        v = math.exp(x) if self.log else x
        return int(round(v)) if self.integer else float(v)

    @property
    def text(self) -> str:
        return f"{self.key}={self.low:g}:{self.high:g}{':log' if self.log else ''}"


def _leaves(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_leaves(v, key + "."))
        else:
            out[key] = v
    return out


def parse_fits(texts: Iterable[str | Fit], scenario: Scenario) -> list[Fit]:
    """`KEY=LOW:HIGH[:log]` texts as fits, checked against `scenario`.

    Raises:
        ScenarioError: every problem at once (unknown or non-numeric key, LOW ≥ HIGH, a log
            prior on values ≤ 0, bounds the scenario's schema refuses, a key given twice).
    """
    import difflib

    leaves = _leaves(scenario.to_dict())
    numeric = sorted(k for k, v in leaves.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool)
                     and not k.startswith("timeline"))
    fits: list[Fit] = []
    problems: list[str] = []
    for text in texts:
        if isinstance(text, Fit):
            fits.append(text)
            continue
        key, sep, rng = str(text).partition("=")
        key = key.strip()
        parts = rng.split(":")
        where = f"--fit {text}"
        if not sep or not key or len(parts) not in (2, 3) or (len(parts) == 3
                                                             and parts[2].strip() != "log"):
            problems.append(f"{where}: expected KEY=LOW:HIGH or KEY=LOW:HIGH:log, e.g. "
                            "--fit market.qualify_rate=0.3:0.95")
            continue
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            problems.append(f"{where}: LOW and HIGH must be numbers, got "
                            f"{parts[0]!r} and {parts[1]!r}")
            continue
        if key not in leaves:
            close = difflib.get_close_matches(key, numeric, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(f"{where}: {key}: not a key of scenario {scenario.name}{hint}")
            continue
        value = leaves[key]
        if key.startswith("timeline") or not isinstance(value, (int, float)) \
                or isinstance(value, bool):
            problems.append(f"{where}: {key}: not a numeric key (it is {value!r}); only "
                            "numbers can be fitted")
            continue
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            problems.append(f"{where}: LOW must be below HIGH, got {low:g} ≥ {high:g}")
            continue
        log = len(parts) == 3
        if log and low <= 0:
            problems.append(f"{where}: a log prior needs LOW > 0, got {low:g}")
            continue
        fits.append(Fit(key, low, high, log, isinstance(value, int)))
    seen: set[str] = set()
    for f in fits:
        if f.key in seen:
            problems.append(f"--fit {f.key}: given twice")
        seen.add(f.key)
        for bound in (f.low, f.high):
            try:
                with_changes(scenario, {f.key: f.value(math.log(bound) if f.log else bound)},
                             source=f"--fit {f.text}")
            except ScenarioError as exc:
                problems += exc.problems
    if not fits and not problems:
        problems.append("--fit: give at least one KEY=LOW:HIGH")
    if problems:
        raise ScenarioError(list(dict.fromkeys(problems)))
    return fits


# --------------------------------------------------------------------------- simulation


def _seed32(*words: int) -> int:
    return int(np.random.SeedSequence([int(w) for w in words]).generate_state(1)[0])


@dataclass(frozen=True)
class Simulator:
    """The model pyabc calls: fitted values → the fitted columns, month by month.

    Picklable (it travels to worker processes and Dask workers). The simulation seeds come
    from NumPy's global generator, which the sampler seeds per task.
    """

    scenario: Scenario
    fits: tuple[Fit, ...]
    columns: tuple[str, ...]
    months: int
    reps: int = 1

    def values(self, draw: Mapping[str, float]) -> dict[str, float | int]:
        return {f.key: f.value(float(draw[f"p{i}"])) for i, f in enumerate(self.fits)}

    def run(self, values: Mapping[str, Any], seeds: Sequence[int]) -> np.ndarray:
        """The fitted columns (months × columns, flattened), averaged over one run per seed;
        all NaN when the values make an invalid scenario."""
        from gtmsim.model import simulate

        try:
            sc = with_changes(self.scenario, dict(values), source="calibration draw")
        except ScenarioError:
            return np.full(self.months * len(self.columns), np.nan)
        runs = [simulate(sc, seed=int(s), months=self.months, keep_model=False)
                .monthly[list(self.columns)].to_numpy(dtype=float) for s in seeds]
        return np.mean(runs, axis=0).ravel()

    def __call__(self, draw: Mapping[str, float]) -> dict[str, np.ndarray]:
        seeds = np.random.randint(0, 2**62, size=self.reps)
        return {"x": self.run(self.values(draw), seeds)}


def blocks(observed: pd.DataFrame, count: int = 3) -> np.ndarray:
    """Which summary block each month falls in: the months split into `count` runs of
    consecutive months (fewer when the history is short), -1 for months no column observes."""
    months = len(observed)
    count = max(1, min(count, months // 2 or 1))
    edges = np.linspace(0, months, count + 1).round().astype(int)
    out = np.zeros(months, dtype=int)
    for b in range(count):
        out[edges[b]:edges[b + 1]] = b
    return out


def summaries(cells: np.ndarray, mask: np.ndarray, block: np.ndarray) -> np.ndarray:
    """The summaries of monthly `cells` (months × columns): per column and block, the mean
    over the months the history observes (`mask`), NaN where it observes none."""
    n_blocks = int(block.max()) + 1
    out = np.full((n_blocks, cells.shape[1]), np.nan)
    for b in range(n_blocks):
        rows = block == b
        m = mask[rows]
        seen = m.sum(axis=0)
        total = np.where(m, cells[rows], 0.0).sum(axis=0)
        out[b] = np.where(seen > 0, total / np.maximum(seen, 1), np.nan)
    return out.ravel()


@dataclass(frozen=True)
class Distance:
    """RMS over the summaries the history has of (simulated − observed) / noise.

    The summaries are block means of every fitted column (see `summaries`), so each one
    averages several months and a shift in a key shows above the monthly noise.
    """

    scale: np.ndarray
    mask: np.ndarray
    block: np.ndarray

    def __call__(self, x: Mapping[str, Any], x0: Mapping[str, Any]) -> float:
        months, cols = self.mask.shape
        sim = np.asarray(x["x"], float).reshape(months, cols)
        obs = np.asarray(x0["x"], float).reshape(months, cols)
        z = (summaries(sim, self.mask, self.block) - summaries(obs, self.mask, self.block)) \
            / self.scale
        seen = ~np.isnan(summaries(obs, self.mask, self.block))
        z = z[seen]
        if not len(z) or np.isnan(z).any():
            return math.inf
        return float(np.sqrt(np.mean(z * z)))


def _until_accepted(payload: bytes, seed: int) -> tuple[Any, int]:
    """One sampling task: draw and simulate until one particle is accepted."""
    import cloudpickle

    simulate_one, factory = cloudpickle.loads(payload)
    state, py_state = np.random.get_state(), random.getstate()
    np.random.seed(seed)
    random.seed(seed)
    try:
        sample, n = factory(), 0
        while True:
            particle = simulate_one()
            n += 1
            sample.append(particle)
            if particle.accepted:
                return sample, n
    finally:
        np.random.set_state(state)
        random.setstate(py_state)


def _sampler(map_: Callable[..., Iterable[Any]], on_task: Callable[[int], None]) -> Any:
    """A pyabc sampler that maps seeded tasks: the same particles whatever runs the map."""
    import cloudpickle
    from pyabc.sampler import Sampler

    class SeededMappingSampler(Sampler):
        def sample_until_n_accepted(self, n, simulate_one, t, *, max_eval=np.inf,
                                    all_accepted=False, ana_vars=None):
            seeds = np.random.randint(0, 2**31 - 1, size=n).tolist()
            payload = cloudpickle.dumps((simulate_one, self.sample_factory))
            sample, evaluations = self._create_empty_sample(), 0
            for part, k in map_(functools.partial(_until_accepted, payload), seeds):
                sample += part
                evaluations += k
                on_task(k)
            self.nr_evaluations_ = evaluations
            return sample

    return SeededMappingSampler()


# --------------------------------------------------------------------------- results


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float | Sequence[float]) -> Any:
    """Quantiles of a weighted sample (linear between the weights' midpoints)."""
    order = np.argsort(values)
    v, w = np.asarray(values, float)[order], np.asarray(weights, float)[order]
    cum = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(q, cum, v)


def summarise(posterior: pd.DataFrame, fits: Sequence[Fit]) -> pd.DataFrame:
    """Per fitted key: prior bounds, posterior mean, 5% and 95% quantiles, contraction.

    Contraction is 1 − (posterior 90% width ÷ prior width), on the prior's scale (log for a
    log prior): 0 means the history says nothing about the key, 1 that it pins it down.
    """
    w = posterior["weight"].to_numpy()
    rows = []
    for f in fits:
        v = posterior[f.key].to_numpy(dtype=float)
        s = np.log(v) if f.log else v
        q05, q50, q95 = weighted_quantile(s, w, [0.05, 0.5, 0.95])
        back = (lambda x: math.exp(x)) if f.log else (lambda x: x)
        rows.append({
            "key": f.key, "prior": "log-uniform" if f.log else "uniform",
            "prior_low": f.low, "prior_high": f.high,
            "mean": float(np.average(v, weights=w)), "median": back(q50),
            "q05": back(q05), "q95": back(q95),
            "contraction": 1 - (q95 - q05) / (f.prior_high - f.prior_low),
        })
    return pd.DataFrame(rows)


def _posterior(db: Path, fits: Sequence[Fit]) -> tuple[pd.DataFrame, int]:
    import pyabc

    h = pyabc.History(f"sqlite:///{db}", _id=1)
    t = h.max_t
    df, w = h.get_distribution(m=0, t=t)
    out = pd.DataFrame({f.key: [f.value(x) for x in df[f"p{i}"]] for i, f in enumerate(fits)})
    out["weight"] = np.asarray(w, float) / np.sum(w)
    return out, int(t)


def _generations(db: Path) -> list[dict[str, Any]]:
    import pyabc

    if not db.is_file():
        return []
    h = pyabc.History(f"sqlite:///{db}", _id=1)
    if h.max_t < 0:
        return []
    pops = h.get_all_populations()
    pops = pops[pops["t"] >= 0]
    return [{"generation": int(r.t), "epsilon": float(r.epsilon), "simulations": int(r.samples),
             "particles": int(h.get_nr_particles_per_population().get(int(r.t), 0))}
            for r in pops.itertuples()]


@dataclass
class Calibration:
    """A calibration folder, read back: the posterior and what produced it."""

    folder: Path
    manifest: dict[str, Any]
    fits: list[Fit]
    posterior: pd.DataFrame
    summary: pd.DataFrame
    coverage: pd.DataFrame | None = None
    ppc: pd.DataFrame | None = None
    noise: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def scenario(self) -> Scenario:
        """The scenario as given (without the fitted values or the history's inputs)."""
        return scenario_from_dict(self.manifest["parameters"], source=str(self.folder / MANIFEST))

    @property
    def history(self) -> History:
        table = read_parquet(self.folder / HISTORY, ("month",)).set_index("month")
        return History(source=self.manifest["history"], table=table,
                       labels={int(k): v for k, v in self.manifest["history_labels"].items()},
                       digest=self.manifest["history_digest"])


def read_calibration(folder: str | Path) -> Calibration:
    """Read a calibration folder.

    Raises:
        ResultsError: not a (finished) calibration folder, or a file is missing.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.get("kind") != KIND:
        raise ResultsError(f"{folder}: not a calibration folder (kind {manifest.get('kind')!r}); "
                           "give the --out folder of gtmsim calibrate")
    fits = [Fit(**f) for f in manifest["fit"]]
    posterior = read_parquet(folder / POSTERIOR, [f.key for f in fits] + ["weight"])
    summary = pd.read_csv(folder / SUMMARY)
    coverage = pd.read_csv(folder / COVERAGE) if (folder / COVERAGE).is_file() else None
    ppc = pd.read_parquet(folder / PPC) if (folder / PPC).is_file() else None
    return Calibration(folder, manifest, fits, posterior, summary, coverage, ppc)


# --------------------------------------------------------------------------- predictive check


def predictive_check(simulator: Simulator, posterior: pd.DataFrame, observed: pd.DataFrame,
                     fits: Sequence[Fit], *, seed: int, draws: int = PPC_DRAWS,
                     map_: Callable[..., Iterable[Any]] = map) -> tuple[pd.DataFrame, pd.DataFrame]:
    """History against fresh runs of posterior draws: per column and month the 5/25/50/75/95%
    quantiles, and per column the share of observed months inside the 50% and 90% bands."""
    rng = np.random.default_rng(_seed32(seed, 7))
    picks = rng.choice(len(posterior), size=draws, p=posterior["weight"].to_numpy())
    jobs = [({f.key: posterior[f.key].iloc[i] for f in fits}, [_seed32(seed, 8, n)])
            for n, i in enumerate(picks)]
    sims = np.stack(list(map_(_run_job, [simulator] * len(jobs), jobs)))
    cols = list(simulator.columns)
    sims = sims.reshape(draws, simulator.months, len(cols))
    rows, cover = [], []
    for j, c in enumerate(cols):
        q = np.nanquantile(sims[:, :, j], [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
        obs = observed[c].to_numpy(float)
        for m in range(simulator.months):
            rows.append({"column": c, "month": m + 1, "observed": obs[m], "q05": q[0, m],
                         "q25": q[1, m], "q50": q[2, m], "q75": q[3, m], "q95": q[4, m]})
        seen = ~np.isnan(obs)
        in50 = (obs >= q[1]) & (obs <= q[3])
        in90 = (obs >= q[0]) & (obs <= q[4])
        cover.append({"column": c, "months": int(seen.sum()),
                      "in_50": float(in50[seen].mean()) if seen.any() else math.nan,
                      "in_90": float(in90[seen].mean()) if seen.any() else math.nan})
    cov = pd.DataFrame(cover)
    total = cov["months"].sum()
    cov = pd.concat([cov, pd.DataFrame([{
        "column": "all", "months": int(total),
        "in_50": float((cov["in_50"] * cov["months"]).sum() / total),
        "in_90": float((cov["in_90"] * cov["months"]).sum() / total)}])], ignore_index=True)
    return pd.DataFrame(rows), cov


def _run_job(simulator: Simulator, job: tuple[Mapping[str, Any], Sequence[int]]) -> np.ndarray:
    values, seeds = job
    return simulator.run(values, seeds)


def plot_predictive(ppc: pd.DataFrame, column: str, *, ax: Any = None) -> Any:
    """History (dots) against the posterior-predictive 50% and 90% bands of one column."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    d = ppc[ppc["column"] == column]
    ax.fill_between(d["month"], d["q05"], d["q95"], color="#1f77b4", alpha=0.15, lw=0,
                    label="90% band")
    ax.fill_between(d["month"], d["q25"], d["q75"], color="#1f77b4", alpha=0.3, lw=0,
                    label="50% band")
    ax.plot(d["month"], d["q50"], color="#1f77b4", lw=1.5, label="median")
    ax.plot(d["month"], d["observed"], "o", color="#d62728", ms=4, label="history")
    m = METRICS.get(column)
    ax.set_title(m.label if m else column, loc="left", fontsize=11, fontweight="bold")
    ax.set_xlabel("Month")
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def _ppc_chart_writer(ppc: pd.DataFrame) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        # A Figure of its own, not pyplot's: writing the file leaves the caller's backend
        # (a notebook's inline one) and its open figures alone.
        from matplotlib.figure import Figure

        cols = list(dict.fromkeys(ppc["column"]))
        n = len(cols)
        ncol = min(n, 2 if n <= 4 else 3)
        nrow = math.ceil(n / ncol)
        fig = Figure(figsize=(13.33, 7.5), layout="constrained")
        axes = fig.subplots(nrow, ncol, squeeze=False)
        for ax, c in zip(axes.flat, cols):
            plot_predictive(ppc, c, ax=ax)
        for ax in list(axes.flat)[n:]:
            ax.set_visible(False)
        axes.flat[0].legend(frameon=False, fontsize=8)
        fig.suptitle("Posterior-predictive check: history against simulated bands",
                     fontsize=13, fontweight="bold")
        fig.savefig(tmp, format="png", dpi=100)

    return write


# --------------------------------------------------------------------------- calibrate


def _noise(simulator: Simulator, values: Mapping[str, Any], mask: np.ndarray,
           block: np.ndarray, seed: int, map_: Callable[..., Iterable[Any]]) -> pd.DataFrame:
    """The simulation noise of every summary: the standard deviation over `PILOT_REPS` runs
    at the prior's centre, floored (see PILOT_REPS)."""
    jobs = [(values, [_seed32(seed, 5, r)]) for r in range(PILOT_REPS)]
    runs = np.stack(list(map_(_run_job, [simulator] * len(jobs), jobs)))
    runs = runs.reshape(PILOT_REPS, simulator.months, len(simulator.columns))
    stats = np.stack([summaries(r, mask, block) for r in runs])
    sd = np.nanstd(stats, axis=0, ddof=1)
    mean = np.abs(np.nanmean(stats, axis=0))
    cols = list(simulator.columns)
    n_blocks = int(block.max()) + 1
    seen = np.stack([mask[block == b].sum(axis=0) for b in range(n_blocks)]).ravel()
    count = np.tile([METRICS[c].kind in ("flow", "stock") for c in cols], n_blocks)
    # A count's block mean is never taken as less noisy than Poisson counts would be: a
    # pilot of a few runs underestimates a standard deviation about as often as not.
    poisson = np.sqrt(np.maximum(mean, 1.0) / np.maximum(seen, 1))
    floor = np.maximum(np.where(count, poisson, 0.0), 0.01 * mean)
    floor = np.where(floor > 0, floor, 1e-9)
    scale = np.where(np.isnan(sd), floor, np.maximum(sd, floor))
    return pd.DataFrame({"column": np.tile(cols, n_blocks),
                         "block": np.repeat(np.arange(n_blocks), len(cols)),
                         "months": [int((block == b).sum()) for b in range(n_blocks)
                                    for _ in cols],
                         "pilot_mean": mean, "noise_sd": scale})


def _check_folder(folder: Path, resume: bool, identity: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored manifest when resuming; refuse a folder holding anything else."""
    if not folder.exists():
        if resume:
            raise CalibrationError(f"--resume: {folder} does not exist; nothing to resume")
        return None
    if not folder.is_dir():
        raise CalibrationError(f"--out {folder}: exists and is not a folder")
    entries = [p.name for p in folder.iterdir()
               if not (p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX))]
    if not entries:
        if resume:
            raise CalibrationError(f"--resume: {folder} is empty; nothing to resume")
        return None
    if MANIFEST not in entries:
        raise CalibrationError(f"--out {folder}: holds other files and is not a calibration "
                               "folder; give a new or empty folder")
    stored = read_manifest(folder)
    if stored.get("kind") != KIND:
        raise CalibrationError(f"--out {folder}: holds {stored.get('kind')} results; give "
                               "another folder")
    if not resume:
        raise CalibrationError(f"--out {folder}: holds a calibration already; add --resume to "
                               "continue it, or give another folder")
    differ = [k for k in _IDENTITY if stored.get(k) != identity.get(k)]
    if differ:
        raise CalibrationError(f"--resume: {folder} holds a different calibration (it differs "
                               f"in {', '.join(differ)}); give the same inputs, or another "
                               "--out")
    return stored


def calibrate(
    scenario: str | Path | Scenario,
    history: str | Path | History,
    fit: Sequence[str | Fit],
    *,
    columns: Sequence[str] | None = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    months: int | None = None,
    sims: int = 2000,
    population: int = 100,
    generations: int = 8,
    min_acceptance: float = 0.02,
    reps: int = 1,
    blocks_count: int = 3,
    seed: int | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    ppc_draws: int = PPC_DRAWS,
    progress: Callable[[dict[str, Any]], None] | None = None,
    command: Sequence[str] | None = None,
) -> Calibration:
    """Fit scenario keys to a monthly history by ABC-SMC; writes and returns the folder.

    Args:
        scenario: a scenario (or its file or shipped name).
        history: a history file (CSV or XLSX) or a read `History`.
        fit: `KEY=LOW:HIGH` or `KEY=LOW:HIGH:log` texts (or `Fit`s).
        columns: history columns to fit (default: the CRM columns present).
        overrides: `--set` style overrides applied to the scenario first.
        months: fit only months 1 to `months` of the history (default: all of it); the
            later rows are left out of the fit and of the folder, so a forecast starts after
            month `months` and can be set against them.
        sims: simulation budget: no new generation starts once this many are done.
        population: particles per generation.
        generations: at most this many generations.
        min_acceptance: stop after a generation that accepted fewer draws than this share.
        reps: runs averaged per draw (the noise scale shrinks accordingly).
        blocks_count: the months are split into this many blocks of consecutive months;
            each fitted column is summarised by its mean over each block.
        seed: the calibration's seed (default: the scenario's).
        out: the folder (default: results/calibrate-<scenario>).
        resume: continue the calibration in `out` (same inputs) from its last generation.
        workers / scheduler: local processes or a Dask scheduler address.
        ppc_draws: posterior draws run for the predictive check.
        progress: called after each sampling task with a dict (simulations done, budget,
            generation, epsilon, phase).

    Raises:
        ScenarioError / HistoryError: bad scenario, history or --fit, every problem at once.
        CalibrationError: a bad option or folder. Nothing is written on bad input.
        KeyboardInterrupt: the finished generations are kept; `resume=True` continues.
    """
    from gtmsim import experiment as exp

    started = time.perf_counter()
    base = scenario if isinstance(scenario, Scenario) else load_scenario(scenario, overrides)
    if isinstance(scenario, Scenario) and overrides:
        pairs, bad = _override_pairs(overrides)
        if bad:
            raise ScenarioError(bad)
        base = with_changes(scenario, dict(pairs), source="overrides")
    problems: list[str] = []
    hist = None
    try:
        hist = history if isinstance(history, History) else read_history(history, base)
    except HistoryError as exc:
        problems += exc.problems
    try:
        fits = parse_fits(fit, base)
    except ScenarioError as exc:
        problems += exc.problems
    if months is not None and hist is not None:
        if not isinstance(months, int) or isinstance(months, bool) or months < 1:
            problems.append(f"--months: expected a whole number ≥ 1, got {months!r}")
        elif months > hist.months:
            problems.append(f"--months {months}: {hist.source} covers months 1 to {hist.months}; "
                            f"give at most {hist.months}, or leave out --months to fit them all")
        elif not (hist.table.index <= months).any():
            problems.append(f"--months {months}: {hist.source} has no row for months 1 to "
                            f"{months}")
        else:
            hist = dataclasses.replace(
                hist, table=hist.table[hist.table.index <= months],
                labels={k: v for k, v in hist.labels.items() if k <= months})
    if hist is not None:
        try:
            cols = check_fit_columns(hist, columns)
        except HistoryError as exc:
            problems += exc.problems
    for name, value, low in (("sims", sims, 1), ("population", population, 2),
                             ("generations", generations, 1), ("reps", reps, 1),
                             ("ppc_draws", ppc_draws, 2),
                             ("blocks", blocks_count, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            problems.append(f"--{name.replace('_', '-')}: expected a whole number ≥ {low}, "
                            f"got {value!r}")
    if not (isinstance(min_acceptance, (int, float)) and 0 <= min_acceptance < 1):
        problems.append(f"--min-acceptance: expected a share from 0 to 1, got {min_acceptance!r}")
    if seed is not None and (not isinstance(seed, int) or not 0 <= seed < 2**63):
        problems.append(f"--seed: expected a whole number from 0 to 2^63 − 1, got {seed!r}")
    if workers is not None and scheduler is not None:
        problems.append("--workers and --scheduler exclude each other; give one")
    if problems:
        raise ScenarioError(list(dict.fromkeys(problems)))
    assert hist is not None
    seed = base.seed if seed is None else seed
    months = hist.months
    fitted = hist.apply(base, months)
    simulator = Simulator(fitted, tuple(fits), tuple(cols), months, reps)
    observed = hist.observed(cols)
    folder = Path(out) if out is not None else Path("results") / f"calibrate-{exp._file_stem(base.name)}"
    identity = {
        "scenario": base.name, "parameters": base.to_dict(), "history": hist.source,
        "overrides": _jsonable_overrides(overrides),
        "history_digest": hist.digest, "history_labels": {str(k): v for k, v in hist.labels.items()},
        "columns": list(cols), "fit": [asdict(f) for f in fits], "seed": seed,
        "population": population, "reps": reps, "months": months, "blocks": blocks_count,
    }
    stored = _check_folder(folder, resume, identity)
    db = folder / DATABASE
    url = f"sqlite:///{db}"
    x0 = {"x": observed.to_numpy(float).ravel()}
    mask = ~np.isnan(observed.to_numpy(float))
    block = blocks(observed, blocks_count)

    import pyabc

    logging.getLogger("ABC").setLevel(logging.WARNING)
    logging.getLogger("ABC.History").setLevel(logging.WARNING)
    logging.getLogger("ABC.Sampler").setLevel(logging.WARNING)

    state = {"simulations": 0, "budget": sims, "generation": 0, "epsilon": math.nan,
             "phase": "noise", "started": started}

    def tick(k: int) -> None:
        state["simulations"] += k
        if progress is not None:
            progress(dict(state))

    centre = {f.key: f.value((f.prior_low + f.prior_high) / 2) for f in fits}
    manifest = {"kind": KIND, **identity, "sims": sims, "generations_max": generations,
                "min_acceptance": min_acceptance, "ppc_draws": ppc_draws,
                "status": "running", "versions": {**versions(), "pyabc": pyabc.__version__},
                "command": list(command) if command is not None else list(sys.argv),
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    global_state = np.random.get_state()  # pyabc draws from it; the caller's is given back
    with exp.executor_for(workers, scheduler, tasks=population) as executor:
        map_ = map if executor is None else executor.map
        if stored is None:
            created = not folder.exists()
            noise = _noise(simulator, centre, mask, block, seed, map_)
            try:
                atomic_write_many({folder / HISTORY: parquet_writer(hist.table.reset_index()),
                                   folder / NOISE: csv_writer(noise),
                                   folder / MANIFEST: json_writer(manifest)})
            except BaseException:
                if created and folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
                raise
        else:
            remove_temporary(folder)
            noise = pd.read_csv(folder / NOISE)
            manifest["created"] = stored.get("created", manifest["created"])
        distance = Distance(noise["noise_sd"].to_numpy(float) / math.sqrt(reps), mask, block)
        state["phase"] = "fit"
        prior = pyabc.Distribution(**{f"p{i}": pyabc.RV("uniform", f.prior_low,
                                                         f.prior_high - f.prior_low)
                                      for i, f in enumerate(fits)})
        done = _generations(db)
        state["simulations"] = sum(g["simulations"] for g in done)
        if not done and db.exists():
            db.unlink()  # an interrupted first generation left nothing to continue
        try:
            while True:
                t = len(done)
                # Decided on the stored generations only, so a resumed run stops where an
                # uninterrupted one does.
                if done and (t >= generations or sum(g["simulations"] for g in done) >= sims
                             or done[-1]["particles"] / max(done[-1]["simulations"], 1)
                             < min_acceptance):
                    break
                state["generation"] = t
                abc = pyabc.ABCSMC(simulator, prior, distance, population_size=population,
                                   sampler=_sampler(map_, tick),
                                   eps=pyabc.QuantileEpsilon(alpha=0.5))
                if t == 0:
                    abc.new(url, x0)
                else:
                    abc.load(url, 1)
                # Seeded per generation: a resumed calibration draws what an uninterrupted one would.
                np.random.seed(_seed32(seed, 3, t))
                abc.run(max_nr_populations=1)
                done = _generations(db)
                state["epsilon"] = done[-1]["epsilon"]
                _write_posterior(folder, fits, {**manifest, "generations": done})
        except KeyboardInterrupt:
            if done:
                manifest["status"] = "interrupted"
                _write_posterior(folder, fits, {**manifest, "generations": done})
            raise
        finally:
            np.random.set_state(global_state)
        posterior, _ = _posterior(db, fits)
        state["phase"] = "check"
        ppc, coverage = predictive_check(simulator, posterior, observed, fits, seed=seed,
                                         draws=ppc_draws, map_=map_)
    manifest.update(status="complete", generations=done,
                    elapsed_s=round(time.perf_counter() - started, 3),
                    files=list(FILES))
    summary = summarise(posterior, fits)
    atomic_write_many({folder / PPC: parquet_writer(ppc),
                       folder / COVERAGE: csv_writer(coverage),
                       folder / PPC_CHART: _ppc_chart_writer(ppc),
                       folder / POSTERIOR: parquet_writer(posterior),
                       folder / SUMMARY: csv_writer(summary),
                       folder / MANIFEST: json_writer(manifest)})
    return Calibration(folder, manifest, list(fits), posterior, summary, coverage, ppc, noise)


def _jsonable_overrides(overrides: Mapping[str, Any] | Iterable[str] | None) -> Any:
    """The overrides as given, for the manifest (forecast plans are loaded with them)."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return {str(k): v for k, v in overrides.items()}
    return [str(o) for o in overrides]


def _write_posterior(folder: Path, fits: Sequence[Fit], manifest: Mapping[str, Any]) -> None:
    """The last finished generation's posterior and summary, with the manifest."""
    posterior, _ = _posterior(folder / DATABASE, fits)
    with signals_held():
        atomic_write_many({folder / POSTERIOR: parquet_writer(posterior),
                           folder / SUMMARY: csv_writer(summarise(posterior, fits)),
                           folder / MANIFEST: json_writer(dict(manifest))})
