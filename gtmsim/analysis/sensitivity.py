"""Sensitivity: which scenario keys drive a key outcome, by SALib's Morris screening or
Sobol indices, with replication noise kept apart from the keys' effects.

SALib samples points in the ranges given (`--vary KEY=LOW:HIGH`); every point runs on
the same replication seeds through `gtmsim.analysis.points` (common random numbers), and
SALib analyses the mean over replications of each point, so the indices describe the
keys' effects with the run-to-run noise averaged out. The noise is reported on its own
line ("(replication noise)"):

- Morris: its `mu_star` is the mean absolute elementary effect that noise alone leaves in
  the mean of the replications (sqrt(2/π) × the standard error of each step's effect,
  averaged over steps): a key whose `mu_star` is not above it is not told apart from
  noise with these replications.
- Sobol: its `S1` = `ST` is the share of the variance the indices split (that of the mean
  over replications, across points) that is still replication noise, with a bootstrap
  interval over points.

`Sensitivity.noise_share` is the share of one run's variance that is replication noise.
Both come from a two-way analysis of variance of points × replications: on common random
numbers part of the noise shifts every point alike (the market a seed draws) and cancels
between points; only the rest can blur the indices.

Parameter uncertainty from a calibration (`posterior=` / `--posterior CALIBRATION_DIR`):
the keys the calibration fitted are drawn jointly from its posterior (weighted
resampling of `posterior.parquet`, seeded), the other `--vary` keys uniformly over their
ranges (a Latin hypercube); a key both in `--vary` and in the posterior is drawn from the
posterior and its `--vary` range is not used (`Sensitivity.from_posterior` lists them).
Morris and Sobol need their own sample designs, so posterior draws are analysed with
SALib's PAWN (`method="pawn"`, the Kolmogorov–Smirnov distance between the outcome's
distribution and its distribution with the key held in a slice of its values), which
takes any sample. `--method pawn` without a posterior draws every key uniformly.

Keys whose scenario value is a whole number (`sales.reps`, `market.prospects`) run at
sampled values rounded to whole numbers; SALib analyses the sample it drew.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from gtmsim import experiment as _exp
from gtmsim.analysis import points as _points
from gtmsim.analysis.explain import resolved
from gtmsim.experiment import Experiment, ExperimentError
from gtmsim.results import csv_writer, parquet_writer
from gtmsim.scenario import Scenario, ScenarioError, with_changes

INDICES = "indices.csv"
POINTS = "points.parquet"
BOXES = "boxes.csv"
CHARTS_DIR = "charts"
NOISE = "(replication noise)"
METHODS = ("morris", "sobol", "pawn")
MORRIS_TRAJECTORIES = 10
SOBOL_SAMPLES = 64  # a power of two, as Sobol sequences want
PAWN_SAMPLES = 64  # points: posterior draws (or uniform ones) analysed by PAWN
MAX_KEYS = 50


@dataclass(frozen=True)
class Range:
    """A key's range: LOW < HIGH; `whole` when the key takes whole numbers."""

    key: str
    low: float
    high: float
    whole: bool = False


@dataclass
class Sensitivity:
    """The result of `sensitivity`.

    Attributes:
        indices: Morris: `key`, `mu_star`, `mu_star_conf`, `sigma`, `mu`; Sobol: `key`,
            `S1`, `S1_conf`, `ST`, `ST_conf`; keys by decreasing importance, then the
            replication-noise line.
        points: one row per point × replication: `point`, each key's value as run,
            `replication`, `seed`, every key outcome.
        method, outcome: as asked.
        noise_share: the share of one run's variance of the outcome that is replication
            noise (see `noise_share`).
        experiment: the evaluated points (with a decision: A's points, then B's).
        files: files written in the results folder.
        decision: with `decision=(A, B)`: `a`, `b`, `p_b_better` (share of sampled points
            at which B does better than A, by the outcome's direction, on the mean of the
            replications), its 95% Wilson interval `p_low`, `p_high`, `points`,
            `runs_b_better` (the same share over single paired runs).
        boxes: with a decision: the boxes of key values in which the decision flips (see
            `discover`).
        posterior: with `posterior=`: the calibration folder the fitted keys were drawn from.
        from_posterior: the keys drawn from the posterior (every fitted key);
            `vary_ignored` those of them also given a `--vary` range, which is not used.
    """

    scenario: str
    method: str
    outcome: str
    ranges: list[Range]
    indices: pd.DataFrame
    points: pd.DataFrame
    noise_share: float
    experiment: Experiment
    files: list[Path] = field(default_factory=list)
    decision: dict[str, Any] | None = None
    boxes: pd.DataFrame | None = None
    posterior: Path | None = None
    from_posterior: list[str] = field(default_factory=list)
    vary_ignored: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- input


