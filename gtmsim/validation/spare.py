"""The `spare_capacity` check: in a shipped scenario whose team has room, added brand spend
shows in bookings only after months and keeps building, an added ramped rep within weeks.

`timing` shows the same on a one-segment market built for the purpose; this check runs the
shipped `spare_capacity` scenario as users get it, with its three segments and its
enterprise cycles, so that the time to effect holds in the family users start from.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from gtmsim.marketing import DAYS_PER_MONTH
from gtmsim.model import GTMModel
from gtmsim.scenario import Scenario, load_scenario
from gtmsim.validation.alignment import _fork
from gtmsim.validation.core import (
    Check,
    CheckResult,
    Size,
    ValidationError,
    Z,
    _jackknife_ratio,
    _paired,
    _row,
    _seeds,
    _settings,
)
from gtmsim.validation.timing import expected_bookings, lift_table, plot_lift

SPARE_SIZES = {"full": {"reps": 48}, "ci": {"reps": 24}}
# The changes start in month 3 (two months of the scenario as shipped first), and the check
# reads 15 months: long enough to see whether the brand effect still grows in its second
# half-year.
SPARE = {"scenario": "spare_capacity", "months": 15, "change": 3,
         "content_budget": 45_000, "added_reps": 10}
BRAND_EARLY_MAX = 0.25  # "only after months": months 2–4 of the spend < 25% of months 11–13
REP_FAST_MIN = 0.5  # "within weeks": the reps' 2nd month ≥ half their lift over months 2–7


def spare_scenario(months: int) -> Scenario:
    """The shipped `spare_capacity` scenario over `months`."""
    return load_scenario(SPARE["scenario"], {"months": months})


def arm_changes(scenario: Scenario) -> dict[str, list[dict]]:
    """The two treated arms as timeline entries from the change month: more content budget
    (brand: awareness and trust, carry-over 0.7), and more reps who are productive from
    their first day (`sales.ramp_months` 0: the check is about the channel, not hiring)."""
    t = SPARE
    return {
        "program": [{"month": t["change"], "set": {
            "marketing.programs.content.monthly_budget": t["content_budget"]}}],
        "reps": [{"month": t["change"], "set": {
            "sales.reps": scenario.sales.reps + t["added_reps"], "sales.ramp_months": 0}}],
    }


def check_spare_capacity(*, size: Size = "full", seed: int = 0,
                         reps: int | None = None) -> CheckResult:
    """Brand spend shows after months and builds; ramped reps show within weeks."""
    cfg = _settings(size, SPARE_SIZES, {"reps": reps})
    t = SPARE
    if cfg["reps"] < 2:
        raise ValidationError(f"spare_capacity: reps must be ≥ 2, got {cfg['reps']}")
    seeds = _seeds(seed, cfg["reps"])
    scenario = spare_scenario(t["months"])
    changes = arm_changes(scenario)
    base_budget = scenario.marketing.programs["content"].monthly_budget
    expected: dict[str, list[np.ndarray]] = {arm: [] for arm in ("control", *changes)}
    realised: dict[str, list[np.ndarray]] = {arm: [] for arm in expected}
    for s in seeds:
        control = GTMModel(scenario, seed=s)
        control.run(t["change"] - 1)
        # Both arms are the control run until the change: copies taken then (see `_fork`).
        models = {"control": control, **{arm: _fork(control, c) for arm, c in changes.items()}}
        for arm, model in models.items():
            model.run(t["months"] - model.day // DAYS_PER_MONTH)
            expected[arm].append(expected_bookings(model, t["months"]))
            realised[arm].append(model.monthly()["bookings"].to_numpy())
    lift = {arm: np.array(expected[arm]) - np.array(expected["control"]) for arm in changes}
    lift_r = {arm: np.array(realised[arm]) - np.array(realised["control"]) for arm in changes}

    def span(table, arm: str, first: int, last: int) -> np.ndarray:
        """Per replication, the mean lift over months first..last of the change (1-based)."""
        c = t["change"]
        return table[arm][:, c + first - 2:c + last - 1].mean(axis=1)

    def both(arm: str, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        return span(lift, arm, first, last), span(lift_r, arm, first, last)

    def ratio_row(label: str, arm: str, num: tuple[int, int], den: tuple[int, int],
                  expected_text: str, limit: float, at_least: bool):
        (n, n_r), (d, d_r) = both(arm, *num), both(arm, *den)
        value, se = _jackknife_ratio(n, d)
        value_r, se_r = _jackknife_ratio(n_r, d_r)
        ok = value >= limit if at_least else value <= limit
        return _row("spare_capacity", label, expected_text,
                    f"{value:.2f} ± {se:.2f} (realised bookings: {value_r:.2f} ± {se_r:.2f})",
                    f"{'≥' if at_least else '≤'} {limit:g}", bool(ok), limit, value)

    added = t["content_budget"] - base_budget
    rows = [ratio_row(f"brand (+${added:,.0f}/month content): lift in its months 2–4 ÷ "
                      "months 11–13", "program", (2, 4), (11, 13),
                      "small: shows only after months", BRAND_EARLY_MAX, False)]
    (late, late_r), (early, early_r) = both("program", 8, 13), both("program", 2, 7)
    growth, growth_se = _paired(late, early)
    growth_r, growth_se_r = _paired(late_r, early_r)
    rows.append(_row("spare_capacity", "brand: lift still building (its months 8–13 − 2–7)",
                     "> 0", f"{growth:+,.0f} ± {growth_se:,.0f} $/month (realised: "
                     f"{growth_r:+,.0f} ± {growth_se_r:,.0f})", f"> {Z:g} SE (paired)",
                     bool(growth > Z * growth_se), 0.0, growth))
    (second, second_r) = both("reps", 2, 2)
    mean2, se2 = float(second.mean()), float(second.std(ddof=1) / np.sqrt(len(second)))
    rows.append(_row("spare_capacity",
                     f"{t['added_reps']} ramped reps: lift in their 2nd month",
                     "> 0: shows within weeks", f"{mean2:+,.0f} ± {se2:,.0f} $/month "
                     f"(realised: {second_r.mean():+,.0f})", f"> {Z:g} SE",
                     bool(mean2 > Z * se2), 0.0, mean2))
    rows.append(ratio_row("ramped reps: lift in their 2nd month ÷ their months 2–7", "reps",
                          (2, 2), (2, 7), "large: most of it at once", REP_FAST_MIN, True))
    data = lift_table(expected["control"], lift, lift_r)
    settings = {**cfg, "seeds": seeds, **t, "content_budget_before": base_budget,
                "program_on": t["change"], "program_off": t["months"] + 1,
                "reps_on": t["change"], "reps_off": t["months"] + 1,
                "bookings": "expected (Σ win chance × value)"}
    return CheckResult("spare_capacity", "Time to effect in the shipped spare_capacity scenario",
                       "Leone (1995): 90% of an ad's effect within 6–9 months; Binet & Field "
                       "(IPA 2013): brand effects overtake activation after about six months",
                       rows, {"lift": data}, settings)


def _draw_spare(result: CheckResult) -> Figure:
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    ax = plot_lift(result.data["lift"], result.settings, ax=fig.subplots())
    ax.set_title("spare_capacity: added brand spend against added ramped reps (× = realised)")
    return fig


CHECK = Check("spare_capacity", "in the shipped spare_capacity scenario, brand spend shows "
              "after months and builds; ramped reps within weeks", check_spare_capacity,
              _draw_spare, SPARE_SIZES)
