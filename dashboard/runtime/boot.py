"""boot(): what the app needs before its first page, started by the entry point.

Nothing here runs on import: ``streamlit_app.py`` calls ``boot()`` at the top of
every run, and everything after the first call returns at once.
"""

from __future__ import annotations

import threading

from gradcam.intake import image_pool, model_pool, sandbox_session

from .streamlit_patches import keep_keras_state_between_reruns, keep_superseded_files_briefly

_booted = False
_lock = threading.Lock()


def boot() -> None:
    """Patch Streamlit (Keras state kept between reruns, superseded files kept briefly)
    and start the image sandbox's workers, so the first upload does not wait for a
    worker to boot. Idempotent and cheap after the first call."""
    global _booted
    if _booted:
        return
    with _lock:
        if _booted:
            return
        keep_keras_state_between_reruns()
        keep_superseded_files_briefly()
        image_pool().start()
        _booted = True


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
