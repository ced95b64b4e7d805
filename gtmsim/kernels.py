"""Compiled kernels for the model's per-day work (numba, cached on disk).

A day of the model is a few hundred small array operations; in NumPy each costs a call
of a microsecond or more whatever the array's length, so a small market paid almost as
much as a large one. These kernels do the same work in one compiled call per phase, on
the same arrays and with the same random numbers as the NumPy code they replace: a
replication's numbers do not depend on which path ran it (tests/test_kernels.py checks
each kernel against the NumPy expression it replaces).

Arithmetic follows NumPy's promotion rules exactly (a float32 array plus a Python float
stays float32 in NumPy, so here the constant is cast to float32 first), so that every
comparison against a uniform falls the same way.

The random streams stay NumPy Generators, drawn in Python; kernels only consume the
uniforms. Prospect stage moves go through `move`, which keeps the flow counts and the
known-prospect counts that the model's monthly table is built from.
"""

from __future__ import annotations

import numpy as np
from numba import njit

UNAWARE, AWARE, LEAD, OPPORTUNITY, CUSTOMER, DORMANT = range(6)
SRC_INBOUND, SRC_MARKETING, SRC_REFERRAL, SRC_OUTBOUND, SRC_CAPTURE = range(1, 6)
_F32_HALF = np.float32(0.5)
HOURS_PER_DAY = 24.0  # as `gtmsim.sales.HOURS_PER_DAY`


@njit(cache=True)
def first_positions(idx, mark):
    """Positions of the first occurrence of each distinct id in `idx`, in order.

    `mark` (int64, one slot per prospect plus a counter at the end) replaces a sort: a
    prospect is seen when its slot holds this call's stamp.
    """
    n = mark.shape[0] - 1
    mark[n] += 1
    stamp = mark[n]
    out = np.empty(idx.shape[0], dtype=np.int64)
    k = 0
    for j in range(idx.shape[0]):
        i = idx[j]
        if mark[i] != stamp:
            mark[i] = stamp
            out[k] = j
            k += 1
    return out[:k]


@njit(cache=True)
def stable_order(idx):
    """`np.argsort(idx, kind="stable")` for non-negative ids: each id and its position packed
    into one key, so an unstable sort of distinct keys gives the stable order (numba's
    mergesort costs about twice as much on a day's few hundred touches)."""
    t = idx.shape[0]
    if t == 0:
        return np.empty(0, dtype=np.int64)
    shift = 1
    while (1 << shift) < t:
        shift += 1
    if idx.min() < 0 or idx.max() >= (1 << (62 - shift)):
        return np.argsort(idx, kind="mergesort")
    keys = np.empty(t, dtype=np.int64)
    for j in range(t):
        keys[j] = (np.int64(idx[j]) << shift) | j
    keys.sort()
    low = (np.int64(1) << shift) - 1
    out = np.empty(t, dtype=np.int64)
    for j in range(t):
        out[j] = keys[j] & low
    return out


@njit(cache=True)
def move(idx, to, day, stage, stage_day, flows, segment, known_by_seg):
    """Move prospects `idx` (distinct) to stage `to` on `day`, counting flows and the newly known."""
    for j in range(idx.shape[0]):
        i = idx[j]
        frm = stage[i]
        flows[frm, to] += 1
        if frm == UNAWARE:
            known_by_seg[segment[i]] += 1
        stage[i] = to
        stage_day[i] = day


@njit(cache=True, inline="always")
def _trust(i, day, trust, trust_day, fade):
    """Prospect `i`'s trust on `day`: its last value faded by its age (`Prospects.fade`)."""
    return np.float64(trust[i]) * fade[day - trust_day[i]]


@njit(cache=True)
def trust_now(idx, day, trust, trust_day, fade):
    out = np.empty(idx.shape[0])
    for j in range(idx.shape[0]):
        out[j] = _trust(idx[j], day, trust, trust_day, fade)
    return out


