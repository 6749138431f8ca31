"""The Explore page through Streamlit's AppTest: what a person sees and does."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from gradcam.zoo.labels import imagenet_labels
from dashboard.runtime.call_counts import engine_calls
from dashboard.runtime import model_cache
from dashboard.runtime import explanation_cache

PAGE = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")

CATS = {"Egyptian cat", "tabby", "tiger cat"}


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def app():
    return run(AppTest.from_file(PAGE, default_timeout=180))


def target_label(at: AppTest) -> str:
    box = at.selectbox(key="target")
    return box.format_func(box.value).split("  (")[0]


def top5_labels(at: AppTest) -> list[str]:
    # Options are Markdown with the label escaped ("T\\-shirt"): unescape to compare.
    return [option.split("  (")[0].replace("\\", "") for option in at.radio(key="target_pick").options]


def top5_indices(at: AppTest) -> list[int]:
    """The class indices behind the radio's shown options (ImageNet models)."""
    return [imagenet_labels().index(label) for label in top5_labels(at)]


def overlay_caption(at: AppTest) -> str:
    return next(c for image in at.image for c in image.captions if " overlay, opacity" in c)


def test_the_page_opens_on_a_sample_with_its_top5(app):
    assert app.session_state["image_name"] == "cat.jpg"
    assert target_label(app) in CATS
    assert len(top5_labels(app)) == 5 and top5_labels(app)[0] == target_label(app)
    assert overlay_caption(app) == "Grad-CAM overlay, opacity 0.40"
    assert app.selectbox(key="model_choice").value == "EfficientNet-Lite0"
    assert app.selectbox(key="layer").value == "top_activation"
    assert len(app.get("download_button")) == 3
    assert not app.error


def test_uploading_a_photo_changes_the_predictions(app, coffee):
    app.file_uploader(key="upload").set_value(("my coffee.jpg", jpeg_bytes(coffee), "image/jpeg"))
    run(app)
    assert app.session_state["image_name"] == "my coffee.jpg"
    assert target_label(app) == "espresso"
    assert "espresso" in top5_labels(app) and not set(top5_labels(app)) & CATS


def test_a_sample_button_switches_the_photo(app):
    app.button(key="sample_coffee.jpg").click()
    run(app)
    assert target_label(app) == "espresso"


def test_every_control_works(app):
    app.selectbox(key="layer").set_value("block10_add")
    run(app)
    assert any("(14 x 14 cells" in c for image in app.image for c in image.captions)
    app.selectbox(key="method").set_value("gradcam++")
    run(app)
    app.slider(key="opacity").set_value(0.8)
    run(app)
    assert overlay_caption(app) == "Grad-CAM++ overlay, opacity 0.80"  # the method shown is the method chosen
    app.selectbox(key="colormap").set_value("viridis")
    run(app)
    second = top5_indices(app)[1]
    app.radio(key="target_pick").set_value(second)
    run(app)
    assert app.selectbox(key="target").value == second
    app.selectbox(key="target").set_value(950)  # a class far outside the top-5: orange
    run(app)
    assert target_label(app) == "orange" and app.radio(key="target_pick").value is None
    app.selectbox(key="model_choice").set_value("EfficientNet-Lite1")
    run(app)
    assert app.selectbox(key="layer").value == "top_activation"
    assert target_label(app) in CATS  # a new model starts from its own top-1


def test_a_corrupt_upload_says_so_and_the_next_good_one_works(app, coffee):
    app.file_uploader(key="upload").set_value(("broken.jpg", b"this is not a photo at all", "image/jpeg"))
    run(app)
    assert len(app.error) == 1 and "broken" in app.error[0].value
    assert app.session_state["image_name"] == "cat.jpg" and target_label(app) in CATS  # nothing lost
    app.file_uploader(key="upload").set_value(("coffee.jpg", jpeg_bytes(coffee), "image/jpeg"))
    run(app)
    assert not app.error and target_label(app) == "espresso"


def test_a_bad_model_upload_says_so_and_the_page_keeps_working(app):
    app.selectbox(key="model_choice").set_value("Upload a Keras model...")
    run(app)
    app.file_uploader(key="model_upload").set_value(("model.keras", b"not a model", "application/octet-stream"))
    run(app)
    assert [e.value for e in app.error] == ["The file is not a Keras model \\(expected a \\.keras or \\.h5 file\\)\\."]
    assert target_label(app) in CATS  # still explaining with the model that worked


def test_opacity_colormap_and_top5_targets_never_call_the_model_again(app):
    st.cache_data.clear()
    engine_calls.clear()
    run(app)
    calls = dict(engine_calls)
    assert calls.get("explain") == 1
    app.slider(key="opacity").set_value(0.7)
    run(app)
    app.selectbox(key="colormap").set_value("inferno")
    run(app)
    for index in top5_indices(app)[1:]:
        app.radio(key="target_pick").set_value(index)
        run(app)
    app.selectbox(key="target").set_value(top5_indices(app)[0])
    run(app)
    assert dict(engine_calls) == calls


