"""Throughput benchmark: cost of a run by market size, experiments per second, start-up; vs cd5fa10.

Three measurements, each taken for the code of the checkout this script lives in ("new")
and, side by side in the same run, for the code of commit cd5fa10 ("cd5fa10", the
reference before the speed work), which the script exports once into
`benchmarks/.ref-cd5fa10/` with its own venv:

1. Runs: `simulate(load_scenario("baseline", {"market.prospects": N}), months=24,
   keep_model=False)` at several market sizes, each in a fresh subprocess. The child
   imports gtmsim (timed apart), makes one tiny warm-up run (1,000 prospects, 1 month:
   compiled kernels are compiled or loaded from their on-disk cache there; its time is
   reported as "first call", which users pay once per process), then times the run:
   wall, CPU (`time.process_time`) and the child's peak RSS (`ru_maxrss`).
2. Throughput: `gtmsim compare baseline more_reps --reps R --quiet --out DIR
   --workers W` (2·R runs of the default 50,000-prospect market, 24 months) as a whole
   process, results folder included; runs per second.
3. Start-up: `gtmsim --help` and `gtmsim check baseline` as whole processes.

Configurations are measured in rounds (every configuration once per round, the two
codes back to back, the one that goes first alternating between rounds), so a busy
spell on a shared machine spreads over all of them; figures are medians over rounds,
every sample is kept. Ratios are cd5fa10 ÷ new (above 1: the new code is faster).

Usage:
    python benchmarks/bench_throughput.py                 # full run (cd5fa10 is the slow part)
    python benchmarks/bench_throughput.py --quick         # smoke run, 1-3 min
    python benchmarks/bench_throughput.py --no-reference --only runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    HERE,
    ROOT,
    describe,
    finish,
    load_average,
    machine,
    markdown_table,
    median,
    write_outputs,
)

REF_COMMIT = "cd5fa10"
REF_DIR = HERE / f".ref-{REF_COMMIT}"
REF_STAMP = REF_DIR / "ready.json"
# The warm-up run in each child: a small market over the measured horizon, so every phase
# (and every compiled kernel) a run reaches has been called once before the timed run.
WARMUP_PROSPECTS = 1_000
COMPARED = ["baseline", "more_reps"]
DEFAULT_PROSPECTS = 50_000  # the shipped scenarios' market

FULL = {"sizes": [2_000, 10_000, 50_000, 200_000, 1_000_000], "months": 24, "reps": 500,
        "rounds": 3, "workers": [1, 2]}
QUICK = {"sizes": [2_000, 10_000], "months": 6, "reps": 5, "rounds": 1, "workers": [1, 2]}
STARTUP_SAMPLES = 5  # at least this many per command and code, over all rounds
STARTUP = {"help": ["--help"], "check": ["check", "baseline"]}
STARTUP_LABEL = {"help": "gtmsim --help", "check": "gtmsim check baseline"}
SECTIONS = ("runs", "throughput", "startup")

# The throughput targets, measured on the new code.
LIMITS = {
    "throughput_1000_2w_s": 60.0,
    "run_2k_s": 0.1,
    "run_50k_s": 0.25,
    "run_1m_s": 3.0,
    "peak_1m_mb": 1024.0,
    "help_s": 1.0,
    "check_s": 1.5,
    "throughput_ratio_2w": 6.0,
}


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# --------------------------------------------------------------------------- children
# These run under either code's interpreter: standard library and gtmsim's public API only.


def child_info() -> dict[str, Any]:
    """Which interpreter, libraries and gtmsim this process imports."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import gtmsim

    def v(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"python": platform.python_version(), "executable": sys.executable,
            "gtmsim_file": gtmsim.__file__,
            **{name: v(name) for name in ("numpy", "pandas", "mesa", "numba", "scipy")}}


def _kernel_signatures() -> dict[str, int]:
    """Compiled signatures of every numba kernel gtmsim has loaded (none without numba)."""
    if "numba" not in sys.modules:
        return {}
    from numba.core.registry import CPUDispatcher

    return {f"{mod_name}.{attr}": len(f.signatures)
            for mod_name, mod in list(sys.modules.items())
            if mod_name == "gtmsim" or mod_name.startswith("gtmsim.")
            for attr, f in list(vars(mod).items()) if isinstance(f, CPUDispatcher)}


