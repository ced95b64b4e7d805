"""Scale benchmark: wall time and peak memory of baseline runs, and a comparison on 1 and 2 workers.

Every measurement runs in a fresh subprocess, so each run's peak memory (the child's own
`ru_maxrss`) is its own and no run warms another's caches. A run is
`simulate(load_scenario("baseline", {"market.prospects": N}), months=M, keep_model=False)`;
its wall time covers building the model and simulating, not interpreter start or imports
(those are reported separately); its CPU time (`time.process_time`) is reported next to
it, being less disturbed by other work on a shared machine. The comparison is
`gtmsim.experiment.compare(["siloed", "aligned"], reps=30, workers=W)` at the scenarios'
own size (50,000 prospects) and horizon (24 months), timed around the call (worker start
included).

Configurations are measured in rounds (every configuration once per round), so slow
spells on a shared machine spread over all of them; figures are medians over rounds.

Usage:
    python benchmarks/bench_scale.py            # full run, ~11 min on 2 cores
    python benchmarks/bench_scale.py --quick    # smoke run, well under a minute
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from typing import Any

from common import describe, finish, load_average, machine, markdown_table, median, write_outputs

FULL = {
    "sizes": [10_000, 100_000, 300_000, 1_000_000],
    "months": [6, 12, 24, 48],
    "months_at": 100_000,
    "horizon": 24,
    "reps": 30,
    "workers": [1, 2],
    "compare_months": None,  # the scenarios' own
}
QUICK = {
    "sizes": [10_000, 50_000],
    "months": [3, 6],
    "months_at": 10_000,
    "horizon": 6,
    "reps": 2,
    "workers": [1, 2],
    "compare_months": 3,
}
COMPARED = ["siloed", "aligned"]
TARGETS = {
    "run_100k_24m_s": 1.5,
    "run_1m_24m_s": 10.0,
    "peak_1m_24m_mb": 1536.0,
}


def _maxrss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


# --------------------------------------------------------------------------- children


def child_run(prospects: int, months: int) -> dict[str, Any]:
    """One baseline run in this (fresh) process."""
    t0 = time.perf_counter()
    from gtmsim import load_scenario, simulate

    import_s = time.perf_counter() - t0
    import_mb = _maxrss_mb(resource.RUSAGE_SELF)
    scenario = load_scenario("baseline", {"market.prospects": prospects})
    t1, c1 = time.perf_counter(), time.process_time()
    result = simulate(scenario, months=months, keep_model=False)
    run_s, cpu_s = time.perf_counter() - t1, time.process_time() - c1
    return {
        "run_s": run_s,
        "cpu_s": cpu_s,
        "import_s": import_s,
        "import_rss_mb": import_mb,
        "peak_rss_mb": _maxrss_mb(resource.RUSAGE_SELF),
        "rows": len(result.monthly),
        "customers_end": int(result.monthly["customers"].iloc[-1]),
    }


def child_compare(workers: int, reps: int, months: int | None) -> dict[str, Any]:
    """One two-scenario comparison in this (fresh) process."""
    from gtmsim.experiment import compare

    t0 = time.perf_counter()
    exp = compare(COMPARED, reps=reps, workers=workers, months=months, command=["bench_scale"])
    wall_s = time.perf_counter() - t0
    return {
        "wall_s": wall_s,
        "runs": reps * len(COMPARED),
        "rows": len(exp.runs),
        "peak_rss_mb": _maxrss_mb(resource.RUSAGE_SELF),
        "worker_peak_rss_mb": _maxrss_mb(resource.RUSAGE_CHILDREN),
    }


def spawn(*args: str) -> dict[str, Any]:
    """Run this script as a child with `args`; its JSON answer plus the process wall time."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", *args],
                         capture_output=True, text=True)
    process_s = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"child {' '.join(args)} failed:\n{out.stderr}")
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    answer["process_s"] = process_s
    return answer


# --------------------------------------------------------------------------- parent


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y on log x: the exponent b in y ∝ x^b."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    cov = sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True))
    return cov / sum((a - mx) ** 2 for a in lx)


