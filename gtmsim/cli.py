"""The `gtmsim` command line: argument parsing and printing only.

Every command calls a Python function a notebook can call too. Exit codes: 0 success,
2 bad input (scenario, option or folder), 1 unexpected failure.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import click
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from gtmsim.metrics import FUNNEL_COLUMNS, METRICS
from gtmsim.model import simulate
from gtmsim.results import MANIFEST, MONTHLY, write_run
from gtmsim.scenario import (
    ScenarioError,
    check_files,
    load_scenario,
    question_of,
    shipped_scenarios,
)

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2

# Scripts and CI read the output through a pipe: give tables room instead of 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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


def funnel_table(monthly: pd.DataFrame, title: str = "") -> Table:
    """The readable monthly funnel table the CLI prints."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for name in FUNNEL_COLUMNS:
        m = METRICS[name]
        header = m.label if m.unit in ("fraction", "month") else f"{m.label}\n({m.unit})"
        table.add_column(header, justify="right")
    for _, row in monthly.iterrows():
        table.add_row(*(_fmt(n, row[n]) for n in FUNNEL_COLUMNS))
    return table


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gtmsim")
def app() -> None:
    """gtmsim: a go-to-market simulator. Marketing and sales agents on a prospect
    market, siloed or aligned, over months."""


@app.command()
@click.argument("scenario", default="baseline")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key, e.g. --set sales.reps=6 (repeatable).")
@click.option("--seed", type=click.IntRange(min=0), help="Seed (default: the scenario's).")
@click.option("--months", type=click.IntRange(1, 600), help="Months to simulate.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Results folder (default: results/<scenario>).")
@click.option("--quiet", "-q", is_flag=True, help="No progress and no table; print the folder.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of the table.")
def run(scenario: str, overrides: tuple[str, ...], seed: int | None, months: int | None,
        out_dir: Path | None, quiet: bool, as_json: bool) -> None:
    """Run SCENARIO (a file or a shipped name; default: baseline) and write its results."""
    sc = load_scenario(scenario, overrides)
    months = months or sc.months
    folder = out_dir or Path("results") / sc.name
    show_progress = not quiet and not as_json and err.is_terminal
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("months"), TimeRemainingColumn(), console=err,
                  disable=not show_progress, transient=True) as progress:
        task = progress.add_task(f"Simulating {sc.name}", total=months)
        result = simulate(sc, seed=seed, months=months,
                          on_month=lambda done, total: progress.update(task, completed=done))
    write_run(result, folder, command=["gtmsim", *sys.argv[1:]])
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
    if quiet:
        click.echo(str(folder))
        return
    if sc.question:
        out.print(f"[bold]{sc.name}[/bold]: {sc.question}")
    out.print(funnel_table(result.monthly))
    out.print(
        f"{months} months, seed {result.seed}, {sc.market.prospects:,} prospects, "
        f"{result.elapsed_s:.2f} s. Cumulative bookings {_fmt('bookings', last.cumulative_bookings)}, "
        f"{int(last.customers):,} customers."
    )
    out.print(f"Results: {folder / MONTHLY} and {folder / MANIFEST}")


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
        table.add_row(name, q)
    out.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (tests call it in-process)."""
    try:
        app.main(args=list(argv) if argv is not None else None, prog_name="gtmsim",
                 standalone_mode=False)
        return EXIT_OK
    except ScenarioError as exc:
        for line in exc.problems:
            err.print(line, markup=False)
        return EXIT_BAD_INPUT
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        err.print("Interrupted.")
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_FAILURE
    except KeyboardInterrupt:
        err.print("Interrupted.")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        err.print(f"gtmsim: unexpected error: {type(exc).__name__}: {exc}", markup=False)
        err.print("Please report it with the command line and the scenario file.", markup=False)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
