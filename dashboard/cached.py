"""The engine behind Streamlit's caches, and a count of real engine calls.

With GRADCAM_BACKEND set to a URL, the maps of the built-in models come from that
explanation service (``serve run gradcam.scale.serve:app``) instead of this process;
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
import io
import os
import sys
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np
import streamlit as st
from PIL import Image

import gradcam
from gradcam.intake import digest, sandbox
from gradcam.engine.cam import heatmap as method_heatmap
from gradcam.intake.images import DISPLAY_MAX_SIDE
from gradcam.engine.methods import SCORECAM_DEFAULT_CHANNELS
from gradcam.scale.wire import explain_remote

from .safe_text import md

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
media_grace.keep_superseded_files_briefly()
sandbox.image_pool().start()  # the first upload should not wait for a worker to boot

# How many times each engine function really ran (cache misses). Tests read it.
engine_calls: Counter = Counter()



@dataclass(frozen=True)
class ClassMap:
    target: int
    label: str
    probability: float
    raw: np.ndarray  # layer resolution (input resolution for guided methods), >= 0
    no_positive_evidence: bool
    method: str = "gradcam"


@dataclass(frozen=True)
class Explained:
    predictions: list  # top-5 gradcam.Prediction
    maps: dict  # class index -> ClassMap
    layer_shape: tuple


sha256 = digest.sha256  # the image hash every cache below is keyed on


@st.cache_data(max_entries=64, max_size="256MB", show_spinner=False)
def display_image(image_hash: str, _data: bytes) -> Image.Image:
    """The photo decoded once, in the sandbox (raises gradcam.InvalidImageError), and
    downscaled for display there too, so only display-sized pixels come back."""
    engine_calls["load_image"] += 1
    return gradcam.load_image_safely(_data, max_side=DISPLAY_MAX_SIDE)


def this_session_in_the_sandbox():
    """A context manager: sandbox reads inside it count as this browser session's, so the
    pools serve sessions in turn (a session flooding uploads cannot starve the others)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    return sandbox.sandbox_session(getattr(context, "session_id", None))


def start_model_sandbox() -> None:
    """Boot the model worker in the background (importing Keras there takes seconds), so
    it is ready by the time the person has picked a file. Idempotent."""
    sandbox.model_pool().start()


def _settle_garbage_collector() -> None:
    # TensorFlow and a model are millions of long-lived Python objects. Freezing
    # them out of the collector's view keeps every later collection (Python's own,
    # or Streamlit's after a rerun) short, instead of ~0.4 s with the GIL held.
    # A frozen object is never collected, though, and a Keras model is a web of
    # cycles: frozen once, an uploaded model outlived its cache entry and every
    # session (six uploads, six models kept for the life of the process). So the
    # freeze is undone first: the one full collection per model load frees the
    # models that were evicted or replaced since the last load.
    gc.unfreeze()
    gc.collect()
    gc.freeze()


# Built-in models this process has loaded: a page shows itself before loading (or
# converting) one that is not here yet, which takes seconds.
_loaded: set[str] = set()


@st.cache_resource(max_entries=8, show_spinner=False)
def builtin_model(name: str) -> gradcam.Model:
    engine_calls["load_model"] += 1
    model = gradcam.load_model(name)
    _settle_garbage_collector()
    _loaded.add(name)
    return model


def is_loaded(name: str) -> bool:
    return name in _loaded


@st.cache_resource(max_entries=4, show_spinner=False)
def own_model(key: str, _model_bytes: bytes, _labels_bytes: bytes | None, preprocessing: str | None,
              file_name: str | None = None) -> gradcam.Model:
    """A user's model, read in the sandbox, rebuilt here and called by its file name;
    ``key`` holds the hashes of both files."""
    engine_calls["load_model"] += 1
    model = gradcam.load_model(_model_bytes, labels=_labels_bytes, preprocessing=preprocessing, sandbox=True,
                               name=file_name)
    try:  # Explore's first view, the default method's top-5, must fit: else the upload is refused now
        gradcam.check_explanation(model, next(iter(gradcam.METHODS)), targets=5)
    except gradcam.ExplanationTooCostly as error:
        raise gradcam.ModelLoadError(str(error)) from None
    _settle_garbage_collector()
    return model


