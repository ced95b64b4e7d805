"""Validation checks: their known answers, the `validate` command, and every check at CI size.

The checks themselves run the real model; here they run at the "ci" size (the whole file
takes about 80 s on two cores; docs/validation.md has the measured time). Criteria that
fail because of a known model issue may be listed in KNOWN_MODEL_ISSUES with the reason;
none are listed today, so every criterion must pass.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from gtmsim.cli import main
from gtmsim.marketing import monthly_reach
from gtmsim.model import FEEDBACK_MONTHS, simulate
from gtmsim.validation import (
    CHECKS,
    check_decay,
    ValidationError,
    bass_closed_form,
    bass_recursion,
    bass_scenario,
    capacity_scenario,
    check_names,
    expected_awareness,
    expected_bookings,
    family_z,
    results_table,
    run_checks,
    t_bound,
)

# (check, start of the criterion's text) -> why it fails today. See docs/validation.md.
# Empty since the model changes of 0fcb72b: the enterprise win rate is in range, and
# feedback is judged in steady state (its weak cold start is reported, not judged).
KNOWN_MODEL_ISSUES: dict[tuple[str, str], str] = {}

_cache: dict[str, object] = {}


def ci(name: str):
    """The check's result at CI size, run once per test session."""
    if name not in _cache:
        _cache[name] = run_checks(name, "ci")[0]
    return _cache[name]


def known(check: str, criterion: str) -> bool:
    return any(check == c and criterion.startswith(text) for c, text in KNOWN_MODEL_ISSUES)


# --------------------------------------------------------------------------- known answers


def test_bass_closed_form_starts_at_zero_peaks_at_its_known_time_and_saturates():
    p, q = 0.03, 0.38
    assert bass_closed_form(np.array([0.0]), p, q)[0] == 0
    assert bass_closed_form(np.array([200.0]), p, q)[0] == pytest.approx(1)
    # Adoption f = dF/dt peaks at t* = ln(q/p)/(p+q) (Bass 1969).
    t = np.linspace(0, 30, 30001)
    peak = t[np.argmax(np.gradient(bass_closed_form(t, p, q), t))]
    assert peak == pytest.approx(np.log(q / p) / (p + q), abs=1e-2)


def test_bass_recursion_is_exact_without_word_of_mouth_and_close_to_the_closed_form():
    months = np.arange(1, 25)
    assert_allclose(bass_recursion(0.05, 0.0, 24), 1 - np.exp(-0.05 * months), rtol=1e-12)
    # Daily steps lag the continuous curve only slightly (tolerance: 0.001).
    gap = np.abs(bass_recursion(0.03, 0.38, 24) - bass_closed_form(months, 0.03, 0.38))
    assert gap.max() < 1e-3


def test_bass_scenario_reaches_p_times_n_a_month_through_the_models_reach_curve():
    sc = bass_scenario(0.03, 0.38, 50_000, 12)
    prog = sc.marketing.programs["broad"]
    assert monthly_reach(prog.monthly_budget, prog, 50_000) == pytest.approx(0.03 * 50_000)
    assert sc.sales.reps == 0 and sc.market.word_of_mouth == 0.38
    assert sc.market.in_market_share == 0 and sc.market.initial_aware == 0
    with pytest.raises(ValidationError, match="p must be in"):
        bass_scenario(1.0, 0.38, 1000, 12)


def test_expected_awareness_is_zero_without_spend_and_concave_in_spend():
    args = {"prospects": 10_000, "months": 6, "cost_per_reach": 2.0, "carryover": 0.5,
            "saturation": 1.0, "slope": 1.0, "awareness": 0.3}
    assert expected_awareness(1e-9, **args)[0] == pytest.approx(0, abs=1e-9)
    shares = np.array([expected_awareness(b, **args)[0] for b in (1e3, 2e3, 3e3, 4e3)])
    assert np.all(np.diff(shares) > 0) and np.all(np.diff(shares, 2) < 0)


