"""Headless Chromium (Debian's, never a downloaded one) driven by Playwright, and
the few things a person does on the Explore page."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # This machine has no network: without these Chromium keeps trying to call home.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def fake_camera(y4m) -> list[str]:
    """Chromium flags for a camera that plays ``y4m`` (4:2:0) in a loop, allowed without asking.
    Chromium hides its own address behind an mDNS name in WebRTC; aiortc on the server cannot
    resolve those names, so the test shows the plain address (a real browser on another machine
    reaches the server through the same host candidates on a local network)."""
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={y4m}", "--disable-features=WebRtcHideLocalIpsWithMdns"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def browser_pages(count: int, width: int = 1400, height: int = 1000):
    """Yield ``count`` pages, each in its own browser context: separate cookies and
    storage, so each is its own Streamlit session, as separate people would be."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        try:
            pages = [browser.new_context(viewport={"width": width, "height": height}).new_page()
                     for _ in range(count)]
            yield pages
        finally:
            browser.close()


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000, touch: bool = False, extra_args: tuple = ()):
    """Yield (page, console messages) in a fresh headless Chromium profile; ``touch``: a phone's
    (a touch screen and a mobile viewport); ``extra_args``: more Chromium flags (a fake camera)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium_path(), headless=True, args=[*CHROMIUM_FLAGS, *extra_args],
            viewport={"width": width, "height": height}, has_touch=touch, is_mobile=touch,
        )
        page = context.pages[0] if context.pages else context.new_page()
        console: list = []
        page.on("console", lambda message: console.append((message.type, message.text)))
        page.on("pageerror", lambda error: console.append(("pageerror", str(error))))
        try:
            yield page, console
        finally:
            context.close()


OVERLAY = "img[alt='Grad-CAM overlay']"




_WATCH_OVERLAY = """() => {
    const find = () => document.querySelector("%s");
    const before = find()?.src;
    window.__overlayShown = null;
    const start = performance.now();
    const check = () => {
        const img = find();
        if (img && img.src !== before && img.complete && img.naturalWidth) {
            window.__overlayShown = performance.now() - start;
        } else {
            requestAnimationFrame(check);
        }
    };
    requestAnimationFrame(check);
}""" % OVERLAY


def watch_overlay(page) -> None:
    """Start timing, inside the page, until a new overlay image has loaded."""
    page.evaluate(_WATCH_OVERLAY)


def overlay_shown_after(page, timeout: float = 60.0) -> float:
    page.wait_for_function("() => window.__overlayShown !== null", timeout=timeout * 1000, polling=10)
    return page.evaluate("() => window.__overlayShown") / 1000.0


def timed(page, action, timeout: float = 60.0) -> float:
    """Seconds from ``action()`` to a new overlay image loaded in the page, timed
    inside the browser (checked every frame), so the test driver's polling adds nothing."""
    watch_overlay(page)
    action()
    return overlay_shown_after(page, timeout)


def open_explorer(page, url: str, timeout: float = 120.0) -> None:
    page.goto(url)
    page.wait_for_selector(OVERLAY, timeout=timeout * 1000)
    wait_until_idle(page)


def wait_until_idle(page, timeout: float = 60.0, settle_ms: int = 300) -> None:
    """Wait until Streamlit has finished its rerun and the page has drawn it: the app's own
    script state (the frontend's ``data-test-script-state``) says not running, its status widget
    is gone, and the page's elements have not changed in number for ``settle_ms``. The widget
    alone was not enough: a run served from the cache ends before the widget shows, and the
    Audit page's pictures were drawn 0.2 s after the state said not running (0.6 s after the
    text above them)."""
    page.wait_for_timeout(150)
    page.evaluate("() => { window.__idleCount = -1; window.__idleSince = 0; }")
    page.wait_for_function(
        """settle => {
            const app = document.querySelector('[data-testid="stApp"]');
            const state = app && app.getAttribute('data-test-script-state');
            const idle = (state === 'notRunning' || state === 'compilationError')
                && !document.querySelector('[data-testid="stStatusWidget"]');
            const count = document.querySelectorAll('[data-testid]').length;
            if (!idle || count !== window.__idleCount) {
                window.__idleCount = idle ? count : -1;
                window.__idleSince = performance.now();
                return false;
            }
            return performance.now() - window.__idleSince >= settle;
        }""", arg=settle_ms, timeout=timeout * 1000, polling=50,
    )


def upload_photo(page, path: Path) -> None:
    page.get_by_role("tab", name="Upload").click()
    page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(str(path))


def press_on_slider(page, key: str, times: int = 1) -> None:
    """Move the Opacity slider by keyboard, as a person can."""
    thumb = page.get_by_role("slider").first
    thumb.focus()
    for _ in range(times):
        thumb.press(key)


def target_label(page) -> str:
    """The Target class box's shown value."""
    return page.get_by_role("combobox", name="Target class").input_value()


def pick_prediction(page, label: str) -> None:
    page.locator("[data-testid='stRadio'] label", has_text=label).first.click()


def drag_box(page, target, box, *, touch: bool = False, steps: int = 8) -> None:
    """Drag across ``target`` (a locator) from one corner of ``box`` to the other (fractions
    of its size), with the mouse, or with one finger through Chromium's touch input."""
    area = target.bounding_box()
    x0, y0, x1, y1 = (area["x"] + box[0] * area["width"], area["y"] + box[1] * area["height"],
                      area["x"] + box[2] * area["width"], area["y"] + box[3] * area["height"])
    path = [(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps) for i in range(steps + 1)]
    if not touch:
        page.mouse.move(*path[0])
        page.mouse.down()
        for point in path[1:]:
            page.mouse.move(*point)
        page.mouse.up()
        return
    # Playwright's touchscreen only taps; a finger's drag goes through the DevTools protocol.
    session = page.context.new_cdp_session(page)
    kinds = ["touchStart"] + ["touchMove"] * steps
    for kind, (x, y) in zip(kinds, path):
        session.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
    session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    session.detach()


def exceptions_shown(page) -> list[str]:
    return page.locator("[data-testid='stException']").all_inner_texts()
