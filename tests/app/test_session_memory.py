"""What a session holds outside the caches is bounded (issue 16): a large photo upload is
kept as what is shown, not as its 20+ MB of bytes, and an uploaded model is held by the
session only while it is in use, so the cache's eviction frees it. Through AppTest on the
Explore page, with the hostile inputs (a big upload, many models one after another) built here."""

from __future__ import annotations

import gc
import hashlib
import io
import weakref
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import gradcam
from dashboard.parts import image_picker
from dashboard.parts.model_picker import UPLOAD
from gradcam.intake import DISPLAY_MAX_SIDE
from dashboard.runtime import model_cache
from dashboard.runtime import explanation_cache

ROOT = Path(__file__).resolve().parents[2]
UPLOADS = 6  # more than the own-model cache keeps, and the one it evicted last
CACHED = 4  # its max_entries (dashboard/runtime/model_cache.py)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


@pytest.fixture(scope="module")
def page() -> AppTest:
    """One Explore page for the module (one boot): the photo test runs first, then the models'."""
    return run(AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=240))


def noise_png(width: int, height: int) -> bytes:
    """Pixels that do not compress: a PNG of about 3 bytes per pixel."""
    pixels = np.random.default_rng(16).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


@pytest.mark.slow
def test_a_large_upload_is_kept_as_what_is_shown(page):
    raw = noise_png(3200, 2400)  # 7.7 MP: about 23 MB of bytes
    assert len(raw) > 20 * 2**20
    at = page
    at.file_uploader(key="upload").set_value(("big.png", raw, "image/png"))
    run(at)
    kept = at.session_state["image_data"]
    assert at.session_state["image_hash"] == hashlib.sha256(raw).hexdigest()  # the caches' key: the upload's
    shown = np.asarray(explanation_cache.display_image(at.session_state["image_hash"], kept))
    assert max(shown.shape[:2]) == DISPLAY_MAX_SIDE
    # What the session keeps: display-size pixels (3 bytes each and a little), not the upload.
    assert len(kept) <= shown.size * 1.01 + 4096 and len(kept) < image_picker.SESSION_PHOTO_BYTES, len(kept)
    explanation_cache.display_image.clear()  # the cache evicted the photo: the session's bytes give the same one
    assert np.array_equal(np.asarray(explanation_cache.display_image(at.session_state["image_hash"], kept)), shown)
    assert any(c.startswith("Grad-CAM overlay") for image in at.image for c in image.captions)


def _saved(model) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder) / "m.keras")
        return (Path(folder) / "m.keras").read_bytes()


def alive(refs) -> int:
    gc.collect()
    return sum(ref() is not None for ref in refs)


@pytest.mark.slow
def test_a_session_holds_only_the_model_it_uses(page):
    at = page
    at.selectbox(key="model_choice").set_value(UPLOAD)
    run(at)
    refs = []

    def upload(filters: int) -> None:  # each upload replaces the one before
        at.file_uploader(key="model_upload").set_value(("m.keras", _saved(_model(filters)), "application/octet-stream"))
        run(at)
        (model,) = at.session_state["own_models"].values()
        refs.append(weakref.ref(model.keras))

    for filters in range(4, 4 + UPLOADS):
        upload(filters)
    # The cache's entries and the one it evicted last (freed at the next load), not all of them.
    assert alive(refs) <= CACHED + 1 and refs[-1]() is not None and refs[0]() is None, [r() for r in refs]
    at.selectbox(key="model_choice").set_value(gradcam.DEFAULT_MODEL)
    run(at)
    assert "own_models" not in at.session_state  # a model no longer in use is the cache's alone
    at.selectbox(key="model_choice").set_value(UPLOAD)
    run(at)
    model_cache.own_model.clear()  # the cache evicts them all; the next load (any session's) frees them
    upload(4 + UPLOADS)
    run(at)  # Streamlit keeps the previous run's state until the next run starts
    assert alive(refs[:-1]) == 0, [r() for r in refs]


def _model(filters: int) -> keras.Model:
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(filters, 3, name="features")(inputs))
    return keras.Model(inputs, keras.layers.Dense(10)(x))
