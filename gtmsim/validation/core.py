"""The shared core of the validation checks: the rows of the table and a check's result,
the statistics the checks share, the registry of checks, the runner `run_checks` and the
writing of the table (CSV, JSON), data and charts.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from gtmsim.results import atomic_write, versions, write_csv, write_json


Size = Literal["full", "ci"]
Status = Literal["pass", "fail", "info"]
SIZES: tuple[str, ...] = ("full", "ci")
Z = 3.0  # tolerances in standard errors: "within 3 SE" (≈ 99.7% per comparison)
TABLE_CSV = "validation.csv"
TABLE_JSON = "validation.json"


class ValidationError(ValueError):
    """Bad input to a check (unknown name, a value out of range)."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Criterion:
    """One row of the validation table.

    Attributes:
        check: the check it belongs to.
        criterion: what is compared, in words.
        expected: the known answer or range, as text.
        observed: what the model did, as text.
        tolerance: the rule that decides pass or fail, as text.
        status: "pass", "fail", or "info" (reported, not judged).
        expected_value: the expected number, where there is one.
        observed_value: the observed number, where there is one.
    """

    check: str
    criterion: str
    expected: str
    observed: str
    tolerance: str
    status: Status
    expected_value: float | None = None
    observed_value: float | None = None


@dataclass
class CheckResult:
    """What one check found.

    Attributes:
        name: the check's name (`bass`, `capacity`, ...).
        title: one line saying what it checks.
        source: where the known answer comes from.
        criteria: the rows of the validation table.
        data: tidy tables behind the chart (written as CSV next to it).
        settings: sizes, seeds and parameters it ran with.
        elapsed_s: wall time.
    """

    name: str
    title: str
    source: str
    criteria: list[Criterion]
    data: dict[str, pd.DataFrame]
    settings: dict[str, Any]
    elapsed_s: float = 0.0

    @property
    def passed(self) -> bool:
        return all(c.status != "fail" for c in self.criteria)

    def figure(self) -> Figure:
        """The check's chart (a new matplotlib Figure, not shown or saved)."""
        return CHECKS[self.name].draw(self)


def _row(check: str, criterion: str, expected: str, observed: str, tolerance: str,
         ok: bool | None, expected_value: float | None = None,
         observed_value: float | None = None) -> Criterion:
    status: Status = "info" if ok is None else ("pass" if ok else "fail")
    ev = None if expected_value is None else float(expected_value)
    ov = None if observed_value is None else float(observed_value)
    return Criterion(check, criterion, expected, observed, tolerance, status, ev, ov)


# --------------------------------------------------------------------------- helpers


def family_z(k: int) -> float:
    """The |z| bound that k independent comparisons all meet with the chance one meets ±3 SE.

    Šidák: each comparison gets the two-sided level 1 − (1 − α)^(1/k), α = P(|Z| > 3) ≈ 0.27%,
    so that "every day (or budget) within the bound" fails by luck 0.27% of the time, like a
    single 3-SE comparison, instead of about k × 0.27%. k = 1 gives 3.
    """
    alpha = 2 * stats.norm.sf(Z)
    return float(stats.norm.isf((1 - (1 - alpha) ** (1 / max(k, 1))) / 2))


def t_bound(reps: int) -> float:
    """The bound on (mean − expected) / SE that is "3 SE" (99.73%, two-sided) when the SE is
    estimated from `reps` replications: Student t's quantile with reps − 1 df (→ 3 as reps grow)."""
    return float(stats.t.isf(stats.norm.sf(Z), max(reps - 1, 1)))


def _seeds(seed: int, reps: int) -> list[int]:
    """Replication seeds; arms of one check share them (common random numbers)."""
    return [seed + i for i in range(reps)]


def _mean_se(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over replications (axis 0)."""
    x = np.asarray(x, dtype=float)
    return x.mean(axis=axis), stats.sem(x, axis=axis, ddof=1)


def _paired(treated: np.ndarray, control: np.ndarray) -> tuple[float, float]:
    """Mean paired difference (same seeds) and its standard error."""
    d = np.asarray(treated, dtype=float) - np.asarray(control, dtype=float)
    return float(d.mean()), float(stats.sem(d, ddof=1))


def _jackknife_ratio(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """Ratio of means over replications and its jackknife standard error."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    n = len(num)
    ratio = num.mean() / den.mean()
    loo = np.array([np.delete(num, i).mean() / np.delete(den, i).mean() for i in range(n)])
    se = math.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2))
    return float(ratio), float(se)


