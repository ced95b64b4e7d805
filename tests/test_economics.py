"""The economics of a decision: alignment cost, total cost, net bookings, ROI and payback;
intervals that stay in their range; warnings when replications are too few; a readable view."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from gtmsim import load_scenario, simulate
from gtmsim.cli import main
from gtmsim.experiment import (
    MIN_REPS,
    OUTCOMES,
    Experiment,
    _t_interval,
    compare,
    payback_month,
    read_experiment,
)
from gtmsim.scenario import ScenarioError, with_changes

TINY = {"market.prospects": 2000}
TINY_SET = ["--set", "market.prospects=2000", "--months", "3", "--workers", "1"]
OUTCOME = {o.name: o for o in OUTCOMES}
ECONOMICS = ("total_cost", "net_bookings", "roi", "payback_month")


@pytest.fixture(scope="module")
def reps2() -> Experiment:
    return compare(["siloed", "aligned"], reps=2, months=3, overrides=TINY, workers=1)


# --------------------------------------------------------------------------- the scenario keys


def test_alignment_cost_keys_default_to_zero_and_must_be_finite_and_non_negative():
    sc = load_scenario("aligned", TINY)
    assert sc.alignment.cost_monthly == 0 and sc.alignment.cost_once == 0
    for key, value in [("alignment.cost_monthly", -1.0), ("alignment.cost_once", -5.0),
                       ("alignment.cost_monthly", math.inf), ("alignment.cost_once", math.nan)]:
        with pytest.raises(ScenarioError) as info:
            load_scenario("aligned", {**TINY, key: value})
        assert any(key in p for p in info.value.problems), info.value.problems


def test_alignment_cost_column_follows_the_scenario_and_draws_no_random_numbers():
    plain = load_scenario("aligned", TINY)
    costly = load_scenario("aligned", {**TINY, "alignment.cost_monthly": 1000.0,
                                       "alignment.cost_once": 5000.0})
    a = simulate(plain, seed=4, months=4).monthly
    b = simulate(costly, seed=4, months=4).monthly
    assert a["alignment_cost"].tolist() == [0.0] * 4
    assert b["alignment_cost"].tolist() == [6000.0, 1000.0, 1000.0, 1000.0]
    # Same seed, same history: only the cost columns differ.
    same = [c for c in a.columns if c not in ("alignment_cost", "cac")]
    pd.testing.assert_frame_equal(a[same], b[same])
    cost = b["marketing_spend"] + b["sales_cost"] + b["alignment_cost"]
    expected = (cost / b["wins"]).where(b["wins"] > 0)
    np.testing.assert_allclose(b["cac"], expected, equal_nan=True)


def test_alignment_cost_follows_the_timeline():
    sc = with_changes(load_scenario("aligned", TINY), {"timeline": [
        {"month": 2, "set": {"alignment.cost_monthly": 300.0}},
        {"month": 3, "set": {"alignment.cost_once": 7000.0}},
    ]})
    cost = simulate(sc, seed=1, months=4).monthly["alignment_cost"].tolist()
    # Month 1 charges the scenario's one-off (0); a timeline entry setting it charges it then.
    assert cost == [0.0, 300.0, 7300.0, 300.0]


# --------------------------------------------------------------------------- outcomes by hand


def _table(bookings, marketing, sales, alignment=None) -> pd.DataFrame:
    n = len(bookings)
    return pd.DataFrame({
        "month": np.arange(1, n + 1), "bookings": bookings,
        "cumulative_bookings": np.cumsum(bookings), "marketing_spend": marketing,
        "sales_cost": sales, "alignment_cost": alignment if alignment is not None else [0.0] * n,
        "wins": [1] * n, "losses": [1] * n, "customers": np.arange(1, n + 1),
        "lead_response_days_median": [1.0] * n, "leads_decayed": [0] * n,
        "leads_unworked": [0] * n,
    })


def test_economics_outcomes_of_a_table_worked_by_hand():
    m = _table([0.0, 50.0, 200.0, 10.0], [40.0] * 4, [10.0] * 4, [20.0, 0.0, 0.0, 0.0])
    # Costs 70, 50, 50, 50 -> cumulative 70, 120, 170, 220; bookings 0, 50, 250, 260.
    assert OUTCOME["total_cost"].reduce(m) == 220.0
    assert OUTCOME["net_bookings"].reduce(m) == 40.0
    assert OUTCOME["roi"].reduce(m) == pytest.approx(40 / 220)
    assert OUTCOME["cac"].reduce(m) == pytest.approx(220 / 4)
    assert payback_month(m) == 3.0
    never = _table([0.0, 10.0, 10.0], [40.0] * 3, [10.0] * 3)
    assert math.isnan(payback_month(never))
    assert OUTCOME["roi"].reduce(never) == pytest.approx((20 - 150) / 150)


def test_runs_stored_before_the_alignment_cost_column_count_no_alignment_cost():
    m = _table([0.0, 50.0], [40.0] * 2, [10.0] * 2)
    assert OUTCOME["total_cost"].reduce(m.drop(columns="alignment_cost")) == 100.0
    assert OUTCOME["total_cost"].reduce(m.assign(alignment_cost=np.nan)) == 100.0


def _experiment(arms: dict[str, list[pd.DataFrame]]) -> Experiment:
    frames = []
    for name, tables in arms.items():
        for r, t in enumerate(tables):
            frames.append(t.assign(scenario=name, replication=r, seed=r))
    reps = len(next(iter(arms.values())))
    return Experiment(kind="compare", runs=pd.concat(frames, ignore_index=True), arms=[],
                      keys=(), seed=0, seeds=list(range(reps)))


def test_a_replication_that_never_pays_back_leaves_payback_without_a_mean():
    pays = [_table([0.0, 100.0, 100.0], [40.0] * 3, [10.0] * 3),   # pays back in month 2
            _table([0.0, 0.0, 200.0], [40.0] * 3, [10.0] * 3)]     # in month 3
    never = _table([0.0, 0.0, 10.0], [40.0] * 3, [10.0] * 3)
    s = _experiment({"a": pays + [pays[0]], "b": pays + [never]}).summary()
    a = s[(s.scenario == "a") & (s.outcome == "payback_month")].iloc[0]
    b = s[(s.scenario == "b") & (s.outcome == "payback_month")].iloc[0]
    assert a["n"] == 3 and a["mean"] == pytest.approx(7 / 3)
    assert 1 <= a["ci_low"] <= a["mean"] <= a["ci_high"]
    # b's third replication does not pay back within the run: no mean (it would flatter b),
    # n says how many did, and there is no paired difference.
    assert (b["n"], b["reps"]) == (2, 3)
    assert np.isnan([b["mean"], b["ci_low"], b["ci_high"], b["diff"]]).all()


def test_costed_alignment_work_shows_as_a_paired_difference_in_cost_and_net_bookings():
    free = load_scenario("aligned", {**TINY, "name": "free"})
    paid = load_scenario("aligned", {**TINY, "name": "paid", "alignment.cost_monthly": 2000.0,
                                     "alignment.cost_once": 10_000.0})
    s = compare([free, paid], reps=3, months=3, workers=1).summary().set_index(
        ["scenario", "outcome"])
    extra = 3 * 2000.0 + 10_000.0  # the same histories: the difference is exactly the cost
    assert s.loc[("paid", "total_cost"), "diff"] == pytest.approx(extra)
    assert s.loc[("paid", "total_cost"), "diff_ci_low"] == pytest.approx(extra)
    assert s.loc[("paid", "net_bookings"), "diff"] == pytest.approx(-extra)
    assert s.loc[("paid", "cumulative_bookings"), "diff"] == 0
    assert s.loc[("paid", "total_cost"), "ahead"] == 0  # more cost is worse in every replication
    base = s.loc[("free", "net_bookings"), "mean"]
    # Relative to |mean|: the sign of diff_pct is the difference's, even when nets are negative.
    assert s.loc[("paid", "net_bookings"), "diff_pct"] == pytest.approx(-100 * extra / abs(base))


# --------------------------------------------------------------------------- ranges


def test_t_interval_is_clipped_to_the_range():
    mean, lo, hi = _t_interval(np.array([0.0, 0.9]), 0.95, (0.0, 1.0))
    assert (mean, lo, hi) == (pytest.approx(0.45), 0.0, 1.0)
    mean, lo, hi = _t_interval(np.array([0.0, 0.9]), 0.95)
    assert lo < 0 and hi > 1  # unclipped, the t interval leaves [0, 1] at n = 2


def test_no_interval_leaves_its_range_at_two_replications(reps2):
    s = reps2.summary()
    assert set(ECONOMICS) <= set(s["outcome"])
    for _, r in s.iterrows():
        o = OUTCOME[r["outcome"]]
        for c in ("mean", "ci_low", "ci_high"):
            if math.isfinite(r[c]):
                assert o.low <= r[c] <= o.high, (o.name, c, r[c])
        low, high = o.diff_range
        for c in ("diff", "diff_ci_low", "diff_ci_high"):
            if math.isfinite(r[c]):
                assert low <= r[c] <= high, (o.name, c, r[c])
    rates = s[s["outcome"] == "win_rate"]
    assert rates[["ci_low", "ci_high"]].stack().dropna().between(0, 1).all()
    assert rates[["diff_ci_low", "diff_ci_high"]].stack().dropna().between(-1, 1).all()
    money = s[s["outcome"].isin(["cac", "cumulative_bookings", "total_cost"])]
    assert (money["ci_low"].dropna() >= 0).all()
    # Net bookings cannot fall below minus the cost: bookings are never negative.
    runs = reps2.outcomes()
    for name, g in runs.groupby("scenario"):
        net = s[(s["scenario"] == name) & (s["outcome"] == "net_bookings")].iloc[0]
        assert net["ci_low"] >= -g["total_cost"].max() - 1e-6


# --------------------------------------------------------------------------- few replications


def test_summary_warns_below_ten_replications(reps2):
    assert MIN_REPS == 10
    assert "replications" in reps2.summary().attrs["warning"]
    ten = _experiment({"a": [_table([0.0, 100.0], [40.0] * 2, [10.0] * 2)] * 10})
    assert "warning" not in ten.summary().attrs


def test_cli_tables_and_report_warn_at_three_replications_and_not_at_ten(tmp_path, capsys):
    few, enough = tmp_path / "few", tmp_path / "enough"
    assert main(["compare", "siloed", "aligned", "--reps", "3", *TINY_SET, "--out", str(few),
                 "--report"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "3 replications" in warnings[0]
    for label in ("Total cost", "Net bookings", "ROI", "Payback month"):
        assert label in captured.out
    page = (few / "report.html").read_text(encoding="utf-8")
    assert 'class="warning"' in page and "Only 3 replications" in page
    assert "Total cost" in page and "Net bookings" in page and "net bookings" in page.lower()

    assert main(["sweep", "aligned", "--vary", "sales.reps=2,3", "--reps", "3", *TINY_SET,
                 "--out", str(tmp_path / "sweep")]) == 0
    assert "Warning: Only 3 replications" in capsys.readouterr().err

    assert main(["compare", "siloed", "aligned", "--reps", "10", *TINY_SET, "--out",
                 str(enough), "--report", "--json"]) == 0
    captured = capsys.readouterr()
    assert "Warning" not in captured.err and json.loads(captured.out)["warning"] is None
    assert 'class="warning"' not in (enough / "report.html").read_text(encoding="utf-8")
    # summary.csv is written from summary(): the economics rows are in it.
    on_disk = pd.read_csv(enough / "summary.csv")
    assert set(ECONOMICS) <= set(on_disk["outcome"])
    pd.testing.assert_frame_equal(on_disk, read_experiment(enough).summary(), check_dtype=False)


# --------------------------------------------------------------------------- readable view


def test_summary_view_is_readable_and_summary_stays_numeric(reps2):
    s = reps2.summary()
    assert all(pd.api.types.is_float_dtype(s[c]) for c in ("mean", "ci_low", "diff"))
    view = reps2.summary_view()
    assert len(view) == len(s)
    cells = view.drop(columns=["scenario"]).astype(str).to_numpy().ravel()
    assert not any("e+" in c or "e-0" in c for c in cells)
    row = view.set_index(["scenario", "outcome"])
    assert row.loc[("siloed", "Total cost"), "mean"].startswith("$")
    assert row.loc[("siloed", "Total cost"), "mean"].endswith("k")
    assert row.loc[("siloed", "Win rate"), "mean"].endswith("%")
    assert row.loc[("aligned", "Win rate"), "Δ vs first"].endswith("pp")
    assert view.attrs["warning"] == s.attrs["warning"]
