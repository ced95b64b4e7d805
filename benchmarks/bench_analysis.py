"""Analysis benchmark: wall time of optimize, Morris sensitivity and explain against targets.

Three workloads, each the command a user types, timed as a whole `gtmsim` process (start-up,
imports, compiled-kernel loading, every run, the results folder with its charts) in a
fresh temporary folder that is removed afterwards:

1. optimize: `gtmsim optimize baseline` over 4 keys (the content, paid-ads and events
   budgets, $0–40,000 a month each, and `sales.reps` 2–10) under
   `--constraint marketing_spend<=48000`, 60 trials × 8 replications at 20,000 prospects,
   24 months. Target ≤ 10 minutes.
2. Morris: `gtmsim sensitivity baseline --method morris` over 8 keys, 10 trajectories
   (90 points) × 4 replications, the shipped 50,000-prospect market, 24 months.
   Target ≤ 5 minutes.
3. explain: `gtmsim explain siloed aligned` over the ten levers that differ: every one of
   the 1,024 subsets × 4 replications at 10,000 prospects, 24 months. Target ≤ 10 minutes.

The three are measured in rounds (each once per round, in turn), so a busy spell on a
shared machine spreads over all of them; figures are medians over rounds, every sample
kept. The verb's own time (`elapsed_s` of `--json`) is reported beside the whole process.

Usage:
    python benchmarks/bench_analysis.py            # full run: 3 rounds, about 1 hour on 2 cores
    python benchmarks/bench_analysis.py --quick    # smoke run: small sizes, 2 rounds, ~2-4 min
    python benchmarks/bench_analysis.py --only explain --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ROOT,
    describe,
    finish,
    machine,
    markdown_table,
    median,
    write_outputs,
)

BUDGETS = [f"marketing.programs.{p}.monthly_budget" for p in ("content", "paid_ads", "events")]
MORRIS_KEYS = ["sales.reps=2:10", "market.in_market_share=0.03:0.09",
               "market.lead_patience_days=10:60", "market.word_of_mouth=0:0.2",
               "market.churn_monthly=0.005:0.03", "sales.ramp_months=2:8",
               "marketing.programs.paid_ads.monthly_budget=5000:40000",
               "alignment.sla_days=0:7"]
# Target minutes of each workload at full size.
TARGETS = {"optimize": 10.0, "morris": 5.0, "explain": 10.0}
WORKLOADS = tuple(TARGETS)
TOP = 3  # optimize's default --top: plans re-evaluated beside the start

FULL: dict[str, Any] = {
    "rounds": 3, "months": 24,
    "optimize": {"keys": 4, "trials": 60, "reps": 8, "prospects": 20_000},
    "morris": {"keys": 8, "trajectories": 10, "reps": 4, "prospects": None},  # the shipped 50,000
    "explain": {"factors": None, "reps": 4, "prospects": 10_000},  # all ten levers
}
QUICK: dict[str, Any] = {
    "rounds": 2, "months": 6,
    "optimize": {"keys": 4, "trials": 6, "reps": 2, "prospects": 2_000},
    "morris": {"keys": 8, "trajectories": 2, "reps": 2, "prospects": 2_000},
    "explain": {"factors": "alignment.handoff_days,alignment.sla_days,alignment.enablement",
                "reps": 2, "prospects": 2_000},  # 3 levers + the other seven as one: 16 mixes
}


class BenchError(RuntimeError):
    pass


def cli() -> list[str]:
    script = Path(sys.executable).parent / "gtmsim"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gtmsim.cli"]


def command(name: str, cfg: dict[str, Any], out: Path, workers: int) -> tuple[list[str], int]:
    """The verb's arguments and the number of runs they make (for optimize: trials × reps,
    plus the re-evaluation of the start and the best `TOP` plans on fresh seeds; trials
    over the spending limit are refused before any run and are not counted as trials)."""
    c, months = cfg[name], cfg["months"]
    common = ["--months", str(months), "--workers", str(workers), "--out", str(out), "--json",
              "--yes"]
    if c.get("prospects"):
        common += ["--set", f"market.prospects={c['prospects']}"]
    if name == "optimize":
        vary = [f"{k}=0:40000" for k in BUDGETS] + ["sales.reps=2:10"]
        args = ["optimize", "baseline", *(a for v in vary[:c["keys"]] for a in ("--vary", v)),
                "--constraint", "marketing_spend<=48000", "--trials", str(c["trials"]),
                "--reps", str(c["reps"])]
        return [*args, *common], (c["trials"] + TOP + 1) * c["reps"]
    if name == "morris":
        keys = MORRIS_KEYS[:c["keys"]]
        args = ["sensitivity", "baseline", *(a for v in keys for a in ("--vary", v)),
                "--method", "morris", "--samples", str(c["trajectories"]), "--reps", str(c["reps"])]
        return [*args, *common], c["trajectories"] * (len(keys) + 1) * c["reps"]
    args = ["explain", "siloed", "aligned", "--reps", str(c["reps"])]
    if c["factors"]:
        args += ["--factors", c["factors"]]
        k = len(c["factors"].split(",")) + 1  # the levers not named form one more factor
    else:
        k = 10
    return [*args, *common], (1 << k) * c["reps"]


def timed(name: str, cfg: dict[str, Any], workers: int, workdir: Path) -> dict[str, Any]:
    """One sample: the whole process's wall time and the verb's own `elapsed_s`."""
    out = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir)) / "out"
    args, runs = command(name, cfg, out, workers)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    done = subprocess.run([*cli(), *args], env=env, cwd=workdir, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - t0
    try:
        if done.returncode != 0:
            raise BenchError(f"gtmsim {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stderr[-4000:]}")
        printed = json.loads(done.stdout.strip().splitlines()[-1])
        return {"wall_s": wall, "verb_s": printed.get("elapsed_s"), "runs": runs,
                "command": "gtmsim " + " ".join("DIR" if a == str(out) else a for a in args)}
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


def summarise(cfg: dict[str, Any], raw: dict[str, list[dict[str, Any]]], quick: bool) -> list[dict]:
    rows = []
    for name, samples in raw.items():
        wall = median([s["wall_s"] for s in samples])
        verbs = [s["verb_s"] for s in samples if s["verb_s"] is not None]
        runs = samples[0]["runs"]
        target = TARGETS[name] * 60
        rows.append({"workload": name, "runs": runs, "wall_s": wall,
                     "verb_s": median(verbs) if verbs else None,
                     "ms_per_run": 1000 * wall / runs, "target_s": target,
                     "meets_target": None if quick else wall <= target,
                     "samples": [round(s["wall_s"], 2) for s in samples],
                     "command": samples[0]["command"]})
    return rows


def render(rows: list[dict], meta: dict[str, Any], cfg: dict[str, Any], quick: bool,
           workers: int) -> str:
    what = {"optimize": "optimize, {keys} keys, {trials} trials × {reps} reps",
            "morris": "Morris, {keys} keys, {trajectories} trajectories × {reps} reps",
            "explain": "explain siloed aligned, {arms} mixes × {reps} reps"}
    body = []
    for r in rows:
        c = dict(cfg[r["workload"]])
        c["arms"] = r["runs"] // c["reps"]
        size = f"{c['prospects']:,}" if c.get("prospects") else "50,000"
        verdict = ("n/a (quick)" if r["meets_target"] is None
                   else "yes" if r["meets_target"] else "NO")
        body.append([what[r["workload"]].format(**c), size, f"{r['runs']:,}",
                     f"{r['wall_s']:.1f}", "–" if r["verb_s"] is None else f"{r['verb_s']:.1f}",
                     f"{r['ms_per_run']:.0f}", f"≤ {r['target_s'] / 60:.0f} min", verdict,
                     ", ".join(f"{s:.1f}" for s in r["samples"])])
    table = markdown_table(["workload", "prospects", "runs", "wall (s, median)", "verb (s)",
                            "ms per run", "target (full size)", "meets target",
                            "samples (s)"], body)
    mode = "QUICK (smoke) sizes: the targets apply to the full run only." if quick else "Full size."
    return "\n".join([f"## Analysis verbs: {mode}", "",
                      f"{cfg['months']} months, --workers {workers}, median of "
                      f"{cfg['rounds']} round(s).", "", table, "", describe(meta), "",
                      "Commands:", "", *[f"    {r['command']}" for r in rows]])


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 1, got {value}")
    return value


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="small sizes (2,000 prospects, 6 months, few trials/reps), 2 rounds")
    ap.add_argument("--rounds", type=_positive, help="rounds (default 3; 2 with --quick)")
    ap.add_argument("--workers", type=_positive, default=os.cpu_count() or 1,
                    help="worker processes of every verb (default: the machine's cores)")
    ap.add_argument("--only", nargs="+", choices=WORKLOADS, help="measure only these")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    cfg = json.loads(json.dumps(QUICK if args.quick else FULL))
    if args.rounds is not None:
        cfg["rounds"] = args.rounds
    names = [n for n in WORKLOADS if n in (args.only or WORKLOADS)]
    meta = machine()
    print(f"load average at start: {meta['load_average_start']}; workloads: {', '.join(names)}; "
          f"{cfg['rounds']} round(s)")
    raw: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    workdir = Path(tempfile.mkdtemp(prefix="gtmsim-bench-analysis-"))
    try:
        for r in range(cfg["rounds"]):
            for name in names:
                sample = timed(name, cfg, args.workers, workdir)
                raw[name].append(sample)
                print(f"round {r + 1}: {name}: {sample['wall_s']:.1f} s ({sample['runs']:,} runs)",
                      flush=True)
    except BenchError as e:
        print(f"bench_analysis: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    finish(meta)
    rows = summarise(cfg, raw, args.quick)
    md = render(rows, meta, cfg, args.quick, args.workers)
    stem = "analysis-quick" if args.quick else "analysis"
    js, mdp = write_outputs(stem, {"machine": meta, "config": cfg, "workers": args.workers,
                                   "results": rows, "raw": raw}, md)
    print()
    print(md)
    print(f"\nwrote {js} and {mdp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
