"""Run functions that fail, importable by worker processes (tests/ is on their sys.path)."""

from __future__ import annotations

from gtmsim.scenario import ScenarioError


def bad_input(task):
    raise ScenarioError(["a.b: bad", "c.d: also bad"])


def bug(task):
    raise ZeroDivisionError("division by zero")
