"""The leadership report: one self-contained HTML page from a results folder.

It opens with a headline sentence generated from the numbers, then a KPI table with
intervals, the charts (embedded PNGs, so it views offline), what differs between the
scenarios, and the method. Each chart is also written as a 16:9 PNG beside the report.
Everything comes from the results folder: changing the report never needs a rerun.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from gtmsim import charts, decision
from gtmsim.experiment import (
    OUTCOMES,
    RUNS,
    Experiment,
    few_reps_warning,
    not_within_run,
    read_experiment,
)
from gtmsim.results import (
    MANIFEST,
    MONTHLY,
    ResultsError,
    atomic_write,
    check_writable_file,
    read_manifest,
    read_parquet,
)
from gtmsim.scenario import ScenarioError, scenario_from_dict

REPORT = "report.html"
CHARTS_DIR = "charts"
OUTCOME = {o.name: o for o in OUTCOMES}


class ReportError(Exception):
    """The folder is not a results folder gtmsim can report on."""


@dataclass
class Results:
    """What a report needs from a results folder of `run`, `compare` or `sweep`."""

    kind: str
    manifest: dict[str, Any]
    runs: pd.DataFrame
    experiment: Experiment | None
    months: int

    @property
    def arms(self) -> list[str]:
        return charts.scenarios(self.display_runs)

    @property
    def display_runs(self) -> pd.DataFrame:
        """Runs with `scenario` naming each arm (sweep grid points get their own name)."""
        if self.kind != "sweep" or self.experiment is None:
            return self.runs
        return self.runs.assign(scenario=arm_names(self.runs, self.experiment.keys))


def arm_names(frame: pd.DataFrame, keys: tuple[str, ...] | list[str]) -> pd.Series:
    """A readable name per row of a sweep: its grid point, e.g. "sales.reps=6"."""
    values = frame[list(keys)].astype(str)
    return values.apply(lambda r: ", ".join(f"{k}={v}" for k, v in zip(keys, r, strict=True)), axis=1)


def load_results(folder: str | Path) -> Results:
    """Read a results folder written by `gtmsim run`, `compare` or `sweep`.

    Raises:
        ReportError: not a results folder, or a file in it is missing, truncated or
            malformed (the message names the file).
        ScenarioError: a scenario recorded in the manifest is invalid.
    """
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise ReportError(f"{folder}: not a results folder (no {MANIFEST})")
    try:
        manifest = read_manifest(folder)
        kind = manifest.get("kind")
        if kind == "run":
            if not (folder / MONTHLY).is_file():
                raise ReportError(f"{folder}: {MONTHLY} is missing")
            months = manifest.get("months")
            if not isinstance(months, int) or isinstance(months, bool):
                raise ReportError(f"{folder / MANIFEST}: malformed (months: expected a whole "
                                  f"number, got {months!r})")
            runs = read_parquet(folder / MONTHLY, ["scenario", "seed", "month"])
            return Results(kind, manifest, runs, None, months)
        if kind in ("compare", "sweep"):
            if not (folder / RUNS).is_file():
                raise ReportError(f"{folder}: {RUNS} is missing; finish the experiment "
                                  "with --resume")
            exp = read_experiment(folder)
            return Results(kind, manifest, exp.runs, exp, int(runs_months(exp.runs)))
    except ResultsError as exc:
        raise ReportError(str(exc)) from None
    raise ReportError(f"{folder}: unknown kind of results {kind!r} in {MANIFEST}")


def runs_months(runs: pd.DataFrame) -> int:
    return int(runs["month"].max())


# --------------------------------------------------------------------------- numbers


def money(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "–"
    return charts.short_money(v)


def fmt(outcome: str, v: float, *, difference: bool = False) -> str:
    """A figure in its unit; differences of fractions are in percentage points."""
    if v is None or not math.isfinite(v):
        return "–"
    unit = OUTCOME[outcome].unit if outcome in OUTCOME else ""
    if unit.startswith("$"):
        return money(v)
    if unit == "fraction":
        return f"{100 * v:+.1f} pp" if difference else f"{v:.1%}"
    if unit == "days":
        return f"{v:.1f} days"
    if unit == "month":
        return f"month {v:.1f}" if not difference else f"{v:+.1f} months"
    return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"


def summary_table(res: Results) -> pd.DataFrame:
    """Per arm and outcome: mean and interval, and the paired difference from the first arm.

    For a single run there is one replication: the means are the run's figures and the
    intervals are empty.
    """
    if res.experiment is not None:
        s = res.experiment.summary()
        if res.kind == "sweep":
            s = s.assign(scenario=arm_names(s, res.experiment.keys))
        return s
    run = res.runs.sort_values("month")
    rows = [{"scenario": run["scenario"].iloc[0], "outcome": o.name, "n": 1, "mean": o.reduce(run),
             "ci_low": float("nan"), "ci_high": float("nan"), "diff": float("nan"),
             "diff_ci_low": float("nan"), "diff_ci_high": float("nan"),
             "diff_pct": float("nan"), "ahead": float("nan"), "reps": 1} for o in OUTCOMES]
    for row in rows:
        row["n"] = int(math.isfinite(row["mean"]))
    return pd.DataFrame(rows)


def reps_warning(res: Results, table: pd.DataFrame) -> str | None:
    """The too-few-replications warning of a compare or sweep (a single run says so itself)."""
    if res.kind == "run":
        return None
    return few_reps_warning(int(table["reps"].min()) if "reps" in table else 0)


def headline(res: Results, table: pd.DataFrame) -> str:
    """One sentence for the board, generated from the summary: every option against the
    reference in $ with its paired 95% interval and whether it covers its extra cost (a
    single run: its bookings, customers, win rate, CAC and net)."""
    books = table[table["outcome"] == "cumulative_bookings"].reset_index(drop=True)
    months = res.months
    if len(books) == 1 or res.kind == "run":
        r = books.iloc[0]
        kpi = table.set_index("outcome")["mean"]
        name = decision.arms(res)[0].label
        return (f"{name} books {money(r['mean'])} over {months} months: "
                f"{kpi['customers']:,.0f} customers, a {kpi['win_rate']:.0%} win rate and a CAC of "
                f"{money(kpi['cac'])}; net of its {money(kpi['total_cost'])} cost, "
                f"{money(kpi['net_bookings'])} net bookings "
                f"(one run, seed {res.manifest.get('seed')}).")
    return decision.headline(res, table)


def _minus(text: str) -> str:
    """A typographic minus (U+2212) before a figure, as money already has."""
    return re.sub(r"(?<!\w)-(?=\d)", "\u2212", text)


def kpi_rows(res: Results, table: pd.DataFrame) -> list[list[str]]:
    rows = []
    first = table["scenario"].iloc[0]
    names = decision.labels(res)
    for o in OUTCOMES:
        part = table[table["outcome"] == o.name]
        for _, r in part.iterrows():
            interval = (f"{fmt(o.name, r['ci_low'])} to {fmt(o.name, r['ci_high'])}"
                        if math.isfinite(r["ci_low"]) else "–")
            mean = (not_within_run(int(r["n"]), int(r["reps"]))
                    if o.censored and r["n"] < r["reps"] else fmt(o.name, r["mean"]))
            if o.censored and res.kind == "run" and not r["n"]:
                mean = "not within the run"
            if r["scenario"] == first or not math.isfinite(r["diff"]):
                diff = pct = ahead = "–"
            else:  # the difference and its interval in the figure's unit; % beside them
                low, high = (fmt(o.name, r[c], difference=True) for c in ("diff_ci_low", "diff_ci_high"))
                change = fmt(o.name, r["diff"], difference=True)
                if OUTCOME[o.name].unit.startswith("$") and r["diff"] > 0:
                    change = "+" + change
                diff = f"{change} ({low} to {high})".replace("-", "\u2212")
                pct = (f"{r['diff_pct']:+.0f}%".replace("-", "\u2212")
                       if math.isfinite(r["diff_pct"]) else "–")
                ahead = f"{r['ahead']:.0%}"
            rows.append([o.label, names.get(str(r["scenario"]), str(r["scenario"])),
                         _minus(mean), _minus(interval), diff, pct, ahead])
    return rows


def differing_parameters(res: Results) -> pd.DataFrame:
    """Scenario keys (and resolved levers) whose values differ between the arms."""
    if res.kind == "run":
        return pd.DataFrame()
    if res.kind == "sweep":
        keys = list(res.experiment.keys)
        return res.display_runs.drop_duplicates("scenario").set_index("scenario")[keys].T
    flat: dict[str, dict[str, Any]] = {}
    for data in res.manifest.get("scenarios", []):
        name = data.get("name", "?")
        row = _flatten({k: v for k, v in data.items() if k not in ("name", "question")})
        try:
            levers = vars(scenario_from_dict(data).levers)
            row |= {f"levers in force: {k}": v for k, v in levers.items()}
        except ScenarioError:
            pass
        flat[name] = row
    frame = pd.DataFrame(flat)
    same = frame.astype(str).nunique(axis=1) <= 1
    return frame[~same]


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out |= _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return {prefix: data}


# --------------------------------------------------------------------------- the page


def _png(fig: plt.Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


_SIGNED_AMOUNT = re.compile(r"[+\u2212-]\$[0-9.,]+[kMB]?")


def _glued(text: str) -> str:
    """Escaped text in which a sign never ends a line apart from its amount ("−$299k")."""
    return _SIGNED_AMOUNT.sub(lambda m: f'<span class="nb">{m[0]}</span>', html.escape(text))


def _cell(text: Any) -> str:
    """A cell; "figure (low to high)" puts the interval on a second, smaller line."""
    text = str(text)
    m = re.fullmatch(r"(\S+) \((.+ to .+)\)", text)
    if m:
        return f'{html.escape(m[1])}<br><span class="ci">{html.escape(m[2])}</span>'
    return html.escape(text)


def _table_html(header: list[str], rows: list[list[str]], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.5em;margin-bottom:.2em} .headline{font-size:1.35em;font-weight:600;margin:.6em 0 1.2em;
padding:.8em 1em;background:#f3f6fa;border-left:5px solid #1f77b4}
table{border-collapse:collapse;margin:1em 0;font-size:.92em} th,td{padding:.35em .7em;
border-bottom:1px solid #ddd;text-align:right} th{background:#fafafa} td:first-child,th:first-child,
td:nth-child(2){text-align:left} img{width:100%;height:auto;margin:.5em 0 1.5em}
.warning{padding:.7em 1em;margin:0 0 1em;background:#fff4e5;border:1px solid #f0a030;
border-left:5px solid #e07b00;color:#5a3200}
.method{font-size:.9em;color:#444} code{background:#f4f4f4;padding:0 .2em}
.subtitle{color:#555;margin-top:0} .note{font-size:.9em;color:#333}
table.options{font-size:.85em} table.options td:nth-child(2){text-align:right}
figure{margin:0 0 1.5em} figure img{margin:.5em 0 .2em} figcaption{font-size:.95em;color:#333}
.ci{font-size:.85em;color:#555;white-space:nowrap} figure.key img{width:78%}
.nb{white-space:nowrap} code.seeds{font-size:.85em} table.kpi td:nth-child(-n+2){white-space:nowrap}
@media print{body{font-size:9.5pt;max-width:none;margin:0} h1{font-size:15pt}
h2{font-size:12pt;margin:.6em 0 .3em} .headline{font-size:11.5pt;padding:.5em .8em;margin:.4em 0 .6em}
.summary{page-break-after:always} .summary figure.key img{width:58%} table.options{font-size:7.5pt}
.summary ul{margin:.2em 0} figure{page-break-inside:avoid} @page{margin:12mm}}
"""