@njit(cache=True)
def add_trust(idx, gain, day, trust, trust_day, fade):
    """Close a share `gain[j]` of the gap to full trust; with repeated ids the last one wins,
    each computed from the trust before this call (as NumPy's fancy assignment does)."""
    t = trust_now(idx, day, trust, trust_day, fade)
    for j in range(idx.shape[0]):
        trust[idx[j]] = np.float32(t[j] + gain[j] * (1.0 - t[j]))
    for j in range(idx.shape[0]):
        trust_day[idx[j]] = day


@njit(cache=True)
def in_segment(seg, u, seg_size, by_segment, seg_start):
    out = np.empty(seg.shape[0], dtype=np.int64)
    for j in range(seg.shape[0]):
        s = seg[j]
        out[j] = by_segment[seg_start[s] + np.int64(u[j] * seg_size[s])]
    return out


@njit(cache=True)
def sample_segments(cdf, u_segment, u_position, seg_size, by_segment, seg_start):
    seg = np.minimum(np.searchsorted(cdf, u_segment, side="right"), cdf.shape[0] - 1)
    return in_segment(seg, u_position, seg_size, by_segment, seg_start)


@njit(cache=True)
def program_draw(u, cdf, seg_size, by_segment, seg_start, keep, known_only, stage, mark, effects):
    """A program's candidate touches (rows of `u`: segment, who, keep, three chances),
    thinned by the fit preference (`keep`, empty for none) and, for a known audience, to
    prospects ever aware; the first touch of each prospect counts.

    Returns the touched prospects, each touch's three chances and then the program's
    `effects` (a (3 + len(effects)) × k array, as `touch_day` takes them), and the touches
    kept before the first-of-the-day rule (what the program paid for).
    """
    idx = sample_segments(cdf, u[:, 0], u[:, 1], seg_size, by_segment, seg_start)
    has_keep = keep.shape[0] > 0
    kept = np.empty(idx.shape[0], dtype=np.int64)
    k = 0
    for j in range(idx.shape[0]):
        i = idx[j]
        if has_keep and not u[j, 2] < keep[i]:
            continue
        if known_only and stage[i] == UNAWARE:
            continue
        kept[k] = j
        k += 1
    rows = kept[:k]
    targets = idx[rows]
    first = first_positions(targets, mark)
    rows = rows[first]
    chances = np.empty((3 + effects.shape[0], rows.shape[0]))
    for j in range(rows.shape[0]):
        for c in range(3):
            chances[c, j] = u[rows[j], 3 + c]
        for e in range(effects.shape[0]):
            chances[3 + e, j] = effects[e]
    return targets[first], chances, k


@njit(cache=True)
def touch_group(idx, touches, day, stage, stage_day, flows, segment, known_by_seg,
                trust, trust_day, fade):
    """The day's touches of all programs (`touches`: three chances, then the touching
    program's effects, a row each) grouped by prospect: who wakes (moved to aware), and the
    compounded trust gains of those reached. Returns the touches sorted by prospect (`idx`,
    `effect`, `chance`), the distinct prospects `who`, each group's start, each touch's
    group `of`, and the mask of `who` that woke."""
    order = stable_order(idx)
    idx = idx[order]
    touches = touches[:, order]
    chance = touches[:3]
    effect = touches[3:]
    t = idx.shape[0]
    of = np.empty(t, dtype=np.int64)
    starts = np.empty(t, dtype=np.int64)
    g = -1
    for j in range(t):
        if j == 0 or idx[j] != idx[j - 1]:
            g += 1
            starts[g] = j
        of[j] = g
    starts = starts[:g + 1]
    who = idx[starts]
    woke = np.zeros(who.shape[0], dtype=np.bool_)
    for j in range(t):
        if stage[idx[j]] == UNAWARE and chance[0, j] < effect[0, j]:
            woke[of[j]] = True
    reached_n = 0
    reached = np.empty(who.shape[0], dtype=np.int64)
    for q in range(who.shape[0]):
        s = stage[who[q]]
        if woke[q] or (s != UNAWARE and s != DORMANT):
            reached[reached_n] = q
            reached_n += 1
    move(who[woke], AWARE, day, stage, stage_day, flows, segment, known_by_seg)
    # Trust gains of one day's touches compound: 1 − Π(1 − gain).
    gain = np.empty(who.shape[0])
    for q in range(who.shape[0]):
        end = starts[q + 1] if q + 1 < starts.shape[0] else t
        prod = 1.0
        for j in range(starts[q], end):
            prod *= 1.0 - effect[1, j]
        gain[q] = 1.0 - prod
    reached = reached[:reached_n]
    add_trust(who[reached], gain[reached], day, trust, trust_day, fade)
    return idx, effect, chance, who, starts, of, woke


