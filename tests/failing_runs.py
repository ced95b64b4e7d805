"""Functions for worker processes (tests/ is on their sys.path): runs that fail, and a look
inside a worker."""

from __future__ import annotations

from gtmsim.scenario import ScenarioError


def bad_input(task):
    raise ScenarioError(["a.b: bad", "c.d: also bad"])


def bug(task):
    raise ZeroDivisionError("division by zero")


def kernels_loaded(_):
    """How many compiled signatures the worker's kernels hold before it runs anything."""
    from gtmsim import kernels

    return sum(len(k.signatures) for k in (kernels.touch_day, kernels.market_day,
                                           kernels.program_draw, kernels.take_leads))
