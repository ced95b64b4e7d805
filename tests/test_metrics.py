"""Every monthly column is defined once, and the README lists them all."""

from pathlib import Path

from gtmsim.metrics import COLUMNS, METRICS, label

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_column_has_a_label_unit_and_description():
    for name in COLUMNS:
        m = METRICS[name]
        assert m.name == name and m.label and m.unit and m.description


def test_readme_lists_every_monthly_column():
    for name in COLUMNS:
        assert name in README, name


def test_labels_carry_units_except_fractions():
    assert label("bookings") == "Bookings ($)"
    assert label("win_rate") == "Win rate"