@njit(cache=True)
def touch_asks(idx, effect, chance, who, of, day, stage, in_market_until, trust, trust_day, fade):
    """Aware touched prospects who raise a hand (in market; chance × (0.5 + trust)) or are
    captured by gated content (not in market). Returns both as prospect ids (may repeat)."""
    t = idx.shape[0]
    tr = trust_now(who, day, trust, trust_day, fade)
    hands = np.empty(t, dtype=np.int64)
    caps = np.empty(t, dtype=np.int64)
    nh = 0
    nc = 0
    for j in range(t):
        w = who[of[j]]
        if stage[w] != AWARE:
            continue
        if in_market_until[w] > day:
            if chance[1, j] < effect[2, j] * (0.5 + tr[of[j]]):
                hands[nh] = idx[j]
                nh += 1
        elif chance[1, j] < effect[3, j]:
            caps[nc] = idx[j]
            nc += 1
    return hands[:nh], caps[:nc]


@njit(cache=True)
def considering(idx, u, day, propensity, stage, in_market_until, trust, trust_day, fade):
    """Of aware prospects `idx` in a buying window, those whose uniform `u` falls under
    `propensity × trust` (they ask for a demo)."""
    out = np.empty(idx.shape[0], dtype=np.int64)
    k = 0
    for j in range(idx.shape[0]):
        i = idx[j]
        if stage[i] == AWARE and in_market_until[i] > day:
            tr = _trust(i, day, trust, trust_day, fade)
            if u[j] < propensity * tr:
                out[k] = i
                k += 1
    return out[:k]


@njit(cache=True)
def lead_candidates(idx, outbound, day, threshold, stage, fit, in_market_until, trust,
                    trust_day, fade):
    """Distinct aware prospects of `idx`, sorted, that meet the lead definition's score
    (0.5·fit + 0.25·trust + 0.25·in market ≥ threshold; outbound meetings skip it)."""
    # ASSUMPTION: the score weighs ICP fit 1/2, trust 1/4 and intent (in a buying window,
    # shown by the request itself) 1/4; below the threshold marketing keeps nurturing.
    s = np.sort(idx)
    out = np.empty(s.shape[0], dtype=np.int64)
    k = 0
    for j in range(s.shape[0]):
        i = s[j]
        if (j > 0 and i == s[j - 1]) or stage[i] != AWARE:
            continue
        if not outbound:
            tr = _trust(i, day, trust, trust_day, fade)
            score = np.float64(_F32_HALF * fit[i]) + 0.25 * tr
            score = score + (0.25 if in_market_until[i] > day else 0.0)
            if not score >= threshold:
                continue
        out[k] = i
        k += 1
    return out[:k]


