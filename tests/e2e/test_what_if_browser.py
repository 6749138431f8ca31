"""What if? and Where will it look? in a real Chromium on the real server."""

import pytest

from e2e.browser import browser_page, exceptions_shown, open_explorer, wait_until_idle
from e2e.server import streamlit_server
from tests.e2e.test_browser import require_chromium

pytestmark = pytest.mark.browser


def test_covering_the_cup_makes_espresso_fall_and_a_quiz_round_is_played():
    require_chromium()
    cover_the_cup = "/?sample=cat-and-coffee.jpg&target=967&cover=0.50,0.00,1.00,1.00"
    with streamlit_server() as url, browser_page(width=390, height=900) as (page, console):
        page.set_default_timeout(120_000)  # a loaded 2-core machine: a page's first rerun can take long
        open_explorer(page, url + cover_the_cup)
        page.wait_for_selector("img[alt='What-if overlay']", timeout=120_000)
        wait_until_idle(page)
        line = page.locator("li", has_text="espresso").first.inner_text()
        assert "down" in line  # "▼ down 0.4 points": the cup is covered, espresso falls
        assert "cover=0.50" in page.url

        page.get_by_role("button", name="Clear").click()
        wait_until_idle(page, timeout=120)
        # The rerun ends before the browser has dropped the old image and rewritten the URL.
        page.locator("img[alt='What-if overlay']").first.wait_for(state="detached")
        page.wait_for_function("() => !window.location.search.includes('cover=')")
        assert page.locator("img[alt='What-if overlay']").count() == 0 and "cover=" not in page.url

        page.get_by_test_id("stExpandSidebarButton").click()
        page.get_by_role("link", name="Where will it look?").click()
        wait_until_idle(page, timeout=120)
        page.get_by_role("button", name="Reveal the map").click()
        page.wait_for_selector("img[alt='Quiz map']", timeout=120_000)
        wait_until_idle(page)
        assert page.get_by_text("strongest region").count() >= 1
        assert page.get_by_text("rounds played inside the strongest region").inner_text().startswith("Score: ")
        assert exceptions_shown(page) == []
        assert [text for kind, text in console if kind == "pageerror"] == []
