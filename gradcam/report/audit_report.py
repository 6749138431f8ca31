"""The dataset audit's outputs: the per-photo CSV and a self-contained HTML report
(flagged clusters first, each as its mean map over a mosaic of member thumbnails
with the region drawn, the reason, reliance against random; then every class's
table and clusters, with the evidence: the infills' drops, the transplant, the
background or colour swap as before/after pictures with the model's answers, and
what was not tested). Images are data URIs, there is no script and no external URL,
and every text that came from outside (paths, labels, sentences) is escaped. The
drawing helpers are public so the Audit page draws the same pictures.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..engine.overlay import colorize
from .content import data_uri, png_data_uri
from .rows import rows_csv

AUDIT_COLUMNS = ("path", "true_label", "label", "target", "probability", "predicted", "correct", "cluster",
                 "outlier", "mass_on_object", "pointing_hit", "error")
MOSAIC_TILE = 96  # pixels a side per member thumbnail in a mosaic
MOSAIC_MEMBERS = 12  # members shown per cluster (nearest the centre first)
REGION_COLOUR = (255, 255, 255)
# One self-contained page holds a picture per class and cluster: an audit of 10,000 classes made
# a 121 MB page. It shows the classes with the most photos, the flagged clusters and the first
# photos of each list; the CSV and the JSON hold everything.
MAX_REPORT_CLASSES = 200
MAX_REPORT_FLAGGED = 200
MAX_REPORT_LIST = 1000  # outliers, unreadable photos


def audit_rows(audit) -> list[dict]:
    """One plain row per photo, with the columns in AUDIT_COLUMNS."""
    rows = []
    for p in audit.photos:
        rows.append({"path": p.path, "true_label": p.true_label, "label": p.label, "target": p.target,
                     "probability": p.probability, "predicted": p.predicted,
                     "correct": None if p.correct is None else ("yes" if p.correct else "no"),
                     "cluster": p.cluster, "outlier": "yes" if p.outlier else "no",
                     "mass_on_object": p.mass_on_object,
                     "pointing_hit": None if p.pointing_hit is None else ("yes" if p.pointing_hit else "no"),
                     "error": p.error})
    return rows


def audit_csv(audit) -> str:
    """The per-photo CSV: the many-photos CSV's cell rules (never a formula, valid text)."""
    return rows_csv(audit_rows(audit), AUDIT_COLUMNS)


# --- pictures --------------------------------------------------------------------


def region_overlay(image: Image.Image, region: Sequence[float], colour=REGION_COLOUR) -> Image.Image:
    """A copy of ``image`` with the region (x0, y0, x1, y1 as fractions) drawn as a box."""
    out = image.convert("RGB").copy()
    width, height = out.size
    x0, y0, x1, y1 = region
    line = max(2, round(min(width, height) / 60))
    box = (round(x0 * width), round(y0 * height), max(round(x1 * width) - 1, 0), max(round(y1 * height) - 1, 0))
    ImageDraw.Draw(out).rectangle(box, outline=colour, width=line)
    return out


def mean_map_image(mean_map: np.ndarray, side: int = 192, colormap: str = "jet") -> Image.Image:
    """A cluster's or class's mean map, scaled to its peak, drawn as coloured cells."""
    values = np.asarray(mean_map, np.float32)
    top = float(values.max()) if values.size else 0.0
    scaled = values / top if top > 0 else np.zeros_like(values)
    rows, cols = scaled.shape
    picture = Image.fromarray(colorize(scaled, colormap))
    return picture.resize((side, max(1, round(side * rows / cols))), Image.NEAREST)


