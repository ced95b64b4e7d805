"""Explain a gap: split the difference between two scenarios into the contribution of
each key that differs, by Shapley values on common random numbers.

The factors are the resolved keys in which scenario B differs from A: levers (an
alignment preset is expanded into its ten levers first, so `siloed` vs `aligned` is ten
lever differences, not one), budgets, reps, any other key; a timeline that differs is
one factor. Every subset S of factors gives a hybrid scenario: A with the keys of S set
to B's values. Running all 2^k hybrids on the same replication seeds (through
`gtmsim.analysis.points`) gives, per replication r, the value v_r(S) of each outcome,
and the Shapley value of factor i (Shapley 1953):

    φ_i,r = Σ_{S ⊆ N∖{i}} |S|! (k − |S| − 1)! / k! · (v_r(S ∪ {i}) − v_r(S))

The φ_i,r of one replication sum exactly to that replication's gap v_r(N) − v_r(∅)
(efficiency), so the means over replications sum to the mean gap. An interaction between
two factors is split evenly between them (symmetry), and a factor that changes nothing
gets zero. Intervals are paired-t over replications (common random numbers make the
replications of all hybrids paired). Above `EXACT_MAX` factors the Shapley values are
estimated from random permutations (each permutation's marginal contributions also sum
exactly to the gap); the interval then adds the permutation sampling variance.
"""

from __future__ import annotations

import concurrent.futures as cf
import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from gtmsim import experiment as _exp
from gtmsim.alignment import LEVER_NAMES
from gtmsim.analysis import points as _points
from gtmsim.experiment import OUTCOMES, Experiment, ExperimentError
from gtmsim.results import csv_writer
from gtmsim.scenario import Scenario, ScenarioError, with_changes

CONTRIBUTIONS = "contributions.csv"
GAPS = "gaps.csv"
CHARTS_DIR = "charts"
EXACT_MAX = 10  # factors up to which every subset is run
PERMUTATIONS = 64  # default permutations when sampling
OTHER = "(other keys)"  # the factor holding differing keys --factors did not name
# Keys that name or describe a scenario, or that replications replace: never factors.
_IGNORED = ("name", "question", "seed", "months")
WATERFALL_OUTCOMES = ("cumulative_bookings", "net_bookings")
POSTERIOR_STREAM = 0xE1A  # seeds the posterior draws apart from the replication seeds


@dataclass(frozen=True)
class Factor:
    """One factor of a gap: a scenario key, or a group of keys switched together.

    Attributes:
        name: the key, a table holding the keys (`alignment`), or `OTHER`.
        keys: the differing keys it switches from A's value to B's.
        a, b: the keys' values in A and in B.
    """

    name: str
    keys: tuple[str, ...]
    a: tuple[Any, ...]
    b: tuple[Any, ...]

    def values_text(self) -> tuple[str, str]:
        """A's and B's values as text ("" for a group of keys)."""
        if len(self.keys) != 1:
            return "", ""
        return _text(self.a[0]), _text(self.b[0])


@dataclass
class Explanation:
    """The result of `explain`.

    Attributes:
        contributions: one row per outcome × factor: `outcome`, `factor`, `contribution`
            (mean over replications), `ci_low`, `ci_high`, `from`, `to` (the factor's
            values in A and B), `keys` (the keys it switches), `n` (replications used).
        gaps: one row per outcome: `outcome`, `a_mean`, `b_mean`, `gap` (B − A, paired),
            `gap_ci_low`, `gap_ci_high`, `n`.
        factors: the factors, in the order of the columns of the hybrids' masks.
        method: "exact" (every subset) or "permutations".
        permutations: permutations sampled (0 when exact).
        experiment: the evaluated hybrids (point i is the subset with bitmask i when exact).
        files: the files written in the results folder.
        posterior: the calibration folder the replications' parameter draws came from
            (None: the scenarios' own values, simulation noise only).
    """

    a: str
    b: str
    contributions: pd.DataFrame
    gaps: pd.DataFrame
    factors: list[Factor]
    method: str
    permutations: int
    experiment: Experiment
    files: list[Path] = field(default_factory=list)
    posterior: Path | None = None


# --------------------------------------------------------------------------- Shapley math


