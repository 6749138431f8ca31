"""The engine behind Streamlit's caches: photos decoded once, explanations made once.

Explanations are data cached per (image hash, model, layer, method): one engine pass
gives the top-5 maps, so switching among the top-5 targets, moving the opacity slider
or changing the colormap never runs the model again. What is cached, and what the
pages show, is the engine's own ``gradcam.Explanation`` (its heatmap at the photo's
size). The slow methods run as long jobs (long_jobs.py): a progress bar and a Stop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import streamlit as st
from PIL import Image

import gradcam
from gradcam.engine import SCORECAM_DEFAULT_CHANNELS
from gradcam.intake import DISPLAY_MAX_SIDE

from .call_counts import engine_calls
from .explanation_service import explain_served, service_for
from .long_jobs import long_job
from .refusals import refusals_said


@dataclass(frozen=True)
class Explained:
    predictions: list  # top-5 gradcam.Prediction
    maps: dict  # class index -> gradcam.Explanation
    layer_shape: tuple


@st.cache_data(max_entries=64, max_size="256MB", show_spinner=False)
def display_image(image_hash: str, _data: bytes) -> Image.Image:
    """The photo decoded once, in the sandbox (raises gradcam.InvalidImageError), and
    downscaled for display there too, so only display-sized pixels come back."""
    engine_calls["load_image"] += 1
    return gradcam.load_image_safely(_data, max_side=DISPLAY_MAX_SIDE)


def engine_options(method: str) -> dict:
    """How the dashboard runs a method: Score-CAM on a budget of channels, so it stays
    interactive (the pages say so; the library's default is every channel)."""
    return {"max_channels": SCORECAM_DEFAULT_CHANNELS} if gradcam.METHODS[method].channel_budget else {}


def _top5(explanations: list[gradcam.Explanation]) -> Explained:
    return Explained(predictions=explanations[0].predictions, maps={e.target: e for e in explanations},
                     layer_shape=tuple(explanations[0].raw.shape))


@st.cache_data(max_entries=256, max_size="256MB", show_spinner=False)
def _explain_top5(image_hash: str, model_key: str, layer: str, method: str, url: str | None,
                  _image: Image.Image, _model: gradcam.Model) -> Explained:
    engine_calls["explain"] += 1
    if url:
        return _top5(explain_served(url, _image, model_key, layer, method, top=5))
    return _top5(gradcam.explain_many(_model, _image, layer=layer, method=method, top=5))


@st.cache_data(max_entries=256, max_size="128MB", show_spinner=False)
def _explain_class(image_hash: str, model_key: str, layer: str, method: str, target: int, url: str | None,
                   _image: Image.Image, _model: gradcam.Model) -> gradcam.Explanation:
    engine_calls["explain"] += 1
    if url:
        return explain_served(url, _image, model_key, layer, method, targets=[target])[0]
    return gradcam.explain(_model, _image, target=target, layer=layer, method=method)


def _long_title(method: str) -> str:
    return gradcam.METHODS[method].display_name


def explain_top5(image_hash: str, model_key: str, layer: str, method: str,
                 image: Image.Image, model: gradcam.Model) -> Explained:
    """Predictions and the maps of all top-5 classes, from one engine pass."""
    if not gradcam.METHODS[method].slow:
        url = service_for(model_key, method)
        with refusals_said(url):
            return _explain_top5(image_hash, model_key, layer, method, url, image, model)

    def run(progress, stop):
        engine_calls["explain"] += 1
        return _top5(gradcam.explain_many(model, image, layer=layer, method=method, top=5, progress=progress,
                                          stop=stop, **engine_options(method)))

    return long_job(("top5", image_hash, model_key, layer, method), run, _long_title(method),
                    gradcam.METHODS[method].progress_unit)


def explain_class(image_hash: str, model_key: str, layer: str, method: str, target: int,
                  image: Image.Image, model: gradcam.Model) -> gradcam.Explanation:
    """The map of one class outside the top-5."""
    if not gradcam.METHODS[method].slow:
        url = service_for(model_key, method)
        with refusals_said(url):
            return _explain_class(image_hash, model_key, layer, method, target, url, image, model)

    def run(progress, stop):
        engine_calls["explain"] += 1
        return gradcam.explain(model, image, target=target, layer=layer, method=method, progress=progress,
                               stop=stop, **engine_options(method))

    return long_job(("class", image_hash, model_key, layer, method, target), run, _long_title(method),
                    gradcam.METHODS[method].progress_unit)


@st.cache_data(max_entries=256, max_size="128MB", show_spinner=False)
def _explain_timed(image_hash: str, model_key: str, layer: str, method: str, target: int,
                   _image: Image.Image, _model: gradcam.Model) -> tuple[gradcam.Explanation, float]:
    engine_calls["explain"] += 1
    gradcam.explain(_model, _image, target=target, layer=layer, method=method)  # compiles on a first use
    start = time.perf_counter()  # so the time shown is the method's, not TensorFlow's tracing
    explanation = gradcam.explain(_model, _image, target=target, layer=layer, method=method)
    return explanation, time.perf_counter() - start


def explain_timed(image_hash: str, model_key: str, layer: str, method: str, target: int,
                  image: Image.Image, model: gradcam.Model) -> tuple[gradcam.Explanation, float]:
    """One class's map and the seconds the engine took to make it (when it was made:
    later views come from the cache), for comparing methods side by side. Fast methods
    are timed on a second run, after compiling; slow ones on their one run."""
    if not gradcam.METHODS[method].slow:
        with refusals_said():
            return _explain_timed(image_hash, model_key, layer, method, target, image, model)

    def run(progress, stop):
        engine_calls["explain"] += 1
        start = time.perf_counter()
        explanation = gradcam.explain(model, image, target=target, layer=layer, method=method, progress=progress,
                                      stop=stop, **engine_options(method))
        return explanation, time.perf_counter() - start

    return long_job(("timed", image_hash, model_key, layer, method, target), run, _long_title(method),
                    gradcam.METHODS[method].progress_unit)
