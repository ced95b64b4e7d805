"""Charts of the analysis verbs: each `plot_*(data, *, ax=None) -> Axes`, as in
`gtmsim.charts`; never shown or saved here (`figure_writer` saves one for a results
folder)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from gtmsim.charts import SLIDE, _axes
from gtmsim.experiment import OUTCOMES, format_value

UP, DOWN, TOTAL, NOISE = "#2ca02c", "#d62728", "#1f77b4", "#7f7f7f"


def _outcome(name: str):
    return next(o for o in OUTCOMES if o.name == name)


def plot_waterfall(contributions: pd.DataFrame, gaps: pd.DataFrame, outcome: str, *,
                   a: str = "A", b: str = "B", ax: Axes | None = None) -> Axes:
    """From A's mean to B's: one floating bar per factor's Shapley contribution (largest
    first) with its interval, then B's mean.

    Args:
        contributions, gaps: `Explanation.contributions` and `.gaps` (or the CSV files).
        outcome: the outcome to draw, e.g. "cumulative_bookings".
    """
    ax = _axes(ax)
    o = _outcome(outcome)
    c = contributions[contributions["outcome"] == outcome].copy()
    g = gaps[gaps["outcome"] == outcome].iloc[0]
    c = c.reindex(c["contribution"].abs().sort_values(ascending=False).index)
    start = float(g["a_mean"])
    labels, bottoms, heights, colours = [a], [0.0], [start], [TOTAL]
    level = start
    levels = [start]  # the running total after each bar, for the connectors
    errs_x, errs_y, errs_lo, errs_hi = [], [], [], []
    for i, r in enumerate(c.itertuples(), start=1):
        d = float(r.contribution)
        labels.append(str(r.factor))
        bottoms.append(level if d >= 0 else level + d)
        heights.append(abs(d))
        colours.append(UP if d * o.better >= 0 else DOWN)
        if np.isfinite(r.ci_low) and np.isfinite(r.ci_high):
            errs_x.append(i)
            errs_y.append(level + d)
            errs_lo.append(d - r.ci_low)
            errs_hi.append(r.ci_high - d)
        level += d
        levels.append(level)
    labels.append(b)
    bottoms.append(0.0)
    heights.append(float(g["b_mean"]))
    colours.append(TOTAL)
    x = np.arange(len(labels))
    ax.bar(x, heights, bottom=bottoms, color=colours, width=0.7)
    if errs_x:
        ax.errorbar(errs_x, errs_y, yerr=[errs_lo, errs_hi], fmt="none", ecolor="black",
                    capsize=3, linewidth=1)
    for i, top in enumerate(levels):  # connectors between bars
        ax.plot([i + 0.35, i + 0.65], [top, top], color="#999999", linewidth=0.8)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylabel(f"{o.label} ({o.unit})")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
        lambda v, _: format_value(o.unit, v)))
    gap = format_value(o.unit, float(g["gap"]), signed=True)
    ax.set_title(f"{o.label}: {a} → {b}, gap {gap}, split by Shapley value "
                 f"(bars: 95% paired intervals over {int(g['n'])} replications)", fontsize=10)
    return ax


def plot_indices(indices: pd.DataFrame, *, method: str, outcome: str = "",
                 ax: Axes | None = None) -> Axes:
    """A tornado-style bar chart of sensitivity indices, largest at the top, with the
    replication-noise line drawn in grey.

    Args:
        indices: `Sensitivity.indices` (or indices.csv).
        method: "morris" (mu_star with its interval), "sobol" (S1 and ST with theirs) or
            "pawn" (the median over slices, with the range from minimum to maximum).
    """
    ax = _axes(ax)
    is_noise = indices["key"].str.startswith("(")
    keyed = indices[~is_noise]
    col = {"morris": "mu_star", "pawn": "median"}.get(method, "ST")
    keyed = keyed.sort_values(col, ascending=True)
    y = np.arange(len(keyed))
    if method == "morris":
        ax.barh(y, keyed["mu_star"], xerr=keyed["mu_star_conf"], color=TOTAL, capsize=3)
        ax.set_xlabel("μ* (mean absolute elementary effect, outcome units per key range)")
    elif method == "pawn":
        ax.barh(y, keyed["median"], color=TOTAL, capsize=3,
                xerr=[keyed["median"] - keyed["minimum"], keyed["maximum"] - keyed["median"]])
        ax.set_xlabel("PAWN index (median Kolmogorov–Smirnov distance over slices; "
                      "whiskers: minimum to maximum)")
    else:
        ax.barh(y + 0.2, keyed["ST"], height=0.4, xerr=keyed["ST_conf"], color=TOTAL,
                capsize=3, label="total (ST)")
        ax.barh(y - 0.2, keyed["S1"], height=0.4, xerr=keyed["S1_conf"], color=UP,
                capsize=3, label="first order (S1)")
        ax.set_xlabel("share of the variance of the mean outcome")
        ax.legend(loc="lower right")
    noise = indices[is_noise]
    if len(noise):
        value = float(noise[col].iloc[0])
        if np.isfinite(value):
            ax.axvline(value, color=NOISE, linestyle="--", linewidth=1)
            label = "a key with no effect" if method == "pawn" else "replication noise"
            ax.annotate(label, (value, len(keyed) - 0.5), color=NOISE,
                        fontsize=8, ha="left", va="top")
    ax.set_yticks(y, keyed["key"])
    title = {"morris": "Morris screening", "pawn": "PAWN indices"}.get(method, "Sobol indices")
    ax.set_title(f"{title}{': ' + _outcome(outcome).label if outcome else ''}", fontsize=10)
    return ax


def figure_writer(draw: Callable[[Axes], Axes]) -> Callable[[Path], None]:
    """A writer for `gtmsim.results.atomic_write_many`: a 16:9 PNG of `draw(ax)`."""

    def write(tmp: Path) -> None:
        fig, ax = plt.subplots(figsize=SLIDE, layout="constrained")
        try:
            draw(ax)
            fig.savefig(tmp, format="png", dpi=100)
        finally:
            plt.close(fig)

    return write


__all__ = ["figure_writer", "plot_indices", "plot_waterfall"]
