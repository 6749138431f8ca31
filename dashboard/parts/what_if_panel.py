"""The "What if?" section (Explore, and How it works' last step): cover part of the
photo and the model answers again.

The person drags a box across the photo with a mouse or a finger
(``box_drawing``: the photo at the column's width, so it works at 390 px too) and
the box is covered at the end of the stroke; two range sliders (left-right and
top-bottom, in per cent) and Cover set a box by keyboard or precisely, and let an
AppTest drive it. Covered boxes are greyed out on the photo; several add up, Undo
removes the last and Clear all. The boxes go into the link as ``cover``
(``x0,y0,x1,y1`` fractions, boxes separated by ``;``), so a teacher can share
"cover the cup". The engine (``gradcam.what_if``) does the edit and the scoring;
the edited photo's map goes through the same caches as the original's. ``key``
keeps each page's boxes and widgets apart.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

import numpy as np
import streamlit as st
from PIL import Image, ImageDraw
from scipy.ndimage import label

import gradcam
from gradcam.engine import BASELINES
from gradcam.trust import STRONGEST

from .box_drawing import draw_box, drawn_box
from .heatmap_panel import score_text
from dashboard.safe_text import md
from gradcam.intake import sha256
from dashboard.runtime.call_counts import engine_calls
from dashboard.runtime import explanation_cache

MAX_BOXES = 8
FILL_NAMES = {"blur": "Blur it out", "mean": "Paint it the photo's mean colour", "black": "Paint it black"}


def parse_cover(text: str | None) -> list[tuple[float, float, float, float]]:
    """The boxes a link carries; anything malformed is dropped (a link is not trusted)."""
    boxes = []
    for part in (text or "").split(";")[:MAX_BOXES]:
        try:
            values = [float(v) for v in part.split(",")]
        except ValueError:
            continue
        if len(values) != 4 or not all(np.isfinite(values)):
            continue
        x0, y0, x1, y1 = (min(max(v, 0.0), 1.0) for v in values)
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        if x1 > x0 and y1 > y0:
            boxes.append((round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2)))
    return boxes


def format_cover(boxes) -> str | None:
    return ";".join(",".join(f"{v:.2f}" for v in box) for box in boxes) or None


def _pixel_box(box, width: int, height: int) -> tuple[float, float, float, float]:
    """A box of fractions in pixels, inclusive, never inverted (a 1 x 1 photo has one pixel to cover)."""
    x0, y0, x1, y1 = box
    return x0 * width, y0 * height, max(x0 * width, x1 * width - 1), max(y0 * height, y1 * height - 1)


def _outlined(photo: Image.Image, boxes, pending) -> Image.Image:
    """The photo with what is covered greyed out and the sliders' box outlined in blue
    (a stroke being drawn is dashed red, on the drawing surface)."""
    shown = photo.convert("RGB")
    shown.thumbnail((640, 640))
    width, height = shown.size
    veil = Image.new("L", shown.size, 0)
    veil_draw = ImageDraw.Draw(veil)
    for box in boxes:
        veil_draw.rectangle(_pixel_box(box, width, height), fill=150)
    shown = Image.composite(Image.new("RGB", shown.size, (235, 235, 235)), shown, veil)
    draw = ImageDraw.Draw(shown)
    draw.rectangle(_pixel_box(pending, width, height), outline=(30, 100, 220),
                   width=max(2, round(min(width, height) / 100)))
    return shown


@st.cache_data(max_entries=64, max_size="64MB", show_spinner=False)
def _what_if(image_hash: str, model_key: str, boxes: tuple, fill: str, _image: Image.Image,
             _model: gradcam.Model) -> gradcam.WhatIf:
    engine_calls["what_if"] += 1
    # The unedited photo's logits, once per photo and model: each later edit is one photo's pass.
    known = _unedited.get((image_hash, model_key))
    result = gradcam.what_if(_model, _image, list(boxes), fill=fill, unedited=known)
    _unedited[(image_hash, model_key)] = result.unedited_logits
    if len(_unedited) > 64:
        _unedited.popitem(last=False)  # the oldest photo
    return result


_unedited: OrderedDict = OrderedDict()  # (photo hash, model key) -> its unedited logits; process-wide like the cache


def change_text(model, change: float) -> str:
    points = 100.0 * change if model.outputs_probabilities else change
    unit = " points" if model.outputs_probabilities else ""
    if abs(points) < 0.05:
        return "unchanged"
    return f"{'▲ up' if points > 0 else '▼ down'} {abs(points):.1f}{unit}"


def strongest_box(heatmap: np.ndarray) -> tuple[float, float, float, float]:
    """The box around the map's strongest region, where it points: the connected part,
    around its peak, of the pixels at least half the peak (the quiz's "strongest region"),
    as fractions of the photo. A second, separate hot spot is left for the person to cover."""
    peak = float(heatmap.max())
    if not peak > 0:
        return 0.0, 0.0, 1.0, 1.0  # no evidence anywhere: the whole photo is all the map can point at
    parts, _ = label(heatmap >= STRONGEST * peak)
    rows, columns = np.nonzero(parts == parts.flat[int(np.argmax(heatmap))])
    height, width = heatmap.shape
    return parse_cover(format_cover([(columns.min() / width, rows.min() / height,
                                      (columns.max() + 1) / width, (rows.max() + 1) / height)]))[0]


def read_link(changes: dict, key: str = "what_if") -> None:
    """A link's (or Back/Forward's) ``cover`` becomes the boxes."""
    if "cover" in changes:
        st.session_state[f"{key}_boxes"] = parse_cover(changes["cover"])


def _add(key: str, box) -> None:
    boxes = st.session_state.setdefault(f"{key}_boxes", [])
    if box is not None and len(boxes) < MAX_BOXES:
        boxes.extend(parse_cover(format_cover([box])))  # as the link will carry it: two decimals


def _add_sliders_box(key: str) -> None:
    # The sliders as they are when Cover is pressed (read here, not captured when it was drawn).
    (x0, x1), (y0, y1) = st.session_state[f"{key}_x"], st.session_state[f"{key}_y"]
    _add(key, (x0 / 100, y0 / 100, x1 / 100, y1 / 100))


def _add_drawn(key: str) -> None:
    _add(key, drawn_box(f"{key}_draw"))


def _undo(key: str) -> None:
    if st.session_state.get(f"{key}_boxes"):
        st.session_state[f"{key}_boxes"].pop()


def _clear(key: str) -> None:
    st.session_state[f"{key}_boxes"] = []


def current_boxes(key: str, image_hash: str) -> list:
    """The boxes covering this photo (a new photo starts uncovered)."""
    if st.session_state.get(f"{key}_for") not in (None, image_hash):
        st.session_state[f"{key}_boxes"] = []
    st.session_state[f"{key}_for"] = image_hash
    return st.session_state.setdefault(f"{key}_boxes", [])


def show(current, model_key: str, model: gradcam.Model, layer: str, method: str, target: int, original_map,
         *, opacity: float, colormap: str, key: str = "what_if", heading: bool = True,
         suggest: np.ndarray | None = None) -> str | None:
    """The What if? section; returns the ``cover`` value for the link. ``suggest``, a heatmap
    at the photo's size, adds a button that covers where it is strongest."""
    boxes = current_boxes(key, current.sha256)
    if heading:
        st.subheader("What if? Cover part of the photo")
    st.caption("Drag across the photo (mouse or finger) to cover a box, and the model answers again on the "
               "edited photo. The sliders and Cover set a box by keyboard.")
    picture, controls = st.columns([1.4, 1])
    with controls:
        across = st.slider("Box, left to right (%)", 0, 100, (55, 95), step=5, key=f"{key}_x")
        down = st.slider("Box, top to bottom (%)", 0, 100, (20, 80), step=5, key=f"{key}_y")
        fill = st.selectbox("Covered with", BASELINES, key=f"{key}_fill", format_func=FILL_NAMES.get)
        pending = (across[0] / 100, down[0] / 100, across[1] / 100, down[1] / 100)
        cover, undo, clear = st.columns(3)
        cover.button("Cover", key=f"{key}_cover", type="primary", width="stretch", on_click=_add_sliders_box,
                     args=(key,), disabled=len(boxes) >= MAX_BOXES or across[0] == across[1]
                     or down[0] == down[1])
        undo.button("Undo", key=f"{key}_undo", width="stretch", disabled=not boxes, on_click=_undo, args=(key,))
        clear.button("Clear", key=f"{key}_clear", width="stretch", disabled=not boxes, on_click=_clear,
                     args=(key,))
        if suggest is not None:
            st.button("Cover where the map is strongest", key=f"{key}_strongest", width="stretch",
                      on_click=_add, args=(key, strongest_box(suggest)), disabled=len(boxes) >= MAX_BOXES,
                      help="The box around the map's peak and the pixels next to it where the map is at least half "
                           "its peak.")
    with picture:
        draw_box(_outlined(current.image, boxes, pending), key=f"{key}_draw", on_draw=partial(_add_drawn, key),
                 alt="What-if photo", label="The photo: drag across it to cover a box",
                 disabled=len(boxes) >= MAX_BOXES)
        st.caption("Greyed out: what is covered. Blue: the sliders' box, which Cover adds. "
                   "Dashed red: the box being drawn.")
    if not boxes:
        return None

    # The answer first, then the map: the map's gradient pass waits until the new top-5 is
    # on the page (the person reads the numbers first), while the map keeps its place above them.
    before, after = st.columns(2)
    before.image(gradcam.overlay(current.image, original_map.heatmap, opacity, colormap),
                 caption=f"Before: the map of {md(model.labels[target])}", width="stretch")
    after_slot = after.empty()
    answer_slot = st.empty()
    with answer_slot, st.spinner("Asking the model again..."):
        result = _what_if(current.sha256, model_key, tuple(boxes), fill, current.image, model)
    lines = [f"- **{md(p.label)}**: {score_text(model, p.probability)} ({change_text(model, result.change(p.index))})"
             for p in result.predictions]
    if target not in {p.index for p in result.predictions}:
        lines.append(f"- {md(model.labels[target])} (the class explained): "
                     f"{score_text(model, float(result.probabilities[target]))} "
                     f"({change_text(model, result.change(target))})")
    answer_slot.markdown("**The model's answer now** (change against the whole photo):\n" + "\n".join(lines))
    with after_slot, st.spinner("Recomputing the map..."):
        edited_hash = sha256(np.asarray(result.image).tobytes() + current.sha256.encode())
        edited_map = explanation_cache.explain_class(edited_hash, model_key, layer, method, target, result.image, model)
    # The model saw the edit at its input size; it is shown at the photo's own shape, next to the original.
    edited = result.image.resize(current.image.size, Image.BICUBIC)
    after_slot.image(gradcam.overlay(edited, edited_map.heatmap, opacity, colormap),
                     caption=f"After covering: the map of {md(model.labels[target])}, recomputed", width="stretch",
                     alt="What-if overlay")
    return format_cover(boxes)
