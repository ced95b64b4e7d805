"""CPU per run of this checkout against another commit, in alternating processes.

A run's cost on a shared 2-core machine drifts by several percent from one hour to the
next, so two figures measured at different times cannot tell a small change from the
drift. This script measures both versions side by side: it starts one process per
version in turn (the order alternates from pair to pair), and each process warms up,
then times `simulate` on `siloed` and `aligned` for a few seeds (CPU time of the process,
24 months). Prints each version's median per run and every pair's ratio
(this checkout ÷ the reference); a ratio interval that straddles 1 means no difference
this measurement can see.

Usage (from the repository root):
    python benchmarks/run_cost_ab.py --ref 2ad64f1                 # 10,000 prospects, 5 pairs
    python benchmarks/run_cost_ab.py --ref 2ad64f1 --prospects 2000 --pairs 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import sys, time
from gtmsim import load_scenario, simulate
prospects, seeds = int(sys.argv[1]), int(sys.argv[2])
arms = [load_scenario(n, {"market.prospects": prospects}) for n in ("siloed", "aligned")]
for s in arms:
    simulate(s, seed=1, months=24)  # warm-up: imports, compiled kernels, caches
t = time.process_time()
for i in range(seeds):
    for s in arms:
        simulate(s, seed=10 + i, months=24)
print((time.process_time() - t) / (seeds * len(arms)))
"""


def per_run(tree: Path, prospects: int, seeds: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(prospects), str(seeds)], env=env,
                         cwd=tree, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", required=True, metavar="REV", help="a commit of this repository")
    parser.add_argument("--prospects", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=5, help="processes per version")
    parser.add_argument("--seeds", type=int, default=4, help="seeds per process (× 2 arms)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ref = Path(tmp) / "ref"
        ref.mkdir()
        archive = subprocess.run(["git", "archive", args.ref], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(ref)], input=archive, check=True)
        times: dict[str, list[float]] = {"ref": [], "this": []}
        for i in range(args.pairs):
            order = [("ref", ref), ("this", ROOT)]
            for name, tree in order if i % 2 == 0 else order[::-1]:
                times[name].append(per_run(tree, args.prospects, args.seeds))
    ratios = [t / r for t, r in zip(times["this"], times["ref"], strict=True)]
    print(f"{args.prospects:,} prospects, 24 months, siloed and aligned, {args.pairs} pairs of "
          f"processes × {args.seeds * 2} runs")
    for name, label in (("ref", args.ref), ("this", "this checkout")):
        print(f"  {label}: median {statistics.median(times[name]) * 1000:.1f} ms CPU per run "
              f"({', '.join(f'{x * 1000:.0f}' for x in times[name])})")
    print(f"  ratio this ÷ {args.ref}, per pair: median {statistics.median(ratios):.3f} "
          f"(from {min(ratios):.3f} to {max(ratios):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
