"""Report pages of the analysis verbs' folders (explain, sensitivity, optimize): one
self-contained HTML page each, from the folder's tables (no rerun).

Each page opens with a headline computed from the numbers in the folder, then the charts
(drawn again from the tables with the verbs' own chart functions, embedded, and written
as 16:9 PNGs in `charts/` beside the page), the tables, and the method at the end.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from gtmsim import decision
from gtmsim.charts import SLIDE
from gtmsim.experiment import OUTCOMES, few_reps_warning, format_value, interval_text
from gtmsim.report import CHARTS_DIR, CSS, REPORT, ReportError
from gtmsim.report import _check_chart_dir as _check_report_charts
from gtmsim.results import (
    MANIFEST,
    ResultsError,
    atomic_write,
    check_writable_file,
    read_manifest,
    read_parquet,
)
from gtmsim.scenario import ScenarioError, label_of, readable_name
from gtmsim.takeaways import HIGHER, LOWER, UNCLEAR, verdict

KINDS = ("explain", "sensitivity", "optimize")
OUTCOME = {o.name: o for o in OUTCOMES}
# Outcomes an explain page draws as waterfalls, in this order (those with a gap).
EXPLAIN_OUTCOMES = ("cumulative_bookings", "net_bookings", "customers", "total_cost")
# Outcomes an optimize page compares the plans on, besides its objectives'.
OPTIMIZE_OUTCOMES = ("cumulative_bookings", "net_bookings", "total_cost", "cac", "customers")
# Charts the verbs write in charts/ themselves; the page's own are NN_name.png.
_VERB_CHART = re.compile(r"(\d\d_[^/]+|waterfall_\w+|(morris|sobol|pawn)_\w+|search|pareto)\.png")


# --------------------------------------------------------------------------- words


def _esc(text: Any) -> str:
    return html.escape(str(text))


def _value(unit: str, v: float, *, signed: bool = False) -> str:
    return format_value(unit, v, signed=signed)


def _interval(unit: str, low: float, high: float, *, signed: bool = False) -> str:
    text = interval_text(unit, low, high, signed=signed)
    return "no interval" if text == "–" else text


def value_words(key: str, value: Any) -> str:
    """A scenario key's value in its unit ("$24k a month", "3 days", "6")."""
    return decision._value_words(key.split(".")[-1], value)


def key_words(key: str) -> str:
    """A scenario key in words with the key itself: "follow-up SLA (alignment.sla_days)"."""
    if key.startswith("timeline["):
        return key
    words = decision.setting_words(key)
    return f"{words} ({key})" if words != key else key


def _pct(v: float) -> str:
    return f"{v:.0%}".replace("-", "\u2212")


def _ci_verdict(low: float, high: float) -> str:
    v = verdict(low, high)
    if v == UNCLEAR:
        return "its interval includes 0"
    if v in (HIGHER, LOWER):
        return "its interval excludes 0"
    return "no interval (too few replications)"


def _sentence_html(text: str) -> str:
    return f'<p class="headline">{_esc(text)}</p>'


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], css: str = "") -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _method(manifest: Mapping[str, Any], lines: Sequence[str]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in manifest.get("versions", {}).items())
    command = " ".join(map(str, manifest.get("command", [])))
    seeds = manifest.get("seeds", [])
    out = list(lines)
    if seeds:
        out.append(f"Replication seeds (replication r of every point ran on the r-th), spawned "
                   f"from base seed {_esc(manifest.get('seed'))} with NumPy's SeedSequence: "
                   f"<code class=\"seeds\">{_esc(', '.join(map(str, seeds)))}</code>")
    out += [f"Versions: {_esc(versions)}.", f"Command: <code>{_esc(command)}</code>",
            f"Created {_esc(manifest.get('created', ''))}."]
    return ("<h2>Method and seeds</h2><div class=\"method\">"
            + "".join(f"<p>{line}</p>" for line in out) + "</div>")


# --------------------------------------------------------------------------- reading


def _need(folder: Path, kind: str, names: Sequence[str], manifest: Mapping[str, Any],
          section: str | None = None) -> None:
    """Refuse a folder whose verb did not finish: name what is missing and how to go on."""
    absent = [n for n in names if not (folder / n).is_file()]
    if section is not None and not isinstance(manifest.get(section), Mapping):
        absent.append(f"the {section} section of {MANIFEST}")
    if manifest.get("complete") is False:
        absent.append(f"{MANIFEST} says the work is not complete")
    if absent:
        raise ReportError(f"{folder}: this {kind} has no finished results yet "
                          f"({'; '.join(absent)}); run the same command with --resume to "
                          "finish it, then make the report")


def _csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: cannot read it ({exc})") from None


