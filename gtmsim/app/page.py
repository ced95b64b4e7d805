"""The Solara page of `gtmsim app`: the what-if page and Mesa's SolaraViz view of one run.

Started by `gtmsim.app.server.serve`, which names the reference scenario in the
environment (`GTMSIM_APP_SCENARIO`, `GTMSIM_APP_OVERRIDES`, `GTMSIM_APP_SAVE_DIR`) before
Solara imports this module. The logic lives in `gtmsim.app.whatif`; this module only lays
out controls and results and keeps the per-visitor state (Solara reactives are per session).
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import solara
import solara.lab
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from mesa.visualization.utils import update_counter

from gtmsim.app import whatif as w
from gtmsim.model import DAYS_PER_MONTH, STAGES, GTMModel
from gtmsim.scenario import Scenario, load_scenario

matplotlib.use("Agg")

REFERENCE: Scenario = load_scenario(
    os.environ.get("GTMSIM_APP_SCENARIO", "baseline"),
    json.loads(os.environ.get("GTMSIM_APP_OVERRIDES", "[]")) or None,
)
SAVE_DIR = Path(os.environ.get("GTMSIM_APP_SAVE_DIR", "."))
START_REPS = int(os.environ.get("GTMSIM_APP_REPS", w.APP_REPS))
RUNNER = w.Runner()
CONTROLS = w.controls_for(REFERENCE)
GROUPS = list(dict.fromkeys(c.group for c in CONTROLS))
REF_COLOUR, PLAN_COLOUR = "#7f7f7f", "#1f77b4"
FATE_COLOURS = ["#2ca02c", "#d62728", "#9e9e9e", "#ff7f0e", "#fdd0a2", "#6baed6"]

# Per-visitor state.
values = solara.reactive({k: w.shown(v)
                          for k, v in w.initial_values(REFERENCE, START_REPS).items()})
result: solara.Reactive[tuple[w.Snapshot, w.Figures] | None] = solara.reactive(None)
run_error = solara.reactive("")
save_name = solara.reactive(f"{REFERENCE.name}_what_if")
save_message = solara.reactive("")
save_error = solara.reactive("")
current: solara.Reactive[w.Refinement | None] = solara.reactive(None)


def esc(text: str) -> str:
    """Text for an HTML element (solara.Markdown would read `$` as the start of a formula)."""
    return html.escape(text)


def _plan() -> w.Plan:
    return w.build_plan(REFERENCE, values.value)


@solara.lab.task
def evaluate(plan: w.Plan) -> None:
    """Refine `plan` against the reference; a newer call supersedes this one."""
    refinement = RUNNER.refine(plan.reference, plan.plan, reps=plan.reps, seed=plan.seed)
    previous, current.value = current.value, refinement
    if previous is not None:
        previous.cancel()
    run_error.value = ""
    try:
        for snap in refinement:
            if not evaluate.is_current():
                return
            result.value = (snap, w.figures(snap))
    except Exception as exc:  # noqa: BLE001 - shown on the page, never as a traceback
        if evaluate.is_current():
            run_error.value = f"The runs failed: {type(exc).__name__}: {exc}"
    finally:
        refinement.cancel()


def _start() -> None:
    plan = _plan()
    if plan.ok:
        evaluate(plan)
    elif current.value is not None:
        current.value.cancel()


def _set(key: str, raw: Any) -> None:
    new = {**values.value, key: raw}
    if key == "alignment.preset" and raw in w.PRESET_NAMES:
        new.update({k: w.shown(v) for k, v in w.preset_values(raw).items()})
    values.value = new
    save_message.value = ""
    _start()


# --------------------------------------------------------------------------- charts


def _money_tick(v: float) -> str:
    sign, v = ("−" if v < 0 else ""), abs(v)
    if v >= 1e6:
        return f"{sign}${v / 1e6:,.1f}M"
    if v >= 1e4:
        return f"{sign}${v / 1e3:,.0f}k"
    return f"{sign}${v:,.0f}"


def _money_axis(ax: Any) -> None:
    low, high = ax.get_ylim()
    if high - low < 2:  # no difference at all: a readable axis around zero
        ax.set_ylim(-1000, 1000)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _money_tick(v)))


def bookings_chart(fig_data: w.Figures, ref: str, plan: str) -> Figure:
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    for arm, colour, label in ((ref, REF_COLOUR, f"{ref} (reference)"), (plan, PLAN_COLOUR, "plan")):
        d = fig_data.monthly[fig_data.monthly["scenario"] == arm]
        ax.plot(d["month"], d["mean"], color=colour, label=label, lw=2)
        ax.fill_between(d["month"], d["low"], d["high"], color=colour, alpha=0.2, lw=0)
    ax.set_xlabel("Month")
    ax.set_ylabel("Cumulative bookings ($)")
    _money_axis(ax)
    ax.set_title(f"Cumulative bookings (band: {w.CONFIDENCE:.0%} CI of the mean, "
                 f"{fig_data.n} replications)", fontsize=10)
    ax.legend(frameon=False, loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def difference_chart(fig_data: w.Figures, ref: str) -> Figure:
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    d = fig_data.difference
    ax.axhline(0, color="black", lw=0.8)
    ax.plot(d["month"], d["mean"], color=PLAN_COLOUR, lw=2, label="mean paired difference")
    ax.fill_between(d["month"], d["low"], d["high"], color=PLAN_COLOUR, alpha=0.2, lw=0,
                    label=f"{w.CONFIDENCE:.0%} CI (paired t)")
    ax.set_xlabel("Month")
    ax.set_ylabel("Plan − reference ($)")
    _money_axis(ax)
    ax.set_title(f"Cumulative bookings, plan − {ref} (same seeds)", fontsize=10)
    ax.legend(frameon=False, loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def fates_chart(fig_data: w.Figures, ref: str) -> Figure:
    fig = Figure(figsize=(6.4, 2.6), layout="constrained")
    ax = fig.subplots()
    fates = fig_data.fates.rename(index={ref: f"{ref} (reference)", w.PLAN_NAME: "plan"})
    left = pd.Series(0.0, index=fates.index)
    for fate, colour in zip(w.LEAD_FATES, FATE_COLOURS, strict=True):
        ax.barh(fates.index, fates[fate], left=left, color=colour, label=fate)
        left += fates[fate]
    ax.invert_yaxis()
    ax.set_xlabel("Leads over the run (mean per replication)")
    ax.set_title("Where the leads went", fontsize=10)
    ax.legend(frameon=False, ncols=3, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    return fig


# --------------------------------------------------------------------------- components


@solara.component
def ControlField(control: w.Control, error: str | None) -> None:
    raw = values.value.get(control.key, "")
    if control.kind == "choice":
        solara.Select(label=control.label, values=list(control.choices), value=raw,
                      on_value=lambda v: _set(control.key, v), dense=True)
        if error:
            solara.Text(error, style={"color": "#b00020"}, classes=["gtmsim-error"])
    else:
        solara.InputText(label=control.label, value=str(raw),
                         on_value=lambda v: _set(control.key, v), suffix=control.unit or None,
                         error=error or False, message=error or control.help or None,
                         dense=True, classes=[f"gtmsim-control-{control.key.replace('.', '-')}"])


@solara.component
def Controls(plan: w.Plan) -> None:
    for group in GROUPS:
        with solara.Card(group, margin=0, elevation=1, style={"margin-bottom": "8px"}):
            for control in (c for c in CONTROLS if c.group == group):
                ControlField(control, plan.errors.get(control.key))
    SaveCard(plan)


@solara.component
def SaveCard(plan: w.Plan) -> None:
    def save() -> None:
        save_message.value = save_error.value = ""
        if not plan.ok:
            save_error.value = "Fix the values marked in red first."
            return
        name = save_name.value.strip()
        try:
            path = w.save_plan(plan.plan, REFERENCE, SAVE_DIR / f"{name}.toml", name)
        except w.ScenarioError as exc:
            save_error.value = "; ".join(exc.problems)
            return
        save_message.value = f"Saved {path} (at the scenario's own size); check it with `gtmsim check`."

    with solara.Card("Save as scenario", margin=0, elevation=1):
        solara.InputText("Scenario name", value=save_name, error=save_error.value or False,
                         message=save_error.value or f"written to {SAVE_DIR.resolve()}/NAME.toml",
                         dense=True)
        solara.Button("Save as scenario", on_click=save, color="primary", outlined=True,
                      classes=["gtmsim-save"])
        if save_message.value:
            solara.Text(save_message.value, classes=["gtmsim-saved"])


def _table_html(fig_data: w.Figures, ref: str) -> str:
    cell = 'style="padding:4px 10px;text-align:right"'
    head = "".join(f"<th {cell}>{esc(h)}</th>" for h in
                   ("", f"{ref} (reference)", "plan", "difference",
                    f"{w.CONFIDENCE:.0%} CI of the difference"))
    rows = "".join(
        f"<tr><td style=\"padding:4px 10px\">{esc(r.label)}</td>"
        + "".join(f"<td {cell}>{esc(v)}</td>" for v in (r.reference, r.plan, r.difference,
                                                           r.interval))
        + "</tr>" for r in fig_data.table.itertuples())
    return (f'<table style="border-collapse:collapse;margin:8px 0"><thead><tr>{head}</tr>'
            f"</thead><tbody>{rows}</tbody></table>")


@solara.component
def Results(plan: w.Plan) -> None:
    got = result.value
    ref = REFERENCE.name
    if plan.general:
        for line in plan.general:
            solara.Error(line)
    if plan.reference is not None:
        for line in plan.reference.horizon_warnings():
            solara.Info(f"{ref}: {line} (raise Months to include it)", dense=True)
    if run_error.value:
        solara.Error(run_error.value)
    if got is None:
        solara.Text("Running the first replications…", classes=["gtmsim-status"])
        solara.ProgressLinear(True)
        return
    snap, fig_data = got
    stale = not plan.ok or snap.plan.to_dict() != plan.plan.to_dict() or (
        snap.reference.to_dict() != plan.reference.to_dict()) or snap.total != plan.reps
    if stale and plan.ok:
        status = f"Updating for the change… (showing the previous plan, {snap.done} replications)"
    elif not plan.ok:
        status = "Fix the values marked in red; showing the last valid plan."
    elif snap.finished:
        status = f"Done: {snap.done} of {snap.total} replications."
    else:
        status = f"Refining: {snap.done} of {snap.total} replications…"
    solara.Text(status, classes=["gtmsim-status"] + (["gtmsim-done"] if snap.finished and not stale
                                                      else []))
    solara.ProgressLinear(value=True if stale and plan.ok else 100 * snap.done / snap.total)
    said = w.changes(snap.reference, snap.plan)
    solara.HTML(tag="div", unsafe_innerHTML=(
        f"<b>Plan vs {esc(ref)}</b> ({snap.reference.market.prospects:,} prospects, "
        f"{snap.reference.months} months): "
        + esc("; ".join(said) if said else "no change yet — change a control.")),
        classes=["gtmsim-changes"])
    solara.HTML(tag="h3", unsafe_innerHTML=esc(w.headline(fig_data, ref)),
                classes=["gtmsim-headline"], style={"margin": "12px 0", "font-weight": "500"})
    row = fig_data.table.set_index("outcome")
    with solara.Row(classes=["gtmsim-figures"]):
        for outcome in ("cumulative_bookings", "total_cost", "net_bookings", "roi"):
            r = row.loc[outcome]
            with solara.Card(r["label"], margin=0, elevation=1, style={"min-width": "210px"}):
                solara.Text(f"plan {r['plan']} · {ref} {r['reference']}")
                solara.HTML(tag="div", unsafe_innerHTML=f"<b>{esc(r['difference'])}</b> "
                                                        f"({esc(r['interval'])})")
    # The numbers behind the table, unrounded, for scripts and the browser test.
    with solara.Div(style={"display": "none"}):
        for r in fig_data.table.itertuples():
            solara.Text(f"{r.diff:.10g}", classes=[f"gtmsim-diff-{r.outcome}"])
    if fig_data.warning:
        solara.Warning(fig_data.warning.replace("use --reps 10", "raise Replications to 10"),
                       dense=True)
    solara.HTML(tag="div", unsafe_innerHTML=_table_html(fig_data, ref), classes=["gtmsim-table"])
    solara.Text("Intervals and bands: 95% confidence intervals of the mean over replications "
                "(simulation noise only); differences are paired on common random numbers. "
                "Cost = marketing spend + sales cost + alignment cost; net = bookings − cost; "
                "ROI = net / cost; – : not within the run (payback) or no interval yet.", style={"font-size": "0.85em", "color": "#555"})
    with solara.Columns([1, 1]):
        solara.FigureMatplotlib(bookings_chart(fig_data, ref, snap.plan.name), format="png")
        solara.FigureMatplotlib(difference_chart(fig_data, ref), format="png")
    solara.FigureMatplotlib(fates_chart(fig_data, ref), format="png")


@solara.component
def Page() -> None:
    plan = _plan()
    solara.use_effect(lambda: _start() if result.value is None else None, [])
    solara.Title(f"gtmsim what-if: {REFERENCE.name}")
    with solara.Sidebar():
        Controls(plan)
    with solara.Column(style={"padding": "12px"}):
        solara.HTML(tag="h2", unsafe_innerHTML=f"What if? Against <b>{esc(REFERENCE.name)}</b>")
        if REFERENCE.question:
            solara.HTML(tag="p", unsafe_innerHTML=f"<i>{esc(REFERENCE.question)}</i>")
        Results(plan)
        solara.Markdown("Modellers: [one run month by month (Mesa SolaraViz)](/model)")


# --------------------------------------------------------------------------- Mesa view


class FunnelRun(GTMModel):
    """`GTMModel` as Mesa's SolaraViz builds it: from keyword arguments, and stopping at the
    scenario's last month (SolaraViz steps a model until `running` is false)."""

    def __init__(self, config: Scenario, seed: int = 0):
        super().__init__(config, seed=int(seed))

    def step(self) -> None:
        if self.day >= self.config.months * DAYS_PER_MONTH:
            self.running = False
            return
        super().step()


