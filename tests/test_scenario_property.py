"""Property: a random scenario either validates and runs a month cleanly, or is refused with
messages that each name a key — never a crash, a warning or a NaN in a count or a sum."""

from __future__ import annotations

import copy
import math
import os
import tomllib
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gtmsim import simulate
from gtmsim.metrics import METRICS
from gtmsim.scenario import ScenarioError, scenario_from_dict, shipped_scenarios, with_changes

BASELINE = tomllib.loads(shipped_scenarios()["baseline"].read_text(encoding="utf-8"))


def _leaf_paths(node: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for k, v in node.items():
        out += _leaf_paths(v, (*prefix, k)) if isinstance(v, dict) else [(*prefix, k)]
    return out


# The baseline's own keys, keys it leaves at their defaults, and a few tables as a whole.
PATHS = sorted(set(_leaf_paths(BASELINE)) | {
    ("seed",), ("months",), ("name",), ("market",), ("sales",), ("alignment",),
    ("market", "network", "degree"), ("market", "network", "rewire"),
    ("alignment", "sla_days"), ("alignment", "routing"), ("alignment", "coordination"),
    ("sales", "segments"), ("marketing", "programs", "paid_ads", "segments"),
    ("market", "segments", "smb"), ("marketing", "programs"),
})

ODD_NUMBERS = [math.inf, -math.inf, math.nan, 1e308, -1e308, 1e-300, -1e-300, 0, -1, 2**64,
               2**63, 10**12, 0.5, 1, 3]
VALUES = st.recursive(
    st.one_of(
        st.sampled_from(ODD_NUMBERS),
        st.integers(-10**6, 10**6),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.text(max_size=12),
        st.sampled_from(["smb", "enterprise", "aligned", "newest_first", "events", "", "7"]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3)),
    max_leaves=6,
)
TIMELINES = st.lists(st.fixed_dictionaries({
    "month": st.one_of(st.integers(-1, 30), st.sampled_from([True, 1.5, "2"])),
    "set": st.dictionaries(st.sampled_from(["sales.reps", "sales", "alignment.sla_days",
                                            "marketing.programs.paid_ads.monthly_budget",
                                            "market.prospects", "sales.segments"]),
                           VALUES, max_size=2),
}), max_size=2)


def _plausible(draw, old):
    """A value of the same type near the old one (so that many mutants are valid)."""
    factor = draw(st.sampled_from([0.5, 0.9, 1, 1.1, 2, 0, 0.01, 10, 1000]))
    if isinstance(old, bool):
        return draw(st.booleans())
    if isinstance(old, int):
        return int(old * factor)
    if isinstance(old, float):
        return old * factor
    return old


def _mutated(draw) -> dict:
    data = copy.deepcopy(BASELINE)
    for path in draw(st.lists(st.sampled_from(PATHS), max_size=3)):
        node = data
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        old = node.get(path[-1])
        plausible = isinstance(old, (int, float)) and draw(st.integers(0, 3)) > 0
        node[path[-1]] = _plausible(draw, old) if plausible else draw(VALUES)
    if draw(st.integers(0, 3)) == 0:  # a random unknown key somewhere
        section = draw(st.sampled_from([data, data["market"], data["sales"], data["alignment"]]))
        if isinstance(section, dict):
            section[draw(st.text(min_size=1, max_size=10))] = draw(VALUES)
    if draw(st.integers(0, 3)) == 0:
        data["timeline"] = draw(TIMELINES)
    return data


scenario_dicts = st.composite(_mutated)()

# Counts and sums are always defined; ratios and times are NaN when their denominator is
# zero (no deals closed, no lead worked), which is not a fault, but never infinite.
ALWAYS_DEFINED = [n for n, m in METRICS.items() if m.kind in ("stock", "flow", "money", "id")
                  and n != "cac"]


# GTMSIM_PROPERTY_EXAMPLES=2000 runs a longer search than the suite does.
@settings(max_examples=int(os.environ.get("GTMSIM_PROPERTY_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=scenario_dicts)
def test_random_scenarios_run_cleanly_or_are_refused_by_key(data):
    try:
        scenario = scenario_from_dict(data, "random.toml")
    except ScenarioError as exc:
        assert exc.problems
        for problem in exc.problems:
            source, key, message = problem.split(": ", 2)
            assert source == "random.toml" and key and message, problem
        return
    # Keep the run small: a month, at most 2,000 prospects and 20 reps.
    small = with_changes(scenario, {"market.prospects": min(scenario.market.prospects, 2000),
                                    "sales.reps": min(scenario.sales.reps, 20), "timeline": []})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monthly = simulate(small, months=1).monthly
    assert len(monthly) == 1
    assert np.isfinite(monthly[ALWAYS_DEFINED].to_numpy(dtype=float)).all(), monthly.T
    others = monthly.drop(columns=ALWAYS_DEFINED).select_dtypes("number").to_numpy(dtype=float)
    assert not np.isinf(others).any(), monthly.T


@pytest.mark.parametrize("key, value", [
    ("sales.touches_per_day", "inf"), ("market.buying_window_days", "1e-300"),
    ("market.segments.smb.fit_concentration", "nan"), ("seed", "18446744073709551616"),
    ("name", '"../../x"'), ("sales.reps", "true"), ("market.dormant_days", "1e308"),
])
def test_cli_check_refuses_with_exit_2_not_1(tmp_path, capsys, key, value):
    from gtmsim.cli import main

    section, _, leaf = key.rpartition(".")
    path = tmp_path / "bad.toml"
    path.write_text('extends = "baseline"\n' + (f"[{section}]\n" if section else "")
                    + f"{leaf} = {value}\n" if section else f'{leaf} = {value}\nextends = "baseline"\n')
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f": {key}: " in err and "unexpected error" not in err


EDGES = [("market.segments.smb.fit_mean", 1 - 1e-16), ("market.segments.smb.fit_concentration", 1000),
         ("market.segments.smb.fit_concentration", 1e-300), ("market.segments.smb.deal_value", 1e10),
         ("market.segments.smb.deal_value_spread", 3), ("market.segments.smb.cycle_days", 1),
         ("market.segments.smb.cycle_days", 3650), ("market.buying_window_days", 1),
         ("market.buying_window_days", 3650), ("market.trust_half_life_days", 365_000),
         ("market.referral_weight", 1000), ("market.word_of_mouth", 30),
         ("market.dormant_days", 3650), ("market.lead_patience_days", 1e-300),
         ("market.response_hot_minutes", 1e-300), ("market.response_decay_hours", 87_600),
         ("market.response_decay_power", 5), ("market.response_lasting", 1),
         ("sales.pickup_minutes", 1440), ("sales.day_hours", 15), ("sales.day_start_hour", 0),
         ("sales.follow_up_half_life_days", 1e-300),
         ("marketing.programs.paid_ads.monthly_budget", 1e10),
         ("marketing.programs.paid_ads.cost_per_reach", 1e-4),
         ("marketing.programs.paid_ads.saturation", 1e-300),
         ("marketing.programs.paid_ads.saturation_slope", 10),
         ("sales.touches_per_day", 1000), ("sales.touches_per_day", 1e-300),
         ("sales.touches_per_lead", 0.01), ("sales.deal_capacity", 100_000),
         ("sales.deal_touches_per_day", 1000), ("sales.ramp_months", 120),
         ("sales.cost_per_rep_month", 1e10), ("seed", 2**63 - 1)]


@pytest.mark.parametrize("key, value", EDGES)
def test_the_ends_of_every_range_run_cleanly(key, value):
    s = with_changes(scenario_from_dict(BASELINE), {"market.prospects": 2000, key: value})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monthly = simulate(s, months=2).monthly
    assert np.isfinite(monthly[ALWAYS_DEFINED].to_numpy(dtype=float)).all(), monthly.T
