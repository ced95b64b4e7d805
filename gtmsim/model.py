"""GTMModel: the Mesa model wiring prospects, marketing programs and sales reps.

Time advances in days; a month is 30 days; results are one row per month. One seed
drives everything: the model's `rng` is split into independent named streams
(market, marketing per program, word of mouth, inbound, team, outbound), restarted
daily, so two scenarios run on the same seed share their market and their random
numbers and differ only where their levers do.
"""

from __future__ import annotations

import heapq
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mesa
import numpy as np
import pandas as pd

from gtmsim import kernels
from gtmsim.alignment import Levers
from gtmsim.founder import programs_in_force, sales_in_force
from gtmsim.marketing import DAYS_PER_MONTH, MarketingProgram, fit_keep, touch
from gtmsim.metrics import COLUMNS
from gtmsim.prospects import (
    AWARE,
    CUSTOMER,
    DORMANT,
    LEAD,
    NETWORK_KINDS,
    OPPORTUNITY,
    SOURCES,
    SRC_INBOUND,
    SRC_REFERRAL,
    STAGES,
    UNAWARE,
    Prospects,
    ProspectView,
    draw_counts,
)
from gtmsim.sales import RECYCLING, LeadDesk, SalesRep
from gtmsim.scenario import Scenario, flatten_changes, with_changes

STREAMS = ("market", "marketing", "wom", "inbound", "team", "outbound")
# Distance between two days' starting points in a stream's PCG64 sequence: the golden
# ratio × 2^128, as numpy's `PCG64.jumped` uses (a power of two would give days states
# that share their low bits, a known weakness of jumping an LCG by 2^k).
DAY_JUMP = 0x9E3779B97F4A7C15F39CC0605CEDC835
# Feedback looks back a year: enterprise deals take months, so a shorter window sees too few.
FEEDBACK_MONTHS = 12


_MASK64, _MASK128 = 2**64 - 1, 2**128 - 1


def _pcg64_words(bits: np.random.PCG64) -> tuple[np.ndarray, np.ndarray] | None:
    """Views of a PCG64's LCG state (two uint64 words) and its buffered-uint32 flag, so that
    the state can be set without the `state` property's dictionary (a few µs a call).

    The layout is NumPy's C struct; it is checked here by setting a test state through the
    `state` property and reading it back through the views (nothing is written through them
    before the check), and None (use the property) is returned if it does not match.
    """
    import ctypes

    try:
        address = bits.ctypes.state_address
        inner = ctypes.c_void_p.from_address(address).value
        words = np.ctypeslib.as_array((ctypes.c_uint64 * 2).from_address(inner))
        flags = np.ctypeslib.as_array((ctypes.c_uint32 * 2).from_address(address + 8))
    except (AttributeError, TypeError, ValueError):
        return None
    saved = bits.state
    probe = 0x0123456789ABCDEF_FEDCBA9876543210
    bits.state = {**saved, "state": {"state": probe, "inc": saved["state"]["inc"]},
                  "has_uint32": 1, "uinteger": 0xDEADBEEF}
    fits = (int(words[0]) == probe & _MASK64 and int(words[1]) == probe >> 64
            and int(flags[0]) == 1 and int(flags[1]) == 0xDEADBEEF)  # read only: nothing written
    bits.state = saved
    return (words, flags) if fits else None


