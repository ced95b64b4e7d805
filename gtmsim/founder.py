"""The founder's split week: one person's hours resolved into a sales team and marketing output.

A scenario with a `[founder]` section describes a full-time seller in `[sales]` and, for
each program the founder makes by hand, what a full-time week of that work reaches. The
founder works `weekly_hours`, sells `selling_share` of them and markets the rest; this
module turns that week into the sales settings and programs the model runs with. The
scenario as written stays `GTMModel.config` (timeline changes and forks apply to it); the
model asks here for what is in force each time the team or the programs change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gtmsim.scenario import (
    FOUNDER_CHANNELS,
    Founder,
    Program,
    Sales,
    Scenario,
    ScenarioError,
    load_scenario,
    with_changes,
)

# The weeks the trade-off compares, and the months that count as "the first months".
SELLING_HEAVY, MARKETING_HEAVY = 0.8, 0.2
EARLY_MONTH = 3


def hours(founder: Founder) -> tuple[float, float]:
    """The founder's (selling, marketing) hours a week."""
    selling = founder.weekly_hours * founder.selling_share
    return selling, founder.weekly_hours - selling


def made_by_founder(scenario: Scenario) -> list[str]:
    """Names of the programs whose output is the founder's time."""
    founder = scenario.founder
    if founder is None:
        return []
    programs = scenario.marketing.programs
    if founder.programs is not None:
        return [n for n in founder.programs if n in programs]
    return [n for n, p in programs.items() if p.channel in FOUNDER_CHANNELS]


def sales_in_force(scenario: Scenario) -> Sales:
    """The sales settings the model runs with: `[sales]`, or the founder's selling hours."""
    founder = scenario.founder
    sales = scenario.sales
    if founder is None:
        return sales
    selling, _ = hours(founder)
    if selling <= 0:
        return sales.model_copy(update={"reps": 0})
    scale = selling / founder.full_time_hours
    # ASSUMPTION: a founder's selling capacity is a full-time seller's (`[sales]`) in
    # proportion to the hours sold: touches a day and open-deal slots both scale with the
    # selling hours (at least one slot while any time is spent selling); the time each open
    # deal takes (`deal_touches_per_day`) and a lead's first response (`touches_per_lead`)
    # do not, so a founder selling a few hours a week carries few deals.
    return sales.model_copy(update={
        "reps": 1,
        "touches_per_day": sales.touches_per_day * scale,
        "deal_capacity": max(1, round(sales.deal_capacity * scale)),
    })


def programs_in_force(scenario: Scenario) -> dict[str, Program]:
    """The marketing programs the model runs with; the founder's scale with marketing hours."""
    programs = scenario.marketing.programs
    founder = scenario.founder
    if founder is None:
        return programs
    _, marketing = hours(founder)
    scale = marketing / founder.full_time_hours
    made = set(made_by_founder(scenario))
    # ASSUMPTION: a founder-made program's touches (cadence × reach) are proportional to the
    # founder's marketing hours; its trust and awareness per touch do not change, and its
    # `monthly_budget` stays the cash it costs (tools, editing, promotion), charged whatever
    # the hours. The scaling acts on the cost of a touch, so the month's budget buys
    # `scale` times the touches a full-time week would; carried-over adstock is valued at
    # the month's rate (a shift of the week re-values last months' carry-over with it).
    return {
        name: prog.model_copy(update={
            "cost_per_reach": prog.cost_per_reach / scale if scale > 0 else math.inf})
        if name in made else prog
        for name, prog in programs.items()
    }


def trade_off(scenario: Scenario | str | Path = "founder_led",
              shares: Sequence[float] = (SELLING_HEAVY, MARKETING_HEAVY), *, reps: int = 10,
              seed: int = 0, months: int | None = None,
              overrides: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Monthly results of the same founder with different splits of the week.

    Every split runs on the same seeds (`seed`, `seed + 1`, ...: common random numbers), so
    differences between splits are paired replication by replication.

    Returns:
        One row per split, replication and month: `selling_share`, `replication`, `seed`,
        `month`, `cumulative_bookings`, `new_leads`, `rep_utilization`.

    Raises:
        ScenarioError: the scenario has no [founder] section, or a share is out of range.
    """
    from gtmsim.model import simulate  # the model imports this module

    base = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if overrides:
        base = with_changes(base, overrides, "overrides")
    if base.founder is None:
        raise ScenarioError([f"{base.name}: founder: the trade-off needs a [founder] section "
                             "(weekly_hours, selling_share)"])
    frames = []
    for share in shares:
        arm = with_changes(base, {"founder.selling_share": share}, "--vary")
        for r in range(reps):
            table = simulate(arm, seed=seed + r, months=months, keep_model=False).monthly
            frames.append(table[["month", "cumulative_bookings", "new_leads",
                                 "rep_utilization"]].assign(
                selling_share=float(share), replication=r, seed=seed + r))
    cols = ["selling_share", "replication", "seed", "month", "cumulative_bookings",
            "new_leads", "rep_utilization"]
    return pd.concat(frames, ignore_index=True)[cols]


def paired_difference(runs: pd.DataFrame, column: str = "cumulative_bookings",
                      first: float = SELLING_HEAVY, second: float = MARKETING_HEAVY) -> np.ndarray:
    """`column` of split `first` minus split `second`, replications × months (same seeds)."""
    wide = {share: g.pivot(index="replication", columns="month", values=column)
            for share, g in runs.groupby("selling_share")}
    return (wide[first] - wide[second]).to_numpy(dtype=float)


def crossing_month(diff: Sequence[float], early_month: int = EARLY_MONTH) -> int | None:
    """The month from which the split behind at `early_month` stays ahead to the end.

    `diff` is a difference of cumulative bookings by month (month 1 first). None when no
    split leads at `early_month` or the one that leads there is still ahead (or level) at
    some month after it, through the last month.
    """
    d = np.sign(np.asarray(diff, dtype=float))
    if len(d) < early_month or d[early_month - 1] == 0:
        return None
    behind = -d[early_month - 1]
    month = None
    for m in range(len(d), early_month, -1):  # walk back from the end while the lead holds
        if d[m - 1] != behind:
            break
        month = m
    return month


__all__ = ["EARLY_MONTH", "MARKETING_HEAVY", "SELLING_HEAVY", "crossing_month", "hours",
           "made_by_founder", "paired_difference", "programs_in_force", "sales_in_force",
           "trade_off"]
