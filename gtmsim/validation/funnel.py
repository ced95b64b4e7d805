"""The `funnel` check: the baseline's conversions and cycle lengths sit in published B2B
ranges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gtmsim.marketing import DAYS_PER_MONTH
from gtmsim.model import GTMModel
from gtmsim.prospects import OPPORTUNITY
from gtmsim.scenario import Scenario, load_scenario
from gtmsim.validation.core import (
    Check,
    CheckResult,
    Criterion,
    Size,
    ValidationError,
    _jackknife_ratio,
    _row,
    _seeds,
    _settings,
    family_z,
)


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
        resp = model.log.frame("responses")
        if not len(resp):
            resp = pd.DataFrame(columns=["day", "segment", "qualified", "chance"])
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


CHECK = Check("funnel", "the baseline's conversions and cycles sit in B2B ranges",
              check_funnel, _draw_funnel, FUNNEL_SIZES)
