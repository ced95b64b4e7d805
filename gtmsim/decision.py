"""What a decision needs from a results folder: each option against the reference.

The HTML report, the slide deck and the workbook all read their numbers and sentences
from here, so the three say the same thing. The reference is the first scenario of a
comparison (the first grid point of a sweep); every other arm is an *option*. Every
figure comes from `Experiment.summary()` (paired differences on common random numbers,
95% confidence intervals of the mean) or from the runs table; nothing is typed in by hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from gtmsim.metrics import METRICS
from gtmsim.scenario import ScenarioError, flatten_changes, label_of, readable_name
from gtmsim.takeaways import fmt as _fmt

if TYPE_CHECKING:
    from gtmsim.report import Results

CONFIDENCE = 0.95
INTERVAL_KIND = "95% confidence interval of the mean"
MAX_HEADLINE_OPTIONS = 4  # more options than this: the headline names the extremes


def money(v: float, *, signed: bool = False) -> str:
    """$1.2M, −$350k; `signed` puts a + on positive values."""
    if v is None or not math.isfinite(v):
        return "–"
    text = _fmt(v, "$")
    return ("+" + text) if signed and v > 0 else text


def _signed_pct(v: float) -> str:
    return f"{v:+.0f}%".replace("-", "\u2212")


def ci_text(low: float, high: float, *, signed: bool = False, unit: str = "$") -> str:
    """An interval as "low to high", or "no interval" when either end is missing."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no interval"
    if unit == "%":
        return f"{_signed_pct(low)} to {_signed_pct(high)}"
    return f"{money(low, signed=signed)} to {money(high, signed=signed)}"


# --------------------------------------------------------------------------- arms


@dataclass(frozen=True)
class Arm:
    """One scenario of a comparison (or grid point of a sweep) as people see it."""

    name: str  # the id in results tables
    label: str  # what reports call it
    question: str


def scenario_dicts(res: Results) -> list[Mapping[str, Any]]:
    """The scenarios a results folder records (a run records one, as its parameters)."""
    m = res.manifest
    found = m.get("scenarios") if res.kind != "run" else [m.get("parameters")]
    return [d for d in found or [] if isinstance(d, Mapping)]


def arms(res: Results) -> list[Arm]:
    """The arms in order, the reference first, each with a unique label."""
    scenarios = scenario_dicts(res)
    if res.kind == "sweep" and res.experiment is not None:
        names = list(dict.fromkeys(res.display_runs["scenario"]))
        question = str(scenarios[0].get("question", "")) if scenarios else ""
        keys = list(res.experiment.keys)
        points = res.display_runs.drop_duplicates("scenario").set_index("scenario")[keys]
        found = [Arm(n, "; ".join(setting_phrase(k, points.loc[n, k], capital=i == 0)
                                  for i, k in enumerate(keys)), question) for n in names]
    else:
        by_name = {str(d.get("name", "")): d for d in scenarios}
        names = list(dict.fromkeys(res.runs["scenario"].astype(str)))
        found = [Arm(n, label_of(by_name.get(n, {"name": n})),
                     str(by_name.get(n, {}).get("question", ""))) for n in names]
    seen: dict[str, int] = {}
    for a in found:
        seen[a.label] = seen.get(a.label, 0) + 1
    # Two arms with one label would merge in every chart: name them apart.
    return [Arm(a.name, f"{a.label} ({a.name})" if seen[a.label] > 1 else a.label, a.question)
            for a in found]


def labels(res: Results) -> dict[str, str]:
    """Arm name -> label."""
    return {a.name: a.label for a in arms(res)}


def labelled_runs(res: Results) -> pd.DataFrame:
    """The runs with `scenario` holding each arm's label (what charts draw)."""
    runs = res.display_runs
    return runs.assign(scenario=runs["scenario"].astype(str).map(labels(res)))


# --------------------------------------------------------------------------- the options


def _row(table: pd.DataFrame, name: str, outcome: str) -> pd.Series | None:
    part = table[(table["scenario"].astype(str) == name) & (table["outcome"] == outcome)]
    return None if part.empty else part.iloc[0]


