"""Which model explains: the built-in ones, or a Keras file the user uploads.

The controls are drawn first and the model loaded afterwards (model_controls,
then load), so a page shows everything that does not need the model while a
model loads or converts. The key of the model in use lives in
st.session_state["model_key"], so other pages use the same model. A model that
fails to load shows the engine's sentence, is not tried again in this session,
and the last model that worked stays in use. An uploaded model is held by the
session only while it is in use (keep_only_the_model_in_use).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

import gradcam
from gradcam.engine import PREPROCESSING
from gradcam.zoo import KERAS_APPLICATIONS, download_weights, keras_weights_path

from dashboard.safe_text import md
from gradcam.intake import sha256
from dashboard.runtime.explanation_service import backend
from dashboard.runtime.boot import start_model_sandbox
from dashboard.runtime import model_cache

UPLOAD = "Upload a Keras model..."
AUTO = "automatic"


def builtin_models() -> dict[str, str]:
    """Every built-in model's name -> one-line description."""
    return dict(gradcam.available_models())


@dataclass(frozen=True)
class Picked:
    """What the model controls ask for, before anything is loaded (loading can take seconds)."""
    choice: str  # the Model box's value: a built-in name, or UPLOAD
    own: tuple | None  # an uploaded model: (key, model bytes, labels bytes or None, pixel scaling or None)
    status: DeltaGenerator  # under the controls: where a failure's sentence goes

    @property
    def name(self) -> str:
        return "your model" if self.choice == UPLOAD else self.choice


def _own_model_files() -> tuple | None:
    start_model_sandbox()
    model_file = st.file_uploader("Keras model (.keras or .h5, or a KerasHub preset folder as .zip)",
                                  type=["keras", "h5", "zip"], key="model_upload")
    labels_file = st.file_uploader("Class names (optional: one per line, or JSON)", type=["txt", "json"],
                                   key="labels_upload")
    preprocessing = st.selectbox("Pixel scaling the model expects", [AUTO, *PREPROCESSING], key="preprocessing",
                                 help="automatic: a KerasHub classifier's own scaling; else none if the model "
                                      "has its own Rescaling layer, else 0..1")
    if model_file is None:
        # Streamlit empties an uploader when its page is left; the model it loaded stays in
        # use (load() keeps it), so say which one instead of asking for a file again.
        in_use = st.session_state.get("model_key", "")
        own = st.session_state.get("own_models", {})
        if in_use.startswith("own:") and in_use in own:
            st.success(f"In use: your model **{md(own[in_use].name)}**, uploaded earlier in this session. "
                       "Upload another file to replace it.")
        else:
            st.info("Upload a .keras or .h5 file, or a KerasHub preset folder as a .zip, to explain your own model.")
        return None
    model_bytes = model_file.getvalue()
    labels_bytes = labels_file.getvalue() if labels_file is not None else None
    scaling = None if preprocessing == AUTO else preprocessing
    key = "own:" + sha256(model_bytes)[:16] + ":" + (sha256(labels_bytes)[:16] if labels_bytes else "")
    key += ":" + (scaling or AUTO)
    if backend():
        st.caption("Your model is explained here, in the dashboard's own process: the explanation service "
                   "serves the built-in models only, and your file is never sent to it.")
    return key, model_bytes, labels_bytes, scaling


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


def load_builtin(name: str, spinner: bool = True) -> gradcam.Model:
    """A built-in model, its weights downloaded with a progress bar on first use.
    A model that failed to load is not tried again in this session: offline, every
    attempt waits for the network to fail (seconds per model, on every rerun), and
    the answer would be the same sentence, which it raises again. ``spinner=False``:
    the page shows its own (Explore, on a first visit)."""
    failed = st.session_state.setdefault("failed_models", {})
    if name in failed:
        raise gradcam.ModelLoadError(failed[name])
    try:
        _download_with_progress(name)
        with st.spinner(f"Loading {name}...") if spinner else contextlib.nullcontext():
            return model_cache.builtin_model(name)
    except gradcam.ModelLoadError as error:
        failed[name] = str(error)
        raise


def is_loaded(picked: Picked) -> bool:
    """Whether the model is ready in this process (else loading it takes seconds: show the page meanwhile)."""
    if picked.choice == UPLOAD:
        return picked.own is None or picked.own[0] in st.session_state.get("own_models", {})
    return model_cache.is_loaded(picked.choice)


def model_controls(on_change=None, key: str = "model_choice") -> Picked:
    """Draw the model choice (and an own model's files); nothing is loaded yet. ``key``: the
    Model box's widget key (Explore's by default; a widget belongs to its page in Streamlit,
    so another page that draws the box gives its own and shares the choice in ``on_change``,
    which is called with the key)."""
    described = builtin_models()
    choice = st.selectbox("Model", [*described, UPLOAD], key=key, on_change=on_change,
                          args=(key,) if on_change else None)
    if choice in described:
        st.caption(described[choice])
    own = _own_model_files() if choice == UPLOAD else None
    return Picked(choice, own, st.container())


def load(picked: Picked, spinner: bool = True) -> tuple[str, gradcam.Model]:
    """Load what the controls ask for; return (model key, model). A model that fails says so
    in one sentence under the controls, and the last model that worked stays in use.
    ``spinner=False``: the page shows its own while a built-in model loads."""
    try:
        if picked.choice != UPLOAD:
            picked_model = (picked.choice, load_builtin(picked.choice, spinner))
        elif picked.own is not None:
            key, model_bytes, labels_bytes, scaling = picked.own
            with st.spinner("Loading your model..."):
                file_name = getattr(st.session_state.get("model_upload"), "name", None)  # pages call it by this
                picked_model = (key, model_cache.own_model(key, model_bytes, labels_bytes, scaling, file_name))
        else:
            picked_model = None
    except gradcam.ModelLoadError as error:
        picked.status.error(md(str(error)))
        picked_model = None
    except Exception:  # anything the engine did not foresee still gets a sentence, not a traceback
        picked.status.error("This model could not be loaded or explained.")
        picked_model = None
    if picked_model is None:  # keep explaining with the last model that worked
        last = st.session_state.get("model_key", gradcam.DEFAULT_MODEL)
        if last.startswith("own:") and last in st.session_state.get("own_models", {}):
            return last, st.session_state["own_models"][last]
        last = last if last in builtin_models() else gradcam.DEFAULT_MODEL
        if picked.choice != last:
            picked.status.caption(f"Still showing {last}.")
        return last, load_builtin(last)
    key, model = picked_model
    st.session_state["model_key"] = key
    if key.startswith("own:"):
        # The Model object, not its bytes: this session's handle on the shared cache.
        st.session_state["own_models"] = {key: model}
    keep_only_the_model_in_use(key)
    return key, model


def keep_only_the_model_in_use(model_key: str) -> None:
    """A session holds its own model only while it is the one in use: once the person picks
    another, the cache alone keeps it (and frees it when it evicts it), never the session."""
    if model_key not in st.session_state.get("own_models", {}):
        st.session_state.pop("own_models", None)