def test_expected_bookings_are_win_chance_times_value_in_the_month_of_the_close():
    model = simulate(capacity_scenario(3000, 3, reps=2), seed=1).model
    deals = model.log.frame("deals")
    assert len(deals) > 20 and deals["win_chance"].between(0, 1).all()
    exp = expected_bookings(model, 3)
    assert exp.sum() == pytest.approx((deals["win_chance"] * deals["value"]).sum())
    # The month a deal is counted in is the month the monthly table books its win in.
    won = deals[deals["won"]]
    realised = np.bincount(won["day"] // 30, weights=won["value"], minlength=3)
    assert_allclose(realised, model.monthly()["bookings"], rtol=1e-6)


def test_tolerance_bounds_keep_the_three_sigma_level():
    assert t_bound(10_000) == pytest.approx(3, abs=0.01)
    assert t_bound(20) == pytest.approx(3.45, abs=0.01) and t_bound(6) > t_bound(20)
    assert family_z(1) == pytest.approx(3)
    # 14 days each within family_z(14): all inside with the chance of one 3-SE comparison.
    inside = 1 - 2 * stats.norm.sf(family_z(14))
    assert inside**14 == pytest.approx(1 - 2 * stats.norm.sf(3))


def test_check_names_suggest_the_nearest_name_and_options_must_match_the_checks_run():
    assert check_names(None) == list(CHECKS)
    with pytest.raises(ValidationError, match="did you mean 'bass'"):
        check_names("bas")
    with pytest.raises(ValidationError, match="options given for checks not run"):
        run_checks("marketing", "ci", options={"bass": {"p": 0.1}})
    with pytest.raises(ValidationError, match="size"):
        run_checks("marketing", "huge")


# --------------------------------------------------------------------------- every check, CI size


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CHECKS))
def test_check_passes_at_ci_size_apart_from_known_model_issues(name):
    result = ci(name)
    assert result.criteria and all(c.check == name for c in result.criteria)
    unexpected = [f"{c.criterion}: {c.observed} (tolerance {c.tolerance})"
                  for c in result.criteria if c.status == "fail" and not known(name, c.criterion)]
    assert not unexpected, unexpected
    assert result.data and all(isinstance(df, pd.DataFrame) for df in result.data.values())


@pytest.mark.slow
def test_bass_ci_meets_the_issue_tolerances():
    result = ci("bass")
    closed = next(c for c in result.criteria if "closed form F(t)" in c.criterion)
    assert result.settings["prospects"] >= 100_000 and closed.observed_value <= 0.01
    curve = result.data["curve"]
    # 3 SE at 99.73%, with the SE estimated from the replications (Student t).
    assert result.settings["z_bound"] == pytest.approx(t_bound(result.settings["reps"]))
    assert np.all(np.abs(curve["z"]) <= result.settings["z_bound"])
    assert np.all(curve["small_world_minus_full"] <= 3 * curve["small_world_minus_full_se"])


@pytest.mark.slow
def test_capacity_ci_wins_match_littles_law():
    result = ci("capacity")
    s = result.settings
    expected = s["reps"] * s["deal_capacity"] * 30 / s["cycle_days"] * s["win_rate"]
    wins = next(c for c in result.criteria if c.criterion == "wins per month")
    assert wins.expected_value == pytest.approx(expected)
    assert abs(wins.observed_value / expected - 1) < 0.15


@pytest.mark.slow
def test_alignment_judges_feedback_in_steady_state_and_reports_its_cold_start():
    result = ci("alignment")
    s = result.settings
    assert s["best_segment"] == "enterprise"
    assert s["feedback_switch_month"] == 2 * FEEDBACK_MONTHS + 1
    assert len(s["feedback_seeds"]) > len(s["seeds"])
    by_start = {c.criterion.split(":")[0]: c for c in result.criteria}
    steady = by_start[f"feedback = 0.6 switched on in month {2 * FEEDBACK_MONTHS + 1} "
                      f"(after {2 * FEEDBACK_MONTHS} months of history)"]
    assert steady.status == "pass" and steady.observed_value > 0
    # The cold start (feedback from day 1) is reported at full size only.
    assert not s["cold_start"] and not any("from day 1" in c.criterion for c in result.criteria)
    enablement = by_start["enablement = 0.6"]
    assert "expected" in enablement.criterion and "realised" in enablement.observed


def test_a_forked_model_runs_on_exactly_as_a_fresh_run_with_the_change_in_its_timeline():
    from gtmsim.model import GTMModel
    from gtmsim.scenario import with_changes
    from gtmsim.validation import _fork, timing_scenario

    base = timing_scenario(5000)
    model = GTMModel(base, seed=3)
    model.run(2)
    twin = _fork(model, [{"month": 3, "set": {"alignment.feedback": 0.6, "sales.reps": 3}}])
    with pytest.raises(ValueError, match="past"):
        _fork(model, [{"month": 2, "set": {"sales.reps": 3}}])
    twin.run(2)
    model.run(2)
    fresh = GTMModel(with_changes(base, {"timeline": [
        {"month": 3, "set": {"alignment.feedback": 0.6, "sales.reps": 3}}]}), seed=3)
    fresh.run(4)
    pd.testing.assert_frame_equal(twin.monthly(), fresh.monthly())
    pd.testing.assert_frame_equal(model.monthly(), GTMModel(base, seed=3).run(4))
    assert not twin.monthly().equals(model.monthly())


