"""The Clever Hans demo's whole story in a real Chromium on the real server: the audit
finds the tag (find, prove), one click fixes it and audits the corrected model again,
and the corrected model downloads as a .keras file that loads in safe mode."""

import numpy as np
import pytest

from e2e.browser import browser_page, exceptions_shown, wait_until_idle
from e2e.server import streamlit_server
from tests.e2e.test_browser import require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_demo_goes_find_prove_fix_re_audit_and_the_fixed_model_downloads(tmp_path):
    import keras

    import gradcam
    from gradcam.zoo import clever_hans

    require_chromium()
    with streamlit_server() as url, browser_page(width=1400, height=1600) as (page, console):
        page.set_default_timeout(240_000)  # a loaded 2-core machine: the first run imports TensorFlow
        page.goto(url + "/Audit")
        page.get_by_text("In 24 of 24 'disc' photos the map sits on the same small patch").first.wait_for()
        wait_until_idle(page, timeout=240)
        page.get_by_role("button", name="Fix 'disc' cluster 1 and audit again").first.click()
        page.get_by_text("It must be retrained on data without the cue.").first.wait_for()
        page.get_by_text("no cluster looks like a shortcut").first.wait_for()  # the re-audit
        wait_until_idle(page, timeout=240)
        with page.expect_download() as download:
            page.get_by_role("button", name="Corrected model (.keras)").click()
        saved = tmp_path / "corrected.keras"
        download.value.save_as(saved)
        assert exceptions_shown(page) == []
        assert [text for kind, text in console if kind == "pageerror"] == []
    import gradcam.layers  # noqa: F401  (registers the correction's layer)

    loaded = keras.saving.load_model(saved, safe_mode=True)
    assert any(layer.name.endswith("_pclarc") for layer in loaded.layers)
    model = clever_hans.load()
    photo = gradcam.load_image(sorted((clever_hans.PHOTOS / "square").glob("*.jpg"))[0])
    x = model.prepare(photo)
    assert np.argmax(loaded.predict(x, verbose=0)) == model.labels.index("square")
