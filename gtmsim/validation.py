"""Validation: docking the model against known results before it predicts anything.

A simulator earns trust by reproducing what is known (Rand & Rust 2011, "Agent-based
modeling in marketing: guidelines for rigor"). Each check here builds scenarios from
numbers, runs them through the real model (`GTMModel` via `simulate`), and compares what
the model did with theory or with published ranges:

- `bass`: awareness follows the Bass curve under fully mixed word of mouth (Bass 1969);
  a sparse small-world network diffuses no faster.
- `capacity`: with leads far above sales capacity, wins settle at the Little's-law rate.
- `decay`: qualification falls with response time as the decay law says (Oldroyd et al. 2011).
- `marketing`: geometric adstock is exact; awareness grows with spend, with diminishing returns.
- `alignment`: each lever switched on alone moves its own mechanism's metric the right way.
- `timing`: marketing shows in bookings after months and persists; outbound reps show
  within weeks and fade when they leave.
- `funnel`: the baseline's conversions and cycle lengths sit in published B2B ranges.

Every check returns a `CheckResult`: the rows of the validation table (expected,
observed, tolerance, pass/fail), the data behind its chart, and the settings it ran
with. Tolerances are explained in docs/validation.md. `run_checks` runs several;
`write_results` writes the table (CSV, JSON), the data and one PNG chart per check.
"""

from __future__ import annotations

import copy
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
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import optimize, stats

from gtmsim.alignment import PRESETS
from gtmsim.marketing import DAYS_PER_MONTH
from gtmsim.model import FEEDBACK_MONTHS, GTMModel, simulate
from gtmsim.prospects import OPPORTUNITY, UNAWARE
from gtmsim.results import versions, write_csv, write_json
from gtmsim.sales import response_decay, win_probability
from gtmsim.scenario import Scenario, load_scenario, scenario_from_dict, with_changes

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


# =========================================================================== 1. Bass


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


# =========================================================================== 2. Capacity


CAPACITY_TEAM = {"reps": 10, "deal_capacity": 10, "cycle_days": 30, "base_win_rate": 0.5}
CAPACITY_SIZES = {
    "full": {"prospects": 40_000, "months": 12, "reps": 8, "steady_from_month": 4},
    "ci": {"prospects": 30_000, "months": 9, "reps": 3, "steady_from_month": 4},
}
# Open deals may sit a little below capacity: a slot freed by a decided deal waits until
# the rep has answered a lead that qualifies. The utilisation row allows 5% of that.
CAPACITY_SHORTFALL = 0.05


def capacity_scenario(prospects: int, months: int, *, reps: int = 10,
                      budget_factor: float = 1.0) -> Scenario:
    """Hand-raisers far above what the team can take; deals are capacity-limited.

    One segment of average fit (so the win chance is the law's at fit 0.5, trust 0), a
    program making every touched in-market prospect raise its hand, reps whose time is
    ample (1 touch per lead, no outbound) so that open deals, not hours, are the limit,
    and the newest lead answered first so that qualification is not lost to waiting.
    """
    team = CAPACITY_TEAM
    return scenario_from_dict({
        "name": "capacity", "months": months,
        "market": {"prospects": prospects, "initial_aware": 0.0, "in_market_share": 0.2,
                   "word_of_mouth": 0.0, "churn_monthly": 0.0,
                   "segments": _one_segment(cycle_days=team["cycle_days"],
                                            base_win_rate=team["base_win_rate"])},
        "marketing": {"programs": {"ads": {
            "channel": "paid_ads", "monthly_budget": budget_factor * prospects * 0.5,
            "cost_per_reach": 1.0, "carryover": 0.0, "awareness": 1.0, "trust": 0.0,
            "hand_raise": 1.0}}},
        "sales": {"reps": reps, "deal_capacity": team["deal_capacity"], "touches_per_day": 8,
                  "touches_per_lead": 1, "deal_touches_per_day": 0.25, "outbound_share": 0.0,
                  "skill_spread": 0.0, "ramp_months": 0},
        "alignment": {**PLAIN_DESK, "routing": "newest_first"},
    }, source="validation:capacity")


def check_capacity(*, size: Size = "full", seed: int = 0, prospects: int | None = None,
                   months: int | None = None, reps: int | None = None) -> CheckResult:
    """Little's law: leads far above capacity; wins settle at reps × capacity ÷ cycle × win rate."""
    cfg = _settings(size, CAPACITY_SIZES, {"prospects": prospects, "months": months, "reps": reps})
    n, m, r, steady = cfg["prospects"], cfg["months"], cfg["reps"], cfg["steady_from_month"]
    if m < steady + 1 or r < 2:
        raise ValidationError(f"capacity: need months > {steady} and reps ≥ 2")
    team = CAPACITY_TEAM
    seeds = _seeds(seed, r)
    arms = {
        "base": capacity_scenario(n, m),
        "2x reps": capacity_scenario(n, m, reps=2 * team["reps"]),
        "2x marketing": capacity_scenario(n, m, budget_factor=2.0),
    }
    monthly = []
    for arm, sc in arms.items():
        for s in seeds:
            df = simulate(sc, seed=s, keep_model=False).monthly
            monthly.append(df.assign(arm=arm, seed=s, decided=df["wins"] + df["losses"]))
    runs = pd.concat(monthly, ignore_index=True)
    st = runs[runs["month"] >= steady]
    per = st.groupby(["arm", "seed"]).agg(
        wins=("wins", "mean"), decided=("decided", "mean"), util=("rep_utilization", "mean"),
        queue=("leads", "mean"), decayed=("leads_decayed", "mean"), new_leads=("new_leads", "mean"),
        answered=("new_opportunities", "mean"), dropped=("leads_dropped", "mean"))

    def arm(name: str, col: str) -> np.ndarray:
        return per.loc[name, col].to_numpy()

    win_rate = float(win_probability(np.array([team["base_win_rate"]]), np.array([0.5]),
                                     np.array([0.0]), np.array([1.0]), 0.0)[0])
    closes = team["reps"] * team["deal_capacity"] * DAYS_PER_MONTH / team["cycle_days"]
    rows = []
    u_mean, u_se = _mean_se(arm("base", "util"))
    rows.append(_row("capacity", "open deals per rep, share of capacity", "1.00 (at capacity)",
                     f"{u_mean:.4f} ± {u_se:.4f}", f"≥ {1 - CAPACITY_SHORTFALL:.2f}",
                     bool(u_mean >= 1 - CAPACITY_SHORTFALL), 1.0, u_mean))

    def level(label: str, values: np.ndarray, expected: float, formula: str) -> Criterion:
        mean, se = _mean_se(values)
        tol = CAPACITY_SHORTFALL * expected + Z * se
        return _row("capacity", label, f"{expected:.1f} = {formula}", f"{mean:.1f} ± {se:.1f}",
                    f"±(5% + {Z:g} SE) = ±{tol:.1f}", bool(abs(mean - expected) <= tol),
                    expected, mean)

    rows.append(level("deals decided per month (Little's law)", arm("base", "decided"), closes,
                      f"{team['reps']} reps × {team['deal_capacity']} deals × 30 / "
                      f"{team['cycle_days']} days"))
    rows.append(level("wins per month", arm("base", "wins"), closes * win_rate,
                      f"{closes:.0f} decided × win rate {win_rate:.3f} (law at fit 0.5, trust 0)"))

    def ratio(label: str, treated: str, col: str, expected: float) -> Criterion:
        value, se = _jackknife_ratio(arm(treated, col), arm("base", col))
        tol = 2 * CAPACITY_SHORTFALL * expected + Z * se
        return _row("capacity", label, f"×{expected:.2f}", f"×{value:.2f} ± {se:.2f}",
                    f"±(10% + {Z:g} SE) = ±{tol:.2f}", bool(abs(value - expected) <= tol),
                    expected, value)

    rows.append(ratio("doubling reps: wins", "2x reps", "wins", 2.0))
    rows.append(ratio("doubling marketing: wins", "2x marketing", "wins", 1.0))
    for col, label in (("new_leads", "new leads"), ("queue", "lead queue (month end)"),
                       ("decayed", "leads decayed")):
        value, se = _jackknife_ratio(arm("2x marketing", col), arm("base", col))
        rows.append(_row("capacity", f"doubling marketing: {label}", "grows (× > 1)",
                         f"×{value:.2f} ± {se:.2f}", f"× > 1 + {Z:g} SE",
                         bool(value - 1 > Z * se), None, value))
    extra_decayed = arm("2x marketing", "decayed") - arm("base", "decayed")
    extra_leads = arm("2x marketing", "new_leads") - arm("base", "new_leads")
    share, share_se = _jackknife_ratio(extra_decayed, extra_leads)
    rows.append(_row("capacity", "doubling marketing: share of the extra leads that decay",
                     "1.00 (capacity is full: extra leads only wait and go cold)",
                     f"{share:.2f} ± {share_se:.2f}",
                     f"±(10% + {Z:g} SE) = ±{0.1 + Z * share_se:.2f}",
                     bool(abs(share - 1) <= 0.1 + Z * share_se), 1.0, share))
    inflow = arm("base", "new_leads").mean() / (arm("base", "answered").mean()
                                                + arm("base", "dropped").mean())
    rows.append(_row("capacity", "lead inflow ÷ leads answered (base)", "far above 1",
                     f"{inflow:.1f}", "reported, not judged", None, None, inflow))
    shown = ["wins", "decided", "leads", "leads_decayed", "new_leads", "rep_utilization"]
    curves = runs.groupby(["arm", "month"], sort=False)[shown].mean().reset_index()
    return CheckResult("capacity", "Capacity (Little's law)", "Little (1961); Forrester (1968)",
                       rows, {"monthly": curves, "per_replication": per.reset_index()},
                       {**cfg, "seeds": seeds, **team, "win_rate": win_rate})