_CHART_FILE = re.compile(r"\d\d_[^/]+\.png")


def _check_chart_dir(chart_dir: Path, names: re.Pattern[str] = _CHART_FILE) -> None:
    """The charts folder beside a report is gtmsim's: refuse one that is a file, a link or
    holds files gtmsim did not name (`names`; it would overwrite or mix with them)."""
    if chart_dir.is_symlink() or (chart_dir.exists() and not chart_dir.is_dir()):
        raise ReportError(f"{chart_dir}: exists and is not a folder; the report writes its "
                          "charts there, move it or write the report elsewhere (-o)")
    if chart_dir.is_dir():
        other = sorted(p.name for p in chart_dir.iterdir()
                       if not names.fullmatch(p.name)
                       and not (p.name.startswith(".") and p.name.endswith(".tmp")))
        if other:
            raise ReportError(f"{chart_dir}: holds files that are not gtmsim charts "
                              f"({', '.join(other[:3])}{', …' if len(other) > 3 else ''}); "
                              "move them or write the report elsewhere (-o)")


def build_report(folder: str | Path, out: str | Path | None = None, *, dpi: int = 100) -> Path:
    """Write the HTML report of a results folder and the charts as 16:9 PNGs beside it.

    Args:
        folder: a results folder of `run`, `compare` or `sweep`.
        out: the HTML file (default: `folder/report.html`).
        dpi: resolution of the charts (16:9 at 13.33 × 7.5 inches).

    Returns:
        The path of the HTML file.

    Raises:
        ReportError: `folder` is not a readable results folder, or `out` is not a
            regular file (a link given as `out` is written through to its target; links
            inside the folder are refused), or a file cannot be written.
    """
    # A link the user names as `out` is written through; links inside the folder are refused.
    follow = out is not None
    out = Path(out) if out is not None else Path(folder) / REPORT
    try:
        check_writable_file(out, follow_links=follow)  # before any work or charts/ beside it
    except ResultsError as exc:
        raise ReportError(str(exc)) from None
    chart_dir = out.parent / CHARTS_DIR
    _check_chart_dir(chart_dir)
    res = load_results(folder)
    table = summary_table(res)
    levers = list(res.experiment.keys) if res.kind == "sweep" else []
    figures = charts.all_charts(decision.labelled_runs(res), sweep_levers=levers,
                                sweep_runs=res.runs)
    images = []
    names = [f"{i:02d}_{name}.png" for i, name in enumerate(figures, start=1)]
    try:
        for file, (name, fig) in zip(names, figures.items(), strict=True):
            data = _png(fig, dpi)
            atomic_write(chart_dir / file, lambda tmp, d=data: tmp.write_bytes(d))
            images.append((name, base64.b64encode(data).decode("ascii")))
    except ResultsError as exc:
        raise ReportError(str(exc)) from None
    finally:
        for fig in figures.values():
            plt.close(fig)
    for old in chart_dir.glob("[0-9][0-9]_*.png"):  # charts of an earlier report, now gone
        if old.name not in names:
            old.unlink()

    page = _page(res, table, images)
    try:
        atomic_write(out, lambda tmp: tmp.write_text(page, encoding="utf-8"),
                     follow_links=follow)
    except ResultsError as exc:
        raise ReportError(str(exc)) from None
    return out


