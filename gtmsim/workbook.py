"""The workbook: a results folder's tables for a spreadsheet, as .xlsx or as CSV files.

Tables (one sheet or one CSV file each): `options` (each option against the reference,
compare and sweep only), `summary` (every key outcome per scenario, with intervals and
paired differences), `monthly` (per scenario, month and metric: the mean over
replications and its 95% confidence interval), `runs` (every row of the runs table),
`parameters` (every scenario key and the alignment levers in force, one column per
scenario) and `manifest` (seeds, versions, command). Numbers stay numbers: the sheets carry
number formats ($, %, days), frozen header rows and filters; the CSV files carry the same
values unformatted.

Written with xlsxwriter: a well-kept, dependency-free writer of the .xlsx format with
full control of number formats, frozen panes and column widths. The workbook is only
written, never read back by gtmsim, so a reader (openpyxl) is not needed at run time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gtmsim import decision
from gtmsim.experiment import OUTCOMES
from gtmsim.metrics import METRICS
from gtmsim.report import ReportError, Results, load_results, summary_table
from gtmsim.results import ResultsError, atomic_write, atomic_write_many, check_writable_file

WORKBOOK = "workbook.xlsx"
TABLES_DIR = "tables"
OUTCOME = {o.name: o for o in OUTCOMES}

# Number formats by unit (Excel's codes).
_FORMATS = {"$": '"$"#,##0;[Red]-"$"#,##0', "fraction": "0.0%", "days": "0.0", "month": "0.0",
            "count": "#,##0", "number": "#,##0.0", "pct": '0.0"%"', "int": "0"}


def _unit_format(unit: str) -> str:
    if unit.startswith("$"):
        return "$"
    if unit in ("fraction", "days", "month"):
        return unit
    return "number"


# --------------------------------------------------------------------------- the tables


def tables(res: Results) -> dict[str, pd.DataFrame]:
    """Every table of the workbook, by sheet name, numbers as numbers."""
    table = summary_table(res)
    names = decision.labels(res)
    out: dict[str, pd.DataFrame] = {}
    if res.kind != "run":
        out["options"] = decision.options(res, table)
    summary = table.copy()
    summary.insert(1, "label", summary["scenario"].astype(str).map(names))
    summary.insert(3, "outcome_label", summary["outcome"].map(lambda o: OUTCOME[o].label))
    summary.insert(4, "unit", summary["outcome"].map(lambda o: OUTCOME[o].unit))
    summary.attrs = {}
    out["summary"] = summary
    runs = res.display_runs
    monthly = decision.monthly_means(runs, [c for c in runs.columns if c in METRICS
                                            and c != "month"])
    monthly.insert(2, "label", monthly["scenario"].astype(str).map(names))
    monthly.insert(1, "metric_label", monthly["metric"].map(lambda m: METRICS[m].label))
    monthly.insert(2, "unit", monthly["metric"].map(lambda m: METRICS[m].unit))
    out["monthly"] = monthly
    full = res.runs.copy()
    full.insert(1, "label", runs["scenario"].astype(str).map(names).to_numpy())
    out["runs"] = full
    out["parameters"] = parameters(res)
    out["manifest"] = manifest_rows(res.manifest)
    return out


def parameters(res: Results) -> pd.DataFrame:
    """Every scenario key (dotted) and the levers in force: one row per key, one column
    per scenario (by label)."""
    columns: dict[str, dict[str, Any]] = {}
    for data, arm in zip(decision.scenario_dicts(res), decision.arms(res)):
        flat = decision._settings(data)
        # The months the runs went for (an experiment's --months overrides the file's).
        flat |= {"months": res.months,
                 "timeline": "; ".join(decision.timeline_sentences(data))}
        columns[arm.label] = {k: _cell_value(v) for k, v in flat.items()}
    frame = pd.DataFrame(columns)
    frame.index.name = "key"
    return frame.reset_index()


def _cell_value(v: Any) -> Any:
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return v


def manifest_rows(manifest: Mapping[str, Any]) -> pd.DataFrame:
    """The manifest as key/value rows: scalars as they are, lists and tables as JSON."""
    rows = []
    for k, v in manifest.items():
        if k == "scenarios" and isinstance(v, list):
            rows += [{"key": f"scenarios[{i}].name", "value": d.get("name")}
                     for i, d in enumerate(v) if isinstance(d, Mapping)]
            continue
        if k == "seeds" and isinstance(v, list):
            rows += [{"key": f"seeds[{i}]", "value": s} for i, s in enumerate(v)]
            continue
        if isinstance(v, Mapping):
            rows += [{"key": f"{k}.{kk}", "value": _cell_value(vv)} for kk, vv in v.items()]
            continue
        rows.append({"key": k, "value": _cell_value(v)})
    return pd.DataFrame(rows, columns=["key", "value"])


# --------------------------------------------------------------------------- formats


def _column_format(sheet: str, column: str) -> str | None:
    """The number format of a column whose unit does not vary by row."""
    if column in ("n", "reps", "replication", "payback_runs", "month"):
        return "int"
    if column == "seed":
        return None  # 63-bit seeds are written as text (Excel keeps 15 digits)
    if sheet == "options":
        if column.startswith(("bookings", "total_cost", "extra_cost", "net")):
            return "pct" if "pct" in column else "$"
        if column.startswith("roi") or column == "ahead":
            return "fraction"
        if column == "payback_month":
            return "month"
    if sheet == "summary" and column in ("diff_pct",):
        return "pct"
    if sheet == "summary" and column == "ahead":
        return "fraction"
    if sheet == "runs" and column in METRICS:
        return _unit_format(METRICS[column].unit)
    return None


_ROW_UNIT_COLUMNS = {"summary": ("mean", "ci_low", "ci_high", "diff", "diff_ci_low",
                                 "diff_ci_high"),
                     "monthly": ("mean", "ci_low", "ci_high")}


def _write_xlsx(path: Path, sheets: Mapping[str, pd.DataFrame]) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False,
                                           "strings_to_formulas": False,
                                           "strings_to_urls": False})
    header = book.add_format({"bold": True, "bg_color": "#EEF2F7", "bottom": 1,
                              "text_wrap": True, "valign": "top"})
    formats = {k: book.add_format({"num_format": v}) for k, v in _FORMATS.items()}
    for name, df in sheets.items():
        ws = book.add_worksheet(name)
        cols = list(df.columns)
        for j, c in enumerate(cols):
            ws.write_string(0, j, str(c), header)
        row_unit = df["unit"].to_numpy() if "unit" in df and name in _ROW_UNIT_COLUMNS else None
        per_column = [_column_format(name, str(c)) for c in cols]
        per_column = ["count" if f == "number" and pd.api.types.is_integer_dtype(df[c]) else f
                      for f, c in zip(per_column, cols)]  # whole counts without decimals
        by_row = set(_ROW_UNIT_COLUMNS.get(name, ()))
        values = df.to_numpy(dtype=object)
        for i in range(len(df)):
            for j, c in enumerate(cols):
                v = values[i, j]
                key = _unit_format(str(row_unit[i])) if row_unit is not None and c in by_row \
                    else per_column[j]
                _write(ws, i + 1, j, v, formats.get(key) if key else None, seed=c == "seed")
        for j, c in enumerate(cols):
            sample = [len(str(c))] + [len(str(v)) for v in values[:200, j]]
            ws.set_column(j, j, min(max(10, max(sample) + 2), 60))
        ws.freeze_panes(1, 2 if name in ("summary", "monthly", "runs", "options") else 1)
        if len(df):
            ws.autofilter(0, 0, len(df), len(cols) - 1)
    book.close()


def _write(ws: Any, i: int, j: int, v: Any, fmt: Any, *, seed: bool = False) -> None:
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or v is pd.NA:
        ws.write_blank(i, j, None, fmt)
    elif seed or (isinstance(v, (int, np.integer)) and abs(int(v)) > 2**53):
        ws.write_string(i, j, str(v))  # a double would round it (seeds are 63-bit)
    elif isinstance(v, (bool, np.bool_)):
        ws.write_boolean(i, j, bool(v))
    elif isinstance(v, (int, float, np.integer, np.floating)):
        ws.write_number(i, j, float(v), fmt)
    else:
        ws.write_string(i, j, str(v))


# --------------------------------------------------------------------------- export


def export(folder: str | Path, *, xlsx: str | Path | bool | None = None,
           csv: str | Path | bool | None = None) -> list[Path]:
    """Write the tables of a results folder as a workbook and/or CSV files.

    Args:
        folder: a results folder of `run`, `compare` or `sweep`.
        xlsx: the .xlsx file; True for `folder/workbook.xlsx`; None or False for none.
        csv: a folder for one CSV file per table; True for `folder/tables/`.

    Returns:
        The paths written (the workbook, then the CSV files).

    Raises:
        ReportError: `folder` is not a readable results folder, or a file cannot be
            written (nothing is replaced then).
    """
    folder = Path(folder)
    if not xlsx and not csv:
        raise ReportError("export: nothing to write; give --xlsx and/or --csv")
    book = (folder / WORKBOOK if xlsx is True else Path(xlsx)) if xlsx else None
    csv_dir = (folder / TABLES_DIR if csv is True else Path(csv)) if csv else None
    try:
        if book is not None:
            check_writable_file(book, follow_links=xlsx is not True)
        if csv_dir is not None and csv_dir.exists() and not csv_dir.is_dir():
            raise ReportError(f"{csv_dir}: exists and is not a folder; the CSV tables go in "
                              "a folder")
    except ResultsError as exc:
        raise ReportError(str(exc)) from None
    res = load_results(folder)
    sheets = tables(res)
    written: list[Path] = []
    try:
        if book is not None:
            atomic_write(book, lambda tmp: _write_xlsx(tmp, sheets), follow_links=xlsx is not True)
            written.append(book)
        if csv_dir is not None:
            csv_dir.mkdir(parents=True, exist_ok=True)
            files: dict[Path, Callable[[Path], None]] = {
                csv_dir / f"{name}.csv": (lambda tmp, d=df: d.to_csv(tmp, index=False))
                for name, df in sheets.items()}
            atomic_write_many(files)
            written += list(files)
    except ResultsError as exc:
        raise ReportError(str(exc)) from None
    return written


__all__ = ["TABLES_DIR", "WORKBOOK", "export", "manifest_rows", "parameters", "tables"]
