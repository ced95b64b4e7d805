"""Report pages of explain, sensitivity and optimize folders: written by `--report` on each
verb and by `gtmsim report DIR`; the headline's numbers are those of the folder's tables;
an unfinished folder is a clear error (exit 2, no traceback)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from gtmsim.cli import main
from gtmsim.experiment import OUTCOMES, format_value, interval_text
from gtmsim.report_analysis import box_words, build_report, headline_numbers, key_words
from gtmsim.takeaways import fmt

TINY = ["--set", "market.prospects=2000", "--months", "6", "--reps", "2", "--workers", "1"]
OUTCOME = {o.name: o for o in OUTCOMES}
PNG = b"\x89PNG\r\n\x1a\n"

# A plan with one program that works and one that does nothing (as in test_optimize), small.
PLAN = """
name = "two_programs"
months = 4
seed = 7

[market]
prospects = 1500
initial_aware = 0.02
in_market_share = 0.15
inbound_propensity = 0.8

[market.segments.smb]
share = 1.0
deal_value = 10000
deal_value_spread = 0.2
cycle_days = 20
base_win_rate = 0.4

[marketing.programs.ads]
channel = "paid_ads"
monthly_budget = 24000
cost_per_reach = 40.0
saturation = 4.0
awareness = 0.6
trust = 0.2
hand_raise = 0.3

[marketing.programs.dud]
channel = "other"
monthly_budget = 24000
cost_per_reach = 40.0
awareness = 0.0
trust = 0.0
hand_raise = 0.0
lead_capture = 0.0

[sales]
reps = 6
"""
ADS = "marketing.programs.ads.monthly_budget"
DUD = "marketing.programs.dud.monthly_budget"


def _charts(page: Path) -> list[Path]:
    """The page's chart files; each is a PNG and embedded once in the page."""
    text = page.read_text(encoding="utf-8")
    files = sorted((page.parent / "charts").glob("[0-9][0-9]_*.png"))
    assert files, "no chart written"
    for f in files:
        assert f.read_bytes()[:8] == PNG and f.stat().st_size > 5000
    assert text.count("data:image/png;base64,") == len(files)
    return files


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """Each verb run once through the CLI with --report, as a user would."""
    root = tmp_path_factory.mktemp("analysis")
    (root / "plan.toml").write_text(PLAN, encoding="utf-8")
    made = {"explain": root / "ex", "sensitivity": root / "se", "optimize": root / "op"}
    assert main(["explain", "baseline", "sla_only", *TINY, "--out", str(made["explain"]),
                 "--report", "-q"]) == 0
    assert main(["sensitivity", "baseline", "--vary", "sales.reps=2:8", "--vary",
                 "alignment.sla_days=0:5", "--samples", "2", "--decision", "siloed,aligned",
                 *TINY, "--out", str(made["sensitivity"]), "--report", "-q"]) == 0
    assert main(["optimize", str(root / "plan.toml"), "--vary", f"{ADS}=0:48000",
                 "--vary", f"{DUD}=0:48000", "--constraint", "marketing_spend<=48000",
                 "--trials", "4", "--reps", "2", "--top", "2", "--workers", "1",
                 "--out", str(made["optimize"]), "--report", "-q"]) == 0
    return made


def test_explain_page_headline_is_the_largest_contribution_in_the_csv(folders):
    folder = folders["explain"]
    page = folder / "report.html"
    assert page.is_file()
    text = page.read_text(encoding="utf-8")
    gaps = pd.read_csv(folder / "gaps.csv").set_index("outcome")
    c = pd.read_csv(folder / "contributions.csv")
    c = c[c["outcome"] == "cumulative_bookings"]
    g = gaps.loc["cumulative_bookings"]
    top = c.loc[c["contribution"].abs().idxmax()]
    head = headline_numbers(page)
    assert format_value("$", g["gap"], signed=True) in head
    assert interval_text("$", g["gap_ci_low"], g["gap_ci_high"], signed=True) in head
    assert f"{top['factor']} contributes most" in head
    assert format_value("$", top["contribution"], signed=True) in head
    share = f"{top['contribution'] / g['gap']:.0%}".replace("-", "\u2212")
    assert f"{share} of the gap" in head
    spans = top["ci_low"] <= 0 <= top["ci_high"]
    assert ("its interval includes 0" if spans else "its interval excludes 0") in head
    # Every factor and every outcome is in the table; the scenarios' questions and the method.
    for f in c["factor"]:
        assert f in text
    assert "Baseline" in text and "Sla only" in text and "What do 24 months" in text
    assert "exact Shapley values: all 2^2 = 4 mixes" in text
    assert "follow-up SLA (alignment.sla_days): none → 1 day" in text
    names = [p.name for p in _charts(page)]
    assert names[0] == "01_waterfall_cumulative_bookings.png"
    assert text.index("<h1>") < text.index('class="headline"') < text.index("Method and seeds")