def test_state_is_kept_in_session_state_for_the_other_pages(app):
    for key in ("image_hash", "image_name", "model_key", "layer", "target", "method", "opacity"):
        assert key in app.session_state


def test_a_shared_link_opens_on_its_view_and_the_url_follows_the_view():
    at = AppTest.from_file(PAGE, default_timeout=180)
    for key, value in {"sample": "coffee.jpg", "model": "EfficientNet-Lite0", "layer": "block10_add",
                       "target": "968", "method": "gradcam++", "opacity": "0.65", "colormap": "viridis"}.items():
        at.query_params[key] = value
    run(at)
    assert at.session_state["image_name"] == "coffee.jpg"
    assert at.selectbox(key="layer").value == "block10_add"
    assert target_label(at) == "cup" and at.selectbox(key="method").value == "gradcam++"
    assert at.slider(key="opacity").value == pytest.approx(0.65) and at.selectbox(key="colormap").value == "viridis"
    at.selectbox(key="layer").set_value("block12_add")
    run(at)
    assert at.query_params["layer"] == "block12_add" and at.query_params["sample"] == "coffee.jpg"
    at.selectbox(key="layer").set_value("top_activation")
    run(at)
    assert "layer" not in at.query_params  # the model's default layer needs no mention


def test_a_link_with_nonsense_is_ignored_not_an_error():
    at = AppTest.from_file(PAGE, default_timeout=180)
    for key, value in {"sample": "../../etc/passwd", "model": "Nope", "layer": "x", "target": "99999",
                       "opacity": "lots", "method": "<b>"}.items():
        at.query_params[key] = value
    run(at)
    assert not at.error and at.session_state["image_name"] == "cat.jpg" and target_label(at) in CATS


def test_reruns_keep_tensorflows_compiled_kernels(app, monkeypatch):
    """Streamlit clears Keras' session after every rerun unless we stop it; that
    would re-optimise the compiled Grad-CAM on every slider move."""
    from tensorflow.python.eager import context

    clears = []
    original = context.Context.clear_kernel_cache
    monkeypatch.setattr(context.Context, "clear_kernel_cache", lambda self: (clears.append(1), original(self)))
    for value in (0.5, 0.6, 0.7):
        app.slider(key="opacity").set_value(value)
        run(app)
    assert clears == []


def test_the_method_picker_explains_each_method_and_runs_score_cam_on_its_budget(app):
    import gradcam
    from gradcam.engine.methods import SCORECAM_DEFAULT_CHANNELS

    picker = app.selectbox(key="method")
    assert picker.options == [m.display_name for m in gradcam.METHODS.values()]
    assert all(m.description in picker.help for m in gradcam.METHODS.values())
    picker.set_value("eigencam")
    run(app)
    assert any("Class-agnostic" in c.value for c in app.caption)
    app.selectbox(key="method").set_value("scorecam")
    run(app)
    assert any(f"the {SCORECAM_DEFAULT_CHANNELS} feature maps with the largest variance" in c.value
               for c in app.caption)
    shown = explanation_cache.explain_top5(app.session_state["image_hash"], "EfficientNet-Lite0", "top_activation", "scorecam",
                                None, None)  # from the cache: the image and model are not needed
    photo = explanation_cache.display_image(app.session_state["image_hash"], app.session_state["image_data"])
    model = model_cache.builtin_model("EfficientNet-Lite0")
    expected = gradcam.explain(model, photo, target=shown.predictions[0].index, method="scorecam",
                               max_channels=SCORECAM_DEFAULT_CHANNELS)
    assert np.allclose(shown.maps[expected.target].raw, expected.raw, rtol=1e-4, atol=1e-6)
    assert not app.exception


def test_sess_and_refinecam_say_their_pass_count_under_the_picker_before_they_run(app):
    """SESS's 127 on Lite0 (from the part that writes the caption: its 127 passes are too slow
    for AppTest); on the page, RefineCAM's count follows the layer, said before it runs."""
    from dashboard.parts import method_picker
    from dashboard.runtime import model_cache

    model = model_cache.builtin_model("EfficientNet-Lite0")
    assert method_picker.passes_note(model, "sess", "top_activation") == (
        "SESS runs 127 passes on this model, each about one Grad-CAM pass")
    assert method_picker.passes_note(model, "gradcam", "top_activation") is None
    app.selectbox(key="layer").set_value("block10_add")
    app.selectbox(key="method").set_value("refinecam")
    run(app)
    assert any("RefineCAM runs 3 passes on this model from this layer, each about one Grad-CAM++ pass; "
               "a progress bar counts them." in c.value for c in app.caption)
    app.selectbox(key="method").set_value("gradcam")
    run(app)
    assert not any(" passes on this model" in c.value for c in app.caption)


