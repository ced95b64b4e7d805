"""The `gtmsim` command line: argument parsing and printing only.

Every command calls a Python function a notebook can call too. Exit codes: 0 success,
2 bad input (scenario, option or folder), 1 unexpected failure.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from gtmsim.docs import tagged_assumptions
from gtmsim.metrics import FUNNEL_COLUMNS, METRICS
from gtmsim.results import (
    MANIFEST,
    MONTHLY,
    STOP_SIGNALS,
    ResultsError,
    folder_kind,
    identified,
    safe_name,
    write_run,
)
from gtmsim.scenario import (
    ScenarioError,
    check_files,
    load_scenario,
    question_of,
    shipped_scenarios,
)

if TYPE_CHECKING:
    import pandas as pd

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


# `--help`, `check` and `scenarios` start without the model (Mesa), Dask, SciPy or
# matplotlib: those load on first use, by the commands that need them.
class _LazyModule:
    """A module imported on first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


exp: Any = _LazyModule("gtmsim.experiment")


def simulate(*args: Any, **kwargs: Any) -> Any:
    """`gtmsim.model.simulate`, imported on first call."""
    from gtmsim.model import simulate as simulate_

    return simulate_(*args, **kwargs)


def _workers_start_early(command: Callable[..., None]) -> Callable[..., None]:
    """A command that may run on local workers starts their fork server first (`gtmsim.pool`),
    so that it loads gtmsim on another core while the command loads its own libraries and
    reads its inputs. A command that fails or is interrupted ends the server with it."""
    import functools

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        from gtmsim import pool

        pool.start_early(kwargs.get("workers"), kwargs.get("scheduler"))
        try:
            command(*args, **kwargs)
        except BaseException:
            pool.stop_early_server()
            raise

    return wrapper


def build_report(*args: Any, **kwargs: Any) -> Path:
    """`gtmsim.report.build_report` (matplotlib), imported on first call."""
    from gtmsim.report import build_report as build_report_

    return build_report_(*args, **kwargs)


def _domain_errors() -> tuple[type[Exception], ...]:
    """The error types of the experiment and report modules that are loaded (one that is
    not loaded cannot have raised)."""
    found = []
    for module, name in (("gtmsim.experiment", "ExperimentError"),
                         ("gtmsim.report", "ReportError"),
                         ("gtmsim.calibration", "CalibrationError"),
                         ("gtmsim.forecasting", "ForecastError")):
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)

# Scripts and CI read the output through a pipe: give tables room instead of 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class _PathOption(click.Path):
    """click.Path that refuses an empty value (click would read `''` as the current folder)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path; give a folder or file name", param, ctx)
        return super().convert(value, param, ctx)


def _fmt(name: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    unit = METRICS[name].unit
    if unit == "$" or unit.startswith("$/"):
        return f"${value:,.0f}"
    if unit == "fraction":
        return f"{value:.0%}"
    if METRICS[name].kind == "time":
        return f"{value:.1f}"
    return f"{value:,.0f}"


def _funnel_header(name: str) -> str:
    """A column header: the label, with the unit where a number could mean two things."""
    m = METRICS[name]
    if m.kind == "money":
        return f"{m.label} ($)"
    if m.kind == "time":
        return f"{m.label} ({m.unit})"
    return m.label


def _funnel_widths(monthly: pd.DataFrame, name: str) -> tuple[int, int]:
    """The narrowest and the widest a column needs: its widest number and its longest
    header word, or the whole header on one line."""
    header = _funnel_header(name)
    cells = max(len(_fmt(name, v)) for v in monthly[name]) if len(monthly) else 0
    return max(cells, *(len(w) for w in header.split())), max(cells, len(header))


def funnel_table(monthly: pd.DataFrame, title: str = "",
                 columns: Sequence[str] = FUNNEL_COLUMNS,
                 widths: Sequence[int] | None = None) -> Table:
    """The readable monthly funnel table the CLI prints: `columns` at `widths` (default:
    headers on one line). A column is never narrower than its widest number."""
    table = Table(title=title or None, title_justify="left", header_style="bold")
    widths = widths or [_funnel_widths(monthly, n)[1] for n in columns]
    for name, width in zip(columns, widths):
        table.add_column(_funnel_header(name), justify="right", width=width, overflow="fold")
    for _, row in monthly.iterrows():
        table.add_row(*(_fmt(n, row[n]) for n in columns))
    return table


def funnel_tables(monthly: pd.DataFrame, width: int) -> list[Table]:
    """The funnel split into tables that fit `width` columns, each led by the month, so
    that no number is ever cut: as many columns as fit, in order, then the next table.
    Headers wrap onto more lines only where a table has no room for them on one."""
    def total(widths: Sequence[int]) -> int:
        return sum(w + 3 for w in widths) + 1  # padding 1 + 1 and a rule per column, one edge

    need = {n: _funnel_widths(monthly, n) for n in FUNNEL_COLUMNS}
    first, rest = FUNNEL_COLUMNS[0], FUNNEL_COLUMNS[1:]
    groups: list[list[str]] = [[first]]
    for name in rest:
        if len(groups[-1]) > 1 and total([need[n][0] for n in [*groups[-1], name]]) > width:
            groups.append([first])
        groups[-1].append(name)
    tables = []
    for group in groups:
        widths = [need[n][0] for n in group]
        for i, name in enumerate(group):  # widen headers to one line while there is room
            wider = [*widths[:i], need[name][1], *widths[i + 1:]]
            if total(wider) <= width:
                widths = wider
        tables.append(funnel_table(monthly, columns=group, widths=widths))
    return tables


def print_funnel(console: Console, monthly: pd.DataFrame) -> None:
    """Print the funnel on `console`: boxed tables that fit a terminal's width, or for a
    pipe or file a plain tab-separated table (one header line, one line a month)."""
    if console.is_terminal:
        for table in funnel_tables(monthly, console.width):
            console.print(table)
        return
    lines = ["\t".join(_funnel_header(n) for n in FUNNEL_COLUMNS)]
    lines += ["\t".join(_fmt(n, row[n]) for n in FUNNEL_COLUMNS) for _, row in monthly.iterrows()]
    console.file.write("\n".join(lines) + "\n")


def _print_title(console: Console, name: str, question: str) -> None:
    """The scenario's name and question, printed as written (never read as rich markup)."""
    console.print(f"[bold]{escape(name)}[/bold]: {escape(question)}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gtmsim")
def app() -> None:
    """gtmsim: a go-to-market simulator. Marketing and sales agents on a prospect
    market, siloed or aligned, over months."""


