"""Sales: the lead desk (definition, hand-off, queue, decay, SLA, routing) and rep agents.

Sales is targeted, fast and capacity-limited: a rep has finite touches a day and a
finite number of open deals. Leads wait in a queue; their chance to qualify falls
steeply with waiting time, and they go cold when their buying window closes or their
patience runs out.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import mesa
import numpy as np

from gtmsim import kernels
from gtmsim.prospects import (
    CUSTOMER,
    OPPORTUNITY,
    SRC_INBOUND,
    SRC_MARKETING,
    SRC_OUTBOUND,
    SRC_REFERRAL,
    SOURCES,
    unique_ids,
)
from gtmsim.scenario import Sales

if TYPE_CHECKING:
    from gtmsim.model import GTMModel

# Purposes of `Prospects.lead_luck`.
QUALIFYING, WINNING, RECYCLING, ARRIVAL, CONTACT, PICKUP = range(6)
HOURS_PER_DAY = 24
# ASSUMPTION: two in three leads arrive in working hours, the rest spread over the evening,
# night and early morning (web forms and demo requests follow the working day).
WORKING_HOURS_SHARE = 0.65
# Hand-raisers: prospects who asked (in-market inbound, a marketing hand-raise, a referral).
# Captured leads (gated content of prospects not asking) and a rep's own booked meetings
# have no hot interest to lose.
HAND_RAISERS = (SRC_INBOUND, SRC_MARKETING, SRC_REFERRAL)
# Indexed by source code: a lookup is much cheaper than np.isin on a day's few leads.
_HAND_RAISER = np.isin(np.arange(len(SOURCES)), HAND_RAISERS)
# ASSUMPTION: win odds move with fit and with trust carried into the deal (logit slopes 2 and 2),
# with rep skill (odds × skill) and with enablement (odds × (1 + ENABLEMENT_UPLIFT·enablement)).
FIT_SLOPE = 2.0
TRUST_SLOPE = 2.0
ENABLEMENT_UPLIFT = 0.6
# ASSUMPTION: messages that differ between marketing and sales lose up to half of the trust
# marketing built by the time the deal is decided.
INCONSISTENCY_TRUST_LOSS = 0.5


def first_contact(wait_hours: np.ndarray, hot_minutes: float, lasting: float,
                  decay_hours: float, power: float) -> np.ndarray:
    """Relative chance a hand-raiser's first response reaches a decision maker after
    `wait_hours` (1 at once): hot interest lost within minutes, lasting interest over days."""
    # ASSUMPTION: the chance falls steeply in the first hour and flattens after (Oldroyd,
    # McElheran & Elkington, HBR 2011; MIT/InsideSales Lead Response Management study): a
    # hot part, gone with time constant `hot_minutes`, and a lasting part falling as a power
    # law over hours and days. One power law cannot fit both (docs/model.md).
    t = np.asarray(wait_hours, dtype=float)
    hot = np.exp(-t * 60.0 / hot_minutes)
    return (1.0 - lasting) * hot + lasting * np.power(1.0 + t / decay_hours, -power)


def win_probability(
    base_win_rate: np.ndarray,
    fit: np.ndarray,
    trust: np.ndarray,
    skill: np.ndarray,
    enablement: float,
) -> np.ndarray:
    """Chance each deal is won, from segment base rate, fit, trust, skill and enablement."""
    base = np.clip(base_win_rate, 1e-6, 1 - 1e-6)
    logit = (
        np.log(base / (1 - base))
        + FIT_SLOPE * (fit - 0.5)
        + TRUST_SLOPE * (trust - 0.3)
        + np.log(skill)
        + np.log1p(ENABLEMENT_UPLIFT * enablement)
    )
    return 1.0 / (1.0 + np.exp(-logit))


class LeadDesk:
    """Leads from their creation to a rep's first response (or their end).

    Time within a day is in hours: a lead arrives at an hour of its day, reaches the queue
    by an alert (minutes later) or on the next daily or weekly list, and reps answer it in
    their working hours; `respond` knows each response's hour.
    """

    def __init__(self, model: GTMModel):
        self.model = model
        self.pending = np.empty(0, dtype=np.int64)  # created, waiting for hand-off
        self.queue = np.empty(0, dtype=np.int64)  # handed off, waiting for a rep
        self.queued_day = np.empty(0, dtype=np.int32)
        self.ready_hour = np.empty(0, dtype=np.float64)  # when a rep can first see it
        self.closing: dict[int, list[np.ndarray]] = defaultdict(list)
        # Taken by reps today, not yet answered: (rep, leads, the hour of each response).
        self.taken: list[tuple[SalesRep, np.ndarray, np.ndarray]] = []

    @property
    def waiting(self) -> np.ndarray:
        return np.concatenate([self.pending, self.queue])

    def arrival_hour(self, idx: np.ndarray) -> np.ndarray:
        """The hour (since day 0) each prospect's current lead arrived: a fixed function of
        the seed and the lead, so a lead arrives at the same hour in every scenario."""
        p = self.model.prospects
        team = self.model.sales_config
        return kernels.arrival_hour(np.asarray(idx, dtype=np.int64), p.lead_count,
                                    p._luck_seed[ARRIVAL], p.lead_day, float(team.day_start_hour),
                                    float(team.day_hours), WORKING_HOURS_SHARE)

    def day_hours(self) -> tuple[float, float]:
        """Today's working hours, as hours since day 0: (start, end)."""
        team = self.model.sales_config
        start = self.model.day * float(HOURS_PER_DAY) + team.day_start_hour
        return start, start + team.day_hours

    def intake(self, idx: np.ndarray, source: int, *, outbound: bool = False) -> np.ndarray:
        """Prospects who ask or are captured; those meeting the lead definition become leads.

        Outbound leads are a rep's own booked meetings: they skip the lead definition and
        the hand-off, and the caller routes them.
        """
        if len(idx) == 0:
            return idx
        m = self.model
        p = m.prospects
        # Distinct aware prospects, sorted, that meet the lead definition (outbound skips it).
        idx = kernels.make_leads(np.asarray(idx, dtype=np.int64), outbound, m.day,
                                 m.levers.lead_threshold, source, p.stage, p.stage_day, p.flows,
                                 p.segment, p.known_by_seg, p.fit, p.in_market_until, p.trust,
                                 p.trust_day, p.fade, p.lead_day, p.lead_count, p.source,
                                 m.tally.leads_by_seg)
        self.add_leads(((idx, source),), hand_off=not outbound)
        return idx

    def add_leads(self, groups: tuple[tuple[np.ndarray, int], ...], *,
                  hand_off: bool = True) -> None:
        """Leads made today (by `intake` or the kernels: `kernels.touch_day`, …), as
        (prospects, source) groups: logged, and unless they are a rep's own meetings, passed on
        for hand-off in order."""
        m = self.model
        made = [idx for idx, _ in groups if len(idx)]
        if not made:
            return
        for idx, source in groups:
            if len(idx):
                m.log.record("leads", day=m.day, prospect=idx, segment=m.prospects.segment[idx],
                             source=source, hour=self.arrival_hour(idx) - m.day * HOURS_PER_DAY)
        if hand_off:
            self.pending = np.concatenate([self.pending, *made])

    def enqueue(self, idx: np.ndarray, ready: np.ndarray, *, front: bool = False,
                days: np.ndarray | None = None) -> None:
        """Leads join the queue, visible to reps from the hours `ready`; `days`: the days
        they were first queued (default today; the SLA counts from them)."""
        if len(idx) == 0:
            return
        if days is None:
            days = np.full(len(idx), self.model.day, dtype=np.int32)
        parts = [(self.queue, self.queued_day, self.ready_hour), (idx, days, ready)]
        if front:
            parts.reverse()
        self.queue = np.concatenate([parts[0][0], parts[1][0]])
        self.queued_day = np.concatenate([parts[0][1], parts[1][1]])
        self.ready_hour = np.concatenate([parts[0][2], parts[1][2]])

    def handoff(self) -> None:
        """Pass pending leads to sales: by an alert as they arrive (`handoff_days` 0), or on
        a list at the start of the working day every `handoff_days` days, holding the leads
        that arrived before that day."""
        m = self.model
        every = int(round(m.levers.handoff_days))
        if not len(self.pending):
            return
        if every <= 0:
            # ASSUMPTION: an alerted rep who is free calls after a delay with median
            # `pickup_minutes`, exponentially distributed.
            pickup = m.sales_config.pickup_minutes / 60.0
            u = m.prospects.lead_luck(self.pending, PICKUP)
            ready = self.arrival_hour(self.pending) + pickup * np.log2(1.0 / (1.0 - u))
            self.enqueue(self.pending, ready)
            self.pending = np.empty(0, dtype=np.int64)
        elif m.day % every == 0:
            listed = m.prospects.lead_day[self.pending] < m.day
            start, _ = self.day_hours()
            self.enqueue(self.pending[listed], np.full(int(listed.sum()), start))
            self.pending = self.pending[~listed]

    def expire(self) -> None:
        """Leads go cold while waiting; with an SLA, unworked leads go back to marketing."""
        m = self.model
        p = m.prospects
        day = m.day
        # ASSUMPTION: a waiting lead goes cold when its buying window closes (it bought
        # elsewhere) or when it has waited longer than `lead_patience_days`.
        for which in ("pending", "queue"):
            idx = getattr(self, which)
            if len(idx) == 0:
                continue
            sla = float(m.levers.sla_days) if which == "queue" else 0.0
            cold, late = kernels.expiring(idx, self.queued_day, day,
                                          float(m.config.market.lead_patience_days), sla,
                                          p.lead_day, p.in_market_until)
            if not (cold.any() or late.any()):  # the usual day: nothing to release or drop
                continue
            if sla > 0:
                m.release(idx[late], "dropped", worked=False)
            m.release(idx[cold], "decayed", worked=False)
            self._keep(which, ~(cold | late))

    def _keep(self, which: str, mask: np.ndarray) -> None:
        setattr(self, which, getattr(self, which)[mask])
        if which == "queue":
            self.queued_day = self.queued_day[mask]
            self.ready_hour = self.ready_hour[mask]

    def order(self) -> None:
        """Put the queue in the order reps will take leads, by the routing lever."""
        if len(self.queue) < 2:
            return
        p = self.model.prospects
        routing = self.model.levers.routing
        if routing == "cherry_pick":
            key = -(p.deal_value[self.queue] * p.fit[self.queue])  # reps take the juiciest first
        elif routing == "newest_first":
            key = -self.arrival_hour(self.queue)  # speed to lead while it is hot
        else:
            key = self.arrival_hour(self.queue)
        if (key[1:] >= key[:-1]).all():  # already in order (the stable sort would keep it)
            return
        order = np.argsort(key, kind="stable")
        self._keep("queue", order)

    def take(self, n: int, start: float, end: float,
             per_lead: float) -> tuple[np.ndarray, np.ndarray]:
        """A rep's leads today: the first `n` queued leads (in routing order) visible before
        the hour `end`, answered one after another in the order they became visible,
        `per_lead` hours each, from `start` at the earliest. Returns the leads reached before
        `end` and the hour of each response; they leave the queue, and those not reached go
        back to its front."""
        if n <= 0 or not len(self.queue):
            return self.queue[:0], self.ready_hour[:0]
        leads, at, self.queue, self.ready_hour, self.queued_day = kernels.take_leads(
            self.queue, self.ready_hour, self.queued_day, n, start, end, per_lead)
        return leads, at

    def respond(self) -> None:
        """First responses to the leads reps took today: a conversation with a decision
        maker or not, then a deal or a drop."""
        if not self.taken:
            return
        m = self.model
        p = m.prospects
        mk = m.config.market
        day = m.day
        reps = [rep for rep, _, _ in self.taken]
        counts = [len(leads) for _, leads, _ in self.taken]
        idx = np.concatenate([leads for _, leads, _ in self.taken])
        hours = np.concatenate([at for _, _, at in self.taken])
        self.taken = []
        rep_id = np.repeat([rep.unique_id for rep in reps], counts)
        skill = np.repeat([rep.skill for rep in reps], counts)
        team = m.sales_config
        waited, waited_hours, in_market, hand_raiser = kernels.response_waits(
            idx, hours, day, p.lead_day, p.in_market_until, p.source, _HAND_RAISER, p.lead_count,
            p._luck_seed[ARRIVAL], float(team.day_start_hour), float(team.day_hours),
            WORKING_HOURS_SHARE)
        m.tally.response_days.extend(waited.tolist())
        m.tally.response_hours.extend(waited_hours.tolist())
        # A hand-raiser's first contact depends on how long it waited (`first_contact`); a
        # captured lead or a booked meeting has no hot interest to lose.
        contact = mk.contact_rate * np.where(
            hand_raiser, first_contact(waited_hours, mk.response_hot_minutes,
                                       mk.response_lasting, mk.response_decay_hours,
                                       mk.response_decay_power), 1.0)
        # ASSUMPTION: qualification scales with fit (0.5 + fit) and rep skill; a lead the first
        # response missed qualifies only if follow-ups reach it (`follow_up_reach`, halved by
        # every `follow_up_half_life_days` it waited), with the same chance once reached: the
        # hot interest is gone, the need is not.
        follow_up = team.follow_up_reach * np.exp2(-waited_hours / HOURS_PER_DAY
                                                   / team.follow_up_half_life_days)
        reached, chance, ok = kernels.qualify(
            idx, contact, follow_up, in_market, skill, float(mk.qualify_rate),
            float(mk.unready_qualify), p.fit, p.lead_count, p._luck_seed[CONTACT],
            p._luck_seed[QUALIFYING])
        m.log.record("responses", day=day, prospect=idx, segment=p.segment[idx], waited_days=waited,
                     waited_hours=waited_hours, source=p.source[idx], in_market=in_market,
                     reached=reached, qualified=ok, chance=np.minimum(chance, 1.0), rep=rep_id)
        self.open_deals(idx[ok], rep_id[ok])
        m.release(idx[~ok], "dropped", worked=True)

    def open_deals(self, idx: np.ndarray, rep_id: np.ndarray) -> None:
        """Leads become opportunities owned by the reps `rep_id` (one per lead)."""
        if len(idx) == 0:
            return
        m = self.model
        p = m.prospects
        p.move(idx, OPPORTUNITY, m.day)
        p.owner[idx] = rep_id
        owners = [m.rep_by_id[r] for r in rep_id.tolist()]
        for rep in owners:
            rep.open_deals += 1
        # Trust carried into the deal: inconsistent messaging loses part of it.
        carried = 1 - INCONSISTENCY_TRUST_LOSS * (1 - m.levers.message_consistency)
        p.trust[idx] = (p.trust_now(idx, m.day) * carried).astype(np.float32)
        p.trust_day[idx] = m.day
        speed = np.array([rep.speed for rep in owners])
        close = m.day + np.maximum(1, np.round(p.cycle_days[idx] / speed)).astype(np.int64)
        if len(idx) == 1:
            self.closing[int(close[0])].append(idx)
            return
        for d in unique_ids(close).tolist():
            self.closing[d].append(idx[close == d])

    def close_deals(self) -> None:
        """Decide the deals whose cycle ends today."""
        m = self.model
        p = m.prospects
        parts = self.closing.pop(m.day, [])
        if not parts:
            return
        idx = np.concatenate(parts)
        idx = idx[p.stage[idx] == OPPORTUNITY]
        if len(idx) == 0:
            return
        owners = p.owner[idx]
        skill = np.array([m.rep_by_id[o].skill if o in m.rep_by_id else 1.0 for o in owners.tolist()])
        # ASSUMPTION: trust does not fade during an open deal: the rep is in touch throughout.
        trust = p.trust[idx]
        chance = win_probability(
            p.base_win_rate[p.segment[idx]], p.fit[idx], trust, skill, m.levers.enablement
        )
        won = p.lead_luck(idx, WINNING) < chance
        m.log.record("deals", day=m.day, prospect=idx, segment=p.segment[idx],
                     opened_day=p.stage_day[idx], won=won, value=p.deal_value[idx], rep=owners,
                     trust=trust, win_chance=chance)
        for o in owners.tolist():
            rep = m.rep_by_id.get(o)
            if rep is not None:
                rep.open_deals -= 1
        wins = idx[won]
        p.move(wins, CUSTOMER, m.day)
        p.owner[wins] = -1
        p.trust[wins] = 1.0
        p.trust_day[wins] = m.day
        m.tally.add_wins(p.segment[wins], p.deal_value[wins])
        m.release(idx[~won], "lost", worked=True)