def measure(cfg: dict[str, Any], repeats: int, log=print) -> dict[str, Any]:
    """Run every configuration `repeats` times in rounds; per-run samples."""
    runs = sorted({(n, cfg["horizon"]) for n in cfg["sizes"]}
                  | {(cfg["months_at"], m) for m in cfg["months"]})
    samples: dict[str, list[dict[str, Any]]] = {f"{n}x{m}": [] for n, m in runs}
    compares: dict[str, list[dict[str, Any]]] = {str(w): [] for w in cfg["workers"]}
    months_arg = ([] if cfg["compare_months"] is None
                  else ["--compare-months", str(cfg["compare_months"])])
    for r in range(repeats):
        for n, m in runs:
            s = spawn("run", "--prospects", str(n), "--months", str(m))
            samples[f"{n}x{m}"].append(s)
            log(f"round {r + 1}: {n:>9,} prospects x {m:2d} months: {s['run_s']:7.3f} s, "
                f"peak {s['peak_rss_mb']:6.0f} MB  (load {load_average()[0]})")
        workers = cfg["workers"] if r % 2 == 0 else cfg["workers"][::-1]
        for w in workers:
            c = spawn("compare", "--workers", str(w), "--reps", str(cfg["reps"]), *months_arg)
            compares[str(w)].append(c)
            log(f"round {r + 1}: compare {cfg['reps']} reps x {len(COMPARED)} scenarios on "
                f"{w} worker(s): {c['wall_s']:7.2f} s  (load {load_average()[0]})")
    return {"runs": samples, "compare": compares}


