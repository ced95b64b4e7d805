"""Charts of results: each `plot_*(data, *, ax=None) -> Axes`, never shown or saved here.

Every function takes the tidy runs table of a results folder (one row per scenario ×
replication × month, as written by `run`, `compare` and `sweep`) and draws on the
given Axes (a new figure when none). One colour per scenario across every chart, in
the order scenarios first appear; labels and units come from `gtmsim.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import matplotlib.patches
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from scipy import stats

from gtmsim.metrics import LEAD_FATES, METRICS, label, lead_fates

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#7f7f7f", "#bcbd22")
STAGE_COLUMNS = ("aware", "leads", "opportunities", "customers", "dormant")
SLIDE = (13.33, 7.5)  # 16:9 inches


def scenarios(runs: pd.DataFrame) -> list[str]:
    """Scenario names in the order they first appear (the colour order)."""
    return list(dict.fromkeys(runs["scenario"]))


def colours(runs: pd.DataFrame) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(scenarios(runs))}


def _axes(ax: Axes | None, size: tuple[float, float] = (8, 4.5)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def _band(runs: pd.DataFrame, column: str, confidence: float = 0.95) -> pd.DataFrame:
    """Per scenario and month: mean over replications and its t confidence interval (the
    same kind of interval as the summary tables, so a band and a table agree)."""
    from gtmsim.decision import monthly_means

    m = monthly_means(runs, [column], confidence)
    return m.rename(columns={"ci_low": "lo", "ci_high": "hi"})[["scenario", "month", "mean",
                                                                  "lo", "hi"]]


def _over_time(runs: pd.DataFrame, column: str, ax: Axes, confidence: float) -> Axes:
    """One mean line and a band (confidence interval of the mean) per scenario, by month."""
    band = _band(runs, column, confidence)
    for name, colour in colours(runs).items():
        b = band[band["scenario"] == name]
        ax.plot(b["month"], b["mean"], color=colour, lw=2.5, label=name)
        ax.fill_between(b["month"], b["lo"].fillna(b["mean"]), b["hi"].fillna(b["mean"]),
                        color=colour, alpha=0.18, lw=0)
    ax.set_xlabel(label("month", unit=False))
    ax.set_ylabel(label(column))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    return ax


def _reps(runs: pd.DataFrame) -> int:
    return int(runs.groupby("scenario")["replication"].nunique().max()) if "replication" in runs \
        else 1


def _money(ax: Axes, axis: str = "y") -> None:
    fmt = matplotlib.ticker.FuncFormatter(lambda v, _: short_money(v))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def short_money(v: float) -> str:
    """$1.2M, $350k, −$12k."""
    sign = "−" if v < 0 else ""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"{sign}${abs(v) / size:.3g}{suffix}"
    return f"{sign}${abs(v):.0f}"


def _finish(ax: Axes, title: str, legend: bool = True) -> Axes:
    ax.set_title(title, loc="left", fontsize=13, fontweight="bold")
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False)
    return ax


def plot_funnel(runs: pd.DataFrame, *, scenario: str | None = None, ax: Axes | None = None) -> Axes:
    """Stock by stage over time for one scenario (mean over replications), log scale so the
    narrow lower stages stay readable next to the wide top of the funnel."""
    ax = _axes(ax)
    name = scenario or scenarios(runs)[0]
    one = runs[runs["scenario"] == name].groupby("month")[list(STAGE_COLUMNS)].mean()
    stage_colours = ["#6baed6", "#fd8d3c", "#e6550d", "#31a354", "#969696"]
    for column, colour in zip(STAGE_COLUMNS, stage_colours):
        ax.plot(one.index, one[column].clip(lower=0.5), color=colour, lw=2.5,
                label=METRICS[column].label)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel(label("month", unit=False))
    ax.set_ylabel("Prospects at month end (log scale)")
    return _finish(ax, f"Funnel over time: {name}")


def plot_bookings(runs: pd.DataFrame, *, ax: Axes | None = None,
                  confidence: float = 0.95) -> Axes:
    """Cumulative bookings per scenario: mean line over replications and a band of the
    `confidence` interval of that mean."""
    ax = _over_time(runs, "cumulative_bookings", _axes(ax), confidence)
    _money(ax)
    if _reps(runs) < 2:
        return _finish(ax, "Cumulative bookings (one run: no interval)")
    return _finish(ax, f"Cumulative bookings (line: mean of {_reps(runs)} replications; "
                       f"band: {confidence:.0%} CI of the mean)")


def plot_difference(runs: pd.DataFrame, *, column: str = "cumulative_bookings",
                    reference: str | None = None, ax: Axes | None = None,
                    confidence: float = 0.95) -> Axes:
    """Each option's paired difference from the reference (default: the first scenario)
    by month: mean of replication-by-replication differences and its paired-t interval."""
    from gtmsim.decision import monthly_differences

    ax = _axes(ax)
    names = scenarios(runs)
    reference = reference or names[0]
    diffs = monthly_differences(runs, column, reference, confidence)
    cols = colours(runs)
    ax.axhline(0, color=cols[reference], lw=2, ls="--", label=f"{reference} (reference)")
    for name in names:
        d = diffs[diffs["scenario"] == name]
        if d.empty:
            continue
        ax.plot(d["month"], d["diff"], color=cols[name], lw=2.5, label=name)
        ax.fill_between(d["month"], d["low"].fillna(d["diff"]), d["high"].fillna(d["diff"]),
                        color=cols[name], alpha=0.18, lw=0)
    ax.set_xlabel(label("month", unit=False))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel(f"{METRICS[column].label}: difference from {reference}"
                  + (" ($)" if METRICS[column].unit == "$" else ""))
    if METRICS[column].unit == "$":
        _money(ax)
    return _finish(ax, f"{METRICS[column].label}: each option minus {reference} "
                       f"(paired, {confidence:.0%} CI of the mean difference)")


FUNNEL_FLOWS = ("new_leads", "new_opportunities", "wins")  # labels from gtmsim.metrics


def funnel_totals(runs: pd.DataFrame) -> pd.DataFrame:
    """Per scenario: leads created, opportunities opened and deals won over the run (mean
    per replication)."""
    cols = list(FUNNEL_FLOWS)
    per = runs.groupby(["scenario", "replication"], sort=False)[cols].sum()
    return per.groupby(level="scenario", sort=False).mean()


def plot_funnel_comparison(runs: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """One funnel for every scenario: leads created, opportunities and wins over the run,
    as grouped bars with each stage's conversion from the one before written on the bar."""
    ax = _axes(ax)
    totals = funnel_totals(runs)
    cols = colours(runs)
    n = len(totals)
    width = 0.8 / max(n, 1)
    x = np.arange(len(FUNNEL_FLOWS))
    for i, (name, row) in enumerate(totals.iterrows()):
        pos = x - 0.4 + width * (i + 0.5)
        values = row.to_numpy(dtype=float)
        ax.bar(pos, values, width=width * 0.95, color=cols[name], label=name)
        for k, (p, v) in enumerate(zip(pos, values)):
            text = f"{v:,.0f}"
            if k > 0 and values[k - 1] > 0:
                text += f"\n{v / values[k - 1]:.0%}"
            ax.annotate(text, (p, v), ha="center", va="bottom", fontsize="small",
                        xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(x, [METRICS[c].label for c in FUNNEL_FLOWS])
    ax.set_ylabel("Over the run (mean per replication)")
    ax.margins(y=0.15)
    return _finish(ax, "Funnel over the run (number, and % of the stage before)")


def plot_lead_outcomes(runs: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Where leads went per scenario: won, lost, disqualified, decayed, returned, open."""
    ax = _axes(ax)
    fates = lead_fates(runs)
    colors = ["#2ca02c", "#d62728", "#9e9e9e", "#ff7f0e", "#fdd0a2", "#6baed6"]
    left = np.zeros(len(fates))
    for fate, colour in zip(LEAD_FATES, colors):
        ax.barh(fates.index, fates[fate], left=left, color=colour, label=fate)
        left += fates[fate].to_numpy()
    ax.invert_yaxis()
    ax.set_xlabel("Leads over the run (mean per replication)")
    ax.legend(frameon=False, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    return _finish(ax, "Where the leads went", legend=False)


def plot_response_times(runs: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Distribution over months and replications of the monthly median and 90th percentile
    lead response time, per scenario."""
    ax = _axes(ax)
    names = scenarios(runs)
    cols = colours(runs)
    shown = [c for c in (("lead_response_days_median", ""), ("lead_response_days_p90", "//"))
             if c[0] in runs]  # folders written before the 90th percentile existed lack it
    for k, (column, hatch) in enumerate(shown):
        data = [runs.loc[runs["scenario"] == n, column].dropna().to_numpy() for n in names]
        pos = np.arange(len(names)) * 3 + k
        parts = ax.boxplot(data, positions=pos, widths=0.8, patch_artist=True, showfliers=False)
        for patch, n in zip(parts["boxes"], names):
            patch.set(facecolor=cols[n], alpha=0.6, hatch=hatch)
    ax.set_xticks(np.arange(len(names)) * 3 + 0.5, names)
    ax.set_ylabel("Days from lead to first response")
    ax.legend(handles=[matplotlib.patches.Patch(facecolor="white", edgecolor="black", label="monthly median"),
                       matplotlib.patches.Patch(facecolor="white", edgecolor="black", hatch="//",
                                                label="monthly 90th percentile")], frameon=False)
    return _finish(ax, "Lead response time", legend=False)


def plot_utilization(runs: pd.DataFrame, *, ax: Axes | None = None,
                     confidence: float = 0.95) -> Axes:
    """Rep utilisation (share of open-deal capacity in use) over time per scenario: mean
    line and the `confidence` interval of the mean."""
    ax = _over_time(runs, "rep_utilization", _axes(ax), confidence)
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    if _reps(runs) < 2:
        return _finish(ax, "Rep utilisation (one run: no interval)")
    return _finish(ax, f"Rep utilisation (band: {confidence:.0%} CI of the mean)")


def unit_economics(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per scenario: CAC over the run and payback months, with t intervals over replications.

    CAC = (marketing spend + sales cost + alignment cost) / wins over the run, as in the
    summary table; payback = CAC divided by the monthly value of the average won deal
    (first-year value / 12). Intervals are t intervals clipped at zero (neither can be
    negative).
    """
    runs = runs.assign(alignment_cost=runs["alignment_cost"] if "alignment_cost" in runs
                       else 0.0)
    per_rep = runs.groupby(["scenario", "replication"], sort=False).agg(
        cost=("marketing_spend", "sum"), sales=("sales_cost", "sum"),
        alignment=("alignment_cost", "sum"), wins=("wins", "sum"), bookings=("bookings", "sum"))
    spent = per_rep["cost"] + per_rep["sales"] + per_rep["alignment"]
    per_rep["cac"] = spent / per_rep["wins"].where(per_rep["wins"] > 0)
    per_rep["payback_months"] = per_rep["cac"] / (per_rep["bookings"] / per_rep["wins"] / 12)
    rows = []
    for name, g in per_rep.groupby(level="scenario", sort=False):
        row = {"scenario": name}
        for col in ("cac", "payback_months"):
            x = g[col].dropna().to_numpy()
            mean = float(x.mean()) if len(x) else float("nan")
            half = (float(stats.t.ppf((1 + confidence) / 2, len(x) - 1) * stats.sem(x))
                    if len(x) > 1 else float("nan"))
            row |= {col: mean, f"{col}_lo": max(mean - half, 0.0), f"{col}_hi": mean + half}
        rows.append(row)
    return pd.DataFrame(rows).set_index("scenario")


def plot_cac(runs: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """CAC per scenario with 95% intervals; payback months written beside each bar."""
    ax = _axes(ax)
    econ = unit_economics(runs)
    cols = colours(runs)
    y = np.arange(len(econ))
    err = np.vstack([econ["cac"] - econ["cac_lo"], econ["cac_hi"] - econ["cac"]])
    ax.barh(y, econ["cac"], xerr=np.nan_to_num(err), color=[cols[n] for n in econ.index],
            alpha=0.8, capsize=4)
    for yi, (name, row) in zip(y, econ.iterrows()):
        if np.isfinite(row["payback_months"]):  # not the payback month of the tables
            ax.text(row["cac_hi"] if np.isfinite(row["cac_hi"]) else row["cac"], yi,
                    f"  CAC recovered in {row['payback_months']:.0f} months of a deal",
                    va="center")
    ax.set_yticks(y, econ.index)
    ax.invert_yaxis()
    ax.set_xlabel(f"{METRICS['cac'].label} over the run ($ per customer, 95% interval)")
    _money(ax, "x")
    return _finish(ax, "Customer acquisition cost (95% CI of the mean)", legend=False)


def plot_sweep(runs: pd.DataFrame, lever: str, *, outcome: str = "cumulative_bookings",
               ax: Axes | None = None, confidence: float = 0.95) -> Axes:
    """Final-month `outcome` against a swept `lever`: mean and a t interval band."""
    ax = _axes(ax)
    last = runs[runs["month"] == runs["month"].max()]
    cols = colours(runs)
    for name, g in last.groupby("scenario", sort=False):
        s = g.groupby(lever)[outcome].agg(["mean", "sem", "count"]).sort_index()
        half = stats.t.ppf((1 + confidence) / 2, np.maximum(s["count"] - 1, 1)) * s["sem"].fillna(0)
        ax.plot(s.index, s["mean"], "o-", color=cols[name], lw=2.5, label=name)
        ax.fill_between(s.index, s["mean"] - half, s["mean"] + half, color=cols[name], alpha=0.18)
    ax.set_xlabel(lever)
    ax.set_ylabel(label(outcome))
    if METRICS[outcome].unit == "$":
        _money(ax)
    return _finish(ax, f"{METRICS[outcome].label} against {lever} ({confidence:.0%} interval)")


def slide_figure() -> tuple[plt.Figure, Axes]:
    """A 16:9 figure with one Axes, readable at slide size."""
    fig, ax = plt.subplots(figsize=SLIDE, layout="constrained")
    return fig, ax


def all_charts(runs: pd.DataFrame, sweep_levers: Sequence[str] = (),
               sweep_runs: pd.DataFrame | None = None) -> dict[str, plt.Figure]:
    """Every chart that applies to these runs, each on its own 16:9 figure.

    Sweep charts come first and draw on `sweep_runs` (default `runs`): a sweep's runs keep
    the scenario name, while the other charts want one name per grid point. With more than
    one scenario, the paired difference from the first follows the bookings chart.
    """
    figures: dict[str, plt.Figure] = {}
    swept = runs if sweep_runs is None else sweep_runs
    several = len(scenarios(runs)) > 1
    with plt.rc_context({"font.size": 14}):
        def make(name, draw):
            fig, ax = slide_figure()
            draw(ax)
            figures[name] = fig

        for lever in sweep_levers:
            make(f"sweep_{lever}", lambda ax, lv=lever: plot_sweep(swept, lv, ax=ax))
        make("bookings", lambda ax: plot_bookings(runs, ax=ax))
        if several:
            make("bookings_difference", lambda ax: plot_difference(runs, ax=ax))
        make("funnel", lambda ax: plot_funnel_comparison(runs, ax=ax))
        make("lead_outcomes", lambda ax: plot_lead_outcomes(runs, ax=ax))
        make("response_times", lambda ax: plot_response_times(runs, ax=ax))
        make("utilization", lambda ax: plot_utilization(runs, ax=ax))
        make("cac", lambda ax: plot_cac(runs, ax=ax))
    return figures