@solara.component
def FunnelNow(model: FunnelRun) -> None:
    """Prospects by stage today: the funnel as it fills."""
    update_counter.get()  # redrawn after each batch of steps SolaraViz runs
    fig = Figure(figsize=(6.4, 3.0), layout="constrained")
    ax = fig.subplots()
    counts = model.prospects.counts
    stages = [s for s in STAGES if s != "unaware"]
    bars = ax.barh(stages, [counts[STAGES.index(s)] for s in stages], color="#1f77b4")
    ax.bar_label(bars, labels=[f"{counts[STAGES.index(s)]:,}" for s in stages], padding=3,
                 fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("symlog")
    ax.set_xlabel("Prospects (log scale)")
    ax.set_title(f"Day {model.day}, month {min(model.month, model.config.months)}: "
                 f"{counts[STAGES.index('unaware')]:,} still unaware", fontsize=10)
    solara.FigureMatplotlib(fig, format="png")


@solara.component
def FunnelHistory(model: FunnelRun) -> None:
    """The monthly table so far: stages by month end."""
    update_counter.get()
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.subplots()
    rows = pd.DataFrame(model.rows)
    if len(rows):
        for stage in ("aware", "leads", "opportunities", "customers", "dormant"):
            ax.plot(rows["month"], rows[stage], marker="o", label=stage)
        ax.set_yscale("symlog")
        ax.legend(frameon=False, ncols=5, fontsize=8, loc="upper center",
                  bbox_to_anchor=(0.5, -0.2))
        ax.set_xlim(0.5, model.config.months + 0.5)
    else:
        ax.text(0.5, 0.5, "Press ▶ (play) or STEP: each month end adds a point",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("Month")
    ax.set_ylabel("Prospects at month end (log scale)")
    ax.set_title("Funnel by month end", fontsize=10)
    solara.FigureMatplotlib(fig, format="png")


@solara.component
def ModelPage() -> None:
    from mesa.visualization import SolaraViz

    plan = _plan()
    config = plan.plan if plan.ok else (plan.reference or REFERENCE)
    model = solara.use_reactive(solara.use_memo(lambda: FunnelRun(config, seed=plan.seed), []))
    # Mesa's ComponentsView lays components out with Vuetify 2 widgets that stay blank under
    # the Vuetify 3 front end Solara now uses, so SolaraViz gets no components here and
    # drives the model (play, step, reset, seed) while the charts below read the same model.
    SolaraViz(model, components=[],
              model_params={"config": config,
                            "seed": {"type": "SliderInt", "value": plan.seed % 1000,
                                     "label": "Seed", "min": 0, "max": 999, "step": 1}},
              render_interval=DAYS_PER_MONTH, play_interval=50, name="gtmsim: one run")
    with solara.Column(style={"padding": "12px"}):
        solara.Markdown(f"One run of the {'plan' if plan.ok else 'reference'} "
                        f"({config.market.prospects:,} prospects, {config.months} months), a day "
                        "per step, redrawn every 30 days (Render Interval). "
                        "[Back to the what-if page](/)")
        with solara.Columns([1, 1]):
            FunnelNow(model.value)
            FunnelHistory(model.value)


routes = [
    solara.Route(path="/", component=Page, label="What-if"),
    solara.Route(path="model", component=ModelPage, label="One run (Mesa)"),
]
