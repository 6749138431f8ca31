"""One real browser session on the real server: what only a browser shows."""

import os
import time
from pathlib import Path

import pytest

from dashboard.runtime.boot import READY
from e2e.browser import (
    OVERLAY, browser_page, chromium_path, exceptions_shown, open_explorer, press_on_slider, target_label, timed,
    upload_photo, wait_until_idle,
)
from e2e.server import streamlit_server, wait_for_output

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

WAITING = "the heatmap appears here once EfficientNet-Lite0 is ready"

# Installed before the page's own scripts: every text the page ever shows is checked as it
# changes, so a state that came and went between two looks of the test is still seen.
_RECORD_WAITING = """
window.__waitingSeen = false;
new MutationObserver(() => {
  if (document.body && document.body.textContent.includes(%r)) window.__waitingSeen = true;
}).observe(document, {subtree: true, childList: true, characterData: true});
""" % WAITING


_ALL_PICTURES_SHOWN = """() => [...document.querySelectorAll("[data-testid='stMainBlockContainer'] img")]
    .every((image) => image.complete && image.naturalWidth > 0)"""


def require_chromium():
    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI; scripts/test.sh installs it")
        pytest.skip("no Chromium on this machine (apt-get install -y chromium)")


def test_upload_explain_and_move_the_opacity_in_chromium(tmp_path, coffee):
    require_chromium()
    photo = tmp_path / "coffee.jpg"
    coffee.save(photo, quality=92)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with streamlit_server() as url, browser_page() as (page, console):
        open_explorer(page, url)
        assert "Egyptian cat" in target_label(page) or "tabby" in target_label(page)
        page.screenshot(path=str(SCREENSHOTS / "explore-start.png"))

        timed(page, lambda: upload_photo(page, photo), timeout=120)  # a new overlay, loaded
        wait_until_idle(page)
        assert "espresso" in target_label(page)

        for _ in range(6):  # 0.40 -> 0.70, one step at a time as a person would see each
            timed(page, lambda: press_on_slider(page, "ArrowRight"))
            wait_until_idle(page)
        assert page.get_by_text("Grad-CAM overlay, opacity 0.70").count() == 1
        page.get_by_role("tab", name="Sample photos").click()
        page.screenshot(path=str(SCREENSHOTS / "explore-coffee.png"))

        # A broken file dropped on the uploader that holds the coffee: the browser removes the old file first,
        # then sends the new one; the coffee must stay (it went back to the cat sample once).
        broken = tmp_path / "holiday.jpg"
        broken.write_bytes((tmp_path / "coffee.jpg").read_bytes()[:300])
        upload_photo(page, broken)
        page.get_by_text("The current photo stays: coffee.jpg.").wait_for(timeout=120_000)
        wait_until_idle(page, timeout=120)
        assert "espresso" in target_label(page)

        # The kept photo on the Trust page, which really renders: its verdict on the coffee's map is shown.
        page.get_by_role("link", name="Can I trust it?").first.click()
        verdict = page.locator("[data-testid='stAlert']", has_text="random maps").first
        verdict.wait_for(timeout=300_000)
        assert "espresso" in verdict.inner_text()
        wait_until_idle(page, timeout=300)
        page.screenshot(path=str(SCREENSHOTS / "page-trust.png"))

        assert exceptions_shown(page) == []
        errors = [text for kind, text in console if kind in ("error", "pageerror")]
        assert errors == []


PAGES = ["How Grad-CAM works", "Compare", "Report", "Batch"]  # the sidebar's names, as in streamlit_app.py


def test_every_page_renders_in_chromium():
    """A person starts on Explore and visits each page from the sidebar."""
    require_chromium()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, browser_page(1400, 1300) as (page, console):
        open_explorer(page, url)
        for title in PAGES:
            page.get_by_role("link", name=title).first.click()
            page.wait_for_timeout(500)
            wait_until_idle(page, timeout=120)
            page.wait_for_selector("[data-testid='stImage'], [data-testid='stFileUploader']", timeout=120_000)
            page.wait_for_timeout(500)
            wait_until_idle(page, timeout=120)
            page.screenshot(path=str(SCREENSHOTS / f"page-{title.split()[0].lower()}.png"))
            assert exceptions_shown(page) == [], title
            if title == "How Grad-CAM works":  # a presenter pressing Next quickly: no 404 for superseded images
                for _ in range(3):
                    page.get_by_role("button", name="Next").first.click()
                    page.wait_for_timeout(150)
                wait_until_idle(page, timeout=120)
        page.get_by_role("link", name="Explore").first.click()
        page.wait_for_selector(OVERLAY, timeout=120_000)
        assert exceptions_shown(page) == []
        errors = [text for kind, text in console if kind in ("error", "pageerror")]
        assert errors == []


