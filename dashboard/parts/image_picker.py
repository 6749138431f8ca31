"""Where the photo comes from: the sample gallery, an upload or the camera.

The current photo lives in st.session_state (bytes, name, hash), so it survives
reruns and every page sees the same one. A bad upload shows the engine's sentence
and leaves the current photo as it was. The bytes kept are small: a large upload
(up to 200 MB) is kept as a lossless PNG of what is shown (display size), which
decodes to the very pixels the cache held, should the cache evict them.
"""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image, ImageOps

import gradcam
from gradcam.intake import SUPPORTED_FORMATS

from dashboard.safe_text import md
from gradcam.intake import sha256
from dashboard.runtime.explanation_service import png_bytes
from dashboard.runtime import explanation_cache

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "samples"
SAMPLES = {  # file -> caption, in gallery order; the first is preselected
    "cat.jpg": "Cat",
    "coffee.jpg": "Espresso",
    "cat-and-coffee.jpg": "Cat and coffee",
    "rocket.jpg": "Rocket launch",
    "astronaut.jpg": "Astronaut",
}
FIRST_SAMPLE = SAMPLES_DIR / next(iter(SAMPLES))  # the photo a first visit opens on


# Uploads up to this size stay in the session as they came; larger ones as what is shown.
SESSION_PHOTO_BYTES = 8 * 2**20


@dataclass(frozen=True)
class CurrentImage:
    image: Image.Image  # decoded, upright, RGB, at display size
    name: str
    sha256: str  # of the bytes as uploaded


_PHOTO_KEYS = ("image_data", "image_name", "image_hash", "image_source")
REPLACEMENT_SECONDS = 30.0  # a removal this recent, then a file: the browser replaced the file (a large one uploads first)


def _use(data: bytes, name: str, source: str) -> bool:
    """Make ``data`` the current photo if it decodes; otherwise keep the old one."""
    digest = sha256(data)
    try:
        shown = explanation_cache.display_image(digest, data)
    except gradcam.InvalidImageError as error:
        st.session_state["image_error"] = (source, f"{md(name)}: {error}")
        return False
    if len(data) > SESSION_PHOTO_BYTES:  # the hash stays the upload's: the caches are keyed on it
        data = png_bytes(shown)
    st.session_state.update(image_data=data, image_name=name, image_hash=digest, image_source=source,
                            image_error=None)
    return True


def use_photo(data: bytes, name: str) -> bool:
    """Make a picture made on another page (a frozen camera frame, a moment of a video) the current
    photo of every page, as if it had been uploaded; False (the picker then shows why) if it does not decode."""
    return _use(data, name, source="elsewhere")


def use_sample(file_name: str) -> None:
    st.session_state["last_sample"] = file_name  # where removing an upload goes back to
    _use((SAMPLES_DIR / file_name).read_bytes(), file_name, source=f"sample:{file_name}")


def _removed(widget_key: str) -> None:
    """The person removed the uploaded (or camera) file with its x: that photo goes too,
    back to the sample shown before it (a photo nobody can see in the picker stays explained otherwise)."""
    if st.session_state.get(widget_key) is not None:
        return  # a new file, not a removal: the page reads it
    st.session_state[f"{widget_key}_seen"] = None  # the same file uploaded again is new again
    error = st.session_state.get("image_error")
    if error and error[0] == widget_key:
        st.session_state["image_error"] = None
    if st.session_state.get("image_source") == widget_key:
        state = st.session_state
        # A browser replacing the file sends this removal first and the new file a moment later, in a run of its
        # own: kept here, the photo comes back if that new file turns out not to be a photo.
        state["replaced_photo"] = (time.monotonic(), {k: state[k] for k in _PHOTO_KEYS})
        use_sample(st.session_state.get("last_sample") or next(iter(SAMPLES)))


INLINE_SIDE = 960  # pixels: sharp where a photo is shown inline (480 px wide, on a 2x screen)


