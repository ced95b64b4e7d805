"""The model: determinism, conservation, tiny worlds checked by hand, every shipped scenario."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import small

from gtmsim import GTMModel, scenario_from_dict, simulate
from gtmsim.metrics import COLUMNS
from gtmsim.prospects import AWARE, CUSTOMER, LEAD, N_STAGES, OPPORTUNITY, SRC_INBOUND
from gtmsim.scenario import shipped_scenarios


def test_same_seed_gives_identical_table_and_different_seed_does_not():
    s = small()
    a = simulate(s, seed=11).monthly
    b = simulate(s, seed=11).monthly
    c = simulate(s, seed=12).monthly
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_monthly_table_has_the_documented_columns():
    table = simulate(small(), months=3).monthly
    assert list(table.columns) == list(COLUMNS)
    assert table["month"].tolist() == [1, 2, 3]
    required = ("month unaware aware leads opportunities customers new_aware new_leads "
                "new_opportunities wins losses leads_decayed leads_dropped bookings "
                "cumulative_bookings lead_response_days_median win_rate rep_utilization "
                "marketing_spend sales_cost cac").split()
    assert set(required) <= set(table.columns)


@pytest.mark.parametrize("name", sorted(shipped_scenarios()))
def test_every_shipped_scenario_runs(name):
    table = simulate(small(name, months=2)).monthly
    assert len(table) == 2
    assert (table["cumulative_bookings"].diff().dropna() >= 0).all()


def test_every_prospect_is_in_exactly_one_stage_and_flows_add_up():
    model = GTMModel(small("siloed", months=8), seed=3)
    p = model.prospects
    start = p.counts.copy()
    for _ in range(8 * 30):
        model.step()
        if model.day % 7 == 0:  # the incremental counts match a full recount
            assert np.array_equal(np.bincount(p.stage, minlength=N_STAGES), p.counts)
    assert p.counts.sum() == p.n
    table = model.monthly()
    stocks = table[["unaware", "aware", "leads", "opportunities", "customers", "dormant"]].to_numpy()
    previous = start
    for month, flows in enumerate(model.flow_history):
        change = flows.sum(axis=0) - flows.sum(axis=1)  # inflow − outflow per stage
        assert np.array_equal(previous + change, stocks[month])
        previous = stocks[month]
    # Named flows are the flow matrix read by name.
    total = sum(model.flow_history)
    assert table["wins"].sum() == total[OPPORTUNITY, CUSTOMER]
    assert table["new_leads"].sum() == total[:, LEAD].sum() - total[LEAD, LEAD]
    assert table["wins"].sum() + table["losses"].sum() == total[OPPORTUNITY].sum() - total[
        OPPORTUNITY, OPPORTUNITY]


def test_scenarios_on_one_seed_share_their_market():
    a = GTMModel(small("siloed"), seed=5).prospects
    b = GTMModel(small("aligned"), seed=5).prospects
    for attr in ("segment", "fit", "deal_value", "cycle_days", "stage", "trust"):
        assert np.array_equal(getattr(a, attr), getattr(b, attr)), attr


def test_prospect_view_reads_one_prospect():
    model = GTMModel(small(), seed=1)
    model.step()
    view = model.prospect(0)
    assert view.id == 0
    assert view.segment in model.prospects.segment_names
    assert view.stage in ("unaware", "aware", "lead", "opportunity", "customer", "dormant")
    assert 0 <= view.fit <= 1 and 0 <= view.trust <= 1
    with pytest.raises(IndexError):
        model.prospect(10**9)
    aware = model.ids("aware")
    assert len(aware) == model.prospects.counts[AWARE]
    assert all(model.prospect(int(i)).stage == "aware" for i in aware[:5])


def test_marketing_programs_and_reps_are_mesa_agents():
    import mesa

    model = GTMModel(small(), seed=1)
    assert isinstance(model, mesa.Model)
    assert len(model.marketing) == 4 and len(model.reps) == 4
    assert all(isinstance(a, mesa.Agent) for a in [*model.marketing, *model.reps])


def _clock(model: GTMModel) -> tuple:
    steps = model._default_schedule
    return model.time, model.steps, model.day, steps.execution_count, steps.next_scheduled_time


def test_run_leaves_mesa_s_clock_where_stepping_would():
    ran, stepped = GTMModel(small(), seed=3), GTMModel(small(), seed=3)
    table = ran.run(2)
    for _ in range(60):
        stepped.step()
    assert _clock(ran) == _clock(stepped) == (60.0, 60, 60, 60, 61.0)
    pd.testing.assert_frame_equal(table, stepped.monthly())
    ran.step()  # Mesa's own step goes on from the clock `run` left
    ran.run(1)
    for _ in range(31):
        stepped.step()
    assert _clock(ran) == _clock(stepped) == (91.0, 91, 91, 91, 92.0)
    pd.testing.assert_frame_equal(ran.monthly(), stepped.monthly())


def test_run_keeps_events_a_user_scheduled():
    model = GTMModel(small(), seed=3)
    seen = []

    def note() -> None:
        seen.append((model.time, model.day))

    model.schedule_event(note, at=45.5)
    model.run(2)
    # Mesa runs the event between the 45th and the 46th day, and the days go on after it.
    assert seen == [(45.5, 45)]
    assert _clock(model) == (60.0, 60, 60, 60, 61.0)


class _NotesMidday(GTMModel):
    """A model whose day 10 schedules an event for half a day later."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[float, int]] = []

    def step(self) -> None:
        super().step()
        if self.day == 10:
            self.schedule_event(self.note, after=0.5)

    def note(self) -> None:
        self.seen.append((self.time, self.day))