def test_a_shared_link_opens_compare_through_the_app_and_its_view_carries_on():
    """A link straight to /Compare runs the app's entry point (the named sidebar),
    shows the linked view, and the next page keeps it."""
    require_chromium()
    link = "/Compare?sample=cat-and-coffee.jpg&model=EfficientNet-Lite1&layer=block10_add&target=967&compare=classes"
    with streamlit_server() as url, browser_page(1400, 1300) as (page, console):
        page.goto(url + link)
        page.wait_for_selector("[data-testid='stImage']", timeout=120_000)
        wait_until_idle(page, timeout=120)
        heading = "cat-and-coffee.jpg · model EfficientNet-Lite1 · at layer block10_add"
        page.get_by_text(heading).first.wait_for(timeout=60_000)
        assert page.get_by_role("tab", name="Classes", selected=True).count() == 1
        page.get_by_role("link", name="How Grad-CAM works").first.click()  # only the app's own sidebar has it
        wait_until_idle(page, timeout=120)
        page.get_by_text(heading).first.wait_for(timeout=60_000)
        assert page.get_by_role("combobox", name="Class to explain").input_value().startswith("espresso")
        assert exceptions_shown(page) == []


def pick_in_box(page, name: str, option: str) -> None:
    """Choose an option of a select box by typing, as a person with a keyboard does."""
    page.get_by_role("combobox", name=name).click()
    page.keyboard.type(option)
    page.keyboard.press("Enter")


def compare_heading(page) -> str:
    page.get_by_text("Change these on the Explore page.").first.wait_for(timeout=120_000)
    return page.get_by_text("Change these on the Explore page.").first.inner_text()


def test_a_cold_start_shows_the_page_at_once_and_choices_survive_pages_and_history(tmp_path):
    """One session on a cold server (an empty conversion cache):
    - the first visit shows the title, the photo, the sample thumbnails and a spinner before the
      model is ready, all sent with the page (inline pictures: nothing waits on a second request);
    - a layer picked while "Explaining..." still shows, then Compare clicked at once: Compare
      shows that layer, and so does Explore afterwards (the newest choice wins);
    - Back and Forward go through the photos picked, and Back from a page goes to the page before."""
    require_chromium()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # No warm-up: boot()'s background thread can finish the first map before the page draws, so the
    # waiting state this test looks at may never show (a full run saw only the overlay). Cold means cold here.
    with streamlit_server(env={"GRADCAM_CACHE_DIR": str(tmp_path), "GRADCAM_WARM_START": "0"}) as url, \
            browser_page() as (page, console):
        page.goto(url)
        waiting = page.get_by_text(WAITING)
        waiting.first.wait_for(timeout=120_000)  # the photo, with its caption, while Lite0 converts
        assert page.get_by_text("Why did the model say that?").count() == 1
        assert page.locator(OVERLAY).count() == 0
        assert page.locator("[data-testid='stExpanderIconSpinner']").count() == 1  # drawn before the photo
        pictures = page.locator("[data-testid='stMainBlockContainer'] img")
        assert pictures.count() == 6  # five thumbnails and the photo
        assert all(source.startswith("data:image/jpeg;base64,") for source in pictures.evaluate_all(
            "(images) => images.map((image) => image.src)"))
        page.wait_for_function(_ALL_PICTURES_SHOWN, timeout=10_000)  # decoded in the page, no request
        page.screenshot(path=str(SCREENSHOTS / "explore-cold-start.png"))
        page.wait_for_selector(OVERLAY, timeout=180_000)
        wait_until_idle(page, timeout=120)
        assert waiting.count() == 0 and list(tmp_path.iterdir())  # converted into the empty cache

        # A new layer is a new compiled function: its run lasts long enough to be cut short.
        pick_in_box(page, "Layer", "block0_project_conv")
        # Compare is clicked while the pick's run explains, once that run has begun ("Explaining..."
        # shows): a click before the server had begun it lost the pick in 1 full run under load
        # (not chased further; said in the issue note).
        page.get_by_text("Explaining...").first.wait_for(timeout=30_000)
        page.get_by_role("link", name="Compare").first.click()
        wait_until_idle(page, timeout=120)
        assert "layer block0_project_conv" in compare_heading(page)
        page.get_by_role("link", name="Explore").first.click()
        page.wait_for_selector(OVERLAY, timeout=120_000)
        wait_until_idle(page, timeout=120)
        assert page.get_by_role("combobox", name="Layer").input_value().startswith("block0_project_conv")
        assert "layer=block0_project_conv" in page.url

        timed(page, lambda: page.get_by_role("button", name="Espresso").click())
        wait_until_idle(page)
        # The address is written after the overlay is drawn: a busy machine shows the label first.
        page.wait_for_function("() => location.search.includes('sample=coffee.jpg')", timeout=60_000)
        assert "espresso" in target_label(page)
        page.go_back()  # the cat again, at the layer picked
        page.wait_for_function("() => !location.search.includes('coffee')")
        wait_until_idle(page, timeout=120)
        page.wait_for_timeout(500)
        wait_until_idle(page, timeout=120)
        assert target_label(page).split("  (")[0] in ("Egyptian cat", "tabby", "tiger cat")
        assert page.get_by_role("combobox", name="Layer").input_value().startswith("block0_project_conv")
        page.go_forward()
        page.wait_for_function("() => location.search.includes('coffee')")
        wait_until_idle(page, timeout=120)
        page.wait_for_timeout(500)
        wait_until_idle(page, timeout=120)
        assert "espresso" in target_label(page)

        page.get_by_role("link", name="Compare").first.click()  # one history entry, holding the view
        assert compare_heading(page).startswith("coffee.jpg · model EfficientNet-Lite0 · at layer block0_project_conv")
        wait_until_idle(page, timeout=120)
        assert "/Compare?" in page.url and "sample=coffee.jpg" in page.url
        page.go_back()  # to Explore, not to a second Compare entry
        page.get_by_text("Why did the model say that?").first.wait_for(timeout=120_000)
        page.wait_for_selector(OVERLAY, timeout=120_000)
        wait_until_idle(page, timeout=120)
        assert "/Compare" not in page.url and "espresso" in target_label(page)
        assert exceptions_shown(page) == []
        errors = [text for kind, text in console if kind in ("error", "pageerror")]
        assert errors == []


