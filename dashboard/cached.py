"""The engine behind Streamlit's caches, and a count of real engine calls.

Models are shared resources (one per process, loaded once). Explanations are
data cached per (image hash, model, layer, method): one engine pass gives the
top-5 maps, so switching among the top-5 targets, moving the opacity slider or
changing the colormap never runs the model again. Only the small layer-resolution
maps are cached; the page upsamples the one it shows, which costs milliseconds.
"""

from __future__ import annotations

import gc
import hashlib
import sys
from collections import Counter
from dataclasses import dataclass

import numpy as np
import streamlit as st
from PIL import Image

import gradcam
from gradcam.cam import upsample
from gradcam.images import DISPLAY_MAX_SIDE

from . import media_grace

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
media_grace.keep_superseded_images_briefly()

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
def own_model(key: str, _model_bytes: bytes, _labels_bytes: bytes | None, preprocessing: str | None,
              file_name: str | None = None) -> gradcam.Model:
    """A user's model, loaded from memory and called by its file name; ``key`` holds
    the hashes of both files."""
    engine_calls["load_model"] += 1
    model = gradcam.load_model(_model_bytes, labels=_labels_bytes, preprocessing=preprocessing, name=file_name)
    _settle_garbage_collector()
    return model


def class_map(explanation: gradcam.Explanation) -> ClassMap:
    """What the caches keep of an explanation: the small layer-resolution map."""
    return ClassMap(explanation.target, explanation.label, explanation.probability, explanation.raw,
                    explanation.no_positive_evidence)


@st.cache_data(max_entries=256, max_size="128MB", show_spinner=False)
def explain_top5(image_hash: str, model_key: str, layer: str, method: str,
                 _image: Image.Image, _model: gradcam.Model) -> Explained:
    """Predictions and the maps of all top-5 classes, from one engine pass."""
    engine_calls["explain"] += 1
    explanations = gradcam.explain_many(_model, _image, layer=layer, method=method, top=5)
    return Explained(
        predictions=explanations[0].predictions,
        maps={e.target: class_map(e) for e in explanations},
        layer_shape=tuple(explanations[0].raw.shape),
    )


@st.cache_data(max_entries=256, max_size="64MB", show_spinner=False)
def explain_class(image_hash: str, model_key: str, layer: str, method: str, target: int,
                  _image: Image.Image, _model: gradcam.Model) -> ClassMap:
    """The map of one class outside the top-5."""
    engine_calls["explain"] += 1
    return class_map(gradcam.explain(_model, _image, target=target, layer=layer, method=method))


def heatmap(class_map: ClassMap, size: tuple[int, int]) -> np.ndarray:
    """The map at the displayed photo's size, in [0, 1]."""
    return upsample(class_map.raw, size)[0]
