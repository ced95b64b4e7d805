"""The `marketing` check: geometric adstock is exact; awareness grows with spend, with
diminishing returns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gtmsim.marketing import DAYS_PER_MONTH
from gtmsim.model import GTMModel, simulate
from gtmsim.prospects import UNAWARE
from gtmsim.scenario import Scenario, scenario_from_dict
from gtmsim.validation.core import (
    Check,
    CheckResult,
    Size,
    Z,
    _mean_se,
    _one_segment,
    _row,
    _seeds,
    _settings,
    family_z,
)


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


CHECK = Check("marketing", "adstock is geometric; awareness grows with spend, saturating",
              check_marketing, _draw_marketing, MARKETING_SIZES)