def test_the_first_visitor_finds_the_default_model_converted_and_the_first_map_made(tmp_path):
    """The README's command on an empty conversion cache: the server converts EfficientNet-Lite0
    and explains the first sample before anyone visits (its console says so, and the converted
    file is older than the visit), and the first visitor's page never waits for the model: it
    never shows the photo captioned "the heatmap appears here once ... is ready", which the
    page draws whenever the model is not loaded yet (with `streamlit run streamlit_app.py` the
    first visitor pays the conversion: the console line never comes before a visit)."""
    require_chromium()
    with streamlit_server(env={"GRADCAM_CACHE_DIR": str(tmp_path)}) as url:
        wait_for_output(READY, timeout=400)  # no browser has connected yet
        converted = [path.stat().st_mtime for path in tmp_path.rglob("*") if path.is_file()]
        visit = time.time()
        assert converted and max(converted) < visit
        with browser_page() as (page, console):
            page.add_init_script(_RECORD_WAITING)
            page.goto(url)
            page.wait_for_selector(OVERLAY, timeout=120_000)
            wait_until_idle(page, timeout=120)
            assert page.evaluate("window.__waitingSeen") is False
            assert target_label(page).split("  (")[0] in ("Egyptian cat", "tabby", "tiger cat")
            assert [path.stat().st_mtime for path in tmp_path.rglob("*") if path.is_file()] == converted
            assert exceptions_shown(page) == []
            assert [text for kind, text in console if kind in ("error", "pageerror")] == []


SIDEBAR_OPEN = "[data-testid=stSidebarCollapseButton] button[aria-expanded=true]"


def test_a_phone_sees_the_result_on_its_first_screen_and_the_sidebar_closes_after_a_page_link():
    """390 x 844, a phone's screen: the five samples sit in two short rows (not five
    full-width ones), the overlay starts on the first screen, and a page picked in the
    sidebar is not left covered by it."""
    require_chromium()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server() as url, browser_page(390, 844) as (page, console):
        open_explorer(page, url)
        samples = [page.get_by_role("button", name=name, exact=True).bounding_box()
                   for name in ("Cat", "Espresso", "Cat and coffee", "Rocket launch", "Astronaut")]
        assert len({round(box["y"]) for box in samples}) == 2  # two rows of buttons
        assert all(box["x"] + box["width"] <= 390 for box in samples)  # nothing scrolls sideways
        assert page.locator(OVERLAY).bounding_box()["y"] < 844 - 150  # the result starts on the first screen
        page.screenshot(path=str(SCREENSHOTS / "phone-explore.png"))

        page.locator("[data-testid='stExpandSidebarButton']").first.click()
        page.get_by_role("link", name="Compare").first.wait_for(state="visible")
        timed(page, lambda: press_on_slider(page, "ArrowRight"))  # a rerun of the same page from the sidebar ...
        wait_until_idle(page)
        assert page.locator(SIDEBAR_OPEN).count() == 1  # ... leaves it open for the next move
        page.get_by_role("link", name="Compare").first.click()
        page.get_by_text("Change these on the Explore page.").first.wait_for(timeout=120_000)
        wait_until_idle(page, timeout=120)
        page.wait_for_function(f"() => !document.querySelector('{SIDEBAR_OPEN}')", timeout=10_000)
        assert page.locator("[data-testid='stExpandSidebarButton']").first.is_visible()
        page.screenshot(path=str(SCREENSHOTS / "phone-compare.png"))
        assert exceptions_shown(page) == []
