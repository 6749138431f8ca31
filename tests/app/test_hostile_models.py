"""Hostile and broken model and labels uploads through the Explore page (AppTest).

A model the page cannot use must be refused with one clear sentence while the
page keeps explaining (with the model that worked before); a model whose file
holds code must never run it; labels are user text and must be shown as text.
"""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from dashboard.parts.model_picker import UPLOAD
from dashboard.safe_text import md

PAGE = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
HOSTILE_LABELS = ["<script>alert(1)</script>", "**bold**", "[link](http://x)"]
# The app's one script of its own (it closes the sidebar after a page change on a
# narrow screen): constant text, so it may be raw HTML.
OWN_SCRIPT_START = "<script>\n(() => {\n  const page = "


# --- small models, built here --------------------------------------------------


def conv_model(classes=3, activation="softmax", seed=7):
    """Conv2D on a 32 x 32 x 3 input, global average pooling, Dense."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation=activation)(x))


def two_input_model():
    a, b = keras.Input((32, 32, 3)), keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(2, 3)(keras.layers.Concatenate()([a, b]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model([a, b], keras.layers.Dense(2, activation="softmax")(x))


def dense_only_model():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def model_bytes(model, tmp_path: Path) -> bytes:
    path = tmp_path / "m.keras"
    model.save(path)
    return path.read_bytes()


def lambda_model_bytes(tmp_path: Path, marker: Path) -> bytes:
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(2, 3)(inputs)
    # Its code touches ``marker`` whenever it runs; the path is a constant inside the code.
    touching = eval(f"lambda t: t * 2 if __import__('pathlib').Path({str(marker)!r}).touch() is None else t")
    x = keras.layers.Lambda(touching)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    data = model_bytes(keras.Model(inputs, keras.layers.Dense(2)(x)), tmp_path)
    assert marker.exists(), "building the model should have run the lambda (else the test proves nothing)"
    marker.unlink()  # start clean
    return data


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def corrupt_zip() -> bytes:
    """A zip local-file header (as a .keras file starts), then garbage."""
    header = b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, 0, 8, 0, 0, 0, 0, 0, 11, 0) + b"config.json"
    return header + np.random.default_rng(5).bytes(3000)


# --- the page --------------------------------------------------------------------


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown_errors(at: AppTest) -> list[str]:
    return [error.value.replace("\\", "") for error in at.error]


def target_label(at: AppTest) -> str:
    box = at.selectbox(key="target")
    return box.format_func(box.value).split("  (")[0]


def assert_explained(at: AppTest) -> None:
    """The page still shows an explanation: a target class and the overlay."""
    assert at.selectbox(key="target").value is not None
    assert any(c.startswith("Grad-CAM overlay") for image in at.image for c in image.captions)


@pytest.fixture
def page() -> AppTest:
    """The Explore page with "Upload a Keras model..." chosen, nothing uploaded yet."""
    at = run(AppTest.from_file(PAGE, default_timeout=180))
    at.selectbox(key="model_choice").set_value(UPLOAD)
    return run(at)


def upload(at: AppTest, model: bytes, labels: bytes | None = None, name: str = "model.keras") -> AppTest:
    at.file_uploader(key="model_upload").set_value((name, model, "application/octet-stream"))
    if labels is not None:
        at.file_uploader(key="labels_upload").set_value(("labels.txt", labels, "text/plain"))
    return run(at)


def assert_refused(at: AppTest, phrase: str) -> None:
    errors = shown_errors(at)
    assert len(errors) == 1, errors
    assert phrase.casefold() in errors[0].casefold(), errors
    assert "\n" not in errors[0] and errors[0].endswith("."), errors
    assert_explained(at)  # with the model that worked before
    assert at.session_state["model_key"] == "EfficientNet-Lite0"


# --- refused -------------------------------------------------------------------


def test_lambda_layer_is_refused_and_its_code_never_runs(page, tmp_path):
    marker = tmp_path / "lambda-ran.txt"
    data = lambda_model_bytes(tmp_path, marker)
    assert not marker.exists()
    upload(page, data)
    assert_refused(page, "Lambda")
    assert not marker.exists(), "the model's code ran"


@pytest.mark.parametrize("make, phrase", [
    pytest.param(lambda tmp: corrupt_zip(), "damaged", id="corrupt-zip"),
    pytest.param(lambda tmp: png_bytes(), "not a Keras model", id="png-named-keras"),
    pytest.param(lambda tmp: model_bytes(two_input_model(), tmp), "2 inputs", id="two-inputs"),
    pytest.param(lambda tmp: model_bytes(dense_only_model(), tmp), "no convolutional layer", id="no-conv-layer"),
])
def test_unusable_model_is_refused(page, tmp_path, make, phrase):
    upload(page, make(tmp_path))
    assert_refused(page, phrase)


def test_labels_file_with_the_wrong_count_is_refused(page, tmp_path):
    upload(page, model_bytes(conv_model(classes=3), tmp_path), labels=b"cat\ndog\n")
    assert_refused(page, "labels")
    assert "2 labels" in shown_errors(page)[0] and "3 outputs" in shown_errors(page)[0]


# --- accepted ------------------------------------------------------------------


def test_regression_model_is_explained_as_the_output(page, tmp_path):
    upload(page, model_bytes(conv_model(classes=1, activation=None), tmp_path))
    assert not page.error, shown_errors(page)
    assert page.session_state["model_key"].startswith("own:")
    assert_explained(page)
    assert target_label(page) == "the output"


@pytest.fixture
def hostile_labels_page(page, tmp_path) -> AppTest:
    labels = "\n".join(HOSTILE_LABELS).encode()
    upload(page, model_bytes(conv_model(classes=3, seed=3), tmp_path), labels=labels)
    assert not page.error, shown_errors(page)
    assert page.session_state["model_key"].startswith("own:")
    assert_explained(page)
    return page


UNESCAPED_SCRIPT = re.compile(r"(?<!\\)<\s*script", re.IGNORECASE)


def markdown_texts(at: AppTest) -> list[str]:
    """The page's Markdown elements: markdown, captions and alerts (radio options: the next test)."""
    return [e.value for e in (*at.markdown, *at.caption, *at.error, *at.warning, *at.info, *at.success)]


