"""The Audit page's pieces: what is audited, the run behind a progress bar, and its pictures.

The audit itself is the engine's (``gradcam.audit``: maps, SpRAy clusters, the reliance
test) and its pictures and downloads are the report layer's (``gradcam.report.audit_report``).
This module only chooses what to audit, keeps each result for every session (a
dataset's audit takes seconds to minutes; choosing a point in the chart must not
redo it) and turns results into what Streamlit draws: tables, a chart, images.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st
from PIL import Image

import gradcam
from gradcam.engine import heatmap
from gradcam.intake import MAX_ARCHIVE_BYTES, MAX_ARCHIVE_MEMBERS
from gradcam.report import mean_map_image, region_overlay
from gradcam.zoo import CLEVER_HANS, CLEVER_HANS_MASKS, CLEVER_HANS_PHOTOS

from dashboard.safe_text import md
from gradcam.intake import sha256
from dashboard.runtime import long_jobs

DEMO = "demo"
MINE = "mine"
SOURCES = {DEMO: "The Clever Hans demo (72 photos, with object masks)",
           MINE: "My photos (a .zip)"}
ZIP_HELP = ("One sub-folder per class, named by the model's classes (cat/001.jpg, dog/002.jpg): those are the "
            "true labels. A .zip without class folders is audited on the model's own top-1 classes. Read in memory "
            f"like the Batch page's: at most {MAX_ARCHIVE_MEMBERS} entries and "
            f"{MAX_ARCHIVE_BYTES // 2**20} MB unpacked.")
MASKS_HELP = ("Optional: a .zip of PNG masks mirroring the photos (cat/001.png for cat/001.jpg; non-zero = the "
              "object), or a CSV of boxes (path, x0, y0, x1, y1 in pixels). With them the audit measures how much "
              "of each map lies on its object.")
STOP = "audit_stopped"  # session key: the request whose run the person stopped (not started again by itself)


@dataclass(frozen=True)
class Request:
    """What to audit: ``key`` names it in the caches (content hashes, never file names)."""
    key: tuple
    source: object  # a folder path, or an upload (name, bytes)
    masks: object | None
    name: str


def demo_request() -> Request:
    return Request(("demo",), CLEVER_HANS_PHOTOS, CLEVER_HANS_MASKS, "the Clever Hans demo photos")


def upload_request(photos, masks) -> Request | None:
    """The uploaded .zip (and masks) as a request; None before a .zip is given."""
    if photos is None:
        return None
    data = photos.getvalue()
    mask_upload = None if masks is None else (masks.name, masks.getvalue())
    key = ("upload", sha256(data), sha256(mask_upload[1]) if mask_upload else "")
    return Request(key, (photos.name, data), mask_upload, photos.name)


def job_key(request: Request, model_key: str, layer: str, method: str) -> tuple:
    return ("audit", *request.key, model_key, layer, method)


def run(request: Request, model_key: str, model: gradcam.Model, layer: str, method: str) -> gradcam.Audit:
    """The audit, made once per (photos, masks, model, layer, method) for every session, under a
    progress bar over the photos; an audit in which this session's pixel budget refused a photo
    is kept for this session alone (another session, or this one in an hour, may read them all).
    Raises ValueError (one sentence) for photos it cannot read at all."""

    def job(progress, stop):
        return gradcam.audit(model, request.source, masks=request.masks, layer=layer, method=method,
                             progress=progress, stop=stop)

    return long_jobs.long_job(job_key(request, model_key, layer, method), job, "Auditing", "photos",
                              shared=lambda audit: not audit.budget_refused)


def stop(key: tuple) -> None:
    """The Stop button's callback: the audit of ``key`` stops, and stays stopped (the demo does not restart itself)."""
    long_jobs.stop_long_job()
    st.session_state[STOP] = key


def pick_methods(model: gradcam.Model) -> list[str]:
    """The methods offered: every one that applies, but those that run many passes per photo."""
    return [key for key in gradcam.methods_for(model) if not gradcam.METHODS[key].slow]


# --- pictures ----------------------------------------------------------------------


def thumbnail(photo: gradcam.AuditPhoto) -> Image.Image | None:
    return None if not photo.thumbnail else Image.open(io.BytesIO(photo.thumbnail)).convert("RGB")


def photo_overlay(audit: gradcam.Audit, photo: gradcam.AuditPhoto, cluster: gradcam.AuditCluster | None):
    """The photo's own map over its thumbnail, its cluster's region drawn (None without a thumbnail)."""
    picture = thumbnail(photo)
    if picture is None or photo.map is None:
        return picture
    shown = gradcam.overlay(picture, heatmap(photo.map, picture.size, audit.method.split(",")[0]), 0.45)
    return region_overlay(shown, cluster.region) if cluster is not None else shown


def png_data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def cluster_of(audit: gradcam.Audit, photo: gradcam.AuditPhoto) -> gradcam.AuditCluster | None:
    for cls in audit.classes:
        if cls.label == photo.label and photo.cluster is not None and photo.cluster < len(cls.clusters):
            return cls.clusters[photo.cluster]
    return None


