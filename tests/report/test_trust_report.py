"""The report says everything the Trust page concluded, in both formats: the PDF
carries every sentence of the HTML's trust section, wrapped and never cut, the
way scores were measured, and each method's own resolution."""

import html as html_module
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

import gradcam
from gradcam import report
from gradcam.report.content import trust_sentences
from synthetic import SIDE, centre_reader


class Paragraphs(HTMLParser):
    """The text of every <p> inside the trust section."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.depth, self.inside, self.found = 0, False, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "div" and ("class", "trust") in attrs:
            self.inside = True
        if self.inside and tag == "p":
            self.found.append("")

    def handle_endtag(self, tag):
        if tag == "div":
            self.inside = False

    def handle_data(self, data):
        if self.inside and self.found:
            self.found[-1] += data


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def item():
    model = centre_reader()
    photo = Image.fromarray(np.random.default_rng(1).integers(120, 256, (SIDE, SIDE, 3), dtype=np.uint8))
    explanation = gradcam.explain(model, photo, target=0, layer="feature")
    scores = gradcam.faithfulness(model, photo, explanation, steps=12, baseline="mean", road=False, seeds=2)
    check = gradcam.sanity_check(model, photo, target=0, layer="feature")
    long_name = "a photo with a long name " * 4 + ".png"
    evidence = (("Deletion and insertion curves", report.content.curves_picture(scores)),
                ("The sanity check's strip", report.content.sanity_picture(photo, check)))
    return report.ReportItem(**{**vars(report.ReportItem.from_explanation(photo, long_name, "0" * 64, explanation)),
                                "faithfulness": scores.numbers(), "sanity": check.summary(), "evidence": evidence})


def test_the_pdf_holds_every_sentence_of_the_html_trust_section(item):
    import pypdf

    html = report.report_html([item], weights_sha256="a" * 64)
    paragraphs = [words(p) for p in Paragraphs(html).found]
    assert len(paragraphs) == 5 and paragraphs[0].startswith("Bottom line: ")
    assert paragraphs[3].startswith("Sanity check: ")
    assert "Deleted pixels became the photo's mean colour, 12 steps each way" in paragraphs[2]
    reader = pypdf.PdfReader(io.BytesIO(report.report_pdf([item], weights_sha256="a" * 64)))
    # A page the item runs onto starts with the item's "(continued)" heading: read past it.
    text = words(" ".join(re.sub(r"^.*?\(continued\)", "", page.extract_text(), flags=re.S) if n > 1 else
                          page.extract_text() for n, page in enumerate(reader.pages)))
    for paragraph in paragraphs:
        assert paragraph in text, paragraph


def test_a_long_trust_section_runs_onto_a_new_page_instead_of_off_the_edge(item):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from gradcam.report import pdf

    verbose = {**item.faithfulness, "verdict": "A long verdict sentence that keeps going. " * 40}
    long = report.ReportItem(**{**vars(item), "faithfulness": verbose, "evidence": ()})  # text alone
    pages = pdf._item_page(1, long, "test", "a" * 64, True)
    assert len(pages) == 2 and "(continued)" in pages[1].texts[0].get_text()
    for figure in pages:
        renderer = FigureCanvasAgg(figure).get_renderer()
        for text in figure.texts:
            box = text.get_window_extent(renderer)
            assert figure.bbox.y0 <= box.y0 and box.x1 <= figure.bbox.x1, text.get_text()
    drawn = words(" ".join(t.get_text() for figure in pages for t in figure.texts
                           if not t.get_text().endswith("(continued)")))
    assert words(verbose["verdict"]) in drawn


def test_a_missing_check_says_so_and_each_method_names_its_own_resolution(item):
    bare = report.ReportItem(**{**vars(item), "faithfulness": None, "sanity": None})
    said = dict(trust_sentences(bare))
    assert said["Faithfulness"].startswith("Not scored") and said["Sanity check"].startswith("Not run")
    guided = report.ReportItem(**{**vars(item), "method": "guided-backprop", "layer_resolution": (SIDE, SIDE)})
    html = report.report_html([guided], weights_sha256="a" * 64)
    assert f"{SIDE} x {SIDE} input pixels: computed from the gradient at the pixels" in html
    assert f"8 x 8 cells" not in html
    assert "32 x 32 cells of layer feature" in report.report_html([item], weights_sha256="a" * 64)


def test_scores_show_units_a_person_reads(item):
    lines = dict(report.content.trust_lines(item))
    assert lines["Increase in Confidence (yes or no)"][0] in ("yes", "no")
    assert lines["Increase in Confidence (yes or no)"][1].endswith("% of maps")
    zero = report.ReportItem(**{**vars(item), "faithfulness": {**item.faithfulness, "map": {
        **item.faithfulness["map"], "road_combined": -0.00001}}})
    assert dict(report.content.trust_lines(zero))["ROAD combined (higher is better)"][0] == "0.000"


def test_the_evidence_is_in_both_formats_and_the_bottom_line_says_no_more_than_it(item):
    """The curves and the sanity strip are pictures in the HTML and the PDF; the bottom line is the verdicts'
    codes put in words, written out here from the numbers."""
    import pypdf

    html = report.report_html([item], weights_sha256="a" * 64)
    figures = re.findall(r'<figure class="evidence"><img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"',
                         html)
    assert [html_module.unescape(alt) for _, alt in figures] == ["Deletion and insertion curves",
                                                                 "The sanity check's strip"]
    import base64

    curves = Image.open(io.BytesIO(base64.b64decode(figures[0][0])))
    assert curves.width > 2 * curves.height  # two plots side by side
    reader = pypdf.PdfReader(io.BytesIO(report.report_pdf([item], weights_sha256="a" * 64)))
    pictures = [image for page in reader.pages[1:] for image in page.images]
    assert len(pictures) >= 2 + 2  # the photo and overlay, then the two pictures of evidence
    text = words(" ".join(page.extract_text() for page in reader.pages))
    assert "Deletion and insertion curves" in text and "The sanity check's strip" in text

    numbers, sanity = item.faithfulness, item.sanity
    mine, random, blob = numbers["map"], numbers["random"], numbers["blob"]
    beats_random = mine["deletion_auc"] < random["deletion_auc"] and mine["insertion_auc"] > random["insertion_auc"]
    beats_blob = [mine["deletion_auc"] < blob["deletion_auc"], mine["insertion_auc"] > blob["insertion_auc"]]
    line = dict(trust_sentences(item))["Bottom line"]
    if numbers["judgement"] == "cannot judge":
        assert line.startswith("The faithfulness test cannot judge this map;")
    elif beats_random and all(beats_blob):
        assert line.startswith("Beats random maps and a centred blob;")
    elif beats_random and not any(beats_blob):
        assert line.startswith("Beats random maps, not a centred blob;")
    elif beats_random:
        assert line.startswith("Beats random maps; a centred blob does as well on one of the two curves;")
    else:
        assert "better than random" in line or "no better" in line.lower()
    assert line.endswith("passes the sanity check." if sanity["passed"] else "fails the sanity check.")
    bare = report.ReportItem(**{**vars(item), "faithfulness": None, "sanity": None, "evidence": ()})
    assert report.content.bottom_line(bare) == "Faithfulness not scored; sanity check not run."
    assert "Bottom line" not in dict(trust_sentences(bare))  # nothing to sum up: "Not scored", "Not run" say it
    half = report.ReportItem(**{**vars(item), "faithfulness": None})
    assert dict(trust_sentences(half))["Bottom line"].startswith("Faithfulness not scored; ")


def test_the_report_says_why_a_random_map_can_win_on_average_drop(item):
    """Issue 32, item 5: the two scores of the photo times the map reward keeping the photo in view."""
    from gradcam.trust.faithfulness import MASKED_PHOTO_SCORES

    scored = dict(trust_sentences(item))["How it was scored"]
    assert scored.endswith(MASKED_PHOTO_SCORES)
    assert "a random map can win on these two" in MASKED_PHOTO_SCORES
    assert words(MASKED_PHOTO_SCORES) in words(" ".join(Paragraphs(report.report_html([item])).found))
    # The sentence's claim, measured: a map of ones highlights nothing and loses nothing.
    model = centre_reader()
    photo = Image.fromarray(np.random.default_rng(1).integers(120, 256, (SIDE, SIDE, 3), dtype=np.uint8))
    ones = gradcam.faithfulness(model, photo, np.ones((SIDE, SIDE), np.float32), target=0, steps=4, road=False,
                                seeds=1)
    assert ones.average_drop == 0.0 and ones.increase_in_confidence in (0.0, 1.0)
