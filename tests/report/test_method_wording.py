"""Sentences the method can back (issue 32, item 3): a map that is the same for every class
gets no "why this class" sentence, and a method that uses no layer is never said to work "at
layer ...". One case per kind of method, then real reports of real Lite0 maps."""

import io

import pytest

import gradcam
from gradcam import report
from gradcam.report.content import layer_fact, layer_phrase, no_evidence_notice, what_the_colours_mean

CLASS_AGNOSTIC = [key for key, m in gradcam.METHODS.items() if not m.class_specific]
LAYER_FREE = [key for key, m in gradcam.METHODS.items() if m.layer_free]


def test_the_registry_knows_which_methods_ignore_the_class_and_which_use_no_layer():
    assert set(CLASS_AGNOSTIC) == {"eigencam", "fem", "kpca-cam", "randomcam", "attention-rollout"}
    assert set(LAYER_FREE) == {"occlusion", "guided-backprop", "fullgrad", "attention-rollout", "gradient-rollout"}


@pytest.mark.parametrize("method", CLASS_AGNOSTIC)
def test_a_class_agnostic_map_says_it_is_the_same_for_every_class(method):
    sentence = what_the_colours_mean(method, "dark red", "espresso")
    assert "whatever the class" in sentence
    assert "The map is the same for every class, so it does not say why the model chose espresso." in sentence
    assert "raised" not in sentence  # no claim about a class's score


def test_random_cam_claims_nothing_about_the_layer_or_the_class():
    sentence = what_the_colours_mean("randomcam", "dark red", "espresso")
    assert sentence.startswith("RandomCAM weights the layer's feature maps by random numbers, new on every run")
    assert "regions say nothing about what the layer sees" in sentence and "most active" not in sentence


def test_eigen_cam_says_what_the_layer_responds_to_most():
    assert what_the_colours_mean("eigencam", "yellow", "tabby").startswith(
        "Eigen-CAM shows what the layer responds to most, whatever the class: the yellow regions are where the "
        "layer is most active.")


@pytest.mark.parametrize("method", LAYER_FREE)
def test_a_method_without_a_layer_is_never_said_to_work_at_one(method):
    for text in (what_the_colours_mean(method, "dark red", "espresso"), layer_phrase(method, "top_activation"),
                 layer_fact(method, "input pixels"), no_evidence_notice(method, "espresso")):
        assert "at layer" not in text and "at this layer" not in text and "top_activation" not in text, text
    assert layer_phrase(method, "top_activation").endswith("no layer")


def test_occlusion_and_guided_backpropagation_say_what_their_colours_measure():
    assert what_the_colours_mean("occlusion", "dark red", "espresso") == (
        "The dark red regions are where covering the photo lowered the probability of espresso most "
        "(Occlusion: no layer, the photo itself is covered patch by patch).")
    assert "gradient of espresso's score" in what_the_colours_mean("guided-backprop", "dark red", "espresso")


@pytest.mark.parametrize("method", ["gradcam", "scorecam", "layercam", "guided-gradcam", "gradient-rollout"])
def test_class_specific_methods_with_a_layer_keep_the_class_sentence(method):
    assert what_the_colours_mean(method, "dark red", "espresso") == (
        f"The dark red regions raised the score most for espresso, by {gradcam.METHODS[method].display_name}.")
    if not gradcam.METHODS[method].layer_free:
        assert layer_phrase(method, "top_activation") == "at layer top_activation"
        assert layer_fact(method, "top_activation") == "top_activation"


@pytest.fixture(scope="module")
def agnostic_and_layerless(lite0, cat):
    """Eigen-CAM of the cat explained as 'espresso' (the issue's case), and Guided Backpropagation."""
    photo = cat.resize((224, 149))
    items = []
    for method, target in (("eigencam", "espresso"), ("guided-backprop", None)):
        explanation = gradcam.explain(lite0, photo, target=target, method=method)
        items.append(report.ReportItem.from_explanation(photo, "cat.jpg", "0" * 64, explanation))
    return items


def test_the_html_report_says_what_each_map_can_back(lite0, agnostic_and_layerless):
    eigen, guided = agnostic_and_layerless
    html = report.report_html([eigen, guided], model=lite0)
    eigen_part, guided_part = html.split('id="item-1"')[1].split('id="item-2"')
    assert "Eigen-CAM shows what the layer responds to most, whatever the class" in eigen_part
    assert "raised" not in eigen_part.split("<figcaption>")[2].split("</figcaption>")[0]
    assert "does not say why the model chose espresso" in eigen_part
    assert "no layer" in guided_part and "<code>top_activation</code>" not in guided_part
    assert "none (Guided Backpropagation works on the input pixels)" in guided_part


def test_the_pdf_report_says_the_same(lite0, agnostic_and_layerless):
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(report.report_pdf(list(agnostic_and_layerless), model=lite0)))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert "Eigen-CAM shows what the layer responds to most, whatever the class" in text
    assert "none (Guided Backpropagation works on the input pixels)" in text


def test_occlusion_counts_patch_positions_and_names_its_grid():
    """Issue 32, item 10: "96 of 169 channels" and "224 x 224 cells" for Occlusion's 13 x 13 positions."""
    from gradcam.report.content import map_grid

    assert gradcam.METHODS["occlusion"].progress_unit == "patch positions"
    assert gradcam.METHODS["scorecam"].progress_unit == "channels"
    assert map_grid("occlusion", (224, 224)) == "13 x 13 patch positions (a 32 px patch every 16 px)"
    assert map_grid("gradcam", (7, 7)) == "7 x 7 cells"
    assert map_grid("guided-backprop", (224, 224)) == "224 x 224 input pixels"
    item = report.ReportItem(image=None, image_name="cat.jpg", image_sha256="0" * 64, overlay=None, target=0,
                             label="cat", probability=0.5, predictions=(), layer="input pixels",
                             layer_resolution=(224, 224), method="occlusion")
    assert report.resolution_fact(item).startswith("13 x 13 patch positions") and "cells" not in \
        report.resolution_fact(item)


def test_a_long_photo_name_gives_a_clean_download_name():
    """Issue 32, item 12: "... final_v3 (-gradcam.json" from a name cut at 60 characters mid-bracket."""
    name = "Holiday 2026 - the coffee place by the harbour, second morning, final_v3 (edited by Sam).jpg"
    stem = report.file_stem(name)
    assert len(stem) <= 60 and not stem.endswith(("(", "-", ".", " ")) and " " not in stem and "(" not in stem
    assert stem.startswith("Holiday-2026") and "coffee-place-by-the-harbour" in stem
    assert report.file_stem("cat.jpg") == "cat"