@njit(cache=True)
def make_leads(idx, outbound, day, threshold, source, stage, stage_day, flows, segment,
               known_by_seg, fit, in_market_until, trust, trust_day, fade, lead_day, lead_count,
               source_of, leads_by_seg):
    """Prospects who ask or are captured (`lead_candidates`) become leads from `source` today;
    returns them, sorted. The lead definition screens captured leads only."""
    # ASSUMPTION: a prospect who asked (a demo request, an in-market inquiry, a referral) is
    # passed to sales whatever its score; the shared lead definition decides which captured
    # (gated-content) leads marketing passes and which it keeps nurturing.
    if source != SRC_CAPTURE:
        threshold = 0.0
    idx = lead_candidates(idx, outbound, day, threshold, stage, fit, in_market_until, trust,
                          trust_day, fade)
    move(idx, LEAD, day, stage, stage_day, flows, segment, known_by_seg)
    for i in idx:
        lead_day[i] = day
        lead_count[i] += 1
        source_of[i] = source
        leads_by_seg[segment[i]] += 1.0
    return idx


@njit(cache=True)
def open_windows(u, n, day, window_days, stage, in_market_until, mark):
    """Buying windows open: rows of `u` (who, length, ask); the first draw of each
    prospect counts, and only for the unaware, aware and dormant out of market. Returns the
    prospects whose window opened and their ask uniforms."""
    idx = (u[:, 0] * n).astype(np.int64)
    first = first_positions(idx, mark)
    out = np.empty(first.shape[0], dtype=np.int64)
    ask = np.empty(first.shape[0])
    k = 0
    for j in first:
        i = idx[j]
        s = stage[i]
        if (s == UNAWARE or s == AWARE or s == DORMANT) and not in_market_until[i] > day:
            length = window_days * (0.5 + u[j, 1])
            in_market_until[i] = day + np.int32(max(1.0, np.rint(length)))
            out[k] = i
            ask[k] = u[j, 2]
            k += 1
    return out[:k], ask[:k]


@njit(cache=True)
def mix64(x):
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def contacts(speakers, u, kind, n, homophily, degree, rewire, network_seed, segment,
             seg_size, by_segment, seg_start):
    """Whom each speaker talks to (kind 0 full, 1 clustered, 2 small world); see
    `Prospects.contacts`."""
    k = speakers.shape[0]
    out = np.empty(k, dtype=np.int64)
    for j in range(k):
        if kind == 0:
            out[j] = np.int64(u[j, 0] * n)
        elif kind == 1:
            if u[j, 1] < homophily:
                s = segment[speakers[j]]
                out[j] = by_segment[seg_start[s] + np.int64(u[j, 2] * seg_size[s])]
            else:
                out[j] = np.int64(u[j, 0] * n)
        else:
            slot = np.int64(u[j, 0] * degree)
            half = slot // 2 + 1
            offset = half if slot % 2 == 0 else -half
            ring = (speakers[j] + offset) % n
            tie = np.uint64(speakers[j]) * np.uint64(degree) + np.uint64(slot)
            h = mix64(tie ^ network_seed)
            if np.float64(h >> np.uint64(11)) / 2.0**53 < rewire:
                out[j] = np.int64(mix64(h) % np.uint64(n))
            else:
                out[j] = ring
    return out


@njit(cache=True)
def talks(u, n, referral_weight, w_max, stage, trust, trust_day, fade, day):
    """Word-of-mouth candidates (rows of `u`), thinned by who talks: aware, leads and deals at
    weight 1, customers at `referral_weight`. Returns the speakers, their rows of `u`, whether
    each is a customer, and each speaker's trust (customers count as fully trusting)."""
    k = u.shape[0]
    rows = np.empty(k, dtype=np.int64)
    speakers = np.empty(k, dtype=np.int64)
    m = 0
    for j in range(k):
        i = np.int64(u[j, 0] * n)
        s = stage[i]
        if s == AWARE or s == LEAD or s == OPPORTUNITY:
            w = 1.0
        elif s == CUSTOMER:
            w = referral_weight
        else:
            w = 0.0
        if u[j, 1] * w_max < w:
            rows[m] = j
            speakers[m] = i
            m += 1
    rows = rows[:m]
    speakers = speakers[:m]
    customer = np.empty(m, dtype=np.bool_)
    speaker_trust = np.empty(m)
    for j in range(m):
        i = speakers[j]
        customer[j] = stage[i] == CUSTOMER
        if customer[j]:
            speaker_trust[j] = 1.0
        else:
            speaker_trust[j] = _trust(i, day, trust, trust_day, fade)
    return speakers, rows, customer, speaker_trust