def child_run(prospects: int, months: int, warmup_months: int) -> dict[str, Any]:
    """Imports, a warm-up call, then one timed baseline run, in this (fresh) process.

    The warm-up is made twice: the first is what a user's first call costs, the second
    the same work once compiled, so their difference is the one-off cost of a process.
    """
    t0 = time.perf_counter()
    from gtmsim import load_scenario, simulate

    import_s = time.perf_counter() - t0
    import_mb = _maxrss_mb()
    warm_s = []
    for _ in range(2):
        t1 = time.perf_counter()
        warm = load_scenario("baseline", {"market.prospects": WARMUP_PROSPECTS})
        simulate(warm, months=warmup_months, keep_model=False)
        warm_s.append(time.perf_counter() - t1)
    scenario = load_scenario("baseline", {"market.prospects": prospects})
    before = _kernel_signatures()
    t2, c2 = time.perf_counter(), time.process_time()
    result = simulate(scenario, months=months, keep_model=False)
    run_s, cpu_s = time.perf_counter() - t2, time.process_time() - c2
    after = _kernel_signatures()
    return {
        "run_s": run_s,
        "cpu_s": cpu_s,
        "import_s": import_s,
        "first_call_s": warm_s[0],
        "second_call_s": warm_s[1],
        "one_off_s": warm_s[0] - warm_s[1],
        "import_rss_mb": import_mb,
        "peak_rss_mb": _maxrss_mb(),
        "kernels": len(after),
        "kernels_compiled_in_run": sorted(k for k, n in after.items() if n > before.get(k, 0)),
        "rows": len(result.monthly),
        "customers_end": int(result.monthly["customers"].iloc[-1]),
    }


# --------------------------------------------------------------------------- the two codes


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and why."""


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise BenchError(f"git {' '.join(args)} failed in {ROOT}: {out.stderr.strip()}")
    return out.stdout.strip()


def _side(name: str, python: str, tree: Path, env: dict[str, str]) -> dict[str, Any]:
    script = Path(python).parent / "gtmsim"
    cli = [str(script)] if script.exists() else [python, "-m", "gtmsim.cli"]
    return {"name": name, "python": python, "tree": str(tree), "env": env, "cli": cli}


def new_side(python: str) -> dict[str, Any]:
    """The checkout this script lives in, run by `python` with PYTHONPATH set to it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return _side("new", python, ROOT, env)