def inline_picture(image: Image.Image, max_side: int = INLINE_SIDE) -> str:
    """The picture as a data: URL, which st.image shows from the page's own message. A picture
    handed over as a file is fetched by the browser in a request of its own, which waits while the
    server's interpreter is busy (importing TensorFlow, loading a model, a first map): on a first
    visit, the photo and the sample thumbnails stood as empty grey boxes for seconds."""
    picture = image.convert("RGB")
    if max(picture.size) > max_side:
        picture = picture.copy()
        picture.thumbnail((max_side, max_side), Image.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@st.cache_resource(show_spinner=False)
def _thumbnail(file_name: str) -> str:
    # One shape for every sample, so the gallery's buttons line up; inline, so the gallery
    # shows with the page (repeated, the same message is sent as a reference to the first).
    return inline_picture(ImageOps.fit(Image.open(SAMPLES_DIR / file_name).convert("RGB"), (320, 220),
                                       Image.LANCZOS))


GALLERY_ITEM_WIDTH = 110  # pixels: five in a row on a desktop, three to a row on a 390-pixel phone


def _gallery() -> None:
    # A row that wraps, of items of one fixed width: st.columns would stack the five
    # samples full width on a phone and push the result two screens down.
    with st.container(horizontal=True, gap="xsmall", key="gallery"):
        for file_name, caption in SAMPLES.items():
            with st.container(width=GALLERY_ITEM_WIDTH, gap="xsmall"):
                st.image(_thumbnail(file_name), width="stretch")
                current = st.session_state.get("image_source") == f"sample:{file_name}"
                st.button(caption, key=f"sample_{file_name}", on_click=use_sample, args=(file_name,),
                          type="primary" if current else "secondary", width="stretch")


def _new_file(widget_key: str, uploaded) -> None:
    """Use an uploaded file once (a rerun must not re-read or re-report it). Below the
    widget: a spinner while a large file is read, then its error if it is not a photo."""
    status = st.empty()  # replaces, at once, what an earlier file left here
    if uploaded is not None and st.session_state.get(f"{widget_key}_seen") != uploaded.file_id:
        st.session_state[f"{widget_key}_seen"] = uploaded.file_id
        st.session_state["image_error"] = None
        with status.container(), st.spinner(f"Reading {md(uploaded.name)}..."):
            good = _use(uploaded.getvalue(), uploaded.name, source=widget_key)
        replaced = st.session_state.pop("replaced_photo", None)
        if not good and replaced and time.monotonic() - replaced[0] < REPLACEMENT_SECONDS:
            st.session_state.update(replaced[1])  # the photo this file replaced stays, as a bad file never counts
        if not good:
            source, sentence = st.session_state["image_error"]
            st.session_state["image_error"] = (source, f"{sentence} The current photo stays: "
                                                       f"{md(st.session_state['image_name'])}.")
    error = st.session_state.get("image_error")
    if error and error[0] == widget_key:
        status.error(error[1])


def pick_image() -> CurrentImage:
    """Draw the picker; return the current photo (a sample until the user picks one)."""
    if "image_data" not in st.session_state:
        use_sample(next(iter(SAMPLES)))

    samples, upload, camera = st.tabs(["Sample photos", "Upload", "Camera"])
    with samples:
        _gallery()
    with upload:
        _new_file("upload", st.file_uploader("Upload an image", type=list(SUPPORTED_FORMATS), key="upload",
                                             on_change=_removed, args=("upload",)))
    with camera:
        if st.toggle("Use the camera", key="camera_on"):
            _new_file("camera", st.camera_input("Take a photo", key="camera", on_change=_removed, args=("camera",)))
    return current_image()


def current_image() -> CurrentImage:
    """The current photo, without drawing anything (a sample until one is picked)."""
    if "image_data" not in st.session_state:
        use_sample(next(iter(SAMPLES)))
    state = st.session_state
    return CurrentImage(explanation_cache.display_image(state["image_hash"], state["image_data"]),
                        state["image_name"], state["image_hash"])


def current_sample() -> str | None:
    """The sample's file name when the current photo is a sample (a link can name it)."""
    source = st.session_state.get("image_source", "")
    return source.split(":", 1)[1] if source.startswith("sample:") else None
