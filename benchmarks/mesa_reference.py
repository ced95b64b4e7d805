"""A plain Mesa model of the mechanisms gtmsim shares with it, and the matching gtmsim run.

The reference is written the way a Mesa user would first write it: one `mesa.Agent`
per prospect and `model.agents.shuffle_do("step")` each day, with the logic in Python
per agent. It keeps only what both models can share: no sales team, nobody in a
buying window, one broad marketing program and fully mixed word of mouth, months of
30 days. Each day an unaware prospect is touched by the program with chance
1 − exp(−p/30) and becomes aware; each aware prospect talks with chance q/30 to a
prospect drawn uniformly from the market, who becomes aware. A prospect who hears of
us by word of mouth starts talking the next day (in gtmsim the day's speakers are
drawn before their talks land). In continuous time this is the Bass model with
innovation p and imitation q per month.

`gtmsim_scenario` builds the same world through gtmsim's public API: a program whose
Hill curve gives monthly reach p·N (carryover 0, slope 1, half-saturation 1,
budget / cost_per_reach = N·p / (1 − p), awareness 1), no reps, `in_market_share` 0,
word of mouth q on the `full` network.

Usage:
    python benchmarks/mesa_reference.py --prospects 10000 --months 12 --seed 1
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import mesa
import numpy as np

from gtmsim import scenario_from_dict, simulate

DAYS_PER_MONTH = 30
# Bass coefficients per month for the shared world: a full S-curve within a year.
P_MONTHLY = 0.03
Q_MONTHLY = 0.4


class Prospect(mesa.Agent):
    """One prospect: unaware or aware; aware prospects talk about us."""

    def __init__(self, model: ReferenceModel):
        super().__init__(model)
        self.aware = False
        self.heard_day = -1  # day word of mouth reached this prospect

    def step(self) -> None:
        m = self.model
        if not self.aware:
            if self.random.random() < m.touch_chance:
                self.aware = True
                m.n_aware += 1
            else:
                return
        if self.heard_day == m.day:
            return  # heard of us today: starts talking tomorrow
        if self.random.random() < m.talk_chance:
            listener = m.prospect_list[self.random.randrange(m.n)]
            if not listener.aware:
                listener.aware = True
                listener.heard_day = m.day
                m.n_aware += 1


class ReferenceModel(mesa.Model):
    """Bass-style awareness diffusion with one `Prospect` agent per prospect.

    Args:
        prospects: market size N.
        p: marketing touches per prospect per month (Bass innovation).
        q: talks per aware prospect per month (Bass imitation).
        seed: seed of the model's random number generators.
    """

    def __init__(self, prospects: int, p: float = P_MONTHLY, q: float = Q_MONTHLY, seed: int = 0):
        super().__init__(rng=seed)
        self.n = prospects
        self.touch_chance = 1.0 - math.exp(-p / DAYS_PER_MONTH)
        self.talk_chance = q / DAYS_PER_MONTH
        self.day = 0
        self.n_aware = 0
        self.aware_by_month: list[int] = []
        for _ in range(prospects):
            Prospect(self)
        self.prospect_list = list(self.agents)

    def step(self) -> None:
        """One day; at a month's end the aware count is recorded."""
        self.agents.shuffle_do("step")
        self.day += 1
        if self.day % DAYS_PER_MONTH == 0:
            self.aware_by_month.append(self.agents.agg("aware", sum))

    def run(self, months: int) -> np.ndarray:
        """Simulate `months`; the aware share at each month's end."""
        for _ in range(months * DAYS_PER_MONTH):
            self.step()
        return np.array(self.aware_by_month, dtype=float) / self.n


def run_mesa(prospects: int, months: int, seed: int, p: float = P_MONTHLY,
             q: float = Q_MONTHLY) -> np.ndarray:
    """Monthly aware share of one reference run (model construction included)."""
    return ReferenceModel(prospects, p, q, seed).run(months)


