"""Calibration and forecasts: recovery of known parameters from a synthetic history made
with `history`, predictive coverage, resume, bad input, and forecasts from the posterior.

CI-sized: a 4,000-prospect company over 8 months, two fitted keys, 30 particles.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gtmsim import load_scenario, simulate
from gtmsim.calibration import calibrate, read_calibration
from gtmsim.cli import main
from gtmsim.forecasting import forecast
from gtmsim.results import write_run

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"
# A small market that is busy enough to show a funnel in a few months.
# Eight reps keep the team from capping opportunities, so the qualify rate shows in them.
SMALL = ["market.prospects=4000", "market.in_market_share=0.2", "market.initial_aware=0.4",
         "sales.reps=8", "months=8"]
TRUTH = {"market.qualify_rate": 0.5}
FITS = ["market.qualify_rate=0.05:0.95",         # sets opportunities per lead: identifiable
        "sales.cost_per_rep_month=5000:30000"]  # moves only costs: not in the fitted columns
COLUMNS = ["new_leads", "new_opportunities", "wins"]


# The company's run: seed 2 books 93 opportunities in 8 months where runs of the true
# parameters average 96 (sd 11). A 90% interval misses the truth for one history in ten by
# design (seed 99, +1.8 sd, is one); the recovery test is meant to catch a biased or
# overconfident fit on a typical history, not to play that lottery.
COMPANY_SEED = 2


def make_company(folder: Path, overrides: list[str], truth: dict, months: int,
                 columns: list[str]) -> Path:
    """A synthetic company: one run with known parameters, written with `history`."""
    sc = load_scenario("baseline", [*overrides, *(f"{k}={v}" for k, v in truth.items())])
    write_run(simulate(sc, seed=COMPANY_SEED, months=months), folder / "truth")
    path = folder / "history.csv"
    assert main(["history", str(folder / "truth"), "-o", str(path), "--columns",
                 ",".join([*columns, "reps", "marketing_spend"])]) == 0
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cal")
    history = make_company(folder, SMALL, TRUTH, 8, COLUMNS)
    cal = calibrate("baseline", history, FITS, overrides=SMALL, population=30, generations=4,
                    sims=700, seed=1, workers=1, ppc_draws=20, out=folder / "out")
    return cal


def test_recovers_the_true_value_and_contracts(fitted):
    s = fitted.summary.set_index("key")
    q = s.loc["market.qualify_rate"]
    assert q["q05"] <= TRUTH["market.qualify_rate"] <= q["q95"], s
    assert q["contraction"] >= 0.5, s


def test_a_key_without_effect_stays_near_its_prior(fitted):
    c = fitted.summary.set_index("key").loc["sales.cost_per_rep_month"]
    assert c["contraction"] < 0.3, c
    assert c["q05"] < 10_000 and c["q95"] > 25_000, c


def test_predictive_bands_cover_the_history_near_their_rate(fitted):
    cov = fitted.coverage.set_index("column")
    assert list(cov.index) == [*COLUMNS, "all"]
    assert cov.loc["all", "months"] == 24
    assert 0.75 <= cov.loc["all", "in_90"] <= 1.0, cov
    assert 0.25 <= cov.loc["all", "in_50"] <= 0.85, cov


def test_folder_holds_every_file(fitted):
    folder = fitted.folder
    post = pd.read_parquet(folder / "posterior.parquet")
    assert list(post.columns) == ["market.qualify_rate", "sales.cost_per_rep_month", "weight"]
    assert len(post) == 30 and post["weight"].sum() == pytest.approx(1)
    assert post["market.qualify_rate"].between(0.1, 0.95).all()
    summary = pd.read_csv(folder / "summary.csv")
    assert list(summary.columns) == ["key", "prior", "prior_low", "prior_high", "mean", "median",
                                     "q05", "q95", "contraction"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "calibration" and manifest["status"] == "complete"
    assert manifest["seed"] == 1 and "pyabc" in manifest["versions"]
    gens = manifest["generations"]
    assert [g["generation"] for g in gens] == list(range(len(gens)))
    assert all(a["epsilon"] > b["epsilon"] for a, b in zip(gens, gens[1:]))  # tolerance shrinks
    import pyabc

    h = pyabc.History(f"sqlite:///{folder / 'abc.db'}", _id=1)
    assert h.max_t == len(gens) - 1
    assert (folder / "ppc.png").stat().st_size > 10_000
    ppc = pd.read_parquet(folder / "ppc.parquet")
    assert (ppc["q05"] <= ppc["q25"]).all() and (ppc["q75"] <= ppc["q95"]).all()
    assert not list(folder.glob(".*.tmp"))
    back = read_calibration(folder)
    pd.testing.assert_frame_equal(back.posterior, post)


def test_resume_after_interrupt_equals_an_uninterrupted_calibration(tmp_path):
    tiny = ["market.prospects=2000", "market.in_market_share=0.2", "months=6"]
    history = make_company(tmp_path, tiny, TRUTH, 6, ["new_leads", "new_opportunities"])
    args = dict(overrides=tiny, population=8, generations=2, sims=1000, seed=5,
                ppc_draws=4)
    whole = calibrate("baseline", history, FITS[:1], out=tmp_path / "whole", workers=1, **args)

    calls = [0]

    def interrupt(state):  # Ctrl-C a few particles into the second generation
        if state["phase"] == "fit" and state["generation"] == 1:
            calls[0] += 1
            if calls[0] == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        calibrate("baseline", history, FITS[:1], out=tmp_path / "cut", workers=1,
                  progress=interrupt, **args)
    cut = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    assert cut["status"] == "interrupted" and len(cut["generations"]) == 1
    assert len(pd.read_parquet(tmp_path / "cut" / "posterior.parquet")) == 8  # kept
    # Without --resume the folder is refused; with it the calibration continues, here on two
    # worker processes: the seeds travel with the tasks, so the workers do not matter.
    with pytest.raises(Exception, match="add --resume"):
        calibrate("baseline", history, FITS[:1], out=tmp_path / "cut", workers=1, **args)
    resumed = calibrate("baseline", history, FITS[:1], out=tmp_path / "cut", workers=2,
                        resume=True, **args)
    pd.testing.assert_frame_equal(resumed.posterior, whole.posterior)
    assert resumed.manifest["generations"] == whole.manifest["generations"]
    # A different seed gives a different posterior.
    other = calibrate("baseline", history, FITS[:1], out=tmp_path / "other", workers=1,
                      **{**args, "seed": 6, "generations": 1})
    assert not np.allclose(other.posterior["market.qualify_rate"].sort_values().to_numpy(),
                           whole.posterior["market.qualify_rate"].sort_values().to_numpy())


def test_bad_input_every_problem_at_once_exit_2_nothing_written(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["calibrate", "baseline", "--history", str(DATA / "history_three_mistakes.csv"),
                 "--fit", "market.qualify_rat=0.1:0.9", "--fit", "market.network.kind=0:1",
                 "--fit", "sales.outbound_success=0.5:0.2", "--fit", "market.churn_monthly=0:0.1:log",
                 "--fit", "market.qualify_rate=0.5:2", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for text in ("did you mean 'bookings'", "expected a number, got 'x'",
                 "market.qualify_rat: not a key of scenario baseline; did you mean "
                 "'market.qualify_rate'?",
                 "market.network.kind: not a numeric key",
                 "LOW must be below HIGH, got 0.5 ≥ 0.2", "a log prior needs LOW > 0",
                 "market.qualify_rate: must be ≤ 1"):
        assert text in err, (text, err)
    assert not out.exists()
    # A column to fit that the file does not have.
    code = main(["calibrate", "baseline", "--history", str(DATA / "history_good_dated.csv"),
                 "--fit", "market.qualify_rate=0.1:0.9", "--columns", "customers",
                 "--out", str(out)])
    assert code == 2 and "--columns customers: not a column" in capsys.readouterr().err
    assert not out.exists()


def test_forecast_continues_the_history_with_plans_on_common_random_numbers(fitted, tmp_path,
                                                                          monkeypatch):
    from gtmsim import experiment as exp

    plan = tmp_path / "more_ads.toml"
    plan.write_text('extends = "baseline"\nname = "more_ads"\n'
                    '[marketing.programs.paid_ads]\nmonthly_budget = 80000\n')
    given, execute = [], exp._execute
    monkeypatch.setattr(exp, "_execute", lambda items, *a: (given.extend(items), execute(items, *a)))
    fc = forecast(fitted.folder, months=4, plans=[plan], target=0.0, draws=4, reps=2,
                  workers=1, out=tmp_path / "fc")
    # The two plans of each draw and replication share the history's 8 months, once.
    assert len(given) == 8 and all(isinstance(g, exp.Branches) and len(g.tasks) == 2
                                   and g.month == 9 for g in given)
    ads = given[0].tasks[1]
    alone = exp.run_task(ads)
    mine = fc.runs[(fc.runs["plan"] == ads.scenario.name)
                   & (fc.runs["draw"] == dict(ads.point)["draw"])
                   & (fc.runs["replication"] == ads.replication)]
    for column in ("new_leads", "wins", "bookings"):
        assert list(mine[column]) == list(alone[column].astype(float))
    assert list(fc.summary["plan"]) == ["current", "more_ads"]
    assert (fc.summary["p_target"] == 1.0).all()  # bookings are never below zero
    runs = fc.runs
    assert sorted(runs["month"].unique()) == list(range(1, 13))
    a = runs[runs["plan"] == "current"].set_index(["draw", "replication", "month"])
    b = runs[runs["plan"] == "more_ads"].set_index(["draw", "replication", "month"])
    assert (a["seed"] == b["seed"]).all()  # common random numbers
    # The plan starts after the history: until then both runs are the same run.
    pd.testing.assert_frame_equal(a.query("month <= 8").drop(columns="plan"),
                                  b.query("month <= 8").drop(columns="plan"))
    assert (b.query("month > 8")["new_leads"] != a.query("month > 8")["new_leads"]).any()
    fan = fc.fan
    assert sorted(fan["month"].unique()) == [9, 10, 11, 12]
    assert (fan["bookings_lo95"] <= fan["bookings_lo80"]).all()
    assert (fan["bookings_lo50"] <= fan["bookings_median"]).all()
    assert (fan["bookings_median"] <= fan["bookings_hi50"]).all()
    assert (fan["cumulative_bookings_hi80"] <= fan["cumulative_bookings_hi95"]).all()
    p = fc.plans.iloc[0]
    assert p["plan"] == "more_ads" and p["diff_lo95"] <= p["diff_mean"] <= p["diff_hi95"]
    assert (tmp_path / "fc" / "fan.png").stat().st_size > 10_000
    # Each draw's values come from the posterior.
    draws = pd.read_parquet(tmp_path / "fc" / "draws.parquet")
    assert set(draws["market.qualify_rate"]) <= set(fitted.posterior["market.qualify_rate"])


def test_forecast_cli_refuses_a_plan_that_changes_the_market(fitted, tmp_path, capsys):
    plan = tmp_path / "bigger.toml"
    plan.write_text('extends = "baseline"\nname = "bigger"\n[market]\nqualify_rate = 0.9\n')
    code = main(["forecast", str(fitted.folder), "--plan", str(plan), "--out", str(tmp_path / "f")])
    assert code == 2
    assert "market.qualify_rate: a plan can change only marketing.*" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()


def test_cli_calibrate_then_forecast_json(tmp_path, capsys):
    tiny = ["market.prospects=2000", "months=4"]
    history = make_company(tmp_path, tiny, TRUTH, 4, ["new_leads", "new_opportunities"])
    capsys.readouterr()
    sets = [w for kv in tiny for w in ("--set", kv)]
    code = main(["calibrate", "baseline", *sets, "--history", str(history),
                 "--fit", "market.qualify_rate=0.1:0.9", "--population", "4",
                 "--generations", "1", "--ppc-draws", "4", "--workers", "1", "--seed", "2",
                 "--out", str(tmp_path / "cal"), "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "calibration" and len(printed["generations"]) == 1
    assert printed["summary"][0]["key"] == "market.qualify_rate"
    manifest = json.loads((tmp_path / "cal" / "manifest.json").read_text())
    assert manifest["command"][:2] == ["gtmsim", "calibrate"] and "--fit" in manifest["command"]
    code = main(["forecast", str(tmp_path / "cal"), "--months", "2", "--draws", "2", "--reps", "1",
                 "--target", "1e12", "--workers", "1", "--json"])
    assert code == 0
    fc = json.loads(capsys.readouterr().out)
    assert fc["summary"][0]["plan"] == "current" and fc["summary"][0]["p_target"] == 0.0
    assert fc["runs"] == 2 and fc["resumed"] == 0 and fc["seed"] == 2
    assert (tmp_path / "cal" / "forecast" / "fan.csv").is_file()
    # The report command renders both folders.
    assert main(["report", str(tmp_path / "cal")]) == 0
    assert main(["report", str(tmp_path / "cal" / "forecast")]) == 0
    page = (tmp_path / "cal" / "report.html").read_text()
    assert "Contraction" in page and "market.qualify_rate" in page and "data:image/png" in page
    assert "Plans against" not in (tmp_path / "cal" / "forecast" / "report.html").read_text()


def test_forecast_resume_after_interrupt_equals_an_uninterrupted_forecast(fitted, tmp_path):
    from gtmsim.forecasting import ForecastError, read_forecast
    from gtmsim.results import ResultsError

    plan = tmp_path / "more_ads.toml"
    plan.write_text('extends = "baseline"\nname = "more_ads"\n'
                    '[marketing.programs.paid_ads]\nmonthly_budget = 80000\n')
    args = dict(months=3, plans=[plan], draws=3, reps=2, seed=4)
    whole = forecast(fitted.folder, out=tmp_path / "whole", workers=1, **args)

    def interrupt(done, total):  # Ctrl-C after the fifth of twelve runs
        assert total == 12
        if done == 5:
            raise KeyboardInterrupt

    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        forecast(fitted.folder, out=cut, workers=1, progress=interrupt, **args)
    assert json.loads((cut / "manifest.json").read_text())["status"] == "running"
    assert len(list((cut / "runs").glob("*.parquet"))) == 5  # the finished runs are kept
    assert not (cut / "fan.csv").exists()
    with pytest.raises(ResultsError, match="--resume"):
        read_forecast(cut)
    with pytest.raises(ForecastError, match="add --resume"):
        forecast(fitted.folder, out=cut, workers=1, **args)
    with pytest.raises(ForecastError, match="differs in draws"):
        forecast(fitted.folder, out=cut, workers=1, resume=True, **{**args, "draws": 4})
    # Continued on two worker processes: each run's seed comes from its draw and
    # replication, so neither the interruption nor the workers change a number.
    seen = []
    resumed = forecast(fitted.folder, out=cut, workers=2, resume=True,
                       progress=lambda d, t: seen.append(d), **args)
    assert seen[0] == 5 and seen[-1] == 12 and resumed.manifest["resumed"] == 5
    pd.testing.assert_frame_equal(resumed.runs, whole.runs, check_exact=True)
    pd.testing.assert_frame_equal(resumed.fan, whole.fan, check_exact=True)
    pd.testing.assert_frame_equal(resumed.summary, whole.summary, check_exact=True)
    pd.testing.assert_frame_equal(resumed.plans, whole.plans, check_exact=True)
    back = read_forecast(cut)
    assert back.manifest["status"] == "complete"
    pd.testing.assert_frame_equal(back.summary, pd.read_csv(tmp_path / "whole" / "summary.csv"))
    # A resume of a finished forecast with another target runs nothing again.
    again = forecast(fitted.folder, out=cut, workers=1, resume=True,
                     progress=lambda d, t: seen.append((d, t)), **{**args, "target": 1e12})
    assert seen[-1] == (12, 12) and again.manifest["resumed"] == 12
    assert (again.summary["p_target"] == 0.0).all()
    # On the command line: nothing to resume is a clear error, exit 2, nothing written.
    assert main(["forecast", str(fitted.folder), "--out", str(tmp_path / "none"),
                 "--resume"]) == 2
    assert not (tmp_path / "none").exists()
    # A different seed gives other runs.
    other = forecast(fitted.folder, out=tmp_path / "other", workers=1, **{**args, "seed": 5})
    assert not np.array_equal(other.runs["bookings"], whole.runs["bookings"])


def test_calibrate_months_fits_the_first_months_only(tmp_path, capsys):
    tiny = ["market.prospects=2000", "months=6"]
    history = make_company(tmp_path, tiny, TRUTH, 6, ["new_leads", "new_opportunities"])
    capsys.readouterr()
    sets = [w for kv in tiny for w in ("--set", kv)]
    common = ["calibrate", "baseline", *sets, "--history", str(history),
              "--fit", "market.qualify_rate=0.1:0.9", "--population", "4", "--generations", "1",
              "--ppc-draws", "4", "--workers", "1", "--quiet"]
    code = main([*common, "--months", "7", "--out", str(tmp_path / "bad")])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--months 7: " in err and "covers months 1 to 6; give at most 6" in err, err
    assert not (tmp_path / "bad").exists()
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # as a notebook's inline backend: writing the charts must keep it
    try:
        assert main([*common, "--months", "4", "--out", str(tmp_path / "cal")]) == 0
        cal = read_calibration(tmp_path / "cal")
        assert cal.manifest["months"] == 4 and cal.history.months == 4
        assert sorted(cal.ppc["month"].unique()) == [1, 2, 3, 4]
        # The forecast continues after the fitted months.
        fc = forecast(cal, months=2, draws=2, reps=1, workers=1, out=tmp_path / "fc")
        assert sorted(fc.fan["month"].unique()) == [5, 6]
        assert matplotlib.get_backend() == "svg"
        assert (tmp_path / "cal" / "ppc.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / "fc" / "fan.png").read_bytes()[:4] == b"\x89PNG"
    finally:
        matplotlib.use(before)