def plot_capacity(data: pd.DataFrame, column: str, *, ax: Axes | None = None,
                  expected: Mapping[str, float] | None = None, ylabel: str = "") -> Axes:
    """One line per arm of a monthly capacity metric, with expected levels dashed."""
    ax = ax or Figure().subplots()
    for i, (arm, g) in enumerate(data.groupby("arm", sort=False)):
        colour = ("#1f77b4", "#d62728", "#2ca02c")[i % 3]
        ax.plot(g["month"], g[column], "o-", ms=3, color=colour, label=arm)
        if expected and arm in expected:
            ax.axhline(expected[arm], color=colour, ls="--", lw=1)
    ax.set(xlabel="Month", ylabel=ylabel or column)
    ax.legend(fontsize=8)
    return ax


def _draw_capacity(result: CheckResult) -> Figure:
    data = result.data["monthly"]
    s = result.settings
    closes = s["reps"] * s["deal_capacity"] * DAYS_PER_MONTH / s["cycle_days"]
    w = closes * s["win_rate"]
    fig = Figure(figsize=(11, 7.5), layout="constrained")
    axes = fig.subplots(2, 2)
    plot_capacity(data, "wins", ax=axes[0, 0], ylabel="Wins per month",
                  expected={"base": w, "2x reps": 2 * w, "2x marketing": w})
    axes[0, 0].set_title("Wins settle at reps × capacity ÷ cycle × win rate")
    plot_capacity(data, "rep_utilization", ax=axes[0, 1], ylabel="Open deals / capacity")
    axes[0, 1].set_title("Open deals sit at capacity")
    plot_capacity(data, "leads", ax=axes[1, 0], ylabel="Leads waiting (month end)")
    axes[1, 0].set_title("The queue")
    plot_capacity(data, "leads_decayed", ax=axes[1, 1], ylabel="Leads decayed per month")
    axes[1, 1].set_title("Leads that went cold")
    return fig


# =========================================================================== 3. Lead decay


DECAY_SIZES = {
    "full": {"prospects": 30_000, "months": 6, "reps": 12},
    "ci": {"prospects": 30_000, "months": 6, "reps": 4},
}
DECAY_HANDOFF_DAYS = 14
DECAY_MIN_RESPONSES = 100  # days waited with fewer responses are shown, not judged
ONE_WEEK = 7
DECAY_FALL = 5.0


def decay_scenario(prospects: int, months: int, scale_days: float, power: float) -> Scenario:
    """Leads answered after 0–13 days: lists passed every 14 days to a team with room for all.

    Every lead is in market (a hand-raise program), of average fit, answered by reps of
    skill 1, so its qualification chance is `qualify_rate × (1 + w/τ)^−α`; the decay law
    (τ, α) is the one passed in (the baseline's).
    """
    return scenario_from_dict({
        "name": "decay", "months": months,
        "market": {"prospects": prospects, "initial_aware": 0.0, "in_market_share": 0.3,
                   "word_of_mouth": 0.0, "churn_monthly": 0.0, "qualify_rate": 0.9,
                   "response_decay_days": scale_days, "response_decay_power": power,
                   "segments": _one_segment(cycle_days=10)},
        "marketing": {"programs": {"ads": {
            "channel": "paid_ads", "monthly_budget": prospects, "cost_per_reach": 1.0,
            "carryover": 0.0, "awareness": 1.0, "trust": 0.0, "hand_raise": 1.0}}},
        "sales": {"reps": 10, "deal_capacity": 100_000, "touches_per_day": 8,
                  "touches_per_lead": 0.01, "deal_touches_per_day": 0.0, "outbound_share": 0.0,
                  "skill_spread": 0.0, "ramp_months": 0},
        "alignment": {**PLAIN_DESK, "handoff_days": DECAY_HANDOFF_DAYS},
    }, source="validation:decay")


def _responses(model: GTMModel, skills: Mapping[int, float] | None = None) -> pd.DataFrame:
    """First responses with the part of their qualification chance that is not decay (`base`)
    and the whole chance the model drew against (`chance`).

    `skills` maps rep ids to skill for reps no longer in the team (default: the team now).
    """
    resp = model.log.frame("responses")
    if len(resp) == 0:
        return pd.DataFrame(columns=["day", "prospect", "segment", "waited_days", "in_market",
                                     "qualified", "rep", "base", "chance"])
    mk = model.config.market
    known = {**(skills or {}), **{r: rep.skill for r, rep in model.rep_by_id.items()}}
    skill = np.array([known[r] for r in resp["rep"].tolist()])
    ready = np.where(resp["in_market"], mk.qualify_rate, mk.unready_qualify)
    fit = model.prospects.fit[resp["prospect"].to_numpy()]
    base = ready * (0.5 + fit) * skill
    decay = response_decay(resp["waited_days"].to_numpy(dtype=float), mk.response_decay_days,
                           mk.response_decay_power)
    return resp.assign(base=base, chance=np.clip(base * decay, 0, 1))


def check_decay(*, size: Size = "full", seed: int = 0, prospects: int | None = None,
                months: int | None = None, reps: int | None = None) -> CheckResult:
    """Qualification by response time follows the decay law; the baseline's falls ≥ 5× in a week."""
    cfg = _settings(size, DECAY_SIZES, {"prospects": prospects, "months": months, "reps": reps})
    law = load_scenario("baseline").market
    tau, alpha = law.response_decay_days, law.response_decay_power
    sc = decay_scenario(cfg["prospects"], cfg["months"], tau, alpha)
    seeds = _seeds(seed, cfg["reps"])
    resp = pd.concat([_responses(simulate(sc, seed=s).model) for s in seeds], ignore_index=True)
    wait = resp["waited_days"].to_numpy(dtype=float)
    base = resp["base"].to_numpy()
    days = np.unique(wait)
    base_sum = np.array([base[wait == d].sum() for d in days])

    def factor(_: Any, scale: float, power: float) -> np.ndarray:
        """Expected decay factor on the judged days: Σ chance / Σ chance without decay."""
        chance = np.clip(base * response_decay(wait, scale, power), 0, 1)  # clipped as the model
        return (np.array([chance[wait == d].sum() for d in days]) / base_sum)[judged]

    chance = np.clip(base * response_decay(wait, tau, alpha), 0, 1)
    count = np.array([(wait == d).sum() for d in days])
    qualified = np.array([resp["qualified"].to_numpy()[wait == d].sum() for d in days])
    expected = np.array([chance[wait == d].sum() for d in days])
    # Qualifications are independent Bernoulli draws: SE of a count is √Σ p(1 − p).
    sd = np.sqrt(np.array([(chance * (1 - chance))[wait == d].sum() for d in days]))
    z = (qualified - expected) / sd
    judged = count >= DECAY_MIN_RESPONSES
    estimate, se = qualified / base_sum, sd / base_sum
    (tau_hat, alpha_hat), cov = optimize.curve_fit(
        factor, days[judged], estimate[judged], p0=[tau, alpha], sigma=se[judged],
        absolute_sigma=True, bounds=([1e-3, 0.0], [100.0, 5.0]))
    tau_se, alpha_se = np.sqrt(np.diag(cov))
    law_fall = 1 / float(response_decay(np.array([ONE_WEEK]), tau, alpha)[0])
    fitted_fall = (1 + ONE_WEEK / tau_hat) ** alpha_hat
    # Delta method for the fall (1 + 7/τ)^α in the fitted (τ, α).
    grad = fitted_fall * np.array([-alpha_hat * ONE_WEEK / (tau_hat**2 + ONE_WEEK * tau_hat),
                                   math.log1p(ONE_WEEK / tau_hat)])
    fall_se = float(np.sqrt(grad @ cov @ grad))
    k = int(np.argmax(np.where(judged, np.abs(z), -1)))
    z_days = family_z(int(judged.sum()))
    rows = [
        _row("decay", "qualified leads by days waited follow the decay law",
             f"(1 + w/{tau:g})^−{alpha:g} × chance without decay",
             f"max |z| {abs(z[k]):.2f} (day {days[k]:.0f}) over {judged.sum()} days, "
             f"{len(resp):,} responses",
             f"|observed − expected| ≤ {z_days:.2f} SE each day (3 SE family-wise over "
             f"{judged.sum()} days; ≥ {DECAY_MIN_RESPONSES} responses)",
             bool(np.all(np.abs(z[judged]) <= z_days)), 0.0, float(abs(z[k]))),
        _row("decay", "decay power α fitted to the simulated leads", f"{alpha:g}",
             f"{alpha_hat:.3f} ± {alpha_se:.3f}", f"within {Z:g} SE",
             bool(abs(alpha_hat - alpha) <= Z * alpha_se), alpha, alpha_hat),
        _row("decay", "decay scale τ fitted to the simulated leads (days)", f"{tau:g}",
             f"{tau_hat:.3f} ± {tau_se:.3f}", f"within {Z:g} SE",
             bool(abs(tau_hat - tau) <= Z * tau_se), tau, tau_hat),
        _row("decay", "same-day ÷ one-week qualification, the baseline's law",
             f"≥ {DECAY_FALL:g}×", f"{law_fall:.2f}×", f"≥ {DECAY_FALL:g}×",
             bool(law_fall >= DECAY_FALL), DECAY_FALL, law_fall),
        _row("decay", "same-day ÷ one-week qualification, measured on simulated leads",
             f"≥ {DECAY_FALL:g}× (law: {law_fall:.2f}×)", f"{fitted_fall:.2f}× ± {fall_se:.2f}",
             f"≥ {DECAY_FALL:g}×", bool(fitted_fall >= DECAY_FALL), DECAY_FALL, fitted_fall),
    ]
    table = pd.DataFrame({"days_waited": days, "responses": count, "qualified": qualified,
                          "expected_qualified": expected, "decay_estimate": estimate,
                          "decay_estimate_se": se, "law": response_decay(days, tau, alpha),
                          "fitted": response_decay(days, tau_hat, alpha_hat), "z": z,
                          "judged": judged})
    return CheckResult("decay", "Lead decay", "Oldroyd, McElheran & Elkington (HBR 2011)",
                       rows, {"by_day": table},
                       {**cfg, "seeds": seeds, "scale_days": tau, "power": alpha,
                        "handoff_days": DECAY_HANDOFF_DAYS})