# --- numbers as people read them ----------------------------------------------------


INFILL_WORDS = {"blur": "blurred", "mean": "filled with the photo's mean colour",
                "other classes": "filled with the same region of other classes' photos"}


def before_after(examples) -> None:
    """Edited photos, each before and after with the model's answer (the transplant, the
    background or colour swap): side by side on a wide screen, stacked on a phone."""
    if not examples:
        return
    with st.container(horizontal=True, gap="small"):
        for example in examples:
            with st.container(width=230, gap="xsmall"):
                with st.container(horizontal=True, gap="xsmall"):
                    st.image(example.before, width=110, caption=f"before: '{md(example.before_answer)}'")
                    st.image(example.after, width=110, caption=f"after: '{md(example.after_answer)}'")
                st.caption(md(example.caption))


def share(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.0f}%"


def class_rows(audit: gradcam.Audit) -> list[dict]:
    """One row per class: its count, accuracy, mean map (a picture), mass on object, clusters. A
    measure no class has (no masks: no mass on object; no true labels: no accuracy) is left out."""
    rows = []
    for cls in audit.classes:
        rows.append({
            "Class": cls.label,
            "Photos": cls.count,
            "Accuracy": share(cls.accuracy),
            "Mean map": mean_map_image(cls.mean_map, 64),
            "Mass on object": share(cls.mass_on_object),
            "Pointing game": share(cls.pointing_rate),
            "Clusters": len(cls.clusters),
            "Flagged": sum(c.flagged for c in cls.clusters),
        })
    left_out = set()
    if not audit.masks:
        left_out |= {"Mass on object", "Pointing game"}
    if all(cls.accuracy is None for cls in audit.classes):
        left_out.add("Accuracy")
    return [{name: value for name, value in row.items() if name not in left_out} for row in rows]


def class_table(rows: list[dict]) -> pd.DataFrame:
    """The class rows as a table (the mean maps as data URIs, which an image column shows)."""
    return pd.DataFrame([{**row, "Mean map": png_data_uri(row["Mean map"])} for row in rows])


def class_table_config() -> dict:
    return {"Mean map": st.column_config.ImageColumn("Mean map", help="Where the class's maps sit, on average")}


# Below 640 px a page is a phone's: eight columns did not fit (the table was cut after "Mass on object",
# its sideways scroll invisible), so the rows are drawn as cards there instead (640 px is where Streamlit
# itself stacks columns). The rule names the two layouts' containers by their keys (Streamlit's
# st-key-<key> classes); our own constant text, the only HTML the pages send (tests/app/test_nothing_kept.py).
_WIDE, _NARROW = "audit_classes_wide", "audit_classes_narrow"
ONE_LAYOUT_BY_WIDTH = ("<style>@media (max-width: 640px) { .st-key-audit_classes_wide { display: none; } }"
                       "@media (min-width: 641px) { .st-key-audit_classes_narrow { display: none; } }</style>")


def card_fact(name: str, value) -> str:
    """One figure of a class's card: counts before their noun ("24 photos", "1 flagged" in bold),
    shares after theirs ("accuracy 92%")."""
    if isinstance(value, str):
        return f"{name.lower()} {value}"
    noun = name.lower()[:-1] if value == 1 and name.endswith("s") else name.lower()
    return f"**{value} {noun}**" if name == "Flagged" and value else f"{value} {noun}"


def classes_overview(rows: list[dict]) -> None:
    """The class rows: a sortable table on a wide screen, one card per class on a phone (a CSS width
    rule picks one: the server cannot know the screen's width)."""
    st.html(ONE_LAYOUT_BY_WIDTH)
    with st.container(key=_WIDE):
        st.dataframe(class_table(rows), hide_index=True, width="stretch", column_config=class_table_config(),
                     row_height=56)
    with st.container(key=_NARROW, gap="small"):
        for row in rows:
            with st.container(border=True, horizontal=True, wrap=False, gap="small", vertical_alignment="center"):
                st.image(row["Mean map"], width=64)
                st.markdown(f"**{md(str(row['Class']))}**  \n" + " · ".join(
                    card_fact(name, value) for name, value in row.items() if name not in ("Class", "Mean map")
                    and value != ""))


def drop_text(cluster: gradcam.AuditCluster) -> tuple[str, str]:
    """The class's mean probability with the region removed, and with a region of the same
    size removed elsewhere, each as "before → after"."""
    if cluster.before is None or cluster.after is None:
        return "not tested", "not tested"
    random_after = cluster.before - (cluster.random_reliance or 0.0)
    return f"{cluster.before:.2f} → {cluster.after:.2f}", f"{cluster.before:.2f} → {random_after:.2f}"


# --- the 2-D embedding --------------------------------------------------------------

PICK = "photo"  # the chart's selection parameter: a clicked point's path