def parse_ranges(texts: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Parse `--vary KEY=LOW:HIGH` options (numbers, LOW < HIGH).

    Raises:
        ScenarioError: one message per malformed option, all at once.
    """
    ranges, problems = _parse_ranges(texts)
    if problems:
        raise ScenarioError(problems)
    return ranges


def _parse_ranges(texts: Sequence[str]) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """The well-formed ranges, and one problem per malformed option."""
    ranges: dict[str, tuple[float, float]] = {}
    problems = []
    for text in texts:
        key, sep, raw = (s.strip() for s in str(text).partition("="))
        example = f"{key or 'sales.reps'}=2:8"
        if not sep or not key or not raw or raw.count(":") != 1:
            problems.append(f"--vary {text}: expected KEY=LOW:HIGH, e.g. {example}")
            continue
        if key in ranges:
            problems.append(f"--vary {key}: given twice")
            continue
        bounds = []
        for part in raw.split(":"):
            try:
                value = float(part.replace("_", ""))
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                problems.append(f"--vary {key}={raw}: {part.strip()!r} is not a number; "
                                f"expected KEY=LOW:HIGH, e.g. {example}")
                break
            bounds.append(value)
        else:
            low, high = bounds
            if low >= high:
                problems.append(f"--vary {key}={raw}: LOW must be below HIGH, got {low:g} ≥ "
                                f"{high:g}")
                continue
            ranges[key] = (low, high)
    return ranges, problems


_MISSING = object()


def _value_at(data: Mapping[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def check_ranges(base: Scenario, ranges: Mapping[str, tuple[float, float]]) -> list[Range]:
    """The ranges as `Range`s, checked against the scenario: every key exists (with the
    nearest name when not), is numeric, and takes both ends.

    Raises:
        ScenarioError: every problem at once.
    """
    problems: list[str] = []
    found: list[Range] = []
    data = resolved(base)
    if "seed" in ranges or "months" in ranges:
        problems.append("--vary seed/months: replications set the seeds and --months the "
                        "horizon; vary model keys")
    for key, (low, high) in ranges.items():
        if key in ("seed", "months"):
            continue
        value = _value_at(data, key)
        if value is _MISSING:  # the scenario's own message names the nearest key
            try:
                with_changes(base, {key: low}, f"--vary {key}")
                problems.append(f"--vary {key}: not a key of the scenario")
            except ScenarioError as exc:
                problems.extend(p for p in exc.problems if p not in problems)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            shown = "a table" if isinstance(value, dict) else repr(value)
            problems.append(f"--vary {key}: not a numeric key (its value is {shown}); "
                            "sensitivity varies numbers")
            continue
        whole = isinstance(value, int)
        for end in (low, high):
            v = round(end) if whole else end
            try:
                with_changes(base, {key: v}, f"--vary {key}")
            except ScenarioError as exc:
                problems.extend(p for p in exc.problems if p not in problems)
        found.append(Range(key, float(low), float(high), whole))
    if len(found) > MAX_KEYS:
        problems.append(f"--vary: {len(found)} keys, more than the {MAX_KEYS} sensitivity takes")
    if problems:
        raise ScenarioError(problems)
    return found


# --------------------------------------------------------------------------- SALib


def problem_of(ranges: Sequence[Range]) -> dict[str, Any]:
    """The SALib problem of the ranges."""
    return {"num_vars": len(ranges), "names": [r.key for r in ranges],
            "bounds": [[r.low, r.high] for r in ranges]}


def draw(ranges: Sequence[Range], method: str, samples: int, *, levels: int = 4,
         seed: int = 0) -> np.ndarray:
    """SALib's sample: Morris trajectories (`samples` of them, k + 1 points each) or a
    Sobol (Saltelli) sample of `samples` × (k + 2) points, first-order and total only."""
    problem = problem_of(ranges)
    if method == "morris":
        from SALib.sample import morris

        return morris.sample(problem, samples, num_levels=levels, seed=seed)
    if method == "pawn":
        from SALib.sample import latin

        return latin.sample(problem, samples, seed=seed)
    from SALib.sample import sobol

    return sobol.sample(problem, samples, calc_second_order=False, seed=seed)


def run_values(ranges: Sequence[Range], x: np.ndarray) -> list[dict[str, Any]]:
    """The points as scenario overrides: whole-number keys rounded."""
    out = []
    for row in x:
        out.append({r.key: (round(v) if r.whole else float(f"{v:.12g}"))
                    for r, v in zip(ranges, row, strict=True)})
    return out


def analyse(ranges: Sequence[Range], method: str, x: np.ndarray, y: np.ndarray, *,
            levels: int = 4, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """SALib's indices of `y` (one value per row of `x`), keys by decreasing importance."""
    problem = problem_of(ranges)
    if method == "morris":
        from SALib.analyze import morris

        si = morris.analyze(problem, x, y, num_levels=levels, conf_level=confidence,
                            seed=seed)
        table = pd.DataFrame({"key": problem["names"], "mu_star": si["mu_star"],
                              "mu_star_conf": si["mu_star_conf"], "sigma": si["sigma"],
                              "mu": si["mu"]})
        return table.sort_values("mu_star", ascending=False, kind="stable").reset_index(drop=True)
    if method == "pawn":
        from SALib.analyze import pawn

        si = pawn.analyze(problem, x, y, S=pawn_slices(len(y)), seed=seed)
        table = pd.DataFrame({"key": problem["names"], "median": si["median"],
                              "mean": si["mean"], "minimum": si["minimum"],
                              "maximum": si["maximum"], "CV": si["CV"]})
        return table.sort_values("median", ascending=False, kind="stable").reset_index(drop=True)
    from SALib.analyze import sobol

    si = sobol.analyze(problem, y, calc_second_order=False, conf_level=confidence, seed=seed)
    table = pd.DataFrame({"key": problem["names"], "S1": si["S1"], "S1_conf": si["S1_conf"],
                          "ST": si["ST"], "ST_conf": si["ST_conf"]})
    return table.sort_values("ST", ascending=False, kind="stable").reset_index(drop=True)


def pawn_slices(n: int) -> int:
    """PAWN's slices of each key's values: 10, fewer for small samples (about 8 points a
    slice, at least 2 slices)."""
    return min(10, max(2, n // 8))


def read_posterior(folder: str | Path) -> tuple[list[Any], pd.DataFrame]:
    """The fitted keys and weighted posterior of a finished calibration folder.

    Raises:
        ScenarioError: the folder is not a calibration's, the calibration did not finish,
            or its posterior is missing or malformed.
    """
    from gtmsim.calibration import read_calibration
    from gtmsim.results import ResultsError

    where = f"--posterior {folder}"
    try:
        cal = read_calibration(folder)
    except (ResultsError, OSError, KeyError, TypeError, ValueError) as exc:
        raise ScenarioError([f"{where}: not a finished calibration folder ({exc}); give the "
                             "--out folder of a finished gtmsim calibrate"]) from None
    if cal.manifest.get("status") != "complete":
        raise ScenarioError([f"{where}: the calibration did not finish (status "
                             f"{cal.manifest.get('status')!r}); run gtmsim calibrate again "
                             "with --resume first"])
    post = cal.posterior
    w = post["weight"].to_numpy(dtype=float)
    if len(post) == 0 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ScenarioError([f"{where}: posterior.parquet has no usable weights (expected "
                             "one non-negative weight per draw, not all zero)"])
    return cal.fits, post


def posterior_sample(post: pd.DataFrame, keys: Sequence[str], n: int,
                     seed: int | tuple[int, ...]) -> np.ndarray:
    """`n` joint draws of `keys` from a weighted posterior (resampled by weight, seeded)."""
    w = post["weight"].to_numpy(dtype=float)
    picks = np.random.default_rng(seed).choice(len(post), size=n, p=w / w.sum())
    return post[list(keys)].to_numpy(dtype=float)[picks]


def variance_components(y: np.ndarray) -> tuple[float, float, float]:
    """Variance components of points × replications on common random numbers, by the
    two-way analysis of variance without replication: the points' (the keys' effects),
    the replications' (what a replication seed shifts in every point alike: it cancels
    between points) and the residual (noise that differs from point to point). Each is
    clipped at 0; NaN with fewer than two points or replications."""
    p, r = y.shape
    if p < 2 or r < 2:
        return (float("nan"),) * 3
    m = y.mean()
    rows, cols = y.mean(axis=1), y.mean(axis=0)
    ms_e = float(((y - rows[:, None] - cols[None, :] + m) ** 2).sum() / ((p - 1) * (r - 1)))
    ms_rows = float(r * ((rows - m) ** 2).sum() / (p - 1))
    ms_cols = float(p * ((cols - m) ** 2).sum() / (r - 1))
    return max((ms_rows - ms_e) / r, 0.0), max((ms_cols - ms_e) / p, 0.0), ms_e


def noise_share(y: np.ndarray) -> float:
    """The share of one run's variance that is replication noise,
    (replication + residual) / (points + replication + residual), from points ×
    replications (see `variance_components`; NaN below two replications)."""
    a, b, e = variance_components(y)
    total = a + b + e
    return (b + e) / total if total > 0 else (0.0 if total == 0 else float("nan"))


def noise_share_of_mean(y: np.ndarray) -> float:
    """The share of the variance of the mean over replications across points (the
    variance Sobol indices split) that is replication noise: (residual / R) /
    (points + residual / R). The replications' common part cancels between points."""
    a, _, e = variance_components(y)
    e = e / y.shape[1]
    return e / (a + e) if a + e > 0 else (0.0 if a + e == 0 else float("nan"))


def morris_noise_floor(y: np.ndarray, k: int, levels: int = 4) -> float:
    """The mu_star replication noise alone leaves in the mean of the replications:
    sqrt(2/π) × the mean standard error of a step's elementary effect (NaN below two
    replications)."""
    reps = y.shape[1]
    if reps < 2:
        return float("nan")
    delta = levels / (2 * (levels - 1))
    steps = y.reshape(-1, k + 1, reps)
    ee = np.diff(steps, axis=1) / delta  # trajectories × k steps × reps
    se = ee.std(axis=2, ddof=1) / math.sqrt(reps)
    return float(math.sqrt(2 / math.pi) * se.mean())


def pawn_floor(y: np.ndarray, seed: int) -> dict[str, float]:
    """The PAWN indices a key with no effect gets on this sample: those of a column of
    uniform random values, independent of `y` (PAWN's Kolmogorov–Smirnov distances stay
    above 0 in a finite sample; a key whose median is not above this is not told apart
    from no effect)."""
    dummy = np.random.default_rng((seed, 16)).uniform(0, 1, (len(y), 1))
    table = analyse([Range("(dummy)", 0.0, 1.0)], "pawn", dummy, y, seed=seed)
    return {c: float(table[c].iloc[0]) for c in ("median", "mean", "minimum", "maximum", "CV")}


def _noise_share_conf(y: np.ndarray, confidence: float, seed: int) -> float:
    """Half-width of a bootstrap interval of `noise_share` over points."""
    if y.shape[1] < 2 or y.shape[0] < 3:
        return float("nan")
    rng = np.random.default_rng(seed)
    draws = [noise_share_of_mean(y[rng.integers(0, len(y), len(y))]) for _ in range(200)]
    z = float(stats.norm.ppf((1 + confidence) / 2))
    return z * float(np.nanstd(draws, ddof=1))


# --------------------------------------------------------------------------- the verb


def sensitivity(
    scenario: Scenario | str | Path,
    vary: Mapping[str, tuple[float, float]] | Sequence[str],
    *,
    method: str | None = None,
    outcome: str = "cumulative_bookings",
    samples: int | None = None,
    levels: int = 4,
    reps: int = 10,
    seed: int | None = None,
    months: int | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    confidence: float = 0.95,
    workers: int | None = None,
    scheduler: str | None = None,
    executor: cf.Executor | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    command: Sequence[str] | None = None,
    yes: bool = False,
    charts: bool = True,
    decision: Sequence[Scenario | str | Path] | None = None,
    posterior: str | Path | None = None,
) -> Sensitivity:
    """Morris or Sobol indices of `outcome` over ranges of scenario keys.

    Args:
        scenario: a `Scenario`, file or shipped name.
        vary: key -> (low, high), or `KEY=LOW:HIGH` strings.
        method: "morris" (screening: `samples` trajectories, default 10), "sobol"
            (first-order and total indices: `samples` base samples, default 64) or "pawn"
            (PAWN indices of `samples` points, default 64: uniform draws, or posterior
            draws with `posterior`). Default: "pawn" with a posterior, else "morris".
        outcome: a key outcome (`gtmsim.experiment.OUTCOMES`).
        levels: Morris grid levels.
        reps: replications per point (their mean is analysed; their spread is the noise).
        seed: base seed of the replications and of SALib's sample (default: the scenario's).
        scenario, months, overrides, workers, scheduler, executor, out, resume, force,
        progress, command, yes: as for `gtmsim.experiment.sweep`.
        decision: two scenarios (A, B): both run at every sampled point (the varied keys
            set in each), the indices are those of the paired difference B − A of the
            outcome, and the result gains the probability that B beats A and the boxes
            where the decision flips. `scenario` is then where the keys are checked.
        posterior: a finished calibration folder (`gtmsim calibrate --out`): its fitted
            keys are drawn jointly from its posterior (weighted resampling, seeded by
            `seed`) instead of uniformly; a fitted key also in `vary` is drawn from the
            posterior (its range is not used; see `Sensitivity.vary_ignored`). `vary` may
            then be empty. Needs `method="pawn"` (the default with a posterior).

    Raises:
        ScenarioError: bad ranges, an unknown or non-numeric key (with the nearest name),
            an unknown outcome or method, a decision scenario that does not exist, a
            posterior folder that is not a finished calibration — every problem at once.
        ExperimentError, ResultsError: as for `sweep`.
    """
    texts = (list(vary) if not isinstance(vary, Mapping)
             else [f"{k}={lo}:{hi}" for k, (lo, hi) in vary.items()])
    ranges, problems = _parse_ranges(texts)
    fits: list[Any] = []
    post: pd.DataFrame | None = None
    if posterior is not None:
        try:
            fits, post = read_posterior(posterior)
        except ScenarioError as exc:
            problems += exc.problems
    if method is None:
        method = "pawn" if posterior is not None else "morris"
    if not vary and posterior is None:
        problems.append("--vary: give at least one KEY=LOW:HIGH, e.g. sales.reps=2:8")
    if method not in METHODS:
        problems.append(f"--method {method}: expected morris, sobol or pawn")
    elif posterior is not None and method != "pawn":
        problems.append(f"--method {method}: Morris and Sobol need their own sample designs; "
                        "posterior draws are analysed with --method pawn (the default with "
                        "--posterior)")
    fitted = {f.key: (f.low, f.high) for f in fits}
    vary_ignored = [k for k in ranges if k in fitted]
    all_ranges = {**{k: v for k, v in ranges.items() if k not in fitted}, **fitted}
    try:
        _points.outcome(outcome)
    except ScenarioError as exc:
        problems += exc.problems
    for name, value, low in (("--samples", samples, 2), ("--levels", levels, 2)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < low):
            problems.append(f"{name}: expected a whole number ≥ {low}, got {value!r}")
    base = None
    try:
        base = _exp._overridden(scenario, overrides)
    except ScenarioError as exc:
        problems += [p for p in exc.problems if p not in problems]
    found: list[Range] = []
    if base is not None and all_ranges:
        before = len(problems)
        try:
            check_ranges(base, {k: v for k, v in all_ranges.items() if k not in fitted})
        except ScenarioError as exc:
            problems += exc.problems
        try:  # the calibration's keys must be keys of this scenario too
            check_ranges(base, fitted)
        except ScenarioError as exc:
            problems += [p.replace("--vary ", f"--posterior {posterior}: fitted key ", 1)
                         for p in exc.problems]
        if len(problems) == before:
            try:
                found = check_ranges(base, all_ranges)  # in order: --vary keys, then fitted
                # a fitted key takes the values the calibration drew, whole or not
                whole = {f.key: f.integer for f in fits}
                found = [Range(r.key, r.low, r.high, whole.get(r.key, r.whole)) for r in found]
            except ScenarioError as exc:
                problems += exc.problems
    pair: list[Scenario] = []
    if decision is not None:
        pair, more = _decision_pair(decision, overrides, all_ranges, months)
        problems += [p for p in more if p not in problems]
    if problems:
        raise ScenarioError(problems)
    assert base is not None
    if method == "sobol" and len(found) < 2:
        raise ScenarioError([("--method sobol: vary at least two keys (one key's first-order "
                              "and total indices are both 1)")])
    base_seed = base.seed if seed is None else seed
    n = samples or {"morris": MORRIS_TRAJECTORIES, "sobol": SOBOL_SAMPLES,
                    "pawn": PAWN_SAMPLES}[method]
    with warnings.catch_warnings():
        # SALib warns for Sobol samples that are not a power of two; --samples is the user's.
        warnings.simplefilter("ignore", UserWarning)
        x = draw(found, method, n, levels=levels, seed=base_seed % 2**32)
    if post is not None:  # the fitted keys: joint draws from the posterior
        cols = [i for i, r in enumerate(found) if r.key in fitted]
        x[:, cols] = posterior_sample(post, [found[i].key for i in cols], n,
                                      (base_seed % 2**32, 15))
    pts = run_values(found, x)
    run_base, run_pts = base, pts
    if pair:
        run_base, b_keys = _decision_base(*pair)
        run_pts = [*pts, *({**b_keys, **p} for p in pts)]
    experiment = _points.evaluate(
        run_base, run_pts, reps=reps, seed=base_seed, months=months, workers=workers,
        scheduler=scheduler, executor=executor, out=out, resume=resume, force=force,
        progress=progress, command=command, yes=yes, kind="sensitivity",
        outputs=(INDICES, POINTS, BOXES))
    per_run = experiment.outcomes()
    y_runs = _points.outcome_matrix(experiment, outcome, per_run)
    if np.isnan(y_runs).any():
        missing = int(np.isnan(y_runs).sum())
        raise ExperimentError(f"--outcome {outcome}: {missing} of {y_runs.size} runs have no "
                              "value (e.g. no payback within the run, or no win); choose "
                              "another outcome or a longer --months")
    if pair:  # the decision's outcome: the paired difference B − A at each point
        y_runs = y_runs[len(pts):] - y_runs[:len(pts)]
    y = y_runs.mean(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant outputs give 0/0 in SALib
        indices = analyse(found, method, x, y, levels=levels, confidence=confidence,
                          seed=base_seed % 2**32)
    share = noise_share(y_runs)
    if method == "morris":
        noise_row = {"key": NOISE, "mu_star": morris_noise_floor(y_runs, len(found), levels),
                     "mu_star_conf": np.nan, "sigma": np.nan, "mu": np.nan}
    elif method == "pawn":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            noise_row = {"key": NOISE, **pawn_floor(y, base_seed % 2**32)}
    else:
        conf = _noise_share_conf(y_runs, confidence, base_seed % 2**32)
        of_mean = noise_share_of_mean(y_runs)
        noise_row = {"key": NOISE, "S1": of_mean, "S1_conf": conf, "ST": of_mean,
                     "ST_conf": conf}
    indices = pd.concat([indices, pd.DataFrame([noise_row])], ignore_index=True)
    table = per_run.drop(columns=["scenario"])
    values = pd.DataFrame(pts * (2 if pair else 1))  # each key's value as run
    values.insert(0, _points.POINT, range(len(values)))
    if pair:
        values.insert(1, "arm", [pair[0].name] * len(pts) + [pair[1].name] * len(pts))
    table = values.merge(table, on=_points.POINT, how="right")
    result = Sensitivity(scenario=base.name, method=method, outcome=outcome, ranges=found,
                         indices=indices, points=table, noise_share=share,
                         experiment=experiment,
                         posterior=None if posterior is None else Path(posterior),
                         from_posterior=list(fitted), vary_ignored=vary_ignored)
    if pair:
        better = _points.outcome(outcome).better
        wins = y * better > 0
        lo, hi = _wilson(int(wins.sum()), len(wins))
        result.decision = {"a": pair[0].name, "b": pair[1].name, "outcome": outcome,
                           "p_b_better": float(wins.mean()), "p_low": lo, "p_high": hi,
                           "points": len(wins),
                           "runs_b_better": float(np.mean(y_runs * better > 0))}
        result.boxes = discover(pd.DataFrame(pts), wins, found)
    if experiment.folder is not None:
        files: dict[str, Callable[[Path], None]] = {INDICES: csv_writer(indices),
                                                    POINTS: parquet_writer(table)}
        if pair:
            files[BOXES] = csv_writer(result.boxes)
        if charts:
            from gtmsim.analysis.plots import figure_writer, plot_indices

            files[f"{CHARTS_DIR}/{method}_{outcome}.png"] = figure_writer(
                lambda ax: plot_indices(indices, method=method, outcome=outcome, ax=ax))
        section = {"method": method, "outcome": outcome, "samples": n, "levels": levels,
                   "confidence": confidence, "noise_share": share,
                   "noise_share_of_mean": noise_share_of_mean(y_runs),
                   "ranges": [{"key": r.key, "low": r.low, "high": r.high, "whole": r.whole}
                              for r in found], "decision": result.decision,
                   "posterior": None if posterior is None else str(posterior),
                   "from_posterior": list(fitted), "vary_ignored": vary_ignored}
        result.files = _points.write_outputs(experiment, files, section)
    return result


# --------------------------------------------------------------------------- decisions


def _decision_pair(decision: Sequence[Scenario | str | Path],
                   overrides: Mapping[str, Any] | Sequence[str] | None,
                   ranges: Mapping[str, tuple[float, float]],
                   months: int | None) -> tuple[list[Scenario], list[str]]:
    """The decision's two scenarios, and every problem with them or the keys in them."""
    if isinstance(decision, (str, Path, Scenario)) or len(decision) != 2:
        return [], [f"--decision: expected two scenarios A,B, got {decision!r}"]
    pair, problems = [], []
    for s in decision:
        try:
            pair.append(_exp._overridden(s, overrides))
        except ScenarioError as exc:
            problems += [f"--decision: {p}" for p in exc.problems]
    if problems:
        return [], problems
    for sc in pair:
        try:
            check_ranges(sc, ranges)
        except ScenarioError as exc:
            problems += [f"--decision {sc.name}: {p}" for p in exc.problems]
    if months is None and pair[0].months != pair[1].months:
        problems.append(f"--decision: {pair[0].name} and {pair[1].name} run for different "
                        "months; pass --months")
    from gtmsim.analysis.explain import differences

    diffs, more = differences(*pair)
    problems += [f"--decision: {p}" for p in more]
    if not diffs and not more:
        problems.append(f"--decision: {pair[0].name} and {pair[1].name} do not differ")
    return pair, problems


def _decision_base(a: Scenario, b: Scenario) -> tuple[Scenario, dict[str, Any]]:
    """A with its levers explicit, and the keys that make it B."""
    from gtmsim.alignment import LEVER_NAMES
    from gtmsim.analysis.explain import differences

    base = with_changes(a, {f"alignment.{n}": getattr(a.levers, n) for n in LEVER_NAMES},
                        "--decision")
    diffs, _ = differences(a, b)
    return base, {k: v for k, (_, v) in diffs.items()}


def _wilson(wins: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n == 0:
        return float("nan"), float("nan")
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def discover(values: pd.DataFrame, wins: np.ndarray, ranges: Sequence[Range], *,
             max_depth: int = 2, seed: int = 0) -> pd.DataFrame:
    """Scenario discovery: the boxes of key values in which the decision flips.

    A flip is the less common result (A beating B when B mostly wins, and the reverse).
    A shallow decision tree (scikit-learn, depth `max_depth`) splits the sampled points
    by the keys; each leaf where flips are the majority is a box, described in scenario
    keys and their units, with its `coverage` (share of all flips inside it) and
    `density` (share of the points inside it that flip).

    Returns:
        Columns `box` (the rule as text), `<key>_low`, `<key>_high` per key, `points`,
        `flips`, `coverage`, `density`; empty when the decision never flips.
    """
    cols = ["box", *(f"{r.key}_{end}" for r in ranges for end in ("low", "high")),
            "points", "flips", "coverage", "density"]
    wins = np.asarray(wins, dtype=bool)
    flips = ~wins if wins.mean() >= 0.5 else wins
    if not flips.any() or flips.all():
        return pd.DataFrame(columns=cols)
    from sklearn.tree import DecisionTreeClassifier

    x = values[[r.key for r in ranges]].to_numpy(dtype=float)
    tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=max(2, len(x) // 20),
                                  random_state=seed).fit(x, flips)
    t = tree.tree_
    leaf_of = tree.apply(x)
    rows = []

    def walk(node: int, bounds: dict[str, list[float]]) -> None:
        if t.children_left[node] == -1:
            inside = leaf_of == node
            n_flip = int(flips[inside].sum())
            if n_flip * 2 > inside.sum():
                rule = " and ".join(
                    f"{r.key} {_span(*bounds[r.key], r)}" for r in ranges
                    if bounds[r.key] != [r.low, r.high]) or "everywhere"
                rows.append({"box": rule,
                             **{f"{r.key}_{e}": bounds[r.key][i] for r in ranges
                                for i, e in enumerate(("low", "high"))},
                             "points": int(inside.sum()), "flips": n_flip,
                             "coverage": n_flip / int(flips.sum()),
                             "density": n_flip / int(inside.sum())})
            return
        key = ranges[t.feature[node]].key
        cut = float(t.threshold[node])
        left = {k: list(v) for k, v in bounds.items()}
        left[key][1] = min(left[key][1], cut)
        right = {k: list(v) for k, v in bounds.items()}
        right[key][0] = max(right[key][0], cut)
        walk(t.children_left[node], left)
        walk(t.children_right[node], right)

    walk(0, {r.key: [r.low, r.high] for r in ranges})
    return pd.DataFrame(rows, columns=cols).sort_values("coverage", ascending=False,
                                                        ignore_index=True)


def _span(low: float, high: float, r: Range) -> str:
    """A box side as text; whole-number keys as whole numbers (≤ 4.5 is ≤ 4)."""
    if r.whole:
        lo, hi = math.floor(low) + 1, math.floor(high)
        if low <= r.low:
            return f"≤ {hi}"
        if high >= r.high:
            return f"≥ {lo}"
        return f"{lo} to {hi}"
    if low <= r.low:
        return f"≤ {high:.3g}"
    if high >= r.high:
        return f"> {low:.3g}"
    return f"in {low:.3g} to {high:.3g}"


__all__ = [
    "NOISE",
    "Range",
    "Sensitivity",
    "analyse",
    "check_ranges",
    "discover",
    "draw",
    "morris_noise_floor",
    "noise_share",
    "parse_ranges",
    "pawn_floor",
    "posterior_sample",
    "read_posterior",
    "sensitivity",
]