def plot_decay(data: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Estimated decay factor by days waited (±1.96 SE) against the law and the fit."""
    ax = ax or Figure().subplots()
    ax.errorbar(data["days_waited"], data["decay_estimate"], yerr=1.96 * data["decay_estimate_se"],
                fmt="o", ms=4, color="#1f77b4", label="simulated leads (95% CI)")
    ax.plot(data["days_waited"], data["law"], color="black", label="decay law (baseline)")
    ax.plot(data["days_waited"], data["fitted"], color="#d62728", ls="--", label="fitted to leads")
    ax.set(xlabel="Days waited before the first response",
           ylabel="Qualification, relative to same day",
           yscale="log", title="Lead decay")
    ax.legend(fontsize=8)
    return ax


def _draw_decay(result: CheckResult) -> Figure:
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    plot_decay(result.data["by_day"], ax=fig.subplots())
    return fig


# =========================================================================== 4. Marketing


MARKETING_SIZES = {
    "full": {"prospects": 20_000, "months": 6, "reps": 10},
    "ci": {"prospects": 20_000, "months": 6, "reps": 4},
}
ADSTOCK = {"carryover": 0.6, "budget": 1000.0, "months": 12}
ADSTOCK_RTOL = 1e-9  # "exactly": floating-point agreement
SPEND_PROGRAM = {"cost_per_reach": 2.0, "carryover": 0.5, "saturation": 1.0,
                 "saturation_slope": 1.0, "awareness": 0.3}
SPEND_PER_PROSPECT = (0.125, 0.25, 0.5, 1.0, 2.0)  # monthly budget ÷ prospects, $


def marketing_scenario(prospects: int, months: int, budget: float, *, carryover: float,
                       timeline: list[dict[str, Any]] | None = None,
                       **program: Any) -> Scenario:
    """One program on an unaware market; no word of mouth, buying or sales."""
    prog = {"channel": "content", "monthly_budget": budget, "cost_per_reach": 1.0,
            "carryover": carryover, "trust": 0.0, **program}
    return scenario_from_dict({
        "name": "marketing", "months": months,
        "market": {"prospects": prospects, "initial_aware": 0.0, "in_market_share": 0.0,
                   "word_of_mouth": 0.0, "churn_monthly": 0.0, "segments": _one_segment()},
        "marketing": {"programs": {"program": prog}},
        "sales": {"reps": 0},
        "timeline": timeline or [],
    }, source="validation:marketing")


def _effective_spend(scenario: Scenario, months: int) -> np.ndarray:
    """The program's adstock in each month, read from the running model."""
    model = GTMModel(scenario, seed=0)
    seen: list[float] = []
    model.run(months, on_month=lambda *_: seen.append(model.programs["program"].effective_spend))
    return np.array(seen)


def expected_awareness(budget: float, prospects: int, months: int, cost_per_reach: float,
                       carryover: float, saturation: float, slope: float,
                       awareness: float) -> tuple[float, float]:
    """Expected aware share and touches after `months` of constant spend, without word of mouth.

    Adstock a_m = x(1 − θ^m)/(1 − θ); reach r_m = N·h(a_m/(c·N)) with Hill h; each day a
    prospect is touched with probability 1 − e^(−r_m/30N) and a touch makes it aware with
    probability `awareness`; prospects are independent, so the expectation is exact.
    """
    m = np.arange(1, months + 1)
    stock = budget * (1 - carryover**m) / (1 - carryover)
    x = stock / cost_per_reach / prospects
    reach = prospects * x**slope / (x**slope + saturation**slope)
    daily_hit = awareness * -np.expm1(-reach / (DAYS_PER_MONTH * prospects))
    unaware = np.prod((1 - daily_hit) ** DAYS_PER_MONTH)
    return float(1 - unaware), float(reach.sum())


def check_marketing(*, size: Size = "full", seed: int = 0, prospects: int | None = None,
                    months: int | None = None, reps: int | None = None) -> CheckResult:
    """Adstock is geometric and exact; awareness grows with spend, with diminishing returns."""
    cfg = _settings(size, MARKETING_SIZES, {"prospects": prospects, "months": months, "reps": reps})
    n, m, r = cfg["prospects"], cfg["months"], cfg["reps"]
    theta, x, k = ADSTOCK["carryover"], ADSTOCK["budget"], ADSTOCK["months"]
    months_k = np.arange(1, k + 1)
    impulse = _effective_spend(marketing_scenario(
        1000, k, x, carryover=theta,
        timeline=[{"month": 2, "set": {"marketing.programs.program.monthly_budget": 0}}]), k)
    constant = _effective_spend(marketing_scenario(1000, k, x, carryover=theta), k)
    impulse_expected = x * theta ** (months_k - 1)
    constant_expected = x * (1 - theta**months_k) / (1 - theta)
    imp_err = float(np.max(np.abs(impulse / impulse_expected - 1)))
    con_err = float(np.max(np.abs(constant / constant_expected - 1)))
    limit = x / (1 - theta)
    rows = [
        _row("marketing", "adstock of a one-month impulse decays by θ each month",
             f"x·θ^(m−1), θ = {theta:g}", f"max relative error {imp_err:.1e} over {k} months",
             f"≤ {ADSTOCK_RTOL:g}", imp_err <= ADSTOCK_RTOL, 0.0, imp_err),
        _row("marketing", "adstock of constant spend x converges to x/(1 − θ)",
             f"x(1 − θ^m)/(1 − θ) → {limit:,.0f}",
             f"max relative error {con_err:.1e}; month {k}: {constant[-1]:,.2f}",
             f"≤ {ADSTOCK_RTOL:g}", con_err <= ADSTOCK_RTOL, limit, float(constant[-1])),
    ]
    seeds = _seeds(seed, r)
    budgets = np.array(SPEND_PER_PROSPECT) * n
    prog = SPEND_PROGRAM
    aware = np.empty((r, len(budgets)))
    touches = np.empty((r, len(budgets)))
    for j, b in enumerate(budgets):
        sc = marketing_scenario(n, m, b, carryover=prog["carryover"],
                                cost_per_reach=prog["cost_per_reach"],
                                saturation=prog["saturation"],
                                saturation_slope=prog["saturation_slope"],
                                awareness=prog["awareness"])
        for i, s in enumerate(seeds):
            model = simulate(sc, seed=s).model
            aware[i, j] = 1 - model.prospects.counts[UNAWARE] / n
            touches[i, j] = model.programs["program"].touches
    theory = [expected_awareness(b, n, m, prog["cost_per_reach"], prog["carryover"],
                                 prog["saturation"], prog["saturation_slope"], prog["awareness"])
              for b in budgets]
    exp_aware = np.array([t[0] for t in theory])
    exp_touches = np.array([t[1] for t in theory])
    mean, se = _mean_se(aware)
    se = np.maximum(se, np.sqrt(exp_aware * (1 - exp_aware) / (n * r)))
    z = (mean - exp_aware) / se
    # Touches in a month are Poisson with mean = reach: the SE of the mean over r runs is √(μ/r).
    zt = (touches.mean(axis=0) - exp_touches) / np.sqrt(exp_touches / r)
    gains = np.diff(np.column_stack([np.zeros(r), aware]), axis=1)  # per replication, CRN
    steps = np.diff(np.concatenate([[0.0], budgets]))
    marginal = gains / steps * 1000  # aware share per $1k of monthly budget
    g_mean, g_se = _mean_se(gains[:, 1:])
    dm = marginal[:, 1:] - marginal[:, :-1]
    dm_mean, dm_se = _mean_se(dm)
    z_budgets = family_z(len(budgets))
    family = f"3 SE family-wise over {len(budgets)} budgets"
    rows += [
        _row("marketing", "touches bought follow Hill saturation on adstock",
             "Σ_m N·h(adstock_m / (cost·N))", f"max |z| {np.abs(zt).max():.2f} over "
             f"{len(budgets)} budgets", f"≤ {z_budgets:.2f} SE each (Poisson; {family})",
             bool(np.all(np.abs(zt) <= z_budgets)), 0.0, float(np.abs(zt).max())),
        _row("marketing", f"aware share after {m} months vs expectation",
             "1 − Π_days (1 − a(1 − e^(−reach/30N)))", f"max |z| {np.abs(z).max():.2f} over "
             f"{len(budgets)} budgets", f"≤ {z_budgets:.2f} SE each ({family})",
             bool(np.all(np.abs(z) <= z_budgets)), 0.0, float(np.abs(z).max())),
        _row("marketing", "awareness gained grows with spend (each doubling)",
             "every increment > 0", f"smallest increment {g_mean.min():+.4f} "
             f"(SE {g_se[np.argmin(g_mean)]:.4f})", f"> {Z:g} SE (paired)",
             bool(np.all(g_mean > Z * g_se)), None, float(g_mean.min())),
        _row("marketing", "diminishing returns: awareness per extra $ falls at each doubling",
             "every step < the one before", "per $1k/month: "
             + ", ".join(f"{v:.4f}" for v in marginal.mean(axis=0)),
             f"each fall > {Z:g} SE (paired)", bool(np.all(-dm_mean > Z * dm_se)), None,
             float((-dm_mean / dm_se).min())),
    ]
    data = {
        "adstock": pd.DataFrame({"month": months_k, "impulse": impulse,
                                 "impulse_expected": impulse_expected, "constant": constant,
                                 "constant_expected": constant_expected}),
        "spend": pd.DataFrame({"monthly_budget": budgets, "aware_mean": mean, "aware_se": se,
                               "aware_expected": exp_aware, "touches_mean": touches.mean(axis=0),
                               "touches_expected": exp_touches,
                               "marginal_per_1k": marginal.mean(axis=0)}),
    }
    grid = np.linspace(0, budgets[-1] * 1.05, 60)
    data["spend_curve"] = pd.DataFrame({"monthly_budget": grid, "aware_expected": [
        expected_awareness(b, n, m, prog["cost_per_reach"], prog["carryover"], prog["saturation"],
                           prog["saturation_slope"], prog["awareness"])[0] if b > 0 else 0.0
        for b in grid]})
    return CheckResult("marketing", "Marketing response",
                       "geometric adstock and Hill saturation (PyMC-Marketing, Meridian, Robyn)",
                       rows, data, {**cfg, "seeds": seeds, "adstock": ADSTOCK, "program": prog,
                                    "budgets": budgets.tolist()})


def plot_adstock(data: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Adstock read from the model (points) against the geometric formulas (lines)."""
    ax = ax or Figure().subplots()
    ax.plot(data["month"], data["impulse_expected"], color="#1f77b4", label="impulse: x·θ^(m−1)")
    ax.plot(data["month"], data["impulse"], "o", color="#1f77b4", ms=4, label="impulse, model")
    ax.plot(data["month"], data["constant_expected"], color="#d62728",
            label="constant: x(1 − θ^m)/(1 − θ)")
    ax.plot(data["month"], data["constant"], "s", color="#d62728", ms=4, label="constant, model")
    ax.set(xlabel="Month", ylabel="Effective spend (adstock, $)", title="Carry-over")
    ax.legend(fontsize=8)
    return ax


def plot_spend_response(points: pd.DataFrame, curve: pd.DataFrame, *,
                        ax: Axes | None = None) -> Axes:
    """Aware share against monthly budget: model (±3 SE) and the expected curve."""
    ax = ax or Figure().subplots()
    ax.plot(curve["monthly_budget"], curve["aware_expected"], color="black", label="expected")
    ax.errorbar(points["monthly_budget"], points["aware_mean"], yerr=Z * points["aware_se"],
                fmt="o", color="#1f77b4", label="model (±3 SE)")
    ax.set(xlabel="Monthly budget ($)", ylabel="Share aware at the end", ylim=(0, None),
           title="Awareness vs spend")
    ax.legend(fontsize=8)
    return ax


def _draw_marketing(result: CheckResult) -> Figure:
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    plot_adstock(result.data["adstock"], ax=left)
    plot_spend_response(result.data["spend"], result.data["spend_curve"], ax=right)
    return fig


# =========================================================================== 5. Alignment


ALIGNMENT_SIZES = {
    "full": {"scenario": "siloed", "prospects": None, "months": None, "reps": 8,
             "feedback_reps": 16, "cold_start": True},
    "ci": {"scenario": "siloed", "prospects": None, "months": 12, "reps": 3,
           "feedback_reps": 8, "cold_start": False},
}
# Feedback learns from the bookings per lead of the last FEEDBACK_MONTHS (a trailing window,
# gtmsim/model.py), so its effect is judged once it has something to learn from: the lever is
# switched on after a run-in of two windows (the first is the model's cold start, the second
# fills the window with the run's own bookings) and its effect is read over the next months.
# Until the switch both arms are the same run (common random numbers): the treated arm is a
# copy of the control model taken at the switch, so the difference is the lever's alone.
FEEDBACK_WARMUP_MONTHS = 2 * FEEDBACK_MONTHS
FEEDBACK_OBSERVED_MONTHS = 3  # a quarter: targeting follows the weights within the month
# Reported, not judged: feedback from day 1 as the presets switch it on (leads after day 90,
# the original reading) and its targeting weights before the slowest segment's first closes.
FEEDBACK_FROM_DAY = 90


@dataclass(frozen=True)
class LeverTest:
    arm: str  # which treated arm (a lever, or a variant of one)
    lever: str
    metric: str
    direction: int  # +1: the metric should go up; −1: down
    label: str
    short: str  # for the chart
    judged: bool = True


LEVER_TESTS = (
    LeverTest("sla_days", "sla_days", "response_days", -1, "mean days to first response",
              "days to first response"),
    LeverTest("feedback_steady", "feedback", "best_segment_share", +1,
              "share of leads from the best-converting segment", "share of leads"),
    LeverTest("feedback", "feedback", "best_segment_share", +1,
              "share of leads from the best-converting segment", "share of leads", judged=False),
    LeverTest("enablement", "enablement", "win_chance", +1,
              "win rate (expected: mean win chance of decided deals)", "expected win rate"),
    LeverTest("lead_threshold", "lead_threshold", "lead_to_opportunity", +1,
              "lead → opportunity rate", "lead → opportunity"),
    LeverTest("lead_threshold", "lead_threshold", "leads", -1, "new leads", "new leads"),
)


def _run_on(model: GTMModel, months: int, weights: list[np.ndarray]) -> None:
    """Run `months` more months (as `simulate` does), noting each month's feedback weights."""
    if months > 0:
        model.run(months, on_month=lambda *_: weights.append(model.segment_weights.copy()))


def _fork(model: GTMModel, timeline: Sequence[Mapping[str, Any]]) -> GTMModel:
    """A copy of a running model with more timeline entries (for the months still to come).

    Arms that differ only from some month on are the same run until then (common random
    numbers), so the copy continues exactly as a fresh run with those entries in its timeline
    would (the tests check this), at the cost of the months left instead of the whole run.
    """
    month = model.day // DAYS_PER_MONTH + 1
    entries = [dict(e) for e in timeline]
    if any(e["month"] < month for e in entries):
        raise ValueError(f"fork at month {month}: timeline entries must not be in the past")
    twin = copy.deepcopy(model)
    later = [c.model_dump() for c in model.config.timeline if c.month >= month]
    twin.config = with_changes(model.config, {"timeline": sorted(
        [*later, *entries], key=lambda c: c["month"])}, "validation fork")
    return twin


def _alignment_metrics(model: GTMModel, weights: Sequence[np.ndarray],
                       horizon: int) -> dict[str, Any]:
    """A lever arm's metrics over months 1..horizon, its leads by segment and month, and its
    expected bookings by segment over all the months run."""
    end = horizon * DAYS_PER_MONTH
    monthly = model.monthly().iloc[:horizon]
    leads = model.log.frame("leads")
    deals = model.log.frame("deals")
    resp = model.log.frame("responses")
    segs = list(model.prospects.segment_names)
    by_month = np.zeros((int(model.day // DAYS_PER_MONTH), len(segs)))
    if len(leads):
        np.add.at(by_month, (leads["day"].to_numpy() // DAYS_PER_MONTH,
                             leads["segment"].cat.codes.to_numpy()), 1)
    if len(deals) == 0:
        deals = pd.DataFrame({"day": [], "segment": pd.Categorical([], categories=segs),
                              "won": [], "value": [], "win_chance": []})
    expected = np.bincount(deals["segment"].cat.codes, weights=deals["win_chance"] * deals["value"],
                           minlength=len(segs))
    deals = deals[deals["day"] < end]
    resp = resp[resp["day"] < end] if len(resp) else pd.DataFrame({"waited_days": []})
    return {
        "response_days": float(resp["waited_days"].mean()) if len(resp) else math.nan,
        "win_rate": float(deals["won"].mean()) if len(deals) else math.nan,
        "win_chance": float(deals["win_chance"].mean()) if len(deals) else math.nan,
        "lead_to_opportunity": float(monthly["new_opportunities"].sum()
                                     / max(monthly["new_leads"].sum(), 1)),
        "leads": float(monthly["new_leads"].sum()),
        "leads_by_month": by_month,  # all months run, not only the horizon
        "expected_bookings_by_segment": expected,
        "weights": np.array(weights),
        "segments": segs,
    }


def _segment_share(row: Mapping[str, Any], segment: int, first: int, last: int) -> float:
    """Share of the leads created in months first..last (1-based) from one segment."""
    leads = row["leads_by_month"][first - 1:last]
    return float(leads[:, segment].sum() / max(leads.sum(), 1))


def check_alignment(*, size: Size = "full", seed: int = 0, scenario: str | None = None,
                    prospects: int | None = None, months: int | None = None,
                    reps: int | None = None, feedback_reps: int | None = None,
                    cold_start: bool | None = None) -> CheckResult:
    """Each lever, switched on alone from the siloed preset, moves its own metric the right way.

    The lever takes its value in the `aligned` preset; arms share replication seeds.
    Feedback is judged in steady state (switched on after two feedback windows of history)
    over `feedback_reps` replications; with `cold_start` (full size) it is also reported from
    day 1, as the presets switch it on.
    """
    cfg = _settings(size, ALIGNMENT_SIZES, {"scenario": scenario, "prospects": prospects,
                                                "months": months, "reps": reps,
                                                "feedback_reps": feedback_reps,
                                                "cold_start": cold_start})
    overrides = {k: v for k, v in (("market.prospects", cfg["prospects"]),) if v is not None}
    base = load_scenario(cfg["scenario"], overrides)
    horizon = int(cfg["months"] or base.months)
    n_reps, n_fb = cfg["reps"], cfg["feedback_reps"]
    if horizon * DAYS_PER_MONTH <= FEEDBACK_FROM_DAY or min(n_reps, n_fb) < 2:
        raise ValidationError(f"alignment: need months > {FEEDBACK_FROM_DAY // DAYS_PER_MONTH} "
                              "and reps, feedback_reps ≥ 2")
    on = PRESETS["aligned"]
    switch = FEEDBACK_WARMUP_MONTHS + 1
    steady = (switch, FEEDBACK_WARMUP_MONTHS + FEEDBACK_OBSERVED_MONTHS)
    seeds = _seeds(seed, max(n_reps, n_fb))
    results: dict[str, list[dict[str, Any]]] = {"control": [], "feedback_steady": []}
    for i, s in enumerate(seeds):
        model, weights = GTMModel(base, seed=s), []
        run_to = horizon if i < n_reps else 0
        if i < n_fb:
            _run_on(model, FEEDBACK_WARMUP_MONTHS, weights)
            twin = _fork(model, [{"month": switch, "set": {"alignment.feedback": on.feedback}}])
            twin_weights = list(weights)
            _run_on(twin, FEEDBACK_OBSERVED_MONTHS, twin_weights)
            results["feedback_steady"].append(_alignment_metrics(twin, twin_weights, horizon))
            run_to = max(run_to, steady[1])
        _run_on(model, run_to - len(weights), weights)
        results["control"].append(_alignment_metrics(model, weights, horizon))
    arms = {"sla_days": {"alignment.sla_days": on.sla_days},
            "feedback": {"alignment.feedback": on.feedback},
            "enablement": {"alignment.enablement": on.enablement},
            "lead_threshold": {"alignment.lead_threshold": on.lead_threshold}}
    if not cfg["cold_start"]:
        del arms["feedback"]
    for arm, extra in arms.items():
        sc = load_scenario(cfg["scenario"], {**overrides, **extra})
        results[arm] = []
        for s in seeds[:n_reps]:
            model, weights = GTMModel(sc, seed=s), []
            _run_on(model, horizon, weights)
            results[arm].append(_alignment_metrics(model, weights, horizon))
    control = results["control"]
    segs = control[0]["segments"]
    # The best-converting segment is the one the feedback signal favours: the most bookings
    # per lead, pooled over the control replications and all the months they ran (at least
    # the warm-up, so that the slowest segment's deals have closed). Bookings are expected
    # (win chance × value of each decided deal), which the realised bookings scatter around.
    leads_pooled = sum(c["leads_by_month"].sum(axis=0) for c in control)
    per_lead = sum(c["expected_bookings_by_segment"] for c in control) / np.maximum(leads_pooled, 1)
    best = int(np.argmax(per_lead))
    first_day = (FEEDBACK_FROM_DAY // DAYS_PER_MONTH + 1, horizon)
    rows, table = [], []
    for t in LEVER_TESTS:
        if t.arm not in results:
            continue
        treated = results[t.arm]
        paired = control[:len(treated)]
        value = getattr(on, t.lever)
        if t.metric == "best_segment_share":
            first, last = steady if t.arm == "feedback_steady" else first_day
            c = np.array([_segment_share(r, best, first, last) for r in paired])
            v = np.array([_segment_share(r, best, first, last) for r in treated])
            when = (f"switched on in month {switch} (after {FEEDBACK_WARMUP_MONTHS} months of "
                    "history)" if t.arm == "feedback_steady" else "from day 1 (as the presets)")
            label = f"{t.lever} = {value} {when}: {t.label} ({segs[best]}), months {first}–{last}"
            short = (f"{t.lever} = {value} "
                     f"{f'from month {switch}' if t.arm == 'feedback_steady' else 'from day 1'}: "
                     f"{t.short} from {segs[best]}, months {first}–{last}")
        else:
            c = np.array([r[t.metric] for r in paired])
            v = np.array([r[t.metric] for r in treated])
            label = f"{t.lever} = {value}: {t.label}"
            short = f"{t.lever} = {value}: {t.short}"
        diff, se = _paired(v, c)
        ok = bool(t.direction * diff > Z * se)
        word = "up" if t.direction > 0 else "down"
        rel = diff / c.mean() if c.mean() else float("nan")
        observed = (f"{c.mean():.4g} → {v.mean():.4g} (Δ {diff:+.4g} ± {se:.2g}, {rel:+.1%}; "
                    f"{len(v)} replications)")
        if t.metric == "win_chance":
            realised_c = np.mean([r["win_rate"] for r in paired])
            realised_v = np.mean([r["win_rate"] for r in treated])
            observed += f"; realised wins ÷ decided {realised_c:.3f} → {realised_v:.3f}"
        tolerance = f"Δ {word}, |Δ| > {Z:g} SE (paired)"
        if not t.judged:
            tolerance = "reported, not judged (see docs/validation.md: a weak, slow start)"
        rows.append(_row("alignment", label, word, observed, tolerance,
                         ok if t.judged else None, None, diff))
        table.append({"arm": t.arm, "lever": t.lever, "value": value, "metric": t.metric,
                      "label": short, "direction": t.direction, "control": c.mean(),
                      "treated": v.mean(), "diff": diff, "se": se, "relative": rel,
                      "passed": ok, "judged": t.judged})
    # Why the day-1 reading is weak: until the slowest segment's first deals close, the
    # window holds its leads but none of its bookings, and feedback steers away from it.
    lag = (2, 1 + math.ceil(max(s.cycle_days for s in base.market.segments.values())
                            / DAYS_PER_MONTH))
    if "feedback" in results:
        weight = np.array([r["weights"][lag[0] - 1:lag[1], best] for r in results["feedback"]])
        c = np.array([_segment_share(r, best, *lag) for r in control[:n_reps]])
        v = np.array([_segment_share(r, best, *lag) for r in results["feedback"]])
        diff, se = _paired(v, c)
        rows.insert(3, _row(
            "alignment", f"feedback = {on.feedback} from day 1: targeting weight of "
            f"{segs[best]} and its share of leads, months {lag[0]}–{lag[1]} (before its first "
            "deals close)", "weight 1 (no bookings seen yet)",
            f"mean weight {weight.mean():.2f} (< 1 in {(weight < 1).mean():.0%} of "
            f"run-months); share {c.mean():.4g} → {v.mean():.4g} (Δ {diff:+.4g} ± {se:.2g})",
            "reported, not judged (the cold start)", None, 1.0, float(weight.mean())))
    by_month = []
    for arm in [a for a in ("control", "feedback", "feedback_steady") if a in results]:
        n = min(len(r["leads_by_month"]) for r in results[arm])
        leads = np.array([r["leads_by_month"][:n] for r in results[arm]])
        weights = np.array([r["weights"][:n, best] for r in results[arm]])
        share = leads[:, :, best] / np.maximum(leads.sum(axis=2), 1)
        by_month.append(pd.DataFrame({"arm": arm, "month": np.arange(1, n + 1),
                                      "best_segment_share": share.mean(axis=0),
                                      "best_segment_weight": weights.mean(axis=0),
                                      "replications": len(results[arm])}))
    bpl = pd.DataFrame({"segment": segs, "expected_bookings_per_lead": per_lead,
                        "leads_per_run": leads_pooled / len(control)})
    return CheckResult("alignment", "Alignment levers, one at a time",
                       "Kotler, Rackham & Krishnaswamy (HBR 2006)", rows,
                       {"effects": pd.DataFrame(table), "bookings_per_lead": bpl,
                        "feedback_by_month": pd.concat(by_month, ignore_index=True)},
                       {**cfg, "months": horizon, "seeds": seeds[:n_reps],
                        "feedback_seeds": seeds[:n_fb], "best_segment": segs[best],
                        "feedback_switch_month": switch, "feedback_steady_months": list(steady),
                        "feedback_from_day": FEEDBACK_FROM_DAY, "feedback_lag_months": list(lag),
                        "lever_values": {lv: getattr(on, lv) for lv in
                                         dict.fromkeys(t.lever for t in LEVER_TESTS)}})


def plot_lever_effects(data: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Each lever's effect on its metric, relative to control, with ±3 SE bars."""
    ax = ax or Figure().subplots()
    labels = [f"{r.label}\n(should {'rise' if r.direction > 0 else 'fall'})"
              for r in data.itertuples()]
    y = np.arange(len(data))
    judged = data["judged"] if "judged" in data else pd.Series(True, index=data.index)
    colours = ["#7f7f7f" if not j else "#2ca02c" if ok else "#d62728"
               for ok, j in zip(data["passed"], judged, strict=True)]
    ax.barh(y, data["relative"] * 100, xerr=Z * data["se"] / data["control"].abs() * 100,
            color=colours, alpha=0.8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="Change from the siloed preset (%, ±3 SE)",
           title="Each lever alone: green = right way and > 3 SE; grey = not judged")
    return ax


def plot_feedback_by_month(data: pd.DataFrame, segment: str, switch_month: int, *,
                           ax: Axes | None = None) -> Axes:
    """Share of new leads from the best segment by month, per arm, and the feedback weight."""
    ax = ax or Figure().subplots()
    styles = {"control": ("black", "control (siloed)"),
              "feedback": ("#d62728", "feedback from day 1"),
              "feedback_steady": ("#2ca02c", f"feedback from month {switch_month}")}
    for arm, g in data.groupby("arm", sort=False):
        colour, label = styles.get(str(arm), ("grey", str(arm)))
        # Control last and dashed: until the switch the steady arm is the same run.
        ax.plot(g["month"], g["best_segment_share"], "--" if arm == "control" else "o-", ms=3,
                color=colour, label=label, zorder=3 if arm == "control" else 2)
    ax.axvline(switch_month - 0.5, color="#2ca02c", ls=":", lw=1)
    ax.set(xlabel="Month", ylabel=f"Share of new leads from {segment}", ylim=(0, None),
           title="Feedback: where the leads come from")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def _draw_alignment(result: CheckResult) -> Figure:
    fig = Figure(figsize=(10, 9), layout="constrained")
    left, right = fig.subplots(2, 1, height_ratios=[1.1, 1])
    plot_lever_effects(result.data["effects"], ax=left)
    s = result.settings
    plot_feedback_by_month(result.data["feedback_by_month"], s["best_segment"],
                           s["feedback_switch_month"], ax=right)
    return fig


# =========================================================================== 6. Time to effect


TIMING_SIZES = {
    "full": {"prospects": 200_000, "reps": 10},
    "ci": {"prospects": 200_000, "reps": 4},
}
# Team sizes are per 50,000 prospects: a bigger market gets a proportionally bigger team,
# so that every size tells the same story with less noise.
TIMING = {"months": 15, "program_on": 3, "program_off": 12, "reps_on": 6, "reps_off": 12,
          "team": 6, "added_reps": 20, "team_per_prospects": 50_000, "budget_per_prospect": 0.4}
EARLY_MAX = 0.25  # a marketing effect "only after months": < 25% of its level at months 7–9
PERSIST_MIN = 0.5  # "persisting": ≥ half its last level in the three months after it stops
FAST_MIN = 0.5  # "within weeks": ≥ half the steady effect in the second month
FADE_MAX = 0.25  # "fades": < 25% of the steady effect two to four months after they leave


def timing_scenario(prospects: int, *, program: bool = False, reps: bool = False) -> Scenario:
    """One SMB-like segment (30-day cycles) with inbound from a constant ads program.

    The team has room to spare, so neither effect is hidden behind a full pipeline. The
    treated variants start a content program (or add outbound reps) and stop it later.
    Reps are productive from their first day (`ramp_months = 0`): the check is about how
    fast each channel reaches bookings, not about hiring.
    """
    t = TIMING
    per = prospects / t["team_per_prospects"]
    team, added = max(1, round(t["team"] * per)), max(1, round(t["added_reps"] * per))
    timeline = []
    if program:
        key = "marketing.programs.content.monthly_budget"
        timeline += [{"month": t["program_on"], "set": {key: t["budget_per_prospect"] * prospects}},
                     {"month": t["program_off"], "set": {key: 0}}]
    if reps:
        timeline += [{"month": t["reps_on"], "set": {"sales.reps": team + added}},
                     {"month": t["reps_off"], "set": {"sales.reps": team}}]
    return scenario_from_dict({
        "name": "timing", "months": t["months"],
        "market": {"prospects": prospects, "initial_aware": 0.1, "in_market_share": 0.1,
                   "word_of_mouth": 0.08, "churn_monthly": 0.0, "segments": _one_segment()},
        "marketing": {"programs": {
            "ads": {"channel": "paid_ads", "monthly_budget": 0.2 * prospects, "cost_per_reach": 2.0,
                    "carryover": 0.3, "awareness": 0.5, "trust": 0.03, "hand_raise": 0.05},
            "content": {"channel": "content", "monthly_budget": 0, "cost_per_reach": 2.0,
                        "carryover": 0.7, "awareness": 0.3, "trust": 0.08}}},
        "sales": {"reps": team, "outbound_share": 0.5, "outbound_success": 0.5,
                  "ramp_months": 0},
        "alignment": {"preset": "aligned"},
        "timeline": sorted(timeline, key=lambda c: c["month"]),
    }, source="validation:timing")


def expected_bookings(model: GTMModel, months: int) -> np.ndarray:
    """Bookings each month expected from the deals decided in it: Σ win chance × value.

    A deal is won when a uniform draw falls below its win chance, so given the deals that
    reach a decision, this is the expectation of the month's bookings. It keeps everything
    that moves deals through the funnel and drops only the noise of the last coin flip.
    """
    deals = model.log.frame("deals")
    if len(deals) == 0:
        return np.zeros(months)
    month = deals["day"].to_numpy() // DAYS_PER_MONTH
    return np.bincount(month, weights=deals["win_chance"] * deals["value"], minlength=months)[:months]


def check_timing(*, size: Size = "full", seed: int = 0, prospects: int | None = None,
                 reps: int | None = None) -> CheckResult:
    """Marketing shows in bookings after months and lasts; outbound reps within weeks, then fade."""
    cfg = _settings(size, TIMING_SIZES, {"prospects": prospects, "reps": reps})
    n, t = cfg["prospects"], TIMING
    if cfg["reps"] < 2:
        raise ValidationError(f"timing: reps must be ≥ 2, got {cfg['reps']}")
    seeds = _seeds(seed, cfg["reps"])
    arms = {"control": timing_scenario(n), "program": timing_scenario(n, program=True),
            "reps": timing_scenario(n, reps=True)}
    expected: dict[str, list[np.ndarray]] = {arm: [] for arm in arms}
    realised: dict[str, list[np.ndarray]] = {arm: [] for arm in arms}
    # The treated arms are the control run until their first change, so each is a copy of
    # the control model taken then (see `_fork`): the same runs as from scratch, for less.
    starts = {arm: min(c.month for c in arms[arm].timeline) for arm in ("program", "reps")}
    for s in seeds:
        models = {"control": GTMModel(arms["control"], seed=s)}
        for arm in sorted(starts, key=starts.__getitem__):
            models["control"].run(starts[arm] - 1 - models["control"].day // DAYS_PER_MONTH)
            models[arm] = _fork(models["control"], [c.model_dump() for c in arms[arm].timeline])
        for arm, model in models.items():
            model.run(t["months"] - model.day // DAYS_PER_MONTH)
            expected[arm].append(expected_bookings(model, t["months"]))
            realised[arm].append(model.monthly()["bookings"].to_numpy())
    lift = {arm: np.array(expected[arm]) - np.array(expected["control"])
            for arm in ("program", "reps")}
    lift_realised = {arm: np.array(realised[arm]) - np.array(realised["control"])
                     for arm in ("program", "reps")}

    def months(arm: str, first: int, last: int, *, table: Mapping[str, np.ndarray] = lift
               ) -> np.ndarray:
        """Per replication, the mean lift over calendar months first..last (1-based)."""
        return table[arm][:, first - 1:last].mean(axis=1)

    p0, p1, r0, r1 = t["program_on"], t["program_off"], t["reps_on"], t["reps_off"]
    spans = {
        "prog_early": ("program", p0 + 1, p0 + 1), "prog_late": ("program", p0 + 6, p0 + 8),
        "prog_mid": ("program", p0 + 3, p0 + 5), "prog_last": ("program", p1 - 3, p1 - 1),
        "prog_after": ("program", p1, p1 + 2), "reps_early": ("reps", r0 + 1, r0 + 1),
        "reps_steady": ("reps", r0 + 2, r1 - 1), "reps_after": ("reps", r1 + 1, r1 + 3),
    }
    x = {k: months(*v) for k, v in spans.items()}
    xr = {k: months(*v, table=lift_realised) for k, v in spans.items()}
    rows = []

    def share(label: str, num: str, den: str, expected_text: str, limit: float,
              at_least: bool) -> Criterion:
        value, se = _jackknife_ratio(x[num], x[den])
        value_r, se_r = _jackknife_ratio(xr[num], xr[den])
        ok = value >= limit if at_least else value <= limit
        return _row("timing", label, expected_text,
                    f"{value:.2f} ± {se:.2f} (realised bookings: {value_r:.2f} ± {se_r:.2f})",
                    f"{'≥' if at_least else '≤'} {limit:g}", bool(ok), limit, value)

    rows.append(share("program: bookings lift in its 2nd month ÷ lift in months 7–9",
                      "prog_early", "prog_late", "small: shows only after months", EARLY_MAX,
                      False))
    growth, growth_se = _paired(x["prog_late"], x["prog_mid"])
    growth_r, growth_se_r = _paired(xr["prog_late"], xr["prog_mid"])
    rows.append(_row("timing", "program: lift still growing after 6 months (months 7–9 − 4–6)",
                     "> 0", f"{growth:+,.0f} ± {growth_se:,.0f} $/month (realised: "
                     f"{growth_r:+,.0f} ± {growth_se_r:,.0f})", f"> {Z:g} SE (paired)",
                     bool(growth > Z * growth_se), 0.0, growth))
    rows.append(share("program: lift in the 3 months after it stops ÷ its last 3 months",
                      "prog_after", "prog_last", "persists", PERSIST_MIN, True))
    rows.append(share("outbound reps: lift in their 2nd month ÷ steady lift (months 3–6)",
                      "reps_early", "reps_steady", "large: shows within weeks", FAST_MIN, True))
    rows.append(share("outbound reps: lift 2–4 months after they leave ÷ steady lift",
                      "reps_after", "reps_steady", "small: fades", FADE_MAX, False))
    mean_p, se_p = _mean_se(lift["program"])
    mean_r, se_r = _mean_se(lift["reps"])
    data = pd.DataFrame({"month": np.arange(1, t["months"] + 1),
                         "control_bookings": np.mean(expected["control"], axis=0),
                         "program_lift": mean_p, "program_lift_se": se_p,
                         "reps_lift": mean_r, "reps_lift_se": se_r,
                         "program_lift_realised": lift_realised["program"].mean(axis=0),
                         "reps_lift_realised": lift_realised["reps"].mean(axis=0)})
    return CheckResult("timing", "Time to effect",
                       "Binet & Field (IPA 2013): brand slow and lasting, activation fast; adstock",
                       rows, {"lift": data}, {**cfg, "seeds": seeds, **t,
                                              "bookings": "expected (Σ win chance × value)"})


def plot_lift(data: pd.DataFrame, settings: Mapping[str, Any], *, ax: Axes | None = None) -> Axes:
    """Monthly bookings lift over control (±1.96 SE) of the program and of the added reps."""
    ax = ax or Figure().subplots()
    for col, colour, label, on, off in (
            ("program_lift", "#1f77b4", "content program", "program_on", "program_off"),
            ("reps_lift", "#d62728", "outbound reps", "reps_on", "reps_off")):
        ax.errorbar(data["month"], data[col], yerr=1.96 * data[col + "_se"], fmt="o-", ms=3,
                    color=colour, label=f"{label} (on months {settings[on]}–{settings[off] - 1})")
        if col + "_realised" in data:
            ax.plot(data["month"], data[col + "_realised"], "x", ms=4, color=colour, alpha=0.6)
        ax.axvspan(settings[on] - 0.5, settings[off] - 0.5, color=colour, alpha=0.06)
    ax.axhline(0, color="black", lw=0.8)
    ax.set(xlabel="Month", ylabel="Expected bookings lift over control ($/month)",
           title="How fast each channel reaches bookings (× = realised)")
    ax.legend(fontsize=8)
    return ax


def _draw_timing(result: CheckResult) -> Figure:
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    plot_lift(result.data["lift"], result.settings, ax=fig.subplots())
    return fig


# =========================================================================== 7. Funnel


FUNNEL_SIZES = {"full": {"reps": 8}, "ci": {"reps": 4}}
FUNNEL = {"report_months": 24}
# Published B2B ranges (vendor and consultancy benchmarks, direction only; ramp: The Bridge
# Group's SaaS AE Metrics reports). See docs/validation.md, funnel realism.
LEAD_TO_OPP = (0.13, 0.50)  # MQL → SQL
OPP_TO_WON = (0.15, 0.30)
SMB_CYCLE_DAYS = (7, 84)  # "weeks": one to twelve weeks
ENTERPRISE_CYCLE_DAYS = (180, 360)  # 6–12 months of 30 days
RAMP_MONTHS = (4, 6)  # "~5 months"


def _run_keeping_skills(scenario: Scenario, seed: int) -> tuple[GTMModel, dict[int, float]]:
    """Run through GTMModel, noting every rep's skill (reps who leave drop out of the model)."""
    model = GTMModel(scenario, seed=seed)
    skills: dict[int, float] = {}
    model.run(on_month=lambda *_: skills.update(
        {r: rep.skill for r, rep in model.rep_by_id.items()}))
    return model, skills


def _opportunity_cycles(model: GTMModel, deals: pd.DataFrame) -> pd.DataFrame:
    """Every opportunity opened in the run with its cycle: decided ones from the deals log,
    open ones from the day the lead desk has scheduled their close for."""
    p = model.prospects
    decided = pd.DataFrame({
        "seed": model.seed, "segment": deals["segment"], "opened_day": deals["opened_day"],
        "close_day": deals["day"], "decided": True, "won": deals["won"]}) if len(deals) else None
    open_now = np.flatnonzero(p.stage == OPPORTUNITY)
    close = np.full(p.n, np.inf)
    for day, parts in model.desk.closing.items():
        for idx in parts:
            idx = idx[p.stage_day[idx] <= day]
            close[idx] = np.minimum(close[idx], day)
    if not np.isfinite(close[open_now]).all():
        raise RuntimeError("funnel: an open opportunity has no scheduled close")
    names = list(p.segment_names)
    still_open = pd.DataFrame({
        "seed": model.seed,
        "segment": pd.Categorical.from_codes(p.segment[open_now], categories=names),
        "opened_day": p.stage_day[open_now], "close_day": close[open_now], "decided": False,
        "won": False})
    out = pd.concat([d for d in (decided, still_open) if d is not None], ignore_index=True)
    out["segment"] = pd.Categorical(out["segment"], categories=names)
    return out.assign(cycle_days=out["close_day"] - out["opened_day"])


def check_funnel(*, size: Size = "full", seed: int = 0, scenario: str = "baseline",
                 reps: int | None = None) -> CheckResult:
    """The baseline's conversions and cycle lengths by segment sit in published B2B ranges.

    Conversions are counted over the baseline's 24 months. Cycles are measured on every
    opportunity opened in those months: decided ones from the deals log, and those still
    open at the end from the day their close is scheduled for (a deal's cycle is fixed when
    it opens), so long enterprise deals are not cut off by the end of the run.

    Rates are judged on their expected values: a qualification (or a win) is a draw against
    a chance the model knows (the decay law's chance for each response, `win_chance` for
    each deal), so Σ chance estimates the same rate as the count of successes with only the
    draw's noise removed. The realised rates are shown alongside.
    """
    cfg = _settings(size, FUNNEL_SIZES, {"reps": reps})
    if cfg["reps"] < 2:
        raise ValidationError(f"funnel: reps must be ≥ 2, got {cfg['reps']}")
    f = FUNNEL
    sc = load_scenario(scenario, {"months": f["report_months"]})
    segs = list(sc.market.segments)
    seeds = _seeds(seed, cfg["reps"])
    horizon = f["report_months"] * DAYS_PER_MONTH
    totals = []
    deals_all = []

    def by_segment(values: pd.Series, weights: pd.Series | None = None) -> np.ndarray:
        codes = values.cat.codes.to_numpy() if hasattr(values, "cat") else values.to_numpy()
        return np.bincount(codes, weights=None if weights is None else weights.to_numpy(dtype=float),
                           minlength=len(segs))

    for s in seeds:
        model, skills = _run_keeping_skills(sc, s)
        deals = model.log.frame("deals").assign(seed=s)
        deals_all.append(_opportunity_cycles(model, deals))
        leads = model.log.frame("leads")
        resp = _responses(model, skills)
        resp = resp[resp["day"] < horizon]
        # Opportunities opened in the horizon: deals decided by the end of the run plus
        # those still open then. Expected: each response's qualification replaced by its chance.
        p = model.prospects
        open_now = (p.stage == OPPORTUNITY) & (p.stage_day < horizon)
        opened = (by_segment(deals.loc[deals["opened_day"] < horizon, "segment"])
                  + np.bincount(p.segment[open_now], minlength=len(segs)))
        opened_expected = (opened - by_segment(resp["segment"], resp["qualified"])
                           + by_segment(resp["segment"], resp["chance"]))
        decided = deals[deals["day"] < horizon]
        row: dict[str, Any] = {
            "seed": s, "qualified": int(resp["qualified"].sum()),
            "qualified_expected": float(resp["chance"].sum()),
            "qualified_var": float((resp["chance"] * (1 - resp["chance"])).sum()),
            "won_var": float((decided["win_chance"] * (1 - decided["win_chance"])).sum())}
        for k, g in enumerate(segs):
            row[f"leads_{g}"] = by_segment(leads.loc[leads["day"] < horizon, "segment"])[k]
            row[f"opps_{g}"] = opened[k]
            row[f"opps_expected_{g}"] = opened_expected[k]
            row[f"decided_{g}"] = by_segment(decided["segment"])[k]
            row[f"won_{g}"] = by_segment(decided["segment"], decided["won"])[k]
            row[f"won_expected_{g}"] = by_segment(decided["segment"], decided["win_chance"])[k]
        for col in ("leads", "opps", "opps_expected", "decided", "won", "won_expected"):
            row[col] = sum(row[f"{col}_{g}"] for g in segs)
        totals.append(row)
    tot = pd.DataFrame(totals)
    opportunities = pd.concat(deals_all, ignore_index=True)
    cycles = opportunities.groupby("segment", observed=False)["cycle_days"].agg(
        ["size", "mean", "sem", "median"])
    rows = []

    def within(label: str, value: float, band: tuple[float, float], detail: str = "",
               fmt: str = "{:.1%}") -> None:
        lo, hi = band
        rows.append(_row("funnel", label, f"{fmt.format(lo)}–{fmt.format(hi)}",
                         fmt.format(value) + (f" {detail}" if detail else ""), "inside the range",
                         bool(lo <= value <= hi), (lo + hi) / 2, value))

    def rate(label: str, num: str, den: str, band: tuple[float, float], suffix: str = "") -> None:
        """Judge Σ expected ÷ Σ den (ratio of means over replications, jackknife SE)."""
        value, se = _jackknife_ratio(tot[f"{num}_expected{suffix}"].to_numpy(),
                                     tot[f"{den}{suffix}"].to_numpy())
        real, real_se = _jackknife_ratio(tot[f"{num}{suffix}"].to_numpy(),
                                         tot[f"{den}{suffix}"].to_numpy())
        within(label, value, band, f"± {se:.1%} (realised {real:.1%} ± {real_se:.1%})")

    rate("lead → opportunity (MQL → SQL), all segments", "opps", "leads", LEAD_TO_OPP)
    rate("opportunity → won, all segments", "won", "decided", OPP_TO_WON)
    for g in segs:
        rate(f"lead → opportunity, {g}", "opps", "leads", LEAD_TO_OPP, f"_{g}")
        rate(f"opportunity → won, {g}", "won", "decided", OPP_TO_WON, f"_{g}")
    # The expected rates stand in for the realised ones only if the chances are the ones the
    # model drew against: realised counts must agree with Σ chance within Bernoulli noise.
    z_pair = family_z(2)
    for label, num, var in (("qualified responses", "qualified", "qualified_var"),
                            ("won deals", "won", "won_var")):
        real, exp_, sd = tot[num].sum(), tot[f"{num}_expected"].sum(), math.sqrt(tot[var].sum())
        z = (real - exp_) / sd if sd > 0 else 0.0
        rows.append(_row("funnel", f"{label}: realised count vs Σ chance (the expected rates' "
                         "premise)", f"{exp_:,.1f} ± {sd:.1f}", f"{real:,.0f} (z {z:+.2f})",
                         f"|z| ≤ {z_pair:.2f} (Bernoulli; 3 SE family-wise over 2 rows)",
                         bool(abs(z) <= z_pair), exp_, float(real)))
    first, last = segs[0], segs[-1]
    c = cycles.loc[first]
    within(f"mean sales cycle, {first} (weeks)", c["mean"], SMB_CYCLE_DAYS,
           f"± {c['sem']:.0f} (median {c['median']:.0f}, {int(c['size'])} deals)",
           fmt="{:.0f} days")
    c = cycles.loc[last]
    within(f"mean sales cycle, {last} (6–12 months)", c["mean"], ENTERPRISE_CYCLE_DAYS,
           f"± {c['sem']:.0f} (median {c['median']:.0f}, {int(c['size'])} deals)",
           fmt="{:.0f} days")
    means = cycles["mean"].to_numpy()
    rows.append(_row("funnel", "cycles lengthen from the smallest segment to the largest",
                     " < ".join(segs), " < ".join(f"{x:.0f}" for x in means) + " days",
                     "strictly increasing", bool(np.all(np.diff(means) > 0)), None, None))
    ramp = sc.sales.ramp_months
    rows.append(_row("funnel", "rep ramp (a scenario input, shown for completeness)", "~5 months",
                     f"{ramp:g} months", f"{RAMP_MONTHS[0]}–{RAMP_MONTHS[1]} months",
                     bool(RAMP_MONTHS[0] <= ramp <= RAMP_MONTHS[1]), 5.0, ramp))
    return CheckResult("funnel", "Funnel realism", "published B2B benchmarks (direction only)",
                       rows, {"totals": tot, "cycles": cycles.reset_index(),
                              "deals": opportunities},
                       {**cfg, "scenario": scenario, "seeds": seeds, **f})


def plot_cycles(deals: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Distribution of cycle lengths by segment with the published ranges shaded."""
    ax = ax or Figure().subplots()
    segs = list(deals["segment"].cat.categories) if hasattr(deals["segment"], "cat") else sorted(
        deals["segment"].unique())
    values = [deals.loc[deals["segment"] == g, "cycle_days"].to_numpy() for g in segs]
    ax.boxplot(values, vert=False, showmeans=True)
    ax.set_yticks(np.arange(1, len(segs) + 1), segs)
    ax.axvspan(*SMB_CYCLE_DAYS, ymin=0, ymax=1 / len(segs), color="#2ca02c", alpha=0.15)
    ax.axvspan(*ENTERPRISE_CYCLE_DAYS, ymin=1 - 1 / len(segs), ymax=1, color="#2ca02c", alpha=0.15)
    ax.set(xlabel="Sales cycle (days), opportunities opened in months 1–24",
           title="Cycles vs B2B ranges")
    return ax


def plot_conversions(rows: Sequence[Criterion], *, ax: Axes | None = None) -> Axes:
    """Conversion rates (points) against the published ranges (bars)."""
    ax = ax or Figure().subplots()
    conv = [r for r in rows if "→" in r.criterion]
    y = np.arange(len(conv))
    for i, r in enumerate(conv):
        lo, hi = LEAD_TO_OPP if "lead →" in r.criterion else OPP_TO_WON
        ax.plot([lo, hi], [i, i], color="#2ca02c", lw=6, alpha=0.3)
        ax.plot(r.observed_value, i, "o", color="#1f77b4" if r.status == "pass" else "#d62728")
    ax.set_yticks(y, [r.criterion for r in conv], fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="Rate (range shaded)", title="Conversions vs B2B ranges")
    return ax


def _draw_funnel(result: CheckResult) -> Figure:
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    plot_conversions(result.criteria, ax=left)
    plot_cycles(result.data["deals"], ax=right)
    return fig


# =========================================================================== registry


@dataclass(frozen=True)
class Check:
    name: str
    summary: str
    run: Callable[..., CheckResult]
    draw: Callable[[CheckResult], Figure]
    sizes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


CHECKS: dict[str, Check] = {c.name: c for c in (
    Check("bass", "awareness follows the Bass curve; a sparse network is no faster",
          check_bass, _draw_bass, BASS_SIZES),
    Check("capacity", "wins capped by capacity and cycle length (Little's law)",
          check_capacity, _draw_capacity, CAPACITY_SIZES),
    Check("decay", "qualification falls with response time as the decay law says",
          check_decay, _draw_decay, DECAY_SIZES),
    Check("marketing", "adstock is geometric; awareness grows with spend, saturating",
          check_marketing, _draw_marketing, MARKETING_SIZES),
    Check("alignment", "each lever alone moves its own metric the right way",
          check_alignment, _draw_alignment, ALIGNMENT_SIZES),
    Check("timing", "marketing pays after months and lasts; outbound reps within weeks",
          check_timing, _draw_timing, TIMING_SIZES),
    Check("funnel", "the baseline's conversions and cycles sit in B2B ranges",
          check_funnel, _draw_funnel, FUNNEL_SIZES),
)}


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
        r.figure().savefig(path, dpi=110)
        written.append(path)
    return written


__all__ = [
    "CHECKS",
    "SIZES",
    "CheckResult",
    "Criterion",
    "ValidationError",
    "bass_closed_form",
    "bass_recursion",
    "bass_scenario",
    "check_names",
    "expected_awareness",
    "expected_bookings",
    "family_z",
    "results_table",
    "run_checks",
    "t_bound",
    "write_results",
]