def options(res: Results, table: pd.DataFrame) -> pd.DataFrame:
    """One row per arm, the reference first: bookings and its paired difference from the
    reference in $ and %, with intervals; cost, extra cost, net bookings and its paired
    difference, ROI, payback month; and whether the option covers its extra cost.

    `table` is `report.summary_table(res)` (from `Experiment.summary()`).
    Percent intervals are the paired $ interval over the reference's mean bookings.
    """
    rows = []
    found = arms(res)
    ref = found[0]
    for i, arm in enumerate(found):
        books = _row(table, arm.name, "cumulative_bookings")
        cost = _row(table, arm.name, "total_cost")
        net = _row(table, arm.name, "net_bookings")
        roi = _row(table, arm.name, "roi")
        pay = _row(table, arm.name, "payback_month")
        ref_books = _row(table, ref.name, "cumulative_bookings")
        base = abs(float(ref_books["mean"])) if ref_books is not None else float("nan")
        row: dict[str, Any] = {
            "scenario": arm.name, "label": arm.label, "reference": i == 0,
            "reps": int(books["reps"]), "bookings": books["mean"],
            "bookings_low": books["ci_low"], "bookings_high": books["ci_high"],
            "bookings_diff": books["diff"], "bookings_diff_low": books["diff_ci_low"],
            "bookings_diff_high": books["diff_ci_high"],
            "bookings_diff_pct": books["diff_pct"],
            "bookings_diff_pct_low": 100 * books["diff_ci_low"] / base if base else np.nan,
            "bookings_diff_pct_high": 100 * books["diff_ci_high"] / base if base else np.nan,
            "ahead": books["ahead"],
            "total_cost": cost["mean"], "extra_cost": cost["diff"],
            "net_bookings": net["mean"], "net_low": net["ci_low"], "net_high": net["ci_high"],
            "net_diff": net["diff"], "net_diff_low": net["diff_ci_low"],
            "net_diff_high": net["diff_ci_high"],
            "roi": roi["mean"], "roi_low": roi["ci_low"], "roi_high": roi["ci_high"],
            "payback_month": pay["mean"], "payback_runs": int(pay["n"]),
        }
        row["covers_cost"] = "" if i == 0 else covers(row)
        rows.append(row)
    return pd.DataFrame(rows)


def covers(row: Mapping[str, Any]) -> str:
    """Whether an option's extra bookings pay for its extra cost, judged on the paired
    interval of the net-bookings difference: "yes", "no", "unclear", "no extra cost"."""
    extra = row["extra_cost"]
    if not math.isfinite(extra) or extra <= 0.005 * max(abs(row["total_cost"]), 1.0):
        return "no extra cost"
    lo, hi, d = row["net_diff_low"], row["net_diff_high"], row["net_diff"]
    if math.isfinite(lo) and math.isfinite(hi):
        return "yes" if lo > 0 else "no" if hi < 0 else "unclear"
    return "yes" if d > 0 else "no"  # one replication: the sign only


def payback_text(row: Mapping[str, Any]) -> str:
    if math.isfinite(row["payback_month"]):
        return f"month {row['payback_month']:.1f}"
    if row["payback_runs"] == 0:
        return "not within the run"
    return f"{row['payback_runs']} of {row['reps']} runs pay back"


def _cost_clause(row: Mapping[str, Any]) -> str:
    verdict = row["covers_cost"]
    extra = row["extra_cost"]
    if verdict == "no extra cost":
        if math.isfinite(extra) and extra < -0.005 * max(abs(row["total_cost"]), 1.0):
            return f", and costs {money(-extra)} less"
        return ", at no extra cost"
    net = (f"net {money(row['net_diff'], signed=True)}, 95% CI "
           f"{ci_text(row['net_diff_low'], row['net_diff_high'], signed=True)}")
    if verdict == "yes":
        return f", which covers its {money(extra)} extra cost ({net})"
    if verdict == "no":
        return f", which does not cover its {money(extra)} extra cost ({net})"
    return (f"; whether that covers its {money(extra)} extra cost cannot be told at this "
            f"number of replications ({net})")


