"""The compiled kernels agree with the NumPy expressions they replaced, and the cheap
day restart of a random stream lands where a jump from its spawn point does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import small
from scipy.special import pdtrik

from gtmsim import GTMModel, kernels
from gtmsim.model import DAY_JUMP, DayStarts
from gtmsim.prospects import _mix64, draw_count, draw_counts, first_of_each


def test_first_positions_are_the_first_occurrences_in_order():
    rng = np.random.default_rng(0)
    mark = np.zeros(41, dtype=np.int64)
    for n in (0, 1, 2, 50, 500):
        idx = rng.integers(0, 40, size=n)
        assert np.array_equal(kernels.first_positions(idx, mark), first_of_each(idx))


def test_stable_order_is_numpys_stable_argsort():
    rng = np.random.default_rng(1)
    for n in (0, 1, 2, 3, 200, 5000):
        for high in (3, 1000, 2**40):
            idx = rng.integers(0, high, size=n)
            assert np.array_equal(kernels.stable_order(idx), np.argsort(idx, kind="stable"))
    big = np.array([2**61, 5, 2**61, 5])  # too large to pack: the mergesort path
    assert kernels.stable_order(big).tolist() == [1, 3, 0, 2]


def test_move_counts_flows_and_the_newly_known():
    stage = np.array([0, 0, 1, 2, 0], dtype=np.int8)
    stage_day = np.zeros(5, dtype=np.int32)
    flows = np.zeros((6, 6), dtype=np.int64)
    segment = np.array([0, 1, 1, 0, 1], dtype=np.int16)
    known = np.zeros(2, dtype=np.int64)
    kernels.move(np.array([0, 2, 4]), 1, 9, stage, stage_day, flows, segment, known)
    assert stage.tolist() == [1, 0, 1, 2, 1] and stage_day.tolist() == [9, 0, 9, 0, 9]
    assert flows[0, 1] == 2 and flows[1, 1] == 1 and flows.sum() == 3
    assert known.tolist() == [1, 1]


def test_trust_kernels_match_numpy():
    rng = np.random.default_rng(2)
    n = 300
    trust = rng.random(n).astype(np.float32)
    trust_day = rng.integers(0, 50, n).astype(np.int32)
    decay = np.log(2) / 45.0
    fade = np.exp(-decay * np.arange(61))  # as `Prospects.fade_through` makes it
    idx = rng.integers(0, n, 400)  # repeats: the last assignment wins, as in NumPy
    gain = rng.random(400)
    want_now = trust[idx] * np.exp(-decay * (60 - trust_day[idx]))
    assert np.array_equal(kernels.trust_now(idx, 60, trust, trust_day, fade), want_now)
    want = trust.copy()
    want[idx] = (want_now + gain * (1 - want_now)).astype(np.float32)
    kernels.add_trust(idx, gain, 60, trust, trust_day, fade)
    assert np.array_equal(trust, want)
    assert (trust_day[idx] == 60).all()


def test_lead_luck_matches_the_numpy_hash():
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 10**6, 1000)
    lead_count = rng.integers(0, 9, 10**6).astype(np.int32)
    seed = np.uint64(0x1234_5678_9ABC_DEF0)
    key = (idx.astype(np.uint64) << np.uint64(20)) ^ lead_count[idx].astype(np.uint64)
    want = (_mix64(key ^ seed) >> np.uint64(11)).astype(np.float64) / 2.0**53
    assert np.array_equal(kernels.lead_luck(idx, lead_count, seed), want)


@pytest.mark.parametrize("kind", ["full", "clustered", "small_world"])
def test_contacts_match_the_numpy_network(kind):
    model = GTMModel(small(market__prospects=3000, market__network__kind=kind), seed=4)
    p = model.prospects
    net = p.market.network
    rng = np.random.default_rng(5)
    speakers = rng.integers(0, p.n, 2000)
    u = rng.random((2000, 3))
    got = p.contacts(speakers, u)
    if kind == "full":
        want = (u[:, 0] * p.n).astype(np.int64)
    elif kind == "clustered":
        seg = p.segment[speakers]
        inside = p._by_segment[p._seg_start[seg] + (u[:, 2] * p.seg_size[seg]).astype(np.int64)]
        want = np.where(u[:, 1] < net.homophily, inside, (u[:, 0] * p.n).astype(np.int64))
    else:
        slot = (u[:, 0] * net.degree).astype(np.int64)
        half = slot // 2 + 1
        ring = (speakers + np.where(slot % 2 == 0, half, -half)) % p.n
        tie = speakers.astype(np.uint64) * np.uint64(net.degree) + slot.astype(np.uint64)
        h = _mix64(tie ^ p._network_seed)
        far = (_mix64(h) % np.uint64(p.n)).astype(np.int64)
        want = np.where((h >> np.uint64(11)).astype(np.float64) / 2.0**53 < net.rewire, far, ring)
    assert np.array_equal(got, want)
    assert (got >= 0).all() and (got < p.n).all()


@pytest.mark.parametrize("means", [[0.0, 0.4, 3.0, 150.0, 2e4], [0.4, 3.0, 150.0, 2e4, 7.5]])
def test_draw_counts_equal_one_draw_count_per_stream(means):
    # With and without a zero mean: the usual day (all positive) takes a shorter path.
    for seed in range(20):
        rngs = [np.random.default_rng([seed, i]) for i in range(len(means))]
        again = [np.random.default_rng([seed, i]) for i in range(len(means))]
        assert draw_counts(rngs, means) == [draw_count(r, m) for r, m in zip(again, means)]
        # Each stream gave exactly one number.
        assert [r.random() for r in rngs] == [r.random() for r in again]
    assert np.isfinite(pdtrik(0.5, 2e4))


@pytest.mark.parametrize(("start", "hours"), [(9.0, 8.0), (20.0, 9.0), (0.0, 24.0), (7, 10)])
def test_arrival_hour_matches_the_numpy_expression(start, hours):
    rng = np.random.default_rng(6)
    n = 5000
    idx = rng.integers(0, n, 3000)
    lead_count = rng.integers(0, 9, n).astype(np.int32)
    lead_day = rng.integers(0, 700, n).astype(np.int32)
    seed = np.uint64(0x0F0F_1234_5678_9ABC)
    share = 0.65
    u = kernels.lead_luck(idx, lead_count, seed)
    hour = np.where(u < share, start + u / share * hours,
                    start + hours + (u - share) / (1 - share) * (24 - hours))
    want = lead_day[idx] * 24.0 + np.mod(hour, 24)
    got = kernels.arrival_hour(idx, lead_count, seed, lead_day, float(start), float(hours), share)
    assert np.array_equal(got, want)
    assert ((got - lead_day[idx] * 24.0 >= 0) & (got - lead_day[idx] * 24.0 < 24)).all()
    from gtmsim.sales import HOURS_PER_DAY
    assert kernels.HOURS_PER_DAY == HOURS_PER_DAY


def _take_with_numpy(queue, ready_hour, queued_day, n, start, end, per_lead):
    """A rep's take as the NumPy code before `kernels.take_leads` did it."""
    visible = np.flatnonzero(ready_hour < end)[:n]
    leads, ready, days = queue[visible], ready_hour[visible], queued_day[visible]
    keep = np.ones(len(queue), dtype=bool)
    keep[visible] = False
    queue, ready_hour, queued_day = queue[keep], ready_hour[keep], queued_day[keep]
    by_time = np.argsort(ready, kind="stable")
    leads, ready, days = leads[by_time], np.maximum(ready[by_time], start), days[by_time]
    steps = np.arange(len(leads)) * per_lead
    at = steps + np.maximum.accumulate(ready - steps)
    now = at < end
    return (leads[now], at[now], np.concatenate([leads[~now], queue]),
            np.concatenate([ready[~now], ready_hour]), np.concatenate([days[~now], queued_day]))


