"""The PDF of a long report as a reader meets it (issue 32, item 7): the first page's footer never
under the text, the contents naming the page each section starts on, a table broken across pages
repeating its header, the scores kept with their chart, the legends beside the curves. The pages
were also rendered with pdftoppm and looked at (docs/dashboard.md)."""

import io
import re

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

import gradcam
from gradcam import report
from gradcam.report import pdf
from synthetic import SIDE, centre_reader

SECTIONS = 65


@pytest.fixture(scope="module")
def scored():
    model = centre_reader()
    photo = Image.fromarray(np.random.default_rng(5).integers(120, 256, (SIDE, SIDE, 3), dtype=np.uint8))
    explanation = gradcam.explain(model, photo, target=0, layer="feature")
    scores = gradcam.faithfulness(model, photo, explanation, steps=8, baseline="mean", road=False, seeds=2)
    check = gradcam.sanity_check(model, photo, target=0, layer="feature")
    evidence = (("Deletion and insertion curves", report.content.curves_picture(scores)),
                ("The sanity check's strip", report.content.sanity_picture(photo, check)))
    base = report.ReportItem.from_explanation(photo, "photo.png", "0" * 64, explanation)
    item = report.ReportItem(**{**vars(base), "faithfulness": scores.numbers(), "sanity": check.summary(),
                                "evidence": evidence})
    return scores, [report.ReportItem(**{**vars(item), "image_name": f"shoot-{n:02d}.png"}) for n in range(SECTIONS)]


def boxes(figure):
    renderer = FigureCanvasAgg(figure).get_renderer()
    return [(text.get_text(), text.get_window_extent(renderer)) for text in figure.texts]


def test_the_first_pages_footer_is_never_under_the_text_of_a_long_report(scored):
    _, items = scored
    pages = pdf._summary_pages(items, "Sixty-five photos", "model", None, "today", True, (),
                               first_pages=list(range(SECTIONS)))
    assert len(pages) >= 2  # the contents run onto a second page rather than under the footer
    drawn = boxes(pages[0])
    footer = [box for text, box in drawn if text.startswith("Software:") or text.startswith("1.")]
    body = [box for text, box in drawn if not (text.startswith("Software:") or text.startswith("1."))]
    top_of_footer = max(box.y1 for box in footer)
    assert all(box.y0 > top_of_footer for box in body), min(box.y0 for box in body)


def test_the_contents_name_the_page_each_section_starts_on(scored):
    import pypdf

    _, items = scored
    reader = pypdf.PdfReader(io.BytesIO(report.report_pdf(items, weights_sha256="a" * 64)))
    text = [page.extract_text() for page in reader.pages]
    listed = {}
    for page in text[:3]:
        for number, start in re.findall(r"(\d+)\. shoot-\d+\.png .*?page (\d+)\)", page):
            listed[int(number)] = int(start)
    assert sorted(listed) == list(range(1, SECTIONS + 1))  # every section listed, none "and 35 more"
    for number, start in listed.items():
        # The section's own heading, on a line of its own (a continued page says "(continued)" after it).
        assert re.search(rf"^{number}\. shoot-{number - 1:02d}\.png$", text[start - 1], re.M), (number, start)


def test_a_table_broken_across_pages_repeats_its_header():
    first = Figure(figsize=pdf._A4)
    flow = pdf._Flow(first, 0.05 + 0.02 * 3, "1. photo.png (continued)")
    header = [(0.58, "this map", {}), (0.70, "random maps", {})]
    flow.table(header, [[(0.08, f"score {n}", {}), (0.58, "0.5", {})] for n in range(6)])
    assert len(flow.figures) == 2
    for figure in flow.figures:
        texts = [text for text, _ in boxes(figure)]
        first_row = next(n for n, text in enumerate(texts) if text.startswith("score"))
        assert "this map" in texts[:first_row] and "random maps" in texts[:first_row], texts
    assert [t for t, _ in boxes(flow.figures[1])][0] == "1. photo.png (continued)"


def test_the_scores_stay_on_the_page_of_their_chart(scored):
    scores, items = scored
    curves = np.asarray(report.content.curves_picture(scores))
    for figure in pdf._item_page(1, items[0], "model", None, True):
        texts = [text for text, _ in boxes(figure)]
        if "Deletion AUC (lower is better)" in texts:
            shown = [image.get_array().shape for axes in figure.axes for image in axes.get_images()]
            assert curves.shape in shown
            assert "Can this map be trusted?" in texts  # and the heading with them
            break
    else:
        pytest.fail("no page holds the scores")


def test_the_legends_sit_under_the_curves_not_on_them(scored):
    scores, _ = scored
    figure = report.content.curves_figure(scores)
    renderer = FigureCanvasAgg(figure).get_renderer()
    for axes in figure.axes:
        legend = axes.get_legend().get_window_extent(renderer)
        plot = axes.get_window_extent(renderer)
        assert legend.y1 <= plot.y0, (legend, plot)
