"""The `decay` check: qualification falls with response time as the decay law says
(Oldroyd et al. 2011).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import optimize

from gtmsim.model import GTMModel, simulate
from gtmsim.sales import response_decay
from gtmsim.scenario import Scenario, load_scenario, scenario_from_dict
from gtmsim.validation.core import (
    PLAIN_DESK,
    Check,
    CheckResult,
    Size,
    Z,
    _one_segment,
    _row,
    _seeds,
    _settings,
    family_z,
)


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


CHECK = Check("decay", "qualification falls with response time as the decay law says",
              check_decay, _draw_decay, DECAY_SIZES)
