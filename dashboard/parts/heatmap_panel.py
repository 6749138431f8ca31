"""The result: overlay, original, bare heatmap with its colour scale, the top-5
chart, the downloads, and what a heatmap can and cannot tell."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

import gradcam
from gradcam import report
from gradcam.engine import colorize, strongest_colour

from dashboard.runtime.explanation_cache import Explained
from dashboard.safe_text import md


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array.astype(np.float32))
    return buffer.getvalue()


def colour_scale(colormap: str) -> Image.Image:
    ramp = np.tile(np.linspace(0.0, 1.0, 256, dtype=np.float32), (14, 1))
    return Image.fromarray(colorize(ramp, colormap))


def score_text(model: gradcam.Model, value: float) -> str:
    """A probability as a percentage; a regression model's output as the number it is
    (the report's wording, for this model)."""
    return report.score_text(value, model.outputs_probabilities)


def predictions_heading(model: gradcam.Model, count: int) -> str:
    return report.predictions_heading(count, model.outputs_probabilities)


def predictions_chart(explained: Explained, target: int, probabilities: bool = True) -> alt.Chart:
    table = pd.DataFrame(
        {
            "class": [p.label for p in explained.predictions],
            "probability": [p.probability for p in explained.predictions],
            "explained": ["explained" if p.index == target else "other" for p in explained.predictions],
        }
    )
    if probabilities:
        x = alt.X("probability:Q", title="probability", scale=alt.Scale(domain=[0, 1]),
                  axis=alt.Axis(format="%", tickCount=5))
        tooltip = alt.Tooltip("probability:Q", title="probability", format=".1%")
    else:  # a raw output can be any size: few ticks, in short notation, so their labels never collide
        x = alt.X("probability:Q", title="output", scale=alt.Scale(zero=True, nice=True),
                  axis=alt.Axis(format="~g", tickCount=4, labelOverlap=True))
        tooltip = alt.Tooltip("probability:Q", title="output", format=".4g")
    return (
        alt.Chart(table)
        .mark_bar()
        .encode(
            x=x,
            # A fixed band per class with a gap (the Step below), however many classes: bars never
            # touch, and one or three bars are not stretched over a five-bar chart's height.
            y=alt.Y("class:N", sort="-x", title=None, scale=alt.Scale(paddingInner=0.35, paddingOuter=0.2),
                    axis=alt.Axis(labelOverlap=False, labelLimit=220)),
            color=alt.Color("explained:N", scale=alt.Scale(domain=["explained", "other"],
                                                             range=["#d62728", "#9bb7d4"]), legend=None),
            tooltip=["class", tooltip],
        )
        # A Step, not a number: Streamlit scales a numeric height with the width, which squashed
        # one or three bars on a phone. (Vega notes that it drops "fit-y" for it: harmless.)
        .properties(height=alt.Step(34))
    )


def record(model_name: str, layer: str, method: str, class_map: gradcam.Explanation, explained: Explained,
           image_name: str, image_sha256: str) -> dict:
    """What exactly was explained, for the JSON download."""
    return {
        "model": model_name,
        "layer": layer,
        "layer_resolution": list(class_map.raw.shape),
        "method": gradcam.METHODS[method].display_name,
        "target": {"index": class_map.target, "label": class_map.label, "probability": class_map.probability},
        "no_positive_evidence": class_map.no_positive_evidence,
        "top5": [{"index": p.index, "label": p.label, "probability": p.probability, "logit": p.logit}
                 for p in explained.predictions],
        "image": {"name": image_name, "sha256": image_sha256},
        "gradcam_explorer": {"created": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }


def what_the_colours_mean(class_map: gradcam.Explanation, model: gradcam.Model, method: str, colormap: str) -> str:
    """The sentence under the overlay (Markdown), in the library's words (the reports say the same).
    "Why espresso?" only where the method reads the class: Eigen-CAM's map is the same for every class."""
    label = f"**{md(class_map.label)}**"
    sentence = report.what_the_colours_mean(method, strongest_colour(colormap), label)
    if not gradcam.METHODS[method].class_specific:
        return sentence
    return f"Why {label} ({score_text(model, class_map.probability)})? {sentence}"


def show(photo: Image.Image, heatmap: np.ndarray, class_map: gradcam.Explanation, explained: Explained, *, opacity: float,
         colormap: str, record_json: dict, model: gradcam.Model, method: str = "gradcam") -> None:
    overlaid = gradcam.overlay(photo, heatmap, opacity, colormap)
    method_name = gradcam.METHODS[method].display_name
    if (note := gradcam.small_photo_note(photo.size, model)) is not None:
        st.warning(md(note))  # it names the model, which may be an own file's name
    if class_map.no_positive_evidence:
        # "at this layer" only where there is one (the library's sentence, as in the reports).
        st.warning(f"{report.no_evidence_notice(method, f'**{md(class_map.label)}**')} Try another "
                   f"{'class' if gradcam.METHODS[method].layer_free else 'layer or class'}.")

    big, side = st.columns([3, 1.3])
    with big:
        st.image(overlaid, caption=f"{method_name} overlay, opacity {opacity:.2f}", width="stretch",
                 alt="Grad-CAM overlay")  # the alt text is what the browser test finds, whatever the method
    with side:
        st.image(photo, caption="Original", width="stretch")
        # The grid the map really holds: a layer's cells, the input's pixels or Occlusion's patch positions.
        st.image(colorize(heatmap, colormap),
                 caption=f"Heatmap alone ({report.map_grid(method, class_map.raw.shape)}, enlarged to the photo)",
                 width="stretch")
        st.image(colour_scale(colormap), width="stretch")
        low, high = st.columns(2)
        low.caption("no evidence")
        high.markdown("<div style='text-align:right;font-size:0.8rem;color:gray'>strongest</div>",
                      unsafe_allow_html=True)  # our own fixed text; user text never goes through HTML

    st.markdown(what_the_colours_mean(class_map, model, method, colormap))

    downloads = st.columns(3)
    stem = report.file_stem(record_json["image"]["name"])  # cut and cleaned: never "... final_v3 (-gradcam.json"
    downloads[0].download_button("Overlay (PNG)", lambda: _png(overlaid), file_name=f"{stem}-gradcam.png",
                                 mime="image/png", on_click="ignore", width="stretch")
    downloads[1].download_button("Heatmap (.npy)", lambda: _npy(heatmap), file_name=f"{stem}-heatmap.npy",
                                 mime="application/octet-stream", on_click="ignore", width="stretch")
    downloads[2].download_button("Record (JSON)", json.dumps(record_json, indent=2), file_name=f"{stem}-gradcam.json",
                                 mime="application/json", on_click="ignore", width="stretch")


def honesty_note(layer_shape: tuple, method: str = "gradcam") -> None:
    chosen = gradcam.METHODS[method]
    grid = report.map_grid(method, layer_shape)  # Occlusion's 13 x 13 patch positions, not its 224 x 224 pixels
    what = ""  # other methods: the sentence under the map says what their colours mean
    if chosen.class_specific and not chosen.layer_free:
        what = ("It shows where the chosen layer's features **raised the score** of the class, weighted by how much "
                "the score depends on each feature map. ")
    with st.expander("What this heatmap shows, and what it does not"):
        st.markdown(
            f"""
- {what}It is computed on {grid} and smoothed up to the photo, so it cannot point at
  anything smaller than one of those; the soft edges are interpolation, not detail.
- It is **not** proof of what the model "looks at": it shows correlation inside the network,
  not cause. A region that is not highlighted may still matter through other layers.
- Later layers give coarser, more class-specific maps; earlier layers give sharper maps that
  respond to edges and textures of any class.
- Compare two classes of one photo: if both maps light up the same place, the map does not
  tell the classes apart there.
"""
        )