def option_sentence(row: Mapping[str, Any], reference: str, months: int, *,
                    first: bool = True) -> str:
    """'Aligned books $504k more than Siloed over 12 months (95% CI $250k to $757k), at no
    extra cost' — `first=False` drops what the previous clause already said."""
    d = row["bookings_diff"]
    more = "more" if d >= 0 else "less"
    lo, hi = row["bookings_diff_low"], row["bookings_diff_high"]
    ci = (f"95% CI {ci_text(lo, hi, signed=True)}" if math.isfinite(lo) and math.isfinite(hi)
          else "one replication, no interval")
    against = f" than {reference} over {months} months" if first else ""
    if math.isfinite(lo) and max(abs(lo), abs(hi)) < 0.5:  # every replication alike
        return (f"{row['label']} books the same as {reference}"
                + (f" over {months} months" if first else "") + _cost_clause(row))
    if math.isfinite(lo) and lo <= 0 <= hi:
        ci += f"; not clearly different from {reference}"
    return f"{row['label']} books {money(abs(d))} {more}{against} ({ci})" + _cost_clause(row)


def headline(res: Results, table: pd.DataFrame) -> str:
    """One sentence covering every option against the reference, in $ with paired 95%
    intervals, and whether each covers its extra cost."""
    opts = options(res, table)
    ref = opts.iloc[0]
    rest = opts.iloc[1:]
    if rest.empty:
        return ""
    shown = rest
    if len(rest) > MAX_HEADLINE_OPTIONS:  # name the best and the worst; the table has all
        order = rest.sort_values("bookings_diff", ascending=False)
        shown = pd.concat([order.head(MAX_HEADLINE_OPTIONS - 1), order.tail(1)])
    clauses = [option_sentence(r, ref["label"], res.months, first=i == 0)
               for i, (_, r) in enumerate(shown.iterrows())]
    text = "; ".join(clauses)
    if len(shown) < len(rest):
        more = len(rest) - len(shown)
        text += f"; {more} more option{'s' if more > 1 else ''} in the table"
    return text + "."


# --------------------------------------------------------------------------- over time


def _t_half(sd: pd.Series, n: pd.Series, confidence: float) -> pd.Series:
    q = stats.t.ppf((1 + confidence) / 2, np.maximum(n - 1, 1))
    return pd.Series(np.where(n > 1, q * sd / np.sqrt(n), np.nan), index=sd.index)