@njit(cache=True)
def hear(targets, speaker_trust, u5, referral_trust, day, stage, stage_day, flows, segment,
         known_by_seg, trust, trust_day, fade, mark):
    """Listeners hear the day's talks: the unaware become aware and every reachable listener
    takes a share of the speaker's trust. Returns the newly aware and their ask uniforms."""
    first = first_positions(targets, mark)
    newly_pos = np.empty(first.shape[0], dtype=np.int64)
    k = 0
    for j in first:
        if stage[targets[j]] == UNAWARE:
            newly_pos[k] = j
            k += 1
    newly_pos = newly_pos[:k]
    newly = targets[newly_pos]
    move(newly, AWARE, day, stage, stage_day, flows, segment, known_by_seg)
    reach = np.empty(targets.shape[0], dtype=np.int64)
    r = 0
    for j in range(targets.shape[0]):
        if stage[targets[j]] != DORMANT:
            reach[r] = j
            r += 1
    reach = reach[:r]
    gain = np.empty(r)
    for q in range(r):
        gain[q] = referral_trust * speaker_trust[reach[q]]
    add_trust(targets[reach], gain, day, trust, trust_day, fade)
    return newly, u5[newly_pos]


@njit(cache=True)
def referred(targets, customer, u6, mark):
    """Each listener's first talk from a customer: the listeners and their ask uniforms."""
    talk = np.flatnonzero(customer)
    talk = talk[first_positions(targets[talk], mark)]
    return targets[talk], u6[talk]


@njit(cache=True, inline="always")
def _luck(i, lead_count, luck_seed):
    """Prospect `i`'s uniform for its current lead and the purpose of `luck_seed`."""
    key = (np.uint64(i) << np.uint64(20)) ^ np.uint64(lead_count[i])
    return np.float64(mix64(key ^ luck_seed) >> np.uint64(11)) / 2.0**53


@njit(cache=True)
def lead_luck(idx, lead_count, luck_seed):
    out = np.empty(idx.shape[0])
    for j in range(idx.shape[0]):
        out[j] = _luck(idx[j], lead_count, luck_seed)
    return out


@njit(cache=True)
def arrival_hour(idx, lead_count, luck_seed, lead_day, start, hours, work_share):
    """The hour (since day 0) each prospect's current lead arrived (`LeadDesk.arrival_hour`):
    a share `work_share` of leads in the working hours [start, start + hours), the rest
    spread over the hours off."""
    out = np.empty(idx.shape[0])
    off = HOURS_PER_DAY - hours
    for j in range(idx.shape[0]):
        i = idx[j]
        u = _luck(i, lead_count, luck_seed)
        if u < work_share:
            h = start + u / work_share * hours
        else:
            h = start + hours + (u - work_share) / (1 - work_share) * off
        # NumPy's float modulo: fmod, moved into [0, HOURS_PER_DAY)
        r = np.fmod(h, HOURS_PER_DAY)
        if r < 0:
            r += HOURS_PER_DAY
        out[j] = lead_day[i] * HOURS_PER_DAY + r
    return out