def test_an_event_a_day_schedules_runs_before_the_next_day_as_when_stepping():
    ran, stepped = _NotesMidday(small(), seed=3), _NotesMidday(small(), seed=3)
    ran.run(1)
    for _ in range(30):
        stepped.step()
    assert ran.seen == stepped.seen == [(10.5, 10)]
    assert _clock(ran) == _clock(stepped) == (30.0, 30, 30, 30, 31.0)
    pd.testing.assert_frame_equal(ran.monthly(), stepped.monthly())

def test_timeline_hires_and_cuts():
    table = simulate(small("hire_and_cut", months=14)).monthly
    assert table["reps"].tolist()[:5] == [4] * 5 and table["reps"].tolist()[5:] == [6] * 9
    spend = table["marketing_spend"]
    assert spend.iloc[10] - spend.iloc[11] == pytest.approx(20_000)


def test_hired_reps_ramp_up():
    model = GTMModel(small("more_reps"), seed=1)
    model.step()
    new = [r for r in model.rep_by_id.values() if r.hire_day == 0]
    old = [r for r in model.rep_by_id.values() if r.hire_day < 0]
    assert len(new) == 4 and len(old) == 4
    assert all(r.ramp(30) < 0.25 for r in new) and all(r.ramp(30) == 1 for r in old)
    assert all(r.ramp(150) == 1 for r in new)


def test_fewer_reps_hands_their_deals_to_the_rest():
    model = GTMModel(small(months=12), seed=2)
    for _ in range(120):
        model.step()
    before = model.prospects.counts[OPPORTUNITY]
    model.config = model.config.model_copy(
        update={"sales": model.config.sales.model_copy(update={"reps": 2})})
    model._sync_reps(hire_day=model.day)
    assert len(model.rep_by_id) == 2
    assert sum(r.open_deals for r in model.rep_by_id.values()) == before


# ------------------------------------------------------------------ tiny worlds


def tiny(**sales) -> dict:
    """Three prospects, one segment, no marketing or word of mouth: sales only."""
    return {
        "name": "tiny",
        "months": 1,
        "seed": 1,
        "market": {
            "prospects": 3,
            "initial_aware": 0.0,
            "in_market_share": 0.0,
            "word_of_mouth": 0.0,
            "churn_monthly": 0.0,
            "lead_patience_days": 5,
            "qualify_rate": 1.0,
            "contact_rate": 1.0,  # every first response reaches the buyer, however late
            "response_lasting": 1.0,
            "response_decay_power": 0.0,
            "segments": {"only": {"share": 1.0, "fit_mean": 0.99, "fit_concentration": 1000,
                                  "deal_value": 1000, "cycle_days": 10, "base_win_rate": 1.0}},
        },
        "sales": {"reps": 1, "deal_capacity": 1, "touches_per_day": 8, "touches_per_lead": 1,
                  "deal_touches_per_day": 0, "outbound_share": 0, "skill_spread": 0,
                  "ramp_months": 0, "day_start_hour": 0, "day_hours": 24, "pickup_minutes": 0,
                  **sales},
        "alignment": {"preset": "integrated", "handoff_days": 0, "sla_days": 0,
                      "routing": "oldest_first", "lead_threshold": 0, "recycling": 1},
    }


def three_leads(model: GTMModel) -> None:
    p = model.prospects
    ids = np.arange(3)
    p.move(ids, AWARE, 0)
    p.in_market_until[ids] = 1000
    p.cycle_days[ids] = 10
    assert len(model.desk.intake(ids, SRC_INBOUND)) == 3


def test_one_rep_with_capacity_one_works_one_lead_and_the_others_go_cold():
    model = GTMModel(scenario_from_dict(tiny()))
    three_leads(model)
    model.step()  # day 0: the rep takes one lead; it qualifies at once
    p = model.prospects
    assert p.counts[OPPORTUNITY] == 1 and p.counts[LEAD] == 2
    for _ in range(29):
        model.step()
    row = model.monthly().iloc[0]
    # Day 10 the deal is won; the two others waited past their 5 days of patience first.
    assert row["wins"] == 1 and row["customers"] == 1
    assert row["leads_decayed"] == 2 and row["leads_unworked"] == 2
    assert row["bookings"] == pytest.approx(p.deal_value[p.stage == CUSTOMER].sum())
    assert row["lead_response_days_median"] == 0
    # The event log tells the same story lead by lead.
    leads, responses, deals = (model.log.frame(k) for k in ("leads", "responses", "deals"))
    assert len(leads) == 3 and set(leads["source"]) == {"inbound"}
    assert responses[["waited_days", "qualified"]].values.tolist() == [[0, True]]
    assert deals[["opened_day", "day", "won"]].values.tolist() == [[0, 10, True]]


def test_with_capacity_three_all_three_leads_are_worked_the_same_day():
    model = GTMModel(scenario_from_dict(tiny(deal_capacity=3)))
    three_leads(model)
    model.step()
    assert model.prospects.counts[OPPORTUNITY] == 3


def test_a_lead_whose_buying_window_closes_while_waiting_goes_cold():
    model = GTMModel(scenario_from_dict(tiny(reps=0)))
    three_leads(model)
    model.prospects.in_market_until[0] = 3  # prospect 0 buys elsewhere on day 3
    for _ in range(4):
        model.step()
    assert model.tally.decayed == 1 and model.prospects.stage[0] == AWARE  # recycled to nurture
    assert model.prospects.counts[LEAD] == 2
