"""Audit a dataset in a real Chromium on the real server: the demo's cheating cluster
is shown, and clicking a point of the maps' embedding shows that photo (Streamlit's
own chart selection event, which only a browser sends)."""

import pytest

from e2e.browser import browser_page, exceptions_shown, wait_until_idle
from e2e.server import streamlit_server
from tests.e2e.test_browser import require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_demo_audit_shows_the_flagged_cluster_and_a_clicked_point_shows_its_photo():
    require_chromium()
    with streamlit_server() as url, browser_page(width=1400, height=1600) as (page, console):
        page.set_default_timeout(180_000)  # a loaded 2-core machine: the first run imports TensorFlow
        page.goto(url + "/Audit")
        reason = page.get_by_text("In 24 of 24 'disc' photos the map sits on the same small patch").first
        reason.wait_for()
        assert "bottom right" in reason.inner_text() and "off the object" in reason.inner_text()
        mosaic = page.get_by_text("The cluster's mean map over 12 of its 24 'disc' photos")
        mosaic.first.wait_for()  # the page streams its elements: the mosaic comes after the reason
        wait_until_idle(page, timeout=180)
        assert mosaic.count() == 1

        point = page.locator("[data-testid='stVegaLiteChart'] path[aria-label*='path: disc/disc-01.jpg;']")
        point.scroll_into_view_if_needed()
        point.click()
        page.get_by_text("disc/disc-01.jpg: 'disc'").first.wait_for()
        page.wait_for_function("() => window.location.search.includes('audit_photo=disc%2Fdisc-01.jpg')")
        assert exceptions_shown(page) == []
        assert [text for kind, text in console if kind == "pageerror"] == []
