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


# A comparison as an analyst would set it up: labelled options, a question each, one
# option with a timeline and a cost. Shared by the report, deck and workbook tests.
DECISION_SIZE = {"market.prospects": 3000, "months": 6}


@pytest.fixture(scope="session")
def decision_folder(tmp_path_factory) -> Path:
    from gtmsim.experiment import compare

    root = tmp_path_factory.mktemp("decision")
    (root / "fix.toml").write_text(
        'extends = "aligned"\nname = "acme_fix"\nlabel = "Fix the hand-off"\n'
        'question = "What does fixing the hand-off book?"\n', encoding="utf-8")
    (root / "reps.toml").write_text(
        'extends = "siloed"\nname = "acme_reps"\nquestion = "What do two more reps book?"\n'
        '[[timeline]]\nmonth = 3\nset = { "sales.reps" = 6 }\nnote = "two reps join"\n',
        encoding="utf-8")
    folder = root / "results"
    compare(["siloed", root / "fix.toml", root / "reps.toml"], reps=4, seed=11,
            overrides=DECISION_SIZE, workers=1, out=folder)
    return folder
