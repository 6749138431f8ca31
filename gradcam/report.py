"""Reports for people who were not at the screen.

``report_html`` writes ONE self-contained HTML file: every image is a base64
``data:`` URI, the CSS is inline, there is no script and no external URL, so it
opens offline in any browser and can be mailed as it is. ``report_pdf`` gives
the same content as a PDF (matplotlib, one page per explanation after a summary).

Everything a user supplied (file names, class labels, the model's name) is data:
it is HTML-escaped here, and never parsed as mathtext in the PDF.

This module never imports Streamlit.
"""

from __future__ import annotations

import base64
import html
import importlib.metadata
import io
import platform
import re
import textwrap
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from .cam import METHODS, Explanation, Prediction
from .overlay import colorize, overlay, strongest_colour

# Embedded photos are downscaled to this many pixels on their long side (JPEG):
# a 50-photo report stays a few megabytes instead of hundreds.
MAX_EMBEDDED_SIDE = 1024
JPEG_QUALITY = 85

# The same notes the dashboard gives, as plain sentences (our own text, not user data).
WHAT_IT_SHOWS = (
    "Grad-CAM shows where the chosen layer's feature maps raised the model's score for the "
    "explained class: each feature map is weighted by how much the class's score (before softmax) "
    "depends on it, and only the positive part of the weighted sum is drawn."
)
WHAT_IT_DOES_NOT_SHOW = (
    "It is a coarse map: it is computed on the chosen layer's own grid of cells (its layer resolution, "
    "given with each explanation) and smoothed up to the photo, so it cannot point at anything smaller "
    "than one cell; the soft edges are interpolation, not detail.",
    "It shows correlation inside the network, not causation: a highlighted region raised this class's "
    "score for this photo in this network; it does not prove that the region caused the decision, and a "
    "region that is not highlighted may still matter.",
    "At the last convolutional layer the map is class-discriminative (different classes light up "
    "different regions); earlier layers give sharper maps that respond to edges and textures of any class.",
    "Grad-CAM++ weighs positive gradients position by position; its maps usually spread over more of "
    "the photo, so they tell classes apart less sharply than Grad-CAM's.",
    "An empty map means there is no positive evidence for the class at that layer: nothing the layer "
    "sees raises the score. It does not mean the model ignored the photo.",
)


# --- what one explanation in a report holds -------------------------------------


@dataclass(frozen=True)
class ReportItem:
    """One explained photo: everything a report shows about it, nothing more.

    Deliberately flat (no full-size heatmap): a batch of hundreds of photos can
    keep its items as thumbnails and a few numbers.
    """

    image: Image.Image  # the photo as explained (downscaled when embedded)
    image_name: str
    image_sha256: str  # of the bytes as uploaded
    overlay: Image.Image  # the heatmap over the photo
    target: int
    label: str  # the explained class
    probability: float
    predictions: Sequence[Prediction]  # the model's top-5
    layer: str
    layer_resolution: tuple[int, int]  # (height, width) of the layer's grid
    method: str  # a key of gradcam.METHODS
    no_positive_evidence: bool = False
    opacity: float = 0.4
    colormap: str = "jet"
    image_size: tuple[int, int] | None = None  # (width, height) as explained, when ``image`` is a thumbnail
    faithfulness: dict | None = None  # gradcam.Faithfulness.numbers(): each score with its random baseline
    sanity: dict | None = None  # gradcam.SanityCheck.summary(), when the check was run

    @property
    def explained_size(self) -> tuple[int, int]:
        return tuple(self.image_size or self.image.size)

    @classmethod
    def from_explanation(cls, image: Image.Image, image_name: str, image_sha256: str, explanation: Explanation,
                         overlay_image: Image.Image | None = None, *, opacity: float = 0.4,
                         colormap: str = "jet") -> ReportItem:
        """An item from ``gradcam.explain``'s result; the overlay is made when not given."""
        if overlay_image is None:
            overlay_image = overlay(image, explanation.heatmap, opacity, colormap)
        return cls(
            image=image, image_name=image_name, image_sha256=image_sha256, overlay=overlay_image,
            target=explanation.target, label=explanation.label, probability=explanation.probability,
            predictions=tuple(explanation.predictions), layer=explanation.layer,
            layer_resolution=tuple(explanation.raw.shape), method=explanation.method,
            no_positive_evidence=explanation.no_positive_evidence, opacity=opacity, colormap=colormap,
        )


# --- small shared pieces ----------------------------------------------------------


def library_versions() -> dict[str, str]:
    """Versions of what computed the report, read from package metadata: nothing is
    imported (Streamlit in particular stays out of the engine)."""
    versions = {"python": platform.python_version()}
    distributions = {
        "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel"),
        "keras": ("keras",),
        "numpy": ("numpy",),
        "pillow": ("pillow",),
        "matplotlib": ("matplotlib",),
        "streamlit": ("streamlit",),
    }
    for name, candidates in distributions.items():
        for distribution in candidates:
            try:
                versions[name] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def method_name(method: str) -> str:
    return METHODS[method].display_name if method in METHODS else str(method)


