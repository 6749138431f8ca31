"""The "Can I trust it?" page's engine calls, cached per (image hash, model, layer,
method, class, ...): a curve costs some 500 forward passes and a sanity check a
clone of the model, so each runs once per view and process, whoever asks."""

from __future__ import annotations

import streamlit as st
from PIL import Image

import gradcam
from gradcam.trust.faithfulness import method_score as method_score_of, preview, random_score as random_score_of

from . import cached

STEPS = 50  # points of each deletion / insertion curve beyond the first (the papers' resolution)
PREVIEW_FRACTIONS = (0.1, 0.3, 0.6)  # the three deletion steps shown as pictures


@st.cache_data(max_entries=64, max_size="32MB", show_spinner=False)
def scores(image_hash: str, model_key: str, layer: str, method: str, target: int, baseline: str,
           _image: Image.Image, _model: gradcam.Model) -> gradcam.Faithfulness:
    """Deletion, insertion, Average Drop and Increase in Confidence for the map
    and for random maps and a blob (ROAD is its own, slower, call)."""
    cached.engine_calls["faithfulness"] += 1
    explanation = gradcam.explain(_model, _image, target=target, layer=layer, method=method)
    return gradcam.faithfulness(_model, _image, explanation, steps=STEPS, baseline=baseline, road=False)


@st.cache_data(max_entries=64, max_size="16MB", show_spinner=False)
def road(image_hash: str, model_key: str, layer: str, method: str, target: int,
         _image: Image.Image, _model: gradcam.Model) -> gradcam.Faithfulness:
    """ROAD for the map, a random map and the blob (the curves here are short:
    only the ROAD fields of this result are shown)."""
    cached.engine_calls["road"] += 1
    explanation = gradcam.explain(_model, _image, target=target, layer=layer, method=method)
    return gradcam.faithfulness(_model, _image, explanation, steps=2, road=True, seeds=1)


@st.cache_data(max_entries=32, max_size="16MB", show_spinner=False)
def deletion_preview(image_hash: str, model_key: str, layer: str, method: str, target: int, baseline: str,
                     _image: Image.Image, _model: gradcam.Model) -> list[Image.Image]:
    explanation = gradcam.explain(_model, _image, target=target, layer=layer, method=method)
    return preview(_model, _image, explanation.heatmap, PREVIEW_FRACTIONS, "deletion", baseline)


@st.cache_data(max_entries=512, max_size="4MB", show_spinner=False)
def method_score(image_hash: str, model_key: str, layer: str, method: str, target: int,
                 _image: Image.Image, _model: gradcam.Model) -> gradcam.MethodScore:
    """One row of "Which method should I believe here?" (one row per call, so the
    page can move a progress bar between them: a cached function cannot draw)."""
    cached.engine_calls["method_score"] += 1
    return method_score_of(_model, _image, method, target, layer)


@st.cache_data(max_entries=64, max_size="1MB", show_spinner=False)
def random_score(image_hash: str, model_key: str, layer: str, target: int,
                 _image: Image.Image, _model: gradcam.Model) -> gradcam.MethodScore:
    cached.engine_calls["random_score"] += 1
    return random_score_of(_model, _image, target, layer)


@st.cache_data(max_entries=32, max_size="16MB", show_spinner=False)
def sanity(image_hash: str, model_key: str, layer: str, method: str, target: int,
           _image: Image.Image, _model: gradcam.Model) -> gradcam.SanityCheck:
    cached.engine_calls["sanity_check"] += 1
    return gradcam.sanity_check(_model, _image, target=target, layer=layer, method=method)


# --- what this session has run, for the report ---------------------------------------------

_SANITY_RUNS = "trust_sanity_runs"


def remember_sanity(key: tuple) -> None:
    """Note that this session ran the sanity check for (image hash, model, layer, method, class)."""
    st.session_state.setdefault(_SANITY_RUNS, set()).add(key)


def sanity_if_run(key: tuple, image: Image.Image, model: gradcam.Model) -> gradcam.SanityCheck | None:
    """The check this session ran for ``key`` (from the cache: no new run), or None."""
    if key not in st.session_state.get(_SANITY_RUNS, set()):
        return None
    return sanity(*key, image, model)
