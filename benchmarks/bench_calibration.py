"""Calibration benchmark: the targets of calibrating to a company's history and forecasting.

Two measurements, each a whole `gtmsim` process (imports, worker start-up and the folder
written included), timed around the command as a user types it:

1. Calibrate: `gtmsim calibrate baseline --history FILE --fit K1 --fit K2 --fit K3
   --workers W` with the verb's default budget (population 100, 2,000 simulations, at
   most 8 generations), three keys fitted to 24 months of a 20,000-prospect company's
   `new_leads`, `new_opportunities`, `wins` and `bookings`. The company is a run of known
   parameters written with `gtmsim history`, so each round also reports whether each
   key's 90% posterior interval covers its true value, and its contraction: a fast fit
   that recovers nothing would not count.
2. Forecast: `gtmsim forecast CAL --months 12 --plan more_ads.toml --draws 200 --reps 1
   --workers W`, two plans (current and more_ads) from 200 posterior draws: 400 runs of
   36 months (the history's 24, then 12).

Rounds: each round calibrates in a fresh folder, then forecasts from that calibration;
figures are medians over rounds, every sample is kept. The targets (≤ 3 minutes
for the calibration once the compiled kernels landed, ≤ 1 minute for the forecast) are
judged only at their own configuration: `--quick` shows the figures with no verdict.

Usage:
    python benchmarks/bench_calibration.py            # full run, 3 rounds (~15-25 min on 2 cores)
    python benchmarks/bench_calibration.py --quick    # smoke run, well under a minute
    python benchmarks/bench_calibration.py --rounds 1 --workers 2
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

from common import ROOT, describe, finish, machine, markdown_table, median, write_outputs

# The synthetic company: the baseline scenario with these true values.
TRUTH = {"market.qualify_rate": 0.5, "market.segments.smb.base_win_rate": 0.3,
         "marketing.programs.paid_ads.hand_raise": 0.08}
PRIORS = {"market.qualify_rate": (0.05, 0.95), "market.segments.smb.base_win_rate": (0.05, 0.6),
          "marketing.programs.paid_ads.hand_raise": (0.01, 0.2)}
COLUMNS = ["new_leads", "new_opportunities", "wins", "bookings"]
INPUTS = ["reps", "marketing_spend"]
COMPANY_SEED = 2
PLAN = ('extends = "baseline"\nname = "more_ads"\n'
        '[marketing.programs.paid_ads]\nmonthly_budget = 40000\n')

# The calibration's budget is the verb's default (None: not given on the command line).
FULL = {"prospects": 20_000, "months": 24, "population": None, "sims": None,
        "generations": None, "ppc_draws": None, "forecast_months": 12, "draws": 200,
        "reps": 1, "rounds": 3}
QUICK = {"prospects": 2_000, "months": 6, "population": 8, "sims": 40, "generations": 2,
         "ppc_draws": 4, "forecast_months": 3, "draws": 10, "reps": 1, "rounds": 1}
LIMITS = {"calibrate_s": 180.0, "forecast_s": 60.0}


class BenchError(Exception):
    pass


def cli(python: str) -> list[str]:
    return [python, "-m", "gtmsim.cli"]


def gtmsim(python: str, args: list[str], cwd: Path) -> tuple[float, str]:
    """Run `gtmsim ARGS` as a whole process; its wall time and stdout."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    out = subprocess.run([*cli(python), *args], env=env, cwd=cwd, capture_output=True,
                         text=True, check=False)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise BenchError(f"gtmsim {' '.join(args)} exited {out.returncode}:\n{out.stderr[-4000:]}")
    return wall, out.stdout


def company(python: str, cfg: dict[str, Any], work: Path) -> Path:
    """The synthetic company's history file (not timed)."""
    sets = [f"market.prospects={cfg['prospects']}",
            *(f"{k}={v}" for k, v in TRUTH.items())]
    gtmsim(python, ["run", "baseline", *(w for s in sets for w in ("--set", s)),
                    "--months", str(cfg["months"]), "--seed", str(COMPANY_SEED),
                    "--out", str(work / "company"), "--quiet"], work)
    path = work / "history.csv"
    gtmsim(python, ["history", str(work / "company"), "-o", str(path),
                    "--columns", ",".join([*COLUMNS, *INPUTS])], work)
    return path


def calibrate_args(cfg: dict[str, Any], history: Path, out: Path, workers: int) -> list[str]:
    args = ["calibrate", "baseline", "--history", str(history),
            "--set", f"market.prospects={cfg['prospects']}", "--set", f"months={cfg['months']}",
            "--columns", ",".join(COLUMNS)]
    for key, (low, high) in PRIORS.items():
        args += ["--fit", f"{key}={low:g}:{high:g}"]
    for name in ("population", "sims", "generations", "ppc_draws"):
        if cfg[name] is not None:
            args += [f"--{name.replace('_', '-')}", str(cfg[name])]
    return [*args, "--seed", "1", "--workers", str(workers), "--out", str(out), "--json"]


def forecast_args(cfg: dict[str, Any], cal: Path, plan: Path, out: Path,
                  workers: int) -> list[str]:
    return ["forecast", str(cal), "--months", str(cfg["forecast_months"]), "--plan", str(plan),
            "--draws", str(cfg["draws"]), "--reps", str(cfg["reps"]), "--workers", str(workers),
            "--out", str(out), "--json"]


