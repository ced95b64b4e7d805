"""The leadership report: self-contained HTML, decodable images, numbers that match the runs."""

from __future__ import annotations

import base64
import io
import html
import re

import matplotlib.image
import numpy as np
import pytest
from scipy import stats

from gtmsim.experiment import compare, sweep
from gtmsim.decision import money
from gtmsim.report import build_report, headline, load_results, summary_table
from gtmsim.results import write_run
from gtmsim import simulate, load_scenario

SMALL = {"market.prospects": 3000, "months": 8}


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cmp") / "siloed-vs-aligned"
    compare(["siloed", "aligned"], reps=4, seed=7, overrides=SMALL, workers=1, out=folder)
    return folder


def test_report_is_self_contained_and_every_image_decodes(compared):
    page = build_report(compared).read_text(encoding="utf-8")
    assert not re.search(r"(?:src|href)\s*=\s*[\"'](?!data:)", page), "references outside the page"
    assert "http://" not in page and "https://" not in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 6
    for b64 in images:
        pixels = matplotlib.image.imread(io.BytesIO(base64.b64decode(b64)), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    pngs = sorted((compared / "charts").glob("*.png"))
    assert len(pngs) == len(images)
    h, w = matplotlib.image.imread(pngs[0]).shape[:2]
    assert w / h == pytest.approx(16 / 9, rel=0.01)  # slide-shaped


def test_headline_and_table_recomputed_from_the_runs_table(compared):
    res = load_results(compared)
    runs = res.runs
    final = runs[runs.month == runs.month.max()].pivot(index="replication", columns="scenario",
                                                       values="cumulative_bookings")
    diff = final["aligned"] - final["siloed"]
    table = summary_table(res)
    row = table[(table.outcome == "cumulative_bookings") & (table.scenario == "aligned")].iloc[0]
    assert row["diff"] == pytest.approx(diff.mean())
    assert row["diff_pct"] == pytest.approx(100 * diff.mean() / final["siloed"].mean())
    assert row["ahead"] == pytest.approx((diff > 0).mean())
    text = headline(res, table)
    # The headline says every option against the reference in $ with the paired interval.
    low, high = stats.ttest_1samp(diff, 0.0).confidence_interval(0.95)
    more = "more" if diff.mean() >= 0 else "less"
    assert text.startswith(f"Aligned books {money(abs(diff.mean()))} {more} than Siloed over "
                           f"8 months (95% CI {money(low, signed=True)} to "
                           f"{money(high, signed=True)}")
    page = build_report(compared).read_text(encoding="utf-8")
    assert text in html.unescape(re.sub(r"</?span[^>]*>", "", page))


def test_report_of_a_single_run(tmp_path):
    result = simulate(load_scenario("baseline", SMALL), seed=3)
    write_run(result, tmp_path / "run")
    page = build_report(tmp_path / "run", tmp_path / "out" / "r.html").read_text(encoding="utf-8")
    final = result.monthly["cumulative_bookings"].iloc[-1]
    assert "Baseline books $" in page and "one run, seed 3" in page
    assert (tmp_path / "out" / "charts").is_dir()
    assert final > 0


def test_report_of_a_sweep_names_grid_points(tmp_path):
    folder = tmp_path / "sweep"
    sweep("baseline", {"sales.reps": [2, 6]}, reps=2, seed=1, overrides=SMALL, workers=1, out=folder)
    page = build_report(folder).read_text(encoding="utf-8")
    assert "sales.reps=6" in page and "sales.reps=2" in page
    table = summary_table(load_results(folder))
    # Payback has no mean when a replication does not pay back within the run.
    censored = table["outcome"].eq("payback_month") & table["n"].lt(table["reps"])
    assert np.isfinite(table.loc[~censored, "mean"]).all()


def test_cli_report_and_compare_with_report(tmp_path, capsys):
    from gtmsim.cli import main

    folder = tmp_path / "c"
    assert main(["compare", "siloed", "aligned", "--reps", "2", "--workers", "1", "--set",
                 "market.prospects=2000", "--months", "4", "--out", str(folder), "--report",
                 "-q"]) == 0
    assert (folder / "report.html").is_file() and (folder / "charts").is_dir()
    assert main(["report", str(folder), "-o", str(tmp_path / "elsewhere" / "r.html")]) == 0
    assert (tmp_path / "elsewhere" / "r.html").is_file()
    assert main(["report", str(tmp_path / "nothing-here")]) == 2
    assert "not a results folder" in capsys.readouterr().err
