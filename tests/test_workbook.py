"""The workbook and CSV tables: read back with openpyxl and pandas, numbers as numbers."""

from __future__ import annotations

import json

import numpy as np
import openpyxl
import pandas as pd
import pytest
from scipy import stats

from gtmsim.cli import main
from gtmsim.experiment import read_experiment
from gtmsim.report import ReportError, load_results
from gtmsim.results import write_run
from gtmsim.workbook import export

SHEETS = ["options", "summary", "monthly", "runs", "parameters", "manifest"]


@pytest.fixture(scope="module")
def exported(decision_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    paths = export(decision_folder, xlsx=out / "book.xlsx", csv=out / "tables")
    return out, paths


def _sheet(book, name: str) -> pd.DataFrame:
    rows = list(book[name].iter_rows(values_only=True))
    return pd.DataFrame(rows[1:], columns=rows[0])


def test_sheets_have_frozen_headers_filters_and_number_formats(exported):
    out, paths = exported
    assert paths[0] == out / "book.xlsx"
    book = openpyxl.load_workbook(paths[0])
    assert book.sheetnames == SHEETS
    for ws in book:
        assert ws.freeze_panes in ("B2", "C2")
        assert ws.auto_filter.ref
    ws = book["options"]
    header = [c.value for c in ws[1]]
    col = header.index("bookings_diff") + 1
    cell = ws.cell(row=3, column=col)
    assert isinstance(cell.value, float) and "$" in cell.number_format
    roi = ws.cell(row=3, column=header.index("roi") + 1)
    assert isinstance(roi.value, float) and "%" in roi.number_format
    # In long tables the format follows each row's unit.
    ws = book["summary"]
    header = [c.value for c in ws[1]]
    for row in ws.iter_rows(min_row=2):
        unit, mean = row[header.index("unit")].value, row[header.index("mean")]
        if unit == "$" and mean.value is not None:
            assert "$" in mean.number_format
        if unit == "fraction" and mean.value is not None:
            assert "%" in mean.number_format


def test_numbers_match_the_experiment(exported, decision_folder):
    _, paths = exported
    book = openpyxl.load_workbook(paths[0])
    exp = read_experiment(decision_folder)
    summary = _sheet(book, "summary")
    expected = exp.summary()
    mine = summary.set_index(["scenario", "outcome"])["mean"]
    for _, r in expected.iterrows():
        got = mine.loc[(r["scenario"], r["outcome"])]
        if np.isfinite(r["mean"]):
            assert got == pytest.approx(r["mean"])
        else:
            assert pd.isna(got)
    ws = book["summary"]
    col = [c.value for c in ws[1]].index("mean")
    raw = [row[col] for row in ws.iter_rows(min_row=2, values_only=True)]
    assert None in raw and all(v is None or isinstance(v, (int, float)) for v in raw)  # no "nan"
    monthly = _sheet(book, "monthly")
    one = monthly[(monthly.scenario == "acme_fix") & (monthly.metric == "wins")
                  & (monthly.month == 5)].iloc[0]
    x = exp.runs[(exp.runs.scenario == "acme_fix") & (exp.runs.month == 5)]["wins"].to_numpy()
    half = stats.t.ppf(0.975, len(x) - 1) * stats.sem(x)
    assert one["mean"] == pytest.approx(x.mean())
    assert one["ci_high"] == pytest.approx(x.mean() + half)
    assert one["label"] == "Fix the hand-off" and one["n"] == len(x)
    runs = _sheet(book, "runs")
    assert len(runs) == len(exp.runs)
    assert set(runs["seed"]) == {str(s) for s in exp.seeds}  # 63-bit seeds kept whole as text
    params = _sheet(book, "parameters").set_index("key")
    assert params.loc["months", "Siloed"] == 6  # the months the runs went for
    assert params.loc["timeline", "Acme reps"] == "From month 3: sales reps 6 (two reps join)."
    manifest = _sheet(book, "manifest").set_index("key")["value"]
    assert manifest["seeds[0]"] == str(exp.seeds[0]) and manifest["kind"] == "compare"


def test_csv_tables_hold_the_same_values(exported):
    out, paths = exported
    names = [p.name for p in paths[1:]]
    assert names == [f"{s}.csv" for s in SHEETS]
    book = openpyxl.load_workbook(paths[0])
    for sheet in ("options", "summary", "monthly"):
        csv = pd.read_csv(out / "tables" / f"{sheet}.csv")
        xl = _sheet(book, sheet)
        assert list(csv.columns) == list(xl.columns) and len(csv) == len(xl)
        numeric = [c for c in csv.columns if pd.api.types.is_float_dtype(csv[c])]
        np.testing.assert_allclose(csv[numeric].to_numpy(dtype=float),
                                   xl[numeric].astype(float).to_numpy(), equal_nan=True)


def test_cli_export_and_its_errors(decision_folder, tmp_path, capsys):
    run = tmp_path / "run"
    from gtmsim import load_scenario, simulate

    write_run(simulate(load_scenario("baseline", {"market.prospects": 2000, "months": 4}),
                       seed=2), run)
    assert main(["export", str(run), "--xlsx", "--csv"]) == 0
    out = capsys.readouterr().out
    assert "Workbook:" in out and "Tables:" in out
    book = openpyxl.load_workbook(run / "workbook.xlsx")
    assert book.sheetnames == SHEETS[1:]  # a single run has no options
    assert (run / "tables" / "monthly.csv").is_file()
    assert main(["export", str(run), "--xlsx", str(tmp_path / "x.xlsx"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["workbook"] == str(tmp_path / "x.xlsx") and printed["csv"] == []
    assert main(["export", str(run)]) == 2  # nothing asked for
    assert main(["export", str(tmp_path / "missing"), "--xlsx"]) == 2
    assert "not a results folder" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()
    with pytest.raises(ReportError, match="nothing to write"):
        export(run)
    assert load_results(decision_folder).kind == "compare"
