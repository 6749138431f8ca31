"""The engine behind Streamlit's caches, and a count of real engine calls.

With GRADCAM_BACKEND set to a URL, the maps of the built-in models come from that
explanation service (``serve run gradcam.serve:app``) instead of this process;
this module is the only place that knows, and the caches stay here.

Models are shared resources (one per process, loaded once). Explanations are
data cached per (image hash, model, layer, method): one engine pass gives the
top-5 maps, so switching among the top-5 targets, moving the opacity slider or
changing the colormap never runs the model again. Only the small layer-resolution
maps are cached; the page upsamples the one it shows, which costs milliseconds.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import os
import sys
from collections import Counter
from dataclasses import dataclass

import numpy as np
import streamlit as st
from PIL import Image

import gradcam
from gradcam.cam import upsample
from gradcam.images import DISPLAY_MAX_SIDE
from gradcam.service import explain_remote

from .safe_text import md

def _keep_keras_state_between_reruns() -> None:
    """Stop Streamlit from calling keras.backend.clear_session() after every rerun.

    Streamlit does that (script_runner._clean_problem_modules) for apps that build
    a model on each run. Ours are built once and cached, and for us it is harmful:
    it empties TensorFlow's kernel cache, so every rerun re-optimises the compiled
    Grad-CAM (~250 ms instead of ~20 ms), it runs a full garbage collection, and it
    resets Keras' graph state while other sessions may be mid-trace. We keep the
    rest of that clean-up (closing matplotlib figures). If a Streamlit release moves
    the function, nothing breaks: we only lose the speed-up.
    """
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:
        return
    if getattr(script_runner._clean_problem_modules, "keeps_keras", False):
        return

    def clean_problem_modules_but_keras() -> None:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")

    clean_problem_modules_but_keras.keeps_keras = True
    script_runner._clean_problem_modules = clean_problem_modules_but_keras


_keep_keras_state_between_reruns()

# How many times each engine function really ran (cache misses). Tests read it.
engine_calls: Counter = Counter()



@dataclass(frozen=True)
class ClassMap:
    target: int
    label: str
    probability: float
    raw: np.ndarray  # layer resolution, >= 0
    no_positive_evidence: bool


@dataclass(frozen=True)
class Explained:
    predictions: list  # top-5 gradcam.Prediction
    maps: dict  # class index -> ClassMap
    layer_shape: tuple


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@st.cache_data(max_entries=64, max_size="256MB", show_spinner=False)
def display_image(image_hash: str, _data: bytes) -> Image.Image:
    """The photo decoded once (raises gradcam.InvalidImageError) and downscaled for display."""
    engine_calls["load_image"] += 1
    image = gradcam.load_image(_data)
    image.thumbnail((DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE), Image.LANCZOS)
    return image


def _settle_garbage_collector() -> None:
    # TensorFlow and a model are millions of long-lived Python objects. Freezing
    # them out of the collector's view keeps every later collection (Python's own,
    # or Streamlit's after a rerun) short, instead of ~0.4 s with the GIL held.
    gc.collect()
    gc.freeze()


@st.cache_resource(max_entries=8, show_spinner=False)
def builtin_model(name: str) -> gradcam.Model:
    engine_calls["load_model"] += 1
    model = gradcam.load_model(name)
    _settle_garbage_collector()
    return model


@st.cache_resource(max_entries=4, show_spinner=False)
def own_model(key: str, _model_bytes: bytes, _labels_bytes: bytes | None, preprocessing: str | None) -> gradcam.Model:
    """A user's model, loaded from memory; ``key`` holds the hashes of both files."""
    engine_calls["load_model"] += 1
    model = gradcam.load_model(_model_bytes, labels=_labels_bytes, preprocessing=preprocessing)
    _settle_garbage_collector()
    return model


def class_map(explanation: gradcam.Explanation) -> ClassMap:
    """What the caches keep of an explanation: the small layer-resolution map."""
    return ClassMap(explanation.target, explanation.label, explanation.probability, explanation.raw,
                    explanation.no_positive_evidence)


def backend() -> str | None:
    """The explanation service's URL from GRADCAM_BACKEND, or None: explain in this
    process (the default). Read on every call, and part of the cache keys, so a
    changed setting never serves the other backend's cached maps."""
    return os.environ.get("GRADCAM_BACKEND", "").strip() or None


def _remote(model_key: str) -> str | None:
    # Built-in models only: an uploaded model stays in this process (the service
    # knows only its own zoo, and uploads are never sent anywhere).
    url = backend()
    return url if url and not model_key.startswith("own:") else None


@contextlib.contextmanager
def _service_problems_said(url: str | None):
    """A service that is down or refuses a request ends the page with its sentence
    (the choices stay, so the next rerun tries again); in-process errors pass as before."""
    try:
        yield
    except ValueError as error:
        if not url:
            raise
        st.error(md(str(error)))  # the sentence may quote a request's text: shown as written
        st.stop()


def _png(image: Image.Image) -> bytes:
    # Lossless, so the service explains exactly the pixels this page shows.
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _class_maps(served) -> dict:
    return {m.target: ClassMap(m.target, m.label, m.probability, m.raw, m.no_positive_evidence) for m in served.maps}


def explain_top5(image_hash: str, model_key: str, layer: str, method: str,
                 image: Image.Image, model: gradcam.Model) -> Explained:
    """Predictions and the maps of all top-5 classes, from one engine pass."""
    url = _remote(model_key)
    with _service_problems_said(url):
        return _explain_top5(image_hash, model_key, layer, method, url, image, model)


@st.cache_data(max_entries=256, max_size="128MB", show_spinner=False)
def _explain_top5(image_hash: str, model_key: str, layer: str, method: str, url: str | None,
                  _image: Image.Image, _model: gradcam.Model) -> Explained:
    engine_calls["explain"] += 1
    if url:
        served = explain_remote(url, _png(_image), model_key, layer, method, top=5)
        return Explained(predictions=served.predictions, maps=_class_maps(served),
                         layer_shape=tuple(served.maps[0].raw.shape))
    explanations = gradcam.explain_many(_model, _image, layer=layer, method=method, top=5)
    return Explained(
        predictions=explanations[0].predictions,
        maps={e.target: class_map(e) for e in explanations},
        layer_shape=tuple(explanations[0].raw.shape),
    )


def explain_class(image_hash: str, model_key: str, layer: str, method: str, target: int,
                  image: Image.Image, model: gradcam.Model) -> ClassMap:
    """The map of one class outside the top-5."""
    url = _remote(model_key)
    with _service_problems_said(url):
        return _explain_class(image_hash, model_key, layer, method, target, url, image, model)


@st.cache_data(max_entries=256, max_size="64MB", show_spinner=False)
def _explain_class(image_hash: str, model_key: str, layer: str, method: str, target: int, url: str | None,
                   _image: Image.Image, _model: gradcam.Model) -> ClassMap:
    engine_calls["explain"] += 1
    if url:
        return _class_maps(explain_remote(url, _png(_image), model_key, layer, method, targets=[target]))[target]
    return class_map(gradcam.explain(_model, _image, target=target, layer=layer, method=method))


def heatmap(class_map: ClassMap, size: tuple[int, int]) -> np.ndarray:
    """The map at the displayed photo's size, in [0, 1]."""
    return upsample(class_map.raw, size)[0]
