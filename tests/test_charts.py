"""Charts draw on the Axes they are given, return it, and show the right numbers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from conftest import small  # noqa: E402

from gtmsim import charts, simulate  # noqa: E402
from gtmsim.results import identified  # noqa: E402


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    frames = []
    for name in ("siloed", "aligned"):
        scenario = small(name, months=8)
        for r in range(3):
            df = identified(simulate(scenario, seed=40 + r, keep_model=False))
            df["replication"] = r
            frames.append(df)
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("plot", [charts.plot_bookings, charts.plot_lead_outcomes,
                                  charts.plot_response_times, charts.plot_utilization,
                                  charts.plot_cac, charts.plot_funnel])
def test_each_chart_draws_on_the_given_axes_and_returns_it(runs, plot, monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("charts never call show()"))
    monkeypatch.setattr(plt.Figure, "savefig", lambda *a, **k: pytest.fail("charts never save"))
    fig, ax = plt.subplots()
    assert plot(runs, ax=ax) is ax
    assert ax.get_title(loc="left")
    plt.close(fig)
    assert isinstance(plot(runs), matplotlib.axes.Axes)  # makes its own figure when none given
    plt.close("all")


def test_one_colour_per_scenario_across_charts(runs):
    fig, (a, b) = plt.subplots(1, 2)
    charts.plot_bookings(runs, ax=a)
    charts.plot_utilization(runs, ax=b)
    colour_a = {line.get_label(): line.get_color() for line in a.get_lines()}
    colour_b = {line.get_label(): line.get_color() for line in b.get_lines()}
    assert colour_a == colour_b == charts.colours(runs)
    plt.close(fig)


def test_bookings_line_is_the_mean_over_replications(runs):
    fig, ax = plt.subplots()
    charts.plot_bookings(runs, ax=ax)
    line = {ln.get_label(): ln for ln in ax.get_lines()}["aligned"]
    expected = runs[runs.scenario == "aligned"].groupby("month")["cumulative_bookings"].mean()
    np.testing.assert_allclose(line.get_ydata(), expected.to_numpy())
    plt.close(fig)


def test_lead_fates_account_for_every_lead(runs):
    fates = charts.lead_fates(runs)
    created = runs.groupby("scenario", sort=False)["new_leads"].sum() / 3
    np.testing.assert_allclose(fates.sum(axis=1).to_numpy(), created.to_numpy())


def test_unit_economics_recomputed_by_hand(runs):
    econ = charts.unit_economics(runs)
    one = runs[(runs.scenario == "siloed")]
    per_rep = one.groupby("replication").apply(
        lambda g: (g.marketing_spend.sum() + g.sales_cost.sum()) / g.wins.sum(), include_groups=False)
    assert econ.loc["siloed", "cac"] == pytest.approx(per_rep.mean())
    assert econ.loc["siloed", "cac_lo"] < econ.loc["siloed", "cac"] < econ.loc["siloed", "cac_hi"]


def test_sweep_chart_plots_one_point_per_lever_value(runs):
    swept = runs.assign(**{"sales.reps": np.where(runs.replication == 0, 2, 4)})
    fig, ax = plt.subplots()
    charts.plot_sweep(swept, "sales.reps", ax=ax)
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [2, 4]
    plt.close(fig)


def test_unit_economics_counts_the_alignment_cost_and_never_goes_below_zero(runs):
    base = charts.unit_economics(runs)
    costly = runs.assign(alignment_cost=runs["alignment_cost"] + 1e6)
    more = charts.unit_economics(costly)
    wins = runs.groupby(["scenario", "replication"])["wins"].sum()
    assert (more["cac"] > base["cac"]).all()
    # Two replications give the widest t intervals; their lower ends are clipped at zero.
    two = charts.unit_economics(runs[runs["replication"] < 2])
    assert (two[["cac_lo", "payback_months_lo"]].dropna() >= 0).all().all()
    assert wins.min() > 0
