"""The `timing` check: marketing shows in bookings after months and persists; outbound reps
show within weeks and fade when they leave.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gtmsim.marketing import DAYS_PER_MONTH
from gtmsim.model import GTMModel
from gtmsim.scenario import Scenario, scenario_from_dict
from gtmsim.validation.alignment import _fork
from gtmsim.validation.core import (
    Check,
    CheckResult,
    Criterion,
    Size,
    ValidationError,
    Z,
    _jackknife_ratio,
    _mean_se,
    _one_segment,
    _paired,
    _row,
    _seeds,
    _settings,
)


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


def lift_table(control: list[np.ndarray], lift: Mapping[str, np.ndarray],
               realised: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The chart's table: per month, control's expected bookings and each arm's mean lift
    (± SE over replications), expected and realised, for the arms `program` and `reps`."""
    mean_p, se_p = _mean_se(lift["program"])
    mean_r, se_r = _mean_se(lift["reps"])
    return pd.DataFrame({"month": np.arange(1, len(mean_p) + 1),
                         "control_bookings": np.mean(control, axis=0),
                         "program_lift": mean_p, "program_lift_se": se_p,
                         "reps_lift": mean_r, "reps_lift_se": se_r,
                         "program_lift_realised": realised["program"].mean(axis=0),
                         "reps_lift_realised": realised["reps"].mean(axis=0)})


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
    data = lift_table(expected["control"], lift, lift_realised)
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


CHECK = Check("timing", "marketing pays after months and lasts; outbound reps within weeks",
              check_timing, _draw_timing, TIMING_SIZES)
