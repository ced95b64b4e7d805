"""Takeaway sentences computed from the results they describe.

A conclusion written by hand next to a table can contradict it as soon as the model, the
seed or the size changes. The notebooks print these sentences instead: each is built from
a difference and its interval, so its direction ("higher", "lower", or "not clearly
different" when the interval spans zero) is whatever the numbers say. `Takeaways.show()`
also prints the claims as one JSON line after `MARKER`, so a test can check every
sentence against its numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import stats

MARKER = "TAKEAWAYS_JSON: "
MINUS = "\u2212"

HIGHER, LOWER, UNCLEAR, UNKNOWN = "higher", "lower", "unclear", "unknown"


def fmt(value: float, unit: str = "$") -> str:
    """A number as people read it: `$1.23M`, `−$305k`, `1.25 days`, `12 leads`.

    Money keeps three significant figures with k/M/B; other units keep up to three
    significant figures and name the unit; days keep two decimals. The minus sign is U+2212.
    """
    if value is None or math.isnan(value):
        return "n/a"
    sign = MINUS if value < 0 else ""
    a = abs(float(value))
    if unit == "$":
        for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if float(f"{a / scale:.3g}") >= 1:
                return f"{sign}${a / scale:.3g}{suffix}"
        return f"{sign}${a:.3g}"
    if unit == "days":
        return f"{sign}{a:.2f} days"
    text = f"{a:,.0f}" if a >= 100 else f"{a:.3g}"
    return f"{sign}{text} {unit}".rstrip()


def verdict(low: float, high: float) -> str:
    """`higher` if the interval lies above zero, `lower` if below, `unclear` if it spans
    (or touches) zero, `unknown` if there is no interval."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return UNKNOWN
    if low > 0:
        return HIGHER
    if high < 0:
        return LOWER
    return UNCLEAR


def difference(diff: float, low: float, high: float, *, unit: str = "$",
               confidence: float = 0.95) -> str:
    """A paired difference with its interval, worded by where the interval lies.

    >>> difference(1.2e6, 0.9e6, 1.5e6)
    'higher by $1.2M (95% CI $900k to $1.5M)'
    >>> difference(-305e3, -700e3, 90e3)
    'not clearly different: −$305k (95% CI −$700k to $90k), an interval that spans zero'
    """
    ci = f"({confidence:.0%} CI {fmt(low, unit)} to {fmt(high, unit)})"
    v = verdict(low, high)
    if v == HIGHER:
        return f"higher by {fmt(abs(diff), unit)} {ci}"
    if v == LOWER:
        return f"lower by {fmt(abs(diff), unit)} {ci}"
    if v == UNCLEAR:
        return f"not clearly different: {fmt(diff, unit)} {ci}, an interval that spans zero"
    return f"{fmt(diff, unit)} with no interval (too few replications)"


def change(before: float, after: float, *, unit: str = "$") -> str:
    """A change seen in one run, with no interval: says only what happened.

    >>> change(2.46e6, 2.31e6)
    'from $2.46M to $2.31M (lower by $150k)'
    """
    if fmt(before, unit) == fmt(after, unit):
        return f"from {fmt(before, unit)} to {fmt(after, unit)} (no change at this precision)"
    word = HIGHER if after > before else LOWER
    by = fmt(abs(after - before), unit)
    return f"from {fmt(before, unit)} to {fmt(after, unit)} ({word} by {by})"


def mean_interval(values: Sequence[float] | np.ndarray,
                  confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of paired differences (NaNs dropped); the interval
    is NaN with fewer than two values."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return (math.nan,) * 3
    if len(x) < 2:
        return float(x.mean()), math.nan, math.nan
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(confidence)
    return float(x.mean()), float(ci.low), float(ci.high)


def _names(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(names) if names else "none"


class Takeaways:
    """Collects claims, then prints them as sentences and as one JSON line.

    Each claim keeps the numbers its sentence was built from, so the sentence can be
    checked against them (tests/test_notebooks.py does).
    """

    def __init__(self, confidence: float = 0.95):
        self.confidence = confidence
        self.claims: list[dict[str, Any]] = []

    def interval(self, subject: str, diff: float, low: float, high: float, *,
                 unit: str = "$", group: str | None = None, item: str | None = None) -> str:
        """`subject` followed by `difference(...)`; `group`/`item` feed `tally`."""
        phrase = difference(diff, low, high, unit=unit, confidence=self.confidence)
        sentence = f"{subject} {phrase}."
        self.claims.append({"kind": "interval", "sentence": sentence, "unit": unit,
                            "diff": diff, "ci_low": low, "ci_high": high,
                            "group": group, "item": None if item is None else str(item)})
        return sentence

    def change(self, subject: str, before: float, after: float, *, unit: str = "$") -> str:
        """`subject` followed by `change(...)`: one run, no interval."""
        sentence = f"{subject} {change(before, after, unit=unit)}."
        self.claims.append({"kind": "change", "sentence": sentence, "unit": unit,
                            "before": before, "after": after})
        return sentence

    def tally(self, subject: str, group: str) -> str:
        """Which items of `group` (earlier `interval` claims) lie above, below or across zero."""
        items = [c for c in self.claims if c["kind"] == "interval" and c["group"] == group]
        split: dict[str, list[str]] = {HIGHER: [], LOWER: [], UNCLEAR: [], UNKNOWN: []}
        for c in items:
            split[verdict(c["ci_low"], c["ci_high"])].append(c["item"])
        sentence = (f"{subject}: clearly higher for {_names(split[HIGHER])}; clearly lower for "
                    f"{_names(split[LOWER])}; not clearly different for "
                    f"{_names(split[UNCLEAR] + split[UNKNOWN])}.")
        self.claims.append({"kind": "tally", "sentence": sentence, "group": group,
                            HIGHER: split[HIGHER], LOWER: split[LOWER],
                            UNCLEAR: split[UNCLEAR] + split[UNKNOWN]})
        return sentence

    def note(self, sentence: str) -> str:
        """A sentence that makes no claim about the numbers (a caveat, a pointer)."""
        self.claims.append({"kind": "note", "sentence": sentence})
        return sentence

    def show(self) -> None:
        """Print every sentence, then the claims as JSON after `MARKER`."""
        for c in self.claims:
            print(c["sentence"])
        print(MARKER + json.dumps(self.claims, allow_nan=True, default=float))
