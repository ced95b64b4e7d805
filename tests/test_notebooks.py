"""Every shipped notebook runs top to bottom, none is committed with outputs, and what a
notebook concludes is computed from the numbers it shows."""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from gtmsim.takeaways import MARKER, fmt

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))

# Words that make a claim about which way the results go. Markdown cells may ask
# questions with them, but any statement of this kind belongs in a printed takeaway,
# built from the numbers (gtmsim.takeaways), where the test below can check it.
DIRECTIONAL = re.compile(
    r"\b(higher|lower|more than|less than|rises?|falls?|grows?|drops?|flattens?|hardly|"
    r"moves?|beats?|pays?( off)?|paying|most of the gain|not chance|shows where|raises?|"
    r"increases?|decreases?|outperforms?|better|worse)\b", re.IGNORECASE)


def test_the_shipped_notebooks_are_there():
    names = [p.name for p in NOTEBOOKS]
    assert names == ["01_quickstart.ipynb", "02_siloed_vs_aligned.ipynb",
                     "03_capacity_bottleneck.ipynb", "04_custom_scenario.ipynb",
                     "05_calibrate.ipynb", "06_decisions.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebooks_carry_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_states_no_direction_the_numbers_could_contradict(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", cell.source):
            if sentence.rstrip().endswith("?"):
                continue
            found = DIRECTIONAL.search(sentence)
            assert not found, f"{path.name}: markdown claims {found[0]!r}: {sentence!r}"


@functools.cache
def _executed(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    # A kernel can take more than the default minute to start on a busy machine.
    NotebookClient(nb, timeout=600, startup_timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def _texts(nb: nbformat.NotebookNode) -> list[str]:
    """Every text a code cell showed: streams, errors, and plain-text results."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.output_type == "stream":
                out.append(o.text)
            elif o.output_type == "error":
                out.append("\n".join(o.traceback))
            elif "text/plain" in o.get("data", {}):
                out.append(o.data["text/plain"])
    return out


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path):
    nb = _executed(path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shows_no_progress_bar_warning(path):
    for text in _texts(_executed(path)):
        assert "TqdmWarning" not in text and "IProgress" not in text, text


def _direction(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "none"
    return "higher" if low > 0 else "lower" if high < 0 else "zero"


def _check_interval(c: dict) -> None:
    s, unit = c["sentence"], c["unit"]
    d = _direction(c["ci_low"], c["ci_high"])
    if d == "none":
        assert "no interval" in s and "higher" not in s and "lower" not in s, s
        return
    assert f"CI {fmt(c['ci_low'], unit)} to {fmt(c['ci_high'], unit)})" in s, s
    assert c["ci_low"] <= c["diff"] <= c["ci_high"], c
    if d == "zero":
        assert f"not clearly different: {fmt(c['diff'], unit)} (" in s, s
        assert "an interval that spans zero" in s, s
        assert "higher" not in s and "lower" not in s, s
    else:
        other = "lower" if d == "higher" else "higher"
        assert f"{d} by {fmt(abs(c['diff']), unit)} (" in s, s
        assert other not in s and "not clearly different" not in s, s


def _check_change(c: dict) -> None:
    s, unit, before, after = c["sentence"], c["unit"], c["before"], c["after"]
    if fmt(before, unit) == fmt(after, unit):
        assert "(no change at this precision)" in s, s
        assert "higher" not in s and "lower" not in s, s
    else:
        d, other = ("higher", "lower") if after > before else ("lower", "higher")
        assert f"from {fmt(before, unit)} to {fmt(after, unit)} ({d} by " in s, s
        assert other not in s, s


def _check_tally(c: dict, claims: list[dict]) -> None:
    members = [x for x in claims if x["kind"] == "interval" and x["group"] == c["group"]]
    assert members, c
    want = {"higher": [], "lower": [], "zero": []}
    for x in members:
        want[{"none": "zero"}.get(d := _direction(x["ci_low"], x["ci_high"]), d)].append(x["item"])
    got = {k: c[k] for k in ("higher", "lower")} | {"zero": c["unclear"]}
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}
    s = c["sentence"]
    for word, key in (("clearly higher for ", "higher"), ("clearly lower for ", "lower"),
                      ("not clearly different for ", "zero")):
        clause = s.split(word, 1)[1].split(";", 1)[0].rstrip(".")
        assert clause == (", ".join(want[key]) or "none"), s


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_printed_takeaways_agree_with_their_numbers(path):
    texts = _texts(_executed(path))
    lines = [ln for t in texts for ln in t.splitlines()]
    marked = [json.loads(ln[len(MARKER):]) for ln in lines if ln.startswith(MARKER)]
    assert marked, f"{path.name}: prints no {MARKER!r} line"
    for claims in marked:
        assert any(c["kind"] != "note" for c in claims), path.name
        for c in claims:
            _check_claim(path, c, claims, lines)


def _check_claim(path: Path, c: dict, claims: list[dict], lines: list[str]) -> None:
    assert c["sentence"] in lines, f"{path.name}: not printed: {c['sentence']!r}"
    if c["kind"] == "interval":
        _check_interval(c)
    elif c["kind"] == "change":
        _check_change(c)
    elif c["kind"] == "tally":
        _check_tally(c, claims)
    else:
        assert c["kind"] == "note" and not re.search(r"\d", c["sentence"]), c


def test_the_takeaway_check_catches_a_sentence_that_contradicts_its_numbers():
    """The check above is only worth something if it fails on a contradiction."""
    path = Path("x.ipynb")
    spans = {"kind": "interval", "unit": "$", "diff": -305e3, "ci_low": -700e3, "ci_high": 90e3,
             "group": "g", "item": "a"}
    wrong = [
        dict(spans, sentence="Bookings are lower by $305k (95% CI \u2212$700k to $90k)."),
        dict(spans, sentence="Bookings are not clearly different: \u2212$305k "
                             "(95% CI \u2212$700k to $80k), an interval that spans zero."),
        {"kind": "change", "unit": "$", "before": 2.46e6, "after": 2.31e6,
         "sentence": "Bookings go from $2.46M to $2.31M (higher by $150k)."},
        {"kind": "note", "sentence": "Bookings hardly move: $305k."},
    ]
    for c in wrong:
        with pytest.raises(AssertionError):
            _check_claim(path, c, [c], [c["sentence"]])
    tally = {"kind": "tally", "group": "g", "higher": [], "lower": ["a"], "unclear": [],
             "sentence": "T: clearly higher for none; clearly lower for a; "
                         "not clearly different for none."}
    with pytest.raises(AssertionError):
        _check_claim(path, tally, [spans, tally], [tally["sentence"]])
    right = dict(spans, sentence="Bookings are not clearly different: \u2212$305k "
                                 "(95% CI \u2212$700k to $90k), an interval that spans zero.")
    _check_claim(path, right, [right], [right["sentence"]])