def title_of(res: Results) -> str:
    """The report's title: the arms' labels, the reference first ("Siloed vs Aligned")."""
    found = decision.arms(res)
    if res.kind == "sweep":
        m = res.manifest.get("scenarios", [{}])[0]
        keys = ", ".join(decision.setting_words(k) for k in res.experiment.keys)
        return f"{decision.label_of(m)}: sweep of {keys}"
    return " vs ".join(a.label for a in found)


def subtitle_of(res: Results) -> str:
    kind = {"run": "One run", "compare": "Comparison", "sweep": "Sweep"}[res.kind]
    reps = res.manifest.get("reps")
    over = f" over {res.months} months"
    if res.kind == "run":
        return f"{kind}{over}, seed {res.manifest.get('seed')}"
    return f"{kind}{over}, {reps} replications per scenario on common random numbers"


def _page(res: Results, table: pd.DataFrame, images: list[tuple[str, str]]) -> str:
    """The HTML page: a one-page summary, then the details, then method and seeds."""
    title = title_of(res)
    takeaways = decision.chart_takeaways(res, table)
    img = dict(images)
    parts = ['<section class="summary">',
             f"<h1>{html.escape(title)}</h1>",
             f'<p class="subtitle">{html.escape(subtitle_of(res))}</p>',
             f'<p class="headline">{_glued(headline(res, table))}</p>']
    warning = reps_warning(res, table)
    if warning:
        parts.append(f'<p class="warning" role="alert"><strong>Warning:</strong> '
                     f'{html.escape(warning)}</p>')
    asked = decision.questions(res)
    if asked:
        parts.append('<h2>The questions</h2><ul class="questions">' + "".join(
            f"<li><strong>{html.escape(label)}</strong>: {html.escape(q)}</li>"
            for label, q in asked) + "</ul>")
    if res.kind != "run":
        ref = decision.arms(res)[0].label
        parts.append(f"<h2>The options against {html.escape(ref)}</h2>")
        parts.append(_table_html(list(decision.OPTION_HEADER),
                                 decision.option_rows(decision.options(res, table)),
                                 css="options"))
        parts.append('<p class="note">Differences are each option minus '
                     f'{html.escape(ref)}, replication by replication; net bookings are '
                     'bookings − total cost (marketing, sales and alignment work); an option '
                     '"covers its extra cost" when the interval of its net difference lies '
                     'above zero.</p>')
        if "bookings_difference" in img:
            parts.append(_figure("bookings_difference", img["bookings_difference"],
                                 takeaways.get("bookings_difference"), css="key"))
        parts.append(f'<p class="note"><strong>What the intervals cover.</strong> '
                     f"{html.escape(decision.interval_note(res))}</p>")
    parts.append("</section>")
    if res.kind == "run":  # one replication: no interval and nothing to differ from
        parts += ["<h2>Key figures</h2>",
                  _table_html(["Outcome", "Value"], [[r[0], r[2]] for r in kpi_rows(res, table)],
                              css="kpi")]
    else:
        parts += ["<h2>Key figures</h2>",
                  _table_html(["Outcome", "Scenario", "Mean", "95% CI of the mean",
                               f"Difference from {decision.arms(res)[0].label} (paired 95% CI)",
                               "Difference %", "Ahead in"],
                              kpi_rows(res, table), css="kpi")]
    parts.append("<h2>Charts</h2>")
    parts += [_figure(name, b64, takeaways.get(name)) for name, b64 in images
              if name != "bookings_difference"]
    said = decision.setting_differences(res)
    if said:
        parts.append("<h2>What differs between the scenarios</h2>")
        for label, lines in said:
            parts.append(f"<p><strong>{html.escape(label)}</strong></p><ul>"
                         + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>")
    parts.append("<h2>Method and seeds</h2>" + _method(res))
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>gtmsim: {html.escape(title)}</title><style>{CSS}</style>"
            f"</head><body>{''.join(parts)}</body></html>\n")


