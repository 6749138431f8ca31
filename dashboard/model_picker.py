"""Which model explains: the built-in ones, or a Keras file the user uploads.

The chosen model's key lives in st.session_state["model_key"], so other pages
use the same model. A model that fails to load shows the engine's sentence and
the last model that worked stays in use.
"""

from __future__ import annotations

import streamlit as st

import gradcam
from gradcam.models import KERAS_APPLICATIONS, PREPROCESSING, download_weights, keras_weights_path

from . import cached
from .safe_text import md

UPLOAD = "Upload a Keras model..."
AUTO = "automatic"


def _options() -> tuple[list[str], dict[str, str]]:
    described = dict(gradcam.available_models())
    return [*described, UPLOAD], described


def _own_model() -> tuple[str, gradcam.Model] | None:
    cached.start_model_sandbox()
    model_file = st.file_uploader("Keras model (.keras or .h5)", type=["keras", "h5"], key="model_upload")
    labels_file = st.file_uploader("Class names (optional: one per line, or JSON)", type=["txt", "json"],
                                   key="labels_upload")
    preprocessing = st.selectbox("Pixel scaling the model expects", [AUTO, *PREPROCESSING], key="preprocessing",
                                 help="automatic: none if the model has its own Rescaling layer, else 0..1")
    if model_file is None:
        st.info("Upload a .keras or .h5 file to explain your own model.")
        return None
    model_bytes = model_file.getvalue()
    labels_bytes = labels_file.getvalue() if labels_file is not None else None
    scaling = None if preprocessing == AUTO else preprocessing
    key = "own:" + cached.sha256(model_bytes)[:16] + ":" + (cached.sha256(labels_bytes)[:16] if labels_bytes else "")
    key += ":" + (scaling or AUTO)
    with st.spinner("Loading your model..."):
        model = cached.own_model(key, model_bytes, labels_bytes, scaling)
    if cached.backend():
        st.caption("Your model is explained here, in the dashboard's own process: the explanation service "
                   "serves the built-in models only, and your file is never sent to it.")
    return key, model


def _download_with_progress(name: str) -> None:
    """A Keras application's weights, fetched once with a progress bar."""
    if name not in KERAS_APPLICATIONS or keras_weights_path(name).exists():
        return
    bar = st.progress(0.0, text=f"Downloading the {name} weights...")

    def show(done: int, total: int | None) -> None:
        mb = done / 2**20
        if total:
            bar.progress(min(done / total, 1.0), text=f"Downloading the {name} weights: {mb:.0f} of {total / 2**20:.0f} MB")
        else:
            bar.progress(0.0, text=f"Downloading the {name} weights: {mb:.0f} MB")

    try:
        download_weights(name, progress=show)
    finally:
        bar.empty()


def _builtin(name: str) -> gradcam.Model:
    _download_with_progress(name)
    with st.spinner(f"Loading {name}..."):
        return cached.builtin_model(name)


def pick_model() -> tuple[str, gradcam.Model]:
    """Draw the model choice; return (model key, model)."""
    options, described = _options()
    choice = st.selectbox(
        "Model",
        options,
        key="model_choice",
    )
    if choice in described:
        st.caption(described[choice])
    try:
        picked = _own_model() if choice == UPLOAD else (choice, _builtin(choice))
    except gradcam.ModelLoadError as error:
        st.error(md(str(error)))
        picked = None
    except Exception:  # anything the engine did not foresee still gets a sentence, not a traceback
        st.error("This model could not be loaded or explained.")
        picked = None
    if picked is None:  # keep explaining with the last model that worked
        last = st.session_state.get("model_key", gradcam.DEFAULT_MODEL)
        if last.startswith("own:") and last in st.session_state.get("own_models", {}):
            return last, st.session_state["own_models"][last]
        last = last if last in described else gradcam.DEFAULT_MODEL
        if choice != last:
            st.caption(f"Still showing {last}.")
        return last, _builtin(last)
    key, model = picked
    st.session_state["model_key"] = key
    if key.startswith("own:"):
        # The Model object, not its bytes: this session's handle on the shared cache.
        st.session_state["own_models"] = {key: model}
    return key, model