class DayStarts:
    """Puts a PCG64 stream at the start of a day of its sequence: point (day + 1) × `DAY_JUMP`
    from where it was spawned (see `GTMModel._restart_streams`).

    The day's starting state follows the last one by an affine step (the LCG advanced by
    `DAY_JUMP`: s' = a·s + c mod 2^128, constants found by advancing 0 and 1), so a restart
    is two integer operations and a write of the state.
    """

    def __init__(self, bits: np.random.PCG64):
        self.bits = bits
        self.start = bits.state
        self.words = _pcg64_words(bits)
        inc = self.start["state"]["inc"]
        probe = np.random.PCG64()
        ends = []
        for s0 in (0, 1):
            probe.state = {"bit_generator": "PCG64", "state": {"state": s0, "inc": inc},
                           "has_uint32": 0, "uinteger": 0}
            probe.advance(DAY_JUMP)
            ends.append(probe.state["state"]["state"])
        self.c = ends[0]
        self.a = (ends[1] - ends[0]) & _MASK128
        self.day: int | None = None  # the day of the state in `next`
        self.next = 0

    def __getstate__(self) -> dict[str, Any]:
        # The views point into this process's copy of the generator: a copy (a forked model,
        # a pickle) makes its own from its own generator.
        return {k: v for k, v in self.__dict__.items() if k != "words"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.words = _pcg64_words(self.bits)

    def restart(self, day: int) -> None:
        if day != self.day:  # the first restart, or days skipped: jump from the spawn point
            self.bits.state = self.start
            self.bits.advance((day + 1) * DAY_JUMP % 2**128)
            self.next = self.bits.state["state"]["state"]
        elif self.words is None:
            state = dict(self.start)
            state["state"] = {"state": self.next, "inc": self.start["state"]["inc"]}
            self.bits.state = state
        else:
            words, flags = self.words
            words[0], words[1] = self.next & _MASK64, self.next >> 64
            flags[0] = flags[1] = 0  # no buffered 32-bit half
        self.next = (self.a * self.next + self.c) & _MASK128
        self.day = day + 1


class EventLog:
    """Per-lead and per-deal records (leads are few, so this stays small at any market size).

    `frame("leads")`: each lead created (day, hour of its arrival, prospect, segment, source);
    `frame("responses")`: each first response (waited_days, waited_hours, source, in_market,
    reached: a conversation with a decision maker, qualified, chance: of qualifying, rep);
    `frame("deals")`: each deal decided (opened_day, day closed, won, value, rep).
    """

    def __init__(self, segment_names: tuple[str, ...]):
        self.segment_names = segment_names
        self._parts: dict[str, list[dict[str, np.ndarray]]] = {"leads": [], "responses": [], "deals": []}

    def record(self, kind: str, **columns: Any) -> None:
        """Columns are arrays of one length or scalars for all rows; arrays are kept as given,
        so callers pass arrays they will not change."""
        if len(columns["prospect"]):
            self._parts[kind].append(columns)

    def __deepcopy__(self, memo: dict[int, Any]) -> EventLog:
        # Records are never changed once made, so a copy of the model (`run_branches`) shares
        # them and only gets lists of its own: most of the cost of copying a model was
        # copying the thousands of small arrays of its log.
        twin = EventLog(self.segment_names)
        twin._parts = {kind: list(parts) for kind, parts in self._parts.items()}
        memo[id(self)] = twin
        return twin

    def frame(self, kind: str) -> pd.DataFrame:
        parts = self._parts[kind]
        if not parts:
            return pd.DataFrame()
        lengths = [len(p["prospect"]) for p in parts]
        df = pd.DataFrame({
            k: np.concatenate([np.full(n, p[k]) if np.ndim(p[k]) == 0 else np.asarray(p[k])
                               for p, n in zip(parts, lengths)])
            for k in parts[0]
        })
        df["segment"] = pd.Categorical.from_codes(df["segment"], categories=list(self.segment_names))
        if "source" in df:
            df["source"] = [SOURCES[s] for s in df["source"]]
        return df


class Tally:
    """What happened this month (flows that the stage counts alone cannot tell)."""

    def __init__(self, n_segments: int):
        self.n_segments = n_segments
        self.history: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=FEEDBACK_MONTHS)
        self.reset()

    def reset(self) -> None:
        self.leads_by_seg = np.zeros(self.n_segments)
        self.bookings_by_seg = np.zeros(self.n_segments)
        self.bookings = 0.0
        self.losses = 0
        self.decayed = 0
        self.dropped = 0
        self.unworked = 0
        self.churned = 0
        self.response_days: list[int] = []
        self.response_hours: list[float] = []
        self.capacity_used = 0.0
        self.capacity_days = 0
        self.marketing_spend = 0.0
        self.sales_cost = 0.0
        self.alignment_cost = 0.0

    def close_month(self) -> None:
        self.history.append((self.leads_by_seg.copy(), self.bookings_by_seg.copy()))
        self.reset()

    def add_wins(self, segments: np.ndarray, values: np.ndarray) -> None:
        self.bookings_by_seg += np.bincount(segments, weights=values, minlength=self.n_segments)
        self.bookings += float(values.sum())


