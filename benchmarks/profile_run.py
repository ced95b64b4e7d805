"""Profile one scenario run: cProfile listings, or the time of each part of a day (no profiler).

Usage:
    python benchmarks/profile_run.py                       # baseline, 50,000 prospects, 24 months
    python benchmarks/profile_run.py --prospects 1000000 --top 30
    python benchmarks/profile_run.py --phases              # share of the run per part of a day
    python benchmarks/profile_run.py --save baseline.prof  # for snakeviz and friends
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable

import gtmsim.model
from gtmsim import GTMModel, load_scenario, simulate
from gtmsim.marketing import MarketingProgram
from gtmsim.sales import SalesRep


def _timer(fn: Callable, label: str, acc: Counter) -> Callable:
    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[label] += time.perf_counter() - t0
    return timed


def phases(scenario, months: int | None) -> tuple[float, Counter]:
    """Run once with timers around the parts `GTMModel.step` calls; (total s, s per part)."""
    acc: Counter = Counter()
    t0 = time.perf_counter()
    model = GTMModel(scenario)
    acc["build the market"] = time.perf_counter() - t0
    wrapped = {
        (MarketingProgram, "step"): "programs choose touches",
        (SalesRep, "step"): "reps take leads",
        (SalesRep, "prospect_day"): "reps prospect (outbound)",
        (gtmsim.model, "touch"): "touches reach the market",
    }
    originals = {key: getattr(*key) for key in wrapped}
    for (owner, name), label in wrapped.items():
        setattr(owner, name, _timer(getattr(owner, name), label, acc))
    try:
        for name in ("_restart_streams", "_start_month", "_market_day", "_observe_day", "_end_month"):
            setattr(model, name, _timer(getattr(model, name), f"model.{name}", acc))
        for name in ("expire", "handoff", "close_deals", "order", "respond"):
            setattr(model.desk, name, _timer(getattr(model.desk, name), f"desk.{name}", acc))
        model.run(months)
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)
    return time.perf_counter() - t0, acc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default="baseline")
    ap.add_argument("--prospects", type=int, help="market size (default: the scenario's)")
    ap.add_argument("--months", type=int, help="months (default: the scenario's)")
    ap.add_argument("--top", type=int, default=20, help="rows per listing")
    ap.add_argument("--phases", action="store_true", help="time the parts of a day instead")
    ap.add_argument("--save", help="also write the raw profile to this file")
    args = ap.parse_args(argv)
    overrides = {"market.prospects": args.prospects} if args.prospects else {}
    scenario = load_scenario(args.scenario, overrides)
    months = args.months or scenario.months
    simulate(scenario, months=1, keep_model=False)  # warm caches and lazy imports
    header = f"{scenario.name}: {scenario.market.prospects:,} prospects, {months} months"
    if args.phases:
        total, acc = phases(scenario, months)
        print(f"{header}: {total:.3f} s")
        for label, s in acc.most_common():
            print(f"  {label:24s} {s:7.3f} s  {100 * s / total:5.1f}%")
        return 0
    t0 = time.perf_counter()
    simulate(scenario, months=months, keep_model=False)
    plain_s = time.perf_counter() - t0
    profiler = cProfile.Profile()
    profiler.enable()
    simulate(scenario, months=months, keep_model=False)
    profiler.disable()
    print(f"{header}: {plain_s:.3f} s without the profiler")
    stats = pstats.Stats(profiler).strip_dirs()
    if args.save:
        stats.dump_stats(args.save)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
