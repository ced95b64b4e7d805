"""The docs keep up with the code: every scenario key and every tagged assumption."""

from __future__ import annotations

from pathlib import Path

import pytest

from gtmsim.docs import tagged_assumptions
from gtmsim.scenario import schema_keys

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MODEL = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("key", schema_keys())
def test_every_scenario_key_is_in_the_readme_reference(key):
    assert f"`{key}`" in README


@pytest.mark.parametrize(
    "key", [k for k in schema_keys() if k.split(".")[0] in ("market", "marketing", "sales",
                                                              "alignment", "founder")]
)
def test_every_model_parameter_is_explained_in_docs_model(key):
    assert f"`{key}`" in MODEL


def test_assumptions_are_tagged_and_listed():
    found = tagged_assumptions()
    assert len(found) >= 15
    modules = {place.split(":")[0] for place, _ in found}
    assert {"gtmsim/sales.py", "gtmsim/marketing.py", "gtmsim/prospects.py", "gtmsim/model.py"} <= modules
    assert all(text for _, text in found)
