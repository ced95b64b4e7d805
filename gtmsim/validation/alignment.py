"""The `alignment` check: each lever switched on alone moves its own mechanism's metric
the right way.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gtmsim.alignment import PRESETS
from gtmsim.marketing import DAYS_PER_MONTH
from gtmsim.model import FEEDBACK_MONTHS, GTMModel
from gtmsim.scenario import load_scenario, with_changes
from gtmsim.validation.core import (
    Check,
    CheckResult,
    Size,
    ValidationError,
    Z,
    _paired,
    _row,
    _seeds,
    _settings,
)


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


CHECK = Check("alignment", "each lever alone moves its own metric the right way",
              check_alignment, _draw_alignment, ALIGNMENT_SIZES)
