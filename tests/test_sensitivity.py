"""sensitivity: SALib's Morris and Sobol indices over key ranges, noise kept apart.

Closed-form toys check the SALib plumbing (Ishigami's Sobol indices, a linear model's
elementary effects) and the variance split; one small real Morris checks that a key
without any effect gets mu_star 0 and ranks last; bad input is refused all at once.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from gtmsim.analysis.sensitivity import (
    NOISE,
    Range,
    analyse,
    draw,
    noise_share,
    noise_share_of_mean,
    parse_ranges,
    sensitivity,
    variance_components,
)
from gtmsim.cli import main
from gtmsim.scenario import ScenarioError

PI = np.pi


def test_sobol_indices_of_the_ishigami_function_match_the_closed_form():
    # Ishigami (a=7, b=0.1) on [-π, π]³: S1 = (0.3139, 0.4424, 0), ST = (0.5576, 0.4424, 0.2437).
    ranges = [Range(f"x{i}", -PI, PI) for i in (1, 2, 3)]
    x = draw(ranges, "sobol", 1024, seed=7)
    y = np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])
    table = analyse(ranges, "sobol", x, y, seed=7).set_index("key")
    s1, st = np.array([0.3139, 0.4424, 0.0]), np.array([0.5576, 0.4424, 0.2437])
    for i, key in enumerate(("x1", "x2", "x3")):
        r = table.loc[key]
        assert abs(r["S1"] - s1[i]) <= max(r["S1_conf"], 0.02) + 0.02, (key, r["S1"])
        assert abs(r["ST"] - st[i]) <= max(r["ST_conf"], 0.02) + 0.02, (key, r["ST"])
    assert list(table.index) == ["x1", "x2", "x3"]  # by total index


def test_morris_elementary_effects_of_a_linear_model_are_its_slopes_times_the_range():
    ranges = [Range("a", 0, 10), Range("b", 5, 6), Range("none", 0, 1)]
    x = draw(ranges, "morris", 20, seed=1)
    y = 3 * x[:, 0] - 40 * x[:, 1]
    table = analyse(ranges, "morris", x, y, seed=1).set_index("key")
    assert_allclose(table.loc["a", "mu_star"], 3 * 10, rtol=1e-9)
    assert_allclose(table.loc["b", "mu_star"], 40 * 1, rtol=1e-9)
    assert table.loc["none", "mu_star"] == 0 and table.index[-1] == "none"
    assert_allclose(table["sigma"], 0, atol=1e-9)


def test_noise_split_on_common_random_numbers():
    rng = np.random.default_rng(0)
    points, reps = 400, 64
    a = rng.normal(0, 3, size=(points, 1))   # the keys' effects, variance 9
    b = rng.normal(0, 2, size=(1, reps))      # a seed's shift of every point, variance 4
    e = rng.normal(0, 1, size=(points, reps))  # point-to-point noise, variance 1
    comps = variance_components(a + b + e)
    assert_allclose(comps, (9, 4, 1), rtol=0.5)
    assert_allclose(noise_share(a + b + e), (4 + 1) / 14, atol=0.15)
    assert_allclose(noise_share_of_mean(a + b + e), (1 / 64) / (9 + 1 / 64), atol=0.002)
    assert noise_share(np.ones((5, 1))) != noise_share(np.ones((5, 1)))  # NaN with one rep


def test_parse_ranges_reports_every_problem():
    assert parse_ranges(["sales.reps=2:8", "alignment.sla_days = 0.5 : 3"]) == {
        "sales.reps": (2.0, 8.0), "alignment.sla_days": (0.5, 3.0)}
    with pytest.raises(ScenarioError) as info:
        parse_ranges(["sales.reps=8:2", "x", "a=b:2", "c=1:2:3", "sales.reps=1:2"])
    text = "\n".join(info.value.problems)
    assert "LOW must be below HIGH, got 8 ≥ 2" in text
    assert "--vary x: expected KEY=LOW:HIGH" in text
    assert "'b' is not a number" in text and "--vary c=1:2:3" in text
    assert len(info.value.problems) == 4  # sales.reps twice is not reached: the first was bad


DUD = ("marketing.programs.dud={channel = \"other\", monthly_budget = 2000.0, "
       "cost_per_reach = 10.0, awareness = 0.0, trust = 0.0, hand_raise = 0.0, "
       "lead_capture = 0.0}")


def test_morris_a_key_without_effect_gets_zero_and_ranks_last(tmp_path):
    out = tmp_path / "m"
    result = sensitivity("baseline", ["sales.reps=2:8", "marketing.programs.dud.saturation=1:50"],
                         samples=3, reps=2, months=4, workers=1, out=out,
                         overrides=["market.prospects=2000", DUD])
    table = result.indices
    keys = table[table["key"] != NOISE]
    assert list(keys["key"]) == ["sales.reps", "marketing.programs.dud.saturation"]
    dud = keys.iloc[-1]
    assert dud["mu_star"] == 0 and dud["mu_star"] - dud["mu_star_conf"] <= 0
    assert keys.iloc[0]["mu_star"] > 0
    assert table.iloc[-1]["key"] == NOISE and np.isfinite(table.iloc[-1]["mu_star"])
    assert 0 <= result.noise_share <= 1
    written = pd.read_csv(out / "indices.csv")
    assert list(written.columns[:4]) == ["key", "mu_star", "mu_star_conf", "sigma"]
    pts = pd.read_parquet(out / "points.parquet")
    assert len(pts) == 3 * 3 * 2 and set(pts["sales.reps"]) <= set(range(2, 9))
    assert pts["sales.reps"].dtype.kind == "i"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "sensitivity" and manifest["sensitivity"]["method"] == "morris"
    assert (out / "charts" / "morris_cumulative_bookings.png").is_file()


def test_cli_sobol_json(tmp_path, capsys):
    assert main(["sensitivity", "baseline", "--vary", "sales.reps=2:8", "--vary",
                 "alignment.sla_days=0:5", "--method", "sobol", "--samples", "2", "--reps", "2",
                 "--months", "3", "--set", "market.prospects=2000", "--workers", "1",
                 "--out", str(tmp_path / "s"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["points"] == 2 * (2 + 2) and printed["runs"] == 16
    assert [r["key"] for r in printed["indices"]][-1] == NOISE
    written = pd.read_csv(tmp_path / "s" / "indices.csv")
    assert list(written.columns) == ["key", "S1", "S1_conf", "ST", "ST_conf"]


def test_cli_bad_input_every_problem_at_once_and_nothing_written(tmp_path, capsys):
    out = tmp_path / "bad"
    code = main(["sensitivity", "baseline", "--vary", "sales.rep=2:8", "--vary",
                 "alignment.routing=0:1", "--vary", "sales.reps=8:2", "--vary",
                 "alignment.feedback=0:3", "--outcome", "bookngs", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    for part in ("did you mean 'reps'", "alignment.routing: not a numeric key",
                 "LOW must be below HIGH", "alignment.feedback: must be ≤ 1",
                 "--outcome bookngs: unknown outcome; did you mean"):
        assert part in err, part
    assert main(["sensitivity", "nosuch", "--vary", "sales.reps=8:2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nosuch: no such scenario" in err and "LOW must be below HIGH" in err
    assert not out.exists()


def test_help_does_not_load_salib_matplotlib_or_the_model():
    import subprocess
    import sys

    code = ("import sys; from gtmsim.cli import main; main(['--help']); "
            "print(sorted(m for m in ('SALib', 'matplotlib', 'gtmsim.model', "
            "'gtmsim.analysis.explain', 'gtmsim.analysis.sensitivity') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "explain" in done.stdout and "sensitivity" in done.stdout


def test_discovery_names_the_box_where_the_decision_flips():
    from gtmsim.analysis.sensitivity import discover

    rng = np.random.default_rng(2)
    values = pd.DataFrame({"sales.reps": rng.integers(2, 11, 200),
                           "alignment.sla_days": rng.uniform(0, 7, 200)})
    wins = ~((values["sales.reps"] <= 4) & (values["alignment.sla_days"] > 3)).to_numpy()
    boxes = discover(values, wins, [Range("sales.reps", 2, 10, True),
                                    Range("alignment.sla_days", 0, 7)])
    top = boxes.iloc[0]
    assert top["box"].startswith("sales.reps ≤ 4 and alignment.sla_days > 2.9"), top["box"]
    assert top["density"] == 1 and top["coverage"] == 1
    assert 4 <= top["sales.reps_high"] < 5 and 2.9 < top["alignment.sla_days_low"] < 3.1
    assert discover(values, np.ones(200, bool), [Range("sales.reps", 2, 10, True),
                                                 Range("alignment.sla_days", 0, 7)]).empty


def test_decision_probability_and_bad_decision_scenarios(tmp_path, capsys):
    result = sensitivity("baseline", ["sales.reps=2:8", "alignment.sla_days=0:5"], samples=2,
                         reps=2, months=3, workers=1, out=tmp_path / "d",
                         overrides=["market.prospects=2000"], decision=["siloed", "aligned"])
    d = result.decision
    assert d["a"] == "siloed" and d["b"] == "aligned" and d["points"] == 6
    assert d["p_low"] <= d["p_b_better"] <= d["p_high"]
    assert len(result.experiment.arms) == 12 and set(result.points["arm"]) == {"siloed", "aligned"}
    assert (tmp_path / "d" / "boxes.csv").is_file()
    out = tmp_path / "bad"
    assert main(["sensitivity", "baseline", "--vary", "sales.reps=8:2", "--decision",
                 "siloed,alinged", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'aligned'" in err and "LOW must be below HIGH" in err
    assert not out.exists()
