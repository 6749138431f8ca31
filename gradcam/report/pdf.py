"""The PDF report: the HTML report's content (matplotlib, one page per explanation
after a summary). User text is never parsed as mathtext. This module never imports Streamlit.
"""

from __future__ import annotations

import io
import textwrap
from datetime import datetime, timezone
from typing import Sequence

import numpy as np

from ..engine.overlay import strongest_colour
from .content import (
    WHAT_IT_SHOWS, WHAT_IT_DOES_NOT_SHOW, ReportItem, library_versions, method_name, method_paper, score_text, predictions_heading, shrunk, colour_scale, model_facts, trust_lines, trust_sentences, resolution_fact,
    what_the_colours_mean, layer_fact, no_evidence_notice,
)


# --- the PDF report -----------------------------------------------------------------

_A4 = (8.27, 11.69)  # inches, portrait
_FOOTER_TOP = 0.065  # the software footer of the first page stays below this (a share of the page's height)
_TRUST_COLUMNS = (("this map", 0.58), ("random maps", 0.70), ("centred blob", 0.84))


def _no_ligatures() -> dict:
    # Matplotlib 3.11 shapes text with ligatures ("ff" becomes one glyph, U+FB00); a
    # PDF viewer then copies "coffee" as "co ee" and cannot find it. Older releases
    # draw no ligatures and do not know the option.
    from matplotlib.text import Text

    return {"fontfeatures": ("-liga",)} if hasattr(Text, "set_fontfeatures") else {}


def _plain_text(figure, x, y, text, *, va="top", linespacing=1.2, **kwargs):
    """Text that is never parsed as mathtext ("$5 bill" stays text), drawn letter by
    letter so a viewer's copy and search find every word. Each line is its own text:
    matplotlib drops font features (the ligatures' switch) on multi-line texts."""
    lines = str(text).split("\n")
    step = kwargs.get("fontsize", 10) * linespacing / 72 / figure.get_figheight()
    if va == "bottom":
        y += step * (len(lines) - 1)
    for number, line in enumerate(lines):
        figure.text(x, y - number * step, line, parse_math=False, va=va, **_no_ligatures(), **kwargs)


def _wrapped(text: str, width: int, max_lines: int | None = None) -> str:
    """``text`` in lines of at most ``width`` characters (a long file name without
    spaces is cut anywhere), at most ``max_lines`` of them, the last ending in "..."."""
    lines = textwrap.wrap(text, width) or [text]
    if max_lines is not None and len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 3] + "..."
    return "\n".join(lines)


def _block(figure, x, y, text, *, fontsize, width, max_lines=3, linespacing=1.25, **kwargs) -> float:
    """Wrapped text whose top is at ``y``; returns the y just below it."""
    wrapped = _wrapped(text, width, max_lines)
    _plain_text(figure, x, y, wrapped, fontsize=fontsize, linespacing=linespacing, **kwargs)
    line = fontsize * linespacing / 72 / _A4[1]  # one line's height as a share of the page
    return y - line * (wrapped.count("\n") + 1)


def _colour_scale_axes(figure, rect, colormap: str) -> None:
    """The colour scale under an overlay, with its ends named as in the HTML report."""
    axes = figure.add_axes(rect)
    axes.imshow(np.asarray(colour_scale(colormap)), aspect="auto")
    axes.set_xticks([])
    axes.set_yticks([])
    left, bottom, width, height = rect
    _plain_text(figure, left, bottom - 0.004, "no evidence", fontsize=7.5, va="top", color="#555555")
    _plain_text(figure, left + width, bottom - 0.004, "strongest", fontsize=7.5, va="top", ha="right",
                color="#555555")