class GTMModel(mesa.Model):
    """The go-to-market model.

    Args:
        scenario: a validated `Scenario` (see `load_scenario`).
        seed: overrides the scenario's seed.

    Attributes:
        config: the scenario in force (timeline changes replace it month by month).
        levers: the resolved alignment levers in force.
        prospects: the prospect population (structure of arrays).
        desk: the lead desk (hand-off, queue, deals in flight).
        day: days simulated so far.
    """

    def __init__(self, scenario: Scenario, *, seed: int | None = None):
        self.seed = int(scenario.seed if seed is None else seed)
        super().__init__(rng=self.seed)
        # Mesa's own `scenario` attribute is reserved; ours is `config`.
        self.config = scenario
        self.levers: Levers = scenario.levers
        self.day = 0
        self._root_entropy = self.rng.bit_generator.seed_seq.entropy
        self._stream_starts: dict[tuple[int, ...], DayStarts] = {}
        self.streams = {name: self._new_stream((i,)) for i, name in enumerate(STREAMS)}
        market_rng = self.streams["market"]
        self.prospects = Prospects(scenario.market, market_rng, int(market_rng.integers(2**62)))
        self.tally = Tally(len(scenario.market.segments))
        self.log = EventLog(self.prospects.segment_names)
        self.desk = LeadDesk(self)
        self.rep_by_id: dict[int, SalesRep] = {}
        self.programs: dict[str, MarketingProgram] = {}
        self._sync_programs()
        self._sync_reps(hire_day=-10**6)  # the team at the start is fully ramped
        self.rows: list[dict[str, Any]] = []
        self.day_touches: list[tuple[MarketingProgram, np.ndarray, np.ndarray]] = []
        self.fit_keep: np.ndarray | None = None  # see `marketing.fit_keep`
        self._fit_keep_for = 0.0
        # flows[a, b] per month: prospects moved from stage a to stage b (STAGES order).
        self.flow_history: list[np.ndarray] = []
        self.cumulative_bookings = 0.0

    # ---------------------------------------------------------------- agents

    @property
    def marketing(self) -> mesa.agent.AgentSet:
        return self._agents_of(MarketingProgram)

    @property
    def reps(self) -> mesa.agent.AgentSet:
        return self._agents_of(SalesRep)

    def _agents_of(self, kind: type) -> mesa.agent.AgentSet:
        # Called a few times a day: an empty set only when there are none (building one
        # for every call was a measurable part of a small market's day).
        found = self.agents_by_type.get(kind)
        return found if found is not None else mesa.agent.AgentSet([], random=self.random)

    def _new_stream(self, key: tuple[int, ...]) -> np.random.Generator:
        """A random stream of its own, spawned from the seed by `key`; see `_restart_streams`."""
        bits = np.random.PCG64(np.random.SeedSequence(self._root_entropy, spawn_key=key))
        self._stream_starts[key] = DayStarts(bits)
        return np.random.Generator(bits)

    def _restart_streams(self) -> None:
        """Every stream starts the day at its own point of its sequence (PCG64 jump-ahead).

        Scenarios on one seed draw the same numbers for the same purpose on the same day,
        even after their funnels have made them draw different amounts on earlier days:
        common random numbers hold day by day rather than until the first difference.
        """
        for stream in self._stream_starts.values():
            stream.restart(self.day)

    def _program_rng(self, name: str) -> np.random.Generator:
        return self._new_stream((STREAMS.index("marketing"), zlib.crc32(name.encode())))

    def _sync_programs(self) -> None:
        wanted = programs_in_force(self.config)  # a founder's hours scale the founder's programs
        for name in list(self.programs):
            if name not in wanted:
                self.programs.pop(name).remove()
        for name, cfg in wanted.items():
            if name in self.programs:
                self.programs[name].config = cfg
            else:
                self.programs[name] = MarketingProgram(self, name, cfg, self._program_rng(name))

    def _sync_reps(self, hire_day: int) -> None:
        cfg = self.sales_config = sales_in_force(self.config)  # a founder is a team of one
        team = sorted(self.rep_by_id.values(), key=lambda r: r.unique_id)
        for rep in team:
            rep.config = cfg
        rng = self.streams["team"]
        while len(self.rep_by_id) < cfg.reps:
            sigma = cfg.skill_spread
            # ASSUMPTION: rep skill is log-normal with mean 1 (a multiplier on odds and qualification).
            skill = float(np.exp(rng.normal(-sigma**2 / 2, sigma)))
            rep = SalesRep(self, cfg, hire_day, skill)
            self.rep_by_id[rep.unique_id] = rep
        leaving = team[cfg.reps:][::-1] if len(team) > cfg.reps else []
        for rep in leaving:
            self._remove_rep(rep)

    def _remove_rep(self, rep: SalesRep) -> None:
        """A rep leaves; the open deals pass round-robin to the others, or are lost."""
        del self.rep_by_id[rep.unique_id]
        rep.remove()
        p = self.prospects
        deals = np.flatnonzero((p.owner == rep.unique_id) & (p.stage == OPPORTUNITY))
        others = sorted(self.rep_by_id.values(), key=lambda r: r.open_deals)
        if not others:
            self.release(deals, "lost", worked=True)
            return
        for i, d in enumerate(deals.tolist()):
            heir = others[i % len(others)]
            p.owner[d] = heir.unique_id
            heir.open_deals += 1

    # ---------------------------------------------------------------- prospects

    def prospect(self, i: int) -> ProspectView:
        """A read-only view of prospect `i`."""
        return ProspectView.of(self.prospects, i, self.day)

    def ids(self, stage: str) -> np.ndarray:
        """Ids of the prospects now at `stage` ("unaware", "aware", "lead", …)."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
        return np.flatnonzero(self.prospects.stage == STAGES.index(stage))

    def _feedback_weights(self, feedback: float) -> np.ndarray:
        """Multipliers on segment targeting from closed-loop feedback (1 = no change)."""
        n = len(self.prospects.seg_size)
        if feedback <= 0 or not self.tally.history:
            return np.ones(n)
        leads = sum(h[0] for h in self.tally.history)
        bookings = sum(h[1] for h in self.tally.history)
        # Bookings per lead by segment, shrunk towards the overall rate (10 pseudo-leads).
        overall = bookings.sum() / max(leads.sum(), 1.0)
        if overall <= 0:
            return np.ones(n)
        per_lead = (bookings + 10 * overall) / (leads + 10)
        return (1 - feedback) + feedback * per_lead / overall

    def release(self, idx: np.ndarray, reason: str, *, worked: bool) -> None:
        """Leads or deals that end without a win: back to nurture or dormant (recycling lever)."""
        if len(idx) == 0:
            return
        t = self.tally
        if reason == "lost":
            t.losses += len(idx)
        elif reason == "decayed":
            t.decayed += len(idx)
        else:
            t.dropped += len(idx)
        if not worked:
            t.unworked += len(idx)
        p = self.prospects
        dormant = kernels.release(np.asarray(idx, dtype=np.int64), self.levers.recycling,
                                  self.day, p._luck_seed[RECYCLING], p.lead_count, p.owner,
                                  p.stage, p.stage_day, p.flows, p.segment, p.known_by_seg)
        p.asleep(dormant, self.day)

    def _market_day(self) -> None:
        """Buying windows open, word of mouth spreads, dormant prospects return."""
        p = self.prospects
        mk = self.config.market
        # ASSUMPTION: buying windows open at a constant rate so that about `in_market_share`
        # of the market is buying at any time (95:5 rule, Ehrenberg-Bass), lasting 0.5–1.5×
        # `buying_window_days`. Per window: who, its length, the prospect's ask.
        u_windows = self.streams["inbound"].random((self._window_count, 3))
        # Talks are a Poisson process per spreader, drawn by thinning: aware, leads and deals
        # talk at rate q, customers at q × referral_weight. Candidate speakers come from the
        # whole market (the unaware and dormant do not talk), so scenarios on one seed hear
        # the same talks wherever their states agree. Per talk: speaker, thinning, three for
        # the contact, the listener's ask as newly aware and as referred.
        # ASSUMPTION: a talk always makes an unaware listener aware (Bass imitation, q per month)
        # and passes on a share of the speaker's trust (customers count as fully trusting).
        talk_on = mk.word_of_mouth > 0 and p.n_known > 0
        u_talks = self.streams["wom"].random((self._talk_count if talk_on else 0, 7))
        net = mk.network
        opened, heard, referred = kernels.market_day(
            u_windows, u_talks, p.n, self.day, mk.buying_window_days, mk.inbound_propensity,
            self.levers.lead_threshold, talk_on, mk.referral_weight, max(1.0, mk.referral_weight),
            mk.referral_trust, (NETWORK_KINDS.index(net.kind), net.homophily, net.degree, net.rewire),
            p._network_seed, p.seg_size, p._by_segment, p._seg_start, p.fade,
            p.state(self.tally.leads_by_seg))
        self.desk.add_leads(((opened, SRC_INBOUND), (heard, SRC_INBOUND), (referred, SRC_REFERRAL)))
        p.wake(self.day)

    # ---------------------------------------------------------------- time

    def step(self) -> None:
        """One day."""
        self.prospects.fade_through(self.day)
        self._restart_streams()
        if self.day % DAYS_PER_MONTH == 0:
            self._start_month()
        self._draw_counts()
        self.day_touches = []
        self.marketing.do("step")  # programs choose whom to touch (order does not matter)
        touch(self, self.day_touches)  # the day's touches reach the market together
        self._market_day()  # buying windows, word of mouth, dormant prospects return
        self.desk.expire()  # leads go cold or pass their SLA
        self.desk.handoff()  # marketing passes leads on
        self.desk.close_deals()  # deals at the end of their cycle are won or lost
        self.desk.order()  # routing decides which lead is next
        self.reps.shuffle_do("step")  # reps take leads as their time and deal slots allow
        self.desk.respond()  # first responses: leads qualify into deals or are dropped
        self.reps.do("prospect_day")  # reps on their weekly outbound day prospect
        self._observe_day()
        if self.day % DAYS_PER_MONTH == DAYS_PER_MONTH - 1:
            self._end_month()
        self.day += 1

    def _draw_counts(self) -> None:
        """Today's Poisson counts: each program's touches, buying windows opening, candidate
        talks. Each is the first number of its stream today, so they are drawn together."""
        mk = self.config.market
        n = self.prospects.n
        progs = list(self.programs.values())
        talk_mean = mk.word_of_mouth / DAYS_PER_MONTH * max(1.0, mk.referral_weight) * n
        counts = draw_counts(
            [prog.stream for prog in progs] + [self.streams["inbound"], self.streams["wom"]],
            [prog.reach_per_day for prog in progs]
            + [n * mk.in_market_share / mk.buying_window_days, talk_mean])
        for prog, k in zip(progs, counts, strict=False):
            prog.today = k
        self._window_count, self._talk_count = counts[-2:]

    @property
    def month(self) -> int:
        """The month being simulated, 1-based."""
        return self.day // DAYS_PER_MONTH + 1

    def _start_month(self) -> None:
        month = self.month
        once = month == 1  # the one-off alignment cost: month 1, or when a timeline sets it
        for change in self.config.timeline:
            if change.month == month:
                self.config = with_changes(self.config, change.set, f"timeline month {month}")
                once = once or "alignment.cost_once" in flatten_changes(change.set)[0]
                self.levers = self.config.levers
                self._sync_programs()
                self._sync_reps(hire_day=self.day)
        # Feedback from the last months' won deals steers this month's targeting.
        f = self.levers.feedback
        self.segment_weights = self._feedback_weights(f)
        if f != self._fit_keep_for:  # per prospect, so computed only when the lever changes
            self.fit_keep, self._fit_keep_for = fit_keep(self.prospects, f), f
        self.tally.marketing_spend += sum(prog.start_month() for prog in self.programs.values())
        cost = self.config.alignment
        self.tally.alignment_cost += cost.cost_monthly + (cost.cost_once if once else 0.0)

    def _observe_day(self) -> None:
        t = self.tally
        cfg = self.sales_config
        n = len(self.rep_by_id)
        if n:
            used = sum(r.open_deals for r in self.rep_by_id.values())
            t.capacity_used += used / (n * cfg.deal_capacity)
            t.capacity_days += 1
        t.sales_cost += n * cfg.cost_per_rep_month / DAYS_PER_MONTH

    def _churn(self) -> None:
        p = self.prospects
        rate = self.config.market.churn_monthly
        if rate <= 0 or p.counts[CUSTOMER] == 0:
            return
        customers = np.flatnonzero(p.stage == CUSTOMER)
        # ASSUMPTION: churned customers return to `aware` with their trust, open to win back.
        gone = customers[self.streams["market"].random(len(customers)) < rate]
        self.tally.churned += len(gone)
        p.move(gone, AWARE, self.day)

    def _end_month(self) -> None:
        self._churn()
        p = self.prospects
        t = self.tally
        flows = p.reset_flows()
        counts = p.counts
        wins = int(flows[OPPORTUNITY, CUSTOMER])
        losses = t.losses
        lead_exits = int(flows[LEAD].sum() - flows[LEAD, LEAD])
        waiting = self.desk.waiting
        self.cumulative_bookings += t.bookings
        cost = t.marketing_spend + t.sales_cost + t.alignment_cost
        row = {
            "month": self.month,
            "unaware": int(counts[UNAWARE]),
            "aware": int(counts[AWARE]),
            "leads": int(counts[LEAD]),
            "opportunities": int(counts[OPPORTUNITY]),
            "customers": int(counts[CUSTOMER]),
            "dormant": int(counts[DORMANT]),
            "in_market": int(np.count_nonzero(p.in_market_until > self.day)),
            "new_aware": int(flows[UNAWARE].sum() - flows[UNAWARE, UNAWARE]),
            "new_leads": int(flows[:, LEAD].sum() - flows[LEAD, LEAD]),
            "new_opportunities": int(flows[:, OPPORTUNITY].sum() - flows[OPPORTUNITY, OPPORTUNITY]),
            "wins": wins,
            "losses": losses,
            "leads_decayed": t.decayed,
            "leads_dropped": t.dropped,
            "leads_unworked": t.unworked,
            "churned": t.churned,
            "bookings": t.bookings,
            "cumulative_bookings": self.cumulative_bookings,
            "lead_response_days_median": (
                float(np.median(t.response_days)) if t.response_days else float("nan")
            ),
            "lead_response_days_p90": (
                float(np.percentile(t.response_days, 90)) if t.response_days else float("nan")
            ),
            "lead_response_hours_median": (
                float(np.median(t.response_hours)) if t.response_hours else float("nan")
            ),
            "queue_wait_days_mean": (
                float(np.mean(self.day - p.lead_day[waiting])) if len(waiting) else float("nan")
            ),
            "win_rate": wins / (wins + losses) if wins + losses else float("nan"),
            "lead_to_opportunity": (
                float(flows[LEAD, OPPORTUNITY]) / lead_exits if lead_exits else float("nan")
            ),
            "rep_utilization": (
                t.capacity_used / t.capacity_days if t.capacity_days else float("nan")
            ),
            "reps": len(self.rep_by_id),
            "marketing_spend": t.marketing_spend,
            "sales_cost": t.sales_cost,
            "alignment_cost": t.alignment_cost,
            "cac": cost / wins if wins else float("nan"),
        }
        self.rows.append(row)
        self.flow_history.append(flows)
        t.close_month()

    def run(self, months: int | None = None, on_month: Callable[[int, int], None] | None = None) -> pd.DataFrame:
        """Simulate `months` (default: the scenario's) and return the monthly table."""
        months = self.config.months if months is None else months
        for _ in range(months * DAYS_PER_MONTH):
            self._next_day()
            if on_month and self.day % DAYS_PER_MONTH == 0:
                on_month(self.month - 1, months)
        return self.monthly()

    def _next_day(self) -> None:
        """One day, as `step()` runs it, by Mesa's clock.

        Mesa's `step()` moves its clock through its event list: each day pops the step
        event, makes the next one (an `Event` with a weak reference to the step) and pushes
        it, about 18 µs a day, as much as a 2,000-prospect market's touches. When the one
        event pending is that next step (nobody scheduled others, as in every gtmsim run),
        the day runs here and the clock is moved where `step()` would have left it: `time`
        and `steps` one on, the step event one day later. Otherwise Mesa steps.
        """
        steps = self._default_schedule
        pending = self._event_list._events
        event = steps._current_event
        if len(pending) != 1 or pending[0] is not event or event.time != self.time + 1:
            self.step()
            return
        self.time = event.time
        self.steps += 1
        try:
            self._user_step()
            steps._execution_count += 1
        finally:
            event.time = self.time + 1
            if len(pending) > 1:  # the day scheduled events of its own: reorder the heap
                heapq.heapify(pending)

    def monthly(self) -> pd.DataFrame:
        """The monthly table so far, columns in the order of `gtmsim.metrics.COLUMNS`."""
        return pd.DataFrame(self.rows, columns=list(COLUMNS))


@dataclass
class RunResult:
    """One run: the monthly table plus what is needed to reproduce it."""

    scenario: Scenario
    seed: int
    months: int
    monthly: pd.DataFrame
    elapsed_s: float
    model: GTMModel | None = field(default=None, repr=False)


def simulate(
    scenario: Scenario,
    *,
    seed: int | None = None,
    months: int | None = None,
    on_month: Callable[[int, int], None] | None = None,
    keep_model: bool = True,
) -> RunResult:
    """Build a `GTMModel` and run it; the one call notebooks and the CLI use.

    Raises:
        ValueError: `scenario` is not a `Scenario`, or `seed` / `months` are not whole
            numbers in range (seed ≥ 0, 1 ≤ months ≤ 600), naming the argument.
    """
    if not isinstance(scenario, Scenario):
        raise ValueError("scenario: expected a Scenario (from load_scenario), "
                         f"got {type(scenario).__name__}")
    for name, value, low, high in (("seed", seed, 0, 2**63 - 1), ("months", months, 1, 600)):
        whole = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
        if value is not None and (not whole or not low <= value <= high):
            raise ValueError(f"{name}: expected a whole number from {low} to {high:,} or None, "
                             f"got {value!r}")
    start = time.perf_counter()
    model = GTMModel(scenario, seed=seed)
    months = scenario.months if months is None else months
    table = model.run(months, on_month=on_month)
    return RunResult(
        scenario=scenario,
        seed=model.seed,
        months=months,
        monthly=table,
        elapsed_s=time.perf_counter() - start,
        model=model if keep_model else None,
    )
