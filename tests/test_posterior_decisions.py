"""--posterior for explain and optimize: replication r of every arm runs on seed r and on
posterior draw r of the calibrated keys, so the paired differences stay paired and carry
the calibration's uncertainty.

The calibration folders are written by hand, as in test_sensitivity_posterior.py (a real
calibration takes minutes; what the verbs read is only its manifest and posterior).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gtmsim import load_scenario, simulate
from gtmsim.analysis import optimize as opt
from gtmsim.analysis.explain import explain
from gtmsim.analysis.points import posterior_draws
from gtmsim.cli import main
from gtmsim.experiment import ExperimentError, compare
from gtmsim.metrics import COLUMNS
from gtmsim.report_analysis import build_report
from gtmsim.scenario import ScenarioError

SMALL = {"market.prospects": 2000}
QUALIFY = "market.qualify_rate"
REPS = "sales.reps"


def calibration_folder(path, rows, fits=None):
    """A finished calibration's files: `rows` are {key: value, ..., "weight": w}."""
    path.mkdir(parents=True)
    fits = fits or [{"key": QUALIFY, "low": 0.05, "high": 0.95, "log": False, "integer": False},
                    {"key": REPS, "low": 1.0, "high": 9.0, "log": False, "integer": True}]
    pd.DataFrame(rows).to_parquet(path / "posterior.parquet")
    pd.DataFrame({"key": [f["key"] for f in fits]}).to_csv(path / "summary.csv", index=False)
    (path / "manifest.json").write_text(json.dumps(
        {"kind": "calibration", "status": "complete", "fit": fits, "seed": 1}))
    return path


@pytest.fixture
def one_point(tmp_path):
    """A posterior that is sure: every draw is qualify_rate 0.3, 2 reps."""
    return calibration_folder(tmp_path / "sure", {QUALIFY: [0.3, 0.8], REPS: [2, 7],
                                                  "weight": [1.0, 0.0]})


@pytest.fixture
def spread(tmp_path):
    return calibration_folder(tmp_path / "spread", {QUALIFY: [0.2, 0.5, 0.8], REPS: [2, 4, 6],
                                                    "weight": [0.5, 0.3, 0.2]})


def test_draws_are_joint_seeded_and_whole_numbers_stay_whole(spread):
    keys, draws = posterior_draws(spread, 400, (3, 1))
    assert keys == [QUALIFY, REPS]
    pairs = {(d[QUALIFY], d[REPS]) for d in draws}
    assert pairs == {(0.2, 2), (0.5, 4), (0.8, 6)}  # jointly, never mixed
    assert all(isinstance(d[REPS], int) and isinstance(d[QUALIFY], float) for d in draws)
    assert abs(sum(d[QUALIFY] == 0.2 for d in draws) / 400 - 0.5) < 0.08
    assert posterior_draws(spread, 400, (3, 1))[1] == draws
    assert posterior_draws(spread, 400, (4, 1))[1] != draws


def test_compare_on_draws_runs_each_replication_on_its_draw(tmp_path):
    draws = [{REPS: 2, QUALIFY: 0.2}, {REPS: 6, QUALIFY: 0.7}]
    e = compare(["siloed", "aligned"], reps=2, seed=5, months=3, overrides=SMALL, workers=1,
                draws=draws, out=tmp_path / "c")
    for name in ("siloed", "aligned"):
        for r, d in enumerate(draws):
            alone = simulate(load_scenario(name, {**SMALL, **d}), seed=e.seeds[r], months=3).monthly
            got = e.runs[(e.runs["scenario"] == name) & (e.runs["replication"] == r)]
            assert np.array_equal(got[list(COLUMNS)].to_numpy(dtype=float),
                                  alone[list(COLUMNS)].to_numpy(dtype=float), equal_nan=True)
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["draws"] == draws
    # Resume reads everything back; one more replication with the same first draws extends.
    again = compare(["siloed", "aligned"], reps=2, seed=5, months=3, overrides=SMALL,
                    workers=1, draws=draws, out=tmp_path / "c", resume=True)
    assert again.resumed == 4
    more = compare(["siloed", "aligned"], reps=3, seed=5, months=3, overrides=SMALL, workers=1,
                   draws=[*draws, {REPS: 4, QUALIFY: 0.4}], out=tmp_path / "c", resume=True)
    assert more.resumed == 4 and len(more.runs) == 2 * 3 * 3
    with pytest.raises(ExperimentError, match="differs|different"):
        compare(["siloed", "aligned"], reps=2, seed=5, months=3, overrides=SMALL, workers=1,
                draws=[{REPS: 3, QUALIFY: 0.2}, draws[1]], out=tmp_path / "c", resume=True)
    with pytest.raises(ExperimentError, match="one mapping of keys to values per replication"):
        compare(["siloed"], reps=3, months=3, overrides=SMALL, workers=1, draws=draws)
    with pytest.raises(ScenarioError, match="posterior draw 0"):
        compare(["siloed"], reps=1, months=3, overrides=SMALL, workers=1,
                draws=[{QUALIFY: "high"}])


