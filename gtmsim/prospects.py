"""The prospect population: a structure of NumPy arrays and its transitions.

Prospects are many (10^4–10^6), so they are held as arrays owned by the model, with
`ProspectView` for inspecting one. Work per day scales with what happens (touches,
talks, buying windows opening), never with the market size: trust decays lazily from
the day of its last update, new awareness arrives as drawn counts of touches and
talks, and dormant prospects wake from a FIFO queue.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.special import pdtrik

from gtmsim import kernels
from gtmsim.kernels import (  # noqa: F401  (stage and source codes are shared with the kernels)
    AWARE,
    CUSTOMER,
    DORMANT,
    LEAD,
    OPPORTUNITY,
    SRC_CAPTURE,
    SRC_INBOUND,
    SRC_MARKETING,
    SRC_OUTBOUND,
    SRC_REFERRAL,
    UNAWARE,
)
from gtmsim.scenario import Market

STAGES = ("unaware", "aware", "lead", "opportunity", "customer", "dormant")
N_STAGES = len(STAGES)

# Lead sources, for inspection and reporting.
SOURCES = ("none", "inbound", "marketing", "referral", "outbound", "capture")
NETWORK_KINDS = ("full", "clustered", "small_world")
DAYS_AHEAD = 24 * 30  # trust fade precomputed this far; it grows as a run goes on

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def draw_count(rng: np.random.Generator, mean: float) -> int:
    """A Poisson count drawn by inverting its distribution at one uniform.

    Unlike `rng.poisson`, it always takes one number from the stream, so streams of two
    scenarios with slightly different means stay in step (common random numbers).
    """
    return draw_counts([rng], [mean])[0]


def draw_counts(rngs: list[np.random.Generator], means: list[float]) -> list[int]:
    """`draw_count` for several streams at once, the next number of each (one inversion call)."""
    u = [rng.random() for rng in rngs]
    if all(m > 0 for m in means):  # the usual day: every stream has a positive mean
        return np.maximum(0, np.ceil(pdtrik(u, means))).astype(np.int64).tolist()
    u = np.array(u)
    m = np.array(means, dtype=np.float64)
    positive = m > 0
    k = np.zeros(len(m), dtype=np.int64)
    k[positive] = np.maximum(0, np.ceil(pdtrik(u[positive], m[positive])))
    return k.tolist()


def run_starts(ids: np.ndarray) -> np.ndarray:
    """For sorted `ids`, a mask of the first element of each run of equal ids."""
    first = np.empty(len(ids), dtype=bool)
    first[:1] = True
    np.not_equal(ids[1:], ids[:-1], out=first[1:])
    return first


def unique_ids(idx: np.ndarray) -> np.ndarray:
    """Sorted distinct ids: `np.unique` for the small arrays of one day, at a fraction of its
    fixed cost (the model calls it thousands of times a run)."""
    s = np.sort(idx)
    return s[run_starts(s)]


def first_of_each(idx: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each distinct id in `idx`, in order."""
    order = np.argsort(idx, kind="stable")
    return np.sort(order[run_starts(idx[order])])


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a fixed pseudo-random function of each integer."""
    x = x.astype(np.uint64) + _M1
    x = (x ^ (x >> np.uint64(30))) * _M2
    x = (x ^ (x >> np.uint64(27))) * _M3
    return x ^ (x >> np.uint64(31))


class Prospects:
    """All prospects of one market, as arrays indexed by prospect id.

    Static traits: `segment`, `fit`, `deal_value`, `cycle_days`. Dynamic state:
    `stage`, `stage_day`, `trust` (value at `trust_day`), `in_market_until`,
    `lead_day`, `source`, `owner`. `flows[a, b]` counts moves from stage a to b since
    the last `reset_flows()`; `counts` are the prospects at each stage now.
    """

    def __init__(self, market: Market, rng: np.random.Generator, network_seed: int):
        self.market = market
        self.segment_names = tuple(market.segments)
        segs = list(market.segments.values())
        n = self.n = market.prospects
        shares = np.array([s.share for s in segs])
        self.segment = rng.choice(len(segs), size=n, p=shares / shares.sum()).astype(np.int16)
        fit_mean = np.array([s.fit_mean for s in segs])[self.segment]
        conc = np.array([s.fit_concentration for s in segs])[self.segment]
        self.fit = rng.beta(fit_mean * conc, (1 - fit_mean) * conc).astype(np.float32)
        sigma = np.array([s.deal_value_spread for s in segs])[self.segment]
        mean_value = np.array([s.deal_value for s in segs])[self.segment]
        # ASSUMPTION: deal values are log-normal around the segment mean (mean preserved).
        self.deal_value = (mean_value * rng.lognormal(-sigma**2 / 2, sigma)).astype(np.float32)
        # ASSUMPTION: cycle lengths vary by deal as Gamma(shape 4) around the segment mean (CV 0.5).
        cycle = np.array([s.cycle_days for s in segs])[self.segment]
        self.cycle_days = (cycle * rng.gamma(4.0, 0.25, size=n)).astype(np.float32)
        self.base_win_rate = np.array([s.base_win_rate for s in segs])
        self.seg_index = [np.flatnonzero(self.segment == k) for k in range(len(segs))]
        self.seg_size = np.array([len(ix) for ix in self.seg_index])
        self.seg_mean_fit = np.array([self.fit[ix].mean() if len(ix) else 0.5 for ix in self.seg_index])
        self._by_segment = np.concatenate(self.seg_index).astype(np.int64)
        self._seg_start = np.concatenate([[0], np.cumsum(self.seg_size)[:-1]]).astype(np.int64)

        self.stage = np.full(n, UNAWARE, dtype=np.int8)
        self.stage_day = np.zeros(n, dtype=np.int32)
        self.trust = np.zeros(n, dtype=np.float32)
        self.trust_day = np.zeros(n, dtype=np.int32)
        self.in_market_until = np.full(n, -1, dtype=np.int32)
        self.lead_day = np.full(n, -1, dtype=np.int32)
        self.lead_count = np.zeros(n, dtype=np.int32)  # times each prospect became a lead
        self.source = np.zeros(n, dtype=np.int8)
        self.owner = np.full(n, -1, dtype=np.int32)
        # Stage counts at the last reset of the flows; `counts` adds the flows since.
        self._counts_at_reset = np.zeros(N_STAGES, dtype=np.int64)
        self._counts_at_reset[UNAWARE] = n
        self.flows = np.zeros((N_STAGES, N_STAGES), dtype=np.int64)
        # Prospects ever aware (a prospect never becomes unaware again), by segment: the
        # audience of "known contacts" programs.
        self.known_by_seg = np.zeros(len(segs), dtype=np.int64)
        # Scratch for the kernels' duplicate checks (see `kernels.first_positions`).
        self.mark = np.zeros(n + 1, dtype=np.int64)
        self._dormant: deque[tuple[int, np.ndarray]] = deque()
        self._network_seed = np.uint64(network_seed)
        self._luck_seed = _mix64(np.arange(1, 7, dtype=np.uint64) * _M3 ^ self._network_seed)
        self._decay = np.log(2) / market.trust_half_life_days
        # fade[a]: the share of trust left after a days without a touch (see `trust_now`).
        self.fade = np.empty(0)
        self.fade_through(DAYS_AHEAD)

        k0 = int(round(market.initial_aware * n))
        if k0:
            first = rng.choice(n, size=k0, replace=False)
            self.move(first, AWARE, 0)
            self.trust[first] = rng.uniform(0, 0.3, size=k0).astype(np.float32)
            self.reset_flows()

    # ---------------------------------------------------------------- state changes

    def move(self, idx: np.ndarray, to: int, day: int) -> None:
        """Move prospects `idx` (unique ids) to stage `to`, counting the flows."""
        if len(idx):
            kernels.move(np.asarray(idx, dtype=np.int64), to, day, self.stage, self.stage_day,
                         self.flows, self.segment, self.known_by_seg)

    def state(self, leads_by_seg: np.ndarray) -> tuple[np.ndarray, ...]:
        """The arrays the kernels' whole phases read and change (`kernels.touch_day`, …), with
        this month's leads-by-segment tally."""
        return (self.stage, self.stage_day, self.flows, self.segment, self.known_by_seg, self.fit,
                self.in_market_until, self.trust, self.trust_day, self.lead_day, self.lead_count,
                self.source, self.mark, leads_by_seg)

    @property
    def n_known(self) -> int:
        """Prospects ever aware (a prospect never becomes unaware again)."""
        return int(self.known_by_seg.sum())

    @property
    def counts(self) -> np.ndarray:
        """Prospects at each stage now (a fresh array, in `STAGES` order)."""
        return self._counts_at_reset + self.flows.sum(axis=0) - self.flows.sum(axis=1)

    def reset_flows(self) -> np.ndarray:
        out = self.flows.copy()
        self._counts_at_reset = self.counts
        self.flows[:] = 0
        return out

    def trust_now(self, idx: np.ndarray, day: int) -> np.ndarray:
        """Trust today; it fades exponentially since its last update (half-life in market)."""
        # ASSUMPTION: trust fades with a fixed half-life without touches (forgetting curve;
        # the geometric decay of Broadbent's adstock, 1979).
        self.fade_through(day)
        return kernels.trust_now(idx, day, self.trust, self.trust_day, self.fade)

    def fade_through(self, day: int) -> None:
        """Make `fade` long enough for trust of any age up to `day` days."""
        if day >= len(self.fade):
            # Computed by NumPy, as the exponentials were before the kernels: same bits.
            self.fade = np.exp(-self._decay * np.arange(max(2 * len(self.fade), day + 1)))

    def add_trust(self, idx: np.ndarray, gain: np.ndarray | float, day: int) -> None:
        """Close a share `gain` of the gap between current trust and full trust."""
        if len(idx):
            gain = np.broadcast_to(np.asarray(gain, dtype=np.float64), idx.shape)
            self.fade_through(day)
            kernels.add_trust(idx, np.ascontiguousarray(gain), day, self.trust, self.trust_day,
                              self.fade)

    def lead_luck(self, idx: np.ndarray, purpose: int) -> np.ndarray:
        """A uniform for each prospect's current lead and one `purpose` (`gtmsim.sales`:
        qualifying, winning, recycling, arrival, contact, pick-up): a fixed function of the seed, prospect, lead number and purpose.

        The same lead meets the same luck in every scenario run on one seed, however many
        other leads came before it: common random numbers where scenarios differ most.
        """
        return kernels.lead_luck(idx, self.lead_count, self._luck_seed[purpose])

    def go_dormant(self, idx: np.ndarray, day: int) -> None:
        """Out of reach for `dormant_days`: no touches, talks or buying windows count."""
        # ASSUMPTION: dormant prospects ignore marketing and word of mouth until they wake.
        self.move(idx, DORMANT, day)
        self.owner[idx] = -1
        self.asleep(idx, day)

    def asleep(self, idx: np.ndarray, day: int) -> None:
        """Prospects `idx`, just made dormant on `day`, wake after `dormant_days`."""
        if len(idx):
            self._dormant.append((day + int(self.market.dormant_days), idx.copy()))

    def wake(self, day: int) -> None:
        """Dormant prospects whose time is up return to `aware` (trust as it faded)."""
        while self._dormant and self._dormant[0][0] <= day:
            _, idx = self._dormant.popleft()
            idx = idx[self.stage[idx] == DORMANT]
            self.move(idx, AWARE, day)

    # ---------------------------------------------------------------- sampling

    def segment_cdf(self, weights: np.ndarray) -> np.ndarray | None:
        """Cumulative segment probabilities for `sample_segments`; None if all weights are 0."""
        total = weights.sum()
        return np.cumsum(weights / total) if total > 0 else None

    def sample_segments(self, cdf: np.ndarray | None, u_segment: np.ndarray,
                        u_position: np.ndarray) -> np.ndarray:
        """One prospect per pair of uniforms: a segment by `cdf` (see `segment_cdf`), then a
        position within it. Inverse transforms, so the same uniforms pick the same prospects
        when two scenarios weigh segments alike (common random numbers)."""
        if cdf is None or len(u_segment) == 0:
            return np.empty(0, dtype=np.int64)
        return kernels.sample_segments(cdf, u_segment, u_position, self.seg_size,
                                       self._by_segment, self._seg_start)

    def contacts(self, speakers: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Whom each speaker talks to, by the market's network kind; three uniforms a speaker
        (`u`, shape k × 3)."""
        # ASSUMPTION: small_world is a fixed, directed Watts–Strogatz-style graph computed on
        # the fly (no adjacency stored, so it costs no memory at 10^6 prospects). Each
        # prospect i has `degree` ties to ring neighbours i±1..±degree/2; a share
        # `rewire` of ties is redirected to a fixed random prospect (hash of the tie).
        # Clustered: a share `homophily` of talks stays within the speaker's segment.
        net = self.market.network
        kind = NETWORK_KINDS.index(net.kind)
        return kernels.contacts(speakers, u, kind, self.n, net.homophily, net.degree, net.rewire,
                                self._network_seed, self.segment, self.seg_size,
                                self._by_segment, self._seg_start)


@dataclass(frozen=True)
class ProspectView:
    """A read-only look at one prospect, for notebooks and tests."""

    id: int
    segment: str
    fit: float
    deal_value: float
    cycle_days: float
    stage: str
    stage_day: int
    trust: float
    in_market: bool
    lead_day: int | None
    source: str
    owner: int | None

    @classmethod
    def of(cls, p: Prospects, i: int, day: int) -> ProspectView:
        if not 0 <= i < p.n:
            raise IndexError(f"prospect {i} out of range 0..{p.n - 1}")
        ix = np.array([i])
        return cls(
            id=i,
            segment=p.segment_names[p.segment[i]],
            fit=float(p.fit[i]),
            deal_value=float(p.deal_value[i]),
            cycle_days=float(p.cycle_days[i]),
            stage=STAGES[p.stage[i]],
            stage_day=int(p.stage_day[i]),
            trust=float(p.trust_now(ix, day)[0]),
            in_market=bool(p.in_market_until[i] > day),
            lead_day=int(p.lead_day[i]) if p.lead_day[i] >= 0 else None,
            source=SOURCES[p.source[i]],
            owner=int(p.owner[i]) if p.owner[i] >= 0 else None,
        )
