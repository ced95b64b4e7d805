"""Known answers for the formulas the mechanisms rest on."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_allclose

from gtmsim.marketing import adstock, hill, monthly_reach
from gtmsim.sales import first_contact, win_probability
from gtmsim.scenario import Program, load_scenario


def test_adstock_impulse_decays_geometrically_and_constant_spend_converges():
    theta = 0.6
    impulse = adstock(np.r_[100.0, np.zeros(9)], theta)
    assert_allclose(impulse, 100 * theta ** np.arange(10), rtol=1e-12)
    steady = adstock(np.full(200, 50.0), theta)
    assert_allclose(steady[-1], 50 / (1 - theta), rtol=1e-9)


def test_hill_is_half_at_its_half_saturation_point_and_saturates():
    assert_allclose(hill(3.0, 3.0, 2.0), 0.5)
    assert_allclose(hill(0.0, 3.0, 1.0), 0.0)
    x = np.linspace(0, 50, 200)
    y = hill(x, 3.0, 1.5)
    assert np.all(np.diff(y) > 0) and y[-1] < 1


def test_reach_grows_with_spend_with_diminishing_returns():
    prog = Program(channel="paid_ads", monthly_budget=0, cost_per_reach=10.0)
    spends = np.array([1e3, 2e3, 4e3, 8e3, 16e3, 32e3])
    reach = np.array([monthly_reach(s, prog, audience=10_000) for s in spends])
    assert np.all(np.diff(reach) > 0)
    per_dollar = reach / spends
    assert np.all(np.diff(per_dollar) < 0)
    assert reach[-1] < 10_000


def test_first_contact_is_one_at_once_steep_in_minutes_and_flatter_after():
    law = load_scenario("baseline").market
    hours = np.array([0, 5 / 60, 0.5, 1, 2, 24, 48, 168])
    d = first_contact(hours, law.response_hot_minutes, law.response_lasting,
                      law.response_decay_hours, law.response_decay_power)
    assert d[0] == 1 and np.all(np.diff(d) < 0)
    # Most is lost in the first minutes; after the first hour the hot part is gone and an
    # hour more costs little; a day more costs less than the first five minutes.
    assert d[0] / d[1] > 5 and d[1] / d[2] > 3 and d[3] / d[4] < 1.5
    assert d[5] / d[6] < d[0] / d[1]
    # With the hot part gone (lasting 1) and no lasting decay, waiting costs nothing.
    flat = first_contact(hours, 2.0, 1.0, 48.0, 0.0)
    assert_allclose(flat, 1.0)


def test_win_probability_rises_with_fit_trust_skill_and_enablement():
    one = np.array([1.0])
    base = win_probability(np.array([0.2]), np.array([0.5]), np.array([0.3]), one, 0.0)
    assert_allclose(base, 0.2)  # an average deal wins at the segment's base rate
    assert win_probability(np.array([0.2]), np.array([0.8]), np.array([0.3]), one, 0.0) > base
    assert win_probability(np.array([0.2]), np.array([0.5]), np.array([0.9]), one, 0.0) > base
    assert win_probability(np.array([0.2]), np.array([0.5]), np.array([0.3]), one * 1.5, 0) > base
    assert win_probability(np.array([0.2]), np.array([0.5]), np.array([0.3]), one, 1.0) > base
