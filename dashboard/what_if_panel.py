"""Explore's "What if?": cover part of the photo and the model answers again.

The person sets a box with two range sliders (left-right and top-bottom, in per
cent of the photo: they work with a finger at 390 px, and an AppTest can drive
them), sees it outlined on the photo, and covers it; several boxes add up, Undo
removes the last and Clear all. The boxes go into the link as ``cover``
(``x0,y0,x1,y1`` fractions, boxes separated by ``;``), so a teacher can share
"cover the cup". The engine (``gradcam.what_if``) does the edit and the scoring;
the edited photo's map goes through the same caches as the original's.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image, ImageDraw

import gradcam
from gradcam.engine.baselines import BASELINES

from . import cached
from .heatmap_panel import score_text
from .safe_text import md

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
    """The photo with what is covered greyed out and the box the sliders set outlined in red."""
    shown = photo.convert("RGB")
    shown.thumbnail((640, 640))
    width, height = shown.size
    veil = Image.new("L", shown.size, 0)
    veil_draw = ImageDraw.Draw(veil)
    for box in boxes:
        veil_draw.rectangle(_pixel_box(box, width, height), fill=150)
    shown = Image.composite(Image.new("RGB", shown.size, (235, 235, 235)), shown, veil)
    draw = ImageDraw.Draw(shown)
    draw.rectangle(_pixel_box(pending, width, height), outline=(230, 40, 40),
                   width=max(2, round(min(width, height) / 100)))
    return shown


@st.cache_data(max_entries=64, max_size="64MB", show_spinner=False)
def _what_if(image_hash: str, model_key: str, boxes: tuple, fill: str, _image: Image.Image,
             _model: gradcam.Model) -> gradcam.WhatIf:
    cached.engine_calls["what_if"] += 1
    return gradcam.what_if(_model, _image, list(boxes), fill=fill)


def change_text(model, change: float) -> str:
    points = 100.0 * change if model.outputs_probabilities else change
    unit = " points" if model.outputs_probabilities else ""
    if abs(points) < 0.05:
        return "unchanged"
    return f"{'▲ up' if points > 0 else '▼ down'} {abs(points):.1f}{unit}"


def read_link(changes: dict) -> None:
    """A link's (or Back/Forward's) ``cover`` becomes the boxes."""
    if "cover" in changes:
        st.session_state["what_if_boxes"] = parse_cover(changes["cover"])


def show(current, model_key: str, model: gradcam.Model, layer: str, method: str, target: int, original_map,
         *, opacity: float, colormap: str) -> str | None:
    """The What if? section; returns the ``cover`` value for the link."""
    if st.session_state.get("what_if_for") not in (None, current.sha256):
        st.session_state["what_if_boxes"] = []  # a new photo starts uncovered
    st.session_state["what_if_for"] = current.sha256
    boxes = st.session_state.setdefault("what_if_boxes", [])
    st.subheader("What if? Cover part of the photo")
    st.caption("Set a box with the two sliders, cover it, and the model answers again on the edited photo.")
    controls, picture = st.columns([1, 1.4])
    with controls:
        across = st.slider("Box, left to right (%)", 0, 100, (55, 95), step=5, key="what_if_x")
        down = st.slider("Box, top to bottom (%)", 0, 100, (20, 80), step=5, key="what_if_y")
        fill = st.selectbox("Covered with", BASELINES, key="what_if_fill", format_func=FILL_NAMES.get)
        pending = (across[0] / 100, down[0] / 100, across[1] / 100, down[1] / 100)
        cover, undo, clear = st.columns(3)
        if cover.button("Cover", key="what_if_cover", type="primary", width="stretch",
                        disabled=len(boxes) >= MAX_BOXES or across[0] == across[1] or down[0] == down[1]):
            boxes.append(pending)
        if undo.button("Undo", key="what_if_undo", width="stretch", disabled=not boxes):
            boxes.pop()
        if clear.button("Clear", key="what_if_clear", width="stretch", disabled=not boxes):
            boxes.clear()
    with picture:
        st.image(_outlined(current.image, boxes, pending), width="stretch",
                 caption="Red: the box the sliders set. Greyed out: what is covered.")
    if not boxes:
        return None

    with st.spinner("Asking the model again..."):
        result = _what_if(current.sha256, model_key, tuple(boxes), fill, current.image, model)
        edited_hash = cached.sha256(np.asarray(result.image).tobytes() + current.sha256.encode())
        edited_map = cached.explain_class(edited_hash, model_key, layer, method, target, result.image, model)
    before, after = st.columns(2)
    before.image(gradcam.overlay(current.image, cached.heatmap(original_map, current.image.size), opacity, colormap),
                 caption=f"Before: the map of {md(model.labels[target])}", width="stretch")
    # The model saw the edit at its input size; it is shown at the photo's own shape, next to the original.
    edited = result.image.resize(current.image.size, Image.BICUBIC)
    after.image(gradcam.overlay(edited, cached.heatmap(edited_map, edited.size), opacity, colormap),
                caption=f"After covering: the map of {md(model.labels[target])}, recomputed", width="stretch",
                alt="What-if overlay")
    lines = [f"- **{md(p.label)}**: {score_text(model, p.probability)} ({change_text(model, result.change(p.index))})"
             for p in result.predictions]
    if target not in {p.index for p in result.predictions}:
        lines.append(f"- {md(model.labels[target])} (the class explained): "
                     f"{score_text(model, float(result.probabilities[target]))} "
                     f"({change_text(model, result.change(target))})")
    st.markdown("**The model's answer now** (change against the whole photo):\n" + "\n".join(lines))
    return format_cover(boxes)
