"""Names, units and labels of every reported figure.

One name per metric everywhere: the monthly table's column, the CLI's table header and
a chart's axis label all come from `METRICS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str
    kind: Literal["stock", "flow", "rate", "money", "time", "id"]
    description: str


_ROWS = [
    ("month", "Month", "month", "id", "month of the run, 1-based; a month is 30 days"),
    ("unaware", "Unaware", "prospects", "stock", "prospects who do not know the brand, at month end"),
    ("aware", "Aware", "prospects", "stock", "prospects who know the brand and are not in the funnel"),
    ("leads", "Leads", "prospects", "stock", "leads waiting for hand-off or for a rep, at month end"),
    ("opportunities", "Opportunities", "prospects", "stock", "open deals, at month end"),
    ("customers", "Customers", "accounts", "stock", "paying customers, at month end"),
    ("dormant", "Dormant", "prospects", "stock", "prospects out of reach for now (lost or dropped)"),
    ("in_market", "In market", "prospects", "stock", "prospects in a buying window, at month end"),
    ("new_aware", "New aware", "prospects/month", "flow", "unaware prospects who became aware"),
    ("new_leads", "New leads", "leads/month", "flow", "prospects who became leads"),
    ("new_opportunities", "New opportunities", "deals/month", "flow", "leads qualified into deals"),
    ("wins", "Wins", "deals/month", "flow", "deals won"),
    ("losses", "Losses", "deals/month", "flow", "deals lost"),
    ("leads_decayed", "Leads decayed", "leads/month", "flow",
     "leads that went cold while waiting (buying window closed or waited too long)"),
    ("leads_dropped", "Leads dropped", "leads/month", "flow",
     "leads removed without a deal: below the lead definition, disqualified, or past the SLA"),
    ("leads_unworked", "Leads never worked", "leads/month", "flow",
     "leads that left the queue without any rep response"),
    ("churned", "Churned", "accounts/month", "flow", "customers who left"),
    ("bookings", "Bookings", "$", "money", "first-year contract value of deals won in the month"),
    ("cumulative_bookings", "Cumulative bookings", "$", "money", "bookings since the start"),
    ("lead_response_days_median", "Median lead response", "days", "time",
     "median days from a lead's creation to a rep's first response, for leads worked that month"),
    ("lead_response_days_p90", "Lead response, 90th percentile", "days", "time",
     "90th percentile of days from a lead's creation to a rep's first response, that month"),
    ("lead_response_hours_median", "Median lead response", "hours", "time",
     "median hours from a lead's arrival to a rep's first response, for leads worked that month"),
    ("queue_wait_days_mean", "Mean queue wait", "days", "time",
     "mean days the leads waiting at month end have waited"),
    ("win_rate", "Win rate", "fraction", "rate", "wins / (wins + losses) in the month"),
    ("lead_to_opportunity", "Lead → opportunity", "fraction", "rate",
     "new opportunities / leads that left the lead stage in the month"),
    ("rep_utilization", "Rep utilisation", "fraction", "rate",
     "mean share of the team's open-deal capacity in use over the month"),
    ("reps", "Reps", "people", "stock", "reps on the team at month end"),
    ("marketing_spend", "Marketing spend", "$", "money", "program budgets spent in the month"),
    ("sales_cost", "Sales cost", "$", "money", "fully loaded cost of the reps in the month"),
    ("alignment_cost", "Alignment cost", "$", "money",
     "cost of the alignment work in the month: alignment.cost_monthly, plus alignment.cost_once "
     "in month 1 or in the month a timeline entry sets it"),
    ("cac", "CAC", "$/customer", "money",
     "(marketing spend + sales cost + alignment cost) / wins in the month"),
]

METRICS: dict[str, Metric] = {row[0]: Metric(*row) for row in _ROWS}
COLUMNS: tuple[str, ...] = tuple(METRICS)

# Columns the CLI prints as the readable monthly funnel table.
FUNNEL_COLUMNS: tuple[str, ...] = (
    "month", "aware", "leads", "opportunities", "customers", "new_leads", "wins",
    "leads_decayed", "lead_response_days_median", "win_rate", "bookings", "cac",
)


def label(name: str, *, unit: bool = True) -> str:
    """The axis/column label of a metric, e.g. 'Bookings ($)'."""
    m = METRICS[name]
    return f"{m.label} ({m.unit})" if unit and m.unit not in ("fraction",) else m.label


# Where leads went, in stacking order, computed from monthly flows and final stocks.
LEAD_FATES = ("won", "lost", "disqualified", "decayed while waiting", "returned unworked",
              "still open")


def lead_fates(runs: pd.DataFrame) -> pd.DataFrame:
    """Where leads went, per scenario: mean count per replication over the run of a runs
    table (one row per scenario, replication and month), one column per `LEAD_FATES`."""
    import pandas as pd

    last = runs["month"] == runs.groupby(["scenario", "replication"])["month"].transform("max")
    totals = runs.groupby(["scenario", "replication"], sort=False)[
        ["wins", "losses", "leads_dropped", "leads_decayed", "leads_unworked"]].sum()
    final = runs[last].set_index(["scenario", "replication"])[["leads", "opportunities"]]
    returned = totals["leads_unworked"] - totals["leads_decayed"]
    fates = pd.DataFrame({
        "won": totals["wins"],
        "lost": totals["losses"],
        "disqualified": totals["leads_dropped"] - returned,
        "decayed while waiting": totals["leads_decayed"],
        "returned unworked": returned,
        "still open": final["leads"] + final["opportunities"],
    })
    return fates.groupby(level="scenario", sort=False).mean()
