"""Experiments: replication seeds, common random numbers, executors, resume, summary, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gtmsim import experiment as exp
from gtmsim import load_scenario, simulate
from gtmsim.cli import main
from gtmsim.experiment import (
    IDENTITY,
    OUTCOMES,
    ExperimentError,
    compare,
    parse_vary,
    read_experiment,
    replication_seeds,
    sweep,
)
from gtmsim.metrics import COLUMNS
from gtmsim.scenario import ScenarioError

# Small worlds keep the file fast; the numbers are not meant to be realistic.
SMALL = {"market.prospects": 3000, "months": 6}
SMALL_SET = ["--set", "market.prospects=3000", "--months", "6"]


@pytest.fixture(scope="module")
def pair() -> list:
    return [load_scenario("siloed", SMALL), load_scenario("aligned", SMALL)]


@pytest.fixture(scope="module")
def inline(pair) -> exp.Experiment:
    return compare(pair, reps=3, seed=11, workers=1)


# --------------------------------------------------------------------------- seeds and layout


def test_replication_seeds_are_spawned_from_the_base_seed():
    seeds = replication_seeds(5, 4)
    children = np.random.SeedSequence(5).spawn(4)
    assert seeds == [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]
    assert all(s >= 0 for s in seeds) and len(set(seeds)) == 4
    assert replication_seeds(5, 6)[:4] == seeds  # more replications extend the list
    assert replication_seeds(6, 4) != seeds


def test_runs_table_is_tidy_and_every_scenario_shares_the_seeds(inline, pair):
    runs = inline.runs
    assert list(runs.columns) == [*IDENTITY[:3], *COLUMNS]
    assert len(runs) == 2 * 3 * 6
    assert list(runs["scenario"].unique()) == ["siloed", "aligned"]
    for name in ("siloed", "aligned"):
        seeds = runs[runs["scenario"] == name].groupby("replication")["seed"].first().tolist()
        assert seeds == inline.seeds == replication_seeds(11, 3)
    # A replication is an ordinary run: `gtmsim run --seed S` reproduces it.
    one = runs[(runs["scenario"] == "aligned") & (runs["replication"] == 1)]
    alone = simulate(pair[1], seed=inline.seeds[1], keep_model=False).monthly
    pd.testing.assert_frame_equal(one[list(COLUMNS)].reset_index(drop=True), alone)


def test_same_runs_whichever_executor(inline, pair):
    """In-process, local processes and a Dask cluster on loopback give identical tables."""
    distributed = pytest.importorskip("distributed")
    local = compare(pair, reps=3, seed=11, workers=2)
    pd.testing.assert_frame_equal(local.runs, inline.runs)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        on_dask = compare(pair, reps=3, seed=11, scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(on_dask.runs, inline.runs)


def test_runs_go_to_local_workers_a_few_at_a_time():
    """A large experiment is not submitted all at once (waiting on every unfinished run at
    every finished one cost the parent time in proportion to the runs left), and every run
    still arrives exactly once."""
    import concurrent.futures as cf
    import multiprocessing

    sc = load_scenario("baseline", {"market.prospects": 500, "months": 1})
    tasks = [exp.Task(arm=0, scenario=sc, point=(), replication=r, seed=r, months=1,
                      file=f"r{r}.parquet") for r in range(24)]
    outstanding: list[int] = []

    class Counting(cf.ProcessPoolExecutor):
        def submit(self, *args, **kwargs):
            future = super().submit(*args, **kwargs)
            self.live = [f for f in getattr(self, "live", []) if not f.done()] + [future]
            outstanding.append(len(self.live))
            return future

    got: list[int] = []
    with Counting(max_workers=2, mp_context=multiprocessing.get_context("forkserver")) as pool:
        exp._execute(tasks, pool, lambda task, df, seconds: got.append(task.replication))
    assert sorted(got) == list(range(24))
    assert len(outstanding) == 24 and max(outstanding) <= 8  # four per worker


# --------------------------------------------------------------------------- summary


def _outcome(run: pd.DataFrame, name: str) -> float:
    """Key outcomes recomputed here by hand from one run's monthly rows."""
    run = run.sort_values("month")
    if name == "cumulative_bookings":
        return run["bookings"].sum()
    if name == "customers":
        return run["customers"].iloc[-1]
    cost = run["marketing_spend"] + run["sales_cost"] + run["alignment_cost"]
    if name == "cac":
        wins = run["wins"].sum()
        return cost.sum() / wins if wins else np.nan
    if name == "total_cost":
        return cost.sum()
    if name == "net_bookings":
        return run["bookings"].sum() - cost.sum()
    if name == "roi":
        return (run["bookings"].sum() - cost.sum()) / cost.sum()
    if name == "payback_month":
        for month, books, spent in zip(run["month"], run["bookings"].cumsum(), cost.cumsum(),
                                       strict=True):
            if books >= spent:
                return month
        return np.nan
    if name == "win_rate":
        decided = run["wins"].sum() + run["losses"].sum()
        return run["wins"].sum() / decided if decided else np.nan
    if name == "lead_response_days_median":
        worked = run["lead_response_days_median"].dropna()
        return np.median(worked) if len(worked) else np.nan
    return run[name].sum()


