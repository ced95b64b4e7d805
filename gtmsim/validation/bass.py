"""The `bass` check: awareness follows the Bass curve under fully mixed word of mouth
(Bass 1969); a sparse small-world network diffuses no faster.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gtmsim.marketing import DAYS_PER_MONTH
from gtmsim.model import simulate
from gtmsim.scenario import Scenario, scenario_from_dict
from gtmsim.validation.core import (
    Check,
    CheckResult,
    Size,
    ValidationError,
    Z,
    _mean_se,
    _one_segment,
    _row,
    _seeds,
    _settings,
    t_bound,
)


def bass_closed_form(t: np.ndarray, p: float, q: float) -> np.ndarray:
    """Bass (1969) cumulative adoption F(t) = (1 − e^−(p+q)t) / (1 + (q/p) e^−(p+q)t)."""
    e = np.exp(-(p + q) * np.asarray(t, dtype=float))
    return (1 - e) / (1 + (q / p) * e)


def bass_recursion(p: float, q: float, months: int) -> np.ndarray:
    """Expected aware share at each month end under the model's daily step.

    Each day an unaware prospect is first touched by the program with probability
    1 − e^(−p/30) (Poisson touches spread uniformly, awareness 1), then hears of the brand
    with probability 1 − e^(−q·F/30), F the share aware after marketing acted that day.
    """
    unaware = 1.0
    out = np.empty(months)
    for day in range(months * DAYS_PER_MONTH):
        unaware *= math.exp(-p / DAYS_PER_MONTH)
        unaware *= math.exp(-q * (1 - unaware) / DAYS_PER_MONTH)
        if day % DAYS_PER_MONTH == DAYS_PER_MONTH - 1:
            out[day // DAYS_PER_MONTH] = 1 - unaware
    return out


def bass_scenario(p: float, q: float, prospects: int, months: int,
                  network: str = "full") -> Scenario:
    """No sales, one broad program reaching p·N a month, word of mouth at q per month.

    With saturation 1 and slope 1 the Hill curve gives reach = N·x/(1 + x) for x touches
    bought per prospect, so a budget of N·p/(1 − p) at $1 a touch reaches exactly p·N.
    """
    if not 0 < p < 1:
        raise ValidationError(f"bass: p must be in (0, 1), got {p}")
    if q < 0:
        raise ValidationError(f"bass: q must be ≥ 0, got {q}")
    return scenario_from_dict({
        "name": f"bass-{network}", "months": months,
        "market": {"prospects": prospects, "initial_aware": 0.0, "in_market_share": 0.0,
                   "word_of_mouth": q, "churn_monthly": 0.0, "network": {"kind": network},
                   "segments": _one_segment()},
        "marketing": {"programs": {"broad": {
            "channel": "other", "monthly_budget": prospects * p / (1 - p), "cost_per_reach": 1.0,
            "carryover": 0.0, "saturation": 1.0, "saturation_slope": 1.0, "awareness": 1.0,
            "trust": 0.0}}},
        "sales": {"reps": 0},
    }, source="validation:bass")


def _aware_share(scenario: Scenario, seeds: Sequence[int], months: int) -> np.ndarray:
    n = scenario.market.prospects
    return np.array([
        1 - simulate(scenario, seed=s, months=months, keep_model=False)
        .monthly["unaware"].to_numpy() / n
        for s in seeds
    ])


BASS_SIZES = {
    "full": {"p": 0.03, "q": 0.38, "prospects": 200_000, "months": 24, "reps": 20},
    "ci": {"p": 0.03, "q": 0.38, "prospects": 100_000, "months": 24, "reps": 6},
}
CLOSED_FORM_MIN_PROSPECTS = 100_000
CLOSED_FORM_TOLERANCE = 0.01


def check_bass(*, size: Size = "full", seed: int = 0, p: float | None = None,
               q: float | None = None, prospects: int | None = None, months: int | None = None,
               reps: int | None = None) -> CheckResult:
    """Awareness under one broad program and fully mixed word of mouth follows Bass.

    Args:
        size: "full" or "ci" (sets the defaults below).
        seed: first replication seed.
        p: innovation coefficient per month (the program's reach share).
        q: imitation coefficient per month (`market.word_of_mouth`).
        prospects: market size N.
        months: months simulated.
        reps: replications (≥ 2).
    """
    cfg = _settings(size, BASS_SIZES, {"p": p, "q": q, "prospects": prospects,
                                       "months": months, "reps": reps})
    p, q, n, m, r = cfg["p"], cfg["q"], cfg["prospects"], cfg["months"], cfg["reps"]
    if r < 2:
        raise ValidationError(f"bass: reps must be ≥ 2 to estimate a standard error, got {r}")
    seeds = _seeds(seed, r)
    full = _aware_share(bass_scenario(p, q, n, m, "full"), seeds, m)
    sparse = _aware_share(bass_scenario(p, q, n, m, "small_world"), seeds, m)
    t = np.arange(1, m + 1)
    closed, rec = bass_closed_form(t, p, q), bass_recursion(p, q, m)
    mean, se = _mean_se(full)
    # Floor the replication SE at the binomial SE of a share of N: with all replications
    # equal (e.g. everyone aware) the sample SE is 0 and would demand exact equality.
    se = np.maximum(se, np.sqrt(rec * (1 - rec) / (n * r)))
    z = (mean - rec) / se
    # "Within 3 SE" is a 99.73% band when the SE is known; here it is estimated from r
    # replications, so the same band is Student t's with r − 1 degrees of freedom.
    bound = t_bound(r)
    diff = sparse - full
    d_mean, d_se = _mean_se(diff)
    d_se = np.maximum(d_se, np.sqrt(rec * (1 - rec) / (n * r)))
    dev = mean - closed
    k, kc = int(np.argmax(np.abs(z))), int(np.argmax(np.abs(dev)))
    kd = int(np.argmax(d_mean / d_se))
    rows = [
        _row("bass", "mean aware share vs the discrete Bass recursion, every month",
             f"recursion of the daily step (p={p:g}, q={q:g}/month)",
             f"max |z| {abs(z[k]):.2f} (month {k + 1}: {mean[k]:.4f} vs {rec[k]:.4f})",
             f"|mean − recursion| ≤ {bound:.2f} SE each month (3 SE at 99.73%, Student t "
             f"with {r - 1} df: SE from {r} replications)",
             bool(np.all(np.abs(z) <= bound)), 0.0, float(abs(z[k]))),
        _row("bass", "mean aware share vs the closed form F(t)",
             "F(t) = (1 − e^−(p+q)t) / (1 + (q/p) e^−(p+q)t)",
             f"max |dev| {abs(dev[kc]):.4f} (month {kc + 1})",
             f"≤ {CLOSED_FORM_TOLERANCE:g} for N ≥ {CLOSED_FORM_MIN_PROSPECTS:,} (N = {n:,})",
             (bool(abs(dev[kc]) <= CLOSED_FORM_TOLERANCE)
              if n >= CLOSED_FORM_MIN_PROSPECTS else None),
             0.0, float(abs(dev[kc]))),
        _row("bass", "discrete recursion vs closed form (daily steps, no noise)",
             "close: the model steps in days",
             f"max |dev| {np.abs(rec - closed).max():.4f}", "reported, not judged", None,
             0.0, float(np.abs(rec - closed).max())),
        _row("bass", "small-world network diffuses no faster than full mixing",
             "F_small_world(t) ≤ F_full(t)",
             f"max F_sw − F_full {d_mean[kd]:+.4f} (month {kd + 1}); "
             f"largest lag {d_mean.min():+.4f} (month {int(np.argmin(d_mean)) + 1})",
             f"F_sw − F_full ≤ {Z:g} SE (paired) each month",
             bool(np.all(d_mean <= Z * d_se)), 0.0, float(d_mean[kd])),
    ]
    data = {"curve": pd.DataFrame({
        "month": t, "closed_form": closed, "recursion": rec, "full_mean": mean, "full_se": se,
        "small_world_mean": sparse.mean(axis=0), "small_world_minus_full": d_mean,
        "small_world_minus_full_se": d_se, "z": z})}
    return CheckResult("bass", "Bass docking", "Bass (1969); Niu (2002); Fibich & Gibori (2010)",
                       rows, data, {**cfg, "seeds": seeds, "z_bound": bound,
                                    "network_small_world": "degree 10, rewire 0.05"})


def plot_bass_curve(data: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Aware share by month: closed form, recursion, model mean ± 3 SE, small world."""
    ax = ax or Figure().subplots()
    ax.plot(data["month"], data["closed_form"], color="black", lw=1.5, label="Bass closed form")
    ax.plot(data["month"], data["recursion"], color="grey", ls="--", lw=1, label="daily recursion")
    ax.errorbar(data["month"], data["full_mean"], yerr=Z * data["full_se"], fmt="o", ms=3,
                color="#1f77b4", label="model, full mixing (±3 SE)")
    ax.plot(data["month"], data["small_world_mean"], "s", ms=3, color="#d62728",
            label="model, small world")
    ax.set(xlabel="Month", ylabel="Share aware", ylim=(0, 1.02), title="Awareness vs Bass")
    ax.legend(loc="lower right", fontsize=8)
    return ax


def plot_bass_deviation(data: pd.DataFrame, *, ax: Axes | None = None,
                        bound: float = Z) -> Axes:
    """Model mean minus the recursion, in standard errors, with the ±bound band."""
    ax = ax or Figure().subplots()
    ax.axhspan(-bound, bound, color="#1f77b4", alpha=0.1, label=f"±{bound:.2f} SE (3 SE, t)")
    ax.axhline(0, color="black", lw=0.8)
    ax.plot(data["month"], data["z"], "o-", ms=3, color="#1f77b4", label="(mean − recursion) / SE")
    ax.set(xlabel="Month", ylabel="Standard errors", title="Deviation from the recursion")
    ax.legend(fontsize=8)
    return ax


def _draw_bass(result: CheckResult) -> Figure:
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    plot_bass_curve(result.data["curve"], ax=left)
    plot_bass_deviation(result.data["curve"], ax=right,
                        bound=result.settings.get("z_bound", Z))
    return fig


CHECK = Check("bass", "awareness follows the Bass curve; a sparse network is no faster",
              check_bass, _draw_bass, BASS_SIZES)