def gtmsim_scenario(prospects: int, months: int, p: float = P_MONTHLY, q: float = Q_MONTHLY,
                    seed: int = 0):
    """The shared world as a gtmsim `Scenario`."""
    cost_per_reach = 1.0
    return scenario_from_dict({
        "name": "mesa_reference",
        "months": months,
        "seed": seed,
        "market": {
            "prospects": prospects,
            "initial_aware": 0.0,
            "in_market_share": 0.0,
            "word_of_mouth": q,
            "referral_weight": 1.0,
            "churn_monthly": 0.0,
            "network": {"kind": "full"},
            "segments": {"all": {"share": 1.0, "deal_value": 10000, "cycle_days": 30,
                                 "base_win_rate": 0.2}},
        },
        "marketing": {"programs": {"broad": {
            "channel": "other",
            # Hill(T/N) with half-saturation 1 and slope 1 equals p when T/N = p/(1-p).
            "monthly_budget": prospects * p / (1 - p) * cost_per_reach,
            "cost_per_reach": cost_per_reach,
            "carryover": 0.0,
            "saturation": 1.0,
            "saturation_slope": 1.0,
            "awareness": 1.0,
        }}},
        "sales": {"reps": 0},
        # No feedback: touches fall uniformly on the market, as in the reference.
        "alignment": {"preset": "siloed", "feedback": 0.0},
    })


def run_gtmsim(prospects: int, months: int, seed: int, p: float = P_MONTHLY,
               q: float = Q_MONTHLY) -> np.ndarray:
    """Monthly aware share of one gtmsim run of the shared world."""
    table = simulate(gtmsim_scenario(prospects, months, p, q), seed=seed, keep_model=False).monthly
    return table["aware"].to_numpy(dtype=float) / prospects


def bass_share(months: int, p: float = P_MONTHLY, q: float = Q_MONTHLY) -> np.ndarray:
    """Closed-form Bass adoption F(t) at the end of months 1..`months`."""
    t = np.arange(1, months + 1, dtype=float)
    e = np.exp(-(p + q) * t)
    return (1 - e) / (1 + (q / p) * e)


@dataclass(frozen=True)
class Agreement:
    """Monthly mean aware shares of two models and their two-sample t statistics."""

    mean_a: np.ndarray
    mean_b: np.ndarray
    t_month: np.ndarray  # per month
    t_overall: float  # on each run's mean share over the months
    limit: float

    @property
    def passed(self) -> bool:
        within = np.abs(self.t_month) <= self.limit
        return bool(within.all() and abs(self.t_overall) <= self.limit)


def _t(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sample t (pooled variance) along axis 0; 0 where both samples are constant."""
    na, nb = len(a), len(b)
    pooled = ((na - 1) * a.var(axis=0, ddof=1) + (nb - 1) * b.var(axis=0, ddof=1)) / (na + nb - 2)
    se = np.sqrt(pooled * (1 / na + 1 / nb))
    diff = a.mean(axis=0) - b.mean(axis=0)
    return np.divide(diff, se, out=np.zeros_like(diff), where=se > 0)


def agreement(runs_a: np.ndarray, runs_b: np.ndarray, limit: float = 3.0) -> Agreement:
    """Check two sets of runs (rows: seeds, columns: months) agree within sampling noise.

    The models agree when, month by month and for the runs' mean share over all months,
    the difference of the means is within `limit` standard errors (pooled two-sample t;
    both models should have the same spread, so pooling uses all runs to estimate it).
    """
    runs_a, runs_b = np.atleast_2d(runs_a), np.atleast_2d(runs_b)
    if len(runs_a) < 2 or len(runs_b) < 2:
        raise ValueError("agreement needs at least two runs of each model")
    return Agreement(
        mean_a=runs_a.mean(axis=0),
        mean_b=runs_b.mean(axis=0),
        t_month=_t(runs_a, runs_b),
        t_overall=float(_t(runs_a.mean(axis=1), runs_b.mean(axis=1))),
        limit=limit,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prospects", type=int, default=10_000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    mesa_share = run_mesa(args.prospects, args.months, args.seed)
    gtm_share = run_gtmsim(args.prospects, args.months, args.seed)
    print("month  mesa    gtmsim  bass")
    for m, (a, b, c) in enumerate(zip(mesa_share, gtm_share, bass_share(args.months), strict=True),
                                  start=1):
        print(f"{m:5d}  {a:.4f}  {b:.4f}  {c:.4f}")


if __name__ == "__main__":
    main()