@pytest.mark.parametrize("name", [o.name for o in OUTCOMES])
def test_summary_recomputed_from_the_runs_table(inline, name):
    runs, summary = inline.runs, inline.summary()
    per = {s: runs[runs["scenario"] == s].groupby("replication").apply(_outcome, name,
                                                                        include_groups=False)
           for s in ("siloed", "aligned")}
    per_cost = {s: runs[runs["scenario"] == s].groupby("replication").apply(
        _outcome, "total_cost", include_groups=False) for s in ("siloed", "aligned")}
    o = next(o for o in OUTCOMES if o.name == name)
    for s, values in per.items():
        row = summary[(summary["scenario"] == s) & (summary["outcome"] == name)].iloc[0]
        x = values.dropna().to_numpy(dtype=float)
        assert row["n"] == len(x) and row["reps"] == len(values)
        if o.censored and len(x) < len(values):  # not within the run for some replication
            assert np.isnan(row["mean"]) and np.isnan(row["ci_low"])
            continue
        assert row["mean"] == pytest.approx(x.mean(), rel=1e-9, abs=1e-9)
        if len(x) > 1 and x.std() > 0:
            lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
            floor = o.low
            if name == "net_bookings":  # never below minus the arm's largest cost
                floor = -per_cost[s].max()
            lo, hi = max(lo, floor), min(hi, o.high)  # clipped to the outcome's range
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi), rel=1e-9)
    row = summary[(summary["scenario"] == "aligned") & (summary["outcome"] == name)].iloc[0]
    both = per["aligned"].notna() & per["siloed"].notna()
    d = (per["aligned"] - per["siloed"])[both].to_numpy(dtype=float)
    if len(d) == 0 or (o.censored and not both.all()):
        return
    assert row["diff"] == pytest.approx(d.mean(), rel=1e-9, abs=1e-9)
    if len(d) > 1 and d.std() > 0:
        ci = stats.ttest_rel(per["aligned"][both], per["siloed"][both]).confidence_interval(0.95)
        low, high = o.diff_range
        assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx(
            (max(ci.low, low), min(ci.high, high)), rel=1e-9)
    better = next(o.better for o in OUTCOMES if o.name == name)
    assert row["ahead"] == pytest.approx(np.mean(d * better > 0))
    base = per["siloed"][both].mean()
    if base:
        assert row["diff_pct"] == pytest.approx(100 * d.mean() / abs(base))
    first = summary[summary["scenario"] == "siloed"]
    assert first["diff"].isna().all()


@pytest.mark.slow
def test_common_random_numbers_shrink_the_variance_of_the_paired_difference():
    """Var(A - B) = Var(A) + Var(B) - 2 Cov(A, B) (Law, Simulation Modeling and Analysis).

    Independent seeding is measured on the same runs: the difference between the two
    scenarios on every pair of *different* replications. Measured on base seeds 1–4 with
    48 replications of 6 months, the ratio is 0.51–0.81 for final customers and 0.52–0.88
    for cumulative bookings (a few large deals make bookings noisier); seed 1 gives 0.60
    and 0.76. 1 would mean no gain from pairing.
    """
    result = compare(["siloed", "aligned"], reps=48, seed=1,
                     overrides={"market.prospects": 50_000, "months": 6})
    outcomes = result.outcomes()
    for outcome, most in (("customers", 0.8), ("cumulative_bookings", 0.9)):
        per = outcomes.pivot(index="replication", columns="scenario", values=outcome)
        a, b = per["aligned"].to_numpy(dtype=float), per["siloed"].to_numpy(dtype=float)
        common = np.var(a - b, ddof=1)
        i, j = np.nonzero(~np.eye(len(a), dtype=bool))
        independent = np.var(a[i] - b[j], ddof=1)
        assert common < most * independent, (outcome, common / independent)