def test_sensitivity_page_ranks_the_keys_and_states_the_noise_and_the_decision(folders):
    folder = folders["sensitivity"]
    page = folder / "report.html"
    text = page.read_text(encoding="utf-8")
    indices = pd.read_csv(folder / "indices.csv")
    keyed = indices[~indices["key"].str.startswith("(")]
    top = keyed.loc[keyed["mu_star"].idxmax()]
    noise = indices[indices["key"].str.startswith("(")].iloc[0]
    head = headline_numbers(page)
    assert head.startswith(f"{top['key']} drives cumulative bookings of aligned − siloed most")
    assert f"μ* {format_value('$', top['mu_star'])}" in head
    assert format_value("$", noise["mu_star"]) in head
    above = [r.key for r in keyed.itertuples() if r.mu_star - r.mu_star_conf > noise["mu_star"]]
    assert (", ".join(above) in head) if above else "no key's interval lies above" in head
    section = json.loads((folder / "manifest.json").read_text())["sensitivity"]
    assert f"is {section['noise_share']:.0%} replication noise" in text
    d = section["decision"]
    assert (f"aligned beats siloed on cumulative bookings at {d['p_b_better']:.0%} of the "
            f"{d['points']} sampled points (95% Wilson interval {d['p_low']:.0%} to "
            f"{d['p_high']:.0%})") in text
    boxes = pd.read_csv(folder / "boxes.csv")
    assert ("Where the decision flips" in text) == bool(len(boxes))
    assert "sales reps (sales.reps)" in text and "none to 5 days" in text  # ranges in units
    assert [p.name for p in _charts(page)] == ["01_morris_cumulative_bookings.png"]


def test_a_box_reads_in_scenario_keys_and_units():
    ranges = [{"key": "sales.reps", "low": 2.0, "high": 10.0, "whole": True},
              {"key": "alignment.sla_days", "low": 0.0, "high": 7.0, "whole": False},
              {"key": "marketing.programs.paid_ads.monthly_budget", "low": 0.0,
               "high": 40000.0, "whole": False}]
    box = {"sales.reps_low": 2.0, "sales.reps_high": 4.5, "alignment.sla_days_low": 3.02,
           "alignment.sla_days_high": 7.0,
           "marketing.programs.paid_ads.monthly_budget_low": 12000.0,
           "marketing.programs.paid_ads.monthly_budget_high": 30000.0}
    assert box_words(box, ranges) == (
        "sales reps (sales.reps) ≤ 4 and follow-up SLA (alignment.sla_days) > 3.02 days and "
        "paid ads budget (marketing.programs.paid_ads.monthly_budget) $12k a month to "
        "$30k a month")


def test_optimize_page_compares_the_chosen_plan_with_the_start_on_fresh_seeds(folders):
    folder = folders["optimize"]
    page = folder / "report.html"
    text = page.read_text(encoding="utf-8")
    manifest = json.loads((folder / "manifest.json").read_text())
    summary = pd.read_csv(folder / "summary.csv")
    rows = summary[summary["outcome"] == "cumulative_bookings"]
    head = headline_numbers(page)
    if manifest["kept_start"]:
        assert "No searched plan beat the starting plan" in head
        assert format_value("$", rows.iloc[0]["mean"]) in head
    else:
        r = rows[rows["chosen"]].iloc[0]
        assert f"The chosen plan ({r['scenario']})" in head
        assert format_value("$", r["diff"], signed=True) in head
        assert interval_text("$", r["diff_ci_low"], r["diff_ci_high"], signed=True) in head
    # What changed, in units, and the limit checked on the fresh replications.
    for key, value in manifest["best"].items():
        start = 24000  # both programs' budget in PLAN
        assert (f"<td>{key_words(key)}</td><td>{fmt(start)} a month</td>"
                f"<td>{fmt(value)} a month</td>") in text
    reeval = pd.read_parquet(folder / "reevaluation" / "runs.parquet")
    chosen = summary.loc[summary["chosen"], "scenario"].iloc[0]
    spend = reeval[reeval["scenario"] == chosen].groupby("replication")["marketing_spend"].mean()
    assert f"<td>{format_value('$/month', spend.mean())}</td><td>holds</td>" in text
    assert spend.mean() <= 48000 + 1e-6
    assert str(folder / "best.toml") in text and "optimiser's curse" in text
    assert [p.name for p in _charts(page)] == ["01_search.png"]


def test_report_command_renders_the_folders_elsewhere_and_refuses_a_deck(folders, tmp_path,
                                                                         capsys):
    out = tmp_path / "pages" / "explain.html"
    out.parent.mkdir()
    assert main(["report", str(folders["explain"]), "-o", str(out)]) == 0
    assert out.is_file()
    assert (out.parent / "charts" / "01_waterfall_cumulative_bookings.png").is_file()
    assert headline_numbers(out) == headline_numbers(folders["explain"] / "report.html")
    capsys.readouterr()
    for folder in folders.values():
        assert main(["report", str(folder), "--pptx"]) == 2
        err = capsys.readouterr().err
        assert "get the HTML report only" in err and "Traceback" not in err


