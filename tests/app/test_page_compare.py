"""The Compare page through AppTest: what each comparison shows, how few engine
passes it takes, and the link that reproduces it."""

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.app.pages import page_app

import gradcam
from dashboard.parts.layer_labels import breakable
from dashboard.safe_text import md
from gradcam.intake import sha256
from dashboard.runtime.call_counts import engine_calls
from dashboard.runtime import model_cache
from dashboard.runtime import explanation_cache

PAGE = "compare"
SAMPLE_COFFEE = Path(__file__).resolve().parents[2] / "samples" / "coffee.jpg"
ON_A_CNN = [k for k, m in gradcam.METHODS.items() if m.kind != "attention"]  # rollout needs attention layers


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def model(name: str = "EfficientNet-Lite0"):
    # The page's own model object (a process-wide Streamlit resource): nothing traced twice.
    return model_cache.builtin_model(name)


def photo(at: AppTest):
    return explanation_cache.display_image(at.session_state["image_hash"], at.session_state["image_data"])


def captions(at: AppTest) -> list[str]:
    return [caption for image in at.image for caption in image.captions]


def open_tab(at: AppTest, title: str) -> AppTest:
    at.session_state["compare_tab"] = title  # what clicking the tab does
    return run(at)


@pytest.fixture(scope="module")
def page():
    """One session on the default sample and model, visited tab by tab."""
    return run(page_app(PAGE, default_timeout=180))


def test_the_layer_strip_is_one_map_per_stage_from_one_pass(page):
    stages = [t.name for t in gradcam.stage_layers(model())]
    shown = captions(page)
    assert len(shown) == len(stages)
    # Named, early to late; wrapping only at underscores (a zero-width space after each), never mid-word.
    assert [c.split("**")[1] for c in shown] == [breakable(name) for name in stages]
    assert all(c.split("**")[1].replace("\u200b", "") == md(name) for c, name in zip(shown, stages))
    assert [c.rsplit("· ", 1)[1] for c in shown] == [f"{t.shape[0]}\u00a0x\u00a0{t.shape[1]}"  # kept on one line
                                                   for t in gradcam.stage_layers(model())]

    st.cache_data.clear()
    engine_calls.clear()
    page.multiselect(key="compare_layers").set_value(["top_activation", "block10_add", "block3_expand_activation"])
    run(page)
    assert [c.split("**")[1] for c in captions(page)] == [breakable("block3_expand_activation"),
                                                          breakable("block10_add"), breakable("top_activation")]
    assert engine_calls["explain_layers"] == 1  # three layers, one engine pass
    assert page.query_params["layers"] == "block3_expand_activation,block10_add,top_activation"
    open_tab(page, "Methods")
    open_tab(page, "Layers")  # a closed tab keeps its choices
    assert len(captions(page)) == 3 and engine_calls["explain_layers"] == 1
    page.multiselect(key="compare_layers").set_value(stages)
    run(page)
    assert "layers" not in page.query_params  # the default needs no mention in the link


def test_the_url_holds_the_current_choices(page):
    assert dict(page.query_params) == {}  # the default view: nothing to say
    page.slider(key="compare_opacity").set_value(0.65)
    run(page)
    assert dict(page.query_params) == {"compare_opacity": "0.65"}  # Compare's own, not the shared opacity
    page.slider(key="compare_opacity").set_value(0.4)
    run(page)


def test_the_classes_tab_shows_the_top5_a_contrast_and_a_counterfactual(page):
    open_tab(page, "Classes")
    top5 = gradcam.explain_many(model(), photo(page), top=5)
    shown = captions(page)
    assert len(shown) == 8
    assert [c.split("**")[1] for c in shown[:5]] == [md(e.label) for e in top5]
    first, second = top5[0].label, top5[1].label
    assert shown[5].startswith(f"**{md(first)} rather than {md(second)}**")
    assert shown[6].startswith(f"**against {md(first)}**")
    assert page.selectbox(key="compare_other").value == top5[1].target  # top-1 rather than top-2 by default
    assert page.query_params["compare"] == "classes" and "other" not in page.query_params  # the default
    # The engine's "no positive evidence" flag becomes a notice, exactly when it is set.
    against = gradcam.explain_counterfactual(model(), photo(page), top5[0].target)
    assert against.no_positive_evidence == any("speaks against" in notice.value for notice in page.info)
    assert against.no_positive_evidence == shown[6].endswith("no positive evidence")

    # Finer-CAM beside the contrast: the class against its three nearest, the engine's own map.
    assert shown[7] == f"**{md(first)}** rather than its look-alikes"
    assert cached_calls()["explain_finer"] == 1

    page.selectbox(key="compare_other").set_value(top5[2].target)
    run(page)
    assert captions(page)[5].startswith(f"**{md(first)} rather than {md(top5[2].label)}**")
    assert page.query_params["other"] == str(top5[2].target)


def cached_calls():
    from dashboard.runtime.call_counts import engine_calls

    return engine_calls


def test_the_concepts_tab_draws_each_concept_in_its_colour_with_its_votes(page):
    open_tab(page, "Concepts")
    from gradcam.concepts import find_concepts

    found = find_concepts(model(), photo(page), n=page.slider(key="compare_concepts").value)
    shown = captions(page)
    assert shown[0] == f"{len(found.concepts)} concepts at {found.layer}"
    assert shown[1:] == [f"**The {c.colour_name} concept** alone" for c in found.concepts]
    lines = [m.value for m in page.markdown if m.value.startswith("**The ")]
    for concept, line in zip(found.concepts, lines):
        assert line.startswith(f"**The {concept.colour_name} concept** · ")
        assert concept.supports[0][1].split(",")[0] in line  # the class it votes for most
    assert page.query_params["compare"] == "concepts"
    before = cached_calls()["concepts"]
    page.slider(key="compare_concepts").set_value(3)
    run(page)
    assert len(captions(page)) == 4 and cached_calls()["concepts"] == before + 1