def test_take_leads_matches_the_numpy_take():
    rng = np.random.default_rng(7)
    cases = 0
    for trial in range(400):
        q = int(rng.integers(1, 40))
        queue = rng.permutation(1000)[:q].astype(np.int64)
        # Hours on a coarse grid, so that ties (the stable order) occur.
        ready_hour = rng.integers(100, 140, q) / 2.0
        queued_day = rng.integers(0, 5, q).astype(np.int32)
        n = int(rng.integers(1, 12))
        start, end = 54.0, 62.0
        per_lead = float(rng.choice([0.25, 0.5, 1.5, 3.0]))
        got = kernels.take_leads(queue, ready_hour, queued_day, n, start, end, per_lead)
        want = _take_with_numpy(queue, ready_hour, queued_day, n, start, end, per_lead)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype and np.array_equal(g, w), trial
        cases += len(want[0]) < min(n, int((ready_hour < end).sum()))  # some went back
    assert cases > 20  # the put-back path was exercised


def test_response_kernels_match_the_numpy_respond():
    from gtmsim.sales import _HAND_RAISER

    rng = np.random.default_rng(8)
    n, k, day = 4000, 600, 300
    idx = rng.integers(0, n, k)
    lead_day = rng.integers(250, 301, n).astype(np.int32)
    lead_count = rng.integers(1, 5, n).astype(np.int32)
    in_market_until = rng.integers(200, 400, n).astype(np.int32)
    source = rng.integers(1, 6, n).astype(np.int8)
    fit = rng.random(n).astype(np.float32)
    seeds = [np.uint64(s) for s in rng.integers(1, 2**62, 3)]
    start, hours, share = 9.0, 8.0, 0.65
    at = lead_day[idx] * 24.0 + rng.random(k) * 60  # some responses before the arrival hour
    waited, waited_hours, in_market, hand = kernels.response_waits(
        idx, at, day, lead_day, in_market_until, source, _HAND_RAISER, lead_count, seeds[0],
        start, hours, share)
    arrived = kernels.arrival_hour(idx, lead_count, seeds[0], lead_day, start, hours, share)
    assert np.array_equal(waited, day - lead_day[idx]) and waited.dtype == np.int32
    assert np.array_equal(waited_hours, np.maximum(0.0, at - arrived))
    assert (waited_hours == 0).any()
    assert np.array_equal(in_market, in_market_until[idx] > day)
    assert np.array_equal(hand, _HAND_RAISER[source[idx]])
    contact = rng.random(k)
    follow_up = rng.random(k) * 0.5
    skill = np.exp(rng.normal(0, 0.3, k))
    reached, chance, ok = kernels.qualify(idx, contact, follow_up, in_market, skill, 0.6, 0.15,
                                          fit, lead_count, seeds[1], seeds[2])
    want_reached = kernels.lead_luck(idx, lead_count, seeds[1]) < contact
    want_chance = (np.where(in_market, 0.6, 0.15) * (0.5 + fit[idx]) * skill
                   * np.where(want_reached, 1.0, follow_up))
    assert np.array_equal(reached, want_reached)
    assert np.array_equal(chance, want_chance)
    assert np.array_equal(ok, kernels.lead_luck(idx, lead_count, seeds[2]) < want_chance)