def monthly_means(runs: pd.DataFrame, columns: Sequence[str] | None = None,
                  confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per scenario, month and metric: mean over replications and its t interval.

    Long format: `scenario, month, metric, n, mean, ci_low, ci_high` (interval empty with
    one replication).
    """
    ids = {"scenario", "replication", "seed", "month"}
    cols = [c for c in (columns or runs.columns)
            if c not in ids and pd.api.types.is_numeric_dtype(runs[c])]
    g = runs.groupby(["scenario", "month"], sort=False)[cols]
    mean, sd, n = g.mean(), g.std(), g.count()
    frames = []
    for c in cols:
        half = _t_half(sd[c], n[c], confidence)
        # Every monthly figure is ≥ 0 and a fraction is ≤ 1: intervals are clipped to that.
        high = 1.0 if c in METRICS and METRICS[c].unit == "fraction" else None
        frames.append(pd.DataFrame({"metric": c, "n": n[c], "mean": mean[c],
                                    "ci_low": (mean[c] - half).clip(lower=0),
                                    "ci_high": (mean[c] + half).clip(upper=high)}))
    # Metric by metric; within one, scenarios in the order they first appear, then months.
    return pd.concat(frames).reset_index()[["metric", "scenario", "month", "n", "mean",
                                            "ci_low", "ci_high"]]


def monthly_differences(runs: pd.DataFrame, column: str = "cumulative_bookings",
                        reference: str | None = None,
                        confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per option and month: the mean paired difference from the reference (replication r
    against replication r, common random numbers) and its paired-t interval.

    Columns: `scenario, month, n, diff, low, high`.
    """
    names = list(dict.fromkeys(runs["scenario"]))
    reference = reference or names[0]
    wide = runs.pivot_table(index=["replication", "month"], columns="scenario", values=column,
                            aggfunc="first")
    rows = []
    for name in names:
        if name == reference:
            continue
        d = (wide[name] - wide[reference]).dropna()
        g = d.groupby(level="month")
        mean, sd, n = g.mean(), g.std(), g.count()
        half = _t_half(sd, n, confidence)
        rows.append(pd.DataFrame({"scenario": name, "month": mean.index, "n": n.to_numpy(),
                                  "diff": mean.to_numpy(), "low": (mean - half).to_numpy(),
                                  "high": (mean + half).to_numpy()}))
    if not rows:
        return pd.DataFrame(columns=["scenario", "month", "n", "diff", "low", "high"])
    return pd.concat(rows, ignore_index=True)


def clear_from(diffs: pd.DataFrame, name: str) -> int | None:
    """The first month from which the option's interval stays above (or below) zero."""
    d = diffs[diffs["scenario"] == name].sort_values("month")
    if d.empty:
        return None
    sign = np.sign(d["diff"].iloc[-1])
    clear = ((d["low"] > 0) if sign > 0 else (d["high"] < 0)).to_numpy()
    if not clear[-1]:
        return None
    start = len(clear)
    while start > 0 and clear[start - 1]:
        start -= 1
    return int(d["month"].iloc[start])


# --------------------------------------------------------------------------- settings in words


_LEAF_WORDS = {
    "reps": "sales reps", "deal_capacity": "open deals per rep",
    "touches_per_day": "rep touches a day", "cost_per_rep_month": "cost per rep",
    "outbound_share": "outbound share of rep time", "ramp_months": "rep ramp-up",
    "monthly_budget": "budget", "preset": "alignment setup",
    "lead_threshold": "lead definition threshold", "handoff_days": "hand-off",
    "sla_days": "follow-up SLA", "routing": "lead routing", "feedback": "sales feedback to marketing",
    "enablement": "sales enablement", "message_consistency": "message consistency",
    "recycling": "lead recycling", "coordination": "coordination share of rep time",
    "marketing_reward": "marketing rewarded for pipeline", "cost_monthly": "alignment work cost",
    "cost_once": "one-off alignment cost", "prospects": "prospects in the market",
    "months": "months", "seed": "seed",
}
_MONTHLY_MONEY = {"monthly_budget", "cost_per_rep_month", "cost_monthly"}
_MONEY = {"cost_once", "deal_value"}
_SHARES = {"outbound_share", "coordination", "share", "initial_aware", "in_market_share",
           "churn_monthly"}


def _value_words(leaf: str, value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value)) if value else "all"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if leaf in _MONTHLY_MONEY:
            return f"{money(value)} a month"
        if leaf in _MONEY:
            return money(value)
        if leaf == "sla_days" and value == 0:
            return "none"
        if leaf == "handoff_days":
            return "as leads arrive" if value == 0 else f"every {value:g} days"
        if leaf.endswith("_days"):
            return f"{value:g} day{'s' if value != 1 else ''}"
        if leaf in _SHARES:
            return f"{value:.0%}"
        if leaf.endswith("_months"):
            return f"{value:g} months"
        return f"{value:,}" if isinstance(value, int) else f"{value:g}"
    return str(value).replace("_", " ")


def setting_words(key: str) -> str:
    """A dotted scenario key in words: 'marketing.programs.paid_ads.monthly_budget' ->
    'paid ads budget'."""
    key = key.removeprefix("levers in force: ")
    parts = key.split(".")
    leaf = parts[-1]
    words = _LEAF_WORDS.get(leaf, leaf.replace("_", " "))
    if len(parts) >= 4 and parts[1] in ("programs", "segments"):  # a named program or segment
        words = f"{parts[2].replace('_', ' ')} {words}"
    elif parts[0] == "market" and len(parts) == 3 and parts[1] == "network":
        words = f"network {words}"
    return words