def mosaic(thumbnails: Sequence[bytes | None], columns: int = 4, tile: int = MOSAIC_TILE) -> Image.Image | None:
    """Member thumbnails (JPEG bytes) side by side, ``columns`` a row; None without any."""
    pictures = []
    for data in thumbnails:
        if data:
            picture = Image.open(io.BytesIO(data)).convert("RGB")
            pictures.append(picture.resize((tile, tile), Image.BILINEAR))
    if not pictures:
        return None
    columns = max(1, min(columns, len(pictures)))
    rows = -(-len(pictures) // columns)
    sheet = Image.new("RGB", (columns * tile, rows * tile), (255, 255, 255))
    for k, picture in enumerate(pictures):
        sheet.paste(picture, ((k % columns) * tile, (k // columns) * tile))
    return sheet


def cluster_picture(audit, cluster, columns: int = 4) -> Image.Image:
    """The cluster's mean map laid over a mosaic of its members (region drawn on
    each tile), or the mean map alone when no thumbnail is at hand."""
    members = audit.cluster_photos(cluster)[:MOSAIC_MEMBERS]
    tiles = []
    for photo in members:
        if photo.thumbnail:
            tile = Image.open(io.BytesIO(photo.thumbnail)).convert("RGB").resize((MOSAIC_TILE, MOSAIC_TILE))
            heat = mean_map_image(cluster.mean_map, MOSAIC_TILE).resize((MOSAIC_TILE, MOSAIC_TILE))
            tile = Image.blend(tile, heat, 0.35)
            buffer = io.BytesIO()
            region_overlay(tile, cluster.region).save(buffer, "JPEG", quality=85)
            tiles.append(buffer.getvalue())
    sheet = mosaic(tiles, columns)
    return sheet if sheet is not None else region_overlay(mean_map_image(cluster.mean_map), cluster.region)


# --- HTML ---------------------------------------------------------------------------


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _number(value, form: str = "{:.2f}") -> str:
    return "–" if value is None else form.format(value + 0.0).replace("-0.00", "0.00")


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
.cluster { display: flex; gap: 1.2rem; flex-wrap: wrap; margin: 1rem 0 1.6rem; align-items: flex-start; }
.cluster > * { min-width: 0; max-width: 100%; } .cluster img { max-width: 100%; height: auto; border: 1px solid #ddd; }
.flag { border-left: 5px solid #c0392b; padding-left: 1rem; }
table { border-collapse: collapse; margin: .6rem 0; } td, th { border: 1px solid #ddd; padding: .25rem .5rem; }
th { background: #f4f4f4; text-align: left; } .muted { color: #666; } .reason { max-width: 40rem; }
"""


def _cluster_html(audit, cluster) -> str:
    picture = data_uri(cluster_picture(audit, cluster), 1024)
    mean = png_data_uri(region_overlay(mean_map_image(cluster.mean_map), cluster.region))
    facts = (f"<table><tr><th>photos</th><td>{len(cluster.members)}</td></tr>"
             f"<tr><th>region (x0, y0, x1, y1)</th><td>{', '.join(f'{v:.2f}' for v in cluster.region)}</td></tr>"
             f"<tr><th>area</th><td>{cluster.area:.0%}</td></tr>"
             f"<tr><th>consistency</th><td>{cluster.consistency:.2f}</td></tr>"
             f"<tr><th>reliance (region removed)</th><td>{_number(cluster.reliance)}"
             f"{' (' + _esc(cluster.infill) + ')' if cluster.infill else ''}</td></tr>"
             f"<tr><th>random reliance (same size elsewhere)</th><td>{_number(cluster.random_reliance)}</td></tr>"
             + "".join(f"<tr><th>drop, infill {_esc(name)}</th><td>{_number(drop)} (elsewhere {_number(other)})"
                       f"</td></tr>" for name, (drop, other) in cluster.drops.items())
             + f"<tr><th>photos tested</th><td>{cluster.tested}</td></tr>"
             + (f"<tr><th>transplant: other classes' photos turned '{_esc(cluster.label)}'</th><td>{cluster.flips} of "
                f"{cluster.recipients} (a random patch: {cluster.random_flips})</td></tr>" if cluster.recipients else "")
             + (f"<tr><th>members whose map peaks off their object</th><td>{cluster.off_object:.0%}</td></tr>"
                if cluster.off_object is not None else "")
             + f"<tr><th>suspicion</th><td>{cluster.suspicion:.2f}</td></tr></table>")
    style = ' class="cluster flag"' if cluster.flagged else ' class="cluster"'
    return (f'<div{style}><img src="{mean}" alt="mean map of cluster {cluster.number + 1}" width="192">'
            f'<img src="{picture}" alt="members of cluster {cluster.number + 1}">'
            f'<div><p class="reason"><b>{_esc(cluster.label)}, cluster {cluster.number + 1}.</b> '
            f"{_esc(cluster.reason)}</p>{facts}{examples_html(cluster.examples)}</div></div>")


def repr_answer(label: str) -> str:
    return f"'{label}'"


def _jpeg_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def examples_html(examples) -> str:
    """Before/after pictures of edited photos, each with the model's answer."""
    if not examples:
        return ""
    cells = "".join(
        f"<figure style='margin:0'><img src='{_jpeg_uri(e.before)}' alt='before' width='96'>"
        f"<img src='{_jpeg_uri(e.after)}' alt='after' width='96'><figcaption class='muted' style='max-width:200px'>"
        f"{_esc(f'{e.caption}: ' + repr_answer(e.before_answer) + ' before, ' + repr_answer(e.after_answer) + ' after')}"
        f"</figcaption></figure>"
        for e in examples)
    return f"<div class='examples' style='display:flex;gap:.8rem;flex-wrap:wrap'>{cells}</div>"


def _class_html(audit, cls) -> str:
    mean = png_data_uri(mean_map_image(cls.mean_map, 128))
    rows = (f"<tr><th>photos</th><td>{cls.count}</td></tr>"
            f"<tr><th>accuracy</th><td>{_number(cls.accuracy, '{:.0%}')}</td></tr>"
            f"<tr><th>relevance mass on the object</th><td>{_number(cls.mass_on_object)}</td></tr>"
            f"<tr><th>pointing game</th><td>{_number(cls.pointing_rate, '{:.0%}')}</td></tr>"
            + (f"<tr><th>share of the photo the object covers</th><td>{_number(cls.object_share)}</td></tr>"
               if cls.object_share is not None else "")
            + f"<tr><th>clusters</th><td>{len(cls.clusters)}</td></tr>")
    return (f"<h3>{_esc(cls.label)}</h3><div class='cluster'><img src='{mean}' alt='mean map' width='128'>"
            f"<table>{rows}</table></div>" + class_tests_html(cls)
            + "".join(_cluster_html(audit, c) for c in cls.clusters))


def class_tests_html(cls) -> str:
    """The class's background swap (masks) or colour swap: the sentence and the pictures."""
    test = cls.background or cls.colours
    if not cls.reason and test is None:
        return ""
    style = ' class="cluster flag"' if cls.flagged else ' class="cluster"'
    return (f"<div{style}><div><p class='reason'>{_esc(cls.reason)}</p>"
            f"{examples_html([] if test is None else test.examples)}</div></div>")


def _more(count: int) -> str:
    return (f"<p>... and {count - MAX_REPORT_LIST:,} more (the CSV and the JSON list every one).</p>"
            if count > MAX_REPORT_LIST else "")


def audit_html(audit, title: str = "Dataset audit") -> str:
    """The audit as ONE self-contained HTML page."""
    flagged = audit.flagged
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{_esc(title)}</h1>",
             f"<p>{_esc(audit.summary())}</p>",
             f"<p class='muted'>Source {_esc(audit.source)}; model {_esc(audit.model or 'not given')}, layer "
             f"{_esc(audit.layer)}, method {_esc(audit.method)}; explained class: "
             f"{'the true label where known' if audit.explain == 'label' else 'the predicted class'}"
             f"{'; with object masks' if audit.masks else ''}.</p>"]
    if audit.problems:
        parts.append("<ul>" + "".join(f"<li>{_esc(p)}</li>" for p in audit.problems) + "</ul>")
    parts.append("<h2>Flagged clusters</h2>")
    parts.append("".join(_cluster_html(audit, c) for c in flagged[:MAX_REPORT_FLAGGED]) if flagged
                 else "<p>No cluster looks like a shortcut.</p>")
    if len(flagged) > MAX_REPORT_FLAGGED:
        parts.append(f"<p>The report shows the {MAX_REPORT_FLAGGED:,} most suspicious of {len(flagged):,} flagged "
                     "clusters; the CSV and the JSON hold every one.</p>")
    if audit.flagged_classes:
        parts.append("<h2>Classes whose answer follows the background</h2>")
        parts.extend(f"<h3>{_esc(cls.label)}</h3>" + class_tests_html(cls) for cls in audit.flagged_classes[:MAX_REPORT_CLASSES])
    if audit.untested:
        parts.append("<h2>What was not tested</h2><ul>" + "".join(f"<li>{_esc(t)}</li>" for t in audit.untested)
                     + "</ul>")
    parts.append("<h2>Classes</h2>")
    if len(audit.classes) > MAX_REPORT_CLASSES:
        parts.append(f"<p>The report shows the {MAX_REPORT_CLASSES:,} classes with the most photos of "
                     f"{len(audit.classes):,}; the CSV and the JSON hold every class.</p>")
    parts.extend(_class_html(audit, cls) for cls in audit.classes[:MAX_REPORT_CLASSES])
    outliers, broken = audit.outliers, audit.broken
    if outliers:
        parts.append("<h2>Outliers</h2><p>Photos whose map is far from every cluster of their class:</p><ul>"
                     + "".join(f"<li>{_esc(p.path)} ({_esc(p.label)})</li>" for p in outliers[:MAX_REPORT_LIST])
                     + "</ul>" + _more(len(outliers)))
    if broken:
        parts.append("<h2>Photos that could not be read</h2><table><tr><th>photo</th><th>why</th></tr>"
                     + "".join(f"<tr><td>{_esc(p.path)}</td><td>{_esc(p.error)}</td></tr>"
                               for p in broken[:MAX_REPORT_LIST]) + "</table>" + _more(len(broken)))
    parts.append("<p class='muted'>Reliance: the mean drop of the explained class's probability when the region "
                 "is filled (blurred, with the photo's mean colour, or with the same region of other classes' "
                 "photos; the strongest drop is shown with its infill), on at most 16 photos of the cluster; random "
                 "reliance: the same for a box of the same size elsewhere. Transplant: the region pasted into photos "
                 "of other classes at the same place, against a random box of the same size. Background swap (with "
                 "masks): objects cut out by their masks and pasted on other classes' backgrounds, against the same "
                 "swap within the class. SpRAy, Lapuschkin et al. 2019.</p></body></html>")
    return "".join(parts)


# --- two models side by side ------------------------------------------------------


def map_tile(photo, tile: int = MOSAIC_TILE, opacity: float = 0.45) -> Image.Image | None:
    """One audited photo's thumbnail with its own map laid over it (None without a thumbnail)."""
    if not photo.thumbnail:
        return None
    picture = Image.open(io.BytesIO(photo.thumbnail)).convert("RGB").resize((tile, tile), Image.BILINEAR)
    if photo.map is None:
        return picture
    values = np.clip(np.nan_to_num(np.asarray(photo.map, np.float32)), 0, None)
    top = float(values.max()) if values.size else 0.0
    heat = Image.fromarray(colorize(values / top if top > 0 else values)).resize((tile, tile), Image.BILINEAR)
    return Image.blend(picture, heat, opacity)


def _pair(a, b, form: str = "{:.2f}") -> str:
    return f"<td>{_number(a, form)}</td><td>{_number(b, form)}</td>"


def comparison_html(comparison, title: str = "Two models on one dataset") -> str:
    """The comparison as ONE self-contained HTML page: per class both models' figures side
    by side, the counterfactual photos, the photos where the maps differ most, and each
    model's flagged clusters."""
    first, second = comparison.names
    head = f"<th>{_esc(first)}</th><th>{_esc(second)}</th>"
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_esc(title)}</title>"
             f"<style>{_STYLE}.side {{ display: grid; grid-template-columns: 1fr 1fr; gap: 1.2rem; }}"
             f"@media (max-width: 700px) {{ .side {{ grid-template-columns: 1fr; }} }}</style></head><body>"
             f"<h1>{_esc(title)}</h1><p>{_esc(comparison.headline())}</p>",
             f"<p class='muted'>Source {_esc(comparison.first.source)}; {_esc(first)} at layer "
             f"{_esc(comparison.first.layer)}, {_esc(second)} at layer {_esc(comparison.second.layer)}; method "
             f"{_esc(comparison.first.method)}{'; with object masks' if comparison.first.masks else ''}.</p>",
             "<h2>Per class</h2><div style='overflow-x:auto'><table><tr><th rowspan='2'>class</th>"
             "<th rowspan='2'>photos</th><th colspan='2'>accuracy</th><th colspan='2'>mass on the object</th>"
             "<th colspan='2'>flagged findings</th><th colspan='2'>counterfactual accuracy</th></tr>"
             f"<tr>{head * 4}</tr>"]
    for c in comparison.classes:
        parts.append(f"<tr><td>{_esc(c.label)}</td><td>{c.count}</td>{_pair(*c.accuracy, '{:.0%}')}"
                     f"{_pair(*c.mass_on_object)}<td>{c.flagged[0]}</td><td>{c.flagged[1]}</td>"
                     f"{_pair(*c.counterfactual, '{:.0%}')}</tr>")
    parts.append("</table></div>")
    if comparison.counterfactual:
        parts.append(f"<h2>Counterfactual photos</h2><div style='overflow-x:auto'><table><tr><th>photos</th>"
                     f"<th>count</th>{head}</tr>"
                     + "".join(f"<tr><td>{_esc(a.name)}</td><td>{a.total}</td>"
                               f"{_pair(a.accuracy, b.accuracy, '{:.0%}')}</tr>" for a, b in comparison.counterfactual)
                     + "</table></div>")
    parts.append("<h2>Where the maps differ most</h2>")
    if comparison.mean_difference is not None:
        parts.append(f"<p class='muted'>Mean difference over all photos {comparison.mean_difference:.2f} (0: the "
                     "evidence in the same places, 1: no overlap).</p>")
    for d in comparison.differences:
        tiles = [map_tile(d.first), map_tile(d.second)]
        pictures = "".join(f"<figure style='margin:0'><img src='{png_data_uri(t)}' alt='{_esc(name)} map' "
                           f"width='{MOSAIC_TILE}'><figcaption>{_esc(name)}: {_esc(p.predicted)}</figcaption></figure>"
                           for t, name, p in zip(tiles, comparison.names, (d.first, d.second)) if t is not None)
        parts.append(f"<div class='cluster'>{pictures}<p>{_esc(d.path)} ({_esc(d.label)}): difference "
                     f"{d.difference:.2f}</p></div>")
    parts.append("<h2>Flagged clusters</h2><div class='side'>")
    for name, found in zip(comparison.names, (comparison.first, comparison.second)):
        flagged = found.flagged
        parts.append(f"<div><h3>{_esc(name)}</h3><p>{_esc(found.headline())}</p>"
                     + ("".join(_cluster_html(found, c) for c in flagged) if flagged
                        else "<p>No cluster looks like a shortcut.</p>") + "</div>")
    parts.append("</div><p class='muted'>Each model audited on the same photos at its own layer (SpRAy, "
                 "Lapuschkin et al. 2019); counterfactual photos: edited so the cue and the class disagree, "
                 "each expecting its own class.</p></body></html>")
    return "".join(parts)