@pytest.mark.parametrize("use_words", [True, False])
def test_day_restarts_land_on_the_jump_from_the_spawn_point(use_words):
    bits = np.random.PCG64(np.random.SeedSequence(11, spawn_key=(3,)))
    reference = np.random.PCG64(np.random.SeedSequence(11, spawn_key=(3,)))
    start = reference.state
    stream = DayStarts(bits)
    if not use_words:
        stream.words = None  # the dictionary path, for NumPy builds of another layout
    gen = np.random.Generator(bits)
    for day in [*range(40), 45, 46, 47]:  # days 41–44 skipped: jumps from the spawn point
        stream.restart(day)
        reference.state = start
        reference.advance((day + 1) * DAY_JUMP % 2**128)
        assert bits.state == reference.state, day
        gen.random(day % 7)  # the day's draws move the stream on
        gen.integers(0, 10, size=day % 3, dtype=np.uint32)  # leaves a buffered half behind
    assert stream.words is not None or not use_words


def test_a_model_restarts_every_stream_at_the_day_jump():
    model = GTMModel(small(market__prospects=2000), seed=8)
    for _ in range(35):
        model.step()
    model._restart_streams()  # day 35
    for key, stream in model._stream_starts.items():
        reference = np.random.PCG64(np.random.SeedSequence(model._root_entropy, spawn_key=key))
        reference.advance(36 * DAY_JUMP % 2**128)
        assert stream.bits.state == reference.state, key


def test_a_copied_model_restarts_its_own_streams():
    import copy
    import pickle

    model = GTMModel(small(market__prospects=2000), seed=9)
    for _ in range(5):
        model.step()
    for duplicate in (copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))):
        twin = duplicate(model)
        for _ in range(3):
            twin.step()
            model.step()
        assert np.array_equal(twin.prospects.stage, model.prospects.stage)
        for key, stream in twin._stream_starts.items():
            assert stream.bits.state == model._stream_starts[key].bits.state, key
        for kind in ("leads", "responses", "deals"):
            pd.testing.assert_frame_equal(twin.log.frame(kind), model.log.frame(kind))
        model = twin
    # A copy shares its log's records but not the log: what one records the other does not.
    twin = copy.deepcopy(model)
    before = model.log.frame("leads")
    for _ in range(40):
        twin.step()
    assert len(twin.log.frame("leads")) > len(before)
    pd.testing.assert_frame_equal(model.log.frame("leads"), before)
