"""History files: a company's monthly funnel, read and checked like a scenario.

A history file (CSV or XLSX) has one row per month: a `month` column (1..T, or `YYYY-MM`),
any of the monthly metric columns (`new_leads`, `new_opportunities`, `wins`, `bookings`, ...),
optionally a `segment` column, and known inputs (`marketing_spend`, `<program>_spend`,
`reps`) that become the scenario's timeline for the months they cover. Every problem is
reported at once, each naming the file, the row, the column and what was expected.

`write_history` writes a run's monthly table in this format, so a run with known parameters
can stand in for a company (tests, teaching, benchmarking).
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gtmsim.metrics import COLUMNS, METRICS
from gtmsim.scenario import Scenario, ScenarioError, scenario_from_dict

# Columns a CRM export typically has; calibration fits these when present (and others only
# when asked for by name).
CRM_COLUMNS = ("new_leads", "new_opportunities", "wins", "losses", "bookings", "customers",
               "churned", "lead_response_days_median")
# Known inputs: they set the scenario for the months they cover instead of being fitted.
INPUT_COLUMNS = ("marketing_spend", "reps")
SPEND_SUFFIX = "_spend"
# Every other metric column may be present (a `gtmsim history` export writes them all).
METRIC_COLUMNS = tuple(c for c in COLUMNS if c != "month" and c not in INPUT_COLUMNS)
# Columns whose monthly values add up across segments.
_ADDITIVE_KINDS = ("flow", "stock", "money")
_YYYY_MM = re.compile(r"^(\d{4})-(\d{1,2})$")


class HistoryError(ScenarioError):
    """A bad history file or a history that does not fit the scenario; one problem per line."""


@dataclass(frozen=True)
class History:
    """A validated history: one row per month (1-based, as in a run), NaN where blank.

    Attributes:
        source: the file it was read from.
        table: index `month` (1..T, gaps allowed), one column per metric or input.
        labels: the month as written in the file, by month number.
        segments: the segment names found (their rows were summed per month).
        digest: SHA-256 of the file's bytes.
    """

    source: str
    table: pd.DataFrame
    labels: dict[int, str] = field(default_factory=dict)
    segments: tuple[str, ...] = ()
    digest: str = ""

    @property
    def months(self) -> int:
        """The last month the history covers."""
        return int(self.table.index.max())

    @property
    def metrics(self) -> list[str]:
        """The metric columns present (fitted or not)."""
        return [c for c in self.table.columns if c in METRIC_COLUMNS]

    @property
    def inputs(self) -> list[str]:
        """The known-input columns present."""
        return [c for c in self.table.columns if c not in METRIC_COLUMNS]

    def default_columns(self) -> list[str]:
        """The columns calibration fits unless told otherwise: the CRM columns present."""
        return [c for c in CRM_COLUMNS if c in self.table.columns
                and self.table[c].notna().any()]

    def timeline(self, scenario: Scenario) -> list[dict[str, Any]]:
        """Timeline entries that set the known inputs month by month.

        `reps` sets `sales.reps`; `<program>_spend` sets that program's monthly budget;
        `marketing_spend` scales every program's budget in the scenario's proportions (a
        program with its own spend column keeps that). Blank cells change nothing.
        """
        base = {name: p.monthly_budget for name, p in scenario.marketing.programs.items()}
        own = {c[: -len(SPEND_SUFFIX)] for c in self.inputs if c.endswith(SPEND_SUFFIX)
               and c != "marketing_spend"}
        shared = {k: v for k, v in base.items() if k not in own}
        entries = []
        for month, row in self.table.iterrows():
            changes: dict[str, Any] = {}
            if "reps" in row and not pd.isna(row["reps"]):
                changes["sales.reps"] = int(row["reps"])
            for program in own:
                value = row[program + SPEND_SUFFIX]
                if not pd.isna(value):
                    changes[f"marketing.programs.{program}.monthly_budget"] = float(value)
            if "marketing_spend" in row and not pd.isna(row["marketing_spend"]):
                rest = float(row["marketing_spend"]) - sum(
                    float(row[p + SPEND_SUFFIX]) for p in own if not pd.isna(row[p + SPEND_SUFFIX]))
                total = sum(shared.values())
                for program, budget in shared.items():
                    share = budget / total if total > 0 else 1 / len(shared)
                    changes[f"marketing.programs.{program}.monthly_budget"] = max(0.0, rest * share)
            if changes:
                entries.append({"month": int(month), "set": changes,
                                "note": f"history {self.labels.get(int(month), month)}"})
        return entries

    def apply(self, scenario: Scenario, months: int | None = None) -> Scenario:
        """`scenario` with the known inputs as timeline entries (after its own) and its
        horizon set to `months` (default: the history's last month)."""
        data = scenario.to_dict()
        data["months"] = months or self.months
        data["timeline"] = [*data.get("timeline", []), *self.timeline(scenario)]
        return scenario_from_dict(data, source=f"{self.source} (known inputs)")

    def observed(self, columns: Sequence[str]) -> pd.DataFrame:
        """The fitted columns on months 1..T (rows for missing months are all NaN)."""
        return self.table.reindex(range(1, self.months + 1))[list(columns)].astype(float)


# --------------------------------------------------------------------------- reading


def _allowed(scenario: Scenario | None) -> list[str]:
    names = ["month", "segment", *METRIC_COLUMNS, *INPUT_COLUMNS]
    if scenario is not None:
        names += [p + SPEND_SUFFIX for p in scenario.marketing.programs]
    return names


def _read_cells(path: Path) -> tuple[list[str], list[list[Any]], int]:
    """Header and rows as read (strings or numbers), and the file row of the first data
    row (1-based, as a spreadsheet shows it)."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        sheet = book.worksheets[0]
        rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        book.close()
    elif suffix in (".csv", ".txt", ""):
        import csv

        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = [list(r) for r in csv.reader(f)]
    else:
        raise HistoryError([f"{path}: expected a .csv or .xlsx file, got '{path.suffix}'"])
    rows = [r for r in rows if any(c not in (None, "") and str(c).strip() for c in r)]
    if not rows:
        return [], [], 2
    header = ["" if c is None else str(c).strip() for c in rows[0]]
    return header, rows[1:], 2


def _number(cell: Any) -> float | None:
    """The cell as a number; None when blank; NaN when not a number."""
    if cell is None:
        return None
    if isinstance(cell, bool):
        return math.nan
    if isinstance(cell, (int, float)):
        return float(cell) if math.isfinite(cell) else math.nan
    text = str(cell).strip().replace(",", "")
    if not text:
        return None
    if text.startswith("$"):
        text = text[1:]
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def _month(cell: Any) -> tuple[int | None, tuple[int, int] | None]:
    """A month cell as a month number or a (year, month) pair; (None, None) when neither."""
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return (int(cell), None) if float(cell).is_integer() else (None, None)
    if hasattr(cell, "year") and hasattr(cell, "month"):  # a date from a spreadsheet
        return None, (cell.year, cell.month)
    text = "" if cell is None else str(cell).strip()
    if re.fullmatch(r"\d+", text):
        return int(text), None
    found = _YYYY_MM.match(text)
    if found and 1 <= int(found.group(2)) <= 12:
        return None, (int(found.group(1)), int(found.group(2)))
    return None, None


def read_history(path: str | Path, scenario: Scenario | None = None, *,
                 months: int | None = None) -> History:
    """Read and validate a history file.

    Args:
        path: a CSV or XLSX file.
        scenario: the scenario it will be fitted with: its horizon (or `months`) bounds the
            months, its segments the `segment` column, its programs the `<program>_spend`
            columns.
        months: the horizon, when it is not the scenario's.

    Raises:
        HistoryError: every problem found, each naming the file, row and column.
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise HistoryError([f"{where}: no such file" if not path.exists()
                            else f"{where}: not a file"])
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        header, rows, first = _read_cells(path)
    except HistoryError:
        raise
    except UnicodeDecodeError:
        raise HistoryError([f"{where}: not UTF-8 text; save the file as UTF-8 CSV or as XLSX"]) from None
    except Exception as exc:  # noqa: BLE001 - csv and openpyxl raise many types for a bad file
        raise HistoryError([f"{where}: cannot read ({type(exc).__name__}: {exc})"]) from None
    if not header:
        raise HistoryError([f"{where}: empty file; expected a header row with 'month' and "
                            "metric columns (e.g. month,new_leads,wins,bookings), then one "
                            "row per month"])
    problems: list[str] = []
    allowed = _allowed(scenario)
    columns: dict[str, int] = {}
    for i, name in enumerate(header):
        if not name:
            if any(i < len(r) and r[i] not in (None, "") for r in rows):
                problems.append(f"{where}: column {i + 1}: has values but no header")
            continue
        if name in columns:
            problems.append(f"{where}: column '{name}': appears twice in the header")
        elif name not in allowed:
            close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else (
                f"; expected month, segment, a metric ({', '.join(CRM_COLUMNS)}, ...) or an "
                "input (marketing_spend, <program>_spend, reps)")
            problems.append(f"{where}: column '{name}': unknown column{hint}")
        else:
            columns[name] = i
    if "month" not in columns:
        problems.append(f"{where}: no 'month' column; expected one (1..T or YYYY-MM)")
    values = [c for c in columns if c not in ("month", "segment")]
    if not any(c in METRIC_COLUMNS for c in values) and not any(
            p.endswith("unknown column") or "did you mean" in p for p in problems):
        problems.append(f"{where}: no metric column to fit; expected at least one of "
                        f"{', '.join(CRM_COLUMNS)}")
    if not rows:
        problems.append(f"{where}: no data rows; expected one row per month after the header")
    horizon = months or (scenario.months if scenario is not None else None)
    segments = set(scenario.market.segments) if scenario is not None else None

    def cell(row: list[Any], name: str) -> Any:
        i = columns[name]
        return row[i] if i < len(row) else None

    records: list[dict[str, Any]] = []
    numbered = dated = False
    for r, row in enumerate(rows):
        line = r + first
        record: dict[str, Any] = {"_line": line}
        if "month" in columns:
            raw = cell(row, "month")
            number, ym = _month(raw)
            if number is None and ym is None:
                shown = "a blank cell" if raw in (None, "") else repr(raw)
                problems.append(f"{where}: row {line}, column 'month': expected a month number "
                                f"(1, 2, ...) or YYYY-MM, got {shown}")
            elif number is not None and number < 1:
                problems.append(f"{where}: row {line}, column 'month': must be ≥ 1, got {number}")
            else:
                numbered |= number is not None
                dated |= ym is not None
                record["_month"] = number if number is not None else ym
                record["_label"] = (str(number) if number is not None
                                    else f"{ym[0]:04d}-{ym[1]:02d}")
        if "segment" in columns:
            seg = cell(row, "segment")
            seg = "" if seg is None else str(seg).strip()
            if seg and segments is not None and seg not in segments:
                close = difflib.get_close_matches(seg, sorted(segments), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                problems.append(f"{where}: row {line}, column 'segment': unknown segment "
                                f"'{seg}'{hint} (the scenario has {', '.join(sorted(segments))})")
            record["_segment"] = seg
        for name in values:
            raw = cell(row, name)
            value = _number(raw)
            if value is not None and math.isnan(value):
                problems.append(f"{where}: row {line}, column '{name}': expected a number, "
                                f"got {raw!r}")
                continue
            if value is not None:
                metric = METRICS.get(name)
                if value < 0:
                    what = "a count" if metric is not None and metric.kind in ("flow", "stock") \
                        else "an amount"
                    problems.append(f"{where}: row {line}, column '{name}': must be ≥ 0 "
                                    f"({what}), got {value:g}")
                elif metric is not None and metric.unit == "fraction" and value > 1:
                    problems.append(f"{where}: row {line}, column '{name}': a fraction must be "
                                    f"≤ 1, got {value:g}")
                elif name == "reps" and not value.is_integer():
                    problems.append(f"{where}: row {line}, column 'reps': expected a whole "
                                    f"number of reps, got {value:g}")
            record[name] = value
        records.append(record)
    if numbered and dated:
        problems.append(f"{where}: column 'month': mixes month numbers and YYYY-MM; use one")
    # YYYY-MM months count from the first month in the file.
    if dated and not numbered:
        dates = [rec["_month"] for rec in records if "_month" in rec]
        y0, m0 = min(dates) if dates else (0, 0)
        for rec in records:
            if "_month" in rec:
                y, m = rec["_month"]
                rec["_month"] = (y - y0) * 12 + (m - m0) + 1
    seen: dict[tuple[int, str], int] = {}
    for rec in records:
        if "_month" not in rec:
            continue
        key = (rec["_month"], rec.get("_segment", ""))
        if key in seen:
            seg = f" for segment '{key[1]}'" if key[1] else ""
            problems.append(f"{where}: row {rec['_line']}, column 'month': month "
                            f"{rec['_label']}{seg} is already on row {seen[key]}; give each "
                            "month once")
        else:
            seen[key] = rec["_line"]
        if horizon is not None and rec["_month"] > horizon:
            problems.append(f"{where}: row {rec['_line']}, column 'month': month {rec['_label']} "
                            f"(month {rec['_month']}) is after the scenario's last month "
                            f"({horizon}); give --months or a shorter history")
    segs = sorted({rec.get("_segment", "") for rec in records} - {""})
    if segs and "lead_response_days_median" in columns:
        problems.append(f"{where}: column 'lead_response_days_median': a median cannot be "
                        "added up across segment rows; give it on rows without a segment or "
                        "drop the column")
    if segs and any(not rec.get("_segment") for rec in records if "_month" in rec):
        problems.append(f"{where}: column 'segment': some rows have a segment and others do "
                        "not; give every row a segment, or none")
    if problems:
        raise HistoryError(list(dict.fromkeys(problems)))
    df = pd.DataFrame([{k: v for k, v in rec.items() if not k.startswith("_") or k == "_month"}
                       for rec in records]).rename(columns={"_month": "month"})
    df[values] = df[values].astype(float)
    labels = {rec["_month"]: rec["_label"] for rec in records}
    if segs:
        # min_count=1: a month blank in every segment stays blank.
        df = df.groupby("month")[values].sum(min_count=1)
        for name in values:
            if METRICS.get(name) is not None and METRICS[name].kind not in _ADDITIVE_KINDS:
                raise HistoryError([f"{where}: column '{name}': a {METRICS[name].kind} cannot be "
                                    "added up across segment rows; drop the column or the "
                                    "segment column"])
    else:
        df = df.set_index("month")[values]
    df = df.sort_index()
    return History(source=where, table=df, labels=dict(sorted(labels.items())),
                   segments=tuple(segs), digest=digest)


def check_fit_columns(history: History, columns: Sequence[str] | None) -> list[str]:
    """The columns to fit: `columns` (checked against the file) or the CRM columns present.

    Raises:
        HistoryError: a column that is not in the file, is an input, or has no values.
    """
    if not columns:
        chosen = history.default_columns()
        if not chosen:
            raise HistoryError([f"{history.source}: none of the CRM columns "
                                f"({', '.join(CRM_COLUMNS)}) has a value; name the columns "
                                "to fit with --columns"])
        return chosen
    problems = []
    for c in columns:
        if c in history.inputs:
            problems.append(f"--columns {c}: a known input (it sets the scenario), not fitted")
        elif c not in history.table.columns:
            close = difflib.get_close_matches(c, list(history.table.columns), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(f"--columns {c}: not a column of {history.source}{hint}")
        elif not history.table[c].notna().any():
            problems.append(f"--columns {c}: every cell of {history.source} is blank")
    if problems:
        raise HistoryError(problems)
    return list(dict.fromkeys(columns))


# --------------------------------------------------------------------------- writing


def history_table(monthly: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A run's monthly table in the history format: `month` and the metric columns (all,
    or `columns`), known inputs included.

    Raises:
        HistoryError: a column that is not a monthly metric.
    """
    every = [c for c in COLUMNS if c != "month" and c in monthly.columns]
    if columns:
        bad = [c for c in columns if c not in every]
        if bad:
            problems = []
            for c in bad:
                close = difflib.get_close_matches(c, every, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                problems.append(f"--columns {c}: not a monthly column{hint}")
            raise HistoryError(problems)
        every = list(dict.fromkeys(columns))
    return monthly[["month", *every]].reset_index(drop=True)


def write_history(folder: str | Path, output: str | Path,
                  columns: Sequence[str] | None = None) -> Path:
    """Write the monthly table of the run in results `folder` as a history file (CSV, or
    XLSX when `output` ends in .xlsx); returns the file.

    Raises:
        HistoryError: a bad column or output name; ResultsError: not a run folder.
    """
    from gtmsim.results import ResultsError, atomic_write, read_manifest, read_run

    folder, output = Path(folder), Path(output)
    kind = read_manifest(folder).get("kind")
    if kind != "run":
        raise ResultsError(f"{folder}: holds {kind} results; `history` takes the folder of "
                           "one run (gtmsim run --out DIR)")
    suffix = output.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise HistoryError([f"-o {output}: expected a .csv or .xlsx file name"])
    table = history_table(read_run(folder), columns)
    if suffix == ".xlsx":
        def write(tmp: Path) -> None:
            with pd.ExcelWriter(tmp, engine="openpyxl") as xl:
                table.to_excel(xl, index=False, sheet_name="history")
    else:
        def write(tmp: Path) -> None:
            table.to_csv(tmp, index=False)
    atomic_write(output, write, follow_links=True)
    return output

