"""Report pages of calibration and forecast folders: one self-contained HTML page each,
built from the folder's tables and charts (no rerun)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from gtmsim.results import ResultsError, atomic_write, read_manifest

KINDS = ("calibration", "forecast")


def _img(path: Path) -> str:
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" style="max-width:100%" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:,.4g}", border=0,
                      classes="t", na_rep="–")


def build_report(folder: str | Path, output: str | Path | None = None) -> Path:
    """Write the HTML page of a calibration or forecast `folder`; returns its path."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    kind = manifest.get("kind")
    esc = html.escape
    needs = ["summary.csv"] if kind == "calibration" else ["summary.csv", "plans.csv", "fan.png"]
    absent = [name for name in needs if not (folder / name).is_file()]
    if absent:
        raise ResultsError(f"{folder}: this {kind} has no finished results yet "
                           f"({', '.join(absent)} missing); run it to the end (--resume "
                           "continues an interrupted calibration or forecast), then make "
                           "the report")
    if kind == "calibration":
        gens = manifest.get("generations", [])
        title = f"Calibration of {manifest['scenario']} to {Path(manifest['history']).name}"
        body = [
            f"<p>{len(gens)} ABC-SMC generations, "
            f"{sum(g['simulations'] for g in gens):,} simulations, final distance "
            f"{gens[-1]['epsilon']:.2f} (two runs of the same parameters are about 1.4 apart), "
            f"seed {manifest['seed']}; fitted columns: {esc(', '.join(manifest['columns']))}.</p>"
            if gens else "<p>No generation finished.</p>",
            "<h2>Posterior</h2><p>Contraction = 1 − posterior 90% width ÷ prior width.</p>",
            _table(pd.read_csv(folder / "summary.csv")),
        ]
        if (folder / "ppc_coverage.csv").is_file():
            body += ["<h2>Posterior-predictive check</h2><p>Share of history months inside the "
                     "simulated 50% and 90% bands.</p>",
                     _table(pd.read_csv(folder / "ppc_coverage.csv")), _img(folder / "ppc.png")]
    elif kind == "forecast":
        title = f"Forecast: {manifest['months']} months after month {manifest['history_months']}"
        body = [f"<p>{manifest['draws']} posterior draws × {manifest['reps']} replications per "
                "plan, on common random numbers.</p>",
                _img(folder / "fan.png"), "<h2>Bookings over the forecast months</h2>",
                _table(pd.read_csv(folder / "summary.csv"))]
        plans = pd.read_csv(folder / "plans.csv")
        if len(plans):
            body += ["<h2>Plans against the current one</h2><p>Paired differences; the 95% "
                     "interval is over posterior draws and includes parameter uncertainty.</p>",
                     _table(plans)]
    else:
        raise ValueError(f"{folder}: not a calibration or forecast folder")
    page = ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{esc(title)}</title><style>body{{font-family:sans-serif;max-width:1100px;"
            "margin:2em auto}} table.t{border-collapse:collapse} .t td,.t th{padding:4px 10px;"
            "border-bottom:1px solid #ddd;text-align:right}</style></head><body>"
            f"<h1>{esc(title)}</h1>{''.join(body)}</body></html>")
    path = Path(output) if output is not None else folder / "report.html"
    atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"),
                 follow_links=output is not None)
    return path
