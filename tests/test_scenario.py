"""Scenario files: shipped scenarios, validation messages, extends, overrides, timeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from gtmsim.scenario import (
    PRESETS,
    ScenarioError,
    load_scenario,
    parse_override,
    question_of,
    shipped_scenarios,
)

DATA = Path(__file__).parent / "data"
SHIPPED = shipped_scenarios()


def problems(path_or_name, overrides=None) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path_or_name, overrides)
    return info.value.problems


def test_the_shipped_set_is_complete():
    expected = {"baseline", "siloed", "defined", "aligned", "integrated", "more_marketing",
                "more_reps", "sla_only", "founder_led"}
    assert expected <= set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_scenario_loads_and_asks_a_question(name):
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.question.endswith("?")
    assert SHIPPED[name].read_text().startswith("#")  # opens with a comment stating the question
    assert question_of(SHIPPED[name]) == scenario.question


def test_presets_share_market_and_team_and_differ_only_in_alignment():
    dumps = {p: load_scenario(p).to_dict() for p in ("siloed", "defined", "aligned", "integrated")}
    for p, d in dumps.items():
        assert d["alignment"]["preset"] == p
        for key in ("market", "marketing", "sales", "months", "seed"):
            assert d[key] == dumps["siloed"][key], (p, key)
    levers = {p: load_scenario(p).levers for p in dumps}
    assert levers["siloed"] == PRESETS["siloed"]
    assert len({levers[p] for p in levers}) == 4


@pytest.mark.parametrize(
    "file, expected",
    [
        ("unknown_key.toml", "market.segmets: unknown key; did you mean 'segments'?"),
        ("negative_reps.toml", "sales.reps: must be ≥ 0, got -3"),
        ("shares_sum.toml", "market.segments: shares must sum to 1, got 1.3"),
        ("probability_range.toml", "market.segments.enterprise.base_win_rate: must be ≤ 1"),
        ("wrong_type.toml", "sales.reps: must be an integer, got 'four' (a string)"),
        ("bad_preset.toml", "alignment.preset: must be one of"),
        ("unknown_segment.toml", "marketing.programs.events.segments: unknown segment 'enterprize'"),
        ("timeline_market_key.toml", "timeline[0].set.market.prospects: only marketing.*"),
        ("timeline_bad_value.toml", "timeline[0].set.sales.reps: must be ≥ 0, got -1"),
        ("syntax_error.toml", "not valid TOML: Invalid value (at line 3"),
        ("missing_market.toml", "market: required key is missing"),
        ("extends_missing.toml", "extends: no such file 'no_such_parent.toml'"),
    ],
)
def test_each_bad_file_gets_one_message_naming_file_and_key(file, expected):
    found = problems(DATA / file)
    assert len(found) == 1, found
    assert found[0].startswith(str((DATA / file).resolve()) + ": ") or found[0].startswith(
        str(DATA / file) + ": "
    ), found[0]
    assert expected in found[0]


def test_every_mistake_in_a_file_is_reported_at_once():
    found = problems(DATA / "three_mistakes.toml")
    assert [f.split(": ")[1] for f in found] == ["months", "sales.reps", "alignment.feedback"]


def test_extends_cycle_is_an_error_not_a_hang():
    (msg,) = problems(DATA / "cycle_a.toml")
    assert "extends: cycle" in msg and "cycle_a.toml" in msg and "cycle_b.toml" in msg


def test_missing_file_and_unknown_name_are_clear():
    (msg,) = problems("no/such/file.toml")
    assert "no such scenario file or shipped scenario" in msg
    (msg,) = problems("alinged")
    assert "did you mean 'aligned'?" in msg


def test_extends_deep_merges_and_child_wins(tmp_path):
    (tmp_path / "parent.toml").write_text(
        'extends = "baseline"\nname = "parent"\n[sales]\nreps = 7\ncost_per_rep_month = 1000\n'
    )
    (tmp_path / "child.toml").write_text('extends = "parent.toml"\n[sales]\nreps = 9\n')
    child = load_scenario(tmp_path / "child.toml")
    base = load_scenario("baseline")
    assert child.sales.reps == 9  # child wins
    assert child.sales.cost_per_rep_month == 1000  # parent kept
    assert child.market == base.market  # grandparent kept
    assert child.name == "parent"  # name is inherited unless the child sets it


def test_errors_name_the_file_that_set_the_key(tmp_path):
    (tmp_path / "parent.toml").write_text('extends = "baseline"\n[sales]\nreps = -5\n')
    (tmp_path / "child.toml").write_text('extends = "parent.toml"\n[sales]\noutbound_share = 2\n')
    found = problems(tmp_path / "child.toml")
    assert any(f.startswith(str((tmp_path / "parent.toml").resolve())) and "sales.reps" in f
               for f in found), found
    assert any(f.startswith(str((tmp_path / "child.toml").resolve())) and "outbound_share" in f
               for f in found), found


def test_overrides_are_typed_by_the_schema():
    s = load_scenario("baseline", ["sales.reps=6", "alignment.preset=aligned",
                                   "marketing.programs.paid_ads.monthly_budget=0"])
    assert s.sales.reps == 6 and isinstance(s.sales.reps, int)
    assert s.alignment.preset == "aligned"
    assert s.marketing.programs["paid_ads"].monthly_budget == 0.0
    assert load_scenario("baseline", {"sales.reps": 2}).sales.reps == 2


def test_bad_overrides_name_the_override():
    found = problems("baseline", ["sales.rep=6", "sales.reps=lots"])
    assert "--set sales.rep: sales.rep: unknown key; did you mean 'reps'?" in found
    assert "--set sales.reps: sales.reps: must be an integer, got 'lots' (a string)" in found


def test_parse_override_reads_toml_values():
    assert parse_override("a.b=3") == ("a.b", 3)
    assert parse_override("a.b=0.5") == ("a.b", 0.5)
    assert parse_override("a.b=true") == ("a.b", True)
    assert parse_override('a.b=["smb"]') == ("a.b", ["smb"])
    assert parse_override("a.b=aligned") == ("a.b", "aligned")
    with pytest.raises(ScenarioError):
        parse_override("no-equals-sign")


def test_explicit_levers_override_the_preset():
    s = load_scenario("siloed", {"alignment.sla_days": 1, "alignment.routing": "newest_first"})
    assert s.levers.sla_days == 1 and s.levers.routing == "newest_first"
    assert s.levers.handoff_days == PRESETS["siloed"].handoff_days


def test_timeline_past_the_horizon_is_allowed_and_never_happens():
    from gtmsim import simulate

    s = load_scenario("hire_and_cut", {"months": 3, "market.prospects": 2000})
    assert simulate(s).monthly["reps"].tolist() == [4, 4, 4]