# --------------------------------------------------------------------------- sweeps


def test_parse_vary_lists_and_ranges():
    vary = parse_vary(["sales.reps=2:8:4", "alignment.sla_days=0.5:1.5:3",
                       "alignment.routing=fifo,fit_first", "market.word_of_mouth=0.1, 0.2"])
    assert vary == {
        "sales.reps": [2, 4, 6, 8],
        "alignment.sla_days": [0.5, 1.0, 1.5],
        "alignment.routing": ["fifo", "fit_first"],
        "market.word_of_mouth": [0.1, 0.2],
    }
    assert parse_vary(["alignment.feedback=0:1:11"])["alignment.feedback"][3] == 0.3
    for bad in ("sales.reps", "sales.reps=", "sales.reps=1:5:zero", "sales.reps=1,,2"):
        with pytest.raises(ScenarioError, match="--vary"):
            parse_vary([bad])
    with pytest.raises(ScenarioError, match="given twice"):
        parse_vary(["sales.reps=1", "sales.reps=2"])


def test_sweep_runs_the_full_grid_on_common_seeds():
    result = sweep("baseline", {"sales.reps": [2, 4], "alignment.sla_days": [1.0, 3.0]},
                   reps=2, seed=3, overrides=SMALL, workers=1)
    runs = result.runs
    assert list(runs.columns[:6]) == ["scenario", "sales.reps", "alignment.sla_days",
                                     "replication", "seed", "month"]
    grid = runs[["sales.reps", "alignment.sla_days"]].drop_duplicates().values.tolist()
    assert grid == [[2, 1.0], [2, 3.0], [4, 1.0], [4, 3.0]]
    assert (runs.groupby(["sales.reps", "month"])["reps"].first().unstack().T == [2, 4]).all().all()
    assert runs.groupby("replication")["seed"].nunique().eq(1).all()
    summary = result.summary()
    assert len(summary) == 4 * len(OUTCOMES)
    assert summary.loc[summary["sales.reps"].eq(2) & summary["alignment.sla_days"].eq(1.0),
                       "diff"].isna().all()


def test_sweep_rejects_unknown_keys_and_wrong_types():
    with pytest.raises(ScenarioError) as info:
        sweep("baseline", {"sales.repz": [2, 4], "alignment.sla_days": ["soon"]}, reps=1)
    text = "\n".join(info.value.problems)
    assert "sales.repz: unknown key; did you mean 'reps'?" in text
    assert "alignment.sla_days: must be a number, got 'soon' (a string)" in text


# --------------------------------------------------------------------------- folders and resume


def test_runs_are_stored_as_they_finish_and_resume_skips_them(tmp_path, pair, monkeypatch):
    out = tmp_path / "exp"

    def stop_after_three(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt  # as if Ctrl-C arrived after the third run

    with pytest.raises(KeyboardInterrupt):
        compare(pair, reps=3, seed=11, workers=2, out=out, progress=stop_after_three)
    kept = sorted(p.name for p in (out / "runs").glob("*.parquet"))
    assert len(kept) >= 3 and not (out / "runs.parquet").exists()
    assert not list((out / "runs").glob(".*"))  # no half-written temporary files

    simulated = []
    real = exp.run_task

    def counting(task: exp.Task) -> pd.DataFrame:
        simulated.append(task.file)
        return real(task)

    monkeypatch.setattr(exp, "run_task", counting)
    result = compare(pair, reps=3, seed=11, workers=1, out=out, resume=True)
    assert sorted(simulated) == sorted({f"{s}__r{r:04d}.parquet" for s in ("siloed", "aligned")
                                           for r in range(3)} - set(kept))
    assert result.resumed == len(kept)
    fresh = compare(pair, reps=3, seed=11, workers=1)
    pd.testing.assert_frame_equal(result.runs, fresh.runs)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), fresh.runs)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["seeds"] == fresh.seeds


