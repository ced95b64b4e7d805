"""What the CLI prints: whole numbers at any width, plain output for scripts, user text
escaped, sources named, and commands that start without the heavy libraries."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from gtmsim.cli import _fmt, main, print_funnel
from gtmsim.docs import tagged_assumptions
from gtmsim.metrics import FUNNEL_COLUMNS

ROOT = Path(__file__).parent.parent
SMALL = ["--set", "market.prospects=3000", "--months", "4", "--seed", "3"]


@pytest.fixture(scope="module")
def monthly() -> pd.DataFrame:
    """Six months of the full-size baseline: numbers in the thousands and the $100,000s."""
    from gtmsim import load_scenario, simulate

    return simulate(load_scenario("baseline"), seed=1, months=6).monthly


def _cells(monthly: pd.DataFrame) -> list[list[str]]:
    return [[_fmt(n, row[n]) for n in FUNNEL_COLUMNS] for _, row in monthly.iterrows()]


def _whole(text: str, cell: str) -> bool:
    """`cell` appears in `text` not as a piece of a longer number."""
    return re.search(rf"(?<![\d,.$]){re.escape(cell)}(?![\d,.%])", text) is not None


@pytest.mark.parametrize("width", [60, 80, 100, 120, 200])
def test_funnel_keeps_every_number_whole_at_any_width(monthly, width):
    console = Console(width=width, file=io.StringIO(), force_terminal=True, color_system=None)
    print_funnel(console, monthly)
    text = console.file.getvalue()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    assert any(c.startswith("$") and len(c) >= 6 for row in _cells(monthly) for c in row)
    for month, row in zip(monthly["month"], _cells(monthly)):
        lines = [line for line in text.splitlines() if re.match(rf"\W*{month}\b", line)]
        for cell in row:
            assert any(_whole(line, cell) for line in lines), (width, month, cell)
    for header in ("Month", "Opportunities", "Bookings", "CAC", "Win rate"):
        assert header in text.replace("\n", " ") or header.split()[0] in text


def test_run_prints_a_plain_table_when_stdout_is_not_a_terminal(tmp_path, capsys):
    assert main(["run", *SMALL, "--out", str(tmp_path / "r")]) == 0
    printed = capsys.readouterr().out
    assert not set(printed) & set("┏┃━│└─┡╇…") and "\x1b[" not in printed
    lines = [line.split("\t") for line in printed.splitlines() if "\t" in line]
    header, rows = lines[0], lines[1:]
    assert header[0] == "Month" and len(header) == len(FUNNEL_COLUMNS)
    monthly = pd.read_parquet(tmp_path / "r" / "monthly.parquet")
    assert rows == _cells(monthly)


def test_run_csv_prints_the_monthly_table(tmp_path, capsys):
    assert main(["run", *SMALL, "--csv", "--out", str(tmp_path / "r")]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    stored = pd.read_parquet(tmp_path / "r" / "monthly.parquet")
    pd.testing.assert_frame_equal(printed, stored, check_dtype=False)


MARKUP_QUESTION = "Does [/bold] or [red]x break the [bold]printer?"


def test_markup_in_a_question_is_printed_as_written(tmp_path, capsys):
    path = tmp_path / "markup.toml"
    path.write_text(f'extends = "baseline"\nname = "markup"\nquestion = "{MARKUP_QUESTION}"\n',
                    encoding="utf-8")
    assert main(["check", str(path)]) == 0
    assert main(["run", str(path), *SMALL, "--out", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    assert MARKUP_QUESTION in captured.out and "unexpected error" not in captured.err
    console = Console(width=100, file=io.StringIO(), force_terminal=True, color_system=None)
    from gtmsim import cli
    cli._print_title(console, "a[/bold]b", MARKUP_QUESTION)
    assert f"a[/bold]b: {MARKUP_QUESTION}" in console.file.getvalue()


def test_markup_in_a_name_is_refused_or_printed_as_written(tmp_path, capsys):
    path = tmp_path / "markup.toml"
    path.write_text('extends = "baseline"\nname = "m[red]x[/bold]"\nquestion = "[red]q"\n',
                    encoding="utf-8")
    code = main(["run", str(path), *SMALL, "--out", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert "unexpected error" not in captured.err and "Traceback" not in captured.err
    if code == 2:
        assert "name" in captured.err
    else:
        assert code == 0 and "m[red]x[/bold]: [red]q" in captured.out


def test_compare_table_prints_scenario_names_as_written():
    from gtmsim import cli
    from gtmsim.experiment import OUTCOMES

    rows = []
    for o in OUTCOMES:
        for name in ("[bold]a", "b[/red]"):
            rows.append({"scenario": name, "outcome": o.name, "mean": 1.0, "ci_low": 0.5,
                         "ci_high": 1.5, "diff": 0.1, "diff_ci_low": 0.0, "diff_ci_high": 0.2,
                         "diff_pct": 10.0, "ahead": 0.5,
                         "n": 3, "reps": 3})
    console = Console(width=200, file=io.StringIO(), force_terminal=True, color_system=None)
    console.print(cli.compare_table(pd.DataFrame(rows)))
    text = console.file.getvalue()
    assert "[bold]a" in text and "b[/red]" in text


def test_scenarios_list_escapes_questions(monkeypatch, capsys):
    from gtmsim import cli

    monkeypatch.setattr(cli, "shipped_scenarios", lambda: {"x[/bold]": Path("x.toml")})
    monkeypatch.setattr(cli, "question_of", lambda path: MARKUP_QUESTION)
    assert main(["scenarios"]) == 0
    printed = capsys.readouterr().out
    assert "x[/bold]" in printed and MARKUP_QUESTION in printed


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    keep = (".py", ".md", ".ipynb", ".toml", ".txt", ".cfg", ".yml", ".yaml")
    return [ROOT / n for n in names if n.endswith(keep) and (ROOT / n).is_file()]


# Papers users do not have: the project's own design brief or issue tracker.
UNCITABLE = re.compile(r"design brief|the brief\b|brief's|the issue\b|issue's|issue notes", re.I)


def test_no_assumption_or_doc_cites_a_design_brief():
    assert tagged_assumptions()
    for place, text in tagged_assumptions():
        assert not UNCITABLE.search(text), place
    for path in _tracked_text_files():
        if "tests" in path.relative_to(ROOT).parts:
            continue
        assert not UNCITABLE.search(path.read_text(encoding="utf-8")), path


def test_readme_states_the_default_market_size_consistently():
    from gtmsim import load_scenario
    from gtmsim.scenario import Market

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    schema_default = Market.model_fields["prospects"].default
    baseline = load_scenario("baseline").market.prospects
    assert f"| `market.prospects` | prospects | {schema_default} |" in readme
    sizes = {int(s.replace(",", "")) for s in re.findall(r"(\d[\d,]*) prospects", readme)}
    for size in sizes & {20_000, 50_000}:
        assert size in (schema_default, baseline)
    assert f"{baseline:,} prospects" in readme
    assert 'if __name__ == "__main__":' in readme


LIGHT = ["dask", "distributed", "matplotlib", "mesa", "gtmsim.model", "gtmsim.kernels", "numba", "scipy"]


@pytest.mark.parametrize("argv, code", [
    (["--help"], 0), (["check", "baseline"], 0), (["scenarios"], 0), (["assumptions"], 0),
    (["check", str(ROOT / "tests" / "data" / "three_mistakes.toml")], 2),
])
def test_light_commands_start_without_the_heavy_libraries(argv, code):
    script = (f"import sys\nfrom gtmsim.cli import main\nrc = main({argv!r})\n"
              f"print('LOADED', [m for m in {LIGHT!r} if m in sys.modules], rc)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"LOADED [] {code}"


def test_the_package_imports_the_model_only_when_asked():
    code = ("import sys, gtmsim\nassert 'mesa' not in sys.modules\n"
            "from gtmsim import simulate, GTMModel, RunResult\n"
            "assert 'mesa' in sys.modules and callable(simulate)\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


@pytest.fixture(scope="module")
def tiny_experiments():
    from gtmsim.experiment import compare, sweep

    small = {"market.prospects": 1000}
    return (compare(["siloed", "aligned"], reps=2, months=2, overrides=small, workers=1),
            sweep("baseline", {"sales.reps": [2, 4]}, reps=2, months=2, overrides=small,
                  workers=1))


@pytest.mark.parametrize("width", [60, 80, 120])
def test_compare_and_sweep_tables_keep_every_number_whole(tiny_experiments, width):
    from gtmsim import cli

    compared, swept = tiny_experiments
    for table, keys in ((cli.compare_table(compared.summary()), 2),
                        (cli.sweep_table(swept.summary(), list(swept.keys)), 1)):
        cells = {line for col in table.columns for cell in cli._plain_cells(col)
                 for line in cell.split("\n") if line}
        console = Console(width=width, file=io.StringIO(), force_terminal=True,
                          color_system=None)
        cli.print_split(console, table, keys)
        text = console.file.getvalue()
        assert "…" not in text
        assert max(len(line) for line in text.splitlines()) <= width
        for cell in cells:
            assert cell in text, (width, cell)


def test_compare_table_through_a_pipe_is_tab_separated(tiny_experiments):
    from gtmsim import cli

    compared, _ = tiny_experiments
    console = Console(width=80, file=io.StringIO(), force_terminal=False)
    cli.print_split(console, cli.compare_table(compared.summary()), 2)
    lines = console.file.getvalue().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Outcome\t"))
    widths = {len(line.split("\t")) for line in lines[header:]}
    assert widths == {8} and not any(c in "".join(lines) for c in "┃│━")
