"""The decision-ready report: labels and questions, every option against the reference in $
with paired intervals recomputed from the runs, costs, settings in words, one kind of band."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gtmsim import charts, decision
from gtmsim.cli import main
from gtmsim.report import build_report, headline, load_results, summary_table
from gtmsim.scenario import ScenarioError, load_scenario, readable_name

REF, FIX, REPS = "siloed", "acme_fix", "acme_reps"


def _final(runs: pd.DataFrame, column: str = "cumulative_bookings") -> pd.DataFrame:
    last = runs[runs["month"] == runs["month"].max()]
    return last.pivot(index="replication", columns="scenario", values=column)


def _per_run(runs: pd.DataFrame) -> pd.DataFrame:
    cost = runs["marketing_spend"] + runs["sales_cost"] + runs["alignment_cost"]
    g = runs.assign(cost=cost).groupby(["scenario", "replication"])
    return pd.DataFrame({"bookings": g["bookings"].sum(), "cost": g["cost"].sum()})


def _ci(x) -> tuple[float, float]:
    ci = stats.ttest_1samp(np.asarray(x, dtype=float), 0.0).confidence_interval(0.95)
    return float(ci.low), float(ci.high)


# --------------------------------------------------------------------------- labels


def test_label_defaults_to_a_readable_name_and_is_checked(tmp_path):
    assert readable_name("hire_and_cut") == "Hire and cut"
    plain = load_scenario("hire_and_cut")
    assert plain.display_label == "Hire and cut" and "label" not in plain.to_dict()
    good = tmp_path / "good.toml"
    good.write_text('extends = "aligned"\nlabel = "Fix the hand-off"\n', encoding="utf-8")
    assert load_scenario(good).display_label == "Fix the hand-off"
    assert load_scenario(good).to_dict()["label"] == "Fix the hand-off"
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "aligned"\nlabel = "two\\nlines"\nlabl = "x"\n', encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        load_scenario(bad)
    problems = err.value.problems
    assert any("label: must be one line" in p for p in problems)
    assert any("labl: unknown key; did you mean 'label'?" in p for p in problems)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('extends = "aligned"\nlabel = 3\n', encoding="utf-8")
    assert main(["check", str(wrong)]) == 2


# --------------------------------------------------------------------------- numbers


def test_options_recomputed_from_the_runs(decision_folder):
    res = load_results(decision_folder)
    opts = decision.options(res, summary_table(res)).set_index("scenario")
    assert list(opts["label"]) == ["Siloed", "Fix the hand-off", "Acme reps"]
    final = _final(res.runs)
    per = _per_run(res.runs)
    for name in (FIX, REPS):
        diff = final[name] - final[REF]
        row = opts.loc[name]
        assert row["bookings_diff"] == pytest.approx(diff.mean())
        low, high = _ci(diff)
        assert (row["bookings_diff_low"], row["bookings_diff_high"]) == pytest.approx((low, high))
        assert row["bookings_diff_pct_low"] == pytest.approx(100 * low / final[REF].mean())
        extra = per.loc[name, "cost"] - per.loc[REF, "cost"]
        assert row["extra_cost"] == pytest.approx(extra.mean())
        net = (per.loc[name, "bookings"] - per.loc[name, "cost"]) - (
            per.loc[REF, "bookings"] - per.loc[REF, "cost"])
        assert row["net_diff"] == pytest.approx(net.mean())
        nlow, nhigh = _ci(net)
        expected = ("no extra cost" if extra.mean() <= 0.005 * per.loc[name, "cost"].mean()
                    else "yes" if nlow > 0 else "no" if nhigh < 0 else "unclear")
        assert row["covers_cost"] == expected
        roi = ((per.loc[name, "bookings"] - per.loc[name, "cost"]) / per.loc[name, "cost"]).mean()
        assert row["roi"] == pytest.approx(roi)
    # Two more reps from month 3 cost 2 × 4 months × the cost per rep, in every replication.
    rep_cost = load_scenario("siloed").sales.cost_per_rep_month
    assert opts.loc[REPS, "extra_cost"] == pytest.approx(2 * 4 * rep_cost)


def test_headline_names_every_option_in_dollars_with_its_interval(decision_folder):
    res = load_results(decision_folder)
    table = summary_table(res)
    text = headline(res, table)
    final = _final(res.runs)
    for name, label in ((FIX, "Fix the hand-off"), (REPS, "Acme reps")):
        diff = final[name] - final[REF]
        low, high = _ci(diff)
        more = "more" if diff.mean() >= 0 else "less"
        phrase = (f"{label} books {decision.money(abs(diff.mean()))} {more}")
        assert phrase in text
        assert f"95% CI {decision.money(low, signed=True)} to {decision.money(high, signed=True)}" \
            in text
    assert text.startswith("Fix the hand-off books") and "than Siloed over 6 months" in text
    opts = decision.options(res, table).set_index("scenario")
    verdict = opts.loc[REPS, "covers_cost"]
    extra = decision.money(opts.loc[REPS, "extra_cost"])
    wording = {"yes": f"which covers its {extra} extra cost",
               "no": f"which does not cover its {extra} extra cost",
               "unclear": f"whether that covers its {extra} extra cost cannot be told"}[verdict]
    assert wording in text


def test_paired_difference_over_time_matches_the_runs(decision_folder):
    res = load_results(decision_folder)
    runs = decision.labelled_runs(res)
    diffs = decision.monthly_differences(runs)
    assert set(diffs["scenario"]) == {"Fix the hand-off", "Acme reps"}
    wide = runs.pivot_table(index=["replication", "month"], columns="scenario",
                            values="cumulative_bookings")
    d = (wide["Acme reps"] - wide["Siloed"]).xs(4, level="month")
    row = diffs[(diffs["scenario"] == "Acme reps") & (diffs["month"] == 4)].iloc[0]
    assert row["diff"] == pytest.approx(d.mean())
    assert (row["low"], row["high"]) == pytest.approx(_ci(d))
    # The chart draws the same numbers.
    fig, ax = plt.subplots()
    charts.plot_difference(runs, ax=ax)
    line = {ln.get_label(): ln for ln in ax.get_lines()}["Acme reps"]
    mine = diffs[diffs["scenario"] == "Acme reps"]
    np.testing.assert_allclose(line.get_ydata(), mine["diff"].to_numpy())
    plt.close(fig)
    # "Clear of zero from month m" means every later month's interval excludes zero.
    for name in ("Fix the hand-off", "Acme reps"):
        start = decision.clear_from(diffs, name)
        mine = diffs[diffs["scenario"] == name]
        if start is not None:
            later = mine[mine["month"] >= start]
            assert ((later["low"] > 0).all() or (later["high"] < 0).all())


def test_bands_are_confidence_intervals_of_the_mean_like_the_tables(decision_folder):
    res = load_results(decision_folder)
    band = charts._band(res.runs, "cumulative_bookings")
    final = res.runs[res.runs["month"] == res.months]
    x = final[final["scenario"] == FIX]["cumulative_bookings"].to_numpy()
    row = band[(band["scenario"] == FIX) & (band["month"] == res.months)].iloc[0]
    half = stats.t.ppf(0.975, len(x) - 1) * stats.sem(x)
    assert (row["lo"], row["hi"]) == pytest.approx((max(x.mean() - half, 0), x.mean() + half))
    table = summary_table(res)
    books = table[(table["scenario"] == FIX) & (table["outcome"] == "cumulative_bookings")].iloc[0]
    assert (books["ci_low"], books["ci_high"]) == pytest.approx((row["lo"], row["hi"]))


def test_settings_and_timeline_in_words():
    assert decision.setting_phrase("sales.reps", 8, capital=True) == "Sales reps 8"
    assert decision.setting_phrase("marketing.programs.paid_ads.monthly_budget", 0) == \
        "paid ads budget $0 a month"
    assert decision.setting_phrase("alignment.sla_days", 3) == "follow-up SLA 3 days"
    assert decision.setting_phrase("alignment.handoff_days", 0) == "hand-off as leads arrive"
    data = load_scenario("hire_and_cut").to_dict()
    assert decision.timeline_sentences(data) == [
        "From month 6: sales reps 6 (two reps join).",
        "From month 12: paid ads budget $0 a month (paid ads are cut)."]


# --------------------------------------------------------------------------- the page


def test_page_reads_as_a_decision(decision_folder, tmp_path):
    out = build_report(decision_folder, tmp_path / "report.html")
    page = out.read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", " ", re.sub(r"data:image/png;base64,[^\"]+", "", page))
    # Labels and questions, never ids or raw Python.
    assert "Fix the hand-off" in text and "acme_fix" not in text.split("Method and seeds")[0]
    assert "What does fixing the hand-off book?" in text
    assert "What do two more reps book?" in text
    assert "[{" not in text and "{'" not in text
    assert "From month 3: sales reps 6 (two reps join)." in text
    # The summary comes first, the method and seeds last.
    order = [text.index(s) for s in ("The options against Siloed", "What the intervals cover",
                                     "Key figures", "Charts", "Method and seeds")]
    assert order == sorted(order)
    res = load_results(decision_folder)
    for seed in res.manifest["seeds"]:
        assert str(seed) in text.split("Method and seeds")[1]
    assert "Only 4 replications" in text  # the few-replications warning
    assert "simulation noise" in text and "95% confidence interval of the mean" in text
    # One funnel chart, the difference chart, and no band of another kind.
    names = sorted(p.name for p in (tmp_path / "charts").glob("*.png"))
    assert sum("funnel" in n for n in names) == 1
    assert any("bookings_difference" in n for n in names)
    assert "90% of" not in text
    # Every option's row of the options table is on the page, numbers from the summary.
    opts = decision.options(res, summary_table(res))
    for row in decision.option_rows(opts):
        for cell in row:
            assert cell.split(" (")[0] in text


@pytest.mark.parametrize("plot", [charts.plot_difference, charts.plot_funnel_comparison])
def test_new_charts_keep_the_axes_convention(decision_folder, plot, monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("charts never call show()"))
    monkeypatch.setattr(plt.Figure, "savefig", lambda *a, **k: pytest.fail("charts never save"))
    runs = decision.labelled_runs(load_results(decision_folder))
    _fig, ax = plt.subplots()
    assert plot(runs, ax=ax) is ax and ax.get_title(loc="left")
    if plot is charts.plot_funnel_comparison:  # stage names from gtmsim.metrics; bar heights
        from gtmsim.metrics import METRICS

        assert [t.get_text() for t in ax.get_xticklabels()] == [
            METRICS[c].label for c in charts.FUNNEL_FLOWS]
        heights = sorted(round(p.get_height(), 6) for p in ax.patches)
        per = runs.groupby(["scenario", "replication"])[list(charts.FUNNEL_FLOWS)].sum()
        expected = per.groupby(level="scenario").mean().to_numpy().ravel()
        np.testing.assert_allclose(heights, sorted(np.round(expected, 6)))
    plt.close("all")


def _option(**kw):
    row = {"label": "Hire two reps", "bookings_diff": 43e3, "bookings_diff_low": -57e3,
           "bookings_diff_high": 143e3, "total_cost": 2e6, "extra_cost": 588e3,
           "net_diff": -545e3, "net_diff_low": -645e3, "net_diff_high": -445e3}
    row.update(kw)
    row["covers_cost"] = decision.covers(row)
    return row


def test_cost_cover_is_judged_on_the_net_interval():
    assert _option()["covers_cost"] == "no"
    assert _option(net_diff_low=10e3, net_diff_high=90e3)["covers_cost"] == "yes"
    assert _option(net_diff_low=-10e3, net_diff_high=90e3)["covers_cost"] == "unclear"
    assert _option(extra_cost=0.0)["covers_cost"] == "no extra cost"
    text = decision.option_sentence(_option(), "Today", 24)
    assert text == ("Hire two reps books $43k more than Today over 24 months (95% CI −$57k to "
                    "+$143k; not clearly different from Today), which does not cover its $588k "
                    "extra cost (net −$545k, 95% CI −$645k to −$445k)")
    cheaper = decision.option_sentence(_option(extra_cost=-50e3, bookings_diff_low=1e3), "Today",
                                       24, first=False)
    assert cheaper == "Hire two reps books $43k more (95% CI +$1k to +$143k), and costs $50k less"