@njit(cache=True)
def take_leads(queue, ready_hour, queued_day, n, start, end, per_lead):
    """A rep's leads today (`LeadDesk.take`): the first `n` of the queue visible before
    `end`, answered in the order they became visible, one every `per_lead` hours from
    `start` or from when each became visible; those not reached before `end` go back to the
    front of the queue, visible from `start` at the earliest. Returns the leads reached,
    the hour of each response, and the queue after (leads, ready hours, days queued)."""
    q = queue.shape[0]
    rows = np.empty(min(n, q), dtype=np.int64)
    k = 0
    for j in range(q):
        if k == rows.shape[0]:
            break
        if ready_hour[j] < end:
            rows[k] = j
            k += 1
    rows = rows[:k]
    order = np.argsort(ready_hour[rows], kind="mergesort")
    rows = rows[order]
    ready = np.empty(k)
    at = np.empty(k)
    best = -np.inf
    for j in range(k):
        r = ready_hour[rows[j]]
        ready[j] = r if r >= start else start
        steps = j * per_lead
        gap = ready[j] - steps
        if j == 0 or gap > best:
            best = gap
        at[j] = steps + best
    reached = 0
    for j in range(k):
        if at[j] < end:
            reached += 1
    leads = np.empty(reached, dtype=np.int64)
    hours = np.empty(reached)
    taken = np.zeros(q, dtype=np.bool_)
    for j in range(k):
        taken[rows[j]] = True
    out_q = np.empty(q - reached, dtype=queue.dtype)
    out_ready = np.empty(q - reached)
    out_day = np.empty(q - reached, dtype=queued_day.dtype)
    a = 0
    b = 0
    for j in range(k):
        i = rows[j]
        if at[j] < end:
            leads[a] = queue[i]
            hours[a] = at[j]
            a += 1
        else:
            out_q[b] = queue[i]
            out_ready[b] = ready[j]
            out_day[b] = queued_day[i]
            b += 1
    for j in range(q):
        if not taken[j]:
            out_q[b] = queue[j]
            out_ready[b] = ready_hour[j]
            out_day[b] = queued_day[j]
            b += 1
    return leads, hours, out_q, out_ready, out_day


@njit(cache=True)
def response_waits(idx, hours, day, lead_day, in_market_until, source, hand_raiser, lead_count,
                   arrival_seed, start, day_hours, work_share):
    """For first responses at `hours` to the leads of prospects `idx` (`LeadDesk.respond`):
    the days and hours each waited since it arrived, whether it is in market, and whether
    it is a hand-raiser (by its source)."""
    arrived = arrival_hour(idx, lead_count, arrival_seed, lead_day, start, day_hours, work_share)
    k = idx.shape[0]
    waited = np.empty(k, dtype=lead_day.dtype)
    waited_hours = np.empty(k)
    in_market = np.empty(k, dtype=np.bool_)
    hand = np.empty(k, dtype=np.bool_)
    for j in range(k):
        i = idx[j]
        waited[j] = day - lead_day[i]
        w = hours[j] - arrived[j]
        waited_hours[j] = 0.0 if 0.0 >= w else w  # NumPy's maximum(0.0, w)
        in_market[j] = in_market_until[i] > day
        hand[j] = hand_raiser[source[i]]
    return waited, waited_hours, in_market, hand


@njit(cache=True)
def qualify(idx, contact, follow_up, in_market, skill, ready_rate, unready_rate, fit, lead_count,
            contact_seed, qualify_seed):
    """Whether each first response reaches a decision maker (its contact chance), the
    chance the lead qualifies (in market or not, fit, skill, and `follow_up` when the
    response missed), and whether it does (`LeadDesk.respond`)."""
    k = idx.shape[0]
    reached = np.empty(k, dtype=np.bool_)
    chance = np.empty(k)
    ok = np.empty(k, dtype=np.bool_)
    for j in range(k):
        i = idx[j]
        reached[j] = _luck(i, lead_count, contact_seed) < contact[j]
        ready = ready_rate if in_market[j] else unready_rate
        fitted = np.float64(_F32_HALF + fit[i])  # float32, as NumPy adds 0.5 to a float32 array
        chance[j] = ready * fitted * skill[j] * (1.0 if reached[j] else follow_up[j])
        ok[j] = _luck(i, lead_count, qualify_seed) < chance[j]
    return reached, chance, ok


# ---------------------------------------------------------------- whole phases
# `state` is `Prospects.state(tally)`: the arrays the phases read and change, in this order.


