"""Known answers for the formulas the mechanisms rest on."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_allclose

from gtmsim.marketing import adstock, hill, monthly_reach
from gtmsim.sales import response_decay, win_probability
from gtmsim.scenario import Program


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


def test_response_decay_is_one_at_once_and_falls_steeply():
    d = response_decay(np.array([0, 1, 7]), scale_days=0.5, power=0.62)
    assert d[0] == 1 and d[1] < 0.6 and d[0] / d[2] >= 5


def test_win_probability_rises_with_fit_trust_skill_and_enablement():
    one = np.array([1.0])
    base = win_probability(np.array([0.2]), np.array([0.5]), np.array([0.3]), one, 0.0)
    assert_allclose(base, 0.2)  # an average deal wins at the segment's base rate
    assert win_probability(np.array([0.2]), np.array([0.8]), np.array([0.3]), one, 0.0) > base
    assert win_probability(np.array([0.2]), np.array([0.5]), np.array([0.9]), one, 0.0) > base
    assert win_probability(np.array([0.2]), np.array([0.5]), np.array([0.3]), one * 1.5, 0) > base
    assert win_probability(np.array([0.2]), np.array([0.5]), np.array([0.3]), one, 1.0) > base
