"""explain: Shapley contributions of the keys in which two scenarios differ.

The Shapley math is checked on toy value functions with known answers; one small real
explain checks the plumbing (contributions sum to the gap, the gap is compare's paired
difference, a key with no effect gets exactly nothing, files, resume, CLI, bad input).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from gtmsim import experiment
from gtmsim.analysis.explain import (
    OTHER,
    differences,
    explain,
    make_factors,
    permutation_masks,
    sample_permutations,
    shapley,
    shapley_permutations,
)
from gtmsim.cli import main
from gtmsim.scenario import ScenarioError, with_changes
from tests.conftest import small


def _values(k: int, v) -> np.ndarray:
    """v(members) for every bitmask of k factors."""
    return np.array([v({i for i in range(k) if m >> i & 1}) for m in range(1 << k)], float)


# --------------------------------------------------------------------------- toy models


def test_additive_toy_gives_each_factor_its_own_effect_and_sums_to_the_gap():
    effects = [3.0, -1.5, 0.0, 10.0, 0.25]
    values = _values(5, lambda s: 100 + sum(effects[i] for i in s))
    phi = shapley(values)
    assert_allclose(phi, effects, atol=1e-12)
    assert_allclose(phi.sum(), values[-1] - values[0], atol=1e-12)


def test_an_interaction_of_two_levers_is_split_evenly():
    # v = 2·[0] + 5·[1] + 6·[0 and 1]: the joint 6 goes half to each; factor 2 does nothing.
    values = _values(3, lambda s: 2 * (0 in s) + 5 * (1 in s) + 6 * (0 in s and 1 in s))
    assert_allclose(shapley(values), [2 + 3, 5 + 3, 0], atol=1e-12)


def test_shapley_carries_replications_and_each_replication_sums_to_its_gap():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(1 << 4, 7))  # any set function, 7 replications
    phi = shapley(values)
    assert phi.shape == (4, 7)
    assert_allclose(phi.sum(axis=0), values[-1] - values[0], atol=1e-12)
    # symmetric game v(S) = |S|²: every factor gets k²/k = k
    assert_allclose(shapley(_values(4, lambda s: len(s) ** 2)), [4, 4, 4, 4], atol=1e-12)


def test_sampled_orders_sum_to_the_gap_and_recover_the_exact_values():
    k = 6
    coef = np.arange(1, k + 1, dtype=float)
    v = lambda s: sum(coef[i] for i in s) + 4 * (0 in s and 5 in s) * (2 in s)
    values = _values(k, v)
    orders = sample_permutations(k, 400, seed=3)
    assert orders[1] == orders[0][::-1]
    masks = permutation_masks(orders)
    assert masks[0] == 0 and (1 << k) - 1 in masks and len(set(masks)) == len(masks)
    marg = shapley_permutations(lambda m: values[m], orders, k)
    assert_allclose(marg.sum(axis=1), values[-1] - values[0], atol=1e-12)
    assert_allclose(marg.mean(axis=0), shapley(values), atol=0.25)


def test_shapley_refuses_a_table_that_is_not_every_subset():
    with pytest.raises(ValueError, match="2\\^k"):
        shapley(np.zeros(6))


# --------------------------------------------------------------------------- factors


def test_presets_expand_into_their_levers_and_names_are_not_factors():
    diffs, problems = differences(small("siloed"), small("aligned"))
    assert not problems
    assert set(diffs) == {f"alignment.{k}" for k in (
        "lead_threshold", "handoff_days", "sla_days", "routing", "feedback", "enablement",
        "message_consistency", "recycling", "coordination", "marketing_reward")}
    assert diffs["alignment.sla_days"] == (0, 3)


def test_a_table_in_b_only_is_one_factor_and_in_a_only_is_refused():
    a = small()
    b = with_changes(a, {"marketing.programs.pr": {"channel": "pr", "monthly_budget": 1000.0,
                                                   "cost_per_reach": 5.0}})
    diffs, problems = differences(a, b)
    assert list(diffs) == ["marketing.programs.pr"] and not problems
    _, problems = differences(b, a)
    assert any("marketing.programs.pr: in baseline only" in p for p in problems)


def test_factors_group_keys_and_the_rest_form_one_more_factor():
    diffs, _ = differences(small("siloed"), small("aligned"))
    found = make_factors(diffs, ["alignment.sla_days", "alignment.routing"])
    assert [f.name for f in found] == ["alignment.sla_days", "alignment.routing", OTHER]
    assert len(found[-1].keys) == 8
    assert [f.name for f in make_factors(diffs, ["alignment"])] == ["alignment"]
    with pytest.raises(ScenarioError) as info:
        make_factors(diffs, ["alignment.sla_dys", "alignment", "alignment.routing", "sales"])
    text = "\n".join(info.value.problems)
    assert "did you mean 'alignment.sla_days'" in text
    assert "--factors alignment.routing: overlaps alignment" in text
    assert "--factors sales: not a key" in text


# --------------------------------------------------------------------------- a real gap


@pytest.fixture(scope="module")
def dud_pair():
    """baseline and sla_only (sla_days, routing) plus a program without any effect whose
    saturation differs: three factors, one of which cannot matter."""
    dud = {"marketing.programs.dud": {"channel": "other", "monthly_budget": 2000.0,
                                      "cost_per_reach": 10.0, "awareness": 0.0, "trust": 0.0,
                                      "hand_raise": 0.0, "lead_capture": 0.0}}
    a = with_changes(small(market__prospects=2000, months=4), dud)
    b = with_changes(small("sla_only", market__prospects=2000, months=4),
                     {**dud, "marketing.programs.dud.saturation": 40.0})
    return a, b


def test_real_explain_sums_to_the_gap_and_a_key_without_effect_gets_nothing(dud_pair, tmp_path):
    a, b = dud_pair
    out = tmp_path / "ex"
    result = explain(a, b, reps=2, workers=1, out=out)
    assert result.method == "exact" and len(result.experiment.arms) == 8
    c, g = result.contributions, result.gaps
    for o in experiment.OUTCOMES:
        gap = g.loc[g["outcome"] == o.name].iloc[0]
        if gap["n"] == 0:
            continue
        assert_allclose(c.loc[c["outcome"] == o.name, "contribution"].sum(), gap["gap"],
                        rtol=1e-9, atol=1e-9)
    dud = c[(c["factor"] == "marketing.programs.dud.saturation") & (c["n"] > 0)]
    assert len(dud) >= 9
    assert (dud["contribution"] == 0).all() and (dud["ci_low"] <= 0).all()
    # The gap is compare's paired difference on the same seeds.
    cmp = experiment.compare([a, b], reps=2, workers=1).summary()
    want = cmp[(cmp["scenario"] == b.name) & (cmp["outcome"] == "cumulative_bookings")]
    got = g[g["outcome"] == "cumulative_bookings"].iloc[0]
    assert_allclose(got["gap"], want["diff"].iloc[0], rtol=1e-9)
    # Files and manifest.
    table = pd.read_csv(out / "contributions.csv")
    assert list(table.columns[:5]) == ["outcome", "factor", "contribution", "ci_low", "ci_high"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "explain" and manifest["complete"]
    assert len(manifest["explain"]["factors"]) == 3
    assert (out / "charts" / "waterfall_cumulative_bookings.png").stat().st_size > 1000
    again = explain(a, b, reps=2, workers=1, out=out, resume=True)
    assert again.experiment.resumed == 16
    pd.testing.assert_frame_equal(again.contributions, c)


def test_sampled_explain_also_sums_to_the_gap(dud_pair):
    a, b = dud_pair
    result = explain(a, b, reps=2, workers=1, permutations=4)
    assert result.method == "permutations"
    c, g = result.contributions, result.gaps
    gap = g.loc[g["outcome"] == "cumulative_bookings", "gap"].iloc[0]
    mine = c.loc[c["outcome"] == "cumulative_bookings", "contribution"].sum()
    assert math.isclose(mine, gap, rel_tol=1e-9, abs_tol=1e-6)


def test_cli_explain_and_compare_explain(tmp_path, capsys):
    args = ["--reps", "2", "--months", "3", "--set", "market.prospects=2000", "--workers", "1"]
    assert main(["explain", "baseline", "sla_only", *args, "--out", str(tmp_path / "e"),
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "explain" and len(printed["factors"]) == 2
    assert (tmp_path / "e" / "contributions.csv").is_file()
    assert main(["compare", "baseline", "sla_only", "--explain", *args,
                 "--out", str(tmp_path / "c")]) == 0
    text = capsys.readouterr().out
    assert "Shapley" in text and "alignment.sla_days" in text
    assert (tmp_path / "c" / "explain" / "contributions.csv").is_file()
    assert main(["compare", "baseline", "sla_only", "aligned", "--explain",
                 "--out", str(tmp_path / "three")]) == 2


def test_cli_bad_input_every_problem_at_once_and_nothing_written(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["explain", "baseline", "alinged", "--out", str(out)]) == 2
    assert "did you mean 'aligned'" in capsys.readouterr().err
    assert main(["explain", "baseline", "aligned", "--factors", "alignment.sla_dys,sales.reps",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'alignment.sla_days'" in err and "--factors sales.reps" in err
    assert main(["explain", "baseline", "baseline", "--out", str(out)]) == 2
    assert "do not differ" in capsys.readouterr().err
    assert not out.exists()