@njit(cache=True)
def _leads(idx, outbound, day, threshold, source, fade, state):
    (stage, stage_day, flows, segment, known_by_seg, fit, in_market_until, trust, trust_day,
     lead_day, lead_count, source_of, _, leads_by_seg) = state
    return make_leads(idx, outbound, day, threshold, source, stage, stage_day, flows, segment,
                      known_by_seg, fit, in_market_until, trust, trust_day, fade, lead_day,
                      lead_count, source_of, leads_by_seg)


@njit(cache=True)
def _asks(idx, u, day, propensity, threshold, source, fade, state):
    """Aware prospects in market who ask (`considering`) and meet the lead definition."""
    stage, in_market_until, trust, trust_day = state[0], state[6], state[7], state[8]
    asking = considering(idx, u, day, propensity, stage, in_market_until, trust, trust_day, fade)
    return _leads(asking, False, day, threshold, source, fade, state)


@njit(cache=True)
def touch_day(idx, touches, day, propensity, threshold, fade, state):
    """One day's touches of every program (see `marketing.touch`; `touches` as
    `program_draw` gives them). Returns the new leads: newly aware prospects who ask,
    hand-raisers, and captured prospects."""
    stage, stage_day, flows, segment, known_by_seg = state[0], state[1], state[2], state[3], state[4]
    in_market_until, trust, trust_day = state[6], state[7], state[8]
    idx, effect, chance, who, starts, of, woke = touch_group(
        idx, touches, day, stage, stage_day, flows, segment, known_by_seg, trust,
        trust_day, fade)
    asked = _asks(who[woke], chance[2][starts][woke], day, propensity, threshold, SRC_INBOUND,
                  fade, state)
    hands, caps = touch_asks(idx, effect, chance, who, of, day, stage, in_market_until, trust,
                             trust_day, fade)
    hands = _leads(hands, False, day, threshold, SRC_MARKETING, fade, state)
    caps = _leads(caps, False, day, threshold, SRC_CAPTURE, fade, state)
    return asked, hands, caps


@njit(cache=True)
def market_day(u_windows, u_talks, n, day, window_days, propensity, threshold, talk_on,
               referral_weight, w_max, referral_trust, net, network_seed, seg_size, by_segment,
               seg_start, fade, state):
    """Buying windows open and word of mouth spreads (see `GTMModel._market_day`). Returns the
    new leads: window openers who ask, newly aware listeners who ask, referred prospects."""
    stage, stage_day, flows, segment, known_by_seg = state[0], state[1], state[2], state[3], state[4]
    in_market_until, trust, trust_day, mark = state[6], state[7], state[8], state[12]
    empty = np.empty(0, dtype=np.int64)
    idx, ask = open_windows(u_windows, n, day, window_days, stage, in_market_until, mark)
    opened = _asks(idx, ask, day, propensity, threshold, SRC_INBOUND, fade, state)
    if not talk_on or known_by_seg.sum() == 0:
        return opened, empty, empty
    speakers, rows, customer, speaker_trust = talks(u_talks, n, referral_weight, w_max, stage,
                                                    trust, trust_day, fade, day)
    if speakers.shape[0] == 0:
        return opened, empty, empty
    u = u_talks[rows]
    kind, homophily, degree, rewire = net
    targets = contacts(speakers, u[:, 2:5], kind, n, homophily, degree, rewire, network_seed,
                       segment, seg_size, by_segment, seg_start)
    newly, newly_ask = hear(targets, speaker_trust, u[:, 5], referral_trust, day, stage,
                            stage_day, flows, segment, known_by_seg, trust, trust_day, fade,
                            mark)
    heard = _asks(newly, newly_ask, day, propensity, threshold, SRC_INBOUND, fade, state)
    ref, ref_ask = referred(targets, customer, u[:, 6], mark)
    return opened, heard, _asks(ref, ref_ask, day, propensity, threshold, SRC_REFERRAL, fade,
                                state)


