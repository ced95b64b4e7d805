"""gtmsim against a plain Mesa model of the same world: speed ratio and funnel agreement.

Both models run in this one process, side by side, on the world of `mesa_reference.py`
(one broad program, fully mixed word of mouth, no sales; Bass p = 0.03, q = 0.4 per
month) for 12 months. A run's time covers building the model and simulating it. The
speed ratio is the median Mesa run time over the median gtmsim run time.

Agreement is checked, not assumed: the monthly aware share of the Mesa runs and of the
gtmsim runs (different seeds) must differ by at most 3 standard errors (pooled
two-sample t) in every month and in the mean over the months. As a check that the test
can fail, gtmsim with word of mouth 10% stronger is compared too; at 100,000 prospects
that should fail.

Usage:
    python benchmarks/bench_reference.py            # 10k and 100k, ~8 min on 2 cores
    python benchmarks/bench_reference.py --quick    # 2k and 10k, ~10 s
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
from common import describe, finish, load_average, machine, markdown_table, median, write_outputs
from mesa_reference import P_MONTHLY, Q_MONTHLY, agreement, bass_share, run_gtmsim, run_mesa

FULL = {"sizes": [10_000, 100_000], "months": 12, "mesa_runs": {10_000: 5, 100_000: 3},
        "gtmsim_runs": 10}
QUICK = {"sizes": [2_000, 10_000], "months": 6, "mesa_runs": {2_000: 3, 10_000: 2},
         "gtmsim_runs": 4}
TARGET_RATIO = 100.0
TARGET_AT = 100_000


def timed(fn, *args) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    share = fn(*args)
    return time.perf_counter() - t0, share


def measure_size(n: int, months: int, mesa_runs: int, gtmsim_runs: int,
                 log=print) -> dict[str, Any]:
    """Time and compare both models at `n` prospects."""
    mesa_s, mesa_share, gtm_s, gtm_share = [], [], [], []
    # Interleave the two models so a busy spell on the machine hits both.
    for i in range(max(mesa_runs, gtmsim_runs)):
        if i < gtmsim_runs:
            t, share = timed(run_gtmsim, n, months, 1000 + i)
            gtm_s.append(t)
            gtm_share.append(share)
        if i < mesa_runs:
            t, share = timed(run_mesa, n, months, i)
            mesa_s.append(t)
            mesa_share.append(share)
            log(f"{n:>8,} prospects: mesa run {i + 1}/{mesa_runs} {t:7.2f} s  "
                f"(load {load_average()[0]})")
    # Power check: the same comparison against gtmsim with stronger word of mouth.
    stronger = [run_gtmsim(n, months, 2000 + i, P_MONTHLY, Q_MONTHLY * 1.1)
                for i in range(gtmsim_runs)]
    ag = agreement(np.array(mesa_share), np.array(gtm_share))
    ag_q = agreement(np.array(mesa_share), np.array(stronger))

    def largest_t(a) -> float:
        return round(float(max(np.abs(a.t_month).max(), abs(a.t_overall))), 3)

    out = {
        "prospects": n,
        "months": months,
        "mesa_runs": mesa_runs,
        "gtmsim_runs": gtmsim_runs,
        "mesa_s": median(mesa_s),
        "gtmsim_s": median(gtm_s),
        "mesa_samples_s": [round(x, 3) for x in mesa_s],
        "gtmsim_samples_s": [round(x, 4) for x in gtm_s],
        "mesa_us_per_agent_step": median(mesa_s) / (n * months * 30) * 1e6,
        "aware_share_mesa": ag.mean_a.round(5).tolist(),
        "aware_share_gtmsim": ag.mean_b.round(5).tolist(),
        "aware_share_bass": bass_share(months).round(5).tolist(),
        "t_month": ag.t_month.round(3).tolist(),
        "t_overall": round(ag.t_overall, 3),
        "max_abs_t": largest_t(ag),
        "agree": ag.passed,
        "q_plus_10pct_max_abs_t": largest_t(ag_q),
        "q_plus_10pct_agree": ag_q.passed,
    }
    out["ratio"] = out["mesa_s"] / out["gtmsim_s"]
    return out


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    parts = [describe(meta) + f" Both models in one process; {rows[0]['months']} months; "
             f"p = {P_MONTHLY}, q = {Q_MONTHLY} per month.", ""]
    parts.append(markdown_table(
        ["prospects", "Mesa run (s)", "gtmsim run (s)", "ratio", "Mesa µs/agent-step",
         "runs (Mesa / gtmsim)", "largest t", "funnel agrees", "q +10%: largest t, detected"],
        [[f"{r['prospects']:,}", f"{r['mesa_s']:.2f}", f"{r['gtmsim_s']:.3f}",
          f"{r['ratio']:.0f}×",
          f"{r['mesa_us_per_agent_step']:.2f}", f"{r['mesa_runs']} / {r['gtmsim_runs']}",
          f"{r['max_abs_t']:.2f}", "PASS" if r["agree"] else "FAIL",
          f"{r['q_plus_10pct_max_abs_t']:.1f}, {'no' if r['q_plus_10pct_agree'] else 'yes'}"]
         for r in rows]))
    last = rows[-1]
    parts.append(f"\nMonthly aware share at {last['prospects']:,} prospects (means over runs):\n")
    parts.append(markdown_table(
        ["month", "Mesa", "gtmsim", "Bass closed form", "t"],
        [[m + 1, f"{a:.4f}", f"{b:.4f}", f"{c:.4f}", f"{t:+.2f}"]
         for m, (a, b, c, t) in enumerate(zip(last["aware_share_mesa"], last["aware_share_gtmsim"],
                                               last["aware_share_bass"], last["t_month"],
                                               strict=True))]))
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few runs: a smoke test")
    ap.add_argument("--mesa-runs-large", type=int,
                    help="Mesa runs at the largest size (default 3; it is the slow part)")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    meta = machine()
    print(f"load average at start: {meta['load_average_start']}")
    rows = []
    for n in cfg["sizes"]:
        mesa_runs = cfg["mesa_runs"][n]
        if args.mesa_runs_large and n == max(cfg["sizes"]):
            mesa_runs = args.mesa_runs_large
        rows.append(measure_size(n, cfg["months"], mesa_runs, cfg["gtmsim_runs"]))
    finish(meta)
    md = render(rows, meta)
    big = next((r for r in rows if r["prospects"] == TARGET_AT), None)
    target = None
    if big is not None:
        target = {"ratio_at_100k": round(big["ratio"], 1), "target": TARGET_RATIO,
                  "met": big["ratio"] >= TARGET_RATIO and big["agree"]}
        md += (f"\n\nTarget ≥ {TARGET_RATIO:.0f}× at 100,000 with the same funnel: "
               f"{big['ratio']:.0f}×, funnel {'agrees' if big['agree'] else 'DIFFERS'} — "
               f"{'met' if target['met'] else 'NOT met'}.")
    config = {**cfg, "mesa_runs": {str(r["prospects"]): r["mesa_runs"] for r in rows}}
    figures = {"machine": meta, "config": config, "sizes": rows, "target": target}
    js, mdp = write_outputs("reference-quick" if args.quick else "reference", figures, md)
    print()
    print(md)
    print(f"\nwrote {js} and {mdp}")
    print("agreement:", "PASS" if all(r["agree"] for r in rows) else "FAIL")
    return 0 if all(r["agree"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
