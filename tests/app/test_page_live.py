"""The Live page through AppTest: a link with ?mode=video (the no-camera sentence's) opens the
video mode with Explore's pickers and the class picker. The camera stream needs a browser
(WebRTC): tests/e2e/test_live_browser.py."""

import pytest

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
    assert at.selectbox(key="live_method").value == "gradcam"  # Explore's own choice, shared


def test_live_shows_explores_choices_and_a_change_on_live_shows_on_explore():
    # Widgets belong to their page in Streamlit: Live keeps its own keys and shares the choices
    # (sharing Explore's keys reset the opacity to 0 and the layer to the first one).
    from streamlit.testing.v1 import AppTest

    from tests.app.pages import ROUTER, switch_to

    at = run(AppTest.from_file(ROUTER, default_timeout=240))
    assert (at.slider(key="opacity").value, at.selectbox(key="layer").value) == (0.4, "top_activation")
    at.session_state["live_mode"] = "video"
    run(switch_to(at, "live"))
    assert not at.exception
    assert (at.slider(key="live_opacity").value, at.selectbox(key="live_layer").value) == (0.4, "top_activation")
    at.slider(key="live_opacity").set_value(0.7)
    run(at)
    run(switch_to(at, "explore"))
    assert (at.slider(key="opacity").value, at.selectbox(key="layer").value) == (0.7, "top_activation")


@pytest.mark.slow
def test_the_model_is_shared_with_explore_through_lives_own_widget_and_the_page_says_so():
    # Sharing is the design (Freeze opens the frame on Explore, whose map should be the one seen
    # on Live), but through Live's own widget key: a key on two pages is two widgets.
    from streamlit.testing.v1 import AppTest

    from dashboard.pages.live import SHARED
    from tests.app.pages import ROUTER, switch_to

    at = run(AppTest.from_file(ROUTER, default_timeout=240))
    at.selectbox(key="model_choice").set_value("EfficientNet-Lite1")
    run(at)
    at.session_state["live_mode"] = "video"
    run(switch_to(at, "live"))
    assert not at.exception
    assert [box.key for box in at.sidebar.selectbox if box.label == "Model"] == ["live_model"]
    assert at.selectbox(key="live_model").value == "EfficientNet-Lite1"  # Explore's choice, shown here
    assert at.session_state["model_key"] == "EfficientNet-Lite1"
    assert SHARED in [caption.value for caption in at.sidebar.caption]
    at.selectbox(key="live_model").set_value("EfficientNet-Lite0")
    run(at)
    assert at.session_state["model_key"] == "EfficientNet-Lite0"
    run(switch_to(at, "explore"))
    assert not at.exception
    assert at.selectbox(key="model_choice").value == "EfficientNet-Lite0"  # changed on Live, said there
    at.selectbox(key="model_choice").set_value("EfficientNet-Lite1")
    run(at)
    run(switch_to(at, "live"))
    assert at.selectbox(key="live_model").value == "EfficientNet-Lite1"  # and Live follows Explore again


def test_the_method_picker_says_how_many_passes_sess_and_refinecam_run_here():
    """Before anything runs: SESS's 127 passes on Lite0 (224 px), RefineCAM's one per layer
    from the chosen one on (one at the last layer); other methods show their name alone."""
    at = page_app("live")
    at.query_params["mode"] = "video"
    run(at)
    options = at.selectbox(key="live_method").options
    assert "SESS (127 passes on this model)" in options
    assert "RefineCAM (1 pass on this model)" in options  # the last layer: nothing later to refine with
    assert "Grad-CAM" in options and "Score-CAM" in options
    at.selectbox(key="live_layer").set_value("block10_add")
    run(at)
    refine = next(o for o in at.selectbox(key="live_method").options if o.startswith("RefineCAM"))
    assert refine == "RefineCAM (3 passes on this model)"