@njit(cache=True)
def cold_calls(u, cdf, success, skill, day, seg_size, by_segment, seg_start, fade, state):
    """A rep's outbound calls (rows of `u`: segment, who, conversion) on prospects drawn by
    `cdf`; the first call of each counts, on the unaware and aware only. The unaware become
    aware; a call converts an in-market prospect with chance
    success × (0.5 + fit) × (0.2 + trust) × skill. Returns the booked meetings (leads from
    outbound, sorted)."""
    stage, stage_day, flows, segment, known_by_seg, fit = (state[0], state[1], state[2],
                                                           state[3], state[4], state[5])
    in_market_until, trust, trust_day, mark = state[6], state[7], state[8], state[12]
    idx = sample_segments(cdf, u[:, 0], u[:, 1], seg_size, by_segment, seg_start)
    first = first_positions(idx, mark)
    called = np.empty(first.shape[0], dtype=np.int64)
    rows = np.empty(first.shape[0], dtype=np.int64)
    k = 0
    for j in first:
        s = stage[idx[j]]
        if s == UNAWARE or s == AWARE:
            called[k] = idx[j]
            rows[k] = j
            k += 1
    called, rows = called[:k], rows[:k]
    woken = np.empty(k, dtype=np.int64)
    w = 0
    for q in range(k):
        if stage[called[q]] == UNAWARE:
            woken[w] = called[q]
            w += 1
    move(woken[:w], AWARE, day, stage, stage_day, flows, segment, known_by_seg)
    tr = trust_now(called, day, trust, trust_day, fade)
    hits = np.empty(k, dtype=np.int64)
    h = 0
    for q in range(k):
        i = called[q]
        chance = np.float32(success) * (_F32_HALF + fit[i]) * (0.2 + tr[q]) * skill
        if in_market_until[i] > day and u[rows[q], 2] < chance:
            hits[h] = i
            h += 1
    return _leads(hits[:h], True, day, 0.0, SRC_OUTBOUND, fade, state)



@njit(cache=True)
def release(idx, recycling, day, luck_seed, lead_count, owner, stage, stage_day, flows, segment,
            known_by_seg):
    """Leads or deals that end without a win lose their owner and go back to nurture (aware)
    with chance `recycling` (the lead's own luck), else dormant. Returns the dormant."""
    luck = lead_luck(idx, lead_count, luck_seed)
    back = idx[luck < recycling]
    rest = idx[~(luck < recycling)]
    for i in idx:
        owner[i] = -1
    move(back, AWARE, day, stage, stage_day, flows, segment, known_by_seg)
    move(rest, DORMANT, day, stage, stage_day, flows, segment, known_by_seg)
    return rest


@njit(cache=True)
def expiring(idx, queued_day, day, patience, sla, lead_day, in_market_until):
    """Of waiting leads `idx`: those gone cold (waited past `patience`, or their buying window
    closed since they asked), and, with an SLA (> 0), those past it since `queued_day`."""
    n = idx.shape[0]
    cold = np.empty(n, dtype=np.bool_)
    late = np.zeros(n, dtype=np.bool_)
    for j in range(n):
        i = idx[j]
        end = in_market_until[i]
        cold[j] = (day - lead_day[i] > patience) or (end > lead_day[i] and end <= day)
        if sla > 0 and not cold[j]:
            late[j] = day - queued_day[j] > sla
    return cold, late


def warm() -> float:
    """Compile every kernel into numba's on-disk cache (a tiny run of each shipped network
    kind); returns the seconds it took. `python -m gtmsim.kernels` calls it."""
    import time

    from gtmsim import load_scenario, simulate

    start = time.perf_counter()
    for kind in ("full", "clustered", "small_world"):
        simulate(load_scenario("hire_and_cut", {"market.prospects": 500,
                                                "market.network.kind": kind}), months=2)
    return time.perf_counter() - start


if __name__ == "__main__":
    print(f"gtmsim: model kernels compiled and cached in {warm():.1f} s")
