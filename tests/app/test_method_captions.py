"""What the pages say under a map, per kind of method (issue 32, items 3 and 10): a class sentence
("Why tabby? ... raised the score") only for a method that reads the class, "at layer ..." only
for a method that uses a layer, and the grid the map really holds (Occlusion: patch positions,
not 224 x 224 cells). Each page is opened the way a link opens it, with the method in the link."""

import pytest
from streamlit.testing.v1 import AppTest

import gradcam
from tests.app.pages import ROUTER, page_app

pytestmark = [pytest.mark.slow]  # each opens a page on the real Lite0; Occlusion takes a minute or more

ON_A_CNN = {key: m for key, m in gradcam.METHODS.items() if m.kind != "attention"}  # rollout: tests/app/test_vit_upload.py
CLASS_AGNOSTIC = [key for key, m in ON_A_CNN.items() if not m.class_specific]
LAYERLESS = [key for key, m in ON_A_CNN.items() if m.layer_free and not m.slow]


def opened(page: str, link: dict) -> AppTest:
    at = AppTest.from_file(ROUTER, default_timeout=900) if page == "explore" else page_app(page, default_timeout=900)
    at.query_params.update(link)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def said(at: AppTest) -> list[str]:
    """Every sentence the page shows as Markdown, escapes removed ("top\\_activation" -> "top_activation")."""
    return [e.value.replace("\\", "") for e in (*at.markdown, *at.caption, *at.info, *at.warning)]


def captions(at: AppTest) -> list[str]:
    return [c.replace("\\", "") for image in at.image for c in image.captions]


def under_the_map(at: AppTest) -> str:
    """The sentence under Explore's overlay: the one that says what the strongest colour means."""
    (sentence,) = [text for text in said(at) if "dark red" in text]  # jet's strongest colour
    return sentence


def test_the_registry_has_each_kind_tested_here():
    assert {"eigencam", "fem", "kpca-cam", "randomcam"} <= set(CLASS_AGNOSTIC)
    assert {"guided-backprop", "fullgrad"} <= set(LAYERLESS) and "occlusion" not in LAYERLESS  # slow: its own test


def test_a_gradient_method_says_why_the_class():
    at = opened("explore", {"method": "gradcam"})
    sentence = under_the_map(at)
    assert sentence.startswith("Why **") and "? The dark red regions raised the score most for **" in sentence
    assert sentence.endswith(", by Grad-CAM."), sentence
    assert any(c.startswith("Heatmap alone (7 x 7 cells") for c in captions(at)), captions(at)


@pytest.mark.parametrize("method", CLASS_AGNOSTIC)
def test_a_class_agnostic_method_never_says_why_the_class(method):
    at = opened("explore", {"method": method})
    sentence = under_the_map(at)
    chosen = gradcam.METHODS[method]
    if chosen.random_weights:  # RandomCAM: not even what the layer sees
        assert sentence.startswith(f"{chosen.display_name} weights the layer's feature maps by random numbers"), sentence
        assert "say nothing about what the layer sees" in sentence
    else:
        assert sentence.startswith(f"{chosen.display_name} shows what the layer responds to most, whatever the class")
    assert "does not say why the model chose **" in sentence
    assert not [text for text in said(at) if text.startswith("Why ") or "raised the" in text]


@pytest.mark.parametrize("method", LAYERLESS)
def test_a_method_without_a_layer_says_what_its_map_is_made_of(method):
    at = opened("explore", {"method": method})
    sentence = under_the_map(at)
    chosen = gradcam.METHODS[method]
    assert sentence.startswith("Why **")  # both read the class
    if chosen.ignores_layer:  # FullGrad: every layer's biases and the pixels, summed
        assert "? The dark red regions raised the score most for **" in sentence and sentence.endswith(", by FullGrad.")
    else:  # Guided Backpropagation
        assert "pixels are where the gradient of **" in sentence and "(Guided Backpropagation: no layer)" in sentence
    assert any(c.startswith("Heatmap alone (224 x 224 input pixels") for c in captions(at)), captions(at)
    assert not any("at layer" in text or "at this layer" in text for text in said(at))


def test_occlusion_names_its_patch_positions_not_pixels_as_cells():
    at = opened("explore", {"method": "occlusion"})
    sentence = under_the_map(at)
    assert "are where covering the photo lowered the probability of **" in sentence
    assert "(Occlusion: no layer, the photo itself is covered patch by patch)" in sentence
    grid = "13 x 13 patch positions (a 32 px patch every 16 px)"
    assert any(c.startswith(f"Heatmap alone ({grid}") for c in captions(at)), captions(at)
    assert any(f"It is computed on {grid}" in text for text in said(at))  # the expander says the same grid
    assert not any("224 x 224" in text for text in [*said(at), *captions(at)])
    assert any("a progress bar counts the patch positions done" in text for text in said(at))  # the method's note


# The Trust page in presenter mode on its last section (the sanity check, run only on a click): its header
# and notes are drawn without scoring anything.
QUIET_TRUST = {"present": "1", "section": "5"}


@pytest.mark.parametrize("method", ["gradcam", "guided-backprop", "fullgrad"])
def test_the_trust_and_report_headers_name_a_layer_only_where_the_method_uses_one(method):
    chosen = gradcam.METHODS[method]
    for page in ("trust", "report"):
        at = opened(page, {"method": method, **QUIET_TRUST} if page == "trust" else {"method": method})
        header = said(at)[0]
        if chosen.layer_free:
            assert f"on the {chosen.works_on}, no layer" in header and "layer top_activation" not in header, header
        else:
            assert "at layer top_activation" in header, header
    facts = at.dataframe[1].value  # the Report page's facts about its one section
    layer = facts["value"].tolist()[facts[""].tolist().index("Layer")]
    assert layer == (f"none ({chosen.display_name} works on the {chosen.works_on})" if chosen.layer_free
                     else "top_activation")


def test_the_trust_page_says_a_class_agnostic_map_ignores_the_class():
    at = opened("trust", {"method": "eigencam", **QUIET_TRUST})
    (note,) = [text for text in said(at) if "whatever the class" in text]
    assert note.startswith("Eigen-CAM shows what the layer responds to most, whatever the class")
    assert "The tests below still score it against **" in note
    plain = opened("trust", {"method": "gradcam", **QUIET_TRUST})
    assert not [text for text in said(plain) if "whatever the class" in text]
