"""Signals, executors and the limits of an experiment, in real processes.

A `gtmsim compare` killed by SIGINT, SIGTERM or SIGHUP must end within seconds, keep the
runs that finished (resumable to the same result) and leave no process behind.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import psutil
import pytest

from gtmsim import experiment as exp
from gtmsim.cli import main
from gtmsim.model import simulate
from gtmsim.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[1]
# Slow enough (about a second a run) that a signal lands mid-experiment.
COMPARE = ["compare", "baseline", "more_reps", "--reps", "6", "--workers", "2",
           "--set", "market.prospects=2000", "--set", "sales.reps=200", "--months", "12"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _gtmsim(*args: str) -> list[str]:
    return [sys.executable, "-m", "gtmsim.cli", *args]


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except psutil.NoSuchProcess:
            pass
    return left


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143),
                                               (signal.SIGHUP, 129)])
def test_a_signal_ends_compare_quickly_keeps_runs_and_leaves_no_process(tmp_path, signum, code):
    out = tmp_path / "cut"
    proc = subprocess.Popen(_gtmsim(*COMPARE, "--out", str(out)), env=_env(), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = out / "runs"
    deadline = time.monotonic() + 120
    while not (runs.is_dir() and list(runs.glob("*.parquet"))):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no run was stored within two minutes"
        time.sleep(0.05)
    family = psutil.Process(proc.pid).children(recursive=True)
    assert family, "the workers should be running"
    proc.send_signal(signum)
    start = time.monotonic()
    try:
        stdout, stderr = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        for p in _alive(family):
            p.kill()
        pytest.fail(f"still running 15 s after {signum.name}")
    assert time.monotonic() - start < 15
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "kept in" in lines[0] and "--resume" in lines[0] and str(out) in lines[0]
    deadline = time.monotonic() + 5
    while _alive(family) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(family), [p.cmdline() for p in _alive(family)]
    kept = sorted(p.name for p in runs.glob("*.parquet"))
    assert kept and not list(runs.glob(".*"))  # whole runs, no temporary files

    if signum != signal.SIGINT:
        return  # resuming is the same whatever the signal; check it once
    whole = tmp_path / "whole"
    for folder, extra in ((out, ["--resume"]), (whole, [])):
        done = subprocess.run(_gtmsim(*COMPARE, "--out", str(folder), "-q", *extra), env=_env(),
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"),
                                  pd.read_parquet(whole / "runs.parquet"))


# --------------------------------------------------------------------------- Dask schedulers

SMALL = ["--set", "market.prospects=2000", "--months", "2", "--reps", "2"]


def test_a_malformed_scheduler_address_is_bad_input(tmp_path, capsys):
    code = main(["compare", "baseline", *SMALL, "--scheduler", "garbage!!",
                 "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "garbage!!" in err and "tcp://HOST:PORT" in err
    assert not (tmp_path / "x").exists()


def test_a_scheduler_that_never_answers_fails_within_the_timeout(tmp_path, capsys, monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []

    def accept_and_say_nothing():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept_and_say_nothing, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    monkeypatch.setenv("GTMSIM_SCHEDULER_TIMEOUT", "2")
    start = time.monotonic()
    try:
        code = main(["compare", "baseline", *SMALL, "--scheduler", address,
                     "--out", str(tmp_path / "x")])
    finally:
        server.close()
        for conn in accepted:
            conn.close()
    err = capsys.readouterr().err
    assert time.monotonic() - start < 20
    assert code == 2 and "Traceback" not in err
    assert address in err and "tcp://HOST:PORT" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_a_dask_worker_that_dies_mid_experiment_has_its_runs_done_elsewhere(tmp_path):
    distributed = pytest.importorskip("distributed")
    keys = {"market.prospects": 2000, "sales.reps": 200}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        killed = []

        def kill_one(done, total):
            if done >= 1 and not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        got = exp.compare(["baseline", "more_reps"], reps=3, months=12, overrides=keys,
                          scheduler=cluster.scheduler_address, progress=kill_one)
    assert killed
    want = exp.compare(["baseline", "more_reps"], reps=3, months=12, overrides=keys, workers=1)
    pd.testing.assert_frame_equal(got.runs, want.runs)


class _ClusterWithoutWorkers(cf.Executor):
    """A Dask-like executor whose runs never start: its cluster has no workers left."""

    def __init__(self):
        self._gtmsim_client = SimpleNamespace(
            scheduler_info=lambda: {"workers": {}},
            scheduler=SimpleNamespace(address="tcp://127.0.0.1:8786"))

    def submit(self, fn, /, *args, **kwargs):
        return cf.Future()  # never runs


def test_a_cluster_left_without_workers_ends_the_experiment_with_a_message(monkeypatch):
    monkeypatch.setattr(exp, "DASK_NO_WORKERS_S", 1)
    start = time.monotonic()
    with pytest.raises(exp.ExperimentError, match="tcp://127.0.0.1:8786 has had no workers"):
        exp.compare(["baseline"], reps=2, months=2, overrides={"market.prospects": 2000},
                    executor=_ClusterWithoutWorkers())
    assert time.monotonic() - start < 10


# --------------------------------------------------------------------------- errors from workers


def test_bad_input_raised_in_a_worker_arrives_whole(tmp_path, monkeypatch, capsys):
    import failing_runs

    monkeypatch.setattr(exp, "_timed_run", failing_runs.bad_input)
    with pytest.raises(ScenarioError) as caught:
        exp.compare(["baseline", "more_reps"], reps=2, months=2, workers=2,
                    overrides={"market.prospects": 2000})
    assert caught.value.problems == ["a.b: bad", "c.d: also bad"]
    code = main(["compare", "baseline", "more_reps", *SMALL, "--workers", "2",
                 "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2
    assert [line for line in err.splitlines() if line.strip()] == ["a.b: bad", "c.d: also bad"]


def test_a_bug_in_a_worker_is_an_unexpected_error_in_one_line(tmp_path, monkeypatch, capsys):
    import failing_runs

    monkeypatch.setattr(exp, "_timed_run", failing_runs.bug)
    code = main(["compare", "baseline", "more_reps", *SMALL, "--workers", "2",
                 "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 1 and "unexpected error" in err and "ZeroDivisionError" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- scripts


def test_a_script_without_the_main_guard_runs_once_in_process_with_one_warning(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent("""
        print("top of the script")
        from gtmsim.experiment import compare
        e = compare(["baseline", "more_reps"], reps=2, months=2, workers=2,
                    overrides={"market.prospects": 2000})
        print("runs", len(e.runs))
    """))
    done = subprocess.run([sys.executable, str(script)], env=_env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("top of the script") == 1
    assert "runs 8" in done.stdout
    assert "Traceback" not in done.stderr
    said = [line for line in done.stderr.splitlines() if "__main__" in line]
    assert len(said) == 1 and "in this process" in said[0], done.stderr


def test_workers_start_with_the_model_kernels_loaded():
    import failing_runs

    with exp.executor_for(workers=2, tasks=2) as pool:
        loaded = list(pool.map(failing_runs.kernels_loaded, [0, 1]))
    # A process that only imported gtmsim holds none: numba loads a kernel on its first call.
    assert all(n >= 4 for n in loaded), loaded


def _fork_servers() -> list[psutil.Process]:
    return [p for p in _alive(psutil.Process().children())
            if "forkserver" in " ".join(p.cmdline())]


def test_a_command_refused_after_its_workers_started_leaves_no_process(tmp_path, capsys):
    # The fork server starts as the command starts (to load gtmsim while the command reads
    # its inputs); bad input found after that must end it too.
    code = main(["compare", "baseline", "no_such_scenario", "--workers", "2",
                 "--out", str(tmp_path / "x")])
    assert code == 2 and "no_such_scenario" in capsys.readouterr().err
    assert not _fork_servers()
    assert not (tmp_path / "x").exists()
    # and the next command starts a new one
    code = main(["compare", "baseline", "more_reps", *SMALL, "--workers", "2", "-q",
                 "--out", str(tmp_path / "y")])
    assert code == 0 and (tmp_path / "y" / "runs.parquet").exists()


def test_a_script_with_the_main_guard_uses_worker_processes(tmp_path):
    script = tmp_path / "guarded.py"
    script.write_text(textwrap.dedent("""
        import os
        from gtmsim.experiment import compare
        from gtmsim.experiment import _timed_run

        if __name__ == "__main__":
            e = compare(["baseline", "more_reps"], reps=2, months=2, workers=2,
                        overrides={"market.prospects": 2000})
            print("runs", len(e.runs))
    """))
    done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", str(script)],
                          env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "runs 8" in done.stdout and "__main__" not in done.stderr


# --------------------------------------------------------------------------- repeated values


def test_a_value_given_twice_in_vary_is_refused(tmp_path, capsys):
    with pytest.raises(ScenarioError, match=r"sales\.reps: the value 2 is given more than once"):
        exp.parse_vary(["sales.reps=2,2,3"])
    code = main(["sweep", "baseline", "--vary", "sales.reps=2,2,3", *SMALL,
                 "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "sales.reps" in err and "the value 2" in err
    assert not (tmp_path / "x").exists()


def test_values_equal_once_validated_are_refused_in_the_api():
    with pytest.raises(ScenarioError, match=r"sales\.reps: the value 2\.0 is given more than once"):
        exp.sweep("baseline", {"sales.reps": [2, 3, 2.0]}, reps=2, months=2,
                  overrides={"market.prospects": 2000}, workers=1)


# --------------------------------------------------------------------------- sizes


def test_a_huge_grid_is_refused_before_it_is_built(tmp_path, capsys):
    start = time.monotonic()
    code = main(["sweep", "baseline", "--vary", "sales.reps=1:1000:1000000", *SMALL,
                 "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert time.monotonic() - start < 5
    assert code == 2 and "1,000,000" in err and "Traceback" not in err
    with pytest.raises(exp.ExperimentError, match="200,000 points, more than"):
        exp.sweep("baseline", {"sales.reps": range(1, 2001), "sales.ramp_months": range(1, 101)})
    assert not (tmp_path / "x").exists()


def test_long_work_is_refused_with_an_estimate_unless_yes(tmp_path, capsys):
    code = main(["compare", "baseline", "--set", "sales.reps=100000", "--reps", "30",
                 "--workers", "2", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "30 runs ×" in err and "on 2 workers" in err and "--yes" in err
    assert not (tmp_path / "x").exists()
    code = main(["run", "baseline", "--set", "sales.reps=100000", "--months", "600",
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "--yes" in err and not (tmp_path / "r").exists()


def test_yes_starts_long_work(monkeypatch, tmp_path):
    monkeypatch.setattr(exp, "LONG_WORK_S", 0.001)  # any work is "long" now
    args = ["compare", "baseline", *SMALL, "--workers", "1", "--out", str(tmp_path / "x"), "-q"]
    assert main(args) == 2
    assert main([*args, "--yes"]) == 0


def test_the_estimate_is_within_a_factor_of_three_of_a_measured_run():
    sc = load_scenario("baseline", {"market.prospects": 2000, "sales.reps": 300})
    simulate(sc, months=1, keep_model=False)  # warm up
    start = time.process_time()  # CPU time: what the estimate models, whatever the load
    simulate(sc, months=4, keep_model=False)
    measured = time.process_time() - start
    assert measured / 3 < exp.estimate_run_seconds(sc, 4) < measured * 3


# --------------------------------------------------------------------------- API arguments


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"months": 0}, "months"), ({"months": True}, "months"), ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed")])
def test_simulate_checks_its_arguments(kwargs, name):
    sc = load_scenario("baseline", {"market.prospects": 2000})
    with pytest.raises(ValueError, match=rf"^{name}: expected a whole number"):
        simulate(sc, **kwargs)
    with pytest.raises(ValueError, match="scenario: expected a Scenario"):
        simulate("baseline")


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"months": 0}, "months"), ({"reps": 0}, "reps"), ({"reps": 2.5}, "reps"),
    ({"workers": 0}, "workers"), ({"seed": -3}, "seed"), ({"months": "6"}, "months"),
    ({"scheduler": "nowhere"}, "--scheduler nowhere")])
def test_compare_and_sweep_check_their_arguments(kwargs, name):
    with pytest.raises(exp.ExperimentError, match=rf"^{name}: expected"):
        exp.compare(["baseline"], **kwargs)
    with pytest.raises(exp.ExperimentError, match=rf"^{name}: expected"):
        exp.sweep("baseline", {"sales.reps": [2, 3]}, **kwargs)


def test_sigterm_ends_run_with_143_and_writes_nothing(tmp_path):
    out = tmp_path / "r"
    proc = subprocess.Popen(_gtmsim("run", "baseline", "--set", "sales.reps=2000", "--months",
                                    "120", "--out", str(out)), env=_env(), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Into the run (about 30 CPU s) once past the imports (about 2 CPU s), however loaded
    # the machine is.
    me = psutil.Process(proc.pid)
    deadline = time.monotonic() + 120
    while sum(me.cpu_times()[:2]) < 5:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 143 and "Interrupted by SIGTERM" in stderr
    assert "Traceback" not in stderr and not out.exists()


def test_vary_refuses_a_value_that_is_not_toml_and_keeps_bare_words():
    from gtmsim.experiment import parse_vary
    from gtmsim.scenario import ScenarioError

    assert parse_vary(["alignment.preset=siloed,aligned"]) == {
        "alignment.preset": ["siloed", "aligned"]}
    with pytest.raises(ScenarioError) as info:
        parse_vary(['name="abc,x', "sales.reps=1e"])
    assert len(info.value.problems) == 2
    assert "--vary name" in info.value.problems[0] and "not a valid TOML value" in str(info.value)


def test_compare_warns_when_months_cut_off_a_timeline_entry(tmp_path, capsys):
    from gtmsim.cli import main

    code = main(["compare", "hire_and_cut", "--reps", "1", "--months", "3", "--workers", "1",
                 "--set", "market.prospects=1000", "--out", str(tmp_path / "x"), "--quiet"])
    assert code == 0
    err = capsys.readouterr().err
    assert "timeline[0].month: 6 is after the last month (3)" in err


def test_work_over_a_minute_is_announced_with_its_estimate(monkeypatch):
    from gtmsim import experiment

    monkeypatch.setattr(experiment, "estimate_run_seconds", lambda sc, months: 50.0)
    tasks = [SimpleNamespace(scenario=object(), months=24) for _ in range(4)]
    with pytest.warns(experiment.LongWorkWarning, match=r"4 runs × 50.0 s"):
        assert experiment.check_work(tasks, 2, yes=False) == pytest.approx(100.0)
    monkeypatch.setattr(experiment, "estimate_run_seconds", lambda sc, months: 10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        experiment.check_work(tasks, 2, yes=False)  # 20 s: nothing to say


def test_a_scheduler_port_out_of_range_is_refused_at_once():
    from gtmsim.experiment import ExperimentError, _check_scheduler_address

    with pytest.raises(ExperimentError, match="port 99999"):
        _check_scheduler_address("tcp://127.0.0.1:99999")
    assert _check_scheduler_address("tcp://127.0.0.1:8786") == "tcp://127.0.0.1:8786"


def test_a_scheduler_address_where_nothing_listens_is_refused_at_once(tmp_path, capsys):
    from gtmsim.cli import main

    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    code = main(["compare", "siloed", "aligned", "--reps", "1", "--months", "1",
                 "--scheduler", f"tcp://127.0.0.1:{port}", "--out", str(tmp_path / "x")])
    assert code == 2 and time.monotonic() - start < 5
    assert "connection was refused" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
