"""Validation: docking the model against known results before it predicts anything.

A simulator earns trust by reproducing what is known (Rand & Rust 2011, "Agent-based
modeling in marketing: guidelines for rigor"). Each check here builds scenarios from
numbers, runs them through the real model (`GTMModel` via `simulate`), and compares what
the model did with theory or with published ranges:

- `bass`: awareness follows the Bass curve under fully mixed word of mouth (Bass 1969);
  a sparse small-world network diffuses no faster.
- `capacity`: with leads far above sales capacity, wins settle at the Little's-law rate.
- `decay`: speed to lead: a hand-raiser's first contact falls with the hours it waited as
  the response-time studies report (Oldroyd et al. 2011; Lead Response Management study).
- `marketing`: geometric adstock is exact; awareness grows with spend, with diminishing returns.
- `alignment`: each lever switched on alone moves its own mechanism's metric the right way.
- `timing`: marketing shows in bookings after months and persists; outbound reps show
  within weeks and fade when they leave.
- `spare_capacity`: the same in the shipped `spare_capacity` scenario: added brand spend
  shows in bookings after months and keeps building, added ramped reps within weeks.
- `funnel`: the baseline's conversions and cycle lengths sit in published B2B ranges.
- `founder`: one founder's selling-heavy and marketing-heavy weeks: the lever's mechanism,
  which week leads in the first months and the month cumulative bookings cross.

One module per check (`gtmsim.validation.bass`, ...) on a shared core
(`gtmsim.validation.core`: result types, shared statistics, the registry, the runner and
the writers). Every check returns a `CheckResult`: the rows of the validation table
(expected, observed, tolerance, pass/fail), the data behind its chart, and the settings
it ran with. Tolerances are explained in docs/validation.md. `run_checks` runs several;
`write_results` writes the table (CSV, JSON), the data and one PNG chart per check.
"""

from __future__ import annotations

from gtmsim.validation.core import (
    CHECKS,
    PLAIN_DESK,
    SIZES,
    TABLE_CSV,
    TABLE_JSON,
    Check,
    CheckResult,
    Criterion,
    Size,
    Status,
    ValidationError,
    Z,
    _jackknife_ratio,
    _jsonable,
    _mean_se,
    _one_segment,
    _paired,
    _row,
    _seeds,
    _settings,
    check_names,
    family_z,
    results_table,
    run_checks,
    t_bound,
    write_results,
)
from gtmsim.validation.bass import (
    BASS_SIZES,
    CLOSED_FORM_MIN_PROSPECTS,
    CLOSED_FORM_TOLERANCE,
    _aware_share,
    _draw_bass,
    bass_closed_form,
    bass_recursion,
    bass_scenario,
    check_bass,
    plot_bass_curve,
    plot_bass_deviation,
)
from gtmsim.validation.capacity import (
    CAPACITY_SHORTFALL,
    CAPACITY_SIZES,
    CAPACITY_TEAM,
    _draw_capacity,
    capacity_scenario,
    check_capacity,
    plot_capacity,
)
from gtmsim.validation.decay import (
    COMPARISONS,
    DECAY_SIZES,
    PICKUP_MINUTES,
    RATIO_BAND,
    _draw_decay,
    check_decay,
    decay_scenario,
    plot_decay,
)
from gtmsim.validation.marketing import (
    ADSTOCK,
    ADSTOCK_RTOL,
    MARKETING_SIZES,
    SPEND_PER_PROSPECT,
    SPEND_PROGRAM,
    _draw_marketing,
    _effective_spend,
    check_marketing,
    expected_awareness,
    marketing_scenario,
    plot_adstock,
    plot_spend_response,
)
from gtmsim.validation.alignment import (
    ALIGNMENT_SIZES,
    FEEDBACK_FROM_DAY,
    FEEDBACK_OBSERVED_MONTHS,
    FEEDBACK_WARMUP_MONTHS,
    LEVER_TESTS,
    LeverTest,
    _alignment_metrics,
    _draw_alignment,
    _fork,
    _run_on,
    _segment_share,
    check_alignment,
    plot_feedback_by_month,
    plot_lever_effects,
)
from gtmsim.validation.timing import (
    EARLY_MAX,
    FADE_MAX,
    FAST_MIN,
    PERSIST_MIN,
    TIMING,
    TIMING_SIZES,
    _draw_timing,
    check_timing,
    expected_bookings,
    plot_lift,
    timing_scenario,
)
from gtmsim.validation.funnel import (
    ENTERPRISE_CYCLE_DAYS,
    FUNNEL,
    FUNNEL_SIZES,
    LEAD_TO_OPP,
    OPP_TO_WON,
    RAMP_MONTHS,
    SMB_CYCLE_DAYS,
    _draw_funnel,
    _opportunity_cycles,
    _run_keeping_skills,
    check_funnel,
    plot_conversions,
    plot_cycles,
)
from gtmsim.validation.founder import (
    FOUNDER_SCENARIO,
    FOUNDER_SIZES,
    _draw_founder,
    check_founder,
    plot_founder,
)
from gtmsim.validation.spare import (
    SPARE,
    SPARE_SIZES,
    check_spare_capacity,
    spare_scenario,
)
from gtmsim.validation import (
    bass,
    capacity,
    decay,
    marketing,
    alignment,
    timing,
    funnel,
    founder,
    spare,
)

# The order of the table and of `gtmsim validate`.
for _module in (bass, capacity, decay, marketing, alignment, timing, spare, funnel, founder):
    CHECKS[_module.CHECK.name] = _module.CHECK

__all__ = [
    "CHECKS",
    "SIZES",
    "CheckResult",
    "Criterion",
    "ValidationError",
    "bass_closed_form",
    "bass_recursion",
    "bass_scenario",
    "check_names",
    "expected_awareness",
    "expected_bookings",
    "family_z",
    "results_table",
    "run_checks",
    "t_bound",
    "write_results",
]