def _figure(name: str, b64: str, caption: str | None, css: str = "") -> str:
    cap = f"<figcaption>{_glued(caption)}</figcaption>" if caption else ""
    cls = f' class="{css}"' if css else ""
    return (f'<figure{cls}><img alt="{html.escape(name)}" src="data:image/png;base64,{b64}">'
            f"{cap}</figure>")


def _method(res: Results) -> str:
    m = res.manifest
    versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())
    command = " ".join(m.get("command", []))
    if res.kind == "run":
        lines = [f"One run of {res.months} months on seed {m.get('seed')}. A single run is one "
                 "possible history; use <code>gtmsim compare</code> for intervals."]
    else:
        seeds = m.get("seeds", [])
        shown = ", ".join(map(str, seeds[:3])) + (", …" if len(seeds) > 3 else "")
        lines = [f"{m.get('reps')} replications per scenario over {res.months} months, on "
                 f"replication seeds spawned from base seed {m.get('seed')} with NumPy's "
                 f"SeedSequence ({shown}).",
                 "Common random numbers: replication r of every scenario runs on the same seed, "
                 "so it sees the same market and the same random streams; differences are "
                 "paired by replication and their intervals are paired-t 95% intervals "
                 "(Law, Simulation Modeling and Analysis). Scenario intervals are t intervals "
                 "over replications. Every interval and every band in the charts is a 95% "
                 "confidence interval of the mean, so a band and a table say the same.",
                 "Scenario intervals are clipped to each figure's range (rates to 0–100%, "
                 "money and counts to ≥ 0).",
                 "Total cost is marketing spend + sales cost + the alignment work's cost "
                 "(alignment.cost_monthly and cost_once), summed over the run; net bookings "
                 "are bookings − total cost; ROI is net bookings / total cost; the payback "
                 "month is the first month whose cumulative bookings cover the cumulative "
                 "cost, and when some replications do not get there within the run it "
                 "shows how many did (no mean is given, since it would leave them out). "
                 "CAC is total cost / wins over the run; the CAC chart's \"CAC recovered in "
                 "N months of a deal\" is CAC divided by the monthly value of the average "
                 "won deal (not the payback month of the tables)."]
        lines.append("Replication seeds (replication r of every scenario ran on the r-th): "
                     f"<code class=\"seeds\">{html.escape(', '.join(map(str, seeds)))}</code>")
    lines += [f"Versions: {html.escape(versions)}.", f"Command: <code>{html.escape(command)}</code>",
              f"Created {html.escape(str(m.get('created', '')))}."]
    return '<div class="method">' + "".join(f"<p>{line}</p>" for line in lines) + "</div>"
