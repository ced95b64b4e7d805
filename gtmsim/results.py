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
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # the CLI reads results without loading the model
    from gtmsim.model import RunResult

MANIFEST = "manifest.json"
MONTHLY = "monthly.parquet"


def versions() -> dict[str, str]:
    """Versions of gtmsim and the libraries that shape its numbers."""
    import mesa
    import numpy
    import pyarrow

    import gtmsim

    return {
        "gtmsim": gtmsim.__version__,
        "mesa": mesa.__version__,
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
        "pyarrow": pyarrow.__version__,
        "python": platform.python_version(),
    }


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def write_csv(df: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def write_json(data: Any, path: Path) -> None:
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_manifest(folder: str | Path) -> dict[str, Any]:
    return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))


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
    """Write `monthly.parquet` and `manifest.json` for one run; returns the folder."""
    folder = Path(folder)
    write_parquet(identified(result), folder / MONTHLY)
    write_json(run_manifest(result, command), folder / MANIFEST)
    return folder


def read_run(folder: str | Path) -> pd.DataFrame:
    return pd.read_parquet(Path(folder) / MONTHLY)
