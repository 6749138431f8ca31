"""What every page shares: the photo, model, layer, class, method and look chosen.

Streamlit forgets a widget's value when a page that does not draw that widget
runs, so the Explore page copies its choices into one plain (non-widget) entry,
``st.session_state["chosen"]``, which survives page changes; Explore restores
its widgets from it. Other pages read ``choices()``.

The same choices travel in the URL's query string (``?sample=cat.jpg&model=...``)
so a teacher can hand out a link that opens on exactly this view.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

import gradcam

from . import cached
from .image_picker import SAMPLES, CurrentImage, current_image, use_sample
from .safe_text import md

WIDGET_KEYS = ("model_choice", "layer", "method", "target", "opacity", "colormap")
URL_KEYS = ("sample", "model", "layer", "target", "method", "opacity", "colormap",
            # The Compare page: its open tab, the contrast's second class, its own layer and model lists.
            "compare", "other", "layers", "models")


@dataclass(frozen=True)
class Choices:
    image: CurrentImage
    model_key: str
    model: gradcam.Model
    layer: str
    target: int | None  # None: the model's own top-1
    method: str
    opacity: float
    colormap: str


def remember() -> None:
    """Copy the widgets' current values where other pages (and reruns) find them."""
    st.session_state["chosen"] = {k: st.session_state[k] for k in WIDGET_KEYS if k in st.session_state}


def restore() -> None:
    """Put remembered values back into widgets that Streamlit dropped."""
    for key, value in st.session_state.get("chosen", {}).items():
        if key not in st.session_state:
            st.session_state[key] = value


def _model_from_key(model_key: str) -> gradcam.Model:
    own = st.session_state.get("own_models", {})
    return own[model_key] if model_key in own else cached.builtin_model(model_key)


def choices() -> Choices:
    """The shared choices, with defaults for anything not chosen yet."""
    chosen = st.session_state.get("chosen", {})
    # The model Explore last loaded; before Explore has run, the one a link named.
    model_key = st.session_state.get("model_key") or chosen.get("model_choice") or gradcam.DEFAULT_MODEL
    with st.spinner(f"Loading {model_key if not model_key.startswith('own:') else 'your model'}..."):
        try:
            model = _model_from_key(model_key)
        except gradcam.ModelLoadError as error:  # e.g. a linked Keras application, offline
            st.error(md(str(error)))
            model_key, model = gradcam.DEFAULT_MODEL, cached.builtin_model(gradcam.DEFAULT_MODEL)
        except KeyError:  # an uploaded model from a session that is gone
            model_key, model = gradcam.DEFAULT_MODEL, cached.builtin_model(gradcam.DEFAULT_MODEL)
    st.session_state["model_key"] = model_key  # a failed model is not tried again on every rerun
    names = {t.name for t in gradcam.target_layers(model)}
    layer = chosen.get("layer") if chosen.get("layer") in names else gradcam.default_layer(model).name
    target = chosen.get("target")
    if not (isinstance(target, int) and 0 <= target < len(model.labels)):
        target = None
    method = chosen.get("method") if chosen.get("method") in gradcam.METHODS else "gradcam"
    colormap = chosen.get("colormap") if chosen.get("colormap") in gradcam.COLORMAPS else "jet"
    opacity = float(chosen.get("opacity", 0.4))
    return Choices(current_image(), model_key, model, layer, target, method, opacity, colormap)


# --- the URL ----------------------------------------------------------------------


def read_url() -> None:
    """Once per session: apply a shared link's choices before any widget is drawn.
    Anything unknown in the URL is ignored: a link can be old or hand-edited."""
    if st.session_state.get("url_read"):
        return
    st.session_state["url_read"] = True
    params = st.query_params
    if params.get("sample") in SAMPLES:
        use_sample(params["sample"])
    models = dict(gradcam.available_models())
    if params.get("model") in models:
        st.session_state["model_choice"] = params["model"]
    wanted = {}
    if params.get("layer"):
        wanted["layer"] = params["layer"]
    if params.get("target", "").isdigit():
        wanted["target"] = int(params["target"])
    if params.get("method") in gradcam.METHODS:
        st.session_state["method"] = params["method"]
    if params.get("colormap") in gradcam.COLORMAPS:
        st.session_state["colormap"] = params["colormap"]
    try:
        opacity = float(params.get("opacity", "nan"))
        if 0.0 <= opacity <= 1.0:
            st.session_state["opacity"] = round(opacity / 0.05) * 0.05
    except ValueError:
        pass
    # Layer and class depend on the model and photo; Explore applies them once those are known.
    st.session_state["url_wanted"] = wanted
    # Every page reads the link's view through choices(), whichever page the link opens.
    linked = {key: st.session_state[key] for key in WIDGET_KEYS if key in st.session_state}
    st.session_state["chosen"] = {**st.session_state.get("chosen", {}), **linked, **wanted}


def take_wanted(key: str):
    """A layer or class the shared link asked for, once."""
    return st.session_state.get("url_wanted", {}).pop(key, None)


def write_url(values: dict) -> None:
    """Show the current view in the address bar (only what a link can reproduce)."""
    clean = {k: str(v) for k, v in values.items() if k in URL_KEYS and v is not None}
    if dict(st.query_params) != clean:
        st.query_params.from_dict(clean)
