"""Marketing program agents: budgets, carry-over, saturation, and their touches.

A program is broad and slow: each month its budget joins a geometric adstock
(x*_m = x_m + θ·x*_{m-1}), the adstock buys touches, and a Hill curve turns touches
into reach with diminishing returns. Each day the program touches a Poisson number of
prospects in its audience; touches make the unaware aware, build trust in the aware,
and occasionally turn an in-market prospect into a hand-raiser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from gtmsim.prospects import (
    AWARE,
    CUSTOMER,
    LEAD,
    OPPORTUNITY,
    SRC_CAPTURE,
    SRC_MARKETING,
    UNAWARE,
)
from gtmsim.scenario import Program

if TYPE_CHECKING:
    from gtmsim.model import GTMModel

# ASSUMPTION: a month is 30 days; budgets, churn and reports are monthly, the model steps daily.
DAYS_PER_MONTH = 30


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

    def start_month(self) -> float:
        """Carry the adstock into a new month and set this month's daily reach; returns spend."""
        cfg = self.config
        self.effective_spend = cfg.monthly_budget + cfg.carryover * self.effective_spend
        self.reach_per_day = monthly_reach(self.effective_spend, cfg, self._audience()) / DAYS_PER_MONTH
        self.mask = self._mask()
        self._steer()
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
        k = int(self.stream.poisson(self.reach_per_day)) if self.reach_per_day > 0 else 0
        if k == 0:
            return
        targets = self._draw(k)
        self.touches += len(targets)
        touch(self.model, targets, self.config, self.stream)

    def _steer(self) -> None:
        """This month's targeting: segment weights and the fit preference (levers change
        only at the start of a month)."""
        m = self.model
        f = m.levers.feedback
        # ASSUMPTION: with feedback f, a share f of segment targeting follows the bookings per lead
        # observed by segment, and within each segment touches favour high-fit prospects (kept
        # with chance ∝ (1-f) + f·fit, scaled so that every segment keeps its share).
        self.steer = self.mask * m.segment_weights
        self.fit_floor = (1 - f) + f * m.prospects.seg_mean_fit.min()

    def _draw(self, k: int) -> np.ndarray:
        """Draw about `k` touched prospects; feedback from won deals steers segment and fit."""
        p = self.model.prospects
        f = self.model.levers.feedback
        steer, fit_floor = self.steer, self.fit_floor
        if self.config.reaches == "known":
            known = p.known_by_seg * steer
            if known.sum() <= 0:
                return np.empty(0, dtype=np.int64)
            accept = known.sum() / (p.known_by_seg.sum() * steer.max()) * fit_floor
            idx = p.sample_known(int(np.ceil(k / accept)), self.stream)
            keep = self.stream.random(len(idx)) < steer[p.segment[idx]] / steer.max()
            idx = idx[keep]
        else:
            idx = p.sample_segments(int(np.ceil(k / fit_floor)), p.seg_size * steer, self.stream)
        if f > 0 and len(idx):
            seg = p.segment[idx]
            chance = fit_floor * ((1 - f) + f * p.fit[idx]) / ((1 - f) + f * p.seg_mean_fit[seg])
            idx = idx[self.stream.random(len(idx)) < chance]
        return idx


def touch(model: GTMModel, idx: np.ndarray, cfg: Program, rng: np.random.Generator) -> None:
    """Apply one batch of marketing touches to prospects `idx`."""
    p = model.prospects
    day = model.day
    idx = np.unique(idx)
    stage = p.stage[idx]
    unaware = idx[stage == UNAWARE]
    woke = unaware[rng.random(len(unaware)) < cfg.awareness]
    p.move(woke, AWARE, day)
    engaged = idx[(stage == AWARE) | (stage == LEAD) | (stage == OPPORTUNITY) | (stage == CUSTOMER)]
    p.add_trust(np.concatenate([woke, engaged]), cfg.trust, day)
    model.consider(woke)  # newly aware prospects who are in market may ask for a demo

    aware = idx[p.stage[idx] == AWARE]
    if len(aware) == 0 or (cfg.hand_raise == 0 and cfg.lead_capture == 0):
        return
    in_market = p.in_market(aware, day)
    trust = p.trust_now(aware, day)
    u = rng.random(len(aware))
    # ASSUMPTION: a program's hand-raise chance scales with trust (0.5 + trust): people answer
    # calls to action from brands they trust.
    raise_hand = in_market & (u < cfg.hand_raise * (0.5 + trust))
    model.desk.intake(aware[raise_hand], SRC_MARKETING)
    # Gated content turns touched prospects who are not buying into leads; marketing does
    # this as far as it is rewarded for lead volume.
    capture = ~in_market & (u < cfg.lead_capture * (1 - model.levers.marketing_reward))
    model.desk.intake(aware[capture], SRC_CAPTURE)