def shapley_weights(k: int) -> np.ndarray:
    """w[s] = s! (k − s − 1)! / k!, the weight of a coalition of size s (s < k)."""
    return np.array([math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k)
                     for s in range(k)])


def shapley(values: np.ndarray) -> np.ndarray:
    """Exact Shapley values from the value of every coalition.

    Args:
        values: shape (2^k, ...): `values[mask]` is the value of the coalition whose
            members are the set bits of `mask` (factor i is bit i); trailing axes (e.g.
            replications) are carried through.

    Returns:
        Shape (k, ...): the Shapley value of each factor; they sum to
        `values[-1] - values[0]` along the first axis.
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[0]
    k = n.bit_length() - 1
    if n != 1 << k or k < 1:
        raise ValueError(f"shapley: expected 2^k coalition values (k ≥ 1), got {n}")
    masks = np.arange(n)
    sizes = np.array([int(m).bit_count() for m in masks])
    w = shapley_weights(k)
    out = np.empty((k, *values.shape[1:]))
    for i in range(k):
        without = masks[(masks >> i) & 1 == 0]
        weight = w[sizes[without]].reshape(-1, *([1] * (values.ndim - 1)))
        out[i] = (weight * (values[without | (1 << i)] - values[without])).sum(axis=0)
    return out


def sample_permutations(k: int, n: int, seed: int) -> list[tuple[int, ...]]:
    """`n` random orders of `k` factors, reproducible from `seed`; each order and its
    reverse (antithetic pairs halve the variance of the estimate for additive parts)."""
    rng = np.random.default_rng(seed)
    orders: list[tuple[int, ...]] = []
    while len(orders) < n:
        order = tuple(int(i) for i in rng.permutation(k))
        orders.append(order)
        if len(orders) < n:
            orders.append(order[::-1])
    return orders


def permutation_masks(orders: Sequence[Sequence[int]]) -> list[int]:
    """The coalitions (bitmasks) the orders visit, the empty one first, each once."""
    seen = {0: None}
    for order in orders:
        mask = 0
        for i in order:
            mask |= 1 << i
            seen.setdefault(mask, None)
    return list(seen)


def shapley_permutations(value: Mapping[int, np.ndarray] | Callable[[int], np.ndarray],
                         orders: Sequence[Sequence[int]], k: int) -> np.ndarray:
    """Marginal contributions of each factor along each order.

    Args:
        value: coalition bitmask -> value (an array over replications, or a float).
        orders: permutations of range(k).

    Returns:
        Shape (len(orders), k, ...): the contribution of factor i when it joins in
        order m; each order's contributions sum exactly to value(all) − value(none).
    """
    get = value if callable(value) else value.__getitem__
    first = np.asarray(get(0), dtype=float)
    out = np.empty((len(orders), k, *first.shape))
    for m, order in enumerate(orders):
        mask, before = 0, first
        for i in order:
            mask |= 1 << i
            now = np.asarray(get(mask), dtype=float)
            out[m, i] = now - before
            before = now
    return out


# --------------------------------------------------------------------------- factors


def resolved(scenario: Scenario) -> dict[str, Any]:
    """The scenario as a dict with every alignment lever explicit (the preset expanded)."""
    data = scenario.to_dict()
    levers = scenario.levers
    for name in LEVER_NAMES:
        data["alignment"][name] = getattr(levers, name)
    return data


def _leaves(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


def differences(a: Scenario, b: Scenario) -> tuple[dict[str, tuple[Any, Any]], list[str]]:
    """The resolved keys in which `b` differs from `a`: key -> (A's value, B's value).

    A table present in one scenario only (a marketing program, a segment) is one key
    holding the whole table. Returns the differences and problems (a table in A only,
    which setting B's keys into A cannot remove).
    """
    da, db = resolved(a), resolved(b)
    da["alignment"]["preset"] = db["alignment"]["preset"] = "siloed"  # levers are explicit
    diffs: dict[str, tuple[Any, Any]] = {}
    problems: list[str] = []

    def walk(x: Any, y: Any, prefix: str) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            for key in [*x, *(k for k in y if k not in x)]:
                path = f"{prefix}.{key}" if prefix else str(key)
                if not prefix and key in _IGNORED:
                    continue
                if key not in y:
                    problems.append(f"{path}: in {a.name} only; explain sets {b.name}'s keys "
                                    f"into {a.name} and cannot remove a table: give {b.name} "
                                    "the same table (e.g. a program with monthly_budget = 0)")
                elif key not in x:
                    diffs[path] = (None, y[key])
                else:
                    walk(x[key], y[key], path)
        elif x != y:
            diffs[prefix] = (x, y)

    walk(da, db, "")
    return diffs, problems


def make_factors(diffs: Mapping[str, tuple[Any, Any]],
                 names: Sequence[str] | None = None) -> list[Factor]:
    """Factors from the differing keys: one per key, or the groups `names` asks for.

    A name is a differing key or a table holding some (`alignment`, `marketing`); keys no
    name covers are one more factor, `OTHER`, so that the contributions still sum to the
    gap.

    Raises:
        ScenarioError: names that match no differing key (with the nearest), names given
            twice or covering the same key, all at once.
    """
    keys = list(diffs)
    if not names:
        return [Factor(k, (k,), (diffs[k][0],), (diffs[k][1],)) for k in keys]
    problems: list[str] = []
    taken: dict[str, str] = {}
    factors: list[Factor] = []
    prefixes = sorted({".".join(k.split(".")[:i]) for k in keys
                       for i in range(1, k.count(".") + 1)})
    for name in names:
        name = name.strip()
        covered = [k for k in keys if k == name or k.startswith(name + ".")]
        if not name:
            problems.append("--factors: an empty name in the list")
            continue
        if any(f.name == name for f in factors):
            problems.append(f"--factors {name}: given twice")
            continue
        if not covered:
            near = difflib.get_close_matches(name, [*keys, *prefixes], n=1, cutoff=0.6)
            hint = (f"; did you mean '{near[0]}'?" if near
                    else f"; the scenarios differ in {', '.join(keys) or 'no key'}")
            problems.append(f"--factors {name}: not a key in which the scenarios differ{hint}")
            continue
        clash = sorted({taken[k] for k in covered if k in taken})
        if clash:
            problems.append(f"--factors {name}: overlaps {', '.join(clash)} (a key may belong "
                            "to one factor only)")
            continue
        for k in covered:
            taken[k] = name
        factors.append(Factor(name, tuple(covered), tuple(diffs[k][0] for k in covered),
                              tuple(diffs[k][1] for k in covered)))
    if problems:
        raise ScenarioError(problems)
    rest = [k for k in keys if k not in taken]
    if rest:
        factors.append(Factor(OTHER, tuple(rest), tuple(diffs[k][0] for k in rest),
                              tuple(diffs[k][1] for k in rest)))
    return factors


def hybrid_point(factors: Sequence[Factor], mask: int) -> dict[str, Any]:
    """The overrides of A that switch the factors of `mask` (bit i = factor i) to B."""
    point: dict[str, Any] = {}
    for i, f in enumerate(factors):
        if mask >> i & 1:
            point.update(zip(f.keys, f.b, strict=True))
    return point


def _text(value: Any) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        text = str(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return str(value)


# --------------------------------------------------------------------------- the verb


def explain(
    a: Scenario | str | Path,
    b: Scenario | str | Path,
    *,
    factors: Sequence[str] | None = None,
    reps: int = 10,
    seed: int | None = None,
    months: int | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
    permutations: int | None = None,
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
    posterior: str | Path | None = None,
) -> Explanation:
    """Split the gap B − A in each key outcome into Shapley contributions of the keys
    that differ, on common random numbers.

    Args:
        a, b: the scenarios (`Scenario`s, files or shipped names); the gap is B − A.
        factors: keys (or tables of keys, e.g. "alignment") to treat as factors;
            default: every differing key. Differing keys not named form one more factor.
        permutations: sample this many orders instead of every subset (default: every
            subset up to `EXACT_MAX` factors, else `PERMUTATIONS` orders).
        confidence: of the intervals.
        charts: also draw the waterfall charts in `out`/charts (matplotlib).
        posterior: a finished calibration folder (`gtmsim calibrate --out`): replication
            r of every mix also runs on posterior draw r of the calibrated keys (weighted
            resampling, seeded from `seed`), so the contributions and their intervals
            cover what the calibration left uncertain, not only simulation noise. A
            calibrated key may be neither a factor nor set with `overrides`.
        reps, seed, months, overrides, workers, scheduler, executor, out, resume, force,
        progress, command, yes: as for `gtmsim.experiment.compare`; `seed` defaults to
        A's.

    Raises:
        ScenarioError: a scenario cannot be loaded, the scenarios do not differ, an
            unknown factor, a hybrid that is not a valid scenario — every problem at once.
        ExperimentError, ResultsError: as for `compare`.
    """
    problems: list[str] = []
    loaded: list[Scenario] = []
    for s in (a, b):
        try:
            loaded.append(_exp._overridden(s, overrides))
        except ScenarioError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
    if permutations is not None and (not isinstance(permutations, int)
                                     or isinstance(permutations, bool) or permutations < 2):
        problems.append(f"--permutations: expected a whole number ≥ 2, got {permutations!r}")
    if not 0 < confidence < 1:
        problems.append(f"confidence: expected a fraction between 0 and 1, got {confidence!r}")
    if problems:
        raise ScenarioError(problems)
    sa, sb = loaded
    if months is None and sa.months != sb.months:
        raise ExperimentError(f"explain: the scenarios run for different months ({sa.name}: "
                              f"{sa.months}, {sb.name}: {sb.months}); pass months (--months) "
                              "to explain the gap over the same horizon")
    diffs, problems = differences(sa, sb)
    if not diffs and not problems:
        problems.append(f"explain: {sa.name} and {sb.name} do not differ in any key (name, "
                        "question, seed and months aside); there is no gap to explain")
    if problems:
        raise ScenarioError(problems)
    found = make_factors(diffs, factors)
    k = len(found)
    base = with_changes(sa, {f"alignment.{n}": getattr(sa.levers, n) for n in LEVER_NAMES},
                        "explain")
    if permutations is None and k <= EXACT_MAX:
        method, orders = "exact", []
        masks = list(range(1 << k))
    else:
        method = "permutations"
        orders = sample_permutations(k, permutations or PERMUTATIONS,
                                     sa.seed if seed is None else seed)
        masks = permutation_masks(orders)
    full = (1 << k) - 1
    if full not in masks:
        masks.append(full)
    pts = [hybrid_point(found, m) for m in masks]
    run_seed = sa.seed if seed is None else seed
    draws = None
    if posterior is not None:
        # The draws need whole reps and seed: the engine's own check, before drawing.
        _exp._check_options(reps=reps, seed=run_seed, months=months, workers=workers,
                            scheduler=scheduler, executor=executor)
        taken = {**_points.set_keys(overrides),
                 **{key: f"the factor {f.name} (it differs between {sa.name} and {sb.name})"
                    for f in found for key in f.keys}}
        _, draws = _points.posterior_draws(posterior, reps, (run_seed % 2**32, POSTERIOR_STREAM),
                                           taken, check=base)
    try:
        experiment = _points.evaluate(
            base, pts, reps=reps, seed=run_seed, months=months,
            workers=workers, scheduler=scheduler, executor=executor, out=out, resume=resume,
            force=force, progress=progress, command=command, yes=yes, kind="explain",
            outputs=(CONTRIBUTIONS, GAPS), draws=draws)
    except ScenarioError as exc:
        raise ScenarioError([*exc.problems, ("explain: a mix of the two scenarios' keys is not "
                             "a valid scenario; group keys that must change together with "
                             "--factors (e.g. --factors market.segments)")]) from None
    contributions, gaps = _decompose(experiment, found, masks, orders, method, confidence)
    result = Explanation(a=sa.name, b=sb.name, contributions=contributions, gaps=gaps,
                         factors=found, method=method, permutations=len(orders),
                         experiment=experiment,
                         posterior=None if posterior is None else Path(posterior))
    if experiment.folder is not None:
        files: dict[str, Callable[[Path], None]] = {CONTRIBUTIONS: csv_writer(contributions),
                                                    GAPS: csv_writer(gaps)}
        if charts:
            files.update(_chart_writers(result))
        section = {"a": sa.name, "b": sb.name, "a_label": sa.display_label,
                   "b_label": sb.display_label, "a_question": sa.question,
                   "b_question": sb.question, "method": method,
                   "permutations": len(orders), "confidence": confidence,
                   "masks": masks if method == "permutations" else None,
                   "posterior": None if posterior is None else str(posterior),
                   "factors": [{"name": f.name, "keys": list(f.keys)} for f in found]}
        result.files = _points.write_outputs(experiment, files, section)
    return result


def _decompose(experiment: Experiment, found: Sequence[Factor], masks: Sequence[int],
               orders: Sequence[Sequence[int]], method: str,
               confidence: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Contributions and gaps of every outcome from the hybrids' runs."""
    k = len(found)
    row_of = {m: i for i, m in enumerate(masks)}
    full = (1 << k) - 1
    per_run = experiment.outcomes()
    rows, gap_rows = [], []
    for o in OUTCOMES:
        v = _points.outcome_matrix(experiment, o.name, per_run)  # points × reps
        keep = ~np.isnan(v).any(axis=0)  # replications where every hybrid has a value
        n = int(keep.sum())
        v = v[:, keep]
        gap = v[row_of[full]] - v[row_of[0]]
        g_mean, g_lo, g_hi = _exp._t_interval(gap, confidence, o.diff_range)
        gap_rows.append({"outcome": o.name,
                         "a_mean": float(v[row_of[0]].mean()) if n else np.nan,
                         "b_mean": float(v[row_of[full]].mean()) if n else np.nan,
                         "gap": g_mean, "gap_ci_low": g_lo, "gap_ci_high": g_hi, "n": n})
        if method == "exact":
            phi = shapley(v[[row_of[m] for m in range(1 << k)]]) if n else np.full((k, 0), np.nan)
            stats_ = [_exp._t_interval(phi[i], confidence) for i in range(k)]
        else:
            marg = shapley_permutations(lambda m, v=v: v[row_of[m]], orders, k)  # orders × k × reps
            stats_ = [_sampled_interval(marg[:, i, :], confidence) for i in range(k)]
        for f, (mean, lo, hi) in zip(found, stats_, strict=True):
            a_text, b_text = f.values_text()
            rows.append({"outcome": o.name, "factor": f.name, "contribution": mean,
                         "ci_low": lo, "ci_high": hi, "from": a_text, "to": b_text,
                         "keys": " ".join(f.keys), "n": n})
    return pd.DataFrame(rows), pd.DataFrame(gap_rows)


def _sampled_interval(marg: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """Mean of orders × replications contributions and an interval adding the variance
    between orders (permutation sampling) to that between replications (run noise)."""
    m, r = marg.shape
    if r == 0:
        return (float("nan"),) * 3
    mean = float(marg.mean())
    if m < 2 or r < 2:
        return mean, float("nan"), float("nan")
    var = marg.mean(axis=1).var(ddof=1) / m + marg.mean(axis=0).var(ddof=1) / r
    half = float(stats.t.ppf((1 + confidence) / 2, min(m, r) - 1) * math.sqrt(var))
    return mean, mean - half, mean + half


def _chart_writers(result: Explanation) -> dict[str, Callable[[Path], None]]:
    from gtmsim.analysis.plots import figure_writer, plot_waterfall

    writers = {}
    for name in WATERFALL_OUTCOMES:
        writers[f"{CHARTS_DIR}/waterfall_{name}.png"] = figure_writer(
            lambda ax, name=name: plot_waterfall(result.contributions, result.gaps, name,
                                                 a=result.a, b=result.b, ax=ax))
    return writers


def read_explanation(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The contributions and gaps tables of an explain results folder."""
    folder = Path(folder)
    from gtmsim.results import ResultsError

    try:
        return pd.read_csv(folder / CONTRIBUTIONS), pd.read_csv(folder / GAPS)
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{folder}: cannot read the explain results ({exc})") from None


__all__ = [
    "EXACT_MAX",
    "Explanation",
    "Factor",
    "differences",
    "explain",
    "make_factors",
    "permutation_masks",
    "read_explanation",
    "sample_permutations",
    "shapley",
    "shapley_permutations",
    "shapley_weights",
]
