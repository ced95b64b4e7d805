"""Where results go and how they are written: safe folder names, refused targets, the
user's umask, full or read-only disks, checked stored runs, --resume adding
replications and --force."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from gtmsim import experiment as exp
from gtmsim.cli import main
from gtmsim.experiment import ExperimentError, StoredRunWarning, compare, default_folder
from gtmsim.results import ResultsError, safe_name

TINY = ["--set", "market.prospects=1000", "--months", "2"]
TINY_EXP = [*TINY, "--reps", "2", "--workers", "1"]
SMALL = {"market.prospects": 1000}
PAIR = ["siloed", "aligned"]


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def counting(monkeypatch):
    """The task files simulated from now on."""
    simulated: list[str] = []
    real = exp.run_task

    def run(task: exp.Task) -> pd.DataFrame:
        simulated.append(task.file)
        return real(task)

    monkeypatch.setattr(exp, "run_task", run)
    return simulated


# --------------------------------------------------------------------------- names as folders


@pytest.mark.parametrize("name, stem", [
    ("../../escaped", "escaped"), ("/abs/path", "abs_path"), ("a/b", "a_b"), ("", "scenario"),
    ("..", "scenario"), (".", "scenario"), ("a\x00b", "a_b"), ("x" * 300, "x" * 100),
    ("Café déjà", "Café_déjà"),
])
def test_safe_name_is_one_path_component(name, stem):
    assert safe_name(name) == stem
    assert Path(safe_name(name)).name == safe_name(name) and len(safe_name(name).encode()) <= 100


@pytest.mark.parametrize("name", ["../../escaped", "/abs/path", "a/b", ""])
def test_default_folders_are_one_level_under_results(name):
    for folder in (default_folder("compare", [name, "x"]), default_folder("sweep", [name], [name])):
        assert folder.parent == Path("results") and folder.name not in ("", ".", "..")


@pytest.mark.parametrize("name", ["../../escaped", "ABSOLUTE", "a/b", ""])
def test_run_with_any_name_writes_one_folder_inside_results(tmp_path, monkeypatch, name):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    # An absolute name inside tmp_path, so that a failure cannot write elsewhere.
    name = str(tmp_path / "abs" / "path") if name == "ABSOLUTE" else name
    code = main(["run", *TINY, "--set", f"name={json.dumps(name)}", "-q"])
    assert code in (0, 2)  # a stricter schema may refuse the name; it must never escape
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b"]
    if code == 0:
        results = work / "results"
        (folder,) = results.iterdir()
        assert folder.is_dir() and (folder / "manifest.json").is_file()
        assert not (results / "manifest.json").exists()


# --------------------------------------------------------------------------- refused targets


def test_empty_out_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", *TINY, "--out", ""]) == 2
    assert main(["compare", *PAIR, *TINY_EXP, "--out", ""]) == 2
    assert main(["sweep", "baseline", "--vary", "sales.reps=2,3", *TINY_EXP, "--out", ""]) == 2
    assert "empty path" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ExperimentError, match="empty folder name"):
        compare(PAIR, reps=1, months=1, overrides=SMALL, workers=1, out="")


@pytest.mark.parametrize("command", [
    ["run", *TINY],
    ["compare", *PAIR, *TINY_EXP],
    ["compare", *PAIR, *TINY_EXP, "--force"],
    ["sweep", "baseline", "--vary", "sales.reps=2,3", *TINY_EXP],
])
def test_a_users_folder_with_other_files_is_refused(tmp_path, capsys, command):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text("mine\n")
    assert main([*command, "--out", str(docs)]) == 2
    err = capsys.readouterr().err
    assert "notes.md" in err and "not a gtmsim results folder" in err and "Traceback" not in err
    assert tree(docs) == ["notes.md"]


def test_an_empty_folder_is_accepted(tmp_path):
    (tmp_path / "empty").mkdir()
    assert main(["compare", *PAIR, *TINY_EXP, "--out", str(tmp_path / "empty"), "-q"]) == 0


def test_report_writes_through_a_symlink(tmp_path):
    folder = tmp_path / "run"
    assert main(["run", *TINY, "--out", str(folder), "-q"]) == 0
    target = tmp_path / "target.html"
    target.write_text("old\n")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    assert main(["report", str(folder), "-o", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text().startswith("<!DOCTYPE html>")


def test_links_inside_a_results_folder_are_refused(tmp_path, capsys):
    folder = tmp_path / "run"
    assert main(["run", *TINY, "--out", str(folder), "-q"]) == 0
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not yours\n")
    (folder / "report.html").symlink_to(elsewhere)  # planted in a folder someone shared
    assert main(["report", str(folder)]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert elsewhere.read_text() == "not yours\n" and not (folder / "charts").exists()
    (folder / "report.html").unlink()
    (folder / "manifest.json").rename(tmp_path / "m.json")
    (folder / "manifest.json").symlink_to(tmp_path / "m.json")
    assert main(["run", *TINY, "--out", str(folder)]) == 2
    assert (folder / "manifest.json").is_symlink()


@pytest.mark.parametrize("make", ["fifo", "link_to_char_device", "dir"])
def test_report_refuses_what_is_not_a_regular_file(tmp_path, capsys, make):
    folder = tmp_path / "run"
    assert main(["run", *TINY, "--out", str(folder), "-q"]) == 0
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "report.html"
    if make == "fifo":
        os.mkfifo(target)
    elif make == "dir":
        (out_dir / "sub").mkdir()
        target = out_dir / "link.html"
        target.symlink_to(out_dir / "sub")
    else:
        target.symlink_to("/dev/null")
    before = os.lstat(target)
    assert main(["report", str(folder), "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "Traceback" not in err
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert not (out_dir / "charts").exists()  # refused before any work
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# --------------------------------------------------------------------------- umask


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_files_get_the_users_umask(tmp_path, umask_022):
    run, cmp = tmp_path / "run", tmp_path / "cmp"
    assert main(["run", *TINY, "--out", str(run), "-q"]) == 0
    assert main(["report", str(run)]) == 0
    assert main(["compare", *PAIR, *TINY_EXP, "--out", str(cmp), "--report", "-q"]) == 0
    written = [p for p in [*run.rglob("*"), *cmp.rglob("*")] if p.is_file()]
    assert {"monthly.parquet", "manifest.json", "report.html", "runs.parquet", "summary.csv",
            "siloed__r0000.parquet"} <= {p.name for p in written}
    assert any(p.suffix == ".png" for p in written)
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {
        p.name: "0o644" for p in written}
    dirs = [p for p in [*run.rglob("*"), *cmp.rglob("*")] if p.is_dir()]
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in dirs} == {"0o755"}


# --------------------------------------------------------------------------- full or read-only disk


def _failing(monkeypatch, target, name, err: int, after: int = 0):
    """Make `target.name` raise OSError(err) from its (after+1)-th call on."""
    real = getattr(target, name)
    calls = [0]

    def fail(*args, **kwargs):
        calls[0] += 1
        if calls[0] > after:
            raise OSError(err, os.strerror(err))
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, fail)


def test_a_full_disk_leaves_no_half_written_run_folder(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "run"
    _failing(monkeypatch, Path, "write_text", errno.ENOSPC)  # the manifest, written second
    assert main(["run", *TINY, "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "manifest.json: cannot write (No space left on device)" in err
    assert "intact" in err and "Traceback" not in err and "unexpected" not in err
    assert not folder.exists()  # no monthly.parquet without its manifest, no empty folder
    monkeypatch.undo()

    assert main(["run", *TINY, "--out", str(folder), "-q"]) == 0
    before = files(folder)
    _failing(monkeypatch, Path, "write_text", errno.ENOSPC)
    assert main(["run", *TINY, "--seed", "5", "--out", str(folder)]) == 2
    assert files(folder) == before  # the previous run is kept whole


def test_a_full_disk_in_an_experiment_keeps_finished_runs(tmp_path, monkeypatch, capsys):
    out = tmp_path / "cmp"
    # The manifest and the first two runs are renamed into place, then the disk is full.
    _failing(monkeypatch, os, "replace", errno.ENOSPC, after=3)
    assert main(["compare", *PAIR, *TINY_EXP, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot write (No space left on device)" in err and "--resume" in err
    assert "Traceback" not in err and "unexpected" not in err
    assert len(list((out / "runs").glob("*.parquet"))) == 2
    assert not list(out.rglob("*.tmp")) and not (out / "runs.parquet").exists()
    monkeypatch.undo()
    assert main(["compare", *PAIR, *TINY_EXP, "--out", str(out), "--resume", "-q"]) == 0
    fresh = compare(PAIR, reps=2, months=2, overrides=SMALL, workers=1)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), fresh.runs)


def test_a_read_only_disk_for_the_report_says_which_file(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "run"
    assert main(["run", *TINY, "--out", str(folder), "-q"]) == 0
    before = files(folder)
    _failing(monkeypatch, os, "replace", errno.EROFS)
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "cannot write (Read-only file system)" in err and ".png" in err
    assert "Traceback" not in err
    monkeypatch.undo()
    assert {k: v for k, v in files(folder).items()} == before


# --------------------------------------------------------------------------- stored runs checked


def _experiment(out: Path, *extra: str) -> int:
    return main(["compare", *PAIR, *TINY_EXP, "--seed", "11", "--out", str(out), *extra, "-q"])


def test_a_swapped_stored_run_is_run_again(tmp_path, capsys, counting):
    out = tmp_path / "cmp"
    assert _experiment(out) == 0
    runs = out / "runs"
    (runs / "siloed__r0000.parquet").write_bytes((runs / "siloed__r0001.parquet").read_bytes())
    (runs / "aligned__r0001.parquet").write_bytes((runs / "siloed__r0001.parquet").read_bytes())
    counting.clear()
    assert _experiment(out, "--resume") == 0
    err = capsys.readouterr().err
    assert ("siloed__r0000.parquet: it is a run of replication 1, expected 0; "
            "running it again") in err
    assert "aligned__r0001.parquet: it is a run of scenario 'siloed'" in err
    assert sorted(counting) == ["aligned__r0001.parquet", "siloed__r0000.parquet"]
    fresh = compare(PAIR, reps=2, seed=11, months=2, overrides=SMALL, workers=1)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), fresh.runs)


def test_truncated_runs_and_left_temporary_files_on_resume(tmp_path, capsys, counting):
    out = tmp_path / "cmp"
    assert _experiment(out) == 0
    runs = out / "runs"
    data = (runs / "aligned__r0000.parquet").read_bytes()
    (runs / "aligned__r0000.parquet").write_bytes(data[: len(data) // 2])
    (runs / "siloed__r0001.parquet").write_bytes(b"")
    (runs / ".siloed__r0001.parquet.1a2b3c4d.tmp").write_bytes(b"")  # left by a signal
    (out / ".manifest.json.5e6f7a8b.tmp").write_bytes(b"{")
    counting.clear()
    assert _experiment(out, "--resume") == 0
    err = capsys.readouterr().err
    assert "aligned__r0000.parquet: not a readable Parquet file" in err
    assert "siloed__r0001.parquet: not a readable Parquet file" in err
    assert sorted(counting) == ["aligned__r0000.parquet", "siloed__r0001.parquet"]
    assert not list(out.rglob("*.tmp"))
    fresh = compare(PAIR, reps=2, seed=11, months=2, overrides=SMALL, workers=1)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), fresh.runs)


def test_stored_run_with_wrong_months_or_seed_is_a_warning_in_the_api(tmp_path):
    out = tmp_path / "cmp"
    compare(PAIR, reps=2, seed=11, months=2, overrides=SMALL, workers=1, out=out)
    path = out / "runs" / "siloed__r0000.parquet"
    df = pd.read_parquet(path)
    df.iloc[:1].to_parquet(path, index=False)
    other = out / "runs" / "aligned__r0000.parquet"
    pd.read_parquet(other).assign(seed=1).to_parquet(other, index=False)
    with pytest.warns(StoredRunWarning) as caught:
        result = compare(PAIR, reps=2, seed=11, months=2, overrides=SMALL, workers=1, out=out,
                         resume=True)
    text = "\n".join(str(w.message) for w in caught)
    assert "does not hold months 1 to 2" in text and "a run of seed 1" in text
    assert result.resumed == 2


@pytest.mark.parametrize("name, content", [
    ("manifest.json", b'{"kind": "compare", "scen'),
    ("manifest.json", b"\xff\xfe not utf-8"),
    ("manifest.json", b"[1, 2]"),
    ("runs.parquet", b"PAR1 truncated"),
])
def test_corrupt_manifest_or_runs_table_is_a_clear_error(tmp_path, capsys, name, content):
    out = tmp_path / "cmp"
    assert _experiment(out) == 0
    capsys.readouterr()
    (out / name).write_bytes(content)
    commands = [["report", str(out)]]
    if name == "manifest.json":
        commands.append(["compare", *PAIR, *TINY_EXP, "--seed", "11", "--out", str(out),
                         "--resume"])
    for command in commands:
        assert main(command) == 2
        err = capsys.readouterr().err
        assert str(out / name) in err and "Traceback" not in err and "unexpected" not in err


def test_corrupt_run_table_is_a_clear_error(tmp_path, capsys):
    folder = tmp_path / "run"
    assert main(["run", *TINY, "--out", str(folder), "-q"]) == 0
    (folder / "monthly.parquet").write_bytes(b"")
    assert main(["report", str(folder)]) == 2
    assert "monthly.parquet: not a readable Parquet file" in capsys.readouterr().err


# --------------------------------------------------------------------------- more reps, --force


def test_resume_with_more_reps_runs_only_the_new_replications(tmp_path, capsys, counting):
    out = tmp_path / "cmp"
    assert _experiment(out) == 0
    assert exp.replication_seeds(11, 4)[:2] == exp.replication_seeds(11, 2)
    more = ["compare", *PAIR, *TINY, "--workers", "1", "--seed", "11", "--reps", "4",
            "--out", str(out)]
    assert main(more) == 2
    assert "2 of the 4 replications; add --resume" in capsys.readouterr().err
    counting.clear()
    assert main([*more, "--resume", "-q"]) == 0
    assert sorted(counting) == sorted(f"{s}__r{r:04d}.parquet" for s in PAIR for r in (2, 3))
    fresh = compare(PAIR, reps=4, seed=11, months=2, overrides=SMALL, workers=1)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), fresh.runs)
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), fresh.summary(),
                                  check_dtype=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reps"] == 4 and manifest["seeds"] == fresh.seeds and manifest["complete"]
    # Fewer replications than the folder holds would drop runs: refused.
    fewer = [*more[:-4], "--reps", "1", "--out", str(out), "--resume"]
    assert main(fewer) == 2
    assert "--force" in capsys.readouterr().err


def test_force_replaces_an_edited_experiment(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert _experiment(out) == 0
    assert main(["report", str(out)]) == 0
    edited = [*TINY_EXP, "--set", "sales.reps=3"]
    command = ["compare", *PAIR, *edited, "--seed", "11", "--out", str(out)]
    for extra in ([], ["--resume"]):
        assert main([*command, *extra]) == 2
        assert "--force" in capsys.readouterr().err
    assert main([*command, "--force", "--resume"]) == 2
    assert main([*command, "--force", "-q"]) == 0
    fresh = compare(PAIR, reps=2, seed=11, months=2, overrides={**SMALL, "sales.reps": 3},
                    workers=1)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), fresh.runs)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["overrides"] == ["market.prospects=1000", "sales.reps=3"]
    assert not (out / "report.html").exists() and not (out / "charts").exists()
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "runs", "runs.parquet",
                                                    "summary.csv"]


def test_an_interrupted_force_never_mixes_old_and_new_runs(tmp_path):
    out = tmp_path / "cmp"
    compare(PAIR, reps=2, seed=11, months=2, overrides=SMALL, workers=1, out=out)

    def stop(done: int, total: int) -> None:
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compare(PAIR, reps=2, seed=12, months=2, overrides=SMALL, workers=1, out=out,
                force=True, progress=stop)
    new_seeds = set(exp.replication_seeds(12, 2))
    stored = [pd.read_parquet(p) for p in (out / "runs").glob("*.parquet")]
    assert len(stored) == 1 and all(set(df["seed"]) <= new_seeds for df in stored)
    assert json.loads((out / "manifest.json").read_text())["seed"] == 12
    result = compare(PAIR, reps=2, seed=12, months=2, overrides=SMALL, workers=1, out=out,
                     resume=True)
    assert result.resumed == 1


def test_force_never_replaces_a_folder_gtmsim_did_not_write(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "manifest.json").write_text('{"name": "my package"}')
    with pytest.raises(ResultsError, match="not a gtmsim manifest"):
        compare(PAIR, reps=1, months=1, overrides=SMALL, workers=1, out=docs, force=True)
    assert tree(docs) == ["manifest.json"]


def test_ctrl_c_between_the_renames_of_files_that_belong_together(tmp_path, monkeypatch):
    import signal

    from gtmsim import results

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    real = os.replace
    calls = [0]

    def replace(src, dst):
        calls[0] += 1
        real(src, dst)
        if calls[0] == 1:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C after the first rename

    monkeypatch.setattr(os, "replace", replace)
    # Ctrl-C as an interactive shell delivers it: a shell that started the tests in the
    # background has them ignore SIGINT, and a held signal goes back to the handler it had.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            results.atomic_write_many({a: lambda t: t.write_text("1"),
                                       b: lambda t: t.write_text("2")})
    finally:
        signal.signal(signal.SIGINT, previous)
    assert a.read_text() == "1" and b.read_text() == "2"  # both, then the interrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_resume_rebuilds_a_corrupt_runs_table(tmp_path, counting):
    out = tmp_path / "cmp"
    assert _experiment(out) == 0
    (out / "runs.parquet").write_bytes(b"PAR1")
    counting.clear()
    assert _experiment(out, "--resume") == 0
    assert counting == []
    fresh = compare(PAIR, reps=2, seed=11, months=2, overrides=SMALL, workers=1)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), fresh.runs)


def test_a_stored_sweep_run_of_another_grid_point_is_run_again(tmp_path):
    out = tmp_path / "sw"
    kwargs = {"reps": 1, "seed": 11, "months": 2, "overrides": SMALL, "workers": 1, "out": out}
    fresh = exp.sweep("baseline", {"sales.reps": [2, 3]}, **kwargs)
    runs = out / "runs"
    (runs / "baseline__v000__r0000.parquet").write_bytes(
        (runs / "baseline__v001__r0000.parquet").read_bytes())
    with pytest.warns(StoredRunWarning, match="a run of sales.reps 3, expected 2"):
        again = exp.sweep("baseline", {"sales.reps": [2, 3]}, resume=True, **kwargs)
    assert again.resumed == 1
    pd.testing.assert_frame_equal(again.runs, fresh.runs)


def test_validate_refuses_a_folder_of_other_files(tmp_path):
    from gtmsim.cli import main

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    assert main(["validate", "bass", "--size", "ci", "--out", str(folder), "--quiet"]) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_validation_files_get_the_umask(tmp_path):
    from gtmsim.cli import main

    old = os.umask(0o022)
    try:
        assert main(["validate", "bass", "--size", "ci", "--out", str(tmp_path / "v"),
                     "--quiet"]) in (0, 1)
    finally:
        os.umask(old)
    files = list((tmp_path / "v").iterdir())
    assert any(p.suffix == ".png" for p in files)
    assert {p.stat().st_mode & 0o777 for p in files} == {0o644}


def test_report_refuses_a_link_into_a_missing_folder(tmp_path):
    from gtmsim.results import ResultsError, check_writable_file

    link = tmp_path / "dangling.html"
    link.symlink_to(tmp_path / "missing" / "x.html")
    with pytest.raises(ResultsError, match="missing folder"):
        check_writable_file(link, follow_links=True)
    assert not (tmp_path / "missing").exists()


def test_report_refuses_a_charts_folder_of_other_files_and_a_charts_file(tmp_path):
    from gtmsim.cli import main

    folder = tmp_path / "c"
    assert main(["compare", "siloed", "aligned", "--reps", "2", "--months", "2", "--workers",
                 "1", "--set", "market.prospects=1000", "--out", str(folder), "--quiet"]) == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "charts").mkdir()
    (mine / "charts" / "notes.txt").write_text("keep")
    assert main(["report", str(folder), "-o", str(mine / "r.html")]) == 2
    assert sorted(p.name for p in (mine / "charts").iterdir()) == ["notes.txt"]
    assert not (mine / "r.html").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "charts").write_text("a file")
    assert main(["report", str(folder), "-o", str(other / "r.html")]) == 2
    assert main(["report", str(folder)]) == 0  # its own charts folder, written twice
    assert main(["report", str(folder)]) == 0


def test_a_new_run_or_report_leaves_no_stale_report_or_chart(tmp_path):
    from gtmsim.cli import main

    folder = tmp_path / "r"
    args = ["run", "baseline", "--months", "2", "--set", "market.prospects=1000",
            "--out", str(folder), "--quiet"]
    assert main(args) == 0
    assert main(["report", str(folder)]) == 0
    stale = folder / "charts" / "99_gone.png"
    stale.write_bytes(b"old chart")
    assert main(["report", str(folder)]) == 0
    assert not stale.exists()  # a chart the new report does not draw is removed
    assert (folder / "report.html").is_file()
    assert main(args + ["--seed", "5"]) == 0  # the numbers changed: the old report is gone
    assert not (folder / "report.html").exists() and not (folder / "charts").exists()
    assert main(["report", ""]) == 2
