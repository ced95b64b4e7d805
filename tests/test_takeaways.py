"""Takeaway sentences say what their numbers say: above, below or across zero."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from gtmsim.takeaways import MARKER, Takeaways, change, difference, fmt, mean_interval, verdict


@pytest.mark.parametrize(("value", "unit", "text"), [
    (1.2e6, "$", "$1.2M"), (-305_000, "$", "\u2212$305k"), (90_200, "$", "$90.2k"),
    (412.4, "$", "$412"), (999_600, "$", "$1M"), (2.6e9, "$", "$2.6B"), (0, "$", "$0"),
    (1.25, "days", "1.25 days"), (-0.5, "days", "\u22120.50 days"), (1234, "leads", "1,234 leads"),
    (math.nan, "$", "n/a"),
])
def test_numbers_are_formatted_as_people_read_them(value, unit, text):
    assert fmt(value, unit) == text


def test_an_interval_above_zero_reads_higher():
    assert difference(1.2e6, 0.9e6, 1.5e6) == "higher by $1.2M (95% CI $900k to $1.5M)"


def test_an_interval_below_zero_reads_lower():
    assert difference(-305e3, -700e3, -90e3) == \
        "lower by $305k (95% CI \u2212$700k to \u2212$90k)"


@pytest.mark.parametrize(("diff", "low", "high"), [
    (-305e3, -700e3, 90e3), (2e5, -1e4, 4.1e5), (0.0, 0.0, 0.0), (1e5, 0.0, 2e5), (-1e5, -2e5, 0.0),
])
def test_an_interval_that_spans_or_touches_zero_claims_no_direction(diff, low, high):
    text = difference(diff, low, high)
    assert text.startswith("not clearly different: ")
    assert text.endswith(", an interval that spans zero")
    assert "higher" not in text and "lower" not in text
    assert f"CI {fmt(low)} to {fmt(high)})" in text


def test_no_interval_says_so():
    assert difference(5e4, math.nan, math.nan) == "$50k with no interval (too few replications)"
    assert verdict(math.nan, 1.0) == "unknown"


def test_other_units_and_confidence_levels():
    assert difference(-0.8, -1.2, -0.4, unit="days", confidence=0.9) == \
        "lower by 0.80 days (90% CI \u22121.20 days to \u22120.40 days)"


def test_a_single_run_change_names_its_direction_or_none():
    assert change(2.46e6, 2.31e6) == "from $2.46M to $2.31M (lower by $150k)"
    assert change(1.0, 1.5, unit="days") == "from 1.00 days to 1.50 days (higher by 0.50 days)"
    assert change(1.0, 1.004, unit="days") == \
        "from 1.00 days to 1.00 days (no change at this precision)"


def test_mean_interval_is_the_paired_t_interval():
    x = [1.0, 2.0, 3.0, math.nan]
    mean, low, high = mean_interval(x)
    half = stats.t.ppf(0.975, 2) * 1 / math.sqrt(3)
    assert mean == 2.0
    np.testing.assert_allclose([low, high], [2 - half, 2 + half], rtol=1e-12)
    assert all(math.isnan(v) for v in mean_interval([4.0])[1:])
    assert all(math.isnan(v) for v in mean_interval([]))


def test_takeaways_print_sentences_and_their_numbers(capsys):
    t = Takeaways()
    t.interval("A vs B, bookings", 1.2e6, 0.9e6, 1.5e6, group="g", item="A")
    t.interval("C vs B, bookings", -3e5, -7e5, 9e4, group="g", item="C")
    t.interval("D vs B, bookings", -3e5, -7e5, -1e5, group="g", item="D")
    t.change("One run, bookings", 2.0e6, 2.5e6)
    t.tally("Against B", "g")
    t.note("One run is an anecdote.")
    t.show()
    lines = capsys.readouterr().out.splitlines()
    assert lines[:6] == [
        "A vs B, bookings higher by $1.2M (95% CI $900k to $1.5M).",
        "C vs B, bookings not clearly different: \u2212$300k (95% CI \u2212$700k to $90k), "
        "an interval that spans zero.",
        "D vs B, bookings lower by $300k (95% CI \u2212$700k to \u2212$100k).",
        "One run, bookings from $2M to $2.5M (higher by $500k).",
        "Against B: clearly higher for A; clearly lower for D; not clearly different for C.",
        "One run is an anecdote.",
    ]
    assert lines[6].startswith(MARKER)
    claims = json.loads(lines[6][len(MARKER):])
    assert [c["kind"] for c in claims] == ["interval"] * 3 + ["change", "tally", "note"]
    assert claims[0]["ci_low"] == 0.9e6 and claims[4]["lower"] == ["D"]
    assert [c["sentence"] for c in claims] == lines[:6]


def test_the_examples_in_the_docstrings_hold():
    import doctest

    import gtmsim.takeaways

    assert doctest.testmod(gtmsim.takeaways).failed == 0