def _leaf(key: str) -> str:
    return key.removeprefix("levers in force: ").split(".")[-1]


def setting_phrase(key: str, value: Any, *, capital: bool = False) -> str:
    """'sales reps 8', 'paid ads budget $0 a month', 'follow-up SLA 3 days'."""
    text = f"{setting_words(key)} {_value_words(_leaf(key), value)}"
    return text[:1].upper() + text[1:] if capital else text


def timeline_sentences(data: Mapping[str, Any]) -> list[str]:
    """A scenario's timeline as sentences: 'From month 6: sales reps 6 (two reps join).'"""
    out = []
    for entry in data.get("timeline") or []:
        if not isinstance(entry, Mapping):
            continue
        leaves, _ = flatten_changes(entry.get("set") or {})
        what = ", ".join(setting_phrase(k, v) for k, v in leaves.items()) or "no change"
        note = str(entry.get("note") or "").strip()
        out.append(f"From month {entry.get('month')}: {what}" + (f" ({note})." if note else "."))
    return out


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out |= _flat(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return {prefix: data}


_NOT_SETTINGS = ("name", "label", "question", "timeline", "seed")


def _settings(data: Mapping[str, Any]) -> dict[str, Any]:
    from gtmsim.scenario import scenario_from_dict

    flat = _flat({k: v for k, v in data.items() if k not in _NOT_SETTINGS})
    try:
        levers = vars(scenario_from_dict(data).levers)
        flat |= {f"levers in force: {k}": v for k, v in levers.items()}
    except ScenarioError:
        pass
    return flat


def _sentence(text: str) -> str:
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def setting_differences(res: Results) -> list[tuple[str, list[str]]]:
    """Per arm, in words, how it differs from the reference: settings that differ (with
    the reference's value in brackets) and its timeline. The reference lists its timeline."""
    if res.kind == "sweep" or res.kind == "run":
        data = scenario_dicts(res) or [{}]
        lines = timeline_sentences(data[0])
        out = [(label_of(data[0]), lines)] if lines else []
        if res.kind == "sweep":  # each grid point as the --set keys that make it
            out += [(a.label, [f"--set {a.name.replace(', ', ' --set ')}"]) for a in arms(res)]
        return out
    found = arms(res)
    by_name = {str(d.get("name", "")): d for d in scenario_dicts(res)}
    ref_data = by_name.get(found[0].name, {})
    ref = _settings(ref_data)
    out = []
    for i, arm in enumerate(found):
        data = by_name.get(arm.name, {})
        lines = []
        if i > 0:
            mine = _settings(data)
            changed = [k for k in mine if str(mine.get(k)) != str(ref.get(k, "(absent)"))]
            changed += [k for k in ref if k not in mine]
            said = [f"{setting_phrase(k, mine.get(k))} ({found[0].label}: "
                    f"{_value_words(_leaf(k), ref.get(k))})" for k in changed
                    if not k.startswith("levers in force: ")]
            levers = [f"{setting_phrase(k, mine.get(k))} ({_value_words(_leaf(k), ref.get(k))})"
                      for k in changed if k.startswith("levers in force: ")]
            if said:
                lines.append(_sentence("; ".join(said)))
            if levers:
                lines.append(_sentence("Alignment levers in force: " + "; ".join(levers)))
        timeline = timeline_sentences(data)
        if timeline != timeline_sentences(ref_data) or i == 0:
            lines += timeline
        if lines:
            out.append((arm.label, lines))
    return out


# --------------------------------------------------------------------------- words


def interval_note(res: Results) -> str:
    """What the intervals cover, in plain words."""
    reps = res.manifest.get("reps")
    calibrated = bool(res.manifest.get("calibration") or res.manifest.get("posterior"))
    text = (f"Every interval in this report, in the tables and as bands in the charts, is a "
            f"{INTERVAL_KIND}: the range in which the average over many more replications "
            f"would fall, 95 times in 100. It covers simulation noise only — the chance in "
            f"who becomes aware, who buys and when — over {reps} replications run on the "
            "same random numbers for every scenario, so a difference between scenarios comes "
            "from their settings, not from luck.")
    if calibrated:
        text += (" The parameters come from a calibration, and the intervals also carry "
                 "the uncertainty of those parameters.")
    else:
        text += (" It does not cover uncertainty in the model's parameters (market size, "
                 "win rates, budgets' effect): those are taken as given; if they are wrong, "
                 "the real difference can lie outside the interval.")
    return text


def questions(res: Results) -> list[tuple[str, str]]:
    """(labels, question) for every question the arms ask, each once: the grid points of
    a sweep share their scenario's question, and so may scenarios of a comparison."""
    if res.kind == "sweep":
        data = scenario_dicts(res)
        q = str(data[0].get("question", "")) if data else ""
        return [(label_of(data[0]), q)] if q else []
    asked: dict[str, list[str]] = {}
    for a in arms(res):
        if a.question:
            asked.setdefault(a.question, []).append(a.label)
    return [(", ".join(who), q) for q, who in asked.items()]


__all__ = [
    "CONFIDENCE",
    "INTERVAL_KIND",
    "Arm",
    "arms",
    "clear_from",
    "covers",
    "headline",
    "interval_note",
    "labelled_runs",
    "labels",
    "money",
    "monthly_differences",
    "monthly_means",
    "options",
    "readable_name",
    "setting_differences",
    "setting_phrase",
    "timeline_sentences",
]


# --------------------------------------------------------------------------- chart takeaways


def _listing(pairs: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{name} {value}" for name, value in pairs)


def _summary_values(table: pd.DataFrame, outcome: str, names: Mapping[str, str]) -> list[tuple]:
    part = table[table["outcome"] == outcome]
    return [(names.get(str(r["scenario"]), str(r["scenario"])), r) for _, r in part.iterrows()]


def chart_takeaways(res: Results, table: pd.DataFrame) -> dict[str, str]:
    """One sentence per chart of `charts.all_charts`, computed from the same data.

    Keys are the chart names (`bookings`, `bookings_difference`, `funnel`, ...).
    """
    from gtmsim import charts

    names = labels(res)
    runs = labelled_runs(res)
    found = arms(res)
    ref = found[0].label
    months = res.months
    out: dict[str, str] = {}
    books = _summary_values(table, "cumulative_bookings", names)
    best = max(books, key=lambda p: p[1]["mean"])
    out["bookings"] = (f"After {months} months {best[0]} has booked the most, "
                       f"{money(best[1]['mean'])}"
                       + (f" (95% CI {ci_text(best[1]['ci_low'], best[1]['ci_high'])})"
                          if math.isfinite(best[1]["ci_low"]) else "")
                       + (f"; the others: {_listing([(n, money(r['mean'])) for n, r in books if n != best[0]])}."
                          if len(books) > 1 else "."))
    if len(found) > 1:
        diffs = monthly_differences(runs, "cumulative_bookings", ref)
        parts = []
        for arm in found[1:]:
            d = diffs[diffs["scenario"] == arm.label].sort_values("month")
            if d.empty:
                continue
            last = d.iloc[-1]
            where = "ahead of" if last["diff"] >= 0 else "behind"
            end = "ahead" if last["diff"] >= 0 else "behind"
            start = clear_from(diffs, arm.label)
            if start is None:
                clause = (f"{arm.label} ends {money(abs(last['diff']))} {where} {ref}, but its "
                          "interval still includes zero")
            else:
                clause = (f"{arm.label} is {where} {ref} with its interval clear of zero from "
                          f"month {start}, ending {money(abs(last['diff']))} {end}")
            parts.append(clause)
        if parts:
            out["bookings_difference"] = _sentence("; ".join(parts))
    totals = charts.funnel_totals(runs)
    conv = [(n, f"{r['wins'] / r['new_leads']:.1%}" if r["new_leads"] > 0 else "–")
            for n, r in totals.iterrows()]
    out["funnel"] = (f"Deals won per lead created: {_listing(conv)} "
                     f"(leads created: {_listing([(n, f'{r.new_leads:,.0f}') for n, r in totals.iterrows()])}).")
    fates = charts.lead_fates(runs)
    parts = []
    for n, r in fates.iterrows():
        total = r.sum()
        if total <= 0:
            parts.append(f"{n} created no leads")
            continue
        top = r.drop("won").idxmax()
        parts.append(f"{n} wins {r['won'] / total:.0%} of its leads; most end "
                     f"{top} ({r[top] / total:.0%})")
    out["lead_outcomes"] = _sentence("; ".join(parts))
    resp = _summary_values(table, "lead_response_days_median", names)
    out["response_times"] = ("Median days from lead to first response: "
                             + _listing([(n, f"{r['mean']:.1f}") for n, r in resp]) + ".")
    util = runs.groupby("scenario", sort=False)["rep_utilization"].mean()
    out["utilization"] = ("Reps' mean utilisation over the run: "
                          + _listing([(n, f"{v:.0%}") for n, v in util.items()]) + ".")
    cac = [(n, r) for n, r in _summary_values(table, "cac", names) if math.isfinite(r["mean"])]
    if cac:
        low = min(cac, key=lambda p: p[1]["mean"])
        rest = [(n, money(r["mean"])) for n, r in cac if n != low[0]]
        out["cac"] = (f"{low[0]} acquires customers most cheaply, at {money(low[1]['mean'])} "
                      "each" + (f"; {_listing(rest)}." if rest else "."))
    if res.kind == "sweep" and res.experiment is not None:
        final = res.runs[res.runs["month"] == res.runs["month"].max()]
        for lever in res.experiment.keys:
            means = final.groupby(lever)["cumulative_bookings"].mean()
            top = means.idxmax()
            out[f"sweep_{lever}"] = (f"Cumulative bookings after {months} months are highest at "
                                     f"{setting_phrase(lever, top)}: {money(means.max())} (mean).")
    return out


OPTION_HEADER = ("Option", "Bookings", "Difference ($, 95% CI)", "Difference (%, 95% CI)",
                 "Total cost", "Extra cost", "Net bookings", "Net difference (95% CI)", "ROI",
                 "Payback", "Covers extra cost?")


def option_rows(opts: pd.DataFrame) -> list[list[str]]:
    """The options table as text cells (the report's and the deck's), the reference first;
    differences are each option minus the reference, paired by replication."""
    rows = []
    for _, r in opts.iterrows():
        roi = f"{r['roi']:.0%}".replace("-", "\u2212") if math.isfinite(r["roi"]) else "–"
        if r["reference"]:
            rows.append([f"{r['label']} (reference)", money(r["bookings"]), "–", "–",
                         money(r["total_cost"]), "–", money(r["net_bookings"]), "–", roi,
                         payback_text(r), "–"])
            continue
        pct = _signed_pct(r["bookings_diff_pct"]) if math.isfinite(r["bookings_diff_pct"]) else "–"
        pct_ci = ci_text(r["bookings_diff_pct_low"], r["bookings_diff_pct_high"], unit="%")
        rows.append([
            r["label"], money(r["bookings"]),
            (f"{money(r['bookings_diff'], signed=True)} "
            f"({ci_text(r['bookings_diff_low'], r['bookings_diff_high'], signed=True)})"),
            f"{pct} ({pct_ci})",
            money(r["total_cost"]), money(r["extra_cost"], signed=True), money(r["net_bookings"]),
            (f"{money(r['net_diff'], signed=True)} "
            f"({ci_text(r['net_diff_low'], r['net_diff_high'], signed=True)})"),
            roi, payback_text(r), r["covers_cost"]])
    return rows
