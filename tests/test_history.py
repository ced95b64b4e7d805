"""History files: reading, every problem at once, known inputs as timeline, and `history`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gtmsim import load_scenario, simulate
from gtmsim.cli import main
from gtmsim.history import HistoryError, read_history, write_history
from gtmsim.results import write_run

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("baseline", {"market.prospects": 2000, "months": 6})


def problems(path: Path, scenario) -> list[str]:
    with pytest.raises(HistoryError) as info:
        read_history(path, scenario)
    return info.value.problems


def test_unknown_column_suggests_the_nearest(scenario):
    msgs = problems(DATA / "history_unknown_column.csv", scenario)
    assert msgs == [f"{DATA / 'history_unknown_column.csv'}: column 'bookngs': unknown column; "
                    "did you mean 'bookings'?"]


def test_non_numeric_cells_name_row_and_column(scenario):
    msgs = problems(DATA / "history_non_numeric.csv", scenario)
    assert len(msgs) == 2
    assert "row 3, column 'new_leads': expected a number, got 'twelve'" in msgs[0]
    assert "row 4, column 'wins': expected a number, got 'n/a'" in msgs[1]


def test_duplicate_month(scenario):
    (msg,) = problems(DATA / "history_duplicate_month.csv", scenario)
    assert "row 4, column 'month': month 2 is already on row 3" in msg


def test_month_after_the_horizon(scenario):
    (msg,) = problems(DATA / "history_after_horizon.csv", scenario)
    assert "row 4, column 'month': month 99" in msg and "last month (6)" in msg
    # A longer horizon accepts it.
    assert read_history(DATA / "history_after_horizon.csv", scenario, months=99).months == 99


def test_negative_counts_every_one(scenario):
    msgs = problems(DATA / "history_negative.csv", scenario)
    assert len(msgs) == 3
    assert "row 3, column 'new_leads': must be ≥ 0 (a count), got -12" in msgs[0]
    assert "row 4, column 'wins'" in msgs[1] and "row 4, column 'reps'" in msgs[2]


def test_empty_file(scenario):
    (msg,) = problems(DATA / "history_empty.csv", scenario)
    assert "empty file" in msg and "month" in msg


def test_three_mistakes_three_messages(scenario):
    msgs = problems(DATA / "history_three_mistakes.csv", scenario)
    assert len(msgs) == 4, msgs
    joined = "\n".join(msgs)
    assert "did you mean 'bookings'" in joined
    assert "column 'wins': expected a number, got 'x'" in joined
    assert "row 3, column 'new_leads': must be ≥ 0" in joined
    assert "month 1 is already on row 2" in joined


def test_dated_months_gaps_and_blanks(scenario):
    h = read_history(DATA / "history_good_dated.csv", scenario)
    assert list(h.table.index) == [1, 2, 4]  # 2026-03 is missing: allowed, skipped in the fit
    assert h.labels == {1: "2026-01", 2: "2026-02", 4: "2026-04"}
    assert pd.isna(h.table.loc[1, "wins"]) and h.table.loc[4, "wins"] == 2
    assert h.inputs == ["reps", "marketing_spend"]
    assert h.default_columns() == ["new_leads", "new_opportunities", "wins", "bookings"]
    obs = h.observed(["new_leads"])
    assert list(obs.index) == [1, 2, 3, 4] and pd.isna(obs.loc[3, "new_leads"])


def test_known_inputs_become_the_timeline(scenario):
    h = read_history(DATA / "history_good_dated.csv", scenario)
    fitted = h.apply(scenario)
    assert fitted.months == 4
    month4 = [c for c in fitted.timeline if c.month == 4][0]
    assert month4.set["sales.reps"] == 5
    budgets = {k: v for k, v in month4.set.items() if k.endswith("monthly_budget")}
    assert sum(budgets.values()) == pytest.approx(48000)
    # Budgets keep the scenario's proportions.
    base = {n: p.monthly_budget for n, p in scenario.marketing.programs.items()}
    assert budgets["marketing.programs.paid_ads.monthly_budget"] == pytest.approx(
        48000 * base["paid_ads"] / sum(base.values()))
    # The run follows them: month 4 has five reps on the team.
    run = simulate(fitted, seed=1, months=4, keep_model=False).monthly
    assert run.loc[run["month"] == 4, "reps"].item() == 5


def test_per_program_spend_and_segments(tmp_path, scenario):
    f = tmp_path / "h.csv"
    f.write_text("month,segment,new_leads,paid_ads_spend\n1,smb,5,1000\n1,enterprise,2,\n"
                 "2,smb,6,500\n2,enterprize,1,\n")
    with pytest.raises(HistoryError) as info:
        read_history(f, scenario)
    assert "unknown segment 'enterprize'; did you mean 'enterprise'?" in info.value.problems[0]
    f.write_text("month,segment,new_leads,paid_ads_spend\n1,smb,5,1000\n1,enterprise,2,\n"
                 "2,smb,6,500\n2,enterprise,1,\n")
    h = read_history(f, scenario)
    assert h.table["new_leads"].tolist() == [7, 7] and h.segments == ("enterprise", "smb")
    entries = h.timeline(scenario)
    assert entries[1]["set"] == {"marketing.programs.paid_ads.monthly_budget": 500.0}


def test_xlsx_is_read_like_csv(tmp_path, scenario):
    df = pd.DataFrame({"month": [1, 2, 3], "new_leads": [10, 12, None], "wins": [1, 0, 2]})
    df.to_excel(tmp_path / "h.xlsx", index=False)
    h = read_history(tmp_path / "h.xlsx", scenario)
    assert h.table["wins"].tolist() == [1, 0, 2] and pd.isna(h.table.loc[3, "new_leads"])
    bad = pd.DataFrame({"month": [1, 1], "new_leads": ["ten", 3]})
    bad.to_excel(tmp_path / "bad.xlsx", index=False)
    msgs = problems(tmp_path / "bad.xlsx", scenario)
    assert len(msgs) == 2 and "expected a number, got 'ten'" in msgs[0]


def test_history_command_writes_a_run_as_history(tmp_path, scenario):
    run = simulate(scenario, seed=3, months=6)
    write_run(run, tmp_path / "run")
    assert main(["history", str(tmp_path / "run"), "-o", str(tmp_path / "h.csv"),
                 "--columns", "new_leads,wins", "--columns", "reps"]) == 0
    table = pd.read_csv(tmp_path / "h.csv")
    assert list(table.columns) == ["month", "new_leads", "wins", "reps"]
    assert table["wins"].tolist() == run.monthly["wins"].tolist()
    h = read_history(tmp_path / "h.csv", scenario)  # round trip
    assert h.table["new_leads"].tolist() == run.monthly["new_leads"].tolist()
    # All columns by default, XLSX too.
    write_history(tmp_path / "run", tmp_path / "all.xlsx")
    assert "bookings" in pd.read_excel(tmp_path / "all.xlsx").columns


def test_history_command_bad_input_exit_2_nothing_written(tmp_path, scenario, capsys):
    write_run(simulate(scenario, seed=3, months=2), tmp_path / "run")
    assert main(["history", str(tmp_path / "run"), "-o", str(tmp_path / "h.csv"),
                 "--columns", "new_lead,winz"]) == 2
    err = capsys.readouterr().err
    assert "--columns new_lead: not a monthly column; did you mean 'new_leads'?" in err
    assert "--columns winz" in err
    assert main(["history", str(tmp_path / "missing"), "-o", str(tmp_path / "h.csv")]) == 2
    assert main(["history", str(tmp_path / "run"), "-o", str(tmp_path / "h.json")]) == 2
    assert not (tmp_path / "h.csv").exists() and not (tmp_path / "h.json").exists()


def test_a_runs_own_inputs_as_timeline_reproduce_the_run(tmp_path, scenario):
    """Known inputs equal to the scenario's change nothing: same seed, same table."""
    run = simulate(scenario, seed=4, months=5)
    write_run(run, tmp_path / "run")
    write_history(tmp_path / "run", tmp_path / "h.csv")
    h = read_history(tmp_path / "h.csv", scenario)
    assert h.inputs == ["reps", "marketing_spend"]
    again = simulate(h.apply(scenario), seed=4, months=5).monthly
    pd.testing.assert_frame_equal(again, run.monthly)


@pytest.mark.parametrize("kind", ["calibration", "forecast"])
def test_report_of_an_unfinished_calibration_or_forecast_is_a_clear_error(tmp_path, capsys, kind):
    import json

    from gtmsim.cli import main

    folder = tmp_path / kind
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"kind": kind, "status": "running"}))
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "no finished results yet" in err and "summary.csv" in err
    assert "unexpected error" not in err and "Traceback" not in err
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json"]