@pytest.mark.slow
def test_funnel_expected_rates_rest_on_the_chances_the_model_drew_against():
    result = ci("funnel")
    premise = [c for c in result.criteria if "premise" in c.criterion]
    assert len(premise) == 2 and all(c.status == "pass" for c in premise)
    rates = [c for c in result.criteria if "→" in c.criterion]
    assert len(rates) == 8 and all("realised" in c.observed for c in rates)


# --------------------------------------------------------------------------- speed to lead


def test_speed_to_lead_ratios_are_measured_on_simulated_leads_and_a_flat_law_fails():
    result = check_decay(size="ci")
    rows = {c.criterion: c for c in result.criteria}
    assert len(rows) == 4 and all(c.status == "pass" for c in rows.values())
    # The observed ratio is read off the simulated responses, not the formula.
    by_hour = result.data["by_hour"]
    assert by_hour["responses"].sum() > 1000 and by_hour["reached"].iloc[0] > 0.3
    within = rows["hand-raisers' first contact within 1 h ÷ at 24 h or more"]
    assert 20 < within.observed_value < 300
    # The same pool under a law without hot interest (contact never falls with waiting):
    # every published comparison fails, the captured-lead row still passes.
    flat = check_decay(size="ci", law={"response_lasting": 1.0, "response_decay_power": 0.0})
    status = [c.status for c in flat.criteria]
    assert status == ["fail", "fail", "fail", "pass"], [c.observed for c in flat.criteria]


# --------------------------------------------------------------------------- the command


def test_validate_command_writes_table_data_and_charts(tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["validate", "decay", "--size", "ci", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "decay" in printed and "pass" in printed and str(out) in printed
    table = pd.read_csv(out / "validation.csv")
    assert list(table.columns[:6]) == ["check", "criterion", "expected", "observed", "tolerance",
                                       "status"]
    assert set(table["status"]) == {"pass"}
    summary = json.loads((out / "validation.json").read_text())
    assert summary["passed"] and summary["checks"][0]["name"] == "decay"
    assert summary["checks"][0]["settings"]["reps"] == 2
    png = (out / "decay.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "decay_by_hour.csv").exists()


def test_validate_json_and_quiet(tmp_path, capsys):
    out = tmp_path / "j"
    assert main(["validate", "decay", "--size", "ci", "--json", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["passed"] is True and summary["folder"] == str(out)
    assert {row["check"] for row in summary["criteria"]} == {"decay"}
    assert main(["validate", "decay", "--size", "ci", "-q", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)


def test_validate_bass_takes_its_numbers_and_exits_1_when_a_check_fails(tmp_path, capsys):
    # At q = 6 a month the model's daily steps (which it follows: the recursion row passes)
    # are too coarse for the continuous closed form, 0.07 away: exit code 1.
    out = tmp_path / "b"
    code = main(["validate", "bass", "--p", "0.01", "--q", "6", "--prospects", "100000",
                 "--months", "3", "--reps", "2", "--json", "--out", str(out)])
    assert code == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["passed"] is False
    status = {row["criterion"].split(" vs ")[-1]: row["status"] for row in summary["criteria"]}
    assert status["the discrete Bass recursion, every month"] == "pass"
    assert status["the closed form F(t)"] == "fail"
    stored = json.loads((out / "validation.json").read_text())["checks"][0]["settings"]
    assert (stored["p"], stored["q"], stored["prospects"], stored["months"], stored["reps"]) == (
        0.01, 6, 100_000, 3, 2)
    assert len(pd.read_csv(out / "bass_curve.csv")) == 3


@pytest.mark.parametrize("argv, message", [
    (["validate", "bas"], "did you mean 'bass'"),
    (["validate", "capacity", "--p", "0.1"], "set the bass check"),
    (["validate", "bass", "--p", "1.5"], "--p"),
    (["validate", "bass", "--reps", "1"], "--reps"),
])
def test_validate_bad_input_exits_2_with_a_message(argv, message, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "never")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_validate_refuses_an_output_folder_it_cannot_create_before_running(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["validate", "marketing", "--size", "ci", "--out", str(blocker / "v")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_results_table_has_one_row_per_criterion():
    from gtmsim.validation import CheckResult, Criterion

    rows = [Criterion("x", "a", "1", "1", "=", "pass", 1.0, 1.0),
            Criterion("x", "b", "1", "2", "=", "fail", 1.0, 2.0)]
    result = CheckResult("x", "t", "s", rows, {}, {})
    table = results_table([result])
    assert table["status"].tolist() == ["pass", "fail"] and not result.passed