def one_round(python: str, cfg: dict[str, Any], history: Path, plan: Path, work: Path,
              workers: int, n: int) -> dict[str, Any]:
    cal_dir, fc_dir = work / f"cal-{n}", work / f"fc-{n}"
    try:
        cal_s, cal_out = gtmsim(python, calibrate_args(cfg, history, cal_dir, workers), work)
        cal = json.loads(cal_out.strip().splitlines()[-1])
        fc_s, fc_out = gtmsim(python, forecast_args(cfg, cal_dir, plan, fc_dir, workers), work)
        fc = json.loads(fc_out.strip().splitlines()[-1])
        keys = {r["key"]: {"q05": r["q05"], "q95": r["q95"], "mean": r["mean"],
                           "contraction": r["contraction"],
                           "covers_truth": r["q05"] <= TRUTH[r["key"]] <= r["q95"]}
                for r in cal["summary"]}
        cover = {r["column"]: r["in_90"] for r in cal["coverage"]}
        return {"calibrate_s": cal_s, "generations": len(cal["generations"]),
                "simulations": sum(g["simulations"] for g in cal["generations"]),
                "keys": keys, "ppc_in_90": cover.get("all"), "forecast_s": fc_s,
                "forecast_runs": sum(r["runs"] for r in fc["summary"])}
    finally:
        shutil.rmtree(cal_dir, ignore_errors=True)
        shutil.rmtree(fc_dir, ignore_errors=True)


def render(cfg: dict[str, Any], rounds: list[dict[str, Any]], meta: dict[str, Any],
           workers: int, full: bool) -> tuple[str, dict[str, Any]]:
    cal_s = median([r["calibrate_s"] for r in rounds])
    fc_s = median([r["forecast_s"] for r in rounds])
    budget = ("the verb's default budget" if cfg["sims"] is None else
              f"population {cfg['population']}, {cfg['sims']} simulations, "
              f"≤ {cfg['generations']} generations")
    lines = [f"# Calibration and forecast: {'full' if full else 'quick'} run", "",
             describe(meta), "",
             f"Company: baseline at {cfg['prospects']:,} prospects, {cfg['months']} months, "
             f"seed {COMPANY_SEED}; fitted columns {', '.join(COLUMNS)}; {budget}; "
             f"{workers} worker(s); {len(rounds)} round(s).", ""]
    rows = [[n + 1, f"{r['calibrate_s']:.1f}", r["generations"], f"{r['simulations']:,}",
             f"{r['ppc_in_90']:.0%}", f"{r['forecast_s']:.1f}", f"{r['forecast_runs']:,}"]
            for n, r in enumerate(rounds)]
    lines += [markdown_table(["round", "calibrate (s)", "generations", "simulations",
                              "history in 90% band", "forecast (s)", "forecast runs"], rows), ""]
    rows = []
    for key in PRIORS:
        got = [r["keys"][key] for r in rounds]
        rows.append([key, f"{TRUTH[key]:g}", f"{PRIORS[key][0]:g} – {PRIORS[key][1]:g}",
                     ", ".join(f"{g['q05']:.3g} – {g['q95']:.3g}" for g in got),
                     ", ".join("yes" if g["covers_truth"] else "no" for g in got),
                     ", ".join(f"{g['contraction']:.0%}" for g in got)])
    lines += ["Recovery (per round):", "",
              markdown_table(["key", "true value", "prior", "90% posterior interval",
                              "covers the truth", "contraction"], rows), ""]
    verdict = {}
    rows = []
    for name, what, value in (("calibrate_s", "calibrate: 3 keys, 24 months, 20,000 prospects "
                               "≤ 3 minutes", cal_s),
                              ("forecast_s", "forecast: 12 months, two plans, 200 draws "
                               "≤ 1 minute", fc_s)):
        ok = value <= LIMITS[name] if full else None
        verdict[name] = ok
        rows.append([what, f"{value:.1f} s (median)",
                     "PASS" if ok else "FAIL" if ok is not None else "— (not the target's size)"])
    lines += [markdown_table(["target", "measured", "met?"], rows)]
    figures = {"config": cfg, "workers": workers, "full": full, "rounds": rounds,
               "median_calibrate_s": cal_s, "median_forecast_s": fc_s, "targets": LIMITS,
               "verdict": verdict, "truth": TRUTH, "priors": PRIORS, "machine": meta}
    return "\n".join(lines), figures


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2,000 prospects, 6 months, a tiny budget, one round")
    ap.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    ap.add_argument("--workers", type=int, default=2, help="--workers of both verbs (default 2)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter for the gtmsim processes (default: this one); gtmsim is "
                         "imported from this checkout through PYTHONPATH")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.rounds is not None:
        if args.rounds < 1:
            print("--rounds: expected a whole number ≥ 1", file=sys.stderr)
            return 2
        cfg["rounds"] = args.rounds
    full = not args.quick
    meta = machine()
    work = Path(tempfile.mkdtemp(prefix="bench-calibration-"))
    try:
        history = company(args.python, cfg, work)
        plan = work / "more_ads.toml"
        plan.write_text(PLAN)
        rounds = []
        for n in range(cfg["rounds"]):
            rounds.append(one_round(args.python, cfg, history, plan, work, args.workers, n))
            r = rounds[-1]
            print(f"round {n + 1}: calibrate {r['calibrate_s']:.1f} s "
                  f"({r['simulations']:,} simulations), forecast {r['forecast_s']:.1f} s",
                  flush=True)
    except BenchError as exc:
        print(f"bench_calibration: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finish(meta)
    markdown, figures = render(cfg, rounds, meta, args.workers, full)
    print(markdown)
    js, md = write_outputs("calibration" if full else "calibration-quick", figures, markdown)
    print(f"\nWrote {js.relative_to(ROOT)} and {md.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
