"""boot(): what the app needs before its first page, started by the entry point.

Nothing here runs on import: ``streamlit_app.py`` calls ``boot()`` at the top of
every run, and everything after the first call returns at once.

The first visitor should not wait for the default model: boot() loads it and explains
the first sample with it in a background thread, into the very caches Explore reads,
while the page draws the photo and the pickers. explorer.py (the README's
`streamlit run explorer.py`) calls boot() as the server starts; with
`streamlit run streamlit_app.py` the first session's first run is the earliest moment
(Streamlit runs no app code before it). When the warm-up is done it says so on the
server's console. GRADCAM_WARM_START=0 turns it off: the AppTest suite does, so a
test's engine-call counts are its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import gradcam
from gradcam.intake import image_pool, model_pool, sandbox_session, sha256

from . import explanation_cache, model_cache
from .streamlit_patches import (keep_keras_state_between_reruns, keep_superseded_files_briefly,
                                settle_the_direct_run_check)

log = logging.getLogger(__name__)
DEFAULT_METHOD = "gradcam"  # Explore's first method (dashboard.parts.shared_state.DEFAULTS)
READY = "The default model is ready"  # the warm-up's line on the server's console

_booted = False
_lock = threading.Lock()

# On a cold start the warm-up's imports (TensorFlow: ~4 s on 2 CPUs) and a first visitor's
# page share one interpreter lock: a visitor who came at once saw the photo at 7.1 s instead of
# 3.8 s (quiet bench). So the warm-up lets a page that is already running draw its photo and
# pickers first; the overlay comes no later, since that page waits for the model anyway.
ARRIVAL_WAIT = 1.0  # seconds the warm-up waits for a visitor's run to begin (the bench's visitor: 0.4 s)
FIRST_VIEW_WAIT = 10.0  # the most it waits for that run's first view
_page_running = threading.Event()
_first_view = threading.Event()


def page_running() -> None:
    """The router calls this as a run begins its page."""
    _page_running.set()


def first_view_drawn() -> None:
    """A page has drawn what it can without the model (Explore: the photo and pickers; the
    router calls it after any page's run as well)."""
    _first_view.set()


def _let_the_first_view_draw() -> None:
    if _page_running.wait(ARRIVAL_WAIT):
        _first_view.wait(FIRST_VIEW_WAIT)


def boot(first_photo: Path | None = None) -> None:
    """Patch Streamlit (Keras state kept between reruns, superseded files kept briefly),
    start the image sandbox's workers, so the first upload does not wait for a worker to
    boot, and warm the default model on ``first_photo`` (the photo Explore opens on) in
    the background. Idempotent and cheap after the first call."""
    global _booted
    if _booted:
        return
    with _lock:
        if _booted:
            return
        keep_keras_state_between_reruns()
        keep_superseded_files_briefly()
        settle_the_direct_run_check()
        image_pool().start()
        if first_photo is not None and os.environ.get("GRADCAM_WARM_START", "1").strip() != "0":
            threading.Thread(target=warm_default_model, args=(first_photo,), name="gradcam-warm-start",
                             daemon=True).start()
        _booted = True


def warm_default_model(photo: Path) -> None:
    """Load the default model and explain ``photo`` with its default layer and method, through
    the caches the pages use: the first view then finds its model loaded and its maps made
    (a visitor who asks meanwhile waits for the same computation, never a second one)."""
    _let_the_first_view_draw()
    started = time.monotonic()
    try:
        data = photo.read_bytes()
        image_hash = sha256(data)
        model = model_cache.builtin_model(gradcam.DEFAULT_MODEL)
        image = explanation_cache.display_image(image_hash, data)
        layer = gradcam.default_layer(model).name
        explanation_cache.explain_top5(image_hash, gradcam.DEFAULT_MODEL, layer, DEFAULT_METHOD, image, model)
        import altair  # noqa: F401  Explore's top-5 chart: ~0.3 s of a first page's imports otherwise
    except Exception:  # a warm-up that fails costs only the head start: the page loads as before
        log.exception("warming the default model failed")
        return
    # On the console beside Streamlit's own lines (whoever started the server sees when the
    # first visit is instant; the browser test waits for this line).
    print(f"  {READY} ({gradcam.DEFAULT_MODEL} loaded and {photo.name} explained in "
          f"{time.monotonic() - started:.1f} s)", flush=True)


def start_model_sandbox() -> None:
    """Boot the model worker in the background (importing Keras there takes seconds), so
    it is ready by the time the person has picked a file. Idempotent."""
    model_pool().start()


def this_session_in_the_sandbox():
    """A context manager: sandbox reads inside it count as this browser session's, so the
    pools serve sessions in turn (a session flooding uploads cannot starve the others)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    return sandbox_session(getattr(context, "session_id", None))
