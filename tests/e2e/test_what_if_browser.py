"""What if? and Where will it look? in a real Chromium on the real server."""

import pytest

from e2e.browser import browser_page, drag_box, exceptions_shown, open_explorer, wait_until_idle
from e2e.server import streamlit_server
from tests.e2e.test_browser import require_chromium

pytestmark = pytest.mark.browser

CAT_AND_COFFEE = "/?sample=cat-and-coffee.jpg&target=967"  # 967: espresso
CUP = (0.5, 0.05, 0.98, 0.95)  # the cup fills the right half of the photo
CUP_INSIDE = [0.55, 0.05, 0.95, 0.95]
VEILED = 40  # the covered part is veiled in light grey: its mean brightness rises by ~75 of 255 here

# The drawing surface's photo, read back from the page: the mean brightness in a box
# (fractions), so a test sees whether the covered part is greyed out on it.
_BRIGHTNESS = """([x0, y0, x1, y1]) => {
  const img = document.querySelector("img[alt='What-if photo']")
      || [...document.querySelectorAll("*")].map((e) => e.shadowRoot).filter(Boolean)
             .map((r) => r.querySelector("img[alt='What-if photo']")).find(Boolean);
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  const [w, h] = [canvas.width, canvas.height];
  const pixels = context.getImageData(x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h).data;
  let sum = 0;
  for (let i = 0; i < pixels.length; i += 4) sum += (pixels[i] + pixels[i + 1] + pixels[i + 2]) / 3;
  return sum / (pixels.length / 4);
}"""


def espresso_after_covering(page) -> str:
    page.wait_for_selector("img[alt='What-if overlay']", timeout=120_000)
    wait_until_idle(page, timeout=120)
    return page.locator("li", has_text="espresso").first.inner_text()


def cleared(page) -> None:
    page.get_by_role("button", name="Clear").click()
    wait_until_idle(page, timeout=120)
    # The rerun ends before the browser has dropped the old image and rewritten the URL.
    page.locator("img[alt='What-if overlay']").first.wait_for(state="detached")
    page.wait_for_function("() => !window.location.search.includes('cover=')")
    assert page.locator("img[alt='What-if overlay']").count() == 0 and "cover=" not in page.url


def test_a_finger_and_a_mouse_cover_the_cup_at_390_px_a_link_redraws_it_and_a_quiz_round_is_played():
    require_chromium()
    # One phone-sized page with a touch screen (a mouse works there too): one server, one warm-up.
    with streamlit_server() as url, browser_page(width=390, height=900, touch=True) as (page, console):
        page.set_default_timeout(120_000)  # a loaded 2-core machine: a page's first rerun can take long
        # The link a teacher shares: the cup covered, drawn greyed out on the photo.
        open_explorer(page, url + CAT_AND_COFFEE + "&cover=0.50,0.00,1.00,1.00")
        assert "down" in espresso_after_covering(page)  # "▼ down 0.4 points": the cup is covered
        assert "cover=0.50" in page.url
        covered = page.evaluate(_BRIGHTNESS, CUP_INSIDE)
        cleared(page)
        page.wait_for_function(f"() => ({_BRIGHTNESS})({CUP_INSIDE}) < {covered - VEILED}")  # the box was drawn

        photo = page.get_by_role("img", name="The photo: drag across it to cover a box")
        for touch in (True, False):  # a finger, then the mouse
            photo.scroll_into_view_if_needed()
            drag_box(page, photo, CUP, touch=touch)
            assert "down" in espresso_after_covering(page)
            page.wait_for_function("() => window.location.search.includes('cover=0.50')")
            assert page.evaluate(_BRIGHTNESS, CUP_INSIDE) > covered - VEILED / 2  # the box drawn is on the photo
            cleared(page)

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