# --- what a few-class, regression or tiny input looks like -----------------------------


@pytest.fixture
def offered(monkeypatch):
    """The data each download button offers, by file name (AppTest cannot click one)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    files: dict[str, object] = {}
    add = MediaFileManager.add

    def record_add(self, data, mimetype, coordinates, file_name=None, *args, **kwargs):
        if file_name:
            files[file_name] = data
        return add(self, data, mimetype, coordinates, file_name, *args, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add", record_add)
    return files


def own_model_bytes(tmp_path, outputs: int, activation) -> bytes:
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(outputs, activation=activation)(x)).save(tmp_path / "m.keras")
    return (tmp_path / "m.keras").read_bytes()


def upload_model(at: AppTest, name: str, data: bytes, labels: bytes | None = None) -> AppTest:
    at.selectbox(key="model_choice").set_value("Upload a Keras model...")
    run(at)
    at.file_uploader(key="model_upload").set_value((name, data, "application/octet-stream"))
    if labels is not None:
        at.file_uploader(key="labels_upload").set_value(("labels.txt", labels, "text/plain"))
    return run(at)


def test_an_own_three_class_model_is_called_by_its_file_name_and_shows_its_top3(app, tmp_path, offered):
    upload_model(app, "flowers-v3.keras", own_model_bytes(tmp_path, 3, "softmax"), b"rose\ntulip\ndaisy\n")
    assert not app.error
    # The class the default model showed (Egyptian cat) is no link's: nothing is "refused".
    assert not [w.value for w in app.warning if "The link" in w.value]
    assert "Top-3 predictions" in [h.value for h in app.subheader]
    assert sorted(top5_labels(app)) == ["daisy", "rose", "tulip"]
    record = json.loads(offered["cat-gradcam.json"])
    assert record["model"] == "flowers-v3.keras" and len(record["top5"]) == 3


def test_a_regression_model_shows_its_output_not_a_top5(app, tmp_path):
    upload_model(app, "age.keras", own_model_bytes(tmp_path, 1, None))
    assert not app.error
    headings = [h.value for h in app.subheader]
    assert "The model's output" in headings and not any(h.startswith("Top-") for h in headings)


def test_a_tiny_photo_is_explained_with_a_warning(app):
    one_pixel = io.BytesIO()
    Image.new("RGB", (1, 1), "orange").save(one_pixel, format="PNG")
    app.file_uploader(key="upload").set_value(("dot.png", one_pixel.getvalue(), "image/png"))
    run(app)
    assert app.session_state["image_name"] == "dot.png" and not app.error
    assert [w.value for w in app.warning if "only 1 x 1 pixels" in w.value]
    assert "EfficientNet\\-Lite0 looks at 224 x 224" in next(w.value for w in app.warning if "1 x 1" in w.value)
    app.button(key="sample_coffee.jpg").click()  # a photo of a fair size: no warning
    run(app)
    assert not [w for w in app.warning if "pixels" in w.value]


def test_the_words_follow_the_colormap_and_the_method(app):
    assert any("dark red regions" in m.value and "by Grad-CAM." in m.value for m in app.markdown)
    app.selectbox(key="colormap").set_value("viridis")
    app.selectbox(key="method").set_value("gradcam++")
    run(app)
    assert not any("red regions" in m.value for m in app.markdown)
    assert any("yellow regions" in m.value and "by Grad-CAM++." in m.value for m in app.markdown)
    assert overlay_caption(app).startswith("Grad-CAM++ overlay")


def test_a_picture_sent_inline_is_the_photo_at_a_bounded_size():
    """The first visit's photo and the gallery's thumbnails travel inside the page's message as
    data: URLs: each decodes to the same picture, no larger than the place it is shown needs."""
    import base64

    from dashboard.parts.image_picker import INLINE_SIDE, SAMPLES_DIR, inline_picture

    cat = Image.open(SAMPLES_DIR / "cat.jpg").convert("RGB")
    wide = cat.resize((1600, 1000))  # another size and shape than the sample's own
    for photo, expected in ((wide, (INLINE_SIDE, 600)), (cat.resize((300, 200)), (300, 200))):
        url = inline_picture(photo)
        assert url.startswith("data:image/jpeg;base64,")
        shown = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert shown.size == expected
        difference = np.abs(np.asarray(shown, np.float32) - np.asarray(photo.resize(expected), np.float32))
        assert difference.mean() < 4  # the same picture, give or take JPEG