def embedding_frame(audit: gradcam.Audit, label: str) -> pd.DataFrame:
    rows = [{"x": p.xy[0], "y": p.xy[1], "path": p.path,
             "cluster": "outlier" if p.outlier else f"cluster {p.cluster + 1}" if p.cluster is not None else "none",
             "probability": round(p.probability, 3) if p.probability is not None else None,
             "true label": p.true_label or ""}
            for p in audit.photos if p.label == label and p.xy is not None]
    return pd.DataFrame(rows, columns=["x", "y", "path", "cluster", "probability", "true label"])


def cluster_colours(frame: pd.DataFrame) -> alt.Scale:
    """A colour per cluster; outliers grey, so they never look like one more cluster."""
    clusters = sorted((c for c in set(frame["cluster"]) if c.startswith("cluster")), key=lambda c: int(c.split()[1]))
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    others = [(name, colour) for name, colour in (("outlier", "#9e9e9e"), ("none", "#d9d9d9"))
              if name in set(frame["cluster"])]
    return alt.Scale(domain=[*clusters, *(name for name, _ in others)],
                     range=[palette[i % len(palette)] for i in range(len(clusters))] + [c for _, c in others])


def embedding_chart(frame: pd.DataFrame, picked: str | None) -> alt.Chart:
    """Points coloured by cluster; a click selects one photo (Streamlit's selection event)."""
    select = alt.selection_point(name=PICK, fields=["path"], on="click", clear="dblclick")
    axis = alt.Axis(labels=False, ticks=False, title=None, grid=False)
    return alt.Chart(frame).mark_circle(size=140, stroke="black").encode(
        x=alt.X("x:Q", axis=axis, scale=alt.Scale(zero=False, padding=12)),
        y=alt.Y("y:Q", axis=axis, scale=alt.Scale(zero=False, padding=12)),
        color=alt.Color("cluster:N", title=None, legend=alt.Legend(orient="bottom"), scale=cluster_colours(frame)),
        strokeWidth=alt.condition(alt.datum.path == (picked or ""), alt.value(3), alt.value(0)),
        tooltip=["path", "cluster", "probability", "true label"],
    ).add_params(select).properties(height=320)


def chart_pick(event) -> str | None:
    """The path of the point clicked in the chart (None when nothing is selected)."""
    try:  # the chart's state: Streamlit's VegaLiteState, or the plain dict session_state holds
        chosen = event["selection"][PICK]
    except (AttributeError, KeyError, TypeError):
        return None
    if isinstance(chosen, list) and chosen and isinstance(chosen[0], dict):
        path = chosen[0].get("path")
        return path if isinstance(path, str) else None
    return None


def problems(audit: gradcam.Audit) -> None:
    for problem in audit.problems:
        st.info(md(problem))
    if audit.broken:
        st.warning(f"{len(audit.broken)} photo{'s' if len(audit.broken) != 1 else ''} could not be audited:")
        st.dataframe(pd.DataFrame({"photo": [p.path for p in audit.broken], "why": [p.error for p in audit.broken]}),
                     hide_index=True, width="stretch")


# --- the page's own choices, kept across pages and carried by the link -------------

VIEW = "audit_view"  # session key: the page's choices, kept while other pages run (Streamlit drops widget values)
WIDGETS = ("audit_source", "audit_model", "audit_layer", "audit_method", "audit_class")
LINK_KEYS = ("audit_photos", "audit_model", "audit_layer", "audit_method", "audit_class", "audit_photo")


def remember(key: str) -> None:
    """A widget's on_change: keep its value where the next visit finds it."""
    st.session_state.setdefault(VIEW, {})[key] = st.session_state.get(key)


def restore() -> None:
    for key, value in st.session_state.get(VIEW, {}).items():
        if key in WIDGETS and key not in st.session_state and value is not None:
            st.session_state[key] = value


def set_choice(key: str, value) -> None:
    view = st.session_state.setdefault(VIEW, {})
    if value is None:
        view.pop(key, None)
        st.session_state.pop(key, None)
    else:
        view[key] = st.session_state[key] = value


def read_link(changes: dict) -> None:
    """Apply what a link (or Back/Forward) changed among this page's keys; anything
    unknown is left to the checks made once the model is known."""
    if "audit_photos" in changes:
        set_choice("audit_source", MINE if changes["audit_photos"] == MINE else DEMO)
    for key in ("audit_model", "audit_layer", "audit_method", "audit_class"):
        if key in changes:
            set_choice(key, changes[key] or None)
    if "audit_photo" in changes:
        st.session_state.setdefault(VIEW, {})["audit_photo"] = changes["audit_photo"] or None


def default_model(source: str, explore_model_key: str) -> str:
    """The demo's own model for the demo photos; for one's own photos the model in use on Explore."""
    if source == DEMO:
        return CLEVER_HANS
    return explore_model_key if explore_model_key != CLEVER_HANS else gradcam.DEFAULT_MODEL


def source_changed() -> None:
    """A new kind of photos starts on its own default model (the choice made for the other kind is dropped)."""
    remember("audit_source")
    for key in ("audit_model", "audit_layer", "audit_method", "audit_class", "audit_photo"):
        set_choice(key, None)
