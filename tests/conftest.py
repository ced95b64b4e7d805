"""Shared helpers: small scenarios that run in a fraction of a second."""

from __future__ import annotations

from pathlib import Path

import pytest

from gtmsim import load_scenario

DATA = Path(__file__).parent / "data"


def small(name: str = "baseline", **overrides):
    """A shipped scenario shrunk to a few thousand prospects and a few months."""
    keys = {"market.prospects": 4000, "months": 6}
    keys.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_scenario(name, keys)


@pytest.fixture
def data_dir() -> Path:
    return DATA
