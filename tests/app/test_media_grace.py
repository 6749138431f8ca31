"""A superseded run's images and download files stay served for a few seconds,
then go (no 404 for a browser that was still fetching them, and no memory kept for
good)."""

from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from dashboard.runtime import streamlit_patches as media_grace


def test_an_orphaned_image_or_download_is_served_for_the_grace_period_then_deleted(monkeypatch):
    media_grace.keep_superseded_files_briefly()  # as the dashboard does when it starts
    clock = [1000.0]
    monkeypatch.setattr(media_grace.time, "monotonic", lambda: clock[0])
    manager = MediaFileManager(MemoryMediaFileStorage("/media"))
    image = manager.add(b"\x89PNG old overlay", "image/png", "1.(0.2).0")
    download = manager.add(b"old record", "application/json", "1.(0.3).0", "r.json", is_for_static_download=True)
    image_id, download_id = image.rsplit("/", 1)[1].split(".")[0], download.rsplit("/", 1)[1].split(".")[0]

    manager.clear_session_refs()  # the next run began and drew other images
    manager.remove_orphaned_files()  # ... and ended
    assert manager.read_file(image_id) is not None  # a browser still fetching it gets it
    assert manager.read_file(download_id) is not None
    clock[0] += 2.0
    manager.remove_orphaned_files()  # a second quick run: Streamlit deleted the download here, and the
    assert manager.read_file(image_id) is not None  # browser's check of its button got a 404
    assert manager.read_file(download_id) is not None
    clock[0] += media_grace.GRACE_SECONDS
    manager.remove_orphaned_files()
    assert manager.read_file(image_id) is None  # then gone: memory is not kept for good
    assert manager.read_file(download_id) is None


def test_a_file_outlives_at_least_one_extra_run_however_long_the_run(monkeypatch):
    """Streamlit's own rule for downloads (one extra run) still holds after a long run."""
    media_grace.keep_superseded_files_briefly()
    clock = [1000.0]
    monkeypatch.setattr(media_grace.time, "monotonic", lambda: clock[0])
    manager = MediaFileManager(MemoryMediaFileStorage("/media"))
    download = manager.add(b"old record", "application/json", "1.(0.3).0", "r.json", is_for_static_download=True)
    download_id = download.rsplit("/", 1)[1].split(".")[0]
    clock[0] += 60  # the run that drew it was long
    manager.clear_session_refs()
    manager.remove_orphaned_files()  # the first run without it
    assert manager.read_file(download_id) is not None
    clock[0] += media_grace.GRACE_SECONDS
    manager.remove_orphaned_files()
    assert manager.read_file(download_id) is None


def test_a_run_that_ends_while_keras_imports_pyplot_ends_cleanly(monkeypatch):
    """After every run Streamlit closes pyplot's figures (our patch keeps Keras' state). On a
    cold start the warm-up imports Keras, which imports pyplot, while the first page's run ends:
    the module is then in sys.modules half made, without close() yet."""
    import sys
    import types

    from streamlit.runtime.scriptrunner import script_runner

    media_grace.keep_keras_state_between_reruns()
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", types.ModuleType("matplotlib.pyplot"))
    script_runner._clean_problem_modules()  # no AttributeError

    closed = []
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", types.SimpleNamespace(close=closed.append))
    script_runner._clean_problem_modules()
    assert closed == ["all"]