class SalesRep(mesa.Agent):
    """A rep: finite touches a day, finite open deals, skill, ramp-up after hiring."""

    def __init__(self, model: GTMModel, config: Sales, hire_day: int, skill: float):
        super().__init__(model)
        self.config = config
        self.hire_day = hire_day
        self.skill = skill
        # ASSUMPTION: skilled reps also close a little faster (cycle / sqrt(skill)).
        self.speed = float(np.sqrt(skill))
        self.open_deals = 0
        self.credit = 0.0
        self.outbound_credit = 0.0
        self.responses = 0
        self._focus_for: Sales | None = None  # the config `_focus_cdf` was made for
        self._focus_cdf: np.ndarray | None = None

    def ramp(self, day: int) -> float:
        """Share of full productivity: linear from hiring to `ramp_months` later."""
        # ASSUMPTION: linear ramp over ~5 months (the median AE ramp in The Bridge Group's
        # SaaS AE Metrics reports).
        ramp_days = self.config.ramp_months * 30
        if ramp_days <= 0:
            return 1.0
        return min(1.0, max(0.05, (day - self.hire_day) / ramp_days))

    def step(self) -> None:
        """Take leads from the queue as time and open-deal slots allow; the desk answers
        them once every rep has taken its share (`LeadDesk.respond`)."""
        m = self.model
        cfg = self.config
        budget = cfg.touches_per_day * self.ramp(m.day) * (1 - m.levers.coordination)
        free = max(0.0, budget - self.open_deals * cfg.deal_touches_per_day)
        inbound = free * (1 - cfg.outbound_share)
        # Time cannot be banked: what is left over carries at most one lead's worth into tomorrow.
        self.credit = min(self.credit + inbound, inbound + cfg.touches_per_lead)
        self.outbound_credit = min(self.outbound_credit + free * cfg.outbound_share, 7 * budget)
        if m.levers.sla_days > 0 and len(m.desk.queue):
            # An SLA puts waiting inbound leads before prospecting: outbound time answers them.
            self.credit += self.outbound_credit
            self.outbound_credit = 0.0
        if not len(m.desk.queue):  # nothing to take (`LeadDesk.take` would return none)
            return
        slots = cfg.deal_capacity - self.open_deals
        start, end = m.desk.day_hours()
        # The rep answers in the order leads became visible, one after another through the
        # working day; a lead it cannot reach before the day ends goes back to the queue.
        per_lead = cfg.day_hours * cfg.touches_per_lead / max(budget, cfg.touches_per_lead)
        leads, at = m.desk.take(int(min(int(self.credit / cfg.touches_per_lead), slots)), start,
                                end, per_lead)
        if len(leads):
            self.credit -= len(leads) * cfg.touches_per_lead
            self.responses += len(leads)
            m.desk.taken.append((self, leads, at))

    def prospect_day(self) -> None:
        """On the rep's weekly prospecting day, the accrued outbound time goes on cold touches."""
        # ASSUMPTION: reps prospect in a weekly block (one day a week, staggered by rep);
        # the time for it accrues daily.
        if (self.model.day + self.unique_id) % 7 == 0 and self.outbound_credit >= 1:
            calls = int(self.outbound_credit)
            self.outbound_credit -= calls
            self.prospect(calls)

    def prospect(self, calls: int) -> None:
        """Outbound: cold touches on prospects in the team's focus segments."""
        m = self.model
        p = m.prospects
        if self._focus_for is not self.config:  # the team's focus, as a segment distribution
            names = self.config.segments
            focus = np.array([not names or n in names for n in p.segment_names])
            self._focus_cdf, self._focus_for = p.segment_cdf(p.seg_size * focus), self.config
        u = m.streams["outbound"].random((calls, 3))  # segment, who, conversion
        if self._focus_cdf is None:
            return
        # ASSUMPTION: a cold call converts only a prospect in market, and poorly without trust.
        leads = kernels.cold_calls(u, self._focus_cdf, self.config.outbound_success, self.skill,
                                   m.day, p.seg_size, p._by_segment, p._seg_start, p.fade,
                                   p.state(m.tally.leads_by_seg))
        if len(leads) == 0:
            return
        m.desk.add_leads(((leads, SRC_OUTBOUND),), hand_off=False)
        slots = max(0, self.config.deal_capacity - self.open_deals)
        m.desk.open_deals(leads[:slots], np.full(min(slots, len(leads)), self.unique_id))
        if len(leads) > slots:
            start, _ = m.desk.day_hours()
            m.desk.enqueue(leads[slots:], np.full(len(leads) - slots, start), front=True)