def test_explain_on_a_sure_posterior_equals_explain_with_those_values_set(one_point, tmp_path):
    common = {"factors": ["alignment.sla_days"], "reps": 3, "seed": 2, "months": 3,
              "workers": 1, "charts": False}
    drawn = explain("siloed", "aligned", overrides=SMALL, posterior=one_point,
                    out=tmp_path / "drawn", **common)
    fixed = explain("siloed", "aligned", overrides={**SMALL, QUALIFY: 0.3, REPS: 2},
                    out=tmp_path / "fixed", **common)
    cols = ["outcome", "factor", "contribution", "ci_low", "ci_high"]
    pd.testing.assert_frame_equal(drawn.contributions[cols], fixed.contributions[cols])
    assert drawn.posterior == one_point and fixed.posterior is None
    manifest = json.loads((tmp_path / "drawn" / "manifest.json").read_text())
    assert manifest["explain"]["posterior"] == str(one_point)
    assert manifest["draws"] == [{QUALIFY: 0.3, REPS: 2}] * 3
    page = build_report(tmp_path / "drawn").read_text()
    assert "draw r of the posterior" in page and "1 distinct draws" in page
    assert "draw r of the posterior" not in build_report(tmp_path / "fixed").read_text()


def test_explain_with_a_spread_posterior_widens_what_the_runs_cover(spread, tmp_path):
    e = explain("siloed", "aligned", factors=["alignment.sla_days"], reps=6, seed=2, months=3,
                workers=1, charts=False, overrides=SMALL, posterior=spread)
    contrib = e.contributions.groupby("outcome")["contribution"].sum()
    gaps = e.gaps.set_index("outcome")["gap"].dropna()  # payback: not within 3 months
    assert len(gaps) >= 8
    assert np.allclose(contrib[gaps.index], gaps, rtol=1e-9, atol=1e-6)  # still sums to the gap
    team = e.experiment.runs.groupby("replication")["reps"].first()
    assert team.nunique() > 1  # the replications ran on different draws of sales.reps


def test_a_calibrated_key_the_verb_also_sets_is_refused(tmp_path, one_point):
    sla = calibration_folder(tmp_path / "sla", {"alignment.sla_days": [1.0], "weight": [1.0]},
                             fits=[{"key": "alignment.sla_days", "low": 0.0, "high": 7.0,
                                    "log": False, "integer": False}])
    with pytest.raises(ScenarioError) as info:
        explain("siloed", "aligned", reps=2, months=3, overrides=SMALL, posterior=sla,
                workers=1, out=tmp_path / "x")
    assert "alignment.sla_days is fitted by the calibration and also set by the factor" in \
        str(info.value)
    with pytest.raises(ScenarioError, match="also set by --set"):
        explain("siloed", "aligned", reps=2, months=3, overrides={**SMALL, REPS: 3},
                posterior=one_point, workers=1, out=tmp_path / "x")
    with pytest.raises(ScenarioError) as info:
        opt.optimize("baseline", [f"{REPS}=2:6:int"], trials=2, reps=2, months=3,
                     overrides=SMALL, posterior=one_point, workers=1, out=tmp_path / "o")
    assert "sales.reps is fitted by the calibration and also set by --vary" in str(info.value)
    assert not (tmp_path / "x").exists() and not (tmp_path / "o").exists()


def test_optimize_on_a_sure_posterior_equals_optimize_with_those_values_set(one_point, tmp_path):
    common = {"trials": 3, "reps": 2, "top": 1, "seed": 4, "months": 3, "workers": 1,
              "startup_trials": 3}
    vary = ["marketing.programs.paid_ads.monthly_budget=0:40000"]
    drawn = opt.optimize("baseline", vary, overrides=SMALL, posterior=one_point,
                         out=tmp_path / "drawn", **common)
    fixed = opt.optimize("baseline", vary, overrides={**SMALL, QUALIFY: 0.3, REPS: 2},
                         out=tmp_path / "fixed", **common)
    cols = ["trial", "marketing.programs.paid_ads.monthly_budget", "bookings_mean", "bookings_se"]
    pd.testing.assert_frame_equal(drawn.trials[cols], fixed.trials[cols])
    manifest = json.loads((tmp_path / "drawn" / "manifest.json").read_text())
    assert manifest["posterior"] == str(one_point)
    assert manifest["draws"] == [{QUALIFY: 0.3, REPS: 2}] * 2
    reeval = json.loads((tmp_path / "drawn" / opt.REEVALUATION_DIR / "manifest.json").read_text())
    assert reeval["draws"] == [{QUALIFY: 0.3, REPS: 2}] * 2
    page = build_report(tmp_path / "drawn").read_text()
    assert "every trial also ran on draw r of the posterior" in page
    assert "The re-evaluation drew afresh" in page