def class_map(explanation: gradcam.Explanation) -> ClassMap:
    """What the caches keep of an explanation: the small layer-resolution map."""
    return ClassMap(explanation.target, explanation.label, explanation.probability, explanation.raw,
                    explanation.no_positive_evidence, explanation.method)


def engine_options(method: str) -> dict:
    """How the dashboard runs a method: Score-CAM on a budget of channels, so it stays
    interactive (the pages say so; the library's default is every channel)."""
    return {"max_channels": SCORECAM_DEFAULT_CHANNELS} if gradcam.METHODS[method].channel_budget else {}


def _top5(explanations: list[gradcam.Explanation]) -> Explained:
    return Explained(
        predictions=explanations[0].predictions,
        maps={e.target: class_map(e) for e in explanations},
        layer_shape=tuple(explanations[0].raw.shape),
    )


# --- the explanation service (GRADCAM_BACKEND) -------------------------------------


def backend() -> str | None:
    """The explanation service's URL from GRADCAM_BACKEND, or None: explain in this
    process (the default). Read on every call, and part of the cache keys, so a
    changed setting never serves the other backend's cached maps."""
    return os.environ.get("GRADCAM_BACKEND", "").strip() or None


def _remote(model_key: str, method: str) -> str | None:
    # Built-in models only: an uploaded model stays in this process (the service
    # knows only its own zoo, and uploads are never sent anywhere). The slow methods
    # stay here too: their progress bar and early stop need the engine in-process.
    url = backend()
    return url if url and not model_key.startswith("own:") and not gradcam.METHODS[method].slow else None


@contextlib.contextmanager
def refusals_said(url: str | None = None):
    """An explanation over the memory budget, or a service that is down or refuses a
    request, ends the page with its sentence (the choices stay, so another model, method
    or class can be picked); other in-process errors pass as before."""
    try:
        yield
    except gradcam.ExplanationTooCostly as error:
        st.error(md(str(error)))
        st.stop()
    except ValueError as error:
        if not url:
            raise
        st.error(md(str(error)))  # the sentence may quote a request's text: shown as written
        st.stop()


def png_bytes(image: Image.Image) -> bytes:
    """Lossless and quick: the service explains exactly the pixels this page shows, and a
    session keeps a large upload as what it shows."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _class_maps(served) -> dict:
    return {m.target: ClassMap(m.target, m.label, m.probability, m.raw, m.no_positive_evidence, served.method)
            for m in served.maps}


@st.cache_data(max_entries=256, max_size="128MB", show_spinner=False)
def _explain_top5(image_hash: str, model_key: str, layer: str, method: str, url: str | None,
                  _image: Image.Image, _model: gradcam.Model) -> Explained:
    engine_calls["explain"] += 1
    if url:
        served = explain_remote(url, png_bytes(_image), model_key, layer, method, top=5)
        return Explained(predictions=served.predictions, maps=_class_maps(served),
                         layer_shape=tuple(served.maps[0].raw.shape))
    return _top5(gradcam.explain_many(_model, _image, layer=layer, method=method, top=5))


@st.cache_data(max_entries=256, max_size="64MB", show_spinner=False)
def _explain_class(image_hash: str, model_key: str, layer: str, method: str, target: int, url: str | None,
                   _image: Image.Image, _model: gradcam.Model) -> ClassMap:
    engine_calls["explain"] += 1
    if url:
        return _class_maps(explain_remote(url, png_bytes(_image), model_key, layer, method, targets=[target]))[target]
    return class_map(gradcam.explain(_model, _image, target=target, layer=layer, method=method))


# --- slow methods: a progress bar, and a newer request supersedes an older one ----
#
# Score-CAM and Ablation-CAM run many forward passes. They are not called inside
# st.cache_data: a progress bar updated from inside a cached function would be
# recorded and replayed on every cache hit. Their results go to this small cache
# instead, shared by all sessions like st.cache_data (keyed by the image's hash).
# When a choice changes while one runs, Streamlit stops the old run at its next
# progress update, so no stale map is ever stored or shown.

_SLOW_ENTRIES = 64


@st.cache_resource(show_spinner=False)
def _slow_results() -> tuple[OrderedDict, threading.Lock]:
    return OrderedDict(), threading.Lock()


def _slow(key: tuple, method: str, run: Callable, unit: str = "channels", title: str | None = None) -> object:
    results, lock = _slow_results()
    with lock:
        if key in results:
            results.move_to_end(key)
            return results[key]
    # A newer request of this session supersedes an older one still running.
    previous = st.session_state.get("_slow_method_stop")
    if previous is not None:
        previous.set()
    stop = threading.Event()
    st.session_state["_slow_method_stop"] = stop
    title = title or gradcam.METHODS[method].display_name
    bar = st.progress(0.0, text=f"{title}: starting...")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{title}: {done} of {total} {unit}")

    try:
        with refusals_said():
            value = run(progress, stop)
    finally:
        bar.empty()
    with lock:
        results[key] = value
        while len(results) > _SLOW_ENTRIES:
            results.popitem(last=False)
    return value


def long_job(key: tuple, run: Callable, title: str, unit: str) -> object:
    """A long job's result (a dataset's audit, say), made once for every session like the
    slow methods' maps: ``run(progress, stop)`` runs under a progress bar ("title: done of
    total unit"), and a newer job of this session, or ``stop_long_job``, stops it."""
    return _slow(key, "gradcam", run, unit=unit, title=title)