def test_the_methods_tab_shows_every_method_with_its_time(page):
    open_tab(page, "Methods")
    shown = captions(page)
    assert [c.split("**")[1] for c in shown] == [gradcam.METHODS[k].display_name for k in ON_A_CNN]
    by_method = dict(zip(ON_A_CNN, shown))
    assert all(" ms · " in caption for caption in shown)  # each with the time it took
    assert [k for k, c in by_method.items() if "class-agnostic" in c] == [
        k for k in ON_A_CNN if not gradcam.METHODS[k].class_specific]  # Eigen-CAM, FEM, KPCA-CAM, RandomCAM
    assert [k for k, c in by_method.items() if "ignores the layer" in c] == ["fullgrad"]
    assert by_method["guided-backprop"].endswith("224 x 224 input pixels")
    assert by_method["guided-gradcam"].endswith("224 x 224 input pixels")  # its grid, like Guided Backpropagation's
    assert by_method["gradcam"].endswith("7 x 7 cells")
    # The methods that run another one many times say how many passes they ran here.
    assert by_method["sess"].endswith(" · 127 passes") and by_method["refinecam"].endswith(" · 1 pass")
    assert page.query_params["compare"] == "methods"


def test_the_models_tab_shows_each_models_own_top1_and_keeps_going_past_a_failure(page, monkeypatch, tmp_path):
    open_tab(page, "Models")
    assert page.multiselect(key="compare_models").value == ["EfficientNet-Lite0", "EfficientNet-Lite1"]
    shown = captions(page)
    assert len(shown) == 2
    for caption, name in zip(shown, ["EfficientNet-Lite0", "EfficientNet-Lite1"]):
        top1 = gradcam.predict(model(name), photo(page), top=1)[0]
        assert caption.startswith(f"**{md(name)}**: {md(top1.label)} (")
        # The layer starts its own line, so a narrow column breaks before the name, not inside it (issue 32).
        assert f")  \n{breakable(gradcam.default_layer(model(name)).name)}, " in caption, caption
    # Where the class picker stands on the other tabs, a sentence rather than a blank gap (issue 32, item 14).
    assert "No class to pick on this tab: each model explains its own top-1 class." in [m.value for m in page.markdown]
    assert "compare_target" not in [box.key for box in page.selectbox]

    # A Keras application whose weights cannot be downloaded: its sentence, and the others stay.
    from keras.src.backend import config

    from gradcam.zoo import catalog as models

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))  # no cached weights
    monkeypatch.setattr(models, "_weights_url", lambda name: "http://127.0.0.1:9/weights.h5")  # offline
    page.multiselect(key="compare_models").set_value(["EfficientNet-Lite0", "VGG16", "EfficientNet-Lite1"])
    run(page)
    assert [e.value for e in page.error] == [md(models._offline_message("VGG16"))]
    assert len(captions(page)) == 2
    assert page.query_params["models"] == "EfficientNet-Lite0,VGG16,EfficientNet-Lite1"


def test_a_link_opens_the_page_on_its_view():
    at = page_app(PAGE, default_timeout=180)
    link = {"sample": "coffee.jpg", "model": "EfficientNet-Lite1", "layer": "block10_add", "target": "967",
            "method": "gradcam++", "opacity": "0.70", "colormap": "viridis", "compare": "classes", "other": "504"}
    top1 = gradcam.predict(model("EfficientNet-Lite1"), explanation_cache.display_image(
        sha256(SAMPLE_COFFEE.read_bytes()), SAMPLE_COFFEE.read_bytes()), top=1)[0].index
    at.query_params.update(link)
    run(at)
    assert at.session_state["compare_tab"] == "Classes"
    assert at.session_state["image_name"] == "coffee.jpg"
    assert at.selectbox(key="compare_target").value == 967
    assert at.selectbox(key="compare_other").value == 504
    assert at.slider(key="compare_opacity").value == pytest.approx(0.70)
    heading = at.caption[0].value
    assert "EfficientNet\\-Lite1" in heading and "block10\\_add" in heading and "Grad-CAM++" in heading
    assert captions(at)[5].startswith("**espresso rather than coffee mug**")
    # ... and the page writes back the same link (the top-1 class goes without saying).
    assert dict(at.query_params) == {k: v for k, v in link.items() if (k, v) != ("target", str(top1))}


def test_a_link_to_a_model_that_cannot_load_says_so_and_compares_with_the_default(tmp_path, monkeypatch):
    from keras.src.backend import config
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    from gradcam.zoo import catalog as models

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.setattr(file_utils, "get_file", offline)
    monkeypatch.setattr(models, "_weights_url", lambda name: "http://127.0.0.1:9/weights.h5")  # nothing listens
    at = page_app(PAGE, default_timeout=180)
    at.query_params.update({"model": "VGG16", "compare": "layers"})
    run(at)
    assert len(at.error) == 1 and "VGG16" in at.error[0].value
    assert "EfficientNet\\-Lite0" in at.caption[0].value
    assert at.session_state["model_key"] == "EfficientNet-Lite0"
