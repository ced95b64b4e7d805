"""Scenario files: shipped scenarios, validation messages, extends, overrides, timeline."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from gtmsim.scenario import (
    PRESETS,
    ScenarioError,
    load_scenario,
    parse_override,
    question_of,
    scenario_from_dict,
    shipped_scenarios,
    with_changes,
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
        # strict types: a boolean or a string is not a number
        ("bool_reps.toml", "sales.reps: must be an integer, got true (a boolean)"),
        ("string_reps.toml", "sales.reps: must be an integer, got '7' (a string)"),
        # every number finite and in a meaningful range
        ("inf_budget.toml",
         "marketing.programs.paid_ads.monthly_budget: must be a finite number, got inf"),
        ("nan_deal_value.toml", "market.segments.smb.deal_value: must be a finite number, got nan"),
        ("inf_deal_value_spread.toml",
         "market.segments.smb.deal_value_spread: must be a finite number, got inf"),
        ("huge_deal_value_spread.toml", "market.segments.smb.deal_value_spread: must be ≤ 3"),
        ("inf_fit_concentration.toml",
         "market.segments.enterprise.fit_concentration: must be a finite number, got inf"),
        ("huge_touches_per_day.toml", "sales.touches_per_day: must be ≤ 1000.0, got 1e+308"),
        ("inf_dormant_days.toml", "market.dormant_days: must be a finite number, got inf"),
        ("tiny_buying_window.toml", "market.buying_window_days: must be ≥ 1.0, got 1e-300"),
        ("big_seed.toml", "seed: must be < 9223372036854775808, got 18446744073709551616"),
        # timeline
        ("timeline_after_horizon.toml",
         "timeline[0].month: 30 is after the last month (24); it would never apply"),
        ("timeline_unknown_segment.toml",
         "timeline[0].set.sales.segments: unknown segment 'enterprize'"),
        ("timeline_nested_bad_value.toml",
         "timeline[0].set.marketing.programs.paid_ads.monthly_budget: must be ≥ 0.0, got -5"),
        ("timeline_empty_table.toml", "timeline[0].set.sales: an empty table sets nothing"),
        # files and names
        ("not_utf8.toml", "not a UTF-8 text file (byte 0xe9 at offset 32)"),
        ("binary.toml", "not a UTF-8 text file (byte 0x89 at offset 0)"),
        ("name_traversal.toml", "name: may hold only letters, digits, spaces and _ - . + , = & ( )"),
        ("name_absolute.toml", "name: may hold only letters"),
        ("name_control.toml", "name: may hold only letters"),
        ("name_too_long.toml", "name: must be at most 100 characters, got 150"),
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


def test_a_horizon_shortened_by_an_override_warns_instead_of_failing():
    from gtmsim import simulate

    s = load_scenario("hire_and_cut", {"months": 3, "market.prospects": 2000})
    assert s.horizon_warnings() == [
        "timeline[0].month: 6 is after the last month (3); it will not apply",
        "timeline[1].month: 12 is after the last month (3); it will not apply",
    ]
    assert load_scenario("hire_and_cut").horizon_warnings(8) == [
        "timeline[1].month: 12 is after the last month (8); it will not apply"]
    assert simulate(s).monthly["reps"].tolist() == [4, 4, 4]


# --------------------------------------------------------------------------- timeline keys


def _timeline_file(tmp_path, name: str, set_text: str, month: int = 2) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'extends = "baseline"\n[[timeline]]\nmonth = {month}\nset = {set_text}\n')
    return path


def _in_force(path, month: int = 2):
    """The scenario in force from `month` on, as the model applies the timeline."""
    s = load_scenario(path)
    for change in s.timeline:
        if change.month <= month:
            s = with_changes(s, change.set)
    return s


@pytest.mark.parametrize("quoted, nested", [
    ('{ "sales.reps" = 8 }', "{ sales.reps = 8 }"),
    ('{ "alignment.sla_days" = 1 }', "{ alignment.sla_days = 1 }"),
    ('{ "marketing.programs.paid_ads.monthly_budget" = 0 }',
     "{ marketing.programs.paid_ads.monthly_budget = 0 }"),
    ('{ "sales.reps" = 8, "sales.ramp_months" = 1 }', "{ sales = { reps = 8, ramp_months = 1 } }"),
])
def test_nested_timeline_keys_mean_the_same_as_quoted_ones(tmp_path, quoted, nested):
    a = _in_force(_timeline_file(tmp_path, "quoted", quoted))
    b = _in_force(_timeline_file(tmp_path, "nested", nested))
    assert a.model_dump(exclude={"name", "timeline"}) == b.model_dump(exclude={"name", "timeline"})


def test_a_timeline_change_sets_only_the_keys_it_names(tmp_path):
    base = load_scenario("aligned")
    path = tmp_path / "t.toml"
    path.write_text('extends = "aligned"\n[sales]\nramp_months = 2\ncost_per_rep_month = 9000\n'
                    "[[timeline]]\nmonth = 2\nset = { sales.reps = 8, alignment.sla_days = 1 }\n")
    after = _in_force(path)
    assert after.sales.reps == 8
    assert after.sales.ramp_months == 2 and after.sales.cost_per_rep_month == 9000  # kept
    assert after.alignment.preset == "aligned"  # not reset to the siloed default
    assert after.levers.sla_days == 1
    assert after.levers.routing == base.levers.routing
    assert after.market == base.market and after.marketing == base.marketing


def test_nested_program_keys_are_not_a_missing_required_key(tmp_path):
    path = _timeline_file(tmp_path, "p", "{ marketing.programs.paid_ads.monthly_budget = 0 }")
    after = _in_force(path)
    assert after.marketing.programs["paid_ads"].monthly_budget == 0
    assert after.marketing.programs["paid_ads"].cost_per_reach == (
        load_scenario("baseline").marketing.programs["paid_ads"].cost_per_reach)


def test_a_run_applies_nested_timeline_keys(tmp_path):
    from gtmsim import simulate

    path = tmp_path / "t.toml"
    path.write_text('extends = "baseline"\nmonths = 3\n[market]\nprospects = 2000\n'
                    "[[timeline]]\nmonth = 2\nset = { sales.reps = 6 }\n")
    monthly = simulate(load_scenario(path)).monthly
    assert monthly["reps"].tolist() == [4, 6, 6]


def test_set_with_a_table_merges_into_the_section():
    base = load_scenario("baseline")
    s = load_scenario("baseline", ["sales={reps=2}"])
    assert s.sales.reps == 2
    assert s.sales.model_dump(exclude={"reps"}) == base.sales.model_dump(exclude={"reps"})
    s = load_scenario("baseline", {"alignment": {"sla_days": 1}, "sales": {"reps": 3}})
    assert s.alignment.preset == base.alignment.preset and s.levers.sla_days == 1
    assert s.sales.reps == 3 and s.sales.ramp_months == base.sales.ramp_months
    s = with_changes(base, {"sales": {"reps": 5}})
    assert s.sales.reps == 5 and s.sales.ramp_months == base.sales.ramp_months


def test_a_timeline_state_gets_the_same_checks_as_the_base(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('extends = "baseline"\n[[timeline]]\nmonth = 2\n'
                    'set = { marketing.programs.webinars = { channel = "events", '
                    'monthly_budget = 1000, cost_per_reach = 5, segments = ["smb", "enterprize"] } }\n')
    (msg,) = problems(path)
    assert ("timeline[0].set.marketing.programs.webinars.segments: unknown segment 'enterprize'"
            in msg)
    path.write_text('extends = "baseline"\n[[timeline]]\nmonth = 2\n'
                    'set = { marketing.programs.webinars = { channel = "events" } }\n')
    found = problems(path)
    assert sorted(f.split(": ")[1] for f in found) == [
        "timeline[0].set.marketing.programs.webinars.cost_per_reach",
        "timeline[0].set.marketing.programs.webinars.monthly_budget",
    ]


def test_every_kind_of_error_is_reported_in_one_pass(tmp_path):
    path = tmp_path / "all.toml"
    path.write_text('extends = "baseline"\n[sales]\nreps = -1\nsegments = ["enterprize"]\n'
                    "[market.segments.smb]\nshare = 0.9\n"
                    "[[timeline]]\nmonth = 3\nset = { sales.reps = true }\n")
    keys = {f.split(": ")[1] for f in problems(path)}
    assert keys == {"sales.reps", "market.segments", "sales.segments", "timeline[0].set.sales.reps"}


# --------------------------------------------------------------------------- overrides


def test_overrides_are_strict_about_types():
    found = problems("baseline", ["sales.reps=true", "sales.touches_per_day=inf"])
    assert (problems("baseline", ['sales.reps="7"'])
            == ["--set sales.reps: sales.reps: must be an integer, got '7' (a string)"])
    assert "--set sales.reps: sales.reps: must be an integer, got true (a boolean)" in found
    assert "--set sales.touches_per_day: sales.touches_per_day: must be a finite number, got inf" \
        in found
    assert load_scenario("baseline", ["sales.touches_per_day=6"]).sales.touches_per_day == 6.0


def test_an_override_that_is_not_a_toml_value_is_refused():
    (msg,) = problems("baseline", ['name="abc'])
    assert msg.startswith("--set name: '\"abc' is not a valid TOML value")
    with pytest.raises(ScenarioError, match="not a valid TOML value"):
        parse_override("sales.segments=[smb")
    assert parse_override("alignment.routing=newest_first") == ("alignment.routing", "newest_first")


def test_empty_table_override_is_refused():
    (msg,) = problems("baseline", ["sales={}"])
    assert "sales: an empty table sets nothing" in msg


# --------------------------------------------------------------------------- files and the API


def test_a_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + b'extends = "baseline"\n[sales]\nreps = 3\n')
    assert load_scenario(path).sales.reps == 3


def test_a_deep_extends_chain_is_refused_clearly(tmp_path):
    (tmp_path / "f0.toml").write_text('extends = "baseline"\n')
    for i in range(1, 60):
        (tmp_path / f"f{i}.toml").write_text(f'extends = "f{i - 1}.toml"\n')
    (msg,) = problems(tmp_path / "f59.toml")
    assert "extends: a chain of more than 32 files" in msg
    assert load_scenario(tmp_path / "f20.toml").sales == load_scenario("baseline").sales


def test_deeply_nested_toml_is_bad_input(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    (msg,) = problems(path)
    assert "not valid TOML" in msg


@pytest.mark.parametrize("name", ["baseline", "my scenario", "plan-B.v2", "Überlegung_1", "_x", "+ sla_days",
                                  "v2 (draft)", "reps=6, sla=1", "a & b"])
def test_safe_names_are_accepted(name):
    assert load_scenario("baseline", {"name": name}).name == name


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b", "a\\b", "/abs", "a..b", "x ", "x.", "-x",
                                  "tab\tname", "a\x00b", "[/bold]", "a:b", "C:\\x"])
def test_unsafe_names_are_refused(name):
    (msg,) = problems("baseline", {"name": name})
    assert msg.startswith("--set name: name: may hold only letters")


def test_a_blank_name_takes_the_file_stem(tmp_path):
    path = tmp_path / "my_plan.toml"
    path.write_text('extends = "baseline"\nname = "  "\n')
    assert load_scenario(path).name == "my_plan"


def test_seed_range():
    assert load_scenario("baseline", {"seed": 2**63 - 1}).seed == 2**63 - 1
    (msg,) = problems("baseline", {"seed": 2**63})
    assert "seed: must be < 9223372036854775808" in msg


@pytest.mark.parametrize("bad", [None, 3, ["baseline"], ""])
def test_load_scenario_checks_its_arguments(bad):
    with pytest.raises(ScenarioError, match="load_scenario: expected a scenario file path"):
        load_scenario(bad)


def test_overrides_argument_is_checked():
    (msg,) = problems("baseline", "sales.reps=3")
    assert msg.startswith("overrides: expected a mapping of dotted keys or a list")
    with pytest.raises(ScenarioError, match="expected a table"):
        scenario_from_dict(None)


def test_scenario_error_survives_pickling():
    err = ScenarioError(["a.toml: sales.reps: must be ≥ 0, got -3", "a.toml: months: bad"])
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ScenarioError
    assert back.problems == err.problems and str(back) == str(err)


# --------------------------------------------------------------------------- check and run agree

NON_FINITE = ["inf_budget.toml", "nan_deal_value.toml", "inf_deal_value_spread.toml",
              "inf_fit_concentration.toml", "huge_touches_per_day.toml", "inf_dormant_days.toml",
              "tiny_buying_window.toml", "big_seed.toml", "timeline_unknown_segment.toml",
              "timeline_after_horizon.toml", "not_utf8.toml", "name_traversal.toml"]


@pytest.mark.parametrize("file", NON_FINITE)
def test_check_and_run_refuse_the_same_files_with_exit_2(file, tmp_path, capsys):
    from gtmsim.cli import main

    assert main(["check", str(DATA / file)]) == 2
    checked = capsys.readouterr().err
    out = tmp_path / "r"
    assert main(["run", str(DATA / file), "--months", "2", "--out", str(out)]) == 2
    ran = capsys.readouterr().err
    assert checked == ran and "unexpected error" not in ran
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("key, value", [
    ("monthly_budget", "inf"), ("deal_value", "1e308"), ("buying_window_days", "1e-300"),
    ("touches_per_day", "nan"),
])
def test_check_refuses_extreme_numbers(tmp_path, capsys, key, value):
    from gtmsim.cli import main

    section = {"monthly_budget": "marketing.programs.paid_ads", "deal_value": "market.segments.smb",
               "buying_window_days": "market", "touches_per_day": "sales"}[key]
    path = tmp_path / "x.toml"
    path.write_text(f'extends = "baseline"\n[{section}]\n{key} = {value}\n')
    assert main(["check", str(path)]) == 2
    assert f"{section}.{key}: must be" in capsys.readouterr().err


def test_seed_option_has_a_range(capsys):
    from gtmsim.cli import main

    assert main(["run", "baseline", "--seed", str(2**64), "--months", "1"]) == 2
    assert "--seed" in capsys.readouterr().err


def test_run_warns_when_months_cuts_the_timeline(tmp_path, capsys):
    from gtmsim.cli import main

    assert main(["run", "hire_and_cut", "--months", "2", "--set", "market.prospects=2000",
                 "-q", "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "warning: hire_and_cut: timeline[0].month: 6 is after the last month (2)" in err


def test_a_timeline_entry_with_a_bad_month_still_gets_its_keys_checked(tmp_path):
    path = _timeline_file(tmp_path, "m", '{ "sales.reps" = -2 }', month=0)
    keys = sorted(f.split(": ")[1] for f in problems(path))
    assert keys == ["timeline[0].month", "timeline[0].set.sales.reps"]
    path.write_text('extends = "baseline"\nmonths = 0\n[[timeline]]\nmonth = 3\nset = { sales.reps = 5 }\n')
    assert [f.split(": ")[1] for f in problems(path)] == ["months"]  # no horizon noise


def test_compare_refuses_a_timeline_naming_an_unknown_segment(tmp_path, capsys):
    from gtmsim.cli import main

    code = main(["compare", str(DATA / "timeline_unknown_segment.toml"), "baseline", "--reps", "1",
                 "--months", "1", "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "timeline[0].set.sales.segments: unknown segment 'enterprize'" in err
    assert not (tmp_path / "c").exists()


def _load_in_worker(path: str):
    return load_scenario(path)


def test_scenario_error_crosses_a_process_boundary_intact():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    expected = problems(DATA / "three_mistakes.toml")
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        future = pool.submit(_load_in_worker, str(DATA / "three_mistakes.toml"))
        with pytest.raises(ScenarioError) as info:
            future.result(timeout=120)
    assert info.value.problems == expected


@pytest.mark.parametrize("stem, name", [("my plan!", "my plan_"), (".hidden", "_.hidden"),
                                        ("a..b", "a_b"), ("-x", "_-x"), ("ok", "ok")])
def test_a_name_taken_from_the_file_stem_is_made_valid(tmp_path, stem, name):
    path = tmp_path / f"{stem}.toml"
    path.write_text('extends = "baseline"\nname = ""\n')
    assert load_scenario(path).name == name


def test_a_blank_name_override_takes_the_file_stem():
    assert load_scenario("aligned", ['name=""']).name == "aligned"


def test_a_folder_given_as_a_scenario_is_named_as_a_folder(tmp_path, monkeypatch, capsys):
    from gtmsim.cli import main

    (tmp_path / "dir.toml").mkdir()
    (tmp_path / "baseline").mkdir()  # a results folder of that name does not hide the shipped one
    monkeypatch.chdir(tmp_path)
    assert main(["check", "dir.toml"]) == 2
    assert "dir.toml: is a folder" in capsys.readouterr().err
    assert main(["check", "baseline"]) == 0