def test_hostile_labels_are_accepted_and_never_rendered_as_html(hostile_labels_page):
    at = hostile_labels_page
    for target in range(3):  # each label in turn is the explained class
        at.selectbox(key="target").set_value(target)
        run(at)
        assert_explained(at)
        label = HOSTILE_LABELS[target]
        # The selectbox shows plain text: the label exactly as written.
        assert target_label(at) == label
        # Where the label is written in Markdown ("Why **<label>**?"), it is escaped.
        why = [text for text in markdown_texts(at) if text.startswith("Why ")]
        assert len(why) == 1 and f"**{md(label)}**" in why[0], why
        for text in markdown_texts(at):
            assert not UNESCAPED_SCRIPT.search(text), text
        # No raw HTML anywhere carries user text.
        for element in at.get("html"):
            body = str(element.proto)
            assert not any(name in body for name in HOSTILE_LABELS), body
            assert not any(part in body for part in ("bold", "link", "http://x")), body
            if "script" in body:  # only our own constant sidebar script, never user text
                assert element.proto.body.startswith(OWN_SCRIPT_START), body
        for element in at.markdown:
            if element.proto.allow_html:
                assert not any(name in element.value for name in HOSTILE_LABELS), element.value
                assert "script" not in element.value and "http://x" not in element.value, element.value


def test_hostile_labels_in_the_top5_radio_are_escaped(hostile_labels_page):
    # st.radio renders its options as Markdown: "**bold**" would show bold and
    # "[link](http://x)" as a live link, so each label must be md()-escaped there.
    at = hostile_labels_page
    options = at.radio(key="target_pick").options
    assert len(options) == 3
    for option in options:
        assert not UNESCAPED_SCRIPT.search(option), option
        label = option.rsplit("  (", 1)[0]
        assert label in {md(name) for name in HOSTILE_LABELS}, option
