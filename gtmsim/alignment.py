"""The organisational setup: alignment levers and their named presets.

Siloed and aligned are data, not subclasses: every agent reads the same `Levers`
value, and a preset is only a starting set of lever values that a scenario may
override one by one. Stages follow Kotler, Rackham & Krishnaswamy, "Ending the War
Between Sales and Marketing" (HBR 2006): undefined (here `siloed`), defined,
aligned, integrated.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

Routing = Literal["cherry_pick", "oldest_first", "newest_first"]


@dataclass(frozen=True)
class Levers:
    """Resolved alignment levers, read by marketing programs, the lead queue and reps.

    Attributes:
        lead_threshold: minimum lead score (0–1, from fit and trust) for marketing to
            pass a lead to sales; below it the lead goes back to nurture.
        handoff_days: leads are passed to sales in batches every this many days
            (0 = as they arrive).
        sla_days: follow-up SLA; a lead not worked within this many days after
            hand-off is returned to nurture instead of rotting in the queue (0 = none).
        routing: which queued lead a rep works next.
        feedback: strength (0–1) of closed-loop feedback from won deals to
            marketing's segment and fit targeting.
        enablement: use (0–1) of marketing's sales content; raises win odds.
        message_consistency: (0–1) how far sales and marketing tell one story; trust
            built by marketing carries into the deal in proportion.
        recycling: share (0–1) of lost, disqualified and returned prospects sent back
            to nurture rather than left dormant.
        coordination: share (0–1) of rep time spent on coordination.
        marketing_reward: what marketing is rewarded for, 0 = lead volume, 1 = pipeline.
    """

    lead_threshold: float
    handoff_days: float
    sla_days: float
    routing: Routing
    feedback: float
    enablement: float
    message_consistency: float
    recycling: float
    coordination: float
    marketing_reward: float


# ASSUMPTION: preset lever values are a reading of the four stages in Kotler et al. (HBR 2006):
# undefined = weekly lead lists, no shared definition, reps cherry-pick, no feedback;
# integrated = shared definition, same-day hand-off, SLA, full feedback, at ~8% of rep time.
PRESETS: dict[str, Levers] = {
    "siloed": Levers(
        lead_threshold=0.0,
        handoff_days=7,
        sla_days=0,
        routing="cherry_pick",
        feedback=0.0,
        enablement=0.0,
        message_consistency=0.3,
        recycling=0.0,
        coordination=0.0,
        marketing_reward=0.0,
    ),
    "defined": Levers(
        lead_threshold=0.3,
        handoff_days=3,
        sla_days=0,
        routing="oldest_first",
        feedback=0.2,
        enablement=0.2,
        message_consistency=0.5,
        recycling=0.3,
        coordination=0.02,
        marketing_reward=0.3,
    ),
    "aligned": Levers(
        lead_threshold=0.4,
        handoff_days=0,
        sla_days=3,
        routing="newest_first",
        feedback=0.6,
        enablement=0.6,
        message_consistency=0.8,
        recycling=0.8,
        coordination=0.05,
        marketing_reward=0.7,
    ),
    "integrated": Levers(
        lead_threshold=0.45,
        handoff_days=0,
        sla_days=2,
        routing="newest_first",
        feedback=0.9,
        enablement=0.9,
        message_consistency=1.0,
        recycling=1.0,
        coordination=0.08,
        marketing_reward=1.0,
    ),
}
PRESETS["undefined"] = PRESETS["siloed"]

LEVER_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Levers))


def resolve(preset: str, overrides: dict[str, object]) -> Levers:
    """Start from a named preset and replace the levers set explicitly."""
    base = PRESETS[preset]
    values = {name: getattr(base, name) for name in LEVER_NAMES}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Levers(**values)
