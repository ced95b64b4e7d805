"""Marketing program agents: budgets, carry-over, saturation, and their touches.

A program is broad and slow: each month its budget joins a geometric adstock
(x*_m = x_m + θ·x*_{m-1}), the adstock buys touches, and a Hill curve turns touches
into reach with diminishing returns. Each day the program touches a Poisson number of
prospects in its audience; touches make the unaware aware, build trust in the aware,
and occasionally turn an in-market prospect into a hand-raiser. Programs choose their
touches one by one and the model applies the day's touches together (`touch`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa
import numpy as np

from gtmsim import kernels
from gtmsim.prospects import SRC_CAPTURE, SRC_INBOUND, SRC_MARKETING, Prospects
from gtmsim.scenario import Program

if TYPE_CHECKING:
    from gtmsim.model import GTMModel

# ASSUMPTION: a month is 30 days; budgets, churn and reports are monthly, the model steps daily.
DAYS_PER_MONTH = 30
_NO_KEEP = np.empty(0, dtype=np.float32)


def adstock(spend: np.ndarray, carryover: float) -> np.ndarray:
    """Geometric adstock x*_t = x_t + θ·x*_{t-1} (marketing-mix convention)."""
    out = np.empty(len(spend), dtype=float)
    acc = 0.0
    for t, x in enumerate(spend):
        acc = x + carryover * acc
        out[t] = acc
    return out


def hill(x: np.ndarray | float, half: float, slope: float) -> np.ndarray | float:
    """Hill saturation x^s / (x^s + half^s): 0 at 0, 1/2 at `half`, → 1."""
    x = np.asarray(x, dtype=float)
    xs = np.power(x, slope)
    return xs / (xs + half**slope)


def monthly_reach(effective_spend: float, cfg: Program, audience: float) -> float:
    """Prospect touches a month: the adstock buys touches, saturating over the audience."""
    # ASSUMPTION: Hill saturation on touches bought per member of the audience; at low spend
    # one touch costs `cost_per_reach`, and a program never reaches more than its audience a month.
    # (The Hill shape of media-mix models: Jin, Wang, Sun, Chan & Koehler, Google 2017.)
    if audience <= 0 or effective_spend <= 0:
        return 0.0
    bought = effective_spend / cfg.cost_per_reach
    return float(audience * hill(bought / audience, cfg.saturation, cfg.saturation_slope))


class MarketingProgram(mesa.Agent):
    """One program or channel (content, social, email nurture, paid ads, events, PR)."""

    def __init__(self, model: GTMModel, name: str, config: Program, rng: np.random.Generator):
        super().__init__(model)
        self.name = name
        self.config = config
        self.stream = rng
        self.effective_spend = 0.0
        self.reach_per_day = 0.0
        self.touches = 0
        self.today = 0  # touches to draw today (`GTMModel._draw_counts`)

    def start_month(self) -> float:
        """Carry the adstock into a new month and set this month's daily reach; returns spend."""
        cfg = self.config
        self.effective_spend = cfg.monthly_budget + cfg.carryover * self.effective_spend
        self.reach_per_day = monthly_reach(self.effective_spend, cfg, self._audience()) / DAYS_PER_MONTH
        self.mask = self._mask()
        self._steer()
        # Per touch this month: awareness chance, trust gain, hand-raise scale, capture chance.
        self.effects = np.array([cfg.awareness, cfg.trust, cfg.hand_raise,
                                 cfg.lead_capture * (1 - self.model.levers.marketing_reward)],
                                dtype=np.float64)
        return cfg.monthly_budget

    def _mask(self) -> np.ndarray:
        names = self.model.prospects.segment_names
        if not self.config.segments:
            return np.ones(len(names), dtype=bool)
        return np.array([n in self.config.segments for n in names])

    def _audience(self) -> float:
        p = self.model.prospects
        sizes = p.known_by_seg if self.config.reaches == "known" else p.seg_size
        return float(sizes[self._mask()].sum())

    def step(self) -> None:
        """Choose today's touches; the model applies all programs' touches together."""
        k = self.today
        if k == 0:
            return
        # A program reaches a prospect at most once a day (its first touch counts); it pays
        # for every touch it makes.
        targets, touches, bought = self._draw(k)
        self.touches += bought
        if len(targets):
            self.model.day_touches.append((self, targets, touches))


    def _steer(self) -> None:
        """This month's targeting: segment weights and the fit preference (levers change
        only at the start of a month)."""
        m = self.model
        self.steer = self.mask * m.segment_weights
        p = m.prospects
        self.cdf = p.segment_cdf(p.seg_size * self.steer)
        self.fit_floor = fit_floor(p, m.levers.feedback)

    def _draw(self, k: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Draw about `k` touched prospects and each touch's three chances (awareness; hand-raise
        or capture; asking for a demo once aware); feedback from won deals steers segment and fit.

        Candidates come from the whole audience by segment weight, each with one row of
        uniforms whatever becomes of it, and are then thinned (fit preference; for a `known`
        audience, those never aware; a prospect's first touch of the day). So two scenarios on
        one seed touch the same prospects with the same chances wherever their states agree
        (common random numbers). Returns the touched prospects, each touch's three chances
        followed by the program's `effects` (one row each, as `touch` takes them) and the
        touches paid for (before the first-of-the-day rule).
        """
        p = self.model.prospects
        if self.cdf is None:
            return np.empty(0, dtype=np.int64), np.empty((3 + len(self.effects), 0)), 0
        accept = self.fit_floor
        if self.config.reaches == "known":
            weights = p.seg_size * self.steer
            accept *= (p.known_by_seg * self.steer).sum() / weights.sum()
            if accept <= 0:
                return np.empty(0, dtype=np.int64), np.empty((3 + len(self.effects), 0)), 0
        u = self.stream.random((math.ceil(k / accept), 6))  # segment, who, keep, 3 chances
        keep = self.model.fit_keep
        return kernels.program_draw(u, self.cdf, p.seg_size, p._by_segment, p._seg_start,
                                    _NO_KEEP if keep is None else keep,
                                    self.config.reaches == "known", p.stage, p.mark,
                                    self.effects)


# ASSUMPTION: with feedback f, a share f of segment targeting follows the bookings per lead
# observed by segment, and within each segment touches favour high-fit prospects (kept
# with chance ∝ (1-f) + f·fit, scaled so that every segment keeps its share).
def fit_floor(p: Prospects, feedback: float) -> float:
    """The lowest keep chance under the fit preference: draws are enlarged by its inverse."""
    return (1 - feedback) + feedback * float(p.seg_mean_fit.min())


def fit_keep(p: Prospects, feedback: float) -> np.ndarray | None:
    """Chance a drawn touch on each prospect is kept under the fit preference (None at f = 0)."""
    f = feedback
    if f <= 0:
        return None
    relative = ((1 - f) + f * p.fit) / ((1 - f) + f * p.seg_mean_fit[p.segment])
    return (fit_floor(p, f) * relative).astype(np.float32)


def touch(model: GTMModel, batch: list[tuple[MarketingProgram, np.ndarray, np.ndarray]]) -> None:
    """Apply one day's touches of every program: (program, prospects, touches) each, the
    touches as `MarketingProgram._draw` gives them (three chances, then the program's effects,
    a row each)."""
    # ASSUMPTION: a program reaches a prospect at most once a day; a prospect reached by several
    # programs in a day takes every touch at once: aware if any touch makes it so, trust gains
    # compounding, and each touch with its own chance to raise a hand or fill a form.
    if not batch:
        return
    p = model.prospects
    day = model.day
    if len(batch) == 1:
        idx, touches = batch[0][1], batch[0][2]
    else:
        idx = np.concatenate([b[1] for b in batch])
        touches = np.concatenate([b[2] for b in batch], axis=1)
    # Touches grouped by prospect: the unaware wake, trust gains of one day's touches compound
    # (1 − Π(1 − gain)), and newly aware prospects who are in market may ask for a demo.
    # ASSUMPTION: a program's hand-raise chance scales with trust (0.5 + trust): people answer
    # calls to action from brands they trust. Gated content turns touched prospects who are
    # not buying into leads; marketing does this as far as it is rewarded for lead volume.
    asked, hands, captured = kernels.touch_day(
        idx, touches, day, model.config.market.inbound_propensity,
        model.levers.lead_threshold, p.fade, p.state(model.tally.leads_by_seg))
    model.desk.add_leads(((asked, SRC_INBOUND), (hands, SRC_MARKETING), (captured, SRC_CAPTURE)))
