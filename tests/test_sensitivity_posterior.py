"""sensitivity --posterior: the keys a calibration fitted are drawn from its weighted
posterior (resampled, seeded) instead of uniform ranges; the posterior wins over a --vary
range of the same key; a folder that is not a finished calibration is refused.

The calibration folders are written by hand (a manifest, posterior.parquet and
summary.csv as `gtmsim calibrate` writes them): a real calibration takes minutes, and
what sensitivity reads is only these files.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gtmsim.analysis.sensitivity import posterior_sample, read_posterior, sensitivity
from gtmsim.cli import main
from gtmsim.scenario import ScenarioError

SMALL = ["market.prospects=2000"]
# Two particles carry all the weight; the third has none and must never be drawn.
SLA = [1.0, 2.5, 6.5]
REPS = [3, 6, 9]
WEIGHT = [0.7, 0.3, 0.0]


def calibration_folder(path, *, status="complete", fits=None, posterior=None):
    path.mkdir(parents=True)
    fits = fits or [{"key": "alignment.sla_days", "low": 0.0, "high": 7.0, "log": False,
                     "integer": False},
                    {"key": "sales.reps", "low": 2.0, "high": 10.0, "log": False,
                     "integer": True}]
    post = posterior if posterior is not None else pd.DataFrame(
        {"alignment.sla_days": SLA, "sales.reps": REPS, "weight": WEIGHT})
    post.to_parquet(path / "posterior.parquet")
    pd.DataFrame({"key": [f["key"] for f in fits]}).to_csv(path / "summary.csv", index=False)
    (path / "manifest.json").write_text(json.dumps(
        {"kind": "calibration", "status": status, "fit": fits, "seed": 1}))
    return path


def test_weighted_resampling_follows_the_weights_and_is_seeded():
    post = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [10.0, 20.0, 30.0], "weight": [9, 1, 0]})
    draws = posterior_sample(post, ["a", "b"], 4000, 7)
    assert set(draws[:, 0]) == {1.0, 2.0}  # the zero-weight draw never comes
    assert np.all(draws[:, 1] == 10 * draws[:, 0])  # keys drawn jointly, not one by one
    assert abs(np.mean(draws[:, 0] == 1.0) - 0.9) < 0.03
    assert np.array_equal(draws, posterior_sample(post, ["a", "b"], 4000, 7))
    assert not np.array_equal(draws, posterior_sample(post, ["a", "b"], 4000, 8))


def test_decision_draws_the_fitted_keys_from_the_posterior(tmp_path):
    cal = calibration_folder(tmp_path / "cal")
    out = tmp_path / "d"
    result = sensitivity("baseline", ["alignment.sla_days=0:7",
                                      "marketing.programs.paid_ads.monthly_budget=1000:20000"],
                         posterior=cal, samples=12, reps=2, months=3, workers=1, out=out,
                         overrides=SMALL, decision=["siloed", "aligned"])
    assert result.method == "pawn"
    assert result.from_posterior == ["alignment.sla_days", "sales.reps"]
    assert result.vary_ignored == ["alignment.sla_days"]  # the posterior wins
    pts = pd.read_parquet(out / "points.parquet")
    assert set(pts["alignment.sla_days"]) <= {1.0, 2.5}  # not uniform over the range 0:7
    assert set(pts["sales.reps"]) <= {3, 6} and pts["sales.reps"].dtype.kind == "i"
    budget = pts["marketing.programs.paid_ads.monthly_budget"]
    assert budget.between(1000, 20000).all() and budget.nunique() == 12  # uniform, not drawn
    # both arms run at the same drawn points
    by_arm = pts.drop_duplicates(["point"]).groupby("arm")["alignment.sla_days"].apply(list)
    assert by_arm["siloed"] == by_arm["aligned"]
    d = result.decision
    assert d["points"] == 12 and d["p_low"] <= d["p_b_better"] <= d["p_high"]
    keys = result.indices["key"].tolist()
    assert set(keys[:-1]) == {"alignment.sla_days", "sales.reps",
                              "marketing.programs.paid_ads.monthly_budget"}
    assert list(result.indices.columns[:2]) == ["key", "median"]
    manifest = json.loads((out / "manifest.json").read_text())["sensitivity"]
    assert manifest["posterior"] == str(cal) and manifest["vary_ignored"] == ["alignment.sla_days"]
    again = sensitivity("baseline", [], posterior=cal, samples=12, reps=2, months=3, workers=1,
                        overrides=SMALL, decision=["siloed", "aligned"])
    assert again.points.drop_duplicates("point")["sales.reps"].tolist() == \
        pts.drop_duplicates("point")["sales.reps"].tolist()  # the same seed draws the same


def test_cli_posterior_prints_what_it_drew_and_what_won(tmp_path, capsys):
    cal = calibration_folder(tmp_path / "cal")
    assert main(["sensitivity", "baseline", "--posterior", str(cal), "--vary",
                 "sales.reps=2:4", "--decision", "siloed,aligned", "--samples", "8",
                 "--reps", "2", "--months", "3", "--set", SMALL[0], "--workers", "1",
                 "--out", str(tmp_path / "s")]) == 0
    printed = capsys.readouterr().out
    assert "Drawn from the posterior of" in printed and "PAWN indices" in printed
    assert "--vary ranges not used (the posterior wins): sales.reps." in printed


def test_a_pawn_folder_gets_its_report_page(tmp_path, capsys):
    cal = calibration_folder(tmp_path / "cal")
    out = tmp_path / "s"
    assert main(["sensitivity", "baseline", "--posterior", str(cal), "--vary",
                 "marketing.programs.paid_ads.monthly_budget=1000:20000", "--samples", "8",
                 "--reps", "2", "--months", "3", "--set", SMALL[0], "--workers", "1",
                 "--out", str(out), "--report", "-q"]) == 0
    page = (out / "report.html").read_text()
    indices = pd.read_csv(out / "indices.csv")
    top = indices[indices["key"] != "(replication noise)"].sort_values("median").iloc[-1]
    assert "PAWN indices" in page and f"PAWN median index {top['median']:.2f}" in page
    assert "drawn from a calibration&#x27;s posterior" in page or \
        "drawn from a calibration's posterior" in page


@pytest.mark.parametrize("make, expected", [
    (lambda p: calibration_folder(p, status="interrupted"), "the calibration did not finish"),
    (lambda p: p.mkdir(), "not a finished calibration folder"),
    (lambda p: calibration_folder(p, posterior=pd.DataFrame(
        {"alignment.sla_days": SLA, "sales.reps": REPS, "weight": [0.0, 0.0, 0.0]})),
     "no usable weights"),
    (lambda p: calibration_folder(p, fits=[{"key": "sales.repz", "low": 2.0, "high": 9.0}],
                                  posterior=pd.DataFrame({"sales.repz": [3], "weight": [1]})),
     "fitted key sales.repz"),
])
def test_a_folder_that_is_not_a_finished_calibration_is_refused(tmp_path, capsys, make,
                                                                 expected):
    make(tmp_path / "cal")
    out = tmp_path / "s"
    assert main(["sensitivity", "baseline", "--posterior", str(tmp_path / "cal"),
                 "--vary", "sales.reps=8:2", "--decision", "siloed,aligned",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "LOW must be below HIGH" in err  # every problem at once
    assert not out.exists()


def test_morris_or_sobol_with_a_posterior_is_refused(tmp_path):
    cal = calibration_folder(tmp_path / "cal")
    with pytest.raises(ScenarioError, match="posterior draws are analysed with --method pawn"):
        sensitivity("baseline", [], posterior=cal, method="morris")
    fits, post = read_posterior(cal)
    assert [f.key for f in fits] == ["alignment.sla_days", "sales.reps"] and len(post) == 3


def test_pawn_ranks_a_key_with_effect_first_and_one_without_near_the_no_effect_line():
    from gtmsim.analysis.sensitivity import Range, analyse, draw, pawn_floor

    ranges = [Range("a", 0, 1), Range("none", 0, 1)]
    x = draw(ranges, "pawn", 400, seed=3)
    y = 3 * x[:, 0] + np.random.default_rng(4).normal(0, 0.1, 400)
    table = analyse(ranges, "pawn", x, y, seed=3).set_index("key")
    floor = pawn_floor(y, 3)["median"]
    assert table.index[0] == "a" and table.loc["a", "median"] > 0.5
    assert table.loc["none", "median"] < 0.2 and floor < 0.2
    assert abs(table.loc["none", "median"] - floor) < 0.1


@pytest.mark.slow
def test_a_real_calibration_folder_feeds_the_decision(tmp_path):
    """The same through a folder `calibrate` wrote (a tiny, quick one)."""
    from gtmsim import calibrate, load_scenario, simulate
    from gtmsim.results import write_run

    tiny = ["market.prospects=2000", "market.in_market_share=0.2", "months=6"]
    write_run(simulate(load_scenario("baseline", [*tiny, "market.qualify_rate=0.5"]), seed=2,
                       months=6), tmp_path / "truth")
    history = tmp_path / "history.csv"
    assert main(["history", str(tmp_path / "truth"), "-o", str(history), "--columns",
                 "new_leads,new_opportunities,reps,marketing_spend"]) == 0
    calibrate("baseline", history, ["market.qualify_rate=0.05:0.95"], overrides=tiny,
              population=8, generations=2, sims=1000, seed=5, ppc_draws=4, workers=1,
              out=tmp_path / "cal")
    fits, post = read_posterior(tmp_path / "cal")
    # points run at 12 significant digits (as every sampled value)
    drawable = {float(f"{v:.12g}") for v in post.loc[post["weight"] > 0, "market.qualify_rate"]}
    result = sensitivity("baseline", [], posterior=tmp_path / "cal", samples=8, reps=2,
                         months=3, workers=1, overrides=SMALL, decision=["siloed", "aligned"])
    assert [f.key for f in fits] == result.from_posterior == ["market.qualify_rate"]
    assert set(result.points["market.qualify_rate"]) <= drawable
    assert result.decision["points"] == 8
