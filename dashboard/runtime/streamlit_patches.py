"""Two patches to Streamlit internals, applied by boot(). If a Streamlit release moves
what they patch, nothing breaks: we only lose what they bring.

Keras state kept between reruns. Streamlit calls keras.backend.clear_session() after
every rerun (script_runner._clean_problem_modules) for apps that build a model on
each run. Ours are built once and cached, and for us it is harmful: it empties
TensorFlow's kernel cache, so every rerun re-optimises the compiled Grad-CAM (~250 ms
instead of ~20 ms), it runs a full garbage collection, and it resets Keras' graph
state while other sessions may be mid-trace. We keep the rest of that clean-up
(closing matplotlib figures).

Files of a superseded run stay served for a few seconds.

Streamlit deletes a run's images the moment the next run of the session ends. A
browser that has not fetched them yet (the user pressed Next twice quickly, or left
for another page while an overlay was loading) then gets a 404 for each, and logs
"Image source error". Download files get one extra run, which is not enough either:
the browser fetches every download button's file once to check it, and two quick
runs (a file dropped on an uploader sends the old file's removal and the new file as
two runs) deleted it first ("Download Button source error - 404", seen in the
browser test). So every file is deleted only once it has been unused for
GRACE_SECONDS. Memory stays bounded: only files orphaned within the last
GRACE_SECONDS are kept; the large downloads are callables, built on click, and
hold nothing.
"""

from __future__ import annotations

import sys
import time

GRACE_SECONDS = 5.0


def keep_keras_state_between_reruns() -> None:
    """Stop Streamlit from calling keras.backend.clear_session() after every rerun."""
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:
        return
    if getattr(script_runner._clean_problem_modules, "keeps_keras", False):
        return

    def clean_problem_modules_but_keras() -> None:
        # Keras imports pyplot: the warm-up may be importing it while a page's run ends,
        # and a half-made module has no close() yet.
        close = getattr(sys.modules.get("matplotlib.pyplot"), "close", None)
        if close is not None:
            close("all")

    clean_problem_modules_but_keras.keeps_keras = True
    script_runner._clean_problem_modules = clean_problem_modules_but_keras


# The methods this relies on (the instance also needs its _lock, which every release has had).
_NEEDED = ("_get_inactive_file_ids", "_delete_file", "_remove_orphaned_deferred_callables")


def keep_superseded_files_briefly() -> None:
    try:
        from streamlit.runtime.media_file_manager import MediaFileManager
    except ImportError:
        return
    if getattr(MediaFileManager.remove_orphaned_files, "keeps_files", False):
        return
    if not all(hasattr(MediaFileManager, name) for name in _NEEDED):
        return  # a Streamlit release whose internals differ: keep its own behaviour

    def remove_orphaned_files(self) -> None:
        """Streamlit's own method, except that a file is deleted only once it has
        been unused for GRACE_SECONDS."""
        with self._lock:
            now = time.monotonic()
            orphaned_since = self.__dict__.setdefault("_orphaned_since", {})
            inactive = self._get_inactive_file_ids()
            for file_id in [f for f in orphaned_since if f not in inactive]:
                del orphaned_since[file_id]  # shown again, or deleted
            for file_id in inactive:
                # The first pass that finds a file unused only starts its clock, so every file,
                # a download too, also outlives one extra run, as Streamlit's own rule for downloads.
                if now - orphaned_since.setdefault(file_id, now) >= GRACE_SECONDS:
                    self._delete_file(file_id)
                    del orphaned_since[file_id]
            self._remove_orphaned_deferred_callables()

    remove_orphaned_files.keeps_files = True
    MediaFileManager.remove_orphaned_files = remove_orphaned_files


def settle_the_direct_run_check() -> None:
    """Streamlit checks once, at the first element a page draws, whether it runs under
    `streamlit run`, with inspect.stack(), which finds every frame's module by walking all of
    sys.modules: with TensorFlow's thousands of modules loaded, that was ~0.4 s of a first
    page's time (py-spy, a visitor arriving after the warm-up). Run here, before TensorFlow
    is imported, it takes milliseconds; it prints nothing under `streamlit run`."""
    try:
        from streamlit.delta_generator import _maybe_print_use_warning
    except ImportError:
        return
    _maybe_print_use_warning()
