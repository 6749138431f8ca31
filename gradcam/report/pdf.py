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
    WHAT_IT_SHOWS, WHAT_IT_DOES_NOT_SHOW, ReportItem, library_versions, method_name, method_paper, resolution_text, score_text, predictions_heading, shrunk, colour_scale, model_facts, trust_lines,
)


# --- the PDF report -----------------------------------------------------------------

_A4 = (8.27, 11.69)  # inches, portrait
_SUMMARY_ROWS = 30  # items listed on the summary page; each item has its own page anyway


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


def _summary_page(items, title, model_name, weights_sha256, when, probabilities, problems):
    from matplotlib.figure import Figure

    figure = Figure(figsize=_A4)
    y = _block(figure, 0.07, 0.95, title, fontsize=18 if len(title) <= 52 else 13,
               width=52 if len(title) <= 52 else 68, max_lines=3, weight="bold")
    lines = [f"Created {when}", f"Model: {_wrapped(model_name, 90, 1)}",
             f"Weights SHA-256: {weights_sha256 or 'not computed'}",
             f"{len(items)} explanation(s)" + (f", {len(problems)} not explained" if problems else "")]
    _plain_text(figure, 0.07, y - 0.012, "\n".join(lines), fontsize=8.5, va="top", linespacing=1.6)

    y -= 0.105
    if items:
        _plain_text(figure, 0.07, y, "Contents", fontsize=12, weight="bold", va="top")
        y -= 0.025
        for n, item in enumerate(items[:_SUMMARY_ROWS], 1):
            row = (f"{n:>3}. {item.image_name[:48]}  -  {item.label[:40]}  "
                   f"{score_text(item.probability, probabilities)}  ({method_name(item.method)}, page {n + 1})")
            _plain_text(figure, 0.08, y, row, fontsize=7.5, va="top", family="monospace")
            y -= 0.0155
        if len(items) > _SUMMARY_ROWS:
            _plain_text(figure, 0.08, y, f"... and {len(items) - _SUMMARY_ROWS} more, one page each.",
                        fontsize=7.5, va="top")
            y -= 0.0155
    y -= 0.02
    _plain_text(figure, 0.07, y, "What Grad-CAM shows, and what it does not show", fontsize=12, weight="bold",
                va="top")
    y -= 0.03
    for paragraph in (WHAT_IT_SHOWS, *WHAT_IT_DOES_NOT_SHOW):
        text = _wrapped(paragraph, 105)
        _plain_text(figure, 0.07, y, text, fontsize=8, va="top", linespacing=1.4)
        y -= 0.0145 * (text.count("\n") + 1) + 0.008
    versions = ", ".join(f"{k} {v}" for k, v in library_versions().items())
    _plain_text(figure, 0.07, 0.035, _wrapped("Software: " + versions, 120), fontsize=7, color="#555555",
                va="bottom")
    return figure


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

    facts = [
        ("Explained class", f"{item.label} (class {item.target})"),
        ("Method", method_name(item.method)),
        ("Paper", method_paper(item.method)[:90]),
        ("Layer", f"{item.layer} ({resolution_text(item)})"),
        ("Colormap", f"{item.colormap} (the {strongest_colour(item.colormap)} regions raised the score most)"),
        ("Image size", "{} x {} px (as explained)".format(*item.explained_size)),
        ("Image SHA-256", item.image_sha256),
        ("Model", model_name),
        ("Weights SHA-256", weights_sha256 or "not computed"),
    ]
    y -= 0.02
    for key, value in facts:
        _plain_text(figure, 0.08, y, key, fontsize=8.5, va="top", color="#555555")
        _plain_text(figure, 0.30, y, value if "SHA" in key else _wrapped(value, 84, 1), fontsize=8 if "SHA" in key else 8.5, va="top",
                    family="monospace" if "SHA" in key else None)
        y -= 0.022
    if item.no_positive_evidence:
        _plain_text(figure, 0.08, y - 0.01, "No positive evidence for this class at this layer: the map is empty.",
                    fontsize=9, va="top", color="#b35c00")
        y -= 0.03
    if item.faithfulness:
        y -= 0.015
        _plain_text(figure, 0.07, y, "Can this map be trusted?", fontsize=11, weight="bold", va="top")
        y -= 0.025
        for heading, x in (("this map", 0.52), ("random maps", 0.66), ("centred blob", 0.82)):
            _plain_text(figure, x, y, heading, fontsize=8.5, va="top", color="#555555")
        for title, values in trust_lines(item):
            y -= 0.02
            _plain_text(figure, 0.08, y, title, fontsize=8.5, va="top")
            for value, x in zip(values, (0.52, 0.66, 0.82)):
                _plain_text(figure, x, y, value, fontsize=8.5, va="top")
        y -= 0.025
        _plain_text(figure, 0.08, y, _wrapped(item.faithfulness["verdict"], 100), fontsize=8.5, va="top")
        y -= 0.05
    if item.sanity:
        _plain_text(figure, 0.08, y, _wrapped("Sanity check: " + item.sanity["verdict"], 100), fontsize=8.5,
                    va="top")
    return figure


def report_pdf(items: Sequence[ReportItem], *, title: str = "Grad-CAM report", model=None,
               model_name: str | None = None, weights_sha256: str | None = None,
               problems: Sequence[tuple[str, str]] = (), created: datetime | None = None,
               probabilities: bool | None = None) -> bytes:
    """The report as a PDF: a summary page, then one page per item."""
    from matplotlib.backends.backend_pdf import PdfPages

    model_name, weights_sha256, probabilities = model_facts(model, model_name, weights_sha256, probabilities)
    created = (created or datetime.now(timezone.utc)).astimezone(timezone.utc)
    when = created.strftime("%Y-%m-%d %H:%M:%S UTC")
    buffer = io.BytesIO()
    # Figure objects, not pyplot: no global state, so concurrent sessions cannot mix pages.
    metadata = {"Title": title, "Creator": "Grad-CAM Explorer", "CreationDate": created}
    with PdfPages(buffer, metadata=metadata) as pdf:
        pdf.savefig(_summary_page(items, title, model_name, weights_sha256, when, probabilities, problems))
        for number, item in enumerate(items, 1):
            pdf.savefig(_item_page(number, item, model_name, weights_sha256, probabilities))
    return buffer.getvalue()
