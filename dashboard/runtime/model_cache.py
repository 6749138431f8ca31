"""Models, one per process and name: loaded once and shared by every session.

A built-in model is keyed by its name; a user's model by the hashes of its files.
"""

from __future__ import annotations

import gc

import streamlit as st

import gradcam

from .call_counts import engine_calls


def settle_garbage_collector() -> None:
    """After a model load: one full collection, then freeze what is left.

    TensorFlow and a model are millions of long-lived Python objects. Freezing
    them out of the collector's view keeps every later collection (Python's own,
    or Streamlit's after a rerun) short, instead of ~0.4 s with the GIL held.
    A frozen object is never collected, though, and a Keras model is a web of
    cycles: frozen once, an uploaded model outlived its cache entry and every
    session (six uploads, six models kept for the life of the process). So the
    freeze is undone first: the one full collection per model load frees the
    models that were evicted or replaced since the last load."""
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
    settle_garbage_collector()
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
    settle_garbage_collector()
    return model
