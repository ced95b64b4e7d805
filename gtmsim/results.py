"""Results folders: Parquet tables plus a manifest, written atomically.

A results folder is the one interchange format between runs, notebooks and reports.
Every row carries its identity (scenario, seed, month, and for experiments the
replication); `manifest.json` holds what is needed to reproduce the folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # the CLI reads results without loading the model
    from gtmsim.model import RunResult

MANIFEST = "manifest.json"
MONTHLY = "monthly.parquet"


# The signals that end a command: it stops its work, keeps what finished and exits 128 + n.
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


def versions() -> dict[str, str]:
    """Versions of gtmsim and the libraries that shape its numbers."""
    import mesa
    import numba
    import numpy
    import pyarrow

    import gtmsim

    return {
        "gtmsim": gtmsim.__version__,
        "mesa": mesa.__version__,
        "numba": numba.__version__,
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
        "pyarrow": pyarrow.__version__,
        "python": platform.python_version(),
    }


class ResultsError(Exception):
    """A results file or folder cannot be written or read; the message names it."""


# ASSUMPTION: names made safe for one path component; 100 bytes leaves room for the
# suffixes gtmsim adds (`__v003__r0007.parquet`) under the usual 255-byte limit.
_NAME_BYTES = 100
TEMP_SUFFIX = ".tmp"


def safe_name(name: str, fallback: str = "scenario") -> str:
    """`name` as one safe path component: letters, digits, `_`, `-` and `.` kept, every
    other run of characters replaced by `_`, no leading or trailing `.`/`_`, at most
    100 bytes, never empty (then `fallback`), never `.` or `..`.

    A scenario file shared by someone else may name itself `../../x` or `/etc`; its
    results still go under the folder the user chose.
    """
    stem = re.sub(r"[^\w.-]+", "_", str(name)).strip("._")
    while len(stem.encode("utf-8")) > _NAME_BYTES:
        stem = stem[:-1]
    stem = stem.rstrip("._")
    return stem if stem and stem not in (".", "..") else fallback


def _target(path: Path, follow_links: bool = False) -> Path:
    """The file a write to `path` replaces.

    A symlink is written through to its target with `follow_links` (a path the user
    named, such as `report -o`), and refused otherwise: a link planted in a results
    folder someone shared must not redirect gtmsim's writes.

    Raises:
        ResultsError: `path` (or its target) exists and is not a regular file.
    """
    if path.is_symlink() and not follow_links:
        raise ResultsError(f"{path}: is a symbolic link; gtmsim does not write through links "
                           "inside results folders, remove it or give another path")
    real = Path(os.path.realpath(path)) if path.is_symlink() else path
    if real != path and not real.parent.is_dir():
        raise ResultsError(f"{path}: a link into a missing folder ({real.parent}); gtmsim "
                           "does not create folders through links, give another path")
    if real.exists() and not real.is_file():
        what = "a folder" if real.is_dir() else "not a regular file"
        shown = f"{path} (a link to {real})" if real != path else str(path)
        raise ResultsError(f"{shown}: is {what}; gtmsim writes only regular files, "
                           "give another path")
    return real


def check_writable_file(path: str | Path, *, follow_links: bool = False) -> Path:
    """The file a write to `path` would replace (with `follow_links`, a link's target);
    see `atomic_write_many`.

    Raises:
        ResultsError: `path` or its target exists and is not a regular file.
    """
    return _target(Path(path), follow_links)


def _temporary(path: Path) -> Path:
    """A new empty file beside `path`, created with the user's umask (mode 0o666 & ~umask)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            # os.open applies the umask, unlike tempfile.mkstemp's fixed 0o600.
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def _oserror(path: Path, exc: OSError, replaced: Sequence[Path] = ()) -> ResultsError:
    kept = (f"{', '.join(p.name for p in replaced)} already replaced, the rest kept"
            if replaced else "nothing was replaced and files written before are intact")
    return ResultsError(f"{path}: cannot write ({exc.strerror or exc}); {kept}")


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold the stop signals (SIGINT, SIGTERM, SIGHUP) while files that belong together are
    written or renamed, so a signal cannot split them.

    A signal that arrives meanwhile is delivered to the usual handler right after.
    Signal handlers can only be set in the main thread; elsewhere nothing is held.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    old = {}
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not None:  # None: a handler Python cannot restore
            old[sig] = signal.signal(sig, lambda num, frame: received.append(num))
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for num in dict.fromkeys(received):
            signal.raise_signal(num)


def atomic_write_many(files: Mapping[Path, Callable[[Path], None]], *,
                      follow_links: bool = False) -> None:
    """Write several files so that none is replaced unless all could be written.

    Each file is written to a temporary file beside it (with the user's umask); only
    when every one is complete are they renamed into place, in the order given, with
    Ctrl-C and SIGTERM held for those renames. A full or read-only disk therefore
    leaves the old files as they were. Symlinks are written through to their targets
    with `follow_links`, else refused; anything else that is not a regular file is
    refused.

    Raises:
        ResultsError: naming the file that could not be written (nothing replaced).
    """
    targets = [(_target(Path(p), follow_links), write) for p, write in files.items()]
    temps: list[tuple[Path, Path]] = []
    try:
        for path, write in targets:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = _temporary(path)
                temps.append((tmp, path))
                write(tmp)
            except OSError as exc:
                raise _oserror(path, exc) from None
        with signals_held():
            for i, (tmp, path) in enumerate(temps):
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    raise _oserror(path, exc, [p for _, p in temps[:i]]) from None
                temps[i] = (path, path)
    finally:
        for tmp, path in temps:
            if tmp != path:
                tmp.unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[Path], None], *,
                 follow_links: bool = False) -> None:
    """Write through a temporary file in the same folder, then rename over `path`.

    The file gets the user's umask; see `atomic_write_many`.
    """
    atomic_write_many({Path(path): write}, follow_links=follow_links)


