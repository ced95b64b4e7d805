"""`gtmsim optimize`: a known answer, bad input, resume, the files it writes."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from gtmsim import load_scenario, simulate
from gtmsim.analysis import optimize as opt
from gtmsim.cli import main
from gtmsim.scenario import ScenarioError

ADS = "marketing.programs.ads.monthly_budget"
DUD = "marketing.programs.dud.monthly_budget"

# A small market with spare sales capacity (ten reps) and two programs of the same price:
# one that works, and one with no effect at all (awareness, trust, hand-raise and capture 0).
SCENARIO = """
name = "two_programs"
months = 6
seed = 7

[market]
prospects = 3000
initial_aware = 0.02
in_market_share = 0.15
inbound_propensity = 0.8

[market.segments.smb]
share = 1.0
deal_value = 10000
deal_value_spread = 0.2
cycle_days = 20
base_win_rate = 0.4

[marketing.programs.ads]
channel = "paid_ads"
monthly_budget = 24000
cost_per_reach = 40.0
carryover = 0.3
saturation = 4.0
awareness = 0.6
trust = 0.2
hand_raise = 0.3

[marketing.programs.dud]
channel = "other"
monthly_budget = 24000
cost_per_reach = 40.0
awareness = 0.0
trust = 0.0
hand_raise = 0.0
lead_capture = 0.0

