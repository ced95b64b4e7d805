"""Signals, executors and the limits of an experiment, in real processes.

A `gtmsim compare` killed by SIGINT, SIGTERM or SIGHUP must end within seconds, keep the
runs that finished (resumable to the same result) and leave no process behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

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
