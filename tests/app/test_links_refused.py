"""A link's values are checked against what the current model offers: every page opened
with a method that has no layer (or that the model cannot run) draws itself, says what it
refused in a sentence, and Compare's tabs each stand alone (issue: Compare crashed for
Occlusion, Guided Backpropagation and attention rollout)."""

import pytest
from streamlit.testing.v1 import AppTest

import gradcam
from tests.app.pages import ROUTER, page_app

LAYERLESS = [key for key, method in gradcam.METHODS.items() if method.layer_free]
FAST_LAYERLESS = [key for key in LAYERLESS if not gradcam.METHODS[key].slow]
ATTENTION = [key for key in LAYERLESS if gradcam.METHODS[key].kind == "attention"]
PAGES = ["how_it_works", "compare", "report", "batch", "trust", "quiz", "audit"]
COMPARE_TABS = ["Layers", "Classes", "Methods", "Models"]


def opened(page: str, link: dict) -> AppTest:
    at = AppTest.from_file(ROUTER, default_timeout=900) if page == "explore" else page_app(page, default_timeout=900)
    at.query_params.update(link)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    return " ".join(e.value.replace("\\", "") for e in [*at.warning, *at.error, *at.info])


def test_the_layerless_methods_are_the_registrys():
    assert set(LAYERLESS) >= {"occlusion", "guided-backprop", "attention-rollout"}
    assert "occlusion" not in FAST_LAYERLESS  # tested on fewer pages below: it takes minutes on two cores


@pytest.mark.slow  # every page with each fast layerless method: about a minute with the model loaded
@pytest.mark.parametrize("method", FAST_LAYERLESS)
@pytest.mark.parametrize("page", ["explore", *PAGES])
def test_every_page_opens_with_a_layerless_method_in_its_link(page, method):
    at = opened(page, {"method": method})
    if method in ATTENTION and page not in ("quiz", "audit"):  # the default CNN has no attention layers
        assert "EfficientNet-Lite0" in texts(at) and "attention" in texts(at), texts(at)
    if page == "compare":
        for tab in COMPARE_TABS:
            at.session_state["compare_tab"] = tab
            at.run()
            assert not at.exception, (tab, [e.value for e in at.exception])


@pytest.mark.slow
def test_compare_layers_tab_says_why_a_layerless_method_has_no_strip_and_shows_the_defaults():
    at = opened("compare", {"method": "guided-backprop"})  # Layers is the default tab
    said = texts(at)
    for shown in (at, opened("how_it_works", {"method": "guided-backprop"})):  # the line under the title
        heading = shown.caption[0].value  # names what the method works on, never a layer it does not use
        assert "on the input pixels, no layer · Guided Backpropagation" in heading and "at layer" not in heading, heading
    assert "Guided Backpropagation works on the input pixels, not on one layer" in said, said
    assert "this strip shows Grad-CAM's maps" in said
    strip = [caption for image in at.image for caption in image.captions]
    assert len(strip) == 5 and strip[-1].startswith("**top"), strip  # the default method's strip, one map per stage
    at.session_state["compare_tab"] = "Classes"
    at.run()
    assert "This map negates gradients, and Guided Backpropagation uses none" not in texts(at)  # it uses gradients


@pytest.mark.slow  # Occlusion's top-5 takes a minute or more here; its map is shared by the pages after the first
@pytest.mark.parametrize("page", ["compare", "explore", "how_it_works", "report", "batch"])
def test_occlusion_in_the_link_opens_the_page(page):
    at = opened(page, {"method": "occlusion"})
    if page == "compare":
        assert "Occlusion works on the input pixels, not on one layer" in texts(at)
        at.session_state["compare_tab"] = "Classes"
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert "This map negates gradients, and Occlusion uses none" in texts(at)


@pytest.mark.parametrize("link, sentence", [
    ({"method": "no-such-method"}, 'names the method "no-such-method", which this dashboard does not have'),
    ({"model": "NoSuchNet"}, 'names the model "NoSuchNet", which this dashboard does not have'),
    ({"layer": "no_such_layer"}, 'names the layer "no_such_layer", which EfficientNet-Lite0 does not have'),
    ({"target": "5000"}, "asks for class 5000, and EfficientNet-Lite0 has 1000 classes"),
    ({"sample": "../../etc/passwd"}, 'names the photo "../../etc/passwd", which is not one of the samples'),
    ({"colormap": "rainbow"}, 'names the colormap "rainbow", which this dashboard does not have'),
    ({"opacity": "7"}, 'opacity "7" is not a number from 0 to 1'),
])
@pytest.mark.parametrize("page", ["explore", "report"])
def test_a_link_value_the_model_does_not_offer_is_refused_with_a_sentence(page, link, sentence):
    at = opened(page, link)
    assert sentence in texts(at), texts(at)
    assert not at.error, [e.value for e in at.error]  # refused, not failed: the page shows the defaults
