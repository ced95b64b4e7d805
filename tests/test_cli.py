"""The CLI, called in-process: exit codes, files written, messages for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from gtmsim.cli import main
from gtmsim.metrics import COLUMNS

DATA = Path(__file__).parent / "data"


def test_run_writes_monthly_table_and_manifest(tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["run", "baseline", "--set", "market.prospects=3000", "--months", "4",
                 "--seed", "7", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Month" in printed and "Bookings" in printed and str(out / "monthly.parquet") in printed
    table = pd.read_parquet(out / "monthly.parquet")
    assert list(table.columns) == ["scenario", "replication", "seed", *COLUMNS]
    assert table["month"].tolist() == [1, 2, 3, 4] and (table["seed"] == 7).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["months"] == 4 and manifest["scenario"] == "baseline"
    assert manifest["parameters"]["market"]["prospects"] == 3000
    assert manifest["levers"]["routing"] == "oldest_first"
    assert {"gtmsim", "mesa", "numpy"} <= set(manifest["versions"])
    assert manifest["command"][:2] == ["gtmsim", "run"] or manifest["command"]
    assert not list(out.glob(".*.tmp"))  # no temporary files left behind


def test_same_command_twice_gives_the_same_table(tmp_path):
    args = ["run", "siloed", "--set", "market.prospects=2000", "--months", "3", "-q"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a = pd.read_parquet(tmp_path / "a" / "monthly.parquet")
    b = pd.read_parquet(tmp_path / "b" / "monthly.parquet")
    pd.testing.assert_frame_equal(a, b)


def test_quiet_prints_only_the_folder_and_json_is_machine_readable(tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["run", "--set", "market.prospects=2000", "--months", "2", "-q", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert main(["run", "--set", "market.prospects=2000", "--months", "2", "--json",
                 "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["months"] == 2 and summary["final"]["month"] == 2


def test_bad_scenario_exits_2_with_every_message_and_no_traceback(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["run", str(DATA / "three_mistakes.toml"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("three_mistakes.toml: ") == 3
    assert "Traceback" not in err
    assert not out.exists()


def test_bad_override_and_unknown_scenario_exit_2(capsys):
    assert main(["run", "--set", "sales.reps=-3"]) == 2
    assert "--set sales.reps: sales.reps: must be ≥ 0, got -3" in capsys.readouterr().err
    assert main(["run", "alinged"]) == 2
    assert "did you mean 'aligned'?" in capsys.readouterr().err
    assert main(["run", "--set", "no-equals"]) == 2


def test_bad_option_exits_2(capsys):
    assert main(["run", "--months", "zero"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_check_validates_without_running(capsys):
    shipped = Path(__file__).parents[1] / "scenarios"
    assert main(["check", str(shipped / "baseline.toml"), str(shipped / "aligned.toml")]) == 0
    assert capsys.readouterr().out.count(": valid") == 2
    assert main(["check", str(shipped / "baseline.toml"), str(DATA / "negative_reps.toml"),
                 str(DATA / "syntax_error.toml")]) == 2
    err = capsys.readouterr().err
    assert "sales.reps: must be ≥ 0, got -3" in err and "not valid TOML" in err


def test_scenarios_lists_the_shipped_files_with_their_questions(capsys):
    assert main(["scenarios", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"baseline", "aligned", "founder_led"} <= set(listed)
    assert all(q.endswith("?") for q in listed.values())


def test_shipped_names_work_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "aligned", "--set", "market.prospects=2000", "--months", "1", "-q"]) == 0
    assert (tmp_path / "results" / "aligned" / "monthly.parquet").is_file()


def test_run_refuses_a_folder_holding_other_results(tmp_path, capsys):
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"kind": "compare"}')
    assert main(["run", "--set", "market.prospects=2000", "--months", "1", "--out", str(folder)]) == 2
    assert "holds other results" in capsys.readouterr().err
    assert not (folder / "monthly.parquet").exists()
    assert (folder / "manifest.json").read_text() == '{"kind": "compare"}'
