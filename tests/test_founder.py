"""The founder's split week: the [founder] section, what it resolves to, and its trade-off."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gtmsim.cli import main
from gtmsim.founder import (
    crossing_month,
    hours,
    made_by_founder,
    paired_difference,
    programs_in_force,
    sales_in_force,
    trade_off,
)
from gtmsim.model import GTMModel, simulate
from gtmsim.scenario import ScenarioError, load_scenario, with_changes

DATA = Path(__file__).parent / "data"
SMALL = {"market.prospects": 2000}


def problems(path_or_name, overrides=None) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path_or_name, overrides)
    return info.value.problems


# ---------------------------------------------------------------- the section


def test_founder_led_is_one_person_whose_week_sets_selling_and_marketing():
    sc = load_scenario("founder_led")
    f = sc.founder
    assert f is not None and sc.sales.reps == 1  # no sales.reps in the file: one person
    selling, marketing = hours(f)
    assert selling + marketing == pytest.approx(f.weekly_hours)
    scale_s, scale_m = selling / f.full_time_hours, marketing / f.full_time_hours
    sales = sales_in_force(sc)
    assert sales.reps == 1
    assert sales.touches_per_day == pytest.approx(sc.sales.touches_per_day * scale_s)
    assert sales.deal_capacity == round(sc.sales.deal_capacity * scale_s)
    # Content and email are made by hand: their touches scale with the marketing hours.
    assert sorted(made_by_founder(sc)) == ["founder_content", "newsletter"]
    for name, prog in programs_in_force(sc).items():
        declared = sc.marketing.programs[name]
        assert prog.cost_per_reach == pytest.approx(declared.cost_per_reach / scale_m)
        assert prog.monthly_budget == declared.monthly_budget  # the cash does not scale


def test_paid_ads_are_bought_with_money_and_do_not_follow_the_hours():
    sc = load_scenario("founder_led", {
        "marketing.programs.ads.channel": "paid_ads",
        "marketing.programs.ads.monthly_budget": 500,
        "marketing.programs.ads.cost_per_reach": 2.0})
    assert "ads" not in made_by_founder(sc)
    assert programs_in_force(sc)["ads"] == sc.marketing.programs["ads"]
    named = with_changes(sc, {"founder.programs": ["ads"]})
    assert made_by_founder(named) == ["ads"]
    assert programs_in_force(named)["founder_content"] == sc.marketing.programs["founder_content"]


def test_the_extremes_of_the_week():
    all_selling = load_scenario("founder_led", {"founder.selling_share": 1.0})
    assert all(math.isinf(p.cost_per_reach) for p in programs_in_force(all_selling).values())
    no_selling = load_scenario("founder_led", {"founder.selling_share": 0.0})
    assert sales_in_force(no_selling).reps == 0
    # A few selling hours still carry one deal.
    few = load_scenario("founder_led", {"founder.selling_share": 0.01})
    assert sales_in_force(few).deal_capacity == 1


def test_a_scenario_without_a_founder_is_unchanged_and_keeps_its_identity():
    sc = load_scenario("baseline")
    assert sc.founder is None
    assert sales_in_force(sc) is sc.sales
    assert programs_in_force(sc) is sc.marketing.programs
    assert "founder" not in sc.to_dict()
    assert "founder" in load_scenario("founder_led").to_dict()


@pytest.mark.parametrize(
    "file, expected",
    [
        ("founder_with_reps.toml", "sales.reps: the [founder] section makes the founder the "
                                   "whole sales team (one person); leave sales.reps out or set "
                                   "it to 1, got 3"),
        ("founder_share_range.toml", "founder.selling_share: must be ≤ 1.0, got 1.5"),
        ("founder_unknown_program.toml",
         "founder.programs: unknown program 'founder_contnet'; expected one of "
         "founder_content, newsletter"),
        ("founder_timeline_reps.toml", "timeline[0].set.sales.reps: the [founder] section"),
        ("founder_no_hours.toml", "founder.weekly_hours: required key is missing"),
    ],
)
def test_each_bad_founder_file_gets_one_message_naming_file_and_key(file, expected):
    found = problems(DATA / file)
    assert len(found) == 1, found
    assert found[0].startswith(str((DATA / file).resolve()) + ": "), found[0]
    assert expected in found[0], found[0]


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("founder.weekly_hours", 0, "founder.weekly_hours: must be > 0.0"),
        ("founder.weekly_hours", 200, "founder.weekly_hours: must be ≤ 168.0"),
        ("founder.selling_share", -0.1, "founder.selling_share: must be ≥ 0.0"),
        ("founder.selling_share", "half", "founder.selling_share: must be a number"),
        ("founder.full_time_hours", 0, "founder.full_time_hours: must be > 0.0"),
        ("founder.weekly_hour", 50, "founder.weekly_hour: unknown key; did you mean 'weekly_hours'?"),
        ("sales.reps", 4, "sales.reps: the [founder] section"),
    ],
)
def test_bad_founder_overrides_name_the_key(key, value, expected):
    found = problems("founder_led", {key: value})
    assert len(found) == 1, found
    assert found[0].startswith(f"--set {key}: "), found[0]
    assert expected in found[0], found[0]


def test_timeline_founder_changes_get_the_same_checks(tmp_path):
    bad = tmp_path / "shift.toml"
    bad.write_text('extends = "founder_led"\n[[timeline]]\nmonth = 6\n'
                   'set = { "founder.selling_share" = 1.5 }\n', encoding="utf-8")
    found = problems(bad)
    assert len(found) == 1 and "timeline[0].set.founder.selling_share: must be ≤ 1.0, got 1.5" \
        in found[0], found
    # An unknown founder key in a timeline entry gets the nearest name.
    late = tmp_path / "late.toml"
    late.write_text('extends = "founder_led"\n[founder]\nweekly_hours = 40\nselling_share = 0.5\n'
                    '[[timeline]]\nmonth = 2\nset = { "founder.weekly_hour" = 30 }\n',
                    encoding="utf-8")
    assert "timeline[0].set.founder.weekly_hour: unknown key; did you mean 'weekly_hours'?" \
        in problems(late)[0]
    assert len(problems("founder_led", {"sales.reps": 2.5})) == 1  # a type error, once


def test_sales_reps_one_is_not_a_contradiction():
    assert load_scenario("founder_led", {"sales.reps": 1}).sales.reps == 1


# ---------------------------------------------------------------- in the model


def test_the_model_runs_the_week_it_is_given():
    runs = {share: simulate(load_scenario("founder_led", {**SMALL, "founder.selling_share": share}),
                            seed=3, months=3) for share in (0.0, 1.0)}
    none_selling = runs[0.0]
    assert (none_selling.monthly["reps"] == 0).all()
    assert none_selling.monthly["wins"].sum() == 0
    all_selling = runs[1.0].model
    assert sum(p.touches for p in all_selling.programs.values()) == 0
    assert all_selling.sales_config.touches_per_day == pytest.approx(
        all_selling.config.sales.touches_per_day * 50 / 40)


def test_a_founder_who_shifts_the_week_at_month_6():
    base = load_scenario("founder_led", {**SMALL, "founder.selling_share": 0.8})
    shifted = with_changes(base, {"timeline": [
        {"month": 6, "set": {"founder.selling_share": 0.2}, "note": "back to writing"}]})
    model = GTMModel(shifted, seed=5)
    model.run(5)
    assert model.sales_config.deal_capacity == round(16 * 40 / 40)
    model.run(1)
    assert model.config.founder.selling_share == 0.2
    assert model.sales_config.deal_capacity == round(16 * 10 / 40)
    same = simulate(base, seed=5, months=7).monthly
    model.run(1)
    after = model.monthly()
    cols = ["cumulative_bookings", "new_leads", "new_aware"]
    # The same run until the shift (common random numbers), another week after it.
    pd.testing.assert_frame_equal(after[cols].iloc[:5], same[cols].iloc[:5])
    assert not after[cols].iloc[5:].equals(same[cols].iloc[5:])


def test_selling_share_is_sweepable_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", "founder_led", "--vary", "founder.selling_share=0.2,0.8",
                 "--reps", "1", "--months", "2", "--set", "market.prospects=2000",
                 "--workers", "1", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "sweep" and report["runs"] == 2
    runs = pd.read_parquet(out / "runs.parquet")
    assert sorted(runs["founder.selling_share"].unique()) == [0.2, 0.8]


# ---------------------------------------------------------------- the trade-off


def test_crossing_month_is_where_the_early_laggard_takes_the_lead_for_good():
    assert crossing_month([0, -1, -2, -1, 1, 2, 3]) == 5
    assert crossing_month([0, 1, 2, -1, 1, -2, -3]) == 6  # a lead lost again does not count
    assert crossing_month([0, -1, -2, -3]) is None  # never overtaken
    assert crossing_month([0, 0, 0, 1, 2]) is None  # no one leads at month 3
    assert crossing_month([0, -1, -2, 0, 3], early_month=2) == 5  # a tie is not a lead
    assert crossing_month([1, 2], early_month=3) is None


def test_marketing_hours_make_leads_and_selling_hours_carry_them():
    runs = trade_off("founder_led", (0.8, 0.2), reps=4, seed=0, months=12)
    assert set(runs["selling_share"]) == {0.8, 0.2}
    assert runs.groupby("selling_share").size().tolist() == [4 * 12, 4 * 12]
    early_leads = paired_difference(runs, "new_leads", 0.2, 0.8)[:, :3].sum(axis=1)
    assert early_leads.mean() > 3 * early_leads.std(ddof=1) / 2  # 3 SE over 4 seeds
    util = paired_difference(runs, "rep_utilization", 0.2, 0.8)[:, 9:12].mean(axis=1)
    assert util.mean() > 3 * util.std(ddof=1) / 2
    # Paired: the same seeds in both weeks.
    seeds = runs.groupby("selling_share")["seed"].unique()
    assert all(np.array_equal(s, seeds.iloc[0]) for s in seeds)


def test_trade_off_needs_a_founder():
    with pytest.raises(ScenarioError, match="founder: the trade-off needs a"):
        trade_off("baseline", reps=1, months=1)


def test_the_founder_check_reports_the_crossing_and_early_lead_it_measured():
    from gtmsim.validation import run_checks

    result = run_checks("founder", "ci")[0]
    rows = {c.criterion.split(":")[0]: c for c in result.criteria}
    diff = result.data["difference"]["difference_mean"].to_numpy()
    early = next(c for c in result.criteria if "lead in cumulative bookings" in c.criterion)
    assert early.status == "info" and early.observed_value == pytest.approx(diff[2])
    cross = next(c for c in result.criteria if c.criterion.startswith("month cumulative"))
    measured = crossing_month(diff)
    assert cross.status == "info"
    assert cross.observed_value == (None if measured is None else float(measured))
    assert result.settings["crossing_month"] == measured
    assert len(rows) == 4 and result.passed
