"""The "Can I trust it?" page's engine calls, cached per (image hash, model, layer,
method, class, ...): a curve costs some 500 forward passes and a sanity check a
clone of the model, so each runs once per view and process, whoever asks."""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

import gradcam
from gradcam import report
from gradcam.trust import check_cost, map_score, preview, random_score as random_score_of
from dashboard.runtime.refusals import refusals_said
from dashboard.runtime.call_counts import engine_calls
from dashboard.runtime import explanation_cache, long_jobs


STEPS = 50  # points of each deletion / insertion curve beyond the first (the papers' resolution)
PREVIEW_FRACTIONS = (0.1, 0.3, 0.6)  # the three deletion steps shown as pictures


def chosen_baseline() -> str:
    """The baseline picked on the Trust page ("blur" until one is), which the
    ranking and the report use too."""
    return st.session_state.get("trust_baseline") or "blur"


def shown_map(image_hash: str, model_key: str, layer: str, method: str, target: int,
              image: Image.Image, model: gradcam.Model) -> tuple[np.ndarray, tuple[int, int]]:
    """The map Explore shows for this class (Score-CAM on Explore's channel budget,
    with its progress bar and early stop), at the image's size, and its own grid:
    every score on the Trust page is computed on exactly this map."""
    explained = explanation_cache.explain_top5(image_hash, model_key, layer, method, image, model)
    class_map = explained.maps.get(target) or explanation_cache.explain_class(image_hash, model_key, layer, method, target,
                                                                   image, model)
    return class_map.heatmap, tuple(class_map.raw.shape[:2])


def scores_fit(model: gradcam.Model) -> None:
    """Before any score: a model whose batches of perturbed photos would exhaust the server's
    memory (gradcam.engine.cost) ends the page with that sentence, under its first heading."""
    with refusals_said():
        check_cost(model)


def scores_refused(model: gradcam.Model) -> str | None:
    """The sentence when this model's scores would exhaust the server's memory (else None),
    for a page that goes on without them."""
    try:
        check_cost(model)
    except gradcam.ExplanationTooCostly as error:
        return str(error)
    return None


@st.cache_data(max_entries=64, max_size="32MB", show_spinner=False)
def scores(image_hash: str, model_key: str, layer: str, method: str, target: int, baseline: str,
           _image: Image.Image, _model: gradcam.Model, _shown: tuple) -> gradcam.Faithfulness:
    """Deletion, insertion, Average Drop and Increase in Confidence for the map
    shown (``_shown`` from ``shown_map``, which the key names) and for random maps
    and a blob (ROAD is its own, slower, call)."""
    engine_calls["faithfulness"] += 1
    heatmap, cells = _shown
    return gradcam.faithfulness(_model, _image, heatmap, target=target, resolution=cells, steps=STEPS,
                                baseline=baseline, road=False, method=method, layer=layer)


@st.cache_data(max_entries=64, max_size="16MB", show_spinner=False)
def road(image_hash: str, model_key: str, layer: str, method: str, target: int,
         _image: Image.Image, _model: gradcam.Model, _shown: tuple) -> gradcam.Faithfulness:
    """ROAD for the map shown, a random map and the blob (the curves here are short:
    only the ROAD fields of this result are shown)."""
    engine_calls["road"] += 1
    heatmap, cells = _shown
    return gradcam.faithfulness(_model, _image, heatmap, target=target, resolution=cells, steps=2, road=True,
                                method=method, layer=layer,
                                seeds=1)


@st.cache_data(max_entries=32, max_size="16MB", show_spinner=False)
def deletion_preview(image_hash: str, model_key: str, layer: str, method: str, target: int, baseline: str,
                     _image: Image.Image, _model: gradcam.Model, _shown: tuple) -> list[Image.Image]:
    return preview(_model, _image, _shown[0], PREVIEW_FRACTIONS, "deletion", baseline)


@st.cache_data(max_entries=512, max_size="4MB", show_spinner=False)
def method_score(image_hash: str, model_key: str, layer: str, method: str, target: int, baseline: str, steps: int,
                 _image: Image.Image, _model: gradcam.Model, _shown: tuple) -> gradcam.MethodScore:
    """One row of "Which method should I believe here?": the map Explore shows for
    ``method``, on the page's baseline and steps (one row per call, so the page can
    move a progress bar between them: a cached function cannot draw)."""
    engine_calls["method_score"] += 1
    return map_score(_model, _image, _shown[0], target, method, steps=steps, baseline=baseline)


@st.cache_data(max_entries=64, max_size="1MB", show_spinner=False)
def random_score(image_hash: str, model_key: str, layer: str, target: int, baseline: str, steps: int,
                 _image: Image.Image, _model: gradcam.Model) -> gradcam.MethodScore:
    engine_calls["random_score"] += 1
    return random_score_of(_model, _image, target, layer, steps=steps, baseline=baseline)


def sanity(image_hash: str, model_key: str, layer: str, method: str, target: int,
           image: Image.Image, model: gradcam.Model) -> gradcam.SanityCheck:
    """The sanity check of the map Explore shows (Score-CAM on its budget), with a
    progress bar over the network's stages; a newer request of this session stops
    an older one, as on Explore. Shared by all sessions, like the other results."""
    def run(progress, stop):
        engine_calls["sanity_check"] += 1
        return gradcam.sanity_check(model, image, target=target, layer=layer, method=method, progress=progress,
                                    stop=stop, **explanation_cache.engine_options(method))

    title = f"Sanity check of {gradcam.METHODS[method].display_name}"
    return long_jobs.long_job(("sanity", image_hash, model_key, layer, method, target), run, title,
                              "stages randomized")


# --- the evidence as pictures, for the report -------------------------------------------------


@st.cache_data(max_entries=64, max_size="16MB", show_spinner=False)
def curves_picture(image_hash: str, model_key: str, layer: str, method: str, target: int, baseline: str,
                   _scores: gradcam.Faithfulness) -> Image.Image:
    """The deletion and insertion curves the report embeds (matplotlib: a second each, so once per view)."""
    return report.curves_picture(_scores)


@st.cache_data(max_entries=64, max_size="16MB", show_spinner=False)
def sanity_picture(image_hash: str, model_key: str, layer: str, method: str, target: int,
                   _image: Image.Image, _check: gradcam.SanityCheck) -> Image.Image:
    """The sanity strip the report embeds."""
    return report.sanity_picture(_image, _check)


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


def sanity_mark(key: tuple, method: str) -> str:
    """What the ranking says of ``method``'s sanity: the check's result for (image
    hash, model, layer, class) when it was run (by anyone: the result is the same,
    and it is shared like every result), else what the literature found, else that
    it was not run."""
    image_hash, model_key, layer, target = key
    check = long_jobs.kept_result(("sanity", image_hash, model_key, layer, method, target))
    if check is not None:
        if not check.judged:
            return "cannot judge (empty map)"
        return "passed here" if check.passed else "FAILED here"
    known = gradcam.METHODS[method].known_sanity_failure
    return "known to fail (see below)" if known else "not run here"
