"""The slide deck: a 16:9 PowerPoint file of a results folder, for the leadership meeting.

A title slide with the headline and its interval, one slide per chart with a sentence
computed from the data, the options table and a method slide. The numbers and sentences
are the report's (`gtmsim.decision`), so the deck and the report never disagree.

Written with python-pptx: a well-kept library that writes the Office Open XML format
PowerPoint, Keynote, Google Slides and LibreOffice open, with no Office installation.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from gtmsim import charts, decision
from gtmsim.report import (
    ReportError,
    Results,
    headline,
    load_results,
    reps_warning,
    subtitle_of,
    summary_table,
    title_of,
)
from gtmsim.results import ResultsError, atomic_write, check_writable_file

DECK = "deck.pptx"
WIDTH_IN, HEIGHT_IN = 13.333, 7.5  # 16:9
MARGIN_IN = 0.5
ROWS_PER_SLIDE = 8  # options on one table slide (each row up to three lines)


def chart_title(name: str, res: Results) -> str:
    """The slide title of a chart of `charts.all_charts`."""
    ref = decision.arms(res)[0].label
    titles = {"bookings": "Cumulative bookings", "bookings_difference": f"Difference from {ref}",
              "funnel": "The funnel", "lead_outcomes": "Where the leads went",
              "response_times": "Lead response time", "utilization": "Rep utilisation",
              "cac": "Customer acquisition cost"}
    if name.startswith("sweep_"):
        return f"Bookings against {decision.setting_words(name.removeprefix('sweep_'))}"
    return titles.get(name, name.replace("_", " ").capitalize())


_NO_BREAK = re.compile(r"([+\u2212-])\$")


def nobreak(text: str) -> str:
    """Glue a sign to the amount after it ("+$250k", "−$133k") with a word joiner (U+2060),
    so that slides never wrap a line between the two."""
    return _NO_BREAK.sub("\\1\u2060$", text)


def _text(slide: Any, text: str, left: float, top: float, width: float, height: float, *,
          size: int = 18, bold: bool = False, colour: tuple[int, int, int] = (0x22, 0x22, 0x22)):
    from pptx.dml.color import RGBColor
    from pptx.util import Inches, Pt

    box = slide.shapes.add_textbox(Inches(left), Inches(top), Inches(width), Inches(height))
    frame = box.text_frame
    frame.word_wrap = True
    for i, line in enumerate(text.split("\n")):
        para = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
        para.text = nobreak(line)
        para.font.size = Pt(size)
        para.font.bold = bold
        para.font.color.rgb = RGBColor(*colour)
        para.space_after = Pt(size * 0.4)
    return box


def _title(slide: Any, text: str, *, top: float = 0.35, size: int = 30) -> None:
    """The slide's title placeholder, moved to the 16:9 width (python-pptx's default
    template is 4:3)."""
    from pptx.util import Inches, Pt

    shape = slide.shapes.title
    shape.left, shape.top = Inches(MARGIN_IN), Inches(top)
    shape.width, shape.height = Inches(WIDTH_IN - 2 * MARGIN_IN), Inches(0.9)
    shape.text = text
    para = shape.text_frame.paragraphs[0]
    para.font.size = Pt(size)
    para.font.bold = True
    from pptx.enum.text import PP_ALIGN

    para.alignment = PP_ALIGN.LEFT


def fitting_size(text: str, sizes: tuple[int, ...] = (22, 20, 18, 16, 14, 12)) -> int:
    """The largest font size (pt) at which `text` fills at most ~80% of the title slide's
    3.5 × 12.3 inch headline box (bold sans-serif: a character ~0.55 em wide, lines
    1.7 em apart with their spacing), so a long headline never runs into the warning."""
    for size in sizes:
        per_line = (WIDTH_IN - 2 * MARGIN_IN) * 72 / (0.55 * size)
        lines = 3.5 * 72 / (1.7 * size)
        if len(text) <= 0.8 * per_line * lines:
            return size
    return sizes[-1]


def _png(fig: plt.Figure, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


# Column widths of the options table (inches; 12.33 in all): intervals get the room.
OPTION_WIDTHS = (1.4, 1.0, 1.45, 1.25, 0.9, 0.9, 1.0, 1.45, 0.7, 1.1, 1.18)


def _table(slide: Any, header: list[str], rows: list[list[str]], top: float,
           widths: tuple[float, ...] | None = None, size: int = 12) -> Any:
    from pptx.util import Inches, Pt

    width = WIDTH_IN - 2 * MARGIN_IN
    n_rows, n_cols = len(rows) + 1, len(header)
    height = min(0.45 * n_rows, HEIGHT_IN - top - 0.3)
    shape = slide.shapes.add_table(n_rows, n_cols, Inches(MARGIN_IN), Inches(top),
                                   Inches(width), Inches(height))
    table = shape.table
    widths = widths or tuple(width / n_cols for _ in range(n_cols))
    for j in range(n_cols):
        table.columns[j].width = Inches(widths[j])
    for i, row in enumerate([header, *rows]):
        for j, value in enumerate(row):
            cell = table.cell(i, j)
            # "figure (low to high)": the interval on its own line, as in the report.
            cell.text = nobreak(re.sub(r"^(\S+) \((.+ to .+)\)$", "\\1\n(\\2)", str(value))
                                if i else str(value).replace(" (", "\n("))
            for para in cell.text_frame.paragraphs:
                para.font.size = Pt(size)
                para.font.bold = i == 0
    return table


def build_deck(folder: str | Path, out: str | Path | None = None, *, dpi: int = 150) -> Path:
    """Write the slide deck of a results folder (`run`, `compare` or `sweep`).

    Args:
        folder: the results folder.
        out: the .pptx file (default: `folder/deck.pptx`).
        dpi: resolution of the chart images.

    Returns:
        The path of the deck.

    Raises:
        ReportError: `folder` is not a readable results folder, or `out` cannot be written.
    """
    from pptx import Presentation
    from pptx.util import Inches

    follow = out is not None
    out = Path(out) if out is not None else Path(folder) / DECK
    try:
        check_writable_file(out, follow_links=follow)
    except ResultsError as exc:
        raise ReportError(str(exc)) from None
    res = load_results(folder)
    table = summary_table(res)
    takeaways = decision.chart_takeaways(res, table)
    levers = list(res.experiment.keys) if res.kind == "sweep" else []

    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(WIDTH_IN), Inches(HEIGHT_IN)
    title_only, blank_title = prs.slide_layouts[5], prs.slide_layouts[0]

    # 1. Title: what was compared, the headline with its intervals, the warning if any.
    slide = prs.slides.add_slide(blank_title)
    _title(slide, title_of(res), top=0.8, size=36)
    slide.placeholders[1].element.getparent().remove(slide.placeholders[1].element)
    _text(slide, subtitle_of(res), MARGIN_IN, 1.75, WIDTH_IN - 2 * MARGIN_IN, 0.5, size=16,
          colour=(0x55, 0x55, 0x55))
    sentence = headline(res, table)
    _text(slide, sentence, MARGIN_IN, 2.5, WIDTH_IN - 2 * MARGIN_IN, 3.5,
          size=fitting_size(sentence), bold=True)
    warning = reps_warning(res, table)
    if warning:
        _text(slide, "Warning: " + warning, MARGIN_IN, 6.1, WIDTH_IN - 2 * MARGIN_IN, 1.0,
              size=13, colour=(0x9a, 0x4a, 0x00))

    # 2. One slide per chart, with the sentence the data gives.
    figures = charts.all_charts(decision.labelled_runs(res), sweep_levers=levers,
                                sweep_runs=res.runs)
    try:
        order = sorted(figures, key=lambda n: n != "bookings_difference")  # the decision first
        for name in order:
            slide = prs.slides.add_slide(title_only)
            _title(slide, chart_title(name, res), top=0.25)
            if takeaways.get(name):
                _text(slide, takeaways[name], MARGIN_IN, 1.05, WIDTH_IN - 2 * MARGIN_IN, 0.8,
                      size=16)
            picture_h = HEIGHT_IN - 2.0 - 0.2
            picture_w = picture_h * 16 / 9
            slide.shapes.add_picture(io.BytesIO(_png(figures[name], dpi)),
                                     Inches((WIDTH_IN - picture_w) / 2), Inches(2.0),
                                     height=Inches(picture_h))
    finally:
        for fig in figures.values():
            plt.close(fig)

    # 3. The options table (a single run: its key figures), ROWS_PER_SLIDE options a slide.
    if res.kind == "run":
        slide = prs.slides.add_slide(title_only)
        _title(slide, "Key figures", top=0.25)
        rows = [[r[0], r[2]] for r in _kpi(res, table)]
        _table(slide, ["Outcome", "Value"], rows, 1.3, widths=(6.0, 6.33), size=14)
    else:
        ref = decision.arms(res)[0].label
        rows = decision.option_rows(decision.options(res, table))
        parts = [rows[i:i + ROWS_PER_SLIDE] for i in range(0, len(rows), ROWS_PER_SLIDE)]
        for k, part in enumerate(parts, start=1):
            slide = prs.slides.add_slide(title_only)
            of = f" ({k} of {len(parts)})" if len(parts) > 1 else ""
            _title(slide, f"The options against {ref}{of}", top=0.25)
            _table(slide, list(decision.OPTION_HEADER), part, 1.3, widths=OPTION_WIDTHS, size=11)
            _text(slide, "Differences: each option minus " + ref + ", paired by replication, "
                  "with 95% confidence intervals of the mean. Net bookings = bookings − total "
                  "cost.", MARGIN_IN, HEIGHT_IN - 0.9, WIDTH_IN - 2 * MARGIN_IN, 0.6, size=12)

    # 4. Method and seeds.
    slide = prs.slides.add_slide(title_only)
    _title(slide, "Method", top=0.25)
    _text(slide, "\n".join(method_lines(res)), MARGIN_IN, 1.2, WIDTH_IN - 2 * MARGIN_IN,
          HEIGHT_IN - 1.5, size=14)

    try:
        atomic_write(out, lambda tmp: prs.save(str(tmp)), follow_links=follow)
    except ResultsError as exc:
        raise ReportError(str(exc)) from None
    return out


def _kpi(res: Results, table: pd.DataFrame) -> list[list[str]]:
    from gtmsim.report import kpi_rows

    return kpi_rows(res, table)


def method_lines(res: Results) -> list[str]:
    """The method in a few lines: replications, seeds, intervals and what they cover."""
    m = res.manifest
    if res.kind == "run":
        return [(f"One run of {res.months} months on seed {m.get('seed')}: one possible "
                "history, with no interval. Compare scenarios with `gtmsim compare` for "
                "intervals."),
                f"Command: {' '.join(m.get('command', []))}"]
    seeds = m.get("seeds", [])
    shown = ", ".join(map(str, seeds[:3])) + (", …" if len(seeds) > 3 else "")
    return [
        (f"{m.get('reps')} replications per scenario over {res.months} months; replication "
        f"seeds spawned from base seed {m.get('seed')} ({shown}; all in the report)."),
        ("Common random numbers: replication r of every scenario runs on the same seed, so "
        "differences are paired replication by replication (paired-t intervals)."),
        decision.interval_note(res),
        ("Total cost = marketing spend + sales cost + alignment work; net bookings = bookings "
        "− total cost; ROI = net bookings / total cost; payback month = first month whose "
        "cumulative bookings cover the cumulative cost."),
        f"Command: {' '.join(m.get('command', []))}",
    ]


__all__ = ["DECK", "build_deck", "chart_title", "method_lines"]
