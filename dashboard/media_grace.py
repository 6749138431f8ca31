"""Images of a superseded run stay served for a few seconds.

Streamlit deletes a run's images the moment the next run of the session ends. A
browser that has not fetched them yet (the user pressed Next twice quickly, or left
for another page while an overlay was loading) then gets a 404 for each, and logs
"Image source error". Streamlit already gives download files one extra run; this
gives images a few seconds, then deletes them as Streamlit would. Memory stays
bounded: only images orphaned within the last GRACE_SECONDS are kept.

Like the Keras clean-up tweak in cached.py, this patches one Streamlit method; if a
release moves it, nothing breaks, the 404s just come back.
"""

from __future__ import annotations

import time

GRACE_SECONDS = 5.0


_NEEDED = ("_lock", "_file_metadata", "_get_inactive_file_ids", "_delete_file", "_remove_orphaned_deferred_callables")


def keep_superseded_images_briefly() -> None:
    try:
        from streamlit.runtime.media_file_manager import MediaFileKind, MediaFileManager
    except ImportError:
        return
    if getattr(MediaFileManager.remove_orphaned_files, "keeps_images", False):
        return
    if not all(hasattr(MediaFileManager, name) for name in _NEEDED[2:]):
        return  # a Streamlit release whose internals differ: keep its own behaviour

    def remove_orphaned_files(self) -> None:
        """Streamlit's own method, except that an image is deleted only once it has
        been unused for GRACE_SECONDS."""
        with self._lock:
            now = time.monotonic()
            orphaned_since = self.__dict__.setdefault("_orphaned_since", {})
            inactive = self._get_inactive_file_ids()
            for file_id in [f for f in orphaned_since if f not in inactive]:
                del orphaned_since[file_id]  # shown again, or deleted
            for file_id in inactive:
                file = self._file_metadata[file_id]
                if file.kind == MediaFileKind.MEDIA:
                    if now - orphaned_since.setdefault(file_id, now) >= GRACE_SECONDS:
                        self._delete_file(file_id)
                        del orphaned_since[file_id]
                elif file.is_marked_for_delete:  # downloads: Streamlit's rule, one extra run
                    self._delete_file(file_id)
                else:
                    file.mark_for_delete()
            self._remove_orphaned_deferred_callables()

    remove_orphaned_files.keeps_images = True
    MediaFileManager.remove_orphaned_files = remove_orphaned_files