def summarise(cfg: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """Medians, scaling exponents and target checks from the raw samples."""
    def med(key: str, field: str) -> float:
        return median([s[field] for s in raw["runs"][key]])

    h, at = cfg["horizon"], cfg["months_at"]
    by_size = [{"prospects": n, "months": h, "run_s": med(f"{n}x{h}", "run_s"),
                "cpu_s": med(f"{n}x{h}", "cpu_s"),
                "peak_rss_mb": med(f"{n}x{h}", "peak_rss_mb"),
                "import_rss_mb": med(f"{n}x{h}", "import_rss_mb"),
                "process_s": med(f"{n}x{h}", "process_s"),
                "samples_s": [round(s["run_s"], 4) for s in raw["runs"][f"{n}x{h}"]]}
               for n in cfg["sizes"]]
    by_months = [{"prospects": at, "months": m, "run_s": med(f"{at}x{m}", "run_s"),
                  "cpu_s": med(f"{at}x{m}", "cpu_s"),
                  "peak_rss_mb": med(f"{at}x{m}", "peak_rss_mb"),
                  "samples_s": [round(s["run_s"], 4) for s in raw["runs"][f"{at}x{m}"]]}
                 for m in cfg["months"]]
    for row in by_size:
        row["us_per_prospect_month"] = row["run_s"] / (row["prospects"] * row["months"]) * 1e6
    for row in by_months:
        row["ms_per_month"] = row["run_s"] / row["months"] * 1e3
    compare = [{"workers": int(w), "wall_s": median([c["wall_s"] for c in cs]),
                "runs": cs[0]["runs"], "samples_s": [round(c["wall_s"], 3) for c in cs],
                "worker_peak_rss_mb": median([c["worker_peak_rss_mb"] for c in cs])}
               for w, cs in raw["compare"].items()]
    base = next(c["wall_s"] for c in compare if c["workers"] == 1)
    for c in compare:
        c["speedup"] = base / c["wall_s"]
        c["s_per_run"] = c["wall_s"] / c["runs"]
    sizes = [r["prospects"] for r in by_size]
    times = [r["run_s"] for r in by_size]
    big = [r for r in by_size if r["prospects"] >= 100_000]
    out: dict[str, Any] = {
        "by_size": by_size,
        "by_months": by_months,
        "compare": compare,
        "exponent_prospects": _slope(sizes, times),
        "exponent_prospects_from_100k": _slope([r["prospects"] for r in big],
                                               [r["run_s"] for r in big]) if len(big) > 1 else None,
        "exponent_months": _slope([r["months"] for r in by_months],
                                  [r["run_s"] for r in by_months]),
    }
    find = {r["prospects"]: r for r in by_size}
    targets = {}
    if 100_000 in find and h == 24:
        targets["run_100k_24m_s"] = find[100_000]["run_s"]
    if 1_000_000 in find and h == 24:
        targets["run_1m_24m_s"] = find[1_000_000]["run_s"]
        targets["peak_1m_24m_mb"] = find[1_000_000]["peak_rss_mb"]
    out["targets"] = {k: {"value": round(v, 3), "target": TARGETS[k], "met": v <= TARGETS[k]}
                      for k, v in targets.items()}
    speedups = [c["speedup"] for c in compare if c["workers"] > 1]
    best = max(speedups) if speedups else None
    out["targets"]["compare_speeds_up"] = {"value": None if best is None else round(best, 3),
                                           "target": "> 1", "met": best is not None and best > 1}
    return out


def render(summary: dict[str, Any], meta: dict[str, Any], cfg: dict[str, Any], repeats: int) -> str:
    """The figures as markdown."""
    parts = [describe(meta) + f" Medians of {repeats} run(s), each in a fresh process.", ""]
    parts.append(f"Baseline, {cfg['horizon']} months, by market size:\n")
    parts.append(markdown_table(
        ["prospects", "run (s)", "CPU (s)", "µs per prospect-month", "peak RSS (MB)",
         "RSS after import (MB)", "runs (s)"],
        [[f"{r['prospects']:,}", f"{r['run_s']:.3f}", f"{r['cpu_s']:.3f}",
          f"{r['us_per_prospect_month']:.3f}",
          f"{r['peak_rss_mb']:.0f}", f"{r['import_rss_mb']:.0f}",
          ", ".join(f"{x:.3f}" for x in r["samples_s"])] for r in summary["by_size"]]))
    parts.append(f"\nBaseline at {cfg['months_at']:,} prospects, by months:\n")
    parts.append(markdown_table(
        ["months", "run (s)", "CPU (s)", "ms per month", "peak RSS (MB)", "runs (s)"],
        [[r["months"], f"{r['run_s']:.3f}", f"{r['cpu_s']:.3f}", f"{r['ms_per_month']:.1f}",
          f"{r['peak_rss_mb']:.0f}",
          ", ".join(f"{x:.3f}" for x in r["samples_s"])] for r in summary["by_months"]]))
    exp_big = summary["exponent_prospects_from_100k"]
    parts.append(f"\nScaling exponents (t ∝ x^b, least squares on logs): prospects "
                 f"b = {summary['exponent_prospects']:.2f}"
                 + (f" (from 100k up: {exp_big:.2f})" if exp_big is not None else "")
                 + f"; months b = {summary['exponent_months']:.2f}.")
    reps = cfg["reps"]
    months = cfg["compare_months"] or "the scenarios' own (24)"
    parts.append(f"\nComparison `compare({COMPARED}, reps={reps}, workers=W)`, "
                 f"{reps * len(COMPARED)} runs at 50,000 prospects, months: {months}:\n")
    parts.append(markdown_table(
        ["workers", "wall (s)", "s per run", "speed-up", "runs (s)"],
        [[c["workers"], f"{c['wall_s']:.2f}", f"{c['s_per_run']:.3f}", f"{c['speedup']:.2f}×",
          ", ".join(f"{x:.2f}" for x in c["samples_s"])] for c in summary["compare"]]))
    parts.append("\nTargets:\n")
    parts.append(markdown_table(
        ["target", "measured", "limit", "met"],
        [[k, v["value"], v["target"], "yes" if v["met"] else "NO"]
         for k, v in summary["targets"].items()]))
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one round: a smoke test")
    ap.add_argument("--repeats", type=int, help="rounds (default 3; 1 with --quick)")
    ap.add_argument("--child", choices=["run", "compare"], help=argparse.SUPPRESS)
    ap.add_argument("--prospects", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--months", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--compare-months", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child == "run":
        print(json.dumps(child_run(args.prospects, args.months)))
        return 0
    if args.child == "compare":
        print(json.dumps(child_compare(args.workers, args.reps, args.compare_months)))
        return 0

    cfg = QUICK if args.quick else FULL
    repeats = args.repeats or (1 if args.quick else 3)
    meta = machine()
    print(f"load average at start: {meta['load_average_start']}")
    raw = measure(cfg, repeats)
    finish(meta)
    summary = summarise(cfg, raw)
    md = render(summary, meta, cfg, repeats)
    figures = {"machine": meta, "config": cfg, "repeats": repeats, **summary, "raw": raw}
    js, mdp = write_outputs("scale-quick" if args.quick else "scale", figures, md)
    print()
    print(md)
    print(f"\nwrote {js} and {mdp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