def remove_temporary(folder: Path) -> list[Path]:
    """Remove temporary files a signal or crash left in `folder`; returns them."""
    left = [p for p in folder.glob(f".*{TEMP_SUFFIX}") if p.is_file()]
    for p in left:
        p.unlink(missing_ok=True)
    return left


def parquet_writer(df: pd.DataFrame) -> Callable[[Path], None]:
    return lambda tmp: df.to_parquet(tmp, index=False)


def csv_writer(df: pd.DataFrame) -> Callable[[Path], None]:
    return lambda tmp: df.to_csv(tmp, index=False)


def json_writer(data: Any) -> Callable[[Path], None]:
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    return lambda tmp: tmp.write_text(text, encoding="utf-8")


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    atomic_write(path, parquet_writer(df))


def write_csv(df: pd.DataFrame, path: Path) -> None:
    atomic_write(path, csv_writer(df))


def write_json(data: Any, path: Path) -> None:
    atomic_write(path, json_writer(data))


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The folder's `manifest.json`.

    Raises:
        ResultsError: it is missing, unreadable, not JSON or not a JSON object.
    """
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing; {path.parent} is not a gtmsim results "
                           "folder") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:  # not UTF-8, or not JSON (e.g. truncated)
        raise ResultsError(f"{path}: not a readable manifest (truncated or not JSON: "
                           f"{exc})") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: not a gtmsim manifest (expected a JSON object)")
    return data


def read_parquet(path: Path, columns: Sequence[str] = ()) -> pd.DataFrame:
    """A Parquet table with `columns` present.

    Raises:
        ResultsError: the file is missing, truncated, not Parquet or lacks a column.
    """
    try:
        df = pd.read_parquet(path)
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise ResultsError(f"{path}: not a readable Parquet file (truncated or corrupt: "
                           f"{type(exc).__name__})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ResultsError(f"{path}: lacks the column(s) {', '.join(missing)}")
    return df


KINDS = ("run", "compare", "sweep", "points", "explain", "sensitivity", "optimize", "calibration",
         "forecast")


def folder_kind(folder: Path) -> str | None:
    """What a results folder holds (one of `KINDS`: "run", "compare", …), or None when new or
    empty.

    Raises:
        ResultsError: the path is not a folder, or the folder holds other things (files
            but no gtmsim manifest, or a manifest gtmsim did not write); gtmsim writes
            only into new, empty or its own results folders.
    """
    folder = Path(folder)
    if not folder.exists():
        if folder.is_symlink():
            raise ResultsError(f"{folder}: a link to a missing folder; give another folder")
        return None
    if not folder.is_dir():
        raise ResultsError(f"{folder}: exists and is not a folder")
    try:
        entries = sorted(p.name for p in folder.iterdir()
                         if not (p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX)))
    except OSError as exc:
        raise ResultsError(f"{folder}: cannot read ({exc.strerror or exc})") from None
    if not entries:
        return None
    if MANIFEST not in entries:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise ResultsError(f"{folder}: holds other files ({shown}) and is not a gtmsim results "
                           "folder; give a new or empty folder")
    kind = read_manifest(folder).get("kind")
    if kind not in KINDS:
        raise ResultsError(f"{folder / MANIFEST}: not a gtmsim manifest (kind {kind!r}); "
                           "give a new or empty folder")
    return kind


def identified(result: RunResult) -> pd.DataFrame:
    """The monthly table with identity columns in front: scenario, replication, seed."""
    df = result.monthly.copy()
    df.insert(0, "seed", result.seed)
    df.insert(0, "replication", 0)
    df.insert(0, "scenario", result.scenario.name)
    return df


def run_manifest(result: RunResult, command: Sequence[str] | None = None) -> dict[str, Any]:
    s = result.scenario
    return {
        "kind": "run",
        "scenario": s.name,
        "question": s.question,
        "seed": result.seed,
        "months": result.months,
        "levers": asdict(s.levers),
        "parameters": s.to_dict(),
        "versions": versions(),
        "command": list(command) if command is not None else list(sys.argv),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(result.elapsed_s, 3),
        "files": [MONTHLY, MANIFEST],
    }


def write_run(result: RunResult, folder: str | Path, command: Sequence[str] | None = None) -> Path:
    """Write `monthly.parquet` and `manifest.json` for one run; returns the folder.

    Both files are written in full before either replaces a previous run's, so the
    folder never holds a table without its manifest. A folder holding anything but a
    previous run is refused.

    Raises:
        ResultsError: the folder holds other things, or a file cannot be written.
    """
    folder = Path(folder)
    kind = folder_kind(folder)
    if kind not in (None, "run"):
        raise ResultsError(f"{folder}: holds {kind} results; choose another --out")
    created = not folder.exists()
    try:
        atomic_write_many({folder / MONTHLY: parquet_writer(identified(result)),
                           folder / MANIFEST: json_writer(run_manifest(result, command))})
    except BaseException:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # leave no empty folder behind
        raise
    if kind == "run":
        _remove_stale_report(folder)
    return folder


def _remove_stale_report(folder: Path) -> None:
    """A previous run's report.html, charts, deck, workbook and CSV tables describe numbers
    that are gone: remove them."""
    report, charts = folder / "report.html", folder / "charts"
    for derived in (report, folder / "deck.pptx", folder / "workbook.xlsx"):
        if derived.is_file() and not derived.is_symlink():
            derived.unlink()
    tables = folder / "tables"
    if tables.is_dir() and not tables.is_symlink():
        for table in tables.glob("*.csv"):
            table.unlink()
        if not any(tables.iterdir()):
            tables.rmdir()
    if charts.is_dir() and not charts.is_symlink():
        for png in charts.glob("[0-9][0-9]_*.png"):
            png.unlink()
        if not any(charts.iterdir()):
            charts.rmdir()


def read_run(folder: str | Path) -> pd.DataFrame:
    return read_parquet(Path(folder) / MONTHLY, ("scenario", "seed", "month"))