@app.command()
@click.argument("scenario", default="baseline")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key, e.g. --set sales.reps=6 (repeatable).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Seed (default: the scenario's).")
@click.option("--months", type=click.IntRange(1, 600), help="Months to simulate.")
@click.option("--out", "out_dir", type=_PathOption(file_okay=False, path_type=Path),
              help="Results folder (default: results/<scenario>); a new or empty folder, or "
                   "a previous run's, which is replaced.")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no table; print the folder.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of the table.")
@click.option("--csv", "as_csv", is_flag=True,
              help="Print the monthly table (every column of monthly.parquet) as CSV.")
@click.option("--yes", is_flag=True, help="Start even when the run is estimated at over 30 minutes.")
def run(scenario: str, overrides: tuple[str, ...], seed: int | None, months: int | None,
        out_dir: Path | None, quiet: bool, as_json: bool, as_csv: bool, yes: bool) -> None:
    """Run SCENARIO (a file or a shipped name; default: baseline) and write its results.

    On a terminal the funnel prints as tables that fit its width; through a pipe or into
    a file, as one tab-separated table."""
    if sum((quiet, as_json, as_csv)) > 1:
        raise click.UsageError("--quiet, --json and --csv exclude each other; give one")
    sc = load_scenario(scenario, overrides)
    months = months or sc.months
    for line in sc.horizon_warnings(months):
        err.print(f"warning: {sc.name}: {line}", markup=False)
    seconds = exp.estimate_run_seconds(sc, months)
    if seconds > exp.LONG_WORK_S and not yes:
        raise exp.ExperimentError(f"this is a long run: about {exp.duration(seconds)}; "
                                  "add --yes to start anyway")
    if seconds > exp.NOTICE_WORK_S:
        err.print(f"gtmsim: this will take a while: about {exp.duration(seconds)} "
                  "(an estimate)", markup=False)
    folder = out_dir or Path("results") / safe_name(sc.name)
    kind = folder_kind(folder)
    if kind not in (None, "run"):
        raise click.UsageError(f"{folder} holds other results ({kind} {MANIFEST}); "
                               "choose another --out")
    _check_writable(folder)
    show_progress = not quiet and not as_json and not as_csv and err.is_terminal
    with _progress_bar(show_progress, "months") as progress:
        task = progress.add_task(f"Simulating {escape(sc.name)}", total=months)
        result = simulate(sc, seed=seed, months=months,
                          on_month=lambda done, total: progress.update(task, completed=done))
    write_run(result, folder, command=_canonical_command())
    last = result.monthly.iloc[-1]
    if as_json:
        summary = {
            "scenario": sc.name, "seed": result.seed, "months": months,
            "folder": str(folder), "files": [str(folder / MONTHLY), str(folder / MANIFEST)],
            "elapsed_s": round(result.elapsed_s, 3),
            "final": {k: (None if isinstance(v, float) and math.isnan(v) else v)
                      for k, v in last.to_dict().items()},
        }
        click.echo(json.dumps(summary, default=float))
        return
    if as_csv:
        click.echo(identified(result).to_csv(index=False), nl=False)
        return
    if quiet:
        click.echo(str(folder))
        return
    if sc.question:
        _print_title(out, sc.name, sc.question)
    print_funnel(out, result.monthly)
    out.print(
        f"{months} months, seed {result.seed}, {sc.market.prospects:,} prospects, "
        f"{result.elapsed_s:.2f} s. Cumulative bookings {_fmt('bookings', last.cumulative_bookings)}, "
        f"{int(last.customers):,} customers.", markup=False
    )
    out.print(f"Results: {folder / MONTHLY} and {folder / MANIFEST}", markup=False)


@app.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--quiet", "-q", is_flag=True, help="Print only problems.")
def check(files: tuple[str, ...], quiet: bool) -> None:
    """Validate scenario FILES without running them (exit 0 valid, 2 invalid)."""
    report = check_files(files)
    bad = False
    for name, problems in report.items():
        if problems:
            bad = True
            for line in problems:
                err.print(line, markup=False)
        elif not quiet:
            out.print(f"{name}: valid", markup=False)
    if bad:
        raise SystemExit(EXIT_BAD_INPUT)


@app.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def scenarios(as_json: bool) -> None:
    """List the shipped scenarios and the question each one asks."""
    rows = {name: question_of(path) for name, path in shipped_scenarios().items()}
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(header_style="bold")
    table.add_column("scenario")
    table.add_column("question")
    for name, q in rows.items():
        table.add_row(escape(name), escape(q))
    out.print(table)


# --------------------------------------------------------------------------- experiments


class _RateColumn(ProgressColumn):
    """Runs per second, averaged over rich's recent samples."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} runs/s" if speed else "", style="progress.data.speed")


def _progress_bar(show: bool, unit: str | None = None, *, rate: bool = False) -> Progress:
    """The commands' transient progress bar on stderr: description, bar, done/total, the unit
    (`unit`, or each task's `unit` field when None), runs per second with `rate`, time left."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn(unit or "{task.fields[unit]}"), *([_RateColumn()] if rate else []),
                    TimeRemainingColumn(), console=err, disable=not show, transient=True)


class _CountingTask:
    """A `progress(completed, total)` callback whose bar in `progress` is added at the first
    report, when the total is known; `done` is the last count reported."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress, self.label, self.done = progress, label, 0
        self.task: TaskID | None = None

    def __call__(self, completed: int, total: int) -> None:
        self.done = completed
        if self.task is None:
            self.task = self.progress.add_task(escape(self.label), total=total,
                                               completed=completed)
        self.progress.update(self.task, completed=completed)


@contextlib.contextmanager
def _interruptible(progress: Progress, kept: Callable[[], str]) -> Iterator[None]:
    """Ctrl-C, SIGTERM or SIGHUP inside: the bar stopped, `Interrupted by SIG…: <kept()>.`
    on stderr and exit 128 + the signal's number, with no traceback."""
    try:
        yield
    except KeyboardInterrupt as exc:
        progress.stop()
        signum = getattr(exc, "signum", signal.SIGINT)
        err.print(f"Interrupted by {signal.Signals(signum).name}: {kept()}.", markup=False)
        raise SystemExit(128 + signum) from None


@contextlib.contextmanager
def _stored_run_warnings() -> Iterator[None]:
    """Warnings inside printed as `_show_stored_run_warning` does; as before afterwards."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_stored_run_warning(warnings.showwarning)
        yield


def _runs_kept(done: int, folder: Path) -> str:
    """What an interrupted experiment or analysis leaves: its finished runs, resumable."""
    if not done:
        return "no run had finished"
    runs = "1 finished run is" if done == 1 else f"{done} finished runs are"
    return f"{runs} kept in {folder}; run the same command with --resume to continue"


def _experiment_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options `compare` and `sweep` share."""
    options = [
        click.option("--reps", type=click.IntRange(min=1), default=10, show_default=True,
                     help="Replications per scenario (or per grid point)."),
        click.option("--seed", type=click.IntRange(0, 2**63 - 1),
                     help="Base seed the replication seeds are spawned from "
                          "(default: the first scenario's)."),
        click.option("--months", type=click.IntRange(1, 600), help="Months to simulate."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a key in every scenario, e.g. --set sales.reps=6 "
                          "(repeatable)."),
        click.option("--workers", type=click.IntRange(min=1),
                     help="Local worker processes (default: all cores; 1 runs in-process)."),
        click.option("--scheduler", metavar="ADDRESS",
                     help="Run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786."),
        click.option("--out", "out_dir", type=_PathOption(file_okay=False, path_type=Path),
                     help="Results folder (default: results/<compare|sweep>-<names>); a new "
                          "or empty folder, or one of gtmsim's."),
        click.option("--resume", is_flag=True,
                     help="Continue the same experiment in --out, skipping finished runs "
                          "(checked first); with more --reps, run only the new replications."),
        click.option("--force", is_flag=True,
                     help="Replace the results in --out (a gtmsim results folder) with this "
                          "experiment's."),
        click.option("--quiet", "-q", is_flag=True,
                     help="No progress and no table; print the folder."),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
        click.option("--report", "with_report", is_flag=True,
                     help="Also write the leadership report (report.html and charts/) in --out."),
        click.option("--yes", is_flag=True,
                     help="Start even when the work is estimated at over 30 minutes."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _canonical_command() -> list[str]:
    """The current command with every option spelled out, for the manifest."""
    ctx = click.get_current_context()
    words = ["gtmsim", ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if isinstance(param, click.Argument):
            words += [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
        elif value not in (None, False, ()) and param.name not in ("quiet", "as_json"):
            flag = max(param.opts, key=len)
            if param.is_flag:
                words.append(flag)
            elif isinstance(value, tuple):
                for v in value:
                    words += [flag, str(v)]
            else:
                words += [flag, str(value)]
    return words


def _fmt_outcome(unit: str, value: float, *, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "–"
    sign = "-" if value < 0 else ("+" if signed else "")
    v = abs(value)
    if unit == "$" or unit.startswith("$/"):
        return f"{sign}${v:,.0f}"
    if unit == "fraction":
        return f"{sign}{v * 100:.1f} pp" if signed else f"{sign}{v:.1%}"
    if unit == "days":
        return f"{sign}{v:.2f}"
    return f"{sign}{v:,.1f}"


def _mean_cell(o: exp.Outcome, r: pd.Series) -> str:
    """The mean of an outcome; a censored one (payback) says when some runs have none."""
    if o.censored and r["n"] < r["reps"]:
        return exp.not_within_run(int(r["n"]), int(r["reps"]))
    return _fmt_outcome(o.unit, r["mean"])


def _interval(unit: str, low: float, high: float, *, signed: bool = False) -> str:
    if math.isnan(low) or math.isnan(high):
        return "–"
    return f"{_fmt_outcome(unit, low, signed=signed)} to {_fmt_outcome(unit, high, signed=signed)}"


def compare_table(summary: pd.DataFrame) -> Table:
    """Means and paired differences from the first scenario, one block per outcome."""
    ref = summary["scenario"].iloc[0]
    table = Table(header_style="bold", title_justify="left",
                  title="Means with 95% t intervals (clipped to each outcome's range); "
                        "differences from the first scenario, paired by replication "
                        "(common random numbers)")
    for header in ("Outcome", "Scenario", "Mean", "95% CI", f"Δ vs {escape(str(ref))}", "95% CI of Δ",
                   "Δ %", "Ahead"):
        table.add_column(header, justify="left" if header in ("Outcome", "Scenario") else "right")
    for o in exp.OUTCOMES:
        rows = summary[summary["outcome"] == o.name]
        for i, (_, r) in enumerate(rows.iterrows()):
            first = r["scenario"] == ref
            table.add_row(
                o.label if i == 0 else "", escape(str(r["scenario"])),
                _mean_cell(o, r), _interval(o.unit, r["ci_low"], r["ci_high"]),
                "" if first else _fmt_outcome(o.unit, r["diff"], signed=True),
                "" if first else _interval(o.unit, r["diff_ci_low"], r["diff_ci_high"],
                                           signed=True),
                "" if first or math.isnan(r["diff_pct"]) else f"{r['diff_pct']:+.1f}%",
                "" if first or math.isnan(r["ahead"]) else f"{r['ahead']:.0%}",
                end_section=i == len(rows) - 1,
            )
    return table


def sweep_table(summary: pd.DataFrame, keys: Sequence[str]) -> Table:
    """One row per grid point: each outcome's mean and 95% t interval."""
    table = Table(header_style="bold", title_justify="left",
                  title="Means with 95% t intervals (clipped to each outcome's range) "
                        "per grid point")
    for key in keys:
        table.add_column(escape(key), justify="right")
    for o in exp.OUTCOMES:
        unit = "" if o.unit in ("fraction",) else f"\n({o.unit})"
        table.add_column(f"{o.label}{unit}", justify="right")
    points = summary.drop_duplicates(subset=list(keys))[list(keys)]
    for _, point in points.iterrows():
        rows = summary.merge(point.to_frame().T.astype(summary[list(keys)].dtypes), on=list(keys))
        cells = []
        for o in exp.OUTCOMES:
            r = rows[rows["outcome"] == o.name].iloc[0]
            cells.append(f"{escape(_mean_cell(o, r))}\n"
                         f"[dim]{_interval(o.unit, r['ci_low'], r['ci_high'])}[/dim]")
        table.add_row(*(escape(str(point[k])) for k in keys), *cells)
    return table


def _plain_cells(column: Any) -> list[str]:
    """A rich table column's cells as plain text (markup removed), lines kept."""
    return [Text.from_markup(c).plain if isinstance(c, str) else str(c) for c in column._cells]


def print_split(console: Console, table: Table, keys: int) -> None:
    """Print `table` so that no number is cut: on a terminal, as several tables that fit its
    width, each led by the first `keys` columns; through a pipe or into a file, as one plain
    tab-separated table (a cell's lines joined by a space)."""
    headers = [str(c.header) for c in table.columns]
    cells = [_plain_cells(c) for c in table.columns]
    if not console.is_terminal:
        if table.title:
            console.file.write(f"{table.title}\n")
        lines = ["\t".join(headers)]
        lines += ["\t".join(col[r].replace("\n", " ") for col in cells)
                  for r in range(len(cells[0]) if cells else 0)]
        console.file.write("\n".join(lines) + "\n")
        return

    def need(i: int) -> int:  # the widest line of a cell, or the longest word of the header
        longest = max((len(line) for c in cells[i] for line in c.split("\n")), default=0)
        return max(longest, *(len(w) for w in headers[i].split()))

    def total(cols: Sequence[int]) -> int:
        return sum(need(i) + 3 for i in cols) + 1  # padding 1 + 1 and a rule per column

    groups: list[list[int]] = [list(range(keys))]
    for i in range(keys, len(headers)):
        if len(groups[-1]) > keys and total([*groups[-1], i]) > console.width:
            groups.append(list(range(keys)))
        groups[-1].append(i)
    for n, group in enumerate(groups):
        part = Table(header_style=table.header_style, title_justify="left",
                     title=table.title if n == 0 else None)
        for i in group:
            src = table.columns[i]
            # A fixed width no smaller than any cell: numbers stay whole, headers wrap at spaces.
            part.add_column(src.header, justify=src.justify, width=need(i))
        for r in range(len(cells[0])):
            part.add_row(*(escape(cells[i][r]) for i in group))
        console.print(part)


def _run_experiment(kind: str, call: Callable[..., exp.Experiment], *, names: Sequence[str],
                    keys: Sequence[str], workers: int | None, scheduler: str | None,
                    out_dir: Path | None, quiet: bool, as_json: bool, with_report: bool = False,
                    **kwargs: Any) -> None:
    """Shared body of `compare` and `sweep`: progress, Ctrl-C, printing."""
    if workers is not None and scheduler is not None:
        raise click.UsageError("--workers and --scheduler exclude each other; give one")
    folder = out_dir or exp.default_folder(kind, names, keys)
    _check_writable(folder)
    show_progress = not quiet and not as_json and err.is_terminal
    with _progress_bar(show_progress, "runs", rate=True) as progress:
        on_run = _CountingTask(progress, f"{kind} {' '.join(names)}")
        with _interruptible(progress, lambda: _runs_kept(on_run.done, folder)), \
                _stored_run_warnings():
            result = call(workers=workers, scheduler=scheduler, out=folder, progress=on_run,
                          command=_canonical_command(), **kwargs)
    summary = result.summary()
    warning = summary.attrs.get("warning")
    if warning and not quiet:
        err.print(f"Warning: {warning}", markup=False)
    files = [str(folder / exp.RUNS), str(folder / exp.SUMMARY), str(folder / MANIFEST)]
    if with_report:
        files.append(str(build_report(folder)))
    if as_json:
        click.echo(json.dumps({
            "kind": kind, "folder": str(folder), "files": files,
            "reps": len(result.seeds), "seed": result.seed, "seeds": result.seeds,
            "runs": len(result.seeds) * len(result.arms), "resumed": result.resumed,
            "elapsed_s": round(result.elapsed_s, 3), "cpu_s": round(result.cpu_s, 3),
            "warning": warning,
            "summary": json.loads(summary.to_json(orient="records")),
        }))
        return
    if quiet:
        click.echo(str(folder))
        return
    if kind == "compare":
        print_split(out, compare_table(summary), keys=2)
    else:
        print_split(out, sweep_table(summary, keys), keys=len(keys))
    resumed = f", {result.resumed} read back from the folder" if result.resumed else ""
    out.print(f"{len(result.seeds)} replications × {len(result.arms)} "
              f"{'scenarios' if kind == 'compare' else 'grid points'} on common random numbers "
              f"(base seed {result.seed}); {result.elapsed_s:.1f} s "
              f"({result.cpu_s:.1f} CPU s in runs){resumed}.")
    out.print(f"Results: {', '.join(files)}", markup=False)


def _show_stored_run_warning(default: Callable[..., None]) -> Callable[..., None]:
    """Print a stored run's failed check as one plain line; other warnings as before."""

    def show(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
        if issubclass(category, exp.StoredRunWarning):
            err.print(f"gtmsim: {message}", markup=False)
        elif issubclass(category, exp.HorizonWarning):
            err.print(f"warning: {message}", markup=False)
        elif issubclass(category, exp.LongWorkWarning):
            err.print(f"gtmsim: this will take a while: {message}", markup=False)
        else:
            default(message, category, *args, **kw)

    return show


@app.command("compare")
@click.argument("scenario_names", metavar="SCENARIO...", nargs=-1, required=True)
@_experiment_options
@click.option("--explain", "with_explain", is_flag=True,
              help="Two scenarios: also split their gap into the contribution of each key "
                   "that differs (as `gtmsim explain`), in --out/explain.")
@_workers_start_early
def compare_command(scenario_names: tuple[str, ...], reps: int, seed: int | None,
                    months: int | None, overrides: tuple[str, ...], workers: int | None,
                    scheduler: str | None, out_dir: Path | None, resume: bool, force: bool,
                    quiet: bool, as_json: bool, with_report: bool, yes: bool,
                    with_explain: bool = False) -> None:
    """Compare SCENARIOs on common random numbers: every scenario runs on the same
    replication seeds; each is compared with the first by paired differences."""
    if with_explain and len(scenario_names) != 2:
        raise click.UsageError("--explain splits the gap between two scenarios; give exactly "
                               f"two, got {len(scenario_names)}")
    _run_experiment("compare", lambda **kw: exp.compare(list(scenario_names), **kw),
                    names=scenario_names, keys=(), workers=workers, scheduler=scheduler,
                    out_dir=out_dir, quiet=quiet, as_json=as_json, with_report=with_report,
                    reps=reps, seed=seed,
                    months=months, overrides=list(overrides), resume=resume, force=force,
                    yes=yes)
    if with_explain:  # after the comparison; with --json a second JSON line
        from gtmsim.analysis import explain as ex

        folder = (out_dir or exp.default_folder("compare", scenario_names)) / "explain"
        result = _run_analysis(f"explain {' '.join(scenario_names)}",
                               lambda **kw: ex.explain(*scenario_names, **kw), folder=folder,
                               workers=workers, scheduler=scheduler, quiet=quiet,
                               as_json=as_json, with_report=with_report, reps=reps, seed=seed,
                               months=months, overrides=list(overrides), resume=resume,
                               force=force, yes=yes)
        _print_explanation(result, quiet=quiet, as_json=as_json)


@app.command("sweep")
@click.argument("scenario")
@click.option("--vary", "vary_texts", multiple=True, required=True,
              metavar="KEY=V1,V2,...|KEY=START:STOP:COUNT",
              help="A key and its values, e.g. --vary sales.reps=4,6,8 or "
                   "--vary alignment.sla_days=1:7:4 (repeatable; the full grid runs).")
@_experiment_options
@_workers_start_early
def sweep_command(scenario: str, vary_texts: tuple[str, ...], reps: int, seed: int | None,
                  months: int | None, overrides: tuple[str, ...], workers: int | None,
                  scheduler: str | None, out_dir: Path | None, resume: bool, force: bool,
                  quiet: bool, as_json: bool, with_report: bool, yes: bool) -> None:
    """Sweep SCENARIO over the full grid of the --vary keys × replications, on common
    random numbers."""
    vary = exp.parse_vary(vary_texts)
    name = load_scenario(scenario, overrides).name
    _run_experiment("sweep", lambda **kw: exp.sweep(scenario, vary, **kw),
                    names=[name], keys=list(vary), workers=workers, scheduler=scheduler,
                    out_dir=out_dir, quiet=quiet, as_json=as_json, with_report=with_report,
                    reps=reps, seed=seed,
                    months=months, overrides=list(overrides), resume=resume, force=force,
                    yes=yes)


# --------------------------------------------------------------------------- analysis verbs
# explain and sensitivity evaluate points through the experiment engine
# (gtmsim.analysis.points); SALib and matplotlib load only when they run.


def _run_analysis(label: str, call: Callable[..., Any], *, folder: Path, workers: int | None,
                  scheduler: str | None, quiet: bool, as_json: bool, with_report: bool,
                  **kwargs: Any) -> Any:
    """Shared body of the analysis verbs: checks, progress, Ctrl-C; returns the result."""
    if workers is not None and scheduler is not None:
        raise click.UsageError("--workers and --scheduler exclude each other; give one")
    _check_writable(folder)
    show_progress = not quiet and not as_json and err.is_terminal
    with _progress_bar(show_progress, "runs", rate=True) as progress:
        on_run = _CountingTask(progress, label)
        with _interruptible(progress, lambda: _runs_kept(on_run.done, folder)), \
                _stored_run_warnings():
            result = call(workers=workers, scheduler=scheduler, out=folder, progress=on_run,
                          command=_canonical_command(), **kwargs)
    if with_report:  # the verb's page: report.html and charts/ in the folder
        from gtmsim.report_analysis import build_report as analysis_report

        result.files.append(analysis_report(folder))
    return result


def _names_or_all_problems(scenario_names: Sequence[str], overrides: Sequence[str],
                           check: Callable[[], Any]) -> list[str]:
    """The scenarios' names; when one cannot be loaded, `check()` (the verb called without
    a folder) raises every problem of the command line at once, the scenario's among them."""
    try:
        return [load_scenario(s, overrides).name for s in scenario_names]
    except ScenarioError:
        check()
        raise


_EXPLAIN_SHOWN = ("cumulative_bookings", "net_bookings", "customers", "total_cost")


def explain_table(result: Any) -> Table:
    """Per key outcome: the gap and each factor's contribution with its interval."""
    title = (f"Gap {result.b} − {result.a} split into Shapley contributions "
             f"({'every subset' if result.method == 'exact' else f'{result.permutations} sampled orders'}"
             f", {len(result.factors)} factor{'s' if len(result.factors) != 1 else ''}); 95% paired intervals over replications")
    table = Table(header_style="bold", title_justify="left", title=escape(title))
    for header in ("Outcome", "Factor", "From", "To", "Contribution", "95% CI", "Share of gap"):
        table.add_column(header, justify="right" if header in ("Contribution", "95% CI",
                                                                "Share of gap") else "left")
    outcomes = {o.name: o for o in exp.OUTCOMES}
    for name in _EXPLAIN_SHOWN:
        o = outcomes[name]
        g = result.gaps[result.gaps["outcome"] == name].iloc[0]
        c = result.contributions[result.contributions["outcome"] == name]
        c = c.reindex(c["contribution"].abs().sort_values(ascending=False).index)
        table.add_row(o.label, "gap (all factors)", escape(result.a), escape(result.b),
                      _fmt_outcome(o.unit, g["gap"], signed=True),
                      _interval(o.unit, g["gap_ci_low"], g["gap_ci_high"], signed=True),
                      "100%" if g["gap"] and math.isfinite(g["gap"]) else "–")
        for i, r in enumerate(c.to_dict(orient="records")):
            share = (f"{100 * r['contribution'] / g['gap']:.0f}%"
                     if g["gap"] and math.isfinite(g["gap"]) else "–")
            table.add_row("", escape(str(r["factor"])), escape(str(r["from"])),
                          escape(str(r["to"])), _fmt_outcome(o.unit, r["contribution"], signed=True),
                          _interval(o.unit, r["ci_low"], r["ci_high"], signed=True), share,
                          end_section=i == len(c) - 1)
    return table


def _print_explanation(result: Any, *, quiet: bool, as_json: bool) -> None:
    from gtmsim.analysis.points import jsonable

    files = [str(f) for f in result.files]
    if as_json:
        click.echo(json.dumps(jsonable({
            "kind": "explain", "a": result.a, "b": result.b,
            "folder": str(result.experiment.folder), "files": files,
            "method": result.method, "permutations": result.permutations,
            "factors": [{"name": f.name, "keys": list(f.keys)} for f in result.factors],
            "reps": len(result.experiment.seeds), "seed": result.experiment.seed,
            "runs": len(result.experiment.seeds) * len(result.experiment.arms),
            "resumed": result.experiment.resumed,
            "elapsed_s": round(result.experiment.elapsed_s, 3),
            "posterior": None if result.posterior is None else str(result.posterior),
            "gaps": result.gaps.to_dict(orient="records"),
            "contributions": result.contributions.to_dict(orient="records"),
        }), default=float))
        return
    if quiet:
        click.echo(str(result.experiment.folder))
        return
    e = result.experiment
    warning = exp.few_reps_warning(len(e.seeds))
    if warning:
        err.print(f"Warning: {warning}", markup=False)
    print_split(out, explain_table(result), keys=2)
    resumed = f", {e.resumed} read back from the folder" if e.resumed else ""
    out.print(f"{len(e.arms)} mixes of {result.a} and {result.b} × {len(e.seeds)} replications "
              f"on common random numbers (base seed {e.seed}); {e.elapsed_s:.1f} s{resumed}. "
              "Contributions sum to the gap; every outcome is in contributions.csv.",
              markup=False)
    if result.posterior is not None:
        out.print(f"Replication r ran on posterior draw r of the keys calibrated in "
                  f"{result.posterior}: the intervals carry that uncertainty too.", markup=False)
    out.print(f"Results: {', '.join(files)}", markup=False)


def _factor_list(text: str | None) -> list[str] | None:
    return None if text is None else [s.strip() for s in text.split(",")]


@app.command("explain")
@click.argument("a")
@click.argument("b")
@click.option("--factors", "factors_text", metavar="KEY,...",
              help="Keys (or tables of keys, e.g. alignment) to split the gap into; other "
                   "differing keys form one more factor. Default: every key that differs.")
@click.option("--permutations", type=click.IntRange(min=2),
              help="Sample this many orders of the factors instead of every subset "
                   "(default: every subset up to 10 factors, 64 orders beyond).")
@click.option("--posterior", "posterior_dir", metavar="CALIBRATION_DIR",
              type=click.Path(path_type=Path),
              help="Run replication r of every mix on posterior draw r of the keys a "
                   "finished calibration fitted, so the intervals also carry what the "
                   "calibration left uncertain.")
@_experiment_options
@_workers_start_early
def explain_command(a: str, b: str, factors_text: str | None, permutations: int | None,
                    posterior_dir: Path | None,
                    reps: int, seed: int | None, months: int | None,
                    overrides: tuple[str, ...], workers: int | None, scheduler: str | None,
                    out_dir: Path | None, resume: bool, force: bool, quiet: bool,
                    as_json: bool, with_report: bool, yes: bool) -> None:
    """Split the gap B − A in each key outcome into the contribution of each key that
    differs (alignment presets expanded into their levers), by Shapley values over mixes
    of A and B run on common random numbers."""
    from gtmsim.analysis import explain as ex

    options = {"factors": _factor_list(factors_text), "permutations": permutations,
               "reps": reps, "seed": seed, "months": months, "overrides": list(overrides),
               "posterior": posterior_dir}
    names = _names_or_all_problems([a, b], overrides, lambda: ex.explain(a, b, **options))
    folder = out_dir or exp.default_folder("explain", names)
    result = _run_analysis(f"explain {' '.join(names)}", lambda **kw: ex.explain(a, b, **kw),
                           folder=folder, workers=workers, scheduler=scheduler, quiet=quiet,
                           as_json=as_json, with_report=with_report, resume=resume,
                           force=force, yes=yes, **options)
    _print_explanation(result, quiet=quiet, as_json=as_json)


def sensitivity_table(result: Any) -> Table:
    """The indices, most important key first, then the replication-noise line."""
    morris, pawn = result.method == "morris", result.method == "pawn"
    o = next(o for o in exp.OUTCOMES if o.name == result.outcome)
    what = (f"{o.label}, {result.decision['b']} − {result.decision['a']}" if result.decision
            else o.label)
    name, unit = {"morris": ("Morris screening", "μ* in outcome units per key range"),
                  "sobol": ("Sobol indices", "shares of the variance of the mean outcome"),
                  "pawn": ("PAWN indices", "Kolmogorov–Smirnov distances, 0 to 1; the noise "
                                           "line is a key with no effect")}[result.method]
    title = (f"{name} of {what} ({unit}); one run's variance is {result.noise_share:.0%} "
             "replication noise")
    table = Table(header_style="bold", title_justify="left", title=escape(title))
    heads = (("Key", "Range", "μ*", "± (95%)", "σ", "μ") if morris
             else ("Key", "Range", "median", "mean", "max", "CV") if pawn
             else ("Key", "Range", "S1", "± (95%)", "ST", "± (95%) "))
    for h in heads:
        table.add_column(h, justify="left" if h in ("Key", "Range") else "right")
    ranges = {r.key: r for r in result.ranges}
    for r in result.indices.itertuples():
        rng = ranges.get(r.key)
        span = f"{rng.low:g} to {rng.high:g}" if rng else ""
        if rng and r.key in result.from_posterior:
            span = "posterior"
        if morris:
            cells = [_fmt_outcome(o.unit, v) if o.unit != "fraction" else
                     ("–" if not math.isfinite(v) else f"{v:.3g}")
                     for v in (r.mu_star, r.mu_star_conf, r.sigma, r.mu)]
        elif pawn:
            cells = ["–" if not math.isfinite(v) else f"{v:.2f}"
                     for v in (r.median, r.mean, r.maximum, r.CV)]
        else:
            cells = ["–" if not math.isfinite(v) else f"{v:.2f}"
                     for v in (r.S1, r.S1_conf, r.ST, r.ST_conf)]
        table.add_row(escape(r.key), span, *cells)
    return table


@app.command("sensitivity")
@click.argument("scenario")
@click.option("--vary", "vary_texts", multiple=True, metavar="KEY=LOW:HIGH",
              help="A numeric key and its range, e.g. --vary sales.reps=2:8 (repeatable; "
                   "optional with --posterior).")
@click.option("--method", type=click.Choice(["morris", "sobol", "pawn"]),
              help="morris: screening (elementary effects; the default); sobol: "
                   "first-order and total indices; pawn: PAWN indices of any sample (the "
                   "default and the only choice with --posterior).")
@click.option("--posterior", "posterior_dir", metavar="CALIBRATION_DIR",
              type=click.Path(path_type=Path),
              help="Draw the keys a finished calibration fitted from its posterior "
                   "(weighted resampling, seeded) instead of uniform ranges; a fitted key "
                   "also given with --vary is drawn from the posterior, its range unused.")
@click.option("--outcome", default="cumulative_bookings", show_default=True,
              help="The key outcome analysed (as in summary.csv).")
@click.option("--samples", type=click.IntRange(min=2),
              help="Morris trajectories (default 10) or Sobol base samples (default 64; "
                   "points = samples × (keys + 2)).")
@click.option("--levels", type=click.IntRange(min=2), default=4, show_default=True,
              help="Morris grid levels.")
@click.option("--decision", "decision_text", metavar="A,B",
              help="Run scenarios A and B at every sampled point instead: the indices are "
                   "those of B − A, with the probability that B beats A and the boxes of "
                   "key values where the decision flips.")
@_experiment_options
@_workers_start_early
def sensitivity_command(scenario: str, vary_texts: tuple[str, ...], method: str, outcome: str,
                        samples: int | None, levels: int, decision_text: str | None,
                        posterior_dir: Path | None, reps: int, seed: int | None,
                        months: int | None, overrides: tuple[str, ...], workers: int | None,
                        scheduler: str | None, out_dir: Path | None, resume: bool,
                        force: bool, quiet: bool, as_json: bool, with_report: bool,
                        yes: bool) -> None:
    """Which --vary keys drive an outcome of SCENARIO: SALib's Morris screening or Sobol
    indices over points × replications on common random numbers, with the replication
    noise reported on its own line."""
    from gtmsim.analysis import sensitivity as se
    from gtmsim.analysis.points import jsonable

    decision = None if decision_text is None else [s.strip() for s in decision_text.split(",")]
    options = {"method": method, "outcome": outcome, "samples": samples, "levels": levels,
               "reps": reps, "seed": seed, "months": months, "overrides": list(overrides),
               "decision": decision, "posterior": posterior_dir}
    vary = list(vary_texts)
    names = _names_or_all_problems([scenario, *(decision or [])], overrides,
                                   lambda: se.sensitivity(scenario, vary, **options))
    # Named after the keys as given: a bad one is refused before anything is written.
    keys = [t.partition("=")[0].strip() for t in vary]
    folder = out_dir or exp.default_folder("sensitivity", names[:1], keys)
    result = _run_analysis(f"sensitivity {names[0]}",
                           lambda **kw: se.sensitivity(scenario, vary, **kw), folder=folder,
                           workers=workers, scheduler=scheduler, quiet=quiet, as_json=as_json,
                           with_report=with_report, resume=resume, force=force, yes=yes,
                           **options)
    files = [str(f) for f in result.files]
    e = result.experiment
    if as_json:
        click.echo(json.dumps(jsonable({
            "kind": "sensitivity", "scenario": result.scenario, "method": result.method,
            "posterior": None if result.posterior is None else str(result.posterior),
            "from_posterior": result.from_posterior, "vary_ignored": result.vary_ignored,
            "outcome": outcome, "folder": str(e.folder), "files": files,
            "points": len(e.arms), "reps": len(e.seeds), "seed": e.seed,
            "runs": len(e.arms) * len(e.seeds), "resumed": e.resumed,
            "elapsed_s": round(e.elapsed_s, 3), "noise_share": result.noise_share,
            "indices": result.indices.to_dict(orient="records"),
            "decision": result.decision,
            "boxes": None if result.boxes is None else result.boxes.to_dict(orient="records"),
        }), default=float))
        return
    if quiet:
        click.echo(str(e.folder))
        return
    print_split(out, sensitivity_table(result), keys=2)
    if result.posterior is not None:
        out.print(f"Drawn from the posterior of {result.posterior}: "
                  f"{', '.join(result.from_posterior)}.", markup=False)
        if result.vary_ignored:
            out.print(f"  --vary ranges not used (the posterior wins): "
                      f"{', '.join(result.vary_ignored)}.", markup=False)
    if result.decision:
        d = result.decision
        out.print(f"{d['b']} beats {d['a']} on {d['outcome']} at {d['p_b_better']:.0%} of the "
                  f"{d['points']} sampled points (95% interval {d['p_low']:.0%} to "
                  f"{d['p_high']:.0%}; {d['runs_b_better']:.0%} of single paired runs).",
                  markup=False)
        if result.boxes is not None and len(result.boxes):
            for b in result.boxes.itertuples():
                out.print(f"  The decision flips where {b.box}: {b.flips} of {b.points} "
                          f"points (density {b.density:.0%}, coverage {b.coverage:.0%} of "
                          "all flips).", markup=False)
        else:
            out.print("  No box of key values where the decision flips (it never flips, or "
                      "the flips are scattered).", markup=False)
    resumed = f", {e.resumed} read back from the folder" if e.resumed else ""
    out.print(f"{len(e.arms)} points × {len(e.seeds)} replications on common random numbers "
              f"(base seed {e.seed}); {e.elapsed_s:.1f} s{resumed}.", markup=False)
    out.print(f"Results: {', '.join(files)}", markup=False)



# --------------------------------------------------------------------------- calibration


def _columns_option(values: tuple[str, ...]) -> list[str] | None:
    """--columns given as a comma-separated list, repeatable."""
    cols = [c.strip() for v in values for c in v.split(",") if c.strip()]
    return cols or None


@app.command("history")
@click.argument("folder", type=_PathOption(file_okay=False, path_type=Path))
@click.option("-o", "--output", "output", required=True,
              type=_PathOption(dir_okay=False, path_type=Path),
              help="The history file to write: FILE.csv or FILE.xlsx.")
@click.option("--columns", "columns", multiple=True, metavar="COL,COL,...",
              help="Only these monthly columns (default: all), e.g. "
                   "--columns new_leads,new_opportunities,wins,bookings.")
def history_command(folder: Path, output: Path, columns: tuple[str, ...]) -> None:
    """Write the monthly table of the run in FOLDER (gtmsim run --out) as a history file:
    a synthetic company with known parameters, to calibrate against."""
    from gtmsim.history import write_history

    path = write_history(folder, output, _columns_option(columns))
    out.print(f"History: {path}", markup=False)


@app.command("calibrate")
@click.argument("scenario")
@click.option("--history", "history_file", required=True,
              type=_PathOption(dir_okay=False, path_type=Path),
              help="The company's monthly history (CSV or XLSX).")
@click.option("--fit", "fits", multiple=True, required=True, metavar="KEY=LOW:HIGH[:log]",
              help="A key to fit and its uniform (or log-uniform) prior, e.g. "
                   "--fit market.qualify_rate=0.2:0.95 (repeatable).")
@click.option("--columns", "columns", multiple=True, metavar="COL,COL,...",
              help="History columns to fit (default: the CRM columns present).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key first (repeatable).")
@click.option("--months", type=click.IntRange(1, 600),
              help="Fit only months 1 to N of the history (default: all); later rows are left "
                   "out, e.g. to hold them back and compare a forecast with them.")
@click.option("--sims", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Simulation budget: no new generation starts once this many are done.")
@click.option("--population", type=click.IntRange(min=2), default=100, show_default=True,
              help="Particles per generation.")
@click.option("--generations", type=click.IntRange(min=1), default=8, show_default=True,
              help="At most this many generations.")
@click.option("--reps", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs averaged per draw (for noisy histories).")
@click.option("--ppc-draws", type=click.IntRange(min=2), default=40, show_default=True,
              help="Posterior draws run for the predictive check.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Seed (default: the scenario's).")
@click.option("--out", "out_dir", type=_PathOption(file_okay=False, path_type=Path),
              help="Calibration folder (default: results/calibrate-<scenario>).")
@click.option("--resume", is_flag=True, help="Continue the calibration in --out.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Local worker processes (default: all cores; 1 runs in-process).")
@click.option("--scheduler", metavar="ADDRESS", help="Run on a Dask cluster, e.g. tcp://h:8786.")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no table; print the folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--report", "with_report", is_flag=True, help="Also write report.html in --out.")
@_workers_start_early
def calibrate_command(scenario: str, history_file: Path, fits: tuple[str, ...],
                      columns: tuple[str, ...], overrides: tuple[str, ...], months: int | None,
                      sims: int,
                      population: int, generations: int, reps: int, ppc_draws: int,
                      seed: int | None,
                      out_dir: Path | None, resume: bool, workers: int | None,
                      scheduler: str | None, quiet: bool, as_json: bool,
                      with_report: bool) -> None:
    """Fit scenario keys to a company's monthly HISTORY by ABC-SMC (pyabc): posterior,
    summary with contraction, and a posterior-predictive check. See docs/calibration.md."""
    from gtmsim.calibration import calibrate

    show = not quiet and not as_json and err.is_terminal
    finished = [0]
    with _progress_bar(show) as bar:
        task = bar.add_task("Calibrating", total=sims, unit="simulations")

        def on_progress(state: dict[str, Any]) -> None:
            finished[0] = state["generation"]
            eps = state["epsilon"]
            what = {"noise": "Measuring noise", "check": "Predictive check"}.get(
                state["phase"], f"Generation {state['generation'] + 1}"
                + (f" (ε {eps:.2f})" if eps == eps else ""))
            bar.update(task, completed=min(state["simulations"], sims), description=what)

        def kept() -> str:
            return (f"{finished[0]} finished generation(s) are kept; run the same command with "
                    "--resume to continue" if finished[0] else "no generation had finished")

        with _interruptible(bar, kept):
            cal = calibrate(scenario, history_file, list(fits), columns=_columns_option(columns),
                            overrides=list(overrides), months=months, sims=sims,
                            population=population,
                            generations=generations, reps=reps, seed=seed, out=out_dir,
                            ppc_draws=ppc_draws,
                            resume=resume, workers=workers, scheduler=scheduler,
                            progress=on_progress, command=_canonical_command())
    summary = cal.summary
    files = [str(cal.folder / f) for f in cal.manifest["files"]]
    if with_report:
        from gtmsim.report_calibration import build_report as calibration_report

        files.append(str(calibration_report(cal.folder)))
    if as_json:
        click.echo(json.dumps({
            "kind": "calibration", "folder": str(cal.folder), "files": files,
            "generations": cal.manifest["generations"], "seed": cal.manifest["seed"],
            "elapsed_s": cal.manifest["elapsed_s"],
            "summary": json.loads(summary.to_json(orient="records")),
            "coverage": json.loads(cal.coverage.to_json(orient="records")),
        }))
        return
    if quiet:
        click.echo(str(cal.folder))
        return
    table = Table(header_style="bold", title_justify="left",
                  title="Posterior of the fitted keys (contraction: 1 − posterior 90% width ÷ "
                        "prior width)")
    for h in ("Key", "Prior", "Mean", "5%", "95%", "Contraction"):
        table.add_column(h, justify="left" if h == "Key" else "right")
    for r in summary.itertuples():
        table.add_row(escape(r.key), f"{r.prior_low:g} – {r.prior_high:g}"
                      + (" (log)" if r.prior == "log-uniform" else ""),
                      f"{r.mean:.4g}", f"{r.q05:.4g}", f"{r.q95:.4g}", f"{r.contraction:.0%}")
    print_split(out, table, keys=1)
    cov = Table(header_style="bold", title_justify="left",
                title="Posterior-predictive check: share of history months inside the bands")
    for h in ("Column", "Months", "In 50% band", "In 90% band"):
        cov.add_column(h, justify="left" if h == "Column" else "right")
    for r in cal.coverage.itertuples():
        cov.add_row(escape(str(r.column)), str(r.months), f"{r.in_50:.0%}", f"{r.in_90:.0%}")
    print_split(out, cov, keys=1)
    gens = cal.manifest["generations"]
    out.print(f"{len(gens)} generations, {sum(g['simulations'] for g in gens):,} simulations, "
              f"final ε {gens[-1]['epsilon']:.2f}; {cal.manifest['elapsed_s']:.1f} s.", markup=False)
    out.print(f"Results: {cal.folder}", markup=False)


@app.command("forecast")
@click.argument("folder", type=_PathOption(file_okay=False, path_type=Path))
@click.option("--months", type=click.IntRange(1, 600), default=12, show_default=True,
              help="Months to forecast after the history.")
@click.option("--plan", "plans", multiple=True, metavar="SCENARIO",
              help="A plan to compare with the current one (a scenario file or shipped name; "
                   "repeatable); it takes effect the month after the history.")
@click.option("--target", type=click.FloatRange(min=0), help="Bookings over the forecast months "
              "($); prints the probability of reaching it.")
@click.option("--draws", type=click.IntRange(min=1), default=100, show_default=True,
              help="Posterior draws.")
@click.option("--reps", type=click.IntRange(min=1), default=2, show_default=True,
              help="Runs per draw.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Seed (default: the calibration's).")
@click.option("--out", "out_dir", type=_PathOption(file_okay=False, path_type=Path),
              help="Forecast folder (default: FOLDER/forecast); a finished forecast there is "
                   "replaced.")
@click.option("--resume", is_flag=True,
              help="Continue the forecast in --out (same calibration and options), running only "
                   "the runs it does not hold yet; a new --target needs no new runs.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Local worker processes (default: all cores; 1 runs in-process).")
@click.option("--scheduler", metavar="ADDRESS", help="Run on a Dask cluster, e.g. tcp://h:8786.")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no table; print the folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--report", "with_report", is_flag=True, help="Also write report.html in --out.")
@_workers_start_early
def forecast_command(folder: Path, months: int, plans: tuple[str, ...], target: float | None,
                     draws: int, reps: int, seed: int | None, out_dir: Path | None,
                     resume: bool, workers: int | None, scheduler: str | None, quiet: bool,
                     as_json: bool, with_report: bool) -> None:
    """Forecast from the calibration in FOLDER: posterior draws × replications past the
    history; fan chart, P(target) and each plan's paired difference from the current one.

    There is no --set: the market is what the calibration fitted, and a change to marketing,
    sales or alignment is a --plan."""
    from gtmsim.forecasting import forecast

    folder_out = out_dir or folder / "forecast"
    show = not quiet and not as_json and err.is_terminal
    with _progress_bar(show, "runs", rate=True) as bar:
        on_run = _CountingTask(bar, "Forecasting")
        with _interruptible(bar, lambda: _runs_kept(on_run.done, folder_out)), \
                _stored_run_warnings():
            fc = forecast(folder, months=months, plans=list(plans), target=target, draws=draws,
                          reps=reps, seed=seed, out=out_dir, resume=resume, workers=workers,
                          scheduler=scheduler, progress=on_run, command=_canonical_command())
    files = [str(fc.folder / f) for f in fc.manifest["files"]]
    if with_report:
        from gtmsim.report_calibration import build_report as forecast_report

        files.append(str(forecast_report(fc.folder)))
    if as_json:
        click.echo(json.dumps({
            "kind": "forecast", "folder": str(fc.folder), "files": files,
            "runs": fc.manifest["runs_total"], "resumed": fc.manifest["resumed"],
            "seed": fc.manifest["seed"], "elapsed_s": fc.manifest["elapsed_s"],
            "summary": json.loads(fc.summary.to_json(orient="records")),
            "plans": json.loads(fc.plans.to_json(orient="records")),
        }))
        return
    if quiet:
        click.echo(str(fc.folder))
        return
    table = Table(header_style="bold", title_justify="left",
                  title=f"Bookings over the next {months} months (posterior draws × replications)")
    for h in ("Plan", "Mean", "5%", "95%", *(["P(≥ target)"] if target is not None else [])):
        table.add_column(h, justify="left" if h == "Plan" else "right")
    for r in fc.summary.itertuples():
        table.add_row(escape(str(r.plan)), _fmt_outcome("$", r.mean), _fmt_outcome("$", r.q05),
                      _fmt_outcome("$", r.q95),
                      *([f"{r.p_target:.0%}"] if target is not None else []))
    print_split(out, table, keys=1)
    if len(fc.plans):
        diff = Table(header_style="bold", title_justify="left",
                     title="Paired difference from the current plan (95% interval over "
                           "posterior draws: parameter uncertainty included)")
        for h in ("Plan", "Δ bookings", "95% interval", "Δ %", "Ahead"):
            diff.add_column(h, justify="left" if h == "Plan" else "right")
        for r in fc.plans.itertuples():
            diff.add_row(escape(str(r.plan)), _fmt_outcome("$", r.diff_mean, signed=True),
                         _interval("$", r.diff_lo95, r.diff_hi95, signed=True),
                         f"{r.diff_pct:+.1f}%", f"{r.ahead:.0%}")
        print_split(out, diff, keys=1)
    m = fc.manifest
    resumed = f", {m['resumed']} read back from the folder" if m["resumed"] else ""
    def count(n: int, what: str) -> str:
        return f"{n:,} {what}{'s' if n != 1 else ''}"

    out.print(f"{count(m['runs_total'], 'run')} ({count(len(m['plans']), 'plan')} × "
              f"{count(m['draws'], 'draw')} × {count(m['reps'], 'replication')}, seed "
              f"{m['seed']}); {m['elapsed_s']:.1f} s{resumed}.", markup=False)
    out.print(f"Results: {fc.folder}", markup=False)


def _check_writable(folder: Path) -> None:
    """Fail before a long run if the results folder cannot be created or written."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise click.UsageError(f"--out {folder}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise click.UsageError(f"--out {folder}: {probe} is not writable")


# --------------------------------------------------------------------------- optimize


@app.command("optimize")
@click.argument("scenario")
@click.option("--vary", "vary_texts", multiple=True, metavar="KEY=LOW:HIGH[:int]",
              help="A numeric key and its range, e.g. --vary "
                   "marketing.programs.content.monthly_budget=0:48000, --vary sales.reps=2:10, "
                   "--vary 'timeline[0].month=2:12' (repeatable).")
@click.option("--constraint", "constraint_texts", multiple=True, metavar="EXPR",
              help="A limit on a derived quantity, e.g. \"marketing_spend<=48000\" (mean monthly "
                   "spend), monthly_cost, headcount, or any key outcome (repeatable).")
@click.option("--objective", default="bookings", show_default=True,
              help="bookings, net, cac, p_target or cost; comma-separated for a Pareto front "
                   "(bookings,cost).")
@click.option("--target", type=float, help="Cumulative bookings to reach, for p_target.")
@click.option("--trials", type=int, default=40, show_default=True,
              help="Trials in the study in all (with --resume, more continue the search).")
@click.option("--reps", type=int, default=8, show_default=True,
              help="Replications per trial, on the same seeds for every trial.")
@click.option("--top", type=int, default=3, show_default=True,
              help="Best plans evaluated again on fresh seeds against the starting plan.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1),
              help="Base seed of the replications and the sampler (default: the scenario's).")
@click.option("--months", type=click.IntRange(1, 600), help="Months to simulate.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a key of the starting plan, e.g. --set sales.reps=6 (repeatable).")
@click.option("--workers", type=click.IntRange(min=1),
              help="Local worker processes (default: all cores; 1 runs in-process).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786.")
@click.option("--out", "out_dir", type=_PathOption(file_okay=False, path_type=Path),
              help="Results folder (default: results/optimize-<name>).")
@click.option("--resume", is_flag=True, help="Continue the study in --out.")
@click.option("--force", is_flag=True, help="Replace the study in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no table; print the folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--report", "with_report", is_flag=True,
              help="Also write the report page (report.html and charts/) in --out.")
@click.option("--yes", is_flag=True, help="Start even when the work is estimated at over 30 minutes.")
@click.option("--posterior", "posterior_dir", metavar="CALIBRATION_DIR",
              type=click.Path(path_type=Path),
              help="Run replication r of every trial on posterior draw r of the keys a "
                   "finished calibration fitted (the re-evaluation on fresh draws), so the "
                   "best plan is best over what the calibration left uncertain.")
@_workers_start_early
def optimize_command(scenario: str, vary_texts: tuple[str, ...],
                     constraint_texts: tuple[str, ...], objective: str, target: float | None,
                     trials: int, reps: int, top: int, seed: int | None, months: int | None,
                     overrides: tuple[str, ...], workers: int | None, scheduler: str | None,
                     out_dir: Path | None, resume: bool, force: bool, quiet: bool,
                     as_json: bool, yes: bool, with_report: bool = False,
                     posterior_dir: Path | None = None) -> None:
    """Search the --vary keys of SCENARIO for the best plan under the --constraints (Optuna,
    common random numbers), then evaluate the best few again on fresh seeds against it."""
    from gtmsim.analysis import optimize as opt

    if out_dir is not None:
        _check_writable(out_dir)
    show_progress = not quiet and not as_json and err.is_terminal
    with _progress_bar(show_progress, "trials") as progress:
        on_trial = _CountingTask(progress, f"optimize {scenario}")
        where = out_dir or "the results folder"
        with _interruptible(progress, lambda: f"{on_trial.done} trials are kept in {where}; "
                                              "run the same command with --resume to continue"), \
                _stored_run_warnings():
            result = opt.optimize(
                scenario, list(vary_texts), constraints=list(constraint_texts),
                objective=objective, target=target, trials=trials, reps=reps, top=top,
                seed=seed, months=months, overrides=list(overrides), workers=workers,
                scheduler=scheduler, out=out_dir, resume=resume, force=force,
                progress=on_trial, command=_canonical_command(), yes=yes,
                posterior=posterior_dir)
    files = [str(result.folder / f) for f in (opt.TRIALS, opt.SUMMARY, opt.BEST, opt.STUDY_DB,
                                               MANIFEST)
             if (result.folder / f).exists()]
    if with_report:
        from gtmsim.report_analysis import build_report as analysis_report

        files.append(str(analysis_report(result.folder)))
    start_values = {v.key: opt.start_value(result.start, v.key) for v in result.vary}
    if as_json:
        click.echo(json.dumps({
            "kind": "optimize", "folder": str(result.folder), "files": files,
            "trials": int(result.trials["simulated"].sum()),
            "refused": int((~result.trials["simulated"]).sum()), "resumed": result.resumed,
            "objectives": [o.name for o in result.objectives],
            "constraints": [c.text for c in result.constraints],
            "best_trial": result.best_trial, "best": result.best, "start": start_values,
            "elapsed_s": round(result.elapsed_s, 3),
            "posterior": None if posterior_dir is None else str(posterior_dir),
            "summary": json.loads(result.summary().to_json(orient="records")),
        }, default=str))
        return
    if quiet:
        click.echo(str(result.folder))
        return
    ran = result.trials[result.trials["simulated"]]
    refused = len(result.trials) - len(ran)
    out.print(f"{len(ran)} trials simulated ({int(ran['feasible'].sum())} meeting the "
              f"constraints, {result.resumed} read back from the study)"
              + (f"; {refused} proposed plans broke a spending or headcount limit and were "
                 "refused before simulating" if refused else "")
              + f"; {result.elapsed_s:.1f} s.", markup=False)
    if posterior_dir is not None:
        out.print(f"Replication r of every trial ran on posterior draw r of the keys calibrated "
                  f"in {posterior_dir}; the re-evaluation on fresh seeds and fresh draws.",
                  markup=False)
    if result.best is None:
        out.print("No trial met the constraints: no best plan (widen the ranges or the limits).",
                  markup=False)
    else:
        if result.kept_start:
            out.print("No searched plan beat the starting plan on fresh seeds: best.toml keeps "
                      "the starting plan.", markup=False)
        changed = Table(header_style="bold", title_justify="left",
                        title=f"What changed (trial {result.best_trial} against the start)")
        for header in ("Key", "Start", "Best"):
            changed.add_column(header, justify="left" if header == "Key" else "right")
        for v in result.vary:
            changed.add_row(escape(v.key), escape(_plain_number(start_values[v.key])),
                            escape(_plain_number(result.best[v.key])))
        print_split(out, changed, keys=1)
        summary = result.summary()
        if summary.attrs.get("warning"):
            err.print(f"Warning: {summary.attrs['warning']}", markup=False)
        chosen = summary[summary["chosen"]]
        wanted = {o.outcome for o in result.objectives if o.outcome} | {
            "cumulative_bookings", "net_bookings", "total_cost", "cac"}
        print_split(out, compare_table(summary[summary["scenario"].isin(
            [summary["scenario"].iloc[0], *chosen["scenario"].unique()])
            & summary["outcome"].isin(wanted)]), keys=2)
        reps_again = len(result.reevaluation.seeds) if result.reevaluation else 0
        out.print(f"Best plan and the top {len(summary['scenario'].unique()) - 1} evaluated "
                  f"again on {reps_again} fresh replications; differences paired with the start.",
                  markup=False)
    out.print(f"Results: {', '.join(files)}", markup=False)
    out.print(f"Inspect the study: optuna-dashboard sqlite:///{result.folder / opt.STUDY_DB}",
              markup=False)


def _plain_number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.4g}"
    return f"{value:,.0f}" if isinstance(value, (int, float)) else str(value)


@app.command("validate")
@click.argument("check_name", metavar="[CHECK]", required=False)
@click.option("--size", type=click.Choice(["full", "ci"]), default="full", show_default=True,
              help="full: the figures in docs/validation.md; ci: smaller, as the tests run them.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
              help="First replication seed.")
@click.option("--out", "out_dir", type=_PathOption(file_okay=False, path_type=Path),
              help="Folder for the table, data and charts (default: results/validation).")
@click.option("--p", "bass_p", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="bass: innovation coefficient p per month.")
@click.option("--q", "bass_q", type=click.FloatRange(0, 30),
              help="bass: imitation coefficient q per month.")
@click.option("--prospects", type=click.IntRange(100, 20_000_000), help="bass: market size N.")
@click.option("--months", type=click.IntRange(1, 600), help="bass: months to simulate.")
@click.option("--reps", type=click.IntRange(min=2), help="bass: replications.")
@click.option("--quiet", "-q", is_flag=True, help="No table; print the folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def validate(check_name: str | None, size: str, seed: int, out_dir: Path | None,
             bass_p: float | None, bass_q: float | None, prospects: int | None,
             months: int | None, reps: int | None, quiet: bool, as_json: bool) -> None:
    """Check the model against known results: Bass diffusion, Little's law, lead decay,
    adstock, alignment levers, time to effect (also in the shipped spare_capacity
    scenario), B2B funnel ranges, the founder's week. Runs CHECK (one of bass, capacity,
    decay, marketing, alignment, timing, spare_capacity, funnel, founder), or all of them.
    Exit 0 if every check passes, 1 if any fails, 2 on bad input."""
    from gtmsim import validation as val  # matplotlib and scipy load only when validating

    given = {"p": bass_p, "q": bass_q, "prospects": prospects, "months": months, "reps": reps}
    bass = {k: v for k, v in given.items() if v is not None}
    try:
        names = val.check_names(check_name)
        if bass and names != ["bass"]:
            raise click.UsageError("--p, --q, --prospects, --months and --reps set the bass "
                                   "check; run them as `gtmsim validate bass ...`")
        folder = out_dir or Path("results") / "validation"
        _check_writable(folder)
        if folder.is_dir() and any(folder.iterdir()) and not (folder / val.TABLE_JSON).is_file():
            raise click.UsageError(f"--out {folder}: holds other files and no validation "
                                   "results; give a new or empty folder")
        show = not quiet and not as_json and err.is_terminal

        def on_check(name: str, result: val.CheckResult | None) -> None:
            if show and result is None:
                err.print(f"[dim]running {name} ({val.CHECKS[name].summary})…[/dim]")

        results = val.run_checks(names, size, seed=seed, options={"bass": bass} if bass else None,
                                 on_check=on_check)
    except val.ValidationError as exc:
        raise click.UsageError(str(exc)) from None
    files = val.write_results(results, folder, command=["gtmsim", *sys.argv[1:]])
    table = val.results_table(results)
    if as_json:
        click.echo(json.dumps({
            "passed": all(r.passed for r in results), "folder": str(folder),
            "files": [str(f) for f in files],
            "criteria": json.loads(table.to_json(orient="records")),
        }))
    elif quiet:
        click.echo(str(folder))
    else:
        styles = {"pass": "green", "fail": "bold red", "info": "dim"}
        shown = Table(header_style="bold", title_justify="left",
                      title=f"Validation ({size} size, seed {seed})")
        for header in ("Check", "Criterion", "Expected", "Observed", "Tolerance", "Result"):
            shown.add_column(header, overflow="fold")
        for r in table.itertuples():
            shown.add_row(r.check, r.criterion, r.expected, r.observed, r.tolerance,
                          Text(r.status, style=styles[r.status]))
        out.print(shown)
        failed = [r.name for r in results if not r.passed]
        judged = table[table["status"] != "info"]
        out.print(f"{(judged['status'] == 'pass').sum()} of {len(judged)} criteria pass"
                  + (f"; failing checks: {', '.join(failed)}." if failed else "."), markup=False)
        out.print(f"Table, data and charts: {folder}", markup=False)
    if not all(r.passed for r in results):
        raise SystemExit(EXIT_FAILURE)


# An option given without its value (`--pptx`) means "the default file in the folder".
_DEFAULT_FILE = ":default:"


def _optional_path(value: str | None, option: str) -> Path | bool | None:
    """None (not given), True (given without a value) or the path given."""
    if value is None:
        return None
    if value == _DEFAULT_FILE:
        return True
    if not value.strip():
        raise click.BadParameter("an empty path; give a file or folder name", param_hint=option)
    return Path(value)


@app.command("report")
@click.argument("folder", type=_PathOption(file_okay=False, path_type=Path))
@click.option("-o", "--output", "output", type=_PathOption(dir_okay=False, path_type=Path),
              help="The HTML file (default: FOLDER/report.html); charts go beside it. A link "
                   "given here is written through to its target; anything else but a "
                   "regular file is refused.")
@click.option("--pptx", "pptx", is_flag=False, flag_value=_DEFAULT_FILE, default=None,
              metavar="[FILE]",
              help="Also write a 16:9 slide deck (default: FOLDER/deck.pptx).")
def report_command(folder: Path, output: Path | None, pptx: str | None) -> None:
    """Write the leadership report of a results FOLDER (of run, compare or sweep): one
    self-contained HTML page, and each chart as a 16:9 PNG beside it; with --pptx, also
    a slide deck. Calibration, forecast, explain, sensitivity and optimize folders get
    their own page, without a deck."""
    from gtmsim import report_calibration

    from gtmsim.results import read_manifest

    kind = None
    with contextlib.suppress(ResultsError):  # a folder without a manifest: build_report says so
        kind = read_manifest(folder).get("kind")
    if kind in report_calibration.KINDS:
        if pptx is not None:
            raise click.UsageError("--pptx: slide decks are made of run, compare and sweep "
                                   "folders; calibration and forecast folders get the "
                                   "HTML report only")
        path = report_calibration.build_report(folder, output)
        out.print(f"Report: {path}", markup=False)
        return
    if kind in ("explain", "sensitivity", "optimize"):
        if pptx is not None:
            raise click.UsageError(f"--pptx: slide decks are made of run, compare and sweep "
                                   f"folders; {kind} folders get the HTML report only")
        from gtmsim.report_analysis import build_report as analysis_report

        path = analysis_report(folder, output)
        out.print(f"Report: {path} (charts in {path.parent / 'charts'})", markup=False)
        return
    from gtmsim.report import CHARTS_DIR

    deck_file = _optional_path(pptx, "--pptx")
    path = build_report(folder, output)
    out.print(f"Report: {path} (charts in {path.parent / CHARTS_DIR})", markup=False)
    if deck_file is not None:
        from gtmsim.deck import build_deck

        deck = build_deck(folder, None if deck_file is True else deck_file)
        out.print(f"Deck: {deck}", markup=False)


@app.command("export")
@click.argument("folder", type=_PathOption(file_okay=False, path_type=Path))
@click.option("--xlsx", "xlsx", is_flag=False, flag_value=_DEFAULT_FILE, default=None,
              metavar="[FILE]",
              help="Write an Excel workbook (default: FOLDER/workbook.xlsx).")
@click.option("--csv", "csv", is_flag=False, flag_value=_DEFAULT_FILE, default=None,
              metavar="[DIR]",
              help="Write the same tables as CSV files into a folder (default: FOLDER/tables).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the paths written.")
@click.option("--json", "as_json", is_flag=True, help="Print the paths written as JSON.")
def export_command(folder: Path, xlsx: str | None, csv: str | None, quiet: bool,
                   as_json: bool) -> None:
    """Write the tables of a results FOLDER for a spreadsheet: options, summary, monthly
    means with intervals, runs, parameters and manifest."""
    from gtmsim.workbook import export

    book, tables_dir = _optional_path(xlsx, "--xlsx"), _optional_path(csv, "--csv")
    if book is None and tables_dir is None:
        raise click.UsageError("give --xlsx [FILE], --csv [DIR] or both")
    paths = export(folder, xlsx=book, csv=tables_dir)
    if as_json:
        workbook = str(paths[0]) if book is not None else None
        csvs = [str(p) for p in (paths[1:] if book is not None else paths)]
        click.echo(json.dumps({"folder": str(folder), "workbook": workbook, "csv": csvs}))
        return
    if quiet:
        for p in paths:
            click.echo(str(p))
        return
    if xlsx is not None:
        out.print(f"Workbook: {paths[0]}", markup=False)
    if csv is not None:
        tables = paths[1:] if xlsx is not None else paths
        out.print(f"Tables: {', '.join(map(str, tables))}", markup=False)


@app.command()
def assumptions() -> None:
    """List the modelling assumptions tagged in the code, with where they live."""
    out.print("Modelling assumptions tagged in the code (# ASSUMPTION:). Every mechanism, "
              "its parameters and the source or reasoning behind each are in docs/model.md "
              "of the gtmsim source.", markup=False)
    for place, text in tagged_assumptions():
        out.print(f"[bold]{escape(place)}[/bold]  {escape(text)}")


# --------------------------------------------------------------------------- app
# The what-if page; Solara and uvicorn load only when the command runs.


@app.command("app")
@click.argument("scenario", default="baseline")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True,
              help="Port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on (127.0.0.1: this machine only).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a key of the reference scenario (repeatable).")
@click.option("--save-dir", type=_PathOption(file_okay=False, path_type=Path), default=".",
              help="Folder where 'Save as scenario' writes its files.  [default: .]")
@click.option("--reps", type=click.IntRange(2, 200), default=10, show_default=True,
              help="Replications a change is refined to at first (a control on the page).")
def app_command(scenario: str, port: int, host: str, overrides: tuple[str, ...],
                save_dir: Path, reps: int) -> None:
    """Serve the interactive what-if page against SCENARIO (the reference; default: baseline).

    Change a budget, the team, a hiring month or an alignment lever and the plan runs against
    the reference on common random numbers, refined as replications finish. Ctrl-C stops."""
    from gtmsim.app.server import AppError, check_address, serve

    problems: list[str] = []  # every mistake at once, before anything starts
    try:
        load_scenario(scenario, overrides)
    except ScenarioError as exc:
        problems += exc.problems
    if not save_dir.is_dir():
        problems.append(f"gtmsim: --save-dir {save_dir}: not a folder; create it first")
    try:
        check_address(host, port)
    except AppError as exc:
        problems.append(f"gtmsim: {exc}")
    if problems:
        for line in problems:
            err.print(line, markup=False)
        raise SystemExit(EXIT_BAD_INPUT)
    err.print(f"gtmsim: the what-if page for {scenario} is at http://{host}:{port}/ "
              "(Ctrl-C stops)", markup=False)
    try:
        serve(scenario, host=host, port=port, overrides=overrides, save_dir=save_dir,
              reps=reps)
    except AppError as exc:
        err.print(f"gtmsim: {exc}", markup=False)
        raise SystemExit(EXIT_BAD_INPUT) from None


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so that work stops the same way."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end a command like Ctrl-C: workers stopped, finished runs kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = [s for s in STOP_SIGNALS if s != signal.SIGINT]
    previous = {s: signal.signal(s, _raise_interrupted) for s in wanted}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (tests call it in-process)."""
    try:
        with _stop_signals():
            app.main(args=list(argv) if argv is not None else None, prog_name="gtmsim",
                     standalone_mode=False)
        return EXIT_OK
    except ScenarioError as exc:
        for line in exc.problems:
            err.print(line, markup=False)
        return EXIT_BAD_INPUT
    except (*_domain_errors(), ResultsError) as exc:
        err.print(f"gtmsim: {exc}", markup=False)
        return EXIT_BAD_INPUT
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort as exc:  # click's form of a KeyboardInterrupt
        signum = getattr(exc.__context__, "signum", signal.SIGINT)
        err.print(f"Interrupted by {signal.Signals(signum).name}.")
        return 128 + signum
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_FAILURE
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        err.print(f"Interrupted by {signal.Signals(signum).name}.")
        return 128 + signum
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        err.print(f"gtmsim: unexpected error: {type(exc).__name__}: {exc}", markup=False)
        err.print("Please report it with the command line and the scenario file.", markup=False)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
