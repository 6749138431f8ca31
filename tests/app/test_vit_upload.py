"""An own Vision Transformer uploaded to the Explore page (AppTest), through the sandbox:
the .keras file uses the project's registered token layers (class token, position
embedding), which safe mode loads by name in the worker and again here (issue 20)."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from dashboard.parts.model_picker import UPLOAD
from tests.app.pages import switch_to
from gradcam.zoo.vit import train_tag_vit

PAGE = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def overlay_shown(at: AppTest) -> bool:
    return any(" overlay, opacity " in c for image in at.image for c in image.captions)


def test_an_uploaded_vit_is_explained_on_its_patch_grid(tmp_path):
    path = tmp_path / "tiny-vit.keras"
    train_tag_vit(photos=128, epochs=2).save(path)  # training is not the point here: loading and listing are

    at = run(AppTest.from_file(PAGE, default_timeout=180))
    at.selectbox(key="model_choice").set_value(UPLOAD)
    run(at)
    at.file_uploader(key="model_upload").set_value(("tiny-vit.keras", path.read_bytes(), "application/octet-stream"))
    run(at)
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["model_key"].startswith("own:")

    layer = at.selectbox(key="layer")
    assert layer.value == "block1_norm1"  # the last block's input norm, not its output
    assert layer.format_func(layer.value) == "block1_norm1  (4x4 tokens + 1 class token, 32)"
    assert overlay_shown(at)

    at.selectbox(key="method").set_value("attention-rollout")
    run(at)
    assert not at.error, [e.value for e in at.error]
    assert overlay_shown(at)
    assert any("attention layer" in c.value for c in at.caption)  # the picker's note: the layer does not apply
    # Rollout ignores the class: the sentence under the map says where attention flows, never "Why <class>?".
    assert any(m.value.startswith("Attention rollout shows where the attention flows most, whatever the class")
               for m in at.markdown)
    assert not any(m.value.startswith("Why ") for m in at.markdown)

    # the last block's output: one sentence, and the page goes on
    at.selectbox(key="method").set_value("gradcam")
    at.selectbox(key="layer").set_value("block1_add2")
    run(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "no gradient reaches these tokens from the class score" in errors[0], errors

    # the lesson explains tokens at the default layer
    at.selectbox(key="layer").set_value("block1_norm1")
    run(at)
    switch_to(at, "how_it_works")
    run(at)
    at.toggle(key="lesson_all").set_value(True)
    run(at)
    lesson = " ".join(i.value for i in at.info)
    assert "cuts the photo into a 4 x 4 grid of patches" in lesson, lesson
    assert "one class token that belongs to no patch" in lesson