def test_sobol_and_json_with_report(tmp_path, capsys):
    folder = tmp_path / "sobol"
    assert main(["sensitivity", "baseline", "--vary", "sales.reps=2:8", "--vary",
                 "alignment.sla_days=0:5", "--method", "sobol", "--samples", "2", *TINY,
                 "--out", str(folder), "--report", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert str(folder / "report.html") in printed["files"]
    indices = pd.read_csv(folder / "indices.csv")
    keyed = indices[~indices["key"].str.startswith("(")]
    top = keyed.loc[keyed["ST"].idxmax()]
    head = headline_numbers(folder / "report.html")
    assert f"{top['key']} drives cumulative bookings most: total index ST {top['ST']:.2f}" in head
    assert "S1" in (folder / "report.html").read_text()


def test_unfinished_or_empty_folders_are_a_clear_error(folders, tmp_path, capsys):
    capsys.readouterr()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    assert "not a results folder" in capsys.readouterr().err
    cut = tmp_path / "cut"
    shutil.copytree(folders["explain"], cut)
    (cut / "contributions.csv").unlink()
    (cut / "report.html").unlink()
    assert main(["report", str(cut)]) == 2
    err = capsys.readouterr().err
    assert "no finished results yet" in err and "contributions.csv" in err
    assert "Traceback" not in err and not (cut / "report.html").exists()
    study = tmp_path / "study"
    shutil.copytree(folders["optimize"], study)
    manifest = json.loads((study / "manifest.json").read_text())
    (study / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    (study / "report.html").unlink()
    assert main(["report", str(study)]) == 2
    err = capsys.readouterr().err
    assert "this optimize has no finished results yet" in err and "--resume" in err
    assert not (study / "report.html").exists()


def test_calibrate_and_forecast_write_their_page_with_report(tmp_path, capsys):
    from tests.test_calibration import TRUTH, make_company

    tiny = ["market.prospects=1500", "months=3"]
    history = make_company(tmp_path, tiny, TRUTH, 3, ["new_leads", "new_opportunities"])
    sets = [w for kv in tiny for w in ("--set", kv)]
    capsys.readouterr()
    assert main(["calibrate", "baseline", *sets, "--history", str(history), "--fit",
                 "market.qualify_rate=0.1:0.9", "--population", "4", "--generations", "1",
                 "--ppc-draws", "4", "--workers", "1", "--seed", "2", "--out",
                 str(tmp_path / "cal"), "--report", "--json"]) == 0
    assert str(tmp_path / "cal" / "report.html") in json.loads(capsys.readouterr().out)["files"]
    assert main(["forecast", str(tmp_path / "cal"), "--months", "2", "--draws", "2", "--reps",
                 "1", "--workers", "1", "--report", "-q"]) == 0
    assert (tmp_path / "cal" / "forecast" / "report.html").is_file()
    assert "Contraction" in (tmp_path / "cal" / "report.html").read_text()


def test_the_boxes_where_a_decision_flips_are_listed_with_their_numbers(folders, tmp_path):
    folder = tmp_path / "flips"
    shutil.copytree(folders["sensitivity"], folder)
    pd.DataFrame([{"box": "sales.reps ≤ 4", "sales.reps_low": 2.0, "sales.reps_high": 4.5,
                   "alignment.sla_days_low": 0.0, "alignment.sla_days_high": 5.0,
                   "points": 3, "flips": 2, "coverage": 1.0, "density": 2 / 3}]).to_csv(
        folder / "boxes.csv", index=False)
    page = build_report(folder)
    text = page.read_text(encoding="utf-8")
    assert ("<td>sales reps (sales.reps) ≤ 4</td><td>2 of 3</td><td>67%</td><td>100%</td>"
            in text)


def test_optimize_pages_of_no_feasible_plan_and_of_a_bookings_target(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN, encoding="utf-8")
    common = [str(plan), "--vary", "sales.reps=2:8:int", "--trials", "2", "--reps", "2",
              "--top", "1", "--workers", "1", "--report", "-q"]
    assert main(["optimize", *common, "--constraint", "customers>=1e9",
                 "--out", str(tmp_path / "none")]) == 0
    assert headline_numbers(tmp_path / "none" / "report.html").startswith(
        "No trial met the constraints")
    assert main(["optimize", *common, "--objective", "p_target", "--target", "20000",
                 "--out", str(tmp_path / "p")]) == 0
    runs = pd.read_parquet(tmp_path / "p" / "reevaluation" / "runs.parquet")
    last = runs[runs["month"] == runs["month"].max()]
    start = last[last["scenario"] == "two_programs"]
    share = (start["cumulative_bookings"] >= 20000).mean()
    head = headline_numbers(tmp_path / "p" / "report.html")
    assert "bookings target of $20k" in head
    assert "the starting plan" in head and f"{share:.0%} of 2 fresh replications" in head
