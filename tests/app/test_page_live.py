"""The Live page through AppTest: a link with ?mode=video (the no-camera sentence's) opens the
video mode with Explore's pickers and the class picker. The camera stream needs a browser
(WebRTC): tests/e2e/test_live_browser.py."""

from tests.app.pages import page_app
from tests.app.test_app import run


def test_a_link_with_mode_video_opens_the_video_mode():
    at = page_app("live")
    at.query_params["mode"] = "video"
    run(at)
    assert not at.exception
    assert at.session_state["live_mode"] == "video"
    assert any("Every N-th frame is explained" in c.value for c in at.caption)
    assert at.selectbox(key="live_class").value == "Top-1 of each frame"
    assert at.selectbox(key="method").value == "gradcam"  # Explore's own choice, shared
