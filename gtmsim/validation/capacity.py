"""The `capacity` check: with leads far above sales capacity, wins settle at the
Little's-law rate.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gtmsim.marketing import DAYS_PER_MONTH
from gtmsim.model import simulate
from gtmsim.sales import win_probability
from gtmsim.scenario import Scenario, scenario_from_dict
from gtmsim.validation.core import (
    PLAIN_DESK,
    Check,
    CheckResult,
    Criterion,
    Size,
    ValidationError,
    Z,
    _jackknife_ratio,
    _mean_se,
    _one_segment,
    _row,
    _seeds,
    _settings,
)


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
    and the newest lead answered first, with follow-ups that reach every lead the first
    response missed, so that qualification is not lost to waiting.
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
                  "skill_spread": 0.0, "ramp_months": 0, "follow_up_reach": 1.0},
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


CHECK = Check("capacity", "wins capped by capacity and cycle length (Little's law)",
              check_capacity, _draw_capacity, CAPACITY_SIZES)