def method_paper(method: str) -> str:
    """The paper a method comes from, for the report's facts."""
    return METHODS[method].paper if method in METHODS else "unknown"


def score_text(value: float, probabilities: bool = True) -> str:
    """A probability as a percentage; a one-output regression model's value as the number it is."""
    return f"{value:.1%}" if probabilities else f"{value:.4g}"


def predictions_heading(count: int, probabilities: bool = True) -> str:
    """"Top-5 predictions", or what a model with fewer outputs really shows."""
    if not probabilities:
        return "The model's output"  # one linear output: a regression or a raw score, not a ranking
    return f"Top-{count} predictions" if count > 1 else "The prediction"


def file_stem(name: str, limit: int = 60) -> str:
    """A file name's stem that is safe inside a download's file name."""
    stem = name.rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")
    return stem[:limit] or "image"


def shrunk(image: Image.Image, max_side: int) -> Image.Image:
    image = image.convert("RGB") if image.mode != "RGB" else image
    if max(image.size) <= max_side:
        return image
    small = image.copy()
    small.thumbnail((max_side, max_side), Image.LANCZOS)
    return small


def jpeg_bytes(image: Image.Image, max_side: int | None = None, quality: int = JPEG_QUALITY) -> bytes:
    if max_side is not None:
        image = shrunk(image, max_side)
    buffer = io.BytesIO()
    (image.convert("RGB") if image.mode != "RGB" else image).save(buffer, format="JPEG", quality=quality,
                                                                  optimize=True)
    return buffer.getvalue()


def _data_uri(image: Image.Image, max_side: int = MAX_EMBEDDED_SIDE) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(image, max_side)).decode("ascii")


def _png_data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _colour_scale(colormap: str) -> Image.Image:
    ramp = np.tile(np.linspace(0.0, 1.0, 256, dtype=np.float32), (10, 1))
    return Image.fromarray(colorize(ramp, colormap))


def _weights_fingerprint(model, weights_sha256: str | None) -> str | None:
    if weights_sha256 is not None or model is None:
        return weights_sha256
    from .models import sha256_of_weights

    return sha256_of_weights(model)  # once per report, however many items


def _model_facts(model, model_name: str | None, weights_sha256: str | None,
                 probabilities: bool | None = None) -> tuple[str, str | None, bool]:
    name = model_name if model_name is not None else (getattr(model, "name", None) or "unknown model")
    if probabilities is None:
        probabilities = bool(getattr(model, "outputs_probabilities", True)) if model is not None else True
    return name, _weights_fingerprint(model, weights_sha256), probabilities