def _columns(path: Path, table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    missing = [c for c in names if c not in table.columns]
    if missing:
        raise ReportError(f"{path}: malformed (missing columns {', '.join(missing)})")
    return table


def _at(data: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


# --------------------------------------------------------------------------- charts


class _Charts:
    """The page's charts: drawn once, written as 16:9 PNGs, embedded as base64."""

    def __init__(self, dpi: int):
        self.dpi = dpi
        self.items: list[tuple[str, bytes]] = []

    def add(self, name: str, draw: Callable[[Axes], Any]) -> str:
        fig, ax = plt.subplots(figsize=SLIDE, layout="constrained")
        try:
            draw(ax)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=self.dpi)
        finally:
            plt.close(fig)
        file = f"{len(self.items) + 1:02d}_{name}.png"
        self.items.append((file, buf.getvalue()))
        b64 = base64.b64encode(buf.getvalue()).decode("ascii")
        return f'<figure><img alt="{_esc(name)}" src="data:image/png;base64,{b64}"></figure>'


def _check_chart_dir(chart_dir: Path) -> None:
    """As `report._check_chart_dir`, allowing the verb's own charts too."""
    _check_report_charts(chart_dir, _VERB_CHART)


# --------------------------------------------------------------------------- explain


def explain_headline(contributions: pd.DataFrame, gaps: pd.DataFrame, outcome: str,
                     a: str, b: str) -> str:
    """Which factor contributes most to the gap in `outcome`, its share of the gap and
    whether its interval excludes 0."""
    o = OUTCOME[outcome]
    g = gaps[gaps["outcome"] == outcome].iloc[0]
    c = contributions[contributions["outcome"] == outcome]
    ci = _interval(o.unit, g["gap_ci_low"], g["gap_ci_high"], signed=True)
    gap_text = (f"The gap in {o.label.lower()}, {b} − {a}, is "
                f"{_value(o.unit, g['gap'], signed=True)} (paired 95% CI {ci})")
    if not len(c) or not math.isfinite(g["gap"]) or (c["contribution"].abs() == 0).all():
        return gap_text + "; no factor contributes to it."
    top = c.loc[c["contribution"].abs().idxmax()]
    share = (f", {_pct(top['contribution'] / g['gap'])} of the gap" if g["gap"] != 0 else "")
    return (f"{gap_text}; {top['factor']} contributes most: "
            f"{_value(o.unit, top['contribution'], signed=True)}{share} (95% CI "
            f"{_interval(o.unit, top['ci_low'], top['ci_high'], signed=True)}; "
            f"{_ci_verdict(top['ci_low'], top['ci_high'])}).")


def _explain(folder: Path, manifest: Mapping[str, Any], charts: _Charts) -> tuple[str, list[str]]:
    from gtmsim.analysis.explain import CONTRIBUTIONS, GAPS
    from gtmsim.analysis.plots import plot_waterfall

    _need(folder, "explain", [CONTRIBUTIONS, GAPS], manifest, "explain")
    sec = manifest["explain"]
    contributions = _columns(folder / CONTRIBUTIONS, _csv(folder / CONTRIBUTIONS),
                             ["outcome", "factor", "contribution", "ci_low", "ci_high", "n"])
    gaps = _columns(folder / GAPS, _csv(folder / GAPS),
                    ["outcome", "a_mean", "b_mean", "gap", "gap_ci_low", "gap_ci_high", "n"])
    a, b = str(sec.get("a", "A")), str(sec.get("b", "B"))
    la = str(sec.get("a_label") or readable_name(a))
    lb = str(sec.get("b_label") or readable_name(b))
    title = f"Why {lb} differs from {la}: the gap split by Shapley value"
    shown = [n for n in EXPLAIN_OUTCOMES if n in set(gaps["outcome"])
             and int(gaps.loc[gaps["outcome"] == n, "n"].iloc[0]) > 0]
    body = [_sentence_html(explain_headline(contributions, gaps, shown[0], la, lb))
            if shown else "<p>No key outcome has a value in every replication.</p>"]
    warning = few_reps_warning(int(manifest.get("reps") or 0))
    if warning:
        body.append(f'<p class="warning" role="alert"><strong>Warning:</strong> '
                    f"{_esc(warning)}</p>")
    questions = [(la, sec.get("a_question")), (lb, sec.get("b_question"))]
    if not questions[0][1]:
        questions[0] = (la, (manifest.get("scenarios") or [{}])[0].get("question"))
    asked = [(who, q) for who, q in questions if q]
    if asked:
        body.append("<h2>The questions</h2><ul>" + "".join(
            f"<li><strong>{_esc(who)}</strong>: {_esc(q)}</li>" for who, q in asked) + "</ul>")
    full = max(manifest.get("points") or [{}], key=len)
    base = (manifest.get("scenarios") or [{}])[0]
    body.append("<h2>The factors</h2><ul>" + "".join(
        f"<li>{_esc(_factor_words(f, base, full))}</li>" for f in sec.get("factors", []))
        + "</ul>")
    body.append("<h2>The gaps</h2>")
    for name in shown:
        c = contributions[contributions["outcome"] == name]
        g = gaps[gaps["outcome"] == name].iloc[0]
        if (c["contribution"].abs() == 0).all() and g["gap"] == 0:
            body.append(f"<p>{_esc(OUTCOME[name].label)}: {_esc(lb)} and {_esc(la)} are the "
                        "same in every replication; no factor contributes.</p>")
            continue
        if name != shown[0]:
            body.append(f"<p>{_esc(explain_headline(contributions, gaps, name, la, lb))}</p>")
        body.append(charts.add(f"waterfall_{name}", lambda ax, name=name: plot_waterfall(
            contributions, gaps, name, a=la, b=lb, ax=ax)))
    rows = []
    for name in [o.name for o in OUTCOMES]:
        o = OUTCOME[name]
        g = gaps[gaps["outcome"] == name]
        if not len(g):
            continue
        g = g.iloc[0]
        rows.append([o.label, "gap (all factors)", _value(o.unit, g["gap"], signed=True),
                     _interval(o.unit, g["gap_ci_low"], g["gap_ci_high"], signed=True),
                     f"{_value(o.unit, g['a_mean'])} → {_value(o.unit, g['b_mean'])}",
                     int(g["n"])])
        for r in contributions[contributions["outcome"] == name].itertuples():
            share = (_pct(r.contribution / g["gap"]) if math.isfinite(g["gap"])
                     and g["gap"] != 0 and math.isfinite(r.contribution) else "–")
            rows.append(["", r.factor, _value(o.unit, r.contribution, signed=True),
                         _interval(o.unit, r.ci_low, r.ci_high, signed=True), share, int(r.n)])
    body += ["<h2>Every outcome</h2><p class=\"note\">Each factor's Shapley contribution with "
             "its paired 95% interval over replications; the contributions of an outcome sum "
             "to its gap. The last column but one gives the gap's ends (A → B) on the gap's "
             "row and the factor's share of the gap on a factor's row.</p>",
             _table(["Outcome", "Factor", "Contribution", "95% CI", "A → B / share",
                     "Replications"], rows, css="kpi")]
    method = sec.get("method")
    k = len(sec.get("factors", []))
    how = (f"exact Shapley values: all 2^{k} = {2 ** k} mixes of {_esc(a)} and {_esc(b)} "
           "were run" if method == "exact" else
           f"Shapley values sampled from {_esc(sec.get('permutations'))} orders of the "
           f"{k} factors (antithetic pairs); the intervals add the order-sampling variance "
           "to the replications'")
    lines = [f"{how}, each on {_esc(manifest.get('reps'))} replications over "
             f"{_esc(manifest.get('months'))} months on common random numbers. A mix is "
             f"{_esc(a)} with the keys of some factors set to {_esc(b)}'s values; a factor's "
             "contribution is its Shapley value (Shapley 1953): its effect averaged over "
             "every order of switching the factors, so an interaction is split evenly "
             "between the factors in it and the contributions sum to the gap. Intervals "
             "are paired-t over replications."]
    if sec.get("posterior"):
        lines.append(_posterior_line(sec["posterior"], manifest.get("draws"), "mix"))
    return title, [*body, _method(manifest, lines)]


def _posterior_line(folder: str, draws: Any, what: str) -> str:
    """How the replications drew the calibrated keys, for a verb run with --posterior."""
    keys = sorted({k for d in draws or [] for k in d})
    return (f"Parameter uncertainty: replication r of every {what} also ran on draw r of the "
            f"posterior in <code>{_esc(folder)}</code> ({_esc(', '.join(keys))}; "
            f"{len({json.dumps(d, sort_keys=True) for d in draws or []})} distinct draws), so "
            "the intervals cover what the calibration left uncertain as well as simulation "
            "noise.")


def _factor_words(f: Mapping[str, Any], base: Mapping[str, Any],
                  full: Mapping[str, Any]) -> str:
    keys = list(f.get("keys", []))
    parts = [f"{key_words(k)}: {value_words(k, _at(base, k))} → {value_words(k, full.get(k))}"
             for k in keys]
    name = str(f.get("name"))
    if len(keys) == 1 and keys[0] == name:
        return parts[0]
    return f"{name}: " + "; ".join(parts)


# --------------------------------------------------------------------------- sensitivity


def sensitivity_headline(indices: pd.DataFrame, method: str, outcome_text: str,
                         unit: str) -> str:
    """The key that drives the outcome most, and whether it (and the others) stand out of
    the replication noise."""
    from gtmsim.analysis.sensitivity import NOISE

    keyed = indices[indices["key"] != NOISE]
    noise = indices[indices["key"] == NOISE]
    col, conf = {"morris": ("mu_star", "mu_star_conf"), "sobol": ("ST", "ST_conf"),
                 "pawn": ("median", None)}[method]
    floor = float(noise[col].iloc[0]) if len(noise) else math.nan
    if not keyed[col].notna().any():
        return (f"SALib gave no index of {outcome_text} for any key (it gives none when the "
                "outcome does not vary across the sampled points).")
    top = keyed.loc[keyed[col].idxmax()]

    def shown(v: float) -> str:
        return _value(unit, v) if method == "morris" else f"{v:.2f}"

    clear = [r.key for r in keyed.itertuples()
             if math.isfinite(floor)
             and getattr(r, col) - (getattr(r, conf) if conf else 0.0) > floor]
    what = {"morris": "μ*", "sobol": "total index ST", "pawn": "PAWN median index"}[method]
    text = (f"{top['key']} drives {outcome_text} most: {what} {shown(top[col])}"
            + (f" (± {shown(top[conf])})" if conf else ""))
    if math.isfinite(floor):
        text += (f", against {shown(floor)} that replication noise alone leaves; "
                 + (f"keys {'whose interval lies' if conf else 'lying'} above the noise: "
                    f"{', '.join(clear)}." if clear else
                    f"no key's {'interval lies' if conf else 'index lies'} above the noise "
                    "level."))
    else:
        text += "; the noise level is unknown (one replication)."
    return text


def box_words(box: Mapping[str, Any], ranges: Sequence[Mapping[str, Any]]) -> str:
    """A box of key values in words with units ("sales reps ≤ 4 and follow-up SLA > 3 days")."""
    parts = []
    for r in ranges:
        key, low, high = r["key"], float(box[f"{r['key']}_low"]), float(box[f"{r['key']}_high"])
        if low <= r["low"] and high >= r["high"]:
            continue
        words = decision.setting_words(key)
        if r.get("whole"):
            lo, hi = math.floor(low) + 1, math.floor(high)
            side = (f"≤ {value_words(key, hi)}" if low <= r["low"] else
                    f"≥ {value_words(key, lo)}" if high >= r["high"] else
                    f"{value_words(key, lo)} to {value_words(key, hi)}")
        else:
            fl, fh = float(f"{low:.3g}"), float(f"{high:.3g}")
            side = (f"≤ {value_words(key, fh)}" if low <= r["low"] else
                    f"> {value_words(key, fl)}" if high >= r["high"] else
                    f"{value_words(key, fl)} to {value_words(key, fh)}")
        parts.append(f"{words} ({key}) {side}")
    return " and ".join(parts) or "everywhere in the ranges"


def _sensitivity(folder: Path, manifest: Mapping[str, Any],
                 charts: _Charts) -> tuple[str, list[str]]:
    from gtmsim.analysis.plots import plot_indices
    from gtmsim.analysis.sensitivity import BOXES, INDICES, NOISE

    _need(folder, "sensitivity", [INDICES], manifest, "sensitivity")
    sec = manifest["sensitivity"]
    method, outcome = sec.get("method"), sec.get("outcome")
    if method not in ("morris", "sobol", "pawn") or outcome not in OUTCOME:
        raise ReportError(f"{folder / MANIFEST}: malformed (sensitivity method {method!r}, "
                          f"outcome {outcome!r})")
    cols = {"morris": ["key", "mu_star", "mu_star_conf", "sigma", "mu"],
            "sobol": ["key", "S1", "S1_conf", "ST", "ST_conf"],
            "pawn": ["key", "median", "mean", "minimum", "maximum", "CV"]}[method]
    names = {"morris": "Morris screening", "sobol": "Sobol indices", "pawn": "PAWN indices"}
    indices = _columns(folder / INDICES, _csv(folder / INDICES), cols)
    o = OUTCOME[outcome]
    d = sec.get("decision")
    what = (f"{o.label.lower()} of {d['b']} − {d['a']}" if d else o.label.lower())
    scenario = label_of((manifest.get("scenarios") or [{}])[0])
    ranges = sec.get("ranges", [])
    title = (f"What drives {what}" + ("" if d else f" in {scenario}") + ": "
             f"{names[method]} of "
             f"{', '.join(r['key'] for r in ranges)}")
    body = [_sentence_html(sensitivity_headline(indices, method, what, o.unit))]
    warning = few_reps_warning(int(manifest.get("reps") or 0))
    if warning:
        body.append(f'<p class="warning" role="alert"><strong>Warning:</strong> '
                    f"{_esc(warning)}</p>")
    share, of_mean = sec.get("noise_share"), sec.get("noise_share_of_mean")
    if isinstance(share, (int, float)) and math.isfinite(share):
        line = (f"One run's variance of {what} is {share:.0%} replication noise (what a "
                "replication seed changes, not the keys)")
        if isinstance(of_mean, (int, float)) and math.isfinite(of_mean):
            line += (f"; of the variance of the mean over {manifest.get('reps')} "
                     f"replications across points, the variance the indices split, "
                     f"{of_mean:.0%}")
        body.append(f'<p class="note">{_esc(line)}.</p>')
    if d:
        body.append("<h2>The decision</h2>" + _decision_html(folder, d, ranges, BOXES))
    body.append("<h2>The indices</h2>")
    body.append(charts.add(f"{method}_{outcome}", lambda ax: plot_indices(
        indices, method=method, outcome=outcome, ax=ax)))
    by_key = {r["key"]: r for r in ranges}
    rows = []
    for r in indices.itertuples():
        rng = by_key.get(r.key)
        span = (f"{value_words(r.key, _whole(rng, rng['low']))} to "
                f"{value_words(r.key, _whole(rng, rng['high']))}" if rng else "")
        if method == "morris":
            nums = [_value(o.unit, v) for v in (r.mu_star, r.mu_star_conf, r.sigma, r.mu)]
        else:
            values = ((r.S1, r.S1_conf, r.ST, r.ST_conf) if method == "sobol" else
                      (r.median, r.mean, r.minimum, r.maximum, r.CV))
            nums = ["–" if not math.isfinite(v) else f"{v:.2f}" for v in values]
        rows.append([r.key if r.key == NOISE else key_words(r.key), span, *nums])
    header = {"morris": ["Key", "Range", "μ*", "± (95%)", "σ", "μ"],
              "sobol": ["Key", "Range", "S1", "± (95%)", "ST", "± (95%)"],
              "pawn": ["Key", "Range", "median", "mean", "min", "max", "CV"]}[method]
    note = ("μ* is the mean absolute elementary effect of moving a key across its range "
            f"(in {o.unit}), σ their spread (interactions, non-linearity), μ their signed "
            "mean; the noise line is the μ* replication noise alone leaves."
            if method == "morris" else
            "S1 is the share of the variance of the mean outcome a key explains alone, ST "
            "with its interactions; the noise line is the share that is replication noise."
            if method == "sobol" else
            "PAWN indices are Kolmogorov–Smirnov distances between the outcome's distribution "
            "and its distributions within slices of one key's values (median, mean, min, max "
            "over the slices, and their CV); the noise line is what a column of random "
            "numbers gets on this sample.")
    body += [_table(header, rows, css="kpi"), f'<p class="note">{_esc(note)}</p>']
    points = len(manifest.get("points") or [])
    sampled = (f"{points // 2} points × 2 scenarios" if d else f"{points} points")
    design = (f"Morris screening (SALib), {sec.get('samples')} trajectories on "
              f"{sec.get('levels')} levels" if method == "morris" else
              f"Sobol indices (SALib, Saltelli sample), {sec.get('samples')} base samples"
              if method == "sobol" else
              f"PAWN indices (SALib) of {sec.get('samples')} points"
              + (" drawn from a calibration's posterior" if sec.get("posterior") else ""))
    lines = [f"{_esc(design)}: "
             f"{sampled} × {_esc(manifest.get('reps'))} replications over "
             f"{_esc(manifest.get('months'))} months on common random numbers; SALib analyses "
             "each point's mean over replications, and the replication noise is reported "
             "on its own line (two-way analysis of variance of points × replications)."]
    return title, [*body, _method(manifest, lines)]


def _whole(rng: Mapping[str, Any], v: float) -> float | int:
    return round(v) if rng.get("whole") else v


def _decision_html(folder: Path, d: Mapping[str, Any], ranges: Sequence[Mapping[str, Any]],
                   boxes_file: str) -> str:
    o = OUTCOME[d["outcome"]]
    parts = [f"<p>{_esc(d['b'])} beats {_esc(d['a'])} on {_esc(o.label.lower())} at "
             f"{d['p_b_better']:.0%} of the {d['points']} sampled points (95% Wilson interval "
             f"{d['p_low']:.0%} to {d['p_high']:.0%}), on the mean of the replications; in "
             f"{d['runs_b_better']:.0%} of single paired runs.</p>"]
    path = folder / boxes_file
    boxes = _csv(path) if path.is_file() else pd.DataFrame()
    if len(boxes):
        flip = f"{d['a']} beats {d['b']}" if d["p_b_better"] >= 0.5 else f"{d['b']} beats {d['a']}"
        rows = [[box_words(r, ranges), f"{int(r['flips'])} of {int(r['points'])}",
                 f"{r['density']:.0%}", f"{r['coverage']:.0%}"] for _, r in boxes.iterrows()]
        parts += [f"<p>Where the decision flips ({_esc(flip)}): the boxes of key values a "
                  "shallow decision tree finds (scenario discovery).</p>",
                  _table(["Where", "Flips / points", "Density", "Coverage of all flips"],
                         rows),
                  '<p class="note">Density: share of the points in the box where the decision '
                  "flips; coverage: share of all flips that fall in the box.</p>"]
    else:
        parts.append("<p>No box of key values where the decision flips (it never flips in "
                     "the sample, or the flips are scattered).</p>")
    return "".join(parts)


# --------------------------------------------------------------------------- optimize


def _optimize(folder: Path, manifest: Mapping[str, Any],
              charts: _Charts) -> tuple[str, list[str]]:
    from gtmsim.analysis import optimize as opt
    from gtmsim.experiment import read_experiment

    _need(folder, "optimize", [opt.TRIALS, opt.SUMMARY], manifest)
    try:
        trials = read_parquet(folder / opt.TRIALS, ["trial", "state", "simulated", "feasible"])
    except ResultsError as exc:
        raise ReportError(str(exc)) from None
    summary = (_csv(folder / opt.SUMMARY) if (folder / opt.SUMMARY).stat().st_size
               else pd.DataFrame())
    objectives = [opt.OBJECTIVES[n] for n in manifest.get("objectives", []) if n in opt.OBJECTIVES]
    if not objectives:
        raise ReportError(f"{folder / MANIFEST}: malformed (objectives "
                          f"{manifest.get('objectives')!r})")
    constraints = [opt.parse_constraint(c) for c in manifest.get("constraints", [])]
    try:
        from gtmsim.scenario import scenario_from_dict

        start = scenario_from_dict(manifest["scenario"], str(folder / MANIFEST))
    except (KeyError, ScenarioError) as exc:
        raise ReportError(f"{folder / MANIFEST}: malformed (the starting scenario: "
                          f"{exc})") from None
    first = objectives[0]
    vary = [v.split("=", 1)[0] for v in manifest.get("vary", [])]
    best, best_trial = manifest.get("best"), manifest.get("best_trial")
    kept = bool(manifest.get("kept_start"))
    months = manifest.get("months")
    limits = ", ".join(c.text for c in constraints) or "no constraint"
    goals = " and ".join(o.label.lower() for o in objectives)
    title = f"Optimising {label_of(manifest['scenario'])}: {goals} under {limits}"
    chosen = summary[summary["chosen"].astype(bool)] if len(summary) else summary
    chosen_name = chosen["scenario"].iloc[0] if len(chosen) else None
    start_name = summary["scenario"].iloc[0] if len(summary) else start.name
    reeval_reps = manifest.get("reevaluate_reps")
    if first.outcome is None:  # p_target: the share of fresh replications reaching the target
        headline = _p_target_headline(folder, manifest, chosen_name, start_name, best, kept,
                                      read_experiment)
    else:
        headline = optimize_headline(summary, first, best, kept, int(reeval_reps or 0), months)
    body = [_sentence_html(headline)]
    warning = few_reps_warning(int(reeval_reps or 0))
    if warning:
        body.append(f'<p class="warning" role="alert"><strong>Warning:</strong> '
                    f"{_esc(warning)}</p>")
    if (folder / opt.BEST).is_file() and best is not None:
        body.append(f"<p>The chosen plan is the scenario file <code>{_esc(folder / opt.BEST)}"
                    "</code> (it extends the starting plan; run it with <code>gtmsim run "
                    f"{_esc(folder / opt.BEST)}</code>).</p>")
    if best is not None:
        rows = []
        for key in vary:
            a, b = opt.start_value(start, key), best.get(key)
            rows.append([key_words(key), value_words(key, a), value_words(key, b),
                         "no change" if a == b else "changed"])
        body += [f"<h2>What changed (trial {_esc(best_trial)} against the start)</h2>",
                 _table(["Key", "Start", "Chosen plan", ""], rows)]
    if constraints:
        body += ["<h2>Constraints</h2>",
                 _constraints_html(folder, constraints, chosen_name, start_name, trials,
                                   best_trial, read_experiment)]
    if len(summary) and summary["scenario"].nunique() > 1:
        wanted = [*dict.fromkeys([*(o.outcome for o in objectives if o.outcome),
                                  *OPTIMIZE_OUTCOMES])]
        rows = []
        plans = list(dict.fromkeys(summary["scenario"]))
        for name in wanted:
            o = OUTCOME[name]
            part = summary[summary["outcome"] == name].set_index("scenario")
            for plan in plans[1:]:
                r, s = part.loc[plan], part.loc[start_name]
                mark = " (chosen)" if plan == chosen_name else ""
                rows.append([o.label, f"{plan}{mark}", _value(o.unit, s["mean"]),
                             _value(o.unit, r["mean"]),
                             _value(o.unit, r["diff"], signed=True),
                             _interval(o.unit, r["diff_ci_low"], r["diff_ci_high"], signed=True)])
        body += [f"<h2>The best plans against the start, on {reeval_reps} fresh replications"
                 "</h2>",
                 '<p class="note">The best of many noisy trials flatters itself (the '
                 "optimiser's curse), so the best few were run again on fresh seeds, paired "
                 "with the starting plan replication by replication; the chosen plan is the "
                 "best of them on the objective there (the start competes too).</p>",
                 _table(["Outcome", "Plan", "Start", "Plan's mean", "Difference",
                         "Paired 95% CI"], rows, css="kpi")]
    body.append("<h2>The search</h2>")
    body.append(charts.add("search", lambda ax: opt.plot_search(trials, first.name, ax=ax)))
    if len(objectives) > 1 and trials["feasible"].astype(bool).any():
        body.append(charts.add("pareto", lambda ax: opt.plot_pareto(
            trials, [o.name for o in objectives], ax=ax)))
    ran = trials[trials["simulated"].astype(bool)]
    lines = [f"{len(ran)} trials simulated ({int(ran['feasible'].astype(bool).sum())} meeting "
             f"the constraints), {int((~trials['simulated'].astype(bool)).sum())} proposed "
             "plans refused before simulating because they broke a spending or headcount "
             f"limit they fix themselves; each trial {_esc(manifest.get('reps'))} replications "
             f"over {_esc(months)} months on the same seeds (common random numbers). Sampler: "
             f"Optuna's TPE, seeded from (seed, trial index), "
             f"{_esc((manifest.get('sampler') or {}).get('n_startup_trials'))} random startup "
             f"trials; the study is <code>{_esc(folder / opt.STUDY_DB)}</code> (open it with "
             "optuna-dashboard).",
             f"Re-evaluation: the starting plan and the best {_esc(manifest.get('top'))} on "
             f"{_esc(reeval_reps)} fresh replications from base seed "
             f"{_esc(manifest.get('reevaluate_seed'))}; differences are paired-t intervals."]
    if manifest.get("posterior"):
        lines.append(_posterior_line(manifest["posterior"], manifest.get("draws"), "trial")
                     + " The re-evaluation drew afresh.")
    return title, [*body, _method(manifest, lines)]


def optimize_headline(summary: pd.DataFrame, first: Any, best: Any, kept: bool, reps: int,
                      months: Any) -> str:
    """The chosen plan against the start on fresh seeds, on the first objective."""
    if best is None or not len(summary):
        return ("No trial met the constraints: there is no best plan (widen the ranges or "
                "relax the limits).")
    outcome = first.outcome or "cumulative_bookings"
    o = OUTCOME[outcome]
    rows = summary[summary["outcome"] == outcome]
    start = rows.iloc[0]
    if kept:
        return (f"No searched plan beat the starting plan on {o.label.lower()} on {reps} fresh "
                f"replications ({_value(o.unit, start['mean'])} over {months} months): "
                "best.toml keeps the starting plan.")
    r = rows[rows["chosen"].astype(bool)].iloc[0]
    v = verdict(r["diff_ci_low"], r["diff_ci_high"])
    word = {HIGHER: "clearly higher than", LOWER: "clearly lower than"}.get(
        v, "not clearly different from")
    return (f"The chosen plan ({r['scenario']}) gives {o.label.lower()} of "
            f"{_value(o.unit, r['mean'])} over {months} months, "
            f"{_value(o.unit, r['diff'], signed=True)} against the starting plan's "
            f"{_value(o.unit, start['mean'])} (paired 95% CI "
            f"{_interval(o.unit, r['diff_ci_low'], r['diff_ci_high'], signed=True)} on {reps} "
            f"fresh replications): {word} the start.")


def _p_target_headline(folder: Path, manifest: Mapping[str, Any], chosen: str | None,
                       start: str, best: Any, kept: bool,
                       read_experiment: Callable[[Path], Any]) -> str:
    from gtmsim.analysis import optimize as opt
    from gtmsim.analysis.sensitivity import _wilson

    target = manifest.get("target")
    if best is None:
        return ("No trial met the constraints: there is no best plan (widen the ranges or "
                "relax the limits).")
    try:
        runs = read_experiment(folder / opt.REEVALUATION_DIR).runs
    except ResultsError as exc:
        raise ReportError(str(exc)) from None
    last = runs[runs["month"] == runs["month"].max()]

    def share(plan: str) -> str:
        hit = last.loc[last["scenario"] == plan, "cumulative_bookings"] >= float(target)
        lo, hi = _wilson(int(hit.sum()), len(hit))
        return (f"{hit.mean():.0%} of {len(hit)} fresh replications (95% Wilson interval "
                f"{lo:.0%} to {hi:.0%})")

    goal = f"the bookings target of {_value('$', float(target))}"
    if kept or chosen is None or chosen == start:
        return (f"No searched plan reached {goal} more often than the starting plan, which "
                f"reaches it in {share(start)}: best.toml keeps the starting plan.")
    return (f"The chosen plan ({chosen}) reaches {goal} in {share(chosen)}; the starting plan "
            f"in {share(start)}.")


def _constraints_html(folder: Path, constraints: Sequence[Any], chosen: str | None,
                      start: str, trials: pd.DataFrame, best_trial: Any,
                      read_experiment: Callable[[Path], Any]) -> str:
    from gtmsim.analysis import optimize as opt

    fresh: dict[str, dict[str, float]] = {}
    try:
        runs = read_experiment(folder / opt.REEVALUATION_DIR).runs
        for (plan, _), one in runs.groupby(["scenario", "replication"], sort=False):
            month = one.sort_values("month")
            for c in constraints:
                fresh.setdefault(plan, {}).setdefault(c.quantity, [])
                fresh[plan][c.quantity].append(opt.QUANTITIES[c.quantity].reduce(month))
    except (ResultsError, OSError, ValueError):
        fresh = {}
    rows = []
    row = trials[trials["trial"] == best_trial] if best_trial is not None else trials.iloc[:0]
    for c in constraints:
        q = opt.QUANTITIES[c.quantity]
        searched = float(row[c.quantity].iloc[0]) if len(row) and c.quantity in row else math.nan
        cells = [c.text, q.description]
        for plan in (start, chosen):
            vals = fresh.get(plan, {}).get(c.quantity) if plan else None
            v = float(sum(vals) / len(vals)) if vals else math.nan
            held = ("holds" if c.holds(v) else "broken") if math.isfinite(v) else "–"
            cells += [_value(q.unit if q.unit != "reps" else "", v), held]
        cells.append(_value(q.unit if q.unit != "reps" else "", searched))
        rows.append(cells)
    return (_table(["Constraint", "Quantity", "Start (fresh seeds)", "", "Chosen plan (fresh "
                    "seeds)", "", "Chosen plan (search)"], rows)
            + '<p class="note">Each quantity is a mean over replications; a plan meets a '
              "constraint when that mean is within the limit.</p>")


# --------------------------------------------------------------------------- the page


_BUILDERS = {"explain": _explain, "sensitivity": _sensitivity, "optimize": _optimize}


def build_report(folder: str | Path, output: str | Path | None = None, *,
                 dpi: int = 100) -> Path:
    """Write the HTML page of an explain, sensitivity or optimize `folder`, and its charts
    as 16:9 PNGs in `charts/` beside it; returns the page's path.

    Raises:
        ReportError: not such a folder, an unfinished one (the message says what is
            missing), a malformed file, or a page or chart that cannot be written.
    """
    folder = Path(folder)
    follow = output is not None
    out = Path(output) if output is not None else folder / REPORT
    try:
        check_writable_file(out, follow_links=follow)
        manifest = read_manifest(folder)
    except ResultsError as exc:
        raise ReportError(str(exc)) from None
    kind = manifest.get("kind")
    if kind not in _BUILDERS:
        raise ReportError(f"{folder}: not an explain, sensitivity or optimize folder "
                          f"(kind {kind!r})")
    chart_dir = out.parent / CHARTS_DIR
    _check_chart_dir(chart_dir)
    charts = _Charts(dpi)
    try:
        title, body = _BUILDERS[kind](folder, manifest, charts)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"{folder}: a results file is malformed ({type(exc).__name__}: "
                          f"{exc})") from None
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>gtmsim: {_esc(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{_esc(title)}</h1>{''.join(body)}</body></html>\n")
    try:
        for file, data in charts.items:
            atomic_write(chart_dir / file, lambda tmp, d=data: tmp.write_bytes(d))
        names = {file for file, _ in charts.items}
        if chart_dir.is_dir():
            for old in chart_dir.glob("[0-9][0-9]_*.png"):  # an earlier page's, now gone
                if old.name not in names:
                    old.unlink()
        atomic_write(out, lambda tmp: tmp.write_text(page, encoding="utf-8"),
                     follow_links=follow)
    except ResultsError as exc:
        raise ReportError(str(exc)) from None
    return out


def headline_numbers(page: str | Path) -> str:
    """The headline sentence of a page written by `build_report` (for scripts and tests)."""
    text = Path(page).read_text(encoding="utf-8")
    found = re.search(r'<p class="headline">(.*?)</p>', text, re.S)
    return html.unescape(found[1]) if found else ""


__all__ = ["KINDS", "box_words", "build_report", "explain_headline", "headline_numbers",
           "optimize_headline", "sensitivity_headline"]