def _one_segment(**overrides: Any) -> dict[str, Any]:
    segment = {"share": 1.0, "fit_mean": 0.5, "fit_concentration": 1000, "deal_value": 10_000,
               "deal_value_spread": 0.0, "cycle_days": 30, "base_win_rate": 0.25}
    segment.update(overrides)
    return {"all": segment}


# Levers of a bare desk: every lead passed at once, oldest first, nothing else. Checks that
# study one mechanism start here so that no other lever gets in the way.
PLAIN_DESK = {"preset": "siloed", "lead_threshold": 0, "handoff_days": 0, "sla_days": 0,
              "routing": "oldest_first", "feedback": 0, "enablement": 0,
              "message_consistency": 1, "recycling": 1, "coordination": 0,
              "marketing_reward": 1}


def _settings(size: str, defaults: Mapping[str, Mapping[str, Any]],
              given: Mapping[str, Any]) -> dict[str, Any]:
    if size not in SIZES:
        raise ValidationError(f"size: must be one of {', '.join(SIZES)}, got {size!r}")
    out = dict(defaults[size])
    out.update({k: v for k, v in given.items() if v is not None})
    return out


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Check:
    name: str
    summary: str
    run: Callable[..., CheckResult]
    draw: Callable[[CheckResult], Figure]
    sizes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# Filled in check order by the package (gtmsim/validation/__init__.py).
CHECKS: dict[str, Check] = {}


def check_names(names: str | Sequence[str] | None = None) -> list[str]:
    """Resolve check names (None = all), suggesting the nearest name for a typo."""
    if names is None:
        return list(CHECKS)
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name not in CHECKS:
            near = difflib.get_close_matches(name, list(CHECKS), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ValidationError(f"{name}: unknown check{hint} (checks: {', '.join(CHECKS)})")
    return names


def run_checks(names: str | Sequence[str] | None = None, size: Size = "full", *, seed: int = 0,
               options: Mapping[str, Mapping[str, Any]] | None = None,
               on_check: Callable[[str, CheckResult | None], None] | None = None,
               ) -> list[CheckResult]:
    """Run validation checks through the real model.

    Args:
        names: a check name, several, or None for all (see `CHECKS`).
        size: "full" (the figures in docs/validation.md) or "ci" (smaller, for the tests).
        seed: first replication seed of every check.
        options: per-check keyword arguments, e.g. `{"bass": {"p": 0.01, "q": 0.4}}`.
        on_check: called with (name, None) before a check and (name, result) after it.

    Returns:
        One `CheckResult` per check, in the order asked.
    """
    chosen = check_names(names)
    options = dict(options or {})
    unknown = set(options) - set(chosen)
    if unknown:
        raise ValidationError(f"options given for checks not run: {', '.join(sorted(unknown))}")
    if size not in SIZES:
        raise ValidationError(f"size: must be one of {', '.join(SIZES)}, got {size!r}")
    out = []
    for name in chosen:
        if on_check:
            on_check(name, None)
        start = time.perf_counter()
        result = CHECKS[name].run(size=size, seed=seed, **options.get(name, {}))
        result.elapsed_s = time.perf_counter() - start
        out.append(result)
        if on_check:
            on_check(name, result)
    return out


def results_table(results: Sequence[CheckResult]) -> pd.DataFrame:
    """One row per criterion: check, criterion, expected, observed, tolerance, status, values."""
    return pd.DataFrame([c.__dict__ for r in results for c in r.criteria],
                        columns=[f.name for f in fields(Criterion)])


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_results(results: Sequence[CheckResult], folder: str | Path,
                  command: Sequence[str] | None = None) -> list[Path]:
    """Write the table (CSV and JSON), each check's data (CSV) and chart (PNG) into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / TABLE_CSV, folder / TABLE_JSON]
    write_csv(results_table(results), written[0])
    summary = {
        "passed": all(r.passed for r in results),
        "checks": [{"name": r.name, "title": r.title, "source": r.source, "passed": r.passed,
                    "elapsed_s": round(r.elapsed_s, 2), "settings": _jsonable(r.settings),
                    "criteria": [_jsonable(c.__dict__) for c in r.criteria]} for r in results],
        "versions": versions(),
        "command": list(command) if command is not None else None,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_json(summary, written[1])
    for r in results:
        for key, df in r.data.items():
            path = folder / f"{r.name}_{key}.csv"
            write_csv(df, path)
            written.append(path)
        path = folder / f"{r.name}.png"
        # A bare Figure renders with the Agg canvas: no pyplot state, no display needed.
        fig = r.figure()
        atomic_write(path, lambda tmp, fig=fig: fig.savefig(tmp, dpi=110, format="png"))
        written.append(path)
    return written