# --- the HTML report ----------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1f2329;background:#fff;margin:0 auto;max-width:1100px;padding:24px 28px 48px;line-height:1.45}
h1{font-size:1.9rem;margin:0 0 4px}
h2{font-size:1.3rem;margin:0 0 12px}
h1,h2,td,figcaption{overflow-wrap:anywhere}
.lead{color:#555;margin:0 0 16px}
table{border-collapse:collapse;margin:0 0 12px}
th,td{text-align:left;padding:4px 10px 4px 0;vertical-align:top;border-bottom:1px solid #e6e8eb}
th{color:#555;font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code,.hash{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em;word-break:break-all}
section.item{border-top:2px solid #d0d4da;padding:20px 0 8px;break-inside:avoid;page-break-inside:avoid}
.figures{display:flex;flex-wrap:wrap;gap:16px;margin:0 0 12px}
figure{margin:0;flex:1 1 320px;max-width:520px}
figure img{max-width:100%;height:auto;display:block;border-radius:4px;background:#f3f4f6}
figcaption{font-size:.85rem;color:#555;margin-top:4px}
.scale{display:flex;align-items:center;gap:8px;font-size:.75rem;color:#666;margin-top:4px}
.scale img{height:10px;width:160px;display:block}
.facts{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}
.facts>table{flex:1 1 320px}
.trust{margin-top:16px}
tr.explained td{font-weight:700}
.bar{display:inline-block;height:10px;background:#9bb7d4;border-radius:2px;vertical-align:middle}
tr.explained .bar{background:#d62728}
.notice{background:#fff6e0;border-left:4px solid #f0a500;padding:8px 12px;margin:0 0 12px}
.note{background:#f6f8fa;border-left:4px solid #8a99ab;padding:12px 16px;margin:24px 0}
.note li{margin-bottom:6px}
a{color:#1f5fa8}
footer{color:#555;font-size:.9rem;margin-top:24px}
@media print{body{max-width:none;padding:0}.figures{flex-wrap:nowrap}}
"""


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    """Table rows from (heading, cell HTML): the cell must already be escaped."""
    return "".join(f"<tr><th>{_esc(k)}</th><td>{v}</td></tr>" for k, v in pairs)


def _top5_table(item: ReportItem, probabilities: bool) -> str:
    rows = []
    for rank, p in enumerate(item.predictions, 1):
        width = max(0.0, min(1.0, float(p.probability))) * 120 if probabilities else 0
        bar = f'<span class="bar" style="width:{width:.0f}px"></span> ' if probabilities else ""
        rows.append(
            f'<tr class="{"explained" if p.index == item.target else "other"}"><td class="num">{rank}</td>'
            f"<td>{_esc(p.label)}</td><td class=\"num\">{bar}{_esc(score_text(p.probability, probabilities))}</td></tr>"
        )
    return (
        "<table class=\"top5\"><caption style=\"text-align:left;font-weight:600;padding-bottom:4px\">"
        f"{_esc(predictions_heading(len(item.predictions), probabilities))}</caption>"
        f"<tr><th class=\"num\">#</th><th>Class</th><th class=\"num\">{'Probability' if probabilities else 'Output'}</th></tr>"
        + "".join(rows) + "</table>"
    )


def _item_html(number: int, item: ReportItem, model_name: str, weights_sha256: str | None,
               probabilities: bool) -> str:
    height, width = item.layer_resolution
    name, label = _esc(item.image_name), _esc(item.label)
    notice = ""
    if item.no_positive_evidence:
        notice = (f'<p class="notice">No positive evidence for {label} at this layer: nothing the layer sees '
                  "raises this class's score, so the map is empty.</p>")
    facts = _rows([
        ("Explained class", f"{label} (class {item.target})"),
        ("Probability", _esc(score_text(item.probability, probabilities))),
        ("Method", _esc(method_name(item.method))),
        ("Paper", _esc(method_paper(item.method))),
        ("Layer", f"<code>{_esc(item.layer)}</code>"),
        ("Layer resolution", f"{height} x {width} cells"),
        ("Image", name),
        ("Image size", "{} x {} px (as explained)".format(*item.explained_size)),
        ("Image SHA-256", f'<span class="hash">{_esc(item.image_sha256)}</span>'),
        ("Model", _esc(model_name)),
        ("Weights SHA-256", f'<span class="hash">{_esc(weights_sha256 or "not computed")}</span>'),
    ])
    return f"""
<section class="item" id="item-{number}">
<h2>{number}. {name}: {label}, {_esc(method_name(item.method))}</h2>
<div class="figures">
<figure><img src="{_data_uri(item.image)}" alt="The photo {name}"><figcaption>The photo</figcaption></figure>
<figure><img src="{_data_uri(item.overlay)}" alt="Grad-CAM overlay for {label}">
<figcaption>{_esc(method_name(item.method))} overlay for {label}, opacity {item.opacity:.2f}, colormap
{_esc(item.colormap)}: the {_esc(strongest_colour(item.colormap))} regions raised this class's score most.</figcaption>
<div class="scale">no evidence <img src="{_png_data_uri(_colour_scale(item.colormap))}" alt="colour scale">
strongest</div>
</figure>
</div>
{notice}
<div class="facts">
{_top5_table(item, probabilities)}
<table class="meta">{facts}</table>
</div>
{_trust_html(item)}
</section>"""


TRUST_ROWS = (("Deletion AUC (lower is better)", "deletion_auc", "{:.3f}"),
              ("Insertion AUC (higher is better)", "insertion_auc", "{:.3f}"),
              ("ROAD combined (higher is better)", "road_combined", "{:.3f}"),
              ("Average Drop % (lower is better)", "average_drop", "{:.1f}"),
              ("Increase in Confidence", "increase_in_confidence", "{:.2f}"))


def trust_lines(item: ReportItem) -> list[tuple[str, list[str]]]:
    """(score, [this map, random maps, centred blob]) for each score that was computed."""
    numbers = item.faithfulness
    if not numbers:
        return []
    return [(title, [form.format(numbers[who][key]) for who in ("map", "random", "blob")])
            for title, key, form in TRUST_ROWS if numbers["map"][key] is not None]


def _trust_html(item: ReportItem) -> str:
    parts = []
    if item.faithfulness:
        rows = "".join(f"<tr><th>{_esc(title)}</th>" + "".join(f'<td class="num">{_esc(v)}</td>' for v in values)
                       + "</tr>" for title, values in trust_lines(item))
        parts.append(
            '<table class="trust"><caption style="text-align:left;font-weight:600;padding-bottom:4px">'
            "Can this map be trusted? Faithfulness, next to random maps</caption>"
            '<tr><th></th><th class="num">This map</th><th class="num">Random maps</th>'
            f'<th class="num">Centred blob</th></tr>{rows}</table>'
            f"<p>{_esc(item.faithfulness['verdict'])}</p>")
    if item.sanity:
        parts.append(f"<p><strong>Sanity check</strong> (model randomization): {_esc(item.sanity['verdict'])}</p>")
    return f'<div class="trust">{"".join(parts)}</div>' if parts else ""


def _summary_html(items: Sequence[ReportItem], probabilities: bool) -> str:
    rows = "".join(
        f'<tr><td class="num">{n}</td><td><a href="#item-{n}">{_esc(item.image_name)}</a></td>'
        f"<td>{_esc(item.label)}</td>"
        f'<td class="num">{_esc(score_text(item.probability, probabilities))}</td>'
        f"<td>{_esc(method_name(item.method))}</td><td><code>{_esc(item.layer)}</code></td></tr>"
        for n, item in enumerate(items, 1)
    )
    return ("<h2>Contents</h2><table><tr><th class=\"num\">#</th><th>Image</th><th>Explained class</th>"
            "<th class=\"num\">Probability</th>"
            f"<th>Method</th><th>Layer</th></tr>{rows}</table>")


def _problems_html(problems: Sequence[tuple[str, str]]) -> str:
    if not problems:
        return ""
    rows = "".join(f"<tr><td>{_esc(name)}</td><td>{_esc(sentence)}</td></tr>" for name, sentence in problems)
    return (f'<section class="item"><h2>Not explained ({len(problems)})</h2>'
            f"<table><tr><th>File</th><th>Why</th></tr>{rows}</table></section>")


def _honesty_html() -> str:
    points = "".join(f"<li>{_esc(point)}</li>" for point in WHAT_IT_DOES_NOT_SHOW)
    return (f'<section class="note" id="what-grad-cam-shows"><h2>What Grad-CAM shows, and what it does not show</h2>'
            f"<p>{_esc(WHAT_IT_SHOWS)}</p><ul>{points}</ul>"
            "<p>Compare classes, layers and methods before concluding anything.</p></section>")


def report_html(items: Sequence[ReportItem], *, title: str = "Grad-CAM report", model=None,
                model_name: str | None = None, weights_sha256: str | None = None,
                problems: Sequence[tuple[str, str]] = (), created: datetime | None = None,
                probabilities: bool | None = None) -> str:
    """One self-contained HTML file for ``items`` (images embedded, inline CSS, no script,
    no external URL).

    ``model`` (a ``gradcam.Model``) gives the model's name and the SHA-256 of its
    weights, computed once; ``weights_sha256`` skips that computation when the
    caller already knows it. ``problems`` lists (file name, sentence) of photos
    that could not be explained. ``probabilities`` False shows scores as raw
    outputs (a one-output regression model); by default the model says.
    """
    model_name, weights_sha256, probabilities = _model_facts(model, model_name, weights_sha256, probabilities)
    created = (created or datetime.now(timezone.utc)).astimezone(timezone.utc)
    when = created.strftime("%Y-%m-%d %H:%M:%S UTC")
    count = f"{len(items)} explanation{'s' if len(items) != 1 else ''}"
    header = _rows([
        ("Model", _esc(model_name)),
        ("Weights SHA-256", f'<span class="hash">{_esc(weights_sha256 or "not computed")}</span>'),
        ("Created", _esc(when)),
        ("Explanations", str(len(items)) + (f", {len(problems)} not explained" if problems else "")),
    ])
    versions = _rows((name, f"<code>{_esc(version)}</code>") for name, version in library_versions().items())
    body = "".join(_item_html(n, item, model_name, weights_sha256, probabilities) for n, item in enumerate(items, 1))
    # The Content-Security-Policy makes the "nothing external, nothing runs" promise
    # hold in the browser too, whatever a label or file name contains.
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="generator" content="Grad-CAM Explorer">
<title>{_esc(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{_esc(title)}</h1>
<p class="lead">{count} of why an image classifier chose a class, made with Grad-CAM Explorer on {_esc(when)}.
This file is self-contained: it needs no network and runs no code.</p>
<table class="meta">{header}</table>
</header>
{_summary_html(items, probabilities) if len(items) > 1 else ""}
{body}
{_problems_html(problems)}
{_honesty_html()}
<footer><h2>Software</h2><table>{versions}</table></footer>
</body>
</html>
"""


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
    axes.imshow(np.asarray(_colour_scale(colormap)), aspect="auto")
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

    height, width = item.layer_resolution
    facts = [
        ("Explained class", f"{item.label} (class {item.target})"),
        ("Method", method_name(item.method)),
        ("Paper", method_paper(item.method)[:90]),
        ("Layer", f"{item.layer} ({height} x {width} cells)"),
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

    model_name, weights_sha256, probabilities = _model_facts(model, model_name, weights_sha256, probabilities)
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