def _constraints(python: str, path: Path) -> int:
    """Pin the reference venv's libraries to the versions `python` has; the count pinned.

    So the ratio measures gtmsim's code, not a newer NumPy or pandas from PyPI.
    """
    code = ("import json\nfrom importlib.metadata import distributions\n"
            "print(json.dumps(sorted({(d.metadata['Name'], d.version) for d in distributions()"
            " if d.metadata['Name']})))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise BenchError(f"could not list the libraries of {python}: {out.stderr.strip()}")
    skip = {"gtmsim", "pip", "setuptools", "wheel"}
    pins = [f"{n}=={v}" for n, v in json.loads(out.stdout) if n.lower() not in skip]
    path.write_text("\n".join(pins) + "\n")
    return len(pins)


def _run_logged(cmd: list[str], log_path: Path, what: str) -> None:
    with log_path.open("a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    if rc != 0:
        raise BenchError(f"{what} failed (exit {rc}); see {log_path}")


def reference_side(ref_python: str, new_python: str, log=print) -> dict[str, Any]:
    """cd5fa10 exported under benchmarks/.ref-cd5fa10/tree with its own venv (made once)."""
    tree, venv = REF_DIR / "tree", REF_DIR / "venv"
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if REF_STAMP.exists() and python.exists():
        return _side(REF_COMMIT, str(python), tree, env)
    try:
        kind = _git("cat-file", "-t", REF_COMMIT)
    except BenchError as e:
        raise BenchError(f"commit {REF_COMMIT} is not in the repository at {ROOT} ({e}); "
                         "fetch it, or run with --no-reference") from None
    if kind != "commit":
        raise BenchError(f"{REF_COMMIT} names a {kind}, not a commit, in {ROOT}")
    full = _git("rev-parse", f"{REF_COMMIT}^{{commit}}")
    log(f"making the reference: {REF_COMMIT} exported to {tree}, venv {venv} "
        "(once; a few minutes: libraries come from PyPI)")
    shutil.rmtree(REF_DIR, ignore_errors=True)
    tree.mkdir(parents=True)
    archive = REF_DIR / "tree.tar"
    with archive.open("wb") as f:
        rc = subprocess.run(["git", "archive", "--format=tar", full], cwd=ROOT, stdout=f,
                            check=False).returncode
    if rc != 0:
        raise BenchError(f"git archive {full} failed (exit {rc})")
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    archive.unlink()
    install_log = REF_DIR / "install.log"
    _run_logged([ref_python, "-m", "venv", str(venv)], install_log, f"{ref_python} -m venv")
    constraints = REF_DIR / "constraints.txt"
    pinned = _constraints(new_python, constraints)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    try:
        _run_logged([*pip, "-c", str(constraints), "-e", str(tree)], install_log,
                    "pip install of the reference with the new code's library versions")
        used = True
    except BenchError as e:
        log(f"WARNING: {e}; installing the reference with PyPI's current versions instead")
        _run_logged([*pip, "-e", str(tree)], install_log, "pip install of the reference")
        used = False
    REF_STAMP.write_text(json.dumps({
        "commit": full, "made": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": ref_python, "pinned_to_new_versions": used, "pins": pinned}, indent=2) + "\n")
    return _side(REF_COMMIT, str(python), tree, env)


def describe_side(side: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """Ask the side's interpreter what it imports; refuse a gtmsim from the wrong tree."""
    out = subprocess.run([side["python"], __file__, "--child", "info"], env=side["env"], cwd=cwd,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise BenchError(f"{side['name']}: {side['python']} cannot import gtmsim:\n{out.stderr}")
    info = json.loads(out.stdout.strip().splitlines()[-1])
    if not Path(info["gtmsim_file"]).resolve().is_relative_to(Path(side["tree"]).resolve()):
        raise BenchError(f"{side['name']}: {side['python']} imports gtmsim from "
                         f"{info['gtmsim_file']}, not from {side['tree']}")
    return info


# --------------------------------------------------------------------------- measuring


def spawn_run(side: dict[str, Any], cwd: Path, prospects: int, months: int,
              warmup_months: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = subprocess.run([side["python"], __file__, "--child", "run", "--prospects",
                          str(prospects), "--months", str(months), "--warmup-months",
                          str(warmup_months)],
                         env=side["env"], cwd=cwd, capture_output=True, text=True, check=False)
    process_s = time.perf_counter() - t0
    if out.returncode != 0:
        raise BenchError(f"{side['name']}: run at {prospects:,} prospects failed:\n{out.stderr}")
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    answer["process_s"] = process_s
    return answer


def timed_cli(side: dict[str, Any], cwd: Path, args: list[str]) -> float:
    """Wall time of one whole `gtmsim ARGS` process; a failure is an error."""
    t0 = time.perf_counter()
    out = subprocess.run([*side["cli"], *args], env=side["env"], cwd=cwd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         check=False)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise BenchError(f"{side['name']}: gtmsim {' '.join(args)} exited {out.returncode}:\n"
                         f"{out.stderr[-4000:]}")
    return wall


def _folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def timed_compare(side: dict[str, Any], cwd: Path, reps: int, workers: int,
                  months: int) -> dict[str, Any]:
    out_dir = Path(tempfile.mkdtemp(prefix="compare-", dir=cwd)) / "out"
    args = ["compare", *COMPARED, "--reps", str(reps), "--quiet", "--out", str(out_dir),
            "--workers", str(workers)]
    if months != 24:  # the scenarios' own horizon is 24: leave the command as users type it
        args += ["--months", str(months)]
    try:
        wall = timed_cli(side, cwd, args)
        if not (out_dir / "manifest.json").exists():
            raise BenchError(f"{side['name']}: gtmsim {' '.join(args)} wrote no manifest")
        return {"wall_s": wall, "runs": reps * len(COMPARED),
                "folder_mb": _folder_mb(out_dir),
                "run_files": len(list((out_dir / "runs").glob("*.parquet")))
                if (out_dir / "runs").is_dir() else None}
    finally:
        shutil.rmtree(out_dir.parent, ignore_errors=True)


def measure(cfg: dict[str, Any], sides: list[dict[str, Any]], sections: list[str], cwd: Path,
            log=print) -> dict[str, Any]:
    """Every configuration once per round, the codes back to back; all samples."""
    names = [s["name"] for s in sides]
    raw: dict[str, Any] = {
        "runs": {str(n): {k: [] for k in names} for n in cfg["sizes"]},
        "throughput": {str(w): {k: [] for k in names} for w in cfg["workers"]},
        "startup": {c: {k: [] for k in names} for c in STARTUP},
    }
    per_round = math.ceil(STARTUP_SAMPLES / cfg["rounds"])
    # One untimed child per code first: it compiles the kernels into their on-disk cache
    # if the code changed since the last run (a cost paid once per install or edit).
    raw["prime"] = {}
    for side in sides:
        p = spawn_run(side, cwd, WARMUP_PROSPECTS, cfg["months"], cfg["months"])
        raw["prime"][side["name"]] = p
        log(f"prime: {side['name']:>7} first process: imports {p['import_s']:.2f} s, first call "
            f"{p['first_call_s']:.2f} s, whole process {p['process_s']:.2f} s  "
            f"(load {load_average()[0]})")
    for r in range(cfg["rounds"]):
        order = sides if r % 2 == 0 else sides[::-1]
        tag = f"round {r + 1}/{cfg['rounds']}"
        if "runs" in sections:
            for n in cfg["sizes"]:
                for side in order:
                    s = spawn_run(side, cwd, n, cfg["months"], cfg["months"])
                    raw["runs"][str(n)][side["name"]].append(s)
                    late = s["kernels_compiled_in_run"]
                    log(f"{tag}: {side['name']:>7} {n:>9,} prospects x {cfg['months']} months: "
                        f"run {s['run_s']:6.3f} s, CPU {s['cpu_s']:6.3f} s, first call "
                        f"{s['first_call_s']:6.3f} s, peak {s['peak_rss_mb']:5.0f} MB"
                        + (f", kernels compiled in the run: {', '.join(late)}" if late else "")
                        + f"  (load {load_average()[0]})")
        if "throughput" in sections:
            workers = cfg["workers"] if r % 2 == 0 else cfg["workers"][::-1]
            for w in workers:
                for side in order:
                    c = timed_compare(side, cwd, cfg["reps"], w, cfg["months"])
                    raw["throughput"][str(w)][side["name"]].append(c)
                    log(f"{tag}: {side['name']:>7} compare {c['runs']} runs on {w} worker(s): "
                        f"{c['wall_s']:7.2f} s, {c['runs'] / c['wall_s']:6.2f} runs/s  "
                        f"(load {load_average()[0]})")
        if "startup" in sections:
            for _ in range(per_round):
                for cmd, args in STARTUP.items():
                    for side in order:
                        raw["startup"][cmd][side["name"]].append(timed_cli(side, cwd, args))
            for cmd in STARTUP:
                log(f"{tag}: " + ", ".join(
                    f"{s['name']} {STARTUP_LABEL[cmd]} "
                    f"{median(raw['startup'][cmd][s['name']]):.2f} s" for s in sides)
                    + f"  (load {load_average()[0]})")
    return raw


# --------------------------------------------------------------------------- summary


def _ratio(old: float | None, new: float | None) -> float | None:
    return None if old is None or new is None or new <= 0 else old / new


def summarise(cfg: dict[str, Any], raw: dict[str, Any], names: list[str],
              sections: list[str]) -> dict[str, Any]:
    ref = REF_COMMIT if REF_COMMIT in names else None
    out: dict[str, Any] = {"runs": [], "throughput": [], "startup": []}
    if "runs" in sections:
        for n in cfg["sizes"]:
            row: dict[str, Any] = {"prospects": n, "months": cfg["months"]}
            for name in names:
                ss = raw["runs"][str(n)][name]
                row[name] = {f: median([s[f] for s in ss]) for f in (
                    "run_s", "cpu_s", "peak_rss_mb", "import_rss_mb", "first_call_s",
                    "second_call_s", "one_off_s", "import_s", "process_s")}
                row[name]["kernels_compiled_in_run"] = sorted(
                    {k for s in ss for k in s["kernels_compiled_in_run"]})
                row[name]["samples_run_s"] = [round(s["run_s"], 4) for s in ss]
                row[name]["samples_first_call_s"] = [round(s["first_call_s"], 3) for s in ss]
            if ref:
                row["ratio_run"] = _ratio(row[ref]["run_s"], row["new"]["run_s"])
                row["ratio_cpu"] = _ratio(row[ref]["cpu_s"], row["new"]["cpu_s"])
            out["runs"].append(row)
    if "throughput" in sections:
        for w in cfg["workers"]:
            row = {"workers": w, "runs": cfg["reps"] * len(COMPARED), "months": cfg["months"]}
            for name in names:
                cs = raw["throughput"][str(w)][name]
                wall = median([c["wall_s"] for c in cs])
                row[name] = {"wall_s": wall, "runs_per_s": row["runs"] / wall,
                             "folder_mb": median([c["folder_mb"] for c in cs]),
                             "samples_s": [round(c["wall_s"], 3) for c in cs]}
            if ref:
                row["ratio"] = _ratio(row[ref]["wall_s"], row["new"]["wall_s"])
            out["throughput"].append(row)
    if "startup" in sections:
        for cmd in STARTUP:
            row = {"command": STARTUP_LABEL[cmd], "key": cmd}
            for name in names:
                xs = raw["startup"][cmd][name]
                row[name] = {"wall_s": median(xs), "samples_s": [round(x, 3) for x in xs]}
            if ref:
                row["ratio"] = _ratio(row[ref]["wall_s"], row["new"]["wall_s"])
            out["startup"].append(row)
    out["prime"] = {name: {"import_s": p["import_s"], "first_call_s": p["first_call_s"],
                           "process_s": p["process_s"]}
                    for name, p in raw.get("prime", {}).items()}
    out["targets"] = targets(cfg, out, ref is not None, sections)
    return out


def targets(cfg: dict[str, Any], s: dict[str, Any], has_ref: bool,
            sections: list[str]) -> list[dict[str, Any]]:
    """The targets with the measured value; judged only at the target's configuration."""
    runs = {r["prospects"]: r for r in s["runs"]}
    tput = {r["workers"]: r for r in s["throughput"]}
    start = {r["key"]: r for r in s["startup"]}
    full_tput = cfg["reps"] * len(COMPARED) == 1000 and cfg["months"] == 24
    rows = []

    def add(key: str, what: str, value: float | None, fmt: str, at_target: bool, why: str,
            more_is_better: bool = False) -> None:
        limit = LIMITS[key]
        if value is None:
            verdict = "not measured"
        elif not at_target:
            verdict = f"— ({why})"
        elif more_is_better:
            verdict = "PASS" if value >= limit else "FAIL"
        else:
            verdict = "PASS" if value <= limit else "FAIL"
        rows.append({"key": key, "target": what, "limit": limit,
                     "value": None if value is None else round(value, 4),
                     "shown": "—" if value is None else fmt.format(value),
                     "at_target_configuration": at_target, "verdict": verdict})

    months_ok, months_why = cfg["months"] == 24, f"measured at {cfg['months']} months, not 24"
    tput_why = (f"measured {cfg['reps'] * len(COMPARED)} runs × {cfg['months']} months, "
                "not 1,000 × 24")
    w2 = tput.get(2)
    add("throughput_1000_2w_s", "1,000 default-size 24-month runs on 2 workers ≤ 60 s "
        "(results folder included)", w2["new"]["wall_s"] if w2 else None, "{:.1f} s",
        full_tput, tput_why)
    for key, n, what in (("run_2k_s", 2_000, "2,000-prospect run ≤ 0.1 s"),
                         ("run_50k_s", DEFAULT_PROSPECTS,
                          "default (50,000-prospect) run ≤ 0.25 s"),
                         ("run_1m_s", 1_000_000, "1,000,000-prospect run ≤ 3 s")):
        add(key, what, runs[n]["new"]["run_s"] if n in runs else None, "{:.3f} s", months_ok,
            months_why)
    add("peak_1m_mb", "1,000,000-prospect run ≤ 1 GB (1,024 MB) peak RSS, whole process",
        runs[1_000_000]["new"]["peak_rss_mb"] if 1_000_000 in runs else None, "{:.0f} MB",
        months_ok, months_why)
    add("help_s", "`gtmsim --help` ≤ 1 s", start["help"]["new"]["wall_s"] if start else None,
        "{:.2f} s", True, "")
    add("check_s", "`gtmsim check baseline` ≤ 1.5 s",
        start["check"]["new"]["wall_s"] if start else None, "{:.2f} s", True, "")
    ratio = w2.get("ratio") if (w2 and has_ref) else None
    add("throughput_ratio_2w", f"throughput on 2 workers ≥ 6× {REF_COMMIT}", ratio, "{:.2f}×",
        full_tput, tput_why, more_is_better=True)
    return rows


def raw_prime_line(summary: dict[str, Any]) -> str:
    """The first process of each code in this benchmark, which fills the kernel cache."""
    if not summary["prime"]:
        return ""
    return ("\nFirst process of the benchmark, before the rounds (compiles the kernels into "
            "their on-disk cache if the code changed since they were last cached; not in the "
            "medians): " + "; ".join(
                f"{name} first call {p['first_call_s']:.2f} s, whole process {p['process_s']:.2f} s"
                for name, p in summary["prime"].items()) + ".")


def _f(x: float | None, fmt: str) -> str:
    return "—" if x is None else fmt.format(x)


def _samples(xs: list[float], fmt: str = "{:.3f}") -> str:
    return ", ".join(fmt.format(x) for x in xs)


def render(summary: dict[str, Any], meta: dict[str, Any], cfg: dict[str, Any],
           sides: dict[str, dict[str, Any]]) -> str:
    names = list(sides)
    ref = REF_COMMIT if REF_COMMIT in names else None
    parts = [describe(meta) + f" Medians of {cfg['rounds']} round(s); every sample listed.", ""]
    for name, info in sides.items():
        parts.append(f"- `{name}`: gtmsim from {info['tree']}, Python {info['python']}, numpy "
                     f"{info['numpy']}, pandas {info['pandas']}, mesa {info['mesa']}, numba "
                     f"{info['numba'] or 'not installed'}")
    parts.append(raw_prime_line(summary))
    if ref:
        parts.append(f"\nRatios are {ref} ÷ new (above 1: the new code is faster).")
    if summary["runs"]:
        parts.append(f"\n### Per run: baseline, {cfg['months']} months, fresh process each\n")
        parts.append("Run and CPU: `simulate(...)` alone, after imports and two warm-up runs "
                     f"({WARMUP_PROSPECTS:,} prospects, {cfg['months']} months). \"First call\" is "
                     "the first warm-up, what a user's first run in a process costs beyond "
                     "imports; \"one-off\" is the first warm-up less the second (compiled "
                     "kernels loaded from their on-disk cache, first-use costs). Peak RSS: the "
                     "whole child process.\n")
        header = ["prospects", "code", "run (s)", "CPU (s)", "peak RSS (MB)",
                  "RSS after import (MB)", "imports (s)", "first call (s)", "one-off (s)"]
        if ref:
            header.append(f"{ref} ÷ new (run, CPU)")
        header += ["runs (s)", "first calls (s)"]
        rows, late = [], set()
        for r in summary["runs"]:
            for name in names:
                m = r[name]
                late |= {f"{k} ({name}, {r['prospects']:,})" for k in m["kernels_compiled_in_run"]}
                row = [f"{r['prospects']:,}", name, f"{m['run_s']:.3f}", f"{m['cpu_s']:.3f}",
                       f"{m['peak_rss_mb']:.0f}", f"{m['import_rss_mb']:.0f}",
                       f"{m['import_s']:.2f}", f"{m['first_call_s']:.3f}",
                       f"{m['one_off_s']:.3f}"]
                if ref:
                    row.append(f"{_f(r['ratio_run'], '{:.2f}×')}, {_f(r['ratio_cpu'], '{:.2f}×')}"
                               if name == "new" else "")
                row += [_samples(m["samples_run_s"]), _samples(m["samples_first_call_s"])]
                rows.append(row)
        parts.append(markdown_table(header, rows))
        parts.append("\nKernels compiled or loaded during a timed run (the warm-up missed them; "
                     "those runs include that cost): " + (", ".join(sorted(late)) or "none") + ".")
    if summary["throughput"]:
        months = "" if cfg["months"] == 24 else f" --months {cfg['months']}"
        parts.append(f"\n### Experiment throughput: `gtmsim compare {' '.join(COMPARED)} --reps "
                     f"{cfg['reps']} --quiet --out DIR --workers W{months}`\n")
        parts.append(f"{cfg['reps'] * len(COMPARED)} runs of {DEFAULT_PROSPECTS:,} prospects × "
                     f"{cfg['months']} months; the whole process timed, results folder "
                     "included (a fresh folder each time).\n")
        header = ["workers", "code", "wall (s)", "runs per s", "results folder (MB)"]
        if ref:
            header.append(f"{ref} ÷ new")
        header.append("walls (s)")
        rows = []
        for r in summary["throughput"]:
            for name in names:
                m = r[name]
                row = [r["workers"], name, f"{m['wall_s']:.2f}", f"{m['runs_per_s']:.2f}",
                       f"{m['folder_mb']:.1f}"]
                if ref:
                    row.append(_f(r["ratio"], "{:.2f}×") if name == "new" else "")
                row.append(_samples(m["samples_s"], "{:.2f}"))
                rows.append(row)
        parts.append(markdown_table(header, rows))
    if summary["startup"]:
        parts.append("\n### Start-up: whole processes\n")
        header = ["command", "code", "median (s)"]
        if ref:
            header.append(f"{ref} ÷ new")
        header.append("samples (s)")
        rows = []
        for r in summary["startup"]:
            for name in names:
                row = [f"`{r['command']}`", name, f"{r[name]['wall_s']:.2f}"]
                if ref:
                    row.append(_f(r["ratio"], "{:.2f}×") if name == "new" else "")
                row.append(_samples(r[name]["samples_s"], "{:.2f}"))
                rows.append(row)
        parts.append(markdown_table(header, rows))
    parts.append("\n### Targets, new code\n")
    parts.append(markdown_table(["target", "measured", "verdict"],
                                [[t["target"], t["shown"], t["verdict"]]
                                 for t in summary["targets"]]))
    return "\n".join(parts)


# --------------------------------------------------------------------------- command line


def _positive(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 1, got {value}")
    return value


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2k and 10k prospects, 6 months, --reps 5, one round")
    ap.add_argument("--rounds", type=_positive, help="rounds (default 3; 1 with --quick)")
    ap.add_argument("--reps", type=_positive,
                    help="replications per scenario in the throughput comparison "
                         "(default 500: 1,000 runs; 5 with --quick)")
    ap.add_argument("--sizes", type=_positive, nargs="+", metavar="N",
                    help="market sizes of the per-run measurement "
                         "(default 2000 10000 50000 200000 1000000)")
    ap.add_argument("--months", type=_positive,
                    help="months of every run (default 24; 6 with --quick)")
    ap.add_argument("--only", choices=SECTIONS, action="append",
                    help="measure only this section (repeatable)")
    ap.add_argument("--no-reference", action="store_true",
                    help=f"measure the new code only, not {REF_COMMIT}")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter for the new code (default: this one); gtmsim is imported "
                         "from this checkout through PYTHONPATH")
    ap.add_argument("--ref-python", default="python3.12",
                    help=f"interpreter that makes the {REF_COMMIT} venv (default python3.12)")
    ap.add_argument("--child", choices=["run", "info"], help=argparse.SUPPRESS)
    ap.add_argument("--prospects", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--warmup-months", type=int, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.child == "info":
        print(json.dumps(child_info()))
        return 0
    if args.child == "run":
        print(json.dumps(child_run(args.prospects, args.months, args.warmup_months)))
        return 0

    cfg = dict(QUICK if args.quick else FULL)
    for key in ("rounds", "reps", "sizes", "months"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    cfg["sizes"] = sorted(set(cfg["sizes"]))
    sections = [s for s in SECTIONS if s in (args.only or SECTIONS)]
    stem = "throughput-quick" if args.quick else "throughput"
    workdir = Path(tempfile.mkdtemp(prefix="gtmsim-bench-throughput-"))
    try:
        sides = [new_side(args.python)]
        if not args.no_reference:
            sides.append(reference_side(args.ref_python, args.python))
        infos = {s["name"]: {**describe_side(s, workdir), "tree": s["tree"], "cli": s["cli"]}
                 for s in sides}
        meta = machine()
        print(f"load average at start: {meta['load_average_start']}; sections: "
              f"{', '.join(sections)}; codes: {', '.join(infos)}")
        raw = measure(cfg, sides, sections, workdir)
    except BenchError as e:
        print(f"bench_throughput: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    finish(meta)
    summary = summarise(cfg, raw, list(infos), sections)
    md = render(summary, meta, cfg, infos)
    reference = json.loads(REF_STAMP.read_text()) if REF_COMMIT in infos else None
    figures = {"machine": meta, "config": cfg, "sections": sections, "codes": infos,
               "reference": reference, **summary, "raw": raw}
    js, mdp = write_outputs(stem, figures, md)
    print()
    print(md)
    print(f"\nwrote {js} and {mdp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
