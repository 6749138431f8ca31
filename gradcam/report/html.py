"""The HTML report: ONE self-contained file.

Every image is a base64 ``data:`` URI, the CSS is inline, there is no script and
no external URL, so it opens offline in any browser and can be mailed as it is.
Everything a user supplied (file names, class labels, the model's name) is
HTML-escaped here. This module never imports Streamlit.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Iterable, Sequence


from ..engine.overlay import strongest_colour
from .content import (
    WHAT_IT_SHOWS, WHAT_IT_DOES_NOT_SHOW, ReportItem, library_versions, method_name, method_paper, score_text, predictions_heading, data_uri, png_data_uri, colour_scale, model_facts, trust_lines, trust_sentences, resolution_fact,
    what_the_colours_mean, layer_fact, no_evidence_notice,
)


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
figure.evidence{max-width:100%;margin:0 0 12px}
tr.explained td{font-weight:700}
.bar{display:inline-block;height:10px;background:#9bb7d4;border-radius:2px;vertical-align:middle}
tr.explained .bar{background:#d62728}
.notice{background:#fff6e0;border-left:4px solid #f0a500;padding:8px 12px;margin:0 0 12px}
.note{background:#f6f8fa;border-left:4px solid #8a99ab;padding:12px 16px;margin:24px 0}
.note li{margin-bottom:6px}
a{color:#1f5fa8}
footer{color:#555;font-size:.9rem;margin-top:24px}
@media print{body{max-width:none;padding:0}.figures{flex-wrap:nowrap}}
@media (max-width:600px){
 body{padding:16px 12px 32px}
 h1{font-size:1.5rem}
 th,td.num,th.num{white-space:normal}
 th,td{padding:4px 6px 4px 0}
 figure,.facts>table{flex-basis:100%}
 table{display:block;max-width:100%;overflow-x:auto}
}
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
    name, label = _esc(item.image_name), _esc(item.label)
    notice = ""
    if item.no_positive_evidence:
        notice = f'<p class="notice">{_esc(no_evidence_notice(item.method, item.label))}</p>'
    facts = _rows([
        ("Explained class", f"{label} (class {item.target})"),
        ("Probability", _esc(score_text(item.probability, probabilities))),
        ("Method", _esc(method_name(item.method))),
        ("Paper", _esc(method_paper(item.method))),
        ("Layer", f"<code>{_esc(item.layer)}</code>" if layer_fact(item.method, item.layer) == item.layer
         else _esc(layer_fact(item.method, item.layer))),
        ("Resolution", _esc(resolution_fact(item))),
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
<figure><img src="{data_uri(item.image)}" alt="The photo {name}"><figcaption>The photo</figcaption></figure>
<figure><img src="{data_uri(item.overlay)}" alt="Grad-CAM overlay for {label}">
<figcaption>{_esc(method_name(item.method))} overlay for {label}, opacity {item.opacity:.2f}, colormap
{_esc(item.colormap)}. {_esc(what_the_colours_mean(item.method, strongest_colour(item.colormap), item.label))}</figcaption>
<div class="scale">no evidence <img src="{png_data_uri(colour_scale(item.colormap))}" alt="colour scale">
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


def _trust_html(item: ReportItem) -> str:
    parts = []
    if item.faithfulness:
        rows = "".join(f"<tr><th>{_esc(title)}</th>" + "".join(f'<td class="num">{_esc(v)}</td>' for v in values)
                       + "</tr>" for title, values in trust_lines(item))
        parts.append(
            '<table class="trust"><caption style="text-align:left;font-weight:600;padding-bottom:4px">'
            "Can this map be trusted? Faithfulness, next to random maps and a centred blob</caption>"
            '<tr><th></th><th class="num">This map</th><th class="num">Random maps</th>'
            f'<th class="num">Centred blob</th></tr>{rows}</table>')
    parts += [f'<figure class="evidence"><img src="{png_data_uri(picture)}" alt="{_esc(caption)}">'
              f"<figcaption>{_esc(caption)}</figcaption></figure>" for caption, picture in item.evidence]
    parts += [f"<p><strong>{_esc(heading)}</strong>: {_esc(sentence)}</p>" for heading, sentence in trust_sentences(item)]
    return f'<div class="trust">{"".join(parts)}</div>'


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
    model_name, weights_sha256, probabilities = model_facts(model, model_name, weights_sha256, probabilities)
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