[sales]
reps = 10
"""


@pytest.fixture
def plan(tmp_path) -> Path:
    path = tmp_path / "two_programs.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


def test_a_program_with_no_effect_gets_almost_none_of_a_fixed_budget(plan, tmp_path, capsys):
    out = tmp_path / "opt"
    code = main(["optimize", str(plan), "--vary", f"{ADS}=0:48000", "--vary", f"{DUD}=0:48000",
                 "--constraint", "marketing_spend<=48000", "--trials", "22", "--reps", "2",
                 "--top", "3", "--workers", "1", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "What changed" in printed and str(out / "best.toml") in printed

    best_file = out / "best.toml"
    best = load_scenario(best_file)  # the loader accepts it, extends and all
    assert tomllib.loads(best_file.read_text())["extends"] == "../two_programs.toml"
    ads = best.marketing.programs["ads"].monthly_budget
    dud = best.marketing.programs["dud"].monthly_budget
    # Almost all of the fixed budget goes to the program that works (base seeds 1 and 2
    # give the same: dud ≈ 1% of the budget).
    assert dud < 0.05 * 48000, (ads, dud)
    assert ads > 0.85 * 48000, (ads, dud)
    # The constraint holds for the written plan, run on its own.
    run = simulate(best, seed=123, months=6).monthly
    assert run["marketing_spend"].mean() <= 48000 + 1e-6
    assert ads + dud <= 48000 + 1e-6

    every = pd.read_parquet(out / "trials.parquet")
    assert every["trial"].is_unique
    # Plans that break the spending limit are refused before simulating: not run, infeasible.
    assert not every.loc[~every["simulated"], "feasible"].any()
    refused = every[~every["simulated"]]
    assert (refused[ADS] + refused[DUD] > 48000).all()
    trials = every[every["simulated"]]
    assert len(trials) == 22
    assert {ADS, DUD, "bookings_mean", "bookings_se", "feasible", "marketing_spend"} <= set(
        trials.columns)
    assert every["start"].iloc[0] and every[ADS].iloc[0] == 24000  # the start is trial 0
    assert (trials["marketing_spend"] <= 48000 + 1e-6).all() and trials["feasible"].all()
    # The simulated spend is the plan's (the limit was checked on the plan before the run).
    assert trials["marketing_spend"].to_numpy() == pytest.approx(
        (trials[ADS] + trials[DUD]).to_numpy())
    assert trials[ADS].between(0, 48000).all() and trials[DUD].between(0, 48000).all()
    summary = pd.read_csv(out / "summary.csv")
    assert summary["chosen"].sum() == len(summary["outcome"].unique())  # one plan chosen
    assert summary["scenario"].iloc[0] == "two_programs"  # the start is the reference
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "optimize" and manifest["complete"] is True
    assert manifest["best"] == {ADS: ads, DUD: dud}
    assert "optuna" in manifest["versions"]
    assert (out / "study.db").is_file() and (out / "charts" / "search.png").is_file()
    # Every trial ran on the same replication seeds (common random numbers).
    seeds = {tuple(pd.read_parquet(out / f / "runs.parquet")["seed"].unique())
             for f in trials["folder"]}
    assert seeds == {tuple(manifest["seeds"])}
    # The re-evaluation ran on other, fresh seeds.
    again = pd.read_parquet(out / "reevaluation" / "runs.parquet")
    assert not set(again["seed"]) & set(manifest["seeds"])


def test_bad_input_every_problem_at_once_exit_2_nothing_written(plan, tmp_path, capsys):
    out = tmp_path / "never"
    code = main(["optimize", str(plan),
                 "--vary", "marketing.programs.contnt.monthly_budget=0:1000",
                 "--vary", "sales.repz=1:5",
                 "--vary", "alignment.preset=0:1",
                 "--vary", "sales.reps=8:2",
                 "--vary", f"{ADS}=lots:more",
                 "--constraint", "marketing_spend<<48000",
                 "--constraint", "markting_spend<=48000",
                 "--objective", "bookngs",
                 "--trials", "0", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "did you mean 'marketing.programs.ads'?" in err or "contnt" in err
    assert "did you mean 'sales.reps'?" in err
    assert "alignment.preset: not a numeric key" in err
    assert "LOW (8) must be below HIGH (2)" in err
    assert "LOW and HIGH must be numbers" in err
    assert "--constraint marketing_spend<<48000: cannot read it" in err
    assert "unknown quantity 'markting_spend'; did you mean 'marketing_spend'?" in err
    assert "--objective bookngs: unknown objective; did you mean 'bookings'?" in err
    assert "--trials: expected a whole number ≥ 1, got 0" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_constraints_are_parsed_not_evaluated():
    c = opt.parse_constraint("marketing_spend <= 48_000")
    assert (c.quantity, c.op, c.bound) == ("marketing_spend", "<=", 48000.0)
    assert opt.parse_constraint("headcount>=3").violation(2) == 1.0
    assert opt.parse_constraint("headcount>=3").holds(3)
    for text in ("__import__('os').system('true')<=1", "marketing_spend<=1+1", "x", "<=3"):
        with pytest.raises(ScenarioError, match="cannot read it"):
            opt.parse_constraint(text)


def test_whole_number_and_timeline_keys():
    start = load_scenario("hire_and_cut")
    vary = opt.parse_vary(["sales.reps=2:8", "timeline[0].month=2:12",
                           "timeline[0].set.sales.reps=4:10", "alignment.sla_days=0.5:3"], start)
    assert [v.integer for v in vary] == [True, True, True, False]
    plan = opt._apply(start, {"timeline[0].month": 3, "timeline[0].set.sales.reps": 9})
    assert plan.timeline[0].month == 3 and plan.timeline[0].set["sales.reps"] == 9
    assert plan.timeline[1] == start.timeline[1]
    assert opt.start_value(start, "alignment.sla_days") == start.levers.sla_days
    with pytest.raises(ScenarioError) as info:
        opt.parse_vary(["timeline[5].month=2:3", "timeline[0].set.sales.repz=1:2",
                        "sales.reps=1.5:3:int", "market.prospects=1000:2000:float"], start)
    text = "\n".join(info.value.problems)
    assert "the scenario has 2 timeline entries" in text
    assert "did you mean 'timeline[0].set.sales.reps'?" in text
    assert "whole LOW and HIGH" in text and "expected LOW:HIGH or LOW:HIGH:int" in text


def test_resume_after_an_interrupt_continues_the_same_study(plan, tmp_path, monkeypatch):
    args = {"vary": [f"{ADS}=0:48000", f"{DUD}=0:48000"],
            "constraints": ["marketing_spend<=48000"], "reps": 1, "top": 1, "workers": 1,
            "startup_trials": 3}
    whole = opt.optimize(str(plan), trials=8, out=tmp_path / "whole", **args)

    out = tmp_path / "cut"
    first = opt.optimize(str(plan), trials=4, out=out, **args)
    before = first.trials.loc[first.trials["simulated"], ["trial", ADS, DUD, "bookings_mean"]]
    real = opt.ex.compare
    calls = [0]

    def interrupted(*a, **kw):  # the second trial of the resumed search is cut short
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(opt.ex, "compare", interrupted)
    with pytest.raises(KeyboardInterrupt):
        opt.optimize(str(plan), trials=8, out=out, resume=True, **args)
    monkeypatch.setattr(opt.ex, "compare", real)
    with pytest.raises(opt.OptimizeError, match="--resume"):
        opt.optimize(str(plan), trials=8, out=out, **args)  # not without --resume
    again = opt.optimize(str(plan), trials=8, out=out, resume=True, **args)

    again.trials = again.trials[again.trials["simulated"]]
    whole.trials = whole.trials[whole.trials["simulated"]]
    assert len(again.trials) == 8 and again.resumed == 5
    pd.testing.assert_frame_equal(again.trials.iloc[:4][before.columns].reset_index(drop=True),
                                  before.reset_index(drop=True))
    # The same eight plans, in the same order, as the search that was never interrupted.
    cols = [ADS, DUD, "bookings_mean", "feasible"]
    pd.testing.assert_frame_equal(again.trials[cols].reset_index(drop=True),
                                  whole.trials[cols].reset_index(drop=True))
    study = again.study()
    # The interrupted trial stays in the study, as failed; its plan ran again next.
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert len(failed) == 1
    assert failed[0].params in [t.params for t in study.trials if t.user_attrs.get("simulated")]


def test_pareto_front_of_bookings_and_cost(plan, tmp_path):
    result = opt.optimize(str(plan), [f"{ADS}=0:48000"], objective="bookings,cost", trials=5,
                          reps=1, top=2, workers=1, startup_trials=5, out=tmp_path / "p")
    t = result.trials
    assert {"bookings_mean", "cost_mean", "pareto"} <= set(t.columns)
    front = t[t["pareto"]]
    assert len(front) >= 1
    for _, r in front.iterrows():  # no trial beats a front trial on both
        better = (t["bookings_mean"] >= r["bookings_mean"]) & (t["cost_mean"] <= r["cost_mean"])
        strictly = (t["bookings_mean"] > r["bookings_mean"]) | (t["cost_mean"] < r["cost_mean"])
        assert not (better & strictly).any()
    assert (tmp_path / "p" / "charts" / "pareto.png").is_file()
    assert list((tmp_path / "p" / "pareto").glob("trial-*.toml"))
    for f in (tmp_path / "p" / "pareto").glob("trial-*.toml"):
        load_scenario(f)


def test_p_target_needs_a_target_and_help_does_not_import_optuna(plan):
    with pytest.raises(ScenarioError, match="needs --target"):
        opt.optimize(str(plan), [f"{ADS}=0:48000"], objective="p_target", trials=1)
    code = ("import sys; from gtmsim.cli import main; main(['--help']); "
            "main(['optimize', '--help']); assert 'optuna' not in sys.modules, 'optuna'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parent.parent, check=False)
    assert done.returncode == 0, done.stderr
    assert "KEY=LOW:HIGH" in done.stdout


def test_json_output_and_an_existing_study_needs_resume(plan, tmp_path, capsys):
    out = tmp_path / "j"
    args = ["optimize", str(plan), "--vary", f"{ADS}=0:48000", "--trials", "2", "--reps", "1",
            "--top", "1", "--workers", "1", "--out", str(out)]
    assert main([*args, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "optimize" and printed["trials"] == 2
    assert printed["start"] == {ADS: 24000} and set(printed["best"]) == {ADS}
    assert str(out / "best.toml") in printed["files"]
    assert main(args) == 2  # the folder holds a study: --resume or --force
    assert "already holds an optimize study" in capsys.readouterr().err
    assert main([*args, "--force", "-q"]) == 0
    assert capsys.readouterr().out.strip() == str(out)


def test_plan_quantities_match_the_simulated_spend_team_and_cost():
    # hire_and_cut hires in month 6 and cuts paid ads in month 12; one-off alignment cost too.
    plan = load_scenario("hire_and_cut", {"market.prospects": 2000, "alignment.cost_monthly": 500,
                                          "alignment.cost_once": 9000})
    months = 13
    fixed = opt.plan_quantities(plan, months)
    run = simulate(plan, seed=3, months=months).monthly
    assert fixed["marketing_spend"] == pytest.approx(run["marketing_spend"].mean())
    assert fixed["sales_cost"] == pytest.approx(run["sales_cost"].mean())
    assert fixed["monthly_cost"] == pytest.approx(opt.ex.total_cost(run).mean())
    assert fixed["total_cost"] == pytest.approx(opt.ex.total_cost(run).sum())
    assert fixed["headcount"] == run["reps"].max() == 6
