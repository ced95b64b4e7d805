"""The slide deck: 16:9, read back with python-pptx, titles and numbers from the summary."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
from pptx import Presentation
from pptx.util import Emu

from gtmsim import charts, decision
from gtmsim.cli import main
from gtmsim.deck import build_deck, chart_title
from gtmsim.report import headline, load_results, summary_table
from gtmsim.results import write_run

JOINER = "\u2060"


def _text(shape) -> str:
    return shape.text_frame.text.replace(JOINER, "") if shape.has_text_frame else ""


@pytest.fixture(scope="module")
def deck(decision_folder, tmp_path_factory):
    out = build_deck(decision_folder, tmp_path_factory.mktemp("deck") / "board.pptx")
    return Presentation(out), load_results(decision_folder)


def test_deck_is_16_9_with_title_charts_table_and_method(deck):
    prs, res = deck
    assert Emu(prs.slide_width).inches / Emu(prs.slide_height).inches == pytest.approx(16 / 9,
                                                                                     rel=0.01)
    figures = charts.all_charts(decision.labelled_runs(res))
    names = list(figures)
    for fig in figures.values():
        matplotlib.pyplot.close(fig)
    titles = [s.shapes.title.text for s in prs.slides]
    assert len(prs.slides) == 1 + len(names) + 2
    assert titles[0] == "Siloed vs Fix the hand-off vs Acme reps"
    assert titles[1] == "Difference from Siloed"  # the decision comes first
    assert sorted(titles[1:-2]) == sorted(chart_title(n, res) for n in names)
    assert titles[-2:] == ["The options against Siloed", "Method"]
    # Every shape lies on the slide.
    for slide in prs.slides:
        for shape in slide.shapes:
            assert 0 <= shape.left and shape.left + shape.width <= prs.slide_width + 1
            assert 0 <= shape.top and shape.top + shape.height <= prs.slide_height + 1


def test_title_slide_holds_the_headline_and_the_warning(deck):
    prs, res = deck
    text = " ".join(_text(s) for s in prs.slides[0].shapes)
    assert headline(res, summary_table(res)) in text
    assert "95% CI" in text and "Only 4 replications" in text


def test_each_chart_slide_has_its_picture_and_computed_takeaway(deck):
    prs, res = deck
    takeaways = decision.chart_takeaways(res, summary_table(res))
    by_title = {chart_title(n, res): sentence for n, sentence in takeaways.items()}
    for slide in list(prs.slides)[1:-2]:
        pictures = [s for s in slide.shapes if s.shape_type == 13]
        assert len(pictures) == 1
        title = slide.shapes.title.text
        texts = [_text(s) for s in slide.shapes if s != slide.shapes.title]
        assert by_title[title] in texts


def test_options_table_cells_are_the_summary_numbers(deck):
    prs, res = deck
    table = summary_table(res)
    slide = prs.slides[len(prs.slides) - 2]
    grid = next(s for s in slide.shapes if s.has_table).table
    cells = [[grid.cell(i, j).text.replace(JOINER, "").replace("\n", " ")
              for j in range(len(grid.columns))] for i in range(len(grid.rows))]
    assert cells[0] == list(decision.OPTION_HEADER)
    assert cells[1:] == decision.option_rows(decision.options(res, table))
    # And those are the summary's numbers: the $ difference of each option.
    books = table[table["outcome"] == "cumulative_bookings"].set_index("scenario")
    for row, name in zip(cells[2:], ("acme_fix", "acme_reps"), strict=True):
        assert row[2].startswith(decision.money(books.loc[name, "diff"], signed=True))
        assert row[1] == decision.money(books.loc[name, "mean"])


def test_cli_writes_the_deck_and_refuses_a_non_results_folder(decision_folder, tmp_path, capsys):
    from gtmsim import load_scenario, simulate

    run = tmp_path / "run"
    write_run(simulate(load_scenario("baseline", {"market.prospects": 2000, "months": 4}),
                       seed=2), run)
    assert main(["report", str(run), "--pptx"]) == 0  # a single run: key figures, no options
    prs = Presentation(run / "deck.pptx")
    assert [s.shapes.title.text for s in prs.slides][-2:] == ["Key figures", "Method"]
    assert "Deck:" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing"), "--pptx"]) == 2
    assert "not a results folder" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()
