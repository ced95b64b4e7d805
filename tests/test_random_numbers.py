"""The random-number machinery behind common random numbers and the day's batching."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import small
from scipy import stats

from gtmsim import GTMModel
from gtmsim.marketing import touch
from gtmsim.prospects import AWARE, draw_count, first_of_each, unique_ids
from gtmsim.sales import QUALIFYING, RECYCLING, WINNING


def test_unique_ids_and_first_of_each_agree_with_numpy():
    rng = np.random.default_rng(0)
    for n in (0, 1, 2, 50, 500):
        idx = rng.integers(0, 40, size=n)
        assert np.array_equal(unique_ids(idx), np.unique(idx))
        _, first = np.unique(idx, return_index=True)
        assert np.array_equal(first_of_each(idx), np.sort(first))


@pytest.mark.parametrize("mean", [0.4, 3.0, 150.0])
def test_draw_count_is_poisson_and_takes_one_number(mean):
    rng = np.random.default_rng(1)
    counts = np.array([draw_count(rng, mean) for _ in range(20_000)])
    # Mean within 4 SE; the distribution by a chi-square-free check: quantiles match.
    assert abs(counts.mean() - mean) < 4 * np.sqrt(mean / len(counts))
    assert np.array_equal(np.percentile(counts, [10, 50, 90], method="lower"),
                          stats.poisson.ppf([0.1, 0.5, 0.9], mean))
    a, b = np.random.default_rng(2), np.random.default_rng(2)
    draw_count(a, mean)
    b.random()
    assert a.random() == b.random()
    assert draw_count(np.random.default_rng(3), 0.0) == 0


def test_lead_luck_belongs_to_the_lead():
    a = GTMModel(small("siloed"), seed=4).prospects
    b = GTMModel(small("aligned"), seed=4).prospects
    idx = np.arange(100)
    for purpose in (QUALIFYING, WINNING, RECYCLING):
        assert np.array_equal(a.lead_luck(idx, purpose), b.lead_luck(idx, purpose))
    luck = a.lead_luck(idx, QUALIFYING)
    assert np.all((luck >= 0) & (luck < 1))
    assert not np.array_equal(luck, a.lead_luck(idx, WINNING))
    a.lead_count[idx] += 1  # the prospect's next lead meets new luck
    assert np.mean(luck == a.lead_luck(idx, QUALIFYING)) == 0
    assert GTMModel(small("siloed"), seed=5).prospects.lead_luck(idx, QUALIFYING)[0] != luck[0]


def test_numbers_drawn_on_one_day_do_not_shift_the_next_days():
    a, b = GTMModel(small(), seed=6), GTMModel(small(), seed=6)
    a.step()
    b.step()
    for stream in b.streams.values():
        stream.random(1000)  # as if b's funnel had drawn more on day 0
    for _ in range(40):
        a.step()
        b.step()
    for attr in ("stage", "trust", "in_market_until", "lead_day"):
        assert np.array_equal(getattr(a.prospects, attr), getattr(b.prospects, attr)), attr


def test_a_prospect_touched_by_two_programs_in_a_day_takes_both_trust_gains():
    model = GTMModel(small(), seed=7)
    model.step()  # programs have their month's effects
    p = model.prospects
    i = int(np.flatnonzero(p.stage == AWARE)[0])
    p.trust[i], p.trust_day[i] = 0.2, model.day
    progs = list(model.programs.values())[:2]
    never = np.ones((3, 1))  # uniforms of 1: no hand raised, no form filled, no ask
    touch(model, [(prog, np.array([i]), np.vstack([never, prog.effects[:, None]]))
                  for prog in progs])
    g1, g2 = (prog.effects[1] for prog in progs)
    assert p.trust[i] == pytest.approx(1 - 0.8 * (1 - g1) * (1 - g2), rel=1e-6)
