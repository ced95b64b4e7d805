"""Helpers the benchmark scripts share: machine facts, medians, markdown tables, JSON output."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


# The code a run executes; charts, reports and the CLI do not change the figures.
CORE = ("model.py", "prospects.py", "marketing.py", "sales.py", "scenario.py", "alignment.py",
        "metrics.py", "experiment.py")


def core_digest() -> str:
    """A short SHA-256 of the gtmsim code and shipped scenarios a run executes.

    The commit alone does not name the code measured while others edit the tree.
    """
    h = hashlib.sha256()
    pkg = ROOT / "gtmsim"
    for path in [pkg / name for name in CORE] + sorted((pkg / "scenarios").glob("*.toml")):
        if path.exists():
            h.update(path.relative_to(ROOT).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def machine() -> dict[str, Any]:
    """Where and on what the figures were measured."""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": version("numpy"),
        "mesa": version("mesa"),
        "gtmsim": version("gtmsim"),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "gtmsim_modified": bool(_git("status", "--porcelain", "--", "gtmsim")),
        "core_sha256": core_digest(),
        "load_average_start": load_average(),
    }


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_outputs(stem: str, figures: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write `results/<stem>.json` and `results/<stem>.md`; return their paths."""
    RESULTS.mkdir(exist_ok=True)
    js, md = RESULTS / f"{stem}.json", RESULTS / f"{stem}.md"
    js.write_text(json.dumps(figures, indent=2) + "\n")
    md.write_text(markdown + "\n")
    return js, md


def finish(meta: dict[str, Any]) -> None:
    """Record the end of a measurement; warn if the measured code changed meanwhile."""
    meta["load_average_end"] = load_average()
    meta["core_changed_during_run"] = core_digest() != meta["core_sha256"]
    if meta["core_changed_during_run"]:
        print("WARNING: gtmsim's code changed during the measurement; rerun for clean figures")


def describe(meta: dict[str, Any]) -> str:
    """One sentence naming when, on what machine and code, and under what load."""
    edits = " + uncommitted edits" if meta["gtmsim_modified"] else ""
    changed = " CODE CHANGED DURING THE RUN." if meta.get("core_changed_during_run") else ""
    return (f"Measured {meta['date']} on {meta['cores']} cores ({meta['cpu']}); Python "
            f"{meta['python']}, numpy {meta['numpy']}, mesa {meta['mesa']}, gtmsim "
            f"{meta['gtmsim']} at {meta['git_commit']}{edits} (core sha256 {meta['core_sha256']}); "
            f"load average (1, 5, 15 min) {meta['load_average_start']} at start, "
            f"{meta['load_average_end']} at end.{changed}")