def is_done(key: tuple) -> bool:
    """Whether ``long_job(key, ...)`` would return at once (its result is kept)."""
    results, lock = _slow_results()
    with lock:
        return key in results


def stop_long_job() -> None:
    """Stop this session's long job, if one is running (a Stop button's callback)."""
    running = st.session_state.get("_slow_method_stop")
    if running is not None:
        running.set()


def explain_top5(image_hash: str, model_key: str, layer: str, method: str,
                 image: Image.Image, model: gradcam.Model) -> Explained:
    """Predictions and the maps of all top-5 classes, from one engine pass."""
    if not gradcam.METHODS[method].slow:
        url = _remote(model_key, method)
        with refusals_said(url):
            return _explain_top5(image_hash, model_key, layer, method, url, image, model)

    def run(progress, stop):
        engine_calls["explain"] += 1
        return _top5(gradcam.explain_many(model, image, layer=layer, method=method, top=5, progress=progress,
                                          stop=stop, **engine_options(method)))

    return _slow(("top5", image_hash, model_key, layer, method), method, run)


def explain_class(image_hash: str, model_key: str, layer: str, method: str, target: int,
                  image: Image.Image, model: gradcam.Model) -> ClassMap:
    """The map of one class outside the top-5."""
    if not gradcam.METHODS[method].slow:
        url = _remote(model_key, method)
        with refusals_said(url):
            return _explain_class(image_hash, model_key, layer, method, target, url, image, model)

    def run(progress, stop):
        engine_calls["explain"] += 1
        return class_map(gradcam.explain(model, image, target=target, layer=layer, method=method,
                                          progress=progress, stop=stop, **engine_options(method)))

    return _slow(("class", image_hash, model_key, layer, method, target), method, run)


@st.cache_data(max_entries=256, max_size="64MB", show_spinner=False)
def _explain_timed(image_hash: str, model_key: str, layer: str, method: str, target: int,
                   _image: Image.Image, _model: gradcam.Model) -> tuple[ClassMap, float]:
    engine_calls["explain"] += 1
    gradcam.explain(_model, _image, target=target, layer=layer, method=method)  # compiles on a first use
    start = time.perf_counter()  # so the time shown is the method's, not TensorFlow's tracing
    explanation = gradcam.explain(_model, _image, target=target, layer=layer, method=method)
    return class_map(explanation), time.perf_counter() - start


def explain_timed(image_hash: str, model_key: str, layer: str, method: str, target: int,
                  image: Image.Image, model: gradcam.Model) -> tuple[ClassMap, float]:
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
        return class_map(explanation), time.perf_counter() - start

    return _slow(("timed", image_hash, model_key, layer, method, target), method, run)


def heatmap(class_map: ClassMap, size: tuple[int, int]) -> np.ndarray:
    """The map at the displayed photo's size, in [0, 1] (guided maps at pixel resolution)."""
    return method_heatmap(class_map.raw, size, class_map.method)