def _summary_pages(items, title, model_name, weights_sha256, when, probabilities, problems, first_pages):
    """The title page, and the contents as long as they run: every item listed with the page it starts
    on (``first_pages``), the contents continuing onto further pages, the software footer of the first
    page never under the text (its flow stops above it)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=_A4)
    y = _block(figure, 0.07, 0.95, title, fontsize=18 if len(title) <= 52 else 13,
               width=52 if len(title) <= 52 else 68, max_lines=3, weight="bold")
    lines = [f"Created {when}", f"Model: {_wrapped(model_name, 90, 1)}",
             f"Weights SHA-256: {weights_sha256 or 'not computed'}",
             f"{len(items)} explanation(s)" + (f", {len(problems)} not explained" if problems else "")]
    _plain_text(figure, 0.07, y - 0.012, "\n".join(lines), fontsize=8.5, va="top", linespacing=1.6)
    versions = ", ".join(f"{k} {v}" for k, v in library_versions().items())
    _plain_text(figure, 0.07, 0.035, _wrapped("Software: " + versions, 120), fontsize=7, color="#555555",
                va="bottom")

    flow = _Flow(figure, y - 0.105, "Contents (continued)", bottom=_FOOTER_TOP)
    if items:
        flow.heading("Contents", keep=0.0155 * 2, fontsize=12)
        for n, (item, page) in enumerate(zip(items, first_pages), 1):
            row = (f"{n:>3}. {item.image_name[:48]}  -  {item.label[:40]}  "
                   f"{score_text(item.probability, probabilities)}  ({method_name(item.method)}, page {page})")
            flow.row([(0.08, row, {"family": "monospace"})], fontsize=7.5, height=0.0155)
        flow.gap(0.012)
    flow.heading("What Grad-CAM shows, and what it does not show", keep=0.04, fontsize=12)
    for paragraph in (WHAT_IT_SHOWS, *WHAT_IT_DOES_NOT_SHOW):
        flow.paragraph(paragraph, x=0.07, width=105, fontsize=8)
        flow.gap(0.005)
    return flow.figures


def _summary_page(items, title, model_name, weights_sha256, when, probabilities, problems):
    """The first page of the summary alone (the contents' page numbers left unknown)."""
    return _summary_pages(items, title, model_name, weights_sha256, when, probabilities, problems,
                          first_pages=["?"] * len(items))[0]


def _item_page(number, item: ReportItem, model_name, weights_sha256, probabilities):
    from matplotlib.figure import Figure

    figure = Figure(figsize=_A4)
    # A file name can be any length: wrapped (cut anywhere when it has no spaces), never off the page.
    heading = f"{number}. {item.image_name}"
    long = len(heading) > 62
    y = _block(figure, 0.07, 0.962, heading, fontsize=11 if long else 14, width=82 if long else 62, max_lines=3,
               weight="bold")
    _block(figure, 0.07, y - 0.006, f"{method_name(item.method)} for {item.label} "
           f"({score_text(item.probability, probabilities)})", fontsize=10.5, width=88, max_lines=2)
    overlay_caption = f"Overlay, opacity {item.opacity:.2f}, colormap {item.colormap}"
    for position, (picture, caption) in enumerate(((item.image, "The photo"), (item.overlay, overlay_caption))):
        axes = figure.add_axes((0.07 + position * 0.45, 0.575, 0.41, 0.29))
        axes.imshow(np.asarray(shrunk(picture, 800)))
        axes.set_axis_off()
        axes.set_title(caption, fontsize=9, **_no_ligatures())
    _colour_scale_axes(figure, (0.52 + 0.41 / 2 - 0.12, 0.553, 0.24, 0.011), item.colormap)

    _plain_text(figure, 0.07, 0.515, predictions_heading(len(item.predictions), probabilities), fontsize=11,
                weight="bold", va="top")
    y = 0.487
    for rank, p in enumerate(item.predictions, 1):
        mark = "  <- explained" if p.index == item.target else ""
        _plain_text(figure, 0.08, y, f"{rank}. {p.label[:60]}", fontsize=9, va="top",
                    weight="bold" if mark else "normal")
        _plain_text(figure, 0.62, y, score_text(p.probability, probabilities) + mark, fontsize=9, va="top")
        y -= 0.022

    colours = what_the_colours_mean(item.method, strongest_colour(item.colormap), item.label)
    facts = [
        ("Explained class", f"{item.label} (class {item.target})"),
        ("Method", method_name(item.method)),
        ("Paper", method_paper(item.method)),
        ("Layer", layer_fact(item.method, item.layer)),
        ("Resolution", resolution_fact(item)),
        ("Colormap", f"{item.colormap} ({_in_brackets(colours)})"),
        ("Image size", "{} x {} px (as explained)".format(*item.explained_size)),
        ("Image SHA-256", item.image_sha256),
        ("Model", model_name),
        ("Weights SHA-256", weights_sha256 or "not computed"),
    ]
    flow = _Flow(figure, y - 0.02, f"{number}. {_wrapped(item.image_name, 70, 1)} (continued)")
    for key, value in facts:
        if "SHA" in key:
            flow.row([(0.08, key, {"color": "#555555"}), (0.30, value, {"family": "monospace", "fontsize": 8})])
        else:
            flow.paragraph(value, x=0.30, width=74, label=(0.08, key, {"color": "#555555"}))
    if item.no_positive_evidence:
        flow.gap(0.008)
        flow.paragraph(no_evidence_notice(item.method, item.label), fontsize=9,
                       color="#b35c00")
    flow.gap(0.015)
    rows = [[(0.08, _wrapped(title, 62, 1), {})] + [(x, value, {}) for value, (_, x) in zip(values, _TRUST_COLUMNS)]
            for title, values in trust_lines(item)] if item.faithfulness else []
    pictures = list(item.evidence)
    # The heading, the scores and the first chart (the curves of those scores) on one page when they fit one.
    together = 0.03 + (0.02 * (len(rows) + 1) + 0.008 if rows else 0) + \
        (flow.picture_height(pictures[0][1]) + 0.03 if pictures else 0)
    flow.heading("Can this map be trusted?", keep=together if together < 0.85 else 0.06)
    if rows:
        flow.table([(x, heading, {"color": "#555555"}) for heading, x in _TRUST_COLUMNS], rows)
        flow.gap(0.008)
    for caption, picture in pictures:
        flow.picture(picture, caption)
    for heading, sentence in trust_sentences(item):
        flow.paragraph(f"{heading}: {sentence}")
        flow.gap(0.004)
    return flow.figures


class _Flow:
    """Text that runs down a page and onto new ones: every line is drawn whole,
    none is cut at the bottom edge (the report must say all the HTML says)."""

    BOTTOM = 0.05  # the lowest a line may start, as a share of the page's height

    def __init__(self, figure, y: float, continued: str, bottom: float = BOTTOM):
        """``bottom``: how low the first page's text may go (above a footer); later pages go to BOTTOM."""
        self.figures, self.figure, self.y, self.continued = [figure], figure, y, continued
        self.bottom = bottom
        self.repeat = None  # a table's header, drawn again at the top of each page the table runs onto

    def _room(self, height: float) -> bool:
        """Start a new page unless ``height`` fits above the bottom; True when it started one."""
        from matplotlib.figure import Figure

        if self.y - height >= self.bottom:
            return False
        self.figure = Figure(figsize=_A4)
        self.figures.append(self.figure)
        self.bottom = self.BOTTOM
        self.y = _block(self.figure, 0.07, 0.962, self.continued, fontsize=10, width=96, max_lines=2,
                        weight="bold", color="#555555") - 0.012
        if self.repeat is not None:
            self.row(self.repeat)
        return True

    def gap(self, height: float) -> None:
        self.y -= height

    def heading(self, text: str, keep: float, fontsize: float = 11) -> None:
        """A section's title, kept with the first ``keep`` of what follows it: never alone at the foot of
        a page with its content overleaf."""
        step = fontsize * 1.3 / 72 / _A4[1]
        self._room(step + 0.003 + keep)
        _plain_text(self.figure, 0.07, self.y, text, va="top", fontsize=fontsize, weight="bold")
        self.y -= step + 0.003

    def table(self, header, rows, height: float = 0.02) -> None:
        """Rows of cells under ``header``; a page break inside the table repeats the header."""
        self._room(2 * height)
        self.row(header, height=height)
        self.repeat = header
        try:
            for cells in rows:
                self.row(cells, height=height)
        finally:
            self.repeat = None

    def row(self, cells, fontsize: float = 8.5, height: float = 0.02) -> None:
        """One line of cells (x, text, text options) side by side."""
        self._room(height)
        for x, text, options in cells:
            _plain_text(self.figure, x, self.y, text, va="top", **{"fontsize": fontsize, **options})
        self.y -= height

    @staticmethod
    def picture_height(image, width: float = 0.86) -> float:
        """The share of the page's height an image ``width`` of the page wide takes."""
        return width * _A4[0] * image.height / image.width / _A4[1]

    def picture(self, image, caption: str, width: float = 0.86) -> None:
        """An image ``width`` of the page wide (kept whole: onto the next page when it does not fit), its
        caption under it."""
        height = self.picture_height(image, width)
        self._room(height + 0.03)
        axes = self.figure.add_axes((0.07, self.y - height, width, height))
        axes.imshow(np.asarray(image))
        axes.set_axis_off()
        self.y -= height + 0.004
        self.paragraph(caption, fontsize=7.5, color="#555555")
        self.y -= 0.006

    def paragraph(self, text: str, *, x: float = 0.08, width: int = 100, fontsize: float = 8.5, label=None,
                  **options) -> None:
        """``text`` wrapped to ``width`` characters, every line kept; ``label`` (x, text,
        options) is drawn beside the first line."""
        step = fontsize * 1.3 / 72 / _A4[1]
        for number, line in enumerate(_wrapped(text, width).split("\n")):
            self._room(step)
            if number == 0 and label is not None:
                _plain_text(self.figure, label[0], self.y, label[1], va="top", fontsize=fontsize, **label[2])
            _plain_text(self.figure, x, self.y, line, va="top", fontsize=fontsize, **options)
            self.y -= step
        self.y -= 0.003


def _in_brackets(sentence: str) -> str:
    """A sentence inside brackets after a word: "The dark red regions ..." reads "the dark red regions ..."."""
    sentence = sentence.rstrip(".")
    return "t" + sentence[1:] if sentence.startswith("The ") else sentence


def report_pdf(items: Sequence[ReportItem], *, title: str = "Grad-CAM report", model=None,
               model_name: str | None = None, weights_sha256: str | None = None,
               problems: Sequence[tuple[str, str]] = (), created: datetime | None = None,
               probabilities: bool | None = None) -> bytes:
    """The report as a PDF: a summary page, then a page per item (more when its
    text runs on: nothing is cut)."""
    from matplotlib.backends.backend_pdf import PdfPages

    model_name, weights_sha256, probabilities = model_facts(model, model_name, weights_sha256, probabilities)
    created = (created or datetime.now(timezone.utc)).astimezone(timezone.utc)
    when = created.strftime("%Y-%m-%d %H:%M:%S UTC")
    buffer = io.BytesIO()
    # Figure objects, not pyplot: no global state, so concurrent sessions cannot mix pages.
    metadata = {"Title": title, "Creator": "Grad-CAM Explorer", "CreationDate": created}
    item_pages = [_item_page(number, item, model_name, weights_sha256, probabilities)
                  for number, item in enumerate(items, 1)]
    # The contents name each item's first page, which follows the contents' own pages: lay them out
    # once to count those (their length does not depend on the numbers), then with the numbers.
    summary_args = (items, title, model_name, weights_sha256, when, probabilities, problems)
    front = len(_summary_pages(*summary_args, first_pages=[0] * len(items)))
    first_pages = list(np.cumsum([front + 1] + [len(pages) for pages in item_pages[:-1]])) if items else []
    with PdfPages(buffer, metadata=metadata) as pdf:
        for page in _summary_pages(*summary_args, first_pages=[int(p) for p in first_pages]):
            pdf.savefig(page)
        for pages in item_pages:
            for page in pages:
                pdf.savefig(page)
    return buffer.getvalue()
