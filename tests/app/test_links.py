"""Links and choices across pages, through AppTest: a link shows only what its sender
saw (what cannot travel is left out, and the sender is told), each page reads a link
and writes its own view, Compare's own choices stay out of the shared keys, a model
that failed is not tried again, and removing an upload removes its photo."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.parts import model_picker
from gradcam.zoo import catalog as models
from gradcam.zoo.labels import imagenet_labels
from tests.app.pages import ROUTER, page_app, switch_to
from tests.app.test_app import CATS, jpeg_bytes, run, target_label

ROOT = Path(__file__).resolve().parents[2]
EXPLORE = ROUTER
COMPARE = "compare"
SCHNAUZER = imagenet_labels().index("miniature schnauzer")


def app(page: str = EXPLORE, link: dict | None = None) -> AppTest:
    """The whole app (the router, Explore first) or one page alone, opened with ``link``."""
    at = AppTest.from_file(page, default_timeout=240) if page == ROUTER else page_app(page, default_timeout=240)
    at.query_params.update(link or {})
    return run(at)


def link_notes(at: AppTest) -> list[str]:
    return [c.value for c in at.sidebar.caption if "A link to this page" in c.value]


def small_model_bytes(tmp_path) -> bytes:
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="features")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="more_features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)).save(tmp_path / "mine.keras")
    return (tmp_path / "mine.keras").read_bytes()


def test_a_link_from_an_uploaded_photo_leaves_the_photo_and_class_out_and_says_so(coffee):
    at = app()
    assert dict(at.query_params) == {} and link_notes(at) == []  # the default view: an empty, honest link
    at.selectbox(key="model_choice").set_value("EfficientNet-Lite1")
    run(at)
    at.file_uploader(key="upload").set_value(("my coffee.jpg", jpeg_bytes(coffee), "image/jpeg"))
    run(at)
    at.selectbox(key="target").set_value(SCHNAUZER)
    run(at)
    assert target_label(at) == "miniature schnauzer"
    assert dict(at.query_params) == {"model": "EfficientNet-Lite1"}  # no photo, so no class of that photo
    assert link_notes(at) == [":material/link: A link to this page opens the Cat sample, not your photo (uploads "
                              "are not put in links), with the same model, layer, method and look."]

    recipient = app(link=dict(at.query_params))  # what the link shows: the cat, through Lite1, its own top-1
    assert recipient.session_state["image_name"] == "cat.jpg"
    assert recipient.selectbox(key="model_choice").value == "EfficientNet-Lite1"
    assert target_label(recipient) in CATS


def test_an_own_models_links_leave_the_model_its_layers_and_classes_out(tmp_path):
    at = app(link={"sample": "coffee.jpg"})
    at.selectbox(key="model_choice").set_value("Upload a Keras model...")
    run(at)
    at.file_uploader(key="model_upload").set_value(("mine.keras", small_model_bytes(tmp_path), "application/x"))
    run(at)
    assert at.session_state["model_key"].startswith("own:") and not at.error
    at.selectbox(key="layer").set_value("features")
    run(at)
    at.selectbox(key="target").set_value(1 if at.selectbox(key="target").value != 1 else 2)
    run(at)
    at.selectbox(key="method").set_value("gradcam++")
    run(at)
    # The photo and the method travel; the model, its layer and its class do not.
    assert dict(at.query_params) == {"sample": "coffee.jpg", "method": "gradcam++"}
    assert link_notes(at) == [":material/link: A link to this page opens EfficientNet-Lite0, not your model "
                              "(uploads are not put in links), on the same photo, with the same method and look."]

    switch_to(at, COMPARE)
    run(at)
    at.session_state["compare_tab"] = "Classes"
    run(at)
    at.selectbox(key="compare_other").set_value(0 if at.selectbox(key="compare_other").value != 0 else 2)
    run(at)
    assert dict(at.query_params) == {"sample": "coffee.jpg", "method": "gradcam++", "compare": "classes"}
    assert len(link_notes(at)) == 1


def test_compare_keeps_its_class_and_opacity_in_its_own_keys_and_the_models_tab_has_no_class_picker():
    at = app(COMPARE, link={"sample": "coffee.jpg"})
    top = at.selectbox(key="compare_target").options
    assert at.selectbox(key="compare_target").value == 967  # espresso, the top-1
    at.selectbox(key="compare_target").set_value(968)  # cup
    run(at)
    at.slider(key="compare_opacity").set_value(0.7)
    run(at)
    assert dict(at.query_params) == {"sample": "coffee.jpg", "compare_class": "968", "compare_opacity": "0.70"}
    assert top[0].startswith("espresso")

    # The recipient's Explore is the sender's Explore: espresso at 0.40, not Compare's cup at 0.70.
    explore = app(link=dict(at.query_params))
    assert target_label(explore) == "espresso" and explore.slider(key="opacity").value == pytest.approx(0.4)
    # ... and the recipient's Compare is the sender's Compare.
    compare = app(COMPARE, link=dict(at.query_params))
    assert compare.selectbox(key="compare_target").value == 968
    assert compare.slider(key="compare_opacity").value == pytest.approx(0.7)

    at.session_state["compare_tab"] = "Models"
    run(at)
    assert [box.key for box in at.selectbox] == []  # each model explains its own top-1 there
    assert "compare_class" not in at.query_params and at.query_params["compare"] == "models"


def test_a_failed_download_is_tried_once_per_session_on_compare_and_explore(tmp_path, monkeypatch):
    from keras.src.backend import config

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))  # no cached weights
    monkeypatch.setattr(models, "_weights_url", lambda name: "http://127.0.0.1:9/weights.h5")  # offline
    attempts = []
    real_download = model_picker.download_weights

    def counted(name, *args, **kwargs):
        attempts.append(name)
        return real_download(name, *args, **kwargs)

    monkeypatch.setattr(model_picker, "download_weights", counted)
    at = app(COMPARE)
    at.session_state["compare_tab"] = "Models"
    run(at)
    at.multiselect(key="compare_models").set_value(["EfficientNet-Lite0", "MobileNetV2", "ResNet50"])
    run(at)
    sentences = [e.value for e in at.error]
    assert len(sentences) == 2 and "MobileNetV2" in sentences[0] and "ResNet50" in sentences[1]
    for opacity in (0.45, 0.5, 0.55):
        at.slider(key="compare_opacity").set_value(opacity)
        run(at)
        assert [e.value for e in at.error] == sentences  # the same sentences, without a new attempt
    assert attempts == ["MobileNetV2", "ResNet50"]

    explore = app()
    explore.selectbox(key="model_choice").set_value("MobileNetV2")
    run(explore)
    explore.slider(key="opacity").set_value(0.5)
    run(explore)
    assert len(explore.error) == 1 and "MobileNetV2" in explore.error[0].value
    assert target_label(explore) in CATS  # still explaining with Lite0
    assert attempts == ["MobileNetV2", "ResNet50", "MobileNetV2"]  # once in this new session, not per rerun


def test_removing_the_uploaded_photo_removes_it_from_the_page(coffee):
    at = app(link={"sample": "rocket.jpg"})
    at.file_uploader(key="upload").set_value(("my coffee.jpg", jpeg_bytes(coffee), "image/jpeg"))
    run(at)
    assert target_label(at) == "espresso"
    at.file_uploader(key="upload").set_value(None)  # its x
    run(at)
    assert at.session_state["image_name"] == "rocket.jpg"  # the sample shown before the upload
    assert target_label(at) != "espresso"
    at.file_uploader(key="upload").set_value(("broken.jpg", b"not a photo", "image/jpeg"))
    run(at)
    assert len(at.error) == 1
    at.file_uploader(key="upload").set_value(None)  # removing the bad file removes its sentence
    run(at)
    assert not at.error and at.session_state["image_name"] == "rocket.jpg"


def test_the_lesson_report_and_batch_open_on_a_links_view_and_write_their_own():
    shared = {"sample": "coffee.jpg", "layer": "block10_add", "method": "gradcam++"}
    lesson = app("how_it_works", link={**shared, "step": "3"})
    assert lesson.session_state["lesson_step"] == 3
    assert lesson.caption[0].value.startswith("coffee\\.jpg · model EfficientNet\\-Lite0 · at layer block10\\_add")
    assert dict(lesson.query_params) == {**shared, "step": "3"}
    lesson.button(key="lesson_next").click()
    run(lesson)
    assert dict(lesson.query_params) == {**shared, "step": "4"}  # a teacher can hand out this step
    lesson.selectbox(key="lesson_target").set_value(968)
    run(lesson)
    assert dict(lesson.query_params) == {**shared, "step": "4", "lesson_class": "968"}

    report = app("report", link={**shared, "sections": "967:gradcam++,968:gradcam++"})
    assert report.multiselect(key="report_include").value == [(967, "gradcam++"), (968, "gradcam++")]
    assert "block10\\_add" in report.markdown[0].value
    assert dict(report.query_params) == {**shared, "sections": "967:gradcam++,968:gradcam++"}
    report.multiselect(key="report_include").set_value([(967, "gradcam++")])
    run(report)
    assert dict(report.query_params) == shared  # the current explanation alone is the default

    batch = app("batch", link=shared)
    assert "block10\\_add" in batch.markdown[0].value and "Grad-CAM++" in batch.markdown[0].value
    assert dict(batch.query_params) == shared