def test_optimize_re_evaluates_on_fresh_draws(spread, tmp_path):
    opt.optimize("baseline", ["marketing.programs.paid_ads.monthly_budget=0:40000"], trials=2,
                 reps=4, top=1, seed=4, months=2, workers=1, startup_trials=2,
                 overrides=SMALL, posterior=spread, out=tmp_path / "o")
    search = json.loads((tmp_path / "o" / "manifest.json").read_text())["draws"]
    reeval = json.loads((tmp_path / "o" / opt.REEVALUATION_DIR / "manifest.json").read_text())
    assert len(search) == len(reeval["draws"]) == 4
    assert search != reeval["draws"]


def test_cli_posterior_refusals_exit_2_and_write_nothing(tmp_path, capsys, one_point):
    out = tmp_path / "x"
    code = main(["explain", "siloed", "aligned", "--posterior", str(tmp_path / "nowhere"),
                 "--months", "3", "--set", "market.prospects=2000", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "not a finished calibration folder" in err and "unexpected error" not in err
    code = main(["optimize", "baseline", "--vary", "sales.reps=2:6:int", "--posterior",
                 str(one_point), "--months", "3", "--trials", "2", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "sales.reps is fitted by the calibration and also set by --vary" in err
    assert not out.exists()


def test_cli_explain_posterior_json(tmp_path, capsys, one_point):
    code = main(["explain", "siloed", "aligned", "--factors", "alignment.sla_days",
                 "--posterior", str(one_point), "--reps", "2", "--months", "2", "--workers", "1",
                 "--set", "market.prospects=2000", "--out", str(tmp_path / "e"), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["posterior"] == str(one_point)


def test_a_draw_the_scenario_refuses_is_reported_before_anything_is_written(tmp_path):
    bad = calibration_folder(tmp_path / "bad", {QUALIFY: [1.7], REPS: [3], "weight": [1.0]})
    with pytest.raises(ScenarioError) as info:
        opt.optimize("baseline", ["marketing.programs.paid_ads.monthly_budget=0:40000"],
                     trials=2, reps=2, months=3, overrides=SMALL, posterior=bad, workers=1,
                     out=tmp_path / "o")
    assert f"--posterior {bad}" in str(info.value) and QUALIFY in str(info.value)
    assert not (tmp_path / "o").exists()
    # explain --force on a finished folder: the refusal leaves its results in place
    out = tmp_path / "e"
    common = {"factors": ["alignment.sla_days"], "reps": 2, "seed": 2, "months": 2,
              "workers": 1, "charts": False, "overrides": SMALL}
    explain("siloed", "aligned", out=out, **common)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(ScenarioError, match=QUALIFY.replace(".", r"\.")):
        explain("siloed", "aligned", out=out, force=True, posterior=bad, **common)
    assert sorted(p.name for p in out.iterdir()) == before
    assert "contributions.csv" in before


def test_optimize_resumes_whatever_the_path_of_the_calibration_is_typed_as(
        one_point, tmp_path, monkeypatch):
    monkeypatch.chdir(one_point.parent)
    args = {"trials": 2, "reps": 2, "top": 1, "seed": 4, "months": 2, "workers": 1,
            "startup_trials": 2, "overrides": SMALL, "out": tmp_path / "o"}
    vary = ["marketing.programs.paid_ads.monthly_budget=0:40000"]
    opt.optimize("baseline", vary, posterior=one_point.name, **args)
    more = opt.optimize("baseline", vary, posterior=one_point.resolve(), resume=True,
                        **{**args, "trials": 3})
    assert int(more.trials["simulated"].sum()) == 3 and more.resumed == 2


def test_limits_a_plan_fixes_are_judged_on_the_drawn_values(one_point, tmp_path):
    """The start has more reps than the limit; every draw has 2: plans are within it."""
    start = load_scenario("baseline", SMALL)
    assert start.sales.reps > 3
    args = {"trials": 2, "reps": 2, "top": 1, "seed": 4, "months": 2, "workers": 1,
            "startup_trials": 2, "overrides": SMALL, "constraints": ["headcount<=3"]}
    vary = ["marketing.programs.paid_ads.monthly_budget=0:40000"]
    drawn = opt.optimize("baseline", vary, posterior=one_point, out=tmp_path / "d", **args)
    assert int(drawn.trials["simulated"].sum()) == 2 and drawn.trials["feasible"].all()
    assert opt._plan_quantities_over(start, 2, None)["headcount"] == start.sales.reps
    mixed = opt._plan_quantities_over(start, 2, [{REPS: 2}, {REPS: 6}])
    assert mixed["headcount"] == 4.0  # the mean over the replications' draws
    assert mixed["sales_cost"] == 4 * start.sales.cost_per_rep_month