def test_resume_refuses_a_different_experiment_and_writes_nothing(tmp_path, pair):
    out = tmp_path / "exp"
    compare(pair, reps=2, seed=11, workers=1, out=out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # More reps extend the experiment (tests/test_folders.py); fewer would drop runs.
    changes = [{"reps": 1}, {"seed": 12}, {"months": 5}, {"overrides": {"sales.reps": 6}}]
    for change in changes:
        kwargs = {"reps": 2, "seed": 11, "workers": 1, "out": out, "resume": True} | change
        with pytest.raises(ExperimentError, match="different compare experiment"):
            compare(pair, **kwargs)
    with pytest.raises(ExperimentError, match="already holds this experiment"):
        compare(pair, reps=2, seed=11, workers=1, out=out)  # same experiment, no resume
    with pytest.raises(ExperimentError, match="different"):
        compare(pair[::-1], reps=2, seed=11, workers=1, out=out, resume=True)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_read_experiment_gives_back_the_same_summary(tmp_path, pair):
    result = compare(pair, reps=2, seed=11, workers=1, out=tmp_path / "exp")
    again = read_experiment(tmp_path / "exp")
    pd.testing.assert_frame_equal(again.summary(), result.summary())
    on_disk = pd.read_csv(tmp_path / "exp" / "summary.csv")
    pd.testing.assert_frame_equal(on_disk, result.summary(), check_dtype=False)


# --------------------------------------------------------------------------- CLI


def test_cli_compare_writes_the_results_folder(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "siloed", "aligned", "--reps", "2", "--seed", "11", *SMALL_SET,
                 "--workers", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Cumulative bookings" in printed and "Δ vs siloed" in printed
    runs = pd.read_parquet(out / "runs.parquet")
    assert list(runs.columns[:4]) == list(IDENTITY)
    assert runs.groupby("scenario").size().to_dict() == {"aligned": 12, "siloed": 12}
    summary = pd.read_csv(out / "summary.csv")
    expected = compare(["siloed", "aligned"], reps=2, seed=11, overrides=SMALL, workers=1).summary()
    pd.testing.assert_frame_equal(summary, expected, check_dtype=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "compare" and manifest["reps"] == 2
    assert [s["name"] for s in manifest["scenarios"]] == ["siloed", "aligned"]
    assert manifest["scenarios"][0]["market"]["prospects"] == 3000
    assert manifest["seeds"] == replication_seeds(11, 2)
    assert manifest["command"][:4] == ["gtmsim", "compare", "siloed", "aligned"]
    assert {"gtmsim", "mesa", "numpy"} <= set(manifest["versions"])
    # The same folder again: refused without --resume, reused with it.
    assert main(["compare", "siloed", "aligned", "--reps", "2", "--seed", "11", *SMALL_SET,
                 "--workers", "1", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["compare", "siloed", "aligned", "--reps", "2", "--seed", "11", *SMALL_SET,
                 "--workers", "1", "--out", str(out), "--resume", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(out)


def test_cli_sweep_json(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", "baseline", "--vary", "sales.reps=2:4:2", "--reps", "2", *SMALL_SET,
                 "--workers", "1", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "sweep" and report["runs"] == 4
    rows = pd.DataFrame(report["summary"])
    assert sorted(rows["sales.reps"].unique()) == [2, 4]
    assert pd.read_parquet(out / "runs.parquet")["sales.reps"].tolist().count(4) == 12
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["vary"] == {"sales.reps": [2, 4]}
    assert manifest["scenarios"][0]["sales"]["reps"] == load_scenario("baseline").sales.reps
    again = read_experiment(out)
    assert [a.sales.reps for a in again.arms] == [2, 4]
    pd.testing.assert_frame_equal(again.summary(), pd.read_csv(out / "summary.csv"),
                                  check_dtype=False)


@pytest.mark.parametrize("vary, message", [
    ("sales.repz=2,4", "did you mean 'reps'?"),
    ("sales.reps=two,4", "sales.reps: must be an integer, got 'two' (a string)"),
    ("sales.reps=2:8", "expected START:STOP:COUNT"),
    ("sales.reps", "expected KEY=V1,V2"),
])
def test_cli_bad_vary_exits_2_and_writes_nothing(tmp_path, capsys, vary, message):
    out = tmp_path / "sw"
    assert main(["sweep", "baseline", "--vary", vary, "--workers", "1", "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_cli_unreachable_scheduler_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(exp, "SCHEDULER_TIMEOUT_S", 1)
    out = tmp_path / "cmp"
    assert main(["compare", "siloed", "aligned", "--reps", "1", *SMALL_SET,
                 "--scheduler", "tcp://127.0.0.1:9", "--out", str(out)]) == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err
    assert not out.exists()


def test_cli_refuses_workers_with_scheduler_and_foreign_folders(tmp_path, capsys):
    assert main(["compare", "siloed", "--workers", "2", "--scheduler", "tcp://127.0.0.1:9",
                 "--out", str(tmp_path / "x")]) == 2
    run_folder = tmp_path / "run"
    assert main(["run", "baseline", "--set", "market.prospects=3000", "--months", "1",
                 "--out", str(run_folder), "--quiet"]) == 0
    before = sorted(p.name for p in run_folder.iterdir())
    capsys.readouterr()
    for resume in ([], ["--resume"]):
        assert main(["compare", "siloed", "aligned", "--reps", "1", *SMALL_SET, "--workers", "1",
                     "--out", str(run_folder), *resume]) == 2
        assert "holds a different run experiment" in capsys.readouterr().err
    assert sorted(p.name for p in run_folder.iterdir()) == before


def test_branches_give_each_run_exactly_what_it_gives_alone():
    # Three runs that are one run until month 4: the scenario as is, one more rep from month
    # 4, and an ads budget from month 4 with a timeline entry of its own before that too
    # (month 2, shared by all). Run once to month 3 and copied, each must equal its own run.
    base = {"market.prospects": 2000, "months": 6,
            "timeline": [{"month": 2, "set": {"sales.reps": 5}}]}
    later = {"rep": {"sales.reps": 6},
             "ads": {"marketing.programs.paid_ads.monthly_budget": 60000}}
    scenarios = [load_scenario("baseline", base)] + [
        load_scenario("baseline", {**base, "name": name, "timeline": [
            *base["timeline"], {"month": 4, "set": change}]}) for name, change in later.items()]
    tasks = tuple(exp.Task(arm=i, scenario=sc, point=(), replication=0, seed=7, months=6,
                           file=f"a{i}.parquet") for i, sc in enumerate(scenarios))
    together = exp.run_branches(exp.Branches(tasks, 4))
    for task, df in zip(tasks, together, strict=True):
        pd.testing.assert_frame_equal(df, exp.run_task(task), check_exact=True)
    assert not together[0].equals(together[1]) and not together[1].equals(together[2])
    # Sharing up to month 1 is as good (they differ from month 4 on); runs that differ
    # before the month cannot share it, nor runs on another seed.
    for df, alone in zip(exp.run_branches(exp.Branches(tasks, 2)), together, strict=True):
        pd.testing.assert_frame_equal(df, alone, check_exact=True)
    with pytest.raises(ValueError, match="is not the run of"):
        exp.Branches(tasks, 5)
    other_seed = exp.Task(arm=1, scenario=scenarios[1], point=(), replication=0, seed=8,
                          months=6, file="b.parquet")
    with pytest.raises(ValueError, match="is not the run of"):
        exp.Branches((tasks[0], other_seed), 4)
    for empty, month in (((), 4), (tasks, 0)):
        with pytest.raises(ValueError, match="at least one task and a month ≥ 1"):
            exp.Branches(empty, month)


def test_a_failed_branch_is_reported_under_its_own_run(monkeypatch):
    # The shared months succeed; the second run's continuation fails in a worker (a thread
    # here, so the failure can be planted): the error names that run, not the group's first.
    import concurrent.futures as cf

    import gtmsim.scenario

    base = {"market.prospects": 1000, "months": 3}
    scenarios = [load_scenario("baseline", base), load_scenario("baseline", {
        **base, "name": "rep", "timeline": [{"month": 3, "set": {"sales.reps": 6}}]})]
    tasks = tuple(exp.Task(arm=i, scenario=sc, point=(), replication=0, seed=7, months=3,
                           file=f"a{i}.parquet") for i, sc in enumerate(scenarios))
    real = gtmsim.scenario.with_changes

    def failing(scenario, changes, source):
        if source == "branch a1.parquet":
            raise ZeroDivisionError("planted")
        return real(scenario, changes, source)

    monkeypatch.setattr(gtmsim.scenario, "with_changes", failing)
    handed = []
    with cf.ThreadPoolExecutor(1) as pool, pytest.raises(RuntimeError) as caught:
        exp._execute([exp.Branches(tasks, 3)], pool, lambda t, df, s: handed.append(t.file))
    assert "run a1.parquet (seed 7) failed: ZeroDivisionError: planted" in str(caught.value)
    assert handed == []  # a group is handed over whole or not at all


# --------------------------------------------------------------------------- outcomes of many runs


@pytest.fixture(scope="module")
def long_sweep() -> exp.Experiment:
    return sweep("baseline", {"sales.reps": [1, 5]}, reps=6, seed=4, months=24, workers=1,
                 overrides={"market.prospects": 3000,
                            "marketing.programs.paid_ads.monthly_budget": 0})


def _edited(e: exp.Experiment, *, cut: bool = True) -> exp.Experiment:
    """`e` with runs made harder: bookings scaled per row (so some runs pay back and sums
    are not round), blanks (bookings and costs too), rows shuffled; with `cut`, one run
    cut short and one missing (runs of different lengths)."""
    runs = e.runs.copy()
    rng = np.random.default_rng(8)
    runs["bookings"] *= rng.uniform(0, 30, len(runs)) * (runs["replication"] % 2)
    runs.loc[rng.random(len(runs)) < 0.2, "lead_response_days_median"] = np.nan
    runs.loc[rng.random(len(runs)) < 0.1, "alignment_cost"] = np.nan
    runs.loc[rng.random(len(runs)) < 0.05, "bookings"] = np.nan
    runs.loc[rng.random(len(runs)) < 0.05, "sales_cost"] = np.nan
    if cut:
        five = runs["sales.reps"] == 5
        runs = runs[~(five & (runs["replication"] == 1) & (runs["month"] > 9))
                    & ~(five & (runs["replication"] == 3))]
    return exp.Experiment(e.kind, runs.sample(frac=1, random_state=2), e.arms, e.keys,
                          e.seed, e.seeds)


@pytest.mark.parametrize("cut", [True, False], ids=["ragged", "equal-length"])
def test_outcomes_of_all_runs_at_once_equal_each_run_reduced_alone(long_sweep, cut):
    e = _edited(long_sweep, cut=cut)
    table = e.outcomes()
    ids = [*e.arm_columns, "replication", "seed"]
    groups = list(e.runs.groupby(ids, sort=False))
    assert len(table) == len(groups) == (11 if cut else 12)
    assert table["payback_month"].notna().any() and table["payback_month"].isna().any()
    for (key, run), (_, row) in zip(groups, table.iterrows(), strict=True):
        assert tuple(row[ids]) == key
        run = run.sort_values("month")
        for o in OUTCOMES:
            want = o.reduce(run)
            assert row[o.name] == want or (np.isnan(want) and np.isnan(row[o.name])), o.name
    # The summary pairs each arm with the first (here whichever the shuffle put first) over
    # the replications both hold.
    first = table["sales.reps"].iloc[0]
    other = 6 - first
    s = e.summary().set_index(["sales.reps", "outcome"])
    of = {k: table[table["sales.reps"] == k].set_index("replication")["customers"]
          for k in (first, other)}
    d = (of[other] - of[first]).dropna()
    assert len(d) == (5 if cut else 6)
    assert s.loc[(other, "customers"), "diff"] == pytest.approx(d.mean(), rel=1e-12)
    assert np.isnan(s.loc[(first, "customers"), "diff"])


def test_outcomes_are_kept_until_the_runs_change(long_sweep):
    e = exp.Experiment(long_sweep.kind, long_sweep.runs, long_sweep.arms, long_sweep.keys,
                       long_sweep.seed, long_sweep.seeds)
    first = e.outcomes()
    first["customers"] = -1.0  # a copy: changing it leaves the experiment's alone
    assert (e.outcomes()["customers"] >= 0).all()
    e.runs = _edited(e).runs
    again = e.outcomes()
    assert len(again) == 11 and again["payback_month"].notna().any()


def test_the_work_estimate_counts_the_shared_months_of_branches_once():
    base = load_scenario("baseline", {"market.prospects": 2000, "months": 36})
    plan = load_scenario("baseline", {"market.prospects": 2000, "months": 36, "name": "plan",
                                      "timeline": [{"month": 25, "set": {"sales.reps": 6}}]})
    tasks = tuple(exp.Task(arm=i, scenario=sc, point=(), replication=0, seed=3, months=36,
                           file=f"f{i}.parquet") for i, sc in enumerate((base, plan)))
    alone = exp.check_work(list(tasks), 1, yes=True)
    grouped = exp.check_work([exp.Branches(tasks, 25)], 1, yes=True)
    each = {t.file: exp.estimate_run_seconds(t.scenario, 36) for t in tasks}
    assert alone == pytest.approx(sum(each.values()))
    # 24 shared months once, then 12 months of each plan: (24 + 12 + 12) of 72 months
    shared = exp.estimate_run_seconds(base, 24)
    assert grouped == pytest.approx(shared + exp.estimate_run_seconds(base, 12)
                                    + exp.estimate_run_seconds(plan, 12))
    assert 0.6 < grouped / alone < 0.7
    assert exp.estimate_run_seconds(base, 0) == 0.0  # no months, no work
