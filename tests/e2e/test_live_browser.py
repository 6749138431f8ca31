"""The Live page in Chromium with a fake camera playing the coffee photo: the overlay is on
the stream, the top-5 names the cup, Freeze opens the frame on Explore; without a camera, one
sentence and a link to the video mode; a video file is explained into an MP4 with its timeline,
and a click on a moment of the timeline opens that frame on Explore."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from e2e.browser import OVERLAY, browser_page, exceptions_shown, fake_camera, target_label
from e2e.server import ROOT, streamlit_server
from tests.e2e.test_browser import SCREENSHOTS, require_chromium
from videos import moving_cup, write_mp4, write_y4m

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The stream's picture, shrunk in the page to 64 x 48 (all that the comparison needs).
_VIDEO_PIXELS = """() => {
  const video = document.querySelector('video');
  if (!video || !video.videoWidth) return null;
  const canvas = document.createElement('canvas');
  canvas.width = 64; canvas.height = 48;
  const context = canvas.getContext('2d');
  context.drawImage(video, 0, 0, 64, 48);
  return Array.from(context.getImageData(0, 0, 64, 48).data);
}"""


def stream_pixels(page) -> np.ndarray | None:
    for frame in page.frames:
        if "streamlit_webrtc" in frame.url:
            data = frame.evaluate(_VIDEO_PIXELS)
            if data:
                return np.asarray(data, np.int16).reshape(48, 64, 4)[:, :, :3]
    return None


def test_the_camera_is_explained_live_and_freeze_opens_the_frame_on_explore(tmp_path):
    require_chromium()
    coffee = Image.open(ROOT / "samples" / "coffee.jpg")
    camera = write_y4m(tmp_path / "coffee.y4m", [coffee])
    plain = np.asarray(coffee.convert("RGB").resize((640, 480)).resize((64, 48), Image.BOX), np.int16)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with streamlit_server() as url, browser_page(extra_args=fake_camera(camera)) as (page, console):
        page.goto(url + "/Live")
        stream = page.frame_locator("iframe[title*='webrtc']")
        stream.get_by_role("button", name=re.compile("start the camera", re.I)).click(timeout=240_000)
        # The top-5 of the frames names the cup, refreshed while the camera runs.
        page.get_by_text("espresso:").first.wait_for(timeout=240_000)
        page.get_by_text("frames explained a second").first.wait_for(timeout=60_000)
        print(page.get_by_text("frames explained a second").first.inner_text())  # the readout, into the log
        # The overlay is on the stream: the picture differs from the camera's where the map is.
        deadline, changed = time.monotonic() + 120, 0.0
        while time.monotonic() < deadline and changed < 15:
            pixels = stream_pixels(page)
            changed = float(np.abs(pixels - plain).mean()) if pixels is not None else 0.0
            time.sleep(1)
        assert changed >= 15, changed
        page.screenshot(path=str(SCREENSHOTS / "live-camera-1400.png"))
        page.set_viewport_size({"width": 390, "height": 844})
        time.sleep(2)
        page.screenshot(path=str(SCREENSHOTS / "live-camera-390.png"), full_page=True)
        page.set_viewport_size({"width": 1400, "height": 1000})

        page.get_by_role("button", name="Freeze").click()
        # Explore, with the frozen frame as its photo (as if uploaded) and its own explanation of it.
        page.get_by_role("heading", name="Why did the model say that?").wait_for(timeout=120_000)
        page.locator(OVERLAY).first.wait_for(timeout=120_000)
        assert "espresso" in target_label(page)  # the frozen cup, not the cat sample Explore starts with
        page.screenshot(path=str(SCREENSHOTS / "live-freeze-explore-1400.png"))
        assert not exceptions_shown(page)


def timeline_points(chart) -> list[tuple[float, float]]:
    """The centres of the timeline's dots, left to right, in page pixels. The chart is drawn on a
    canvas (no element per dot), so they are found in its picture: the coloured blobs left of the
    legend (which sits right of the plot), in a chart of grey axes and text on white."""
    from scipy import ndimage

    box = chart.bounding_box()
    pixels = np.asarray(Image.open(io.BytesIO(chart.screenshot())).convert("RGB"), np.int16)
    coloured = (pixels.max(axis=2) - pixels.min(axis=2)) > 40
    blobs, count = ndimage.label(coloured)
    centres = [(x, y) for y, x in ndimage.center_of_mass(coloured, blobs, range(1, count + 1))]
    sizes = ndimage.sum(coloured, blobs, range(1, count + 1))
    dots = sorted(c for c, size in zip(centres, sizes) if size >= 20)
    scale = pixels.shape[1] / box["width"]  # the screenshot's pixels per page pixel
    return [(box["x"] + x / scale, box["y"] + y / scale) for x, y in dots]


def test_a_video_file_is_explained_into_an_mp4_with_its_timeline(tmp_path):
    require_chromium()
    frames, _ = moving_cup(frames=12)
    clip = write_mp4(tmp_path / "cup.mp4", frames, fps=6)
    with streamlit_server() as url, browser_page() as (page, console):
        page.goto(url + "/Live")
        page.get_by_text("Video file", exact=True).click(timeout=240_000)
        page.get_by_text("A video (MP4, WebM or MOV").wait_for(timeout=240_000)
        page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(str(clip))
        page.get_by_role("button", name="Explain the video").click(timeout=120_000)
        page.get_by_role("button", name="Download the MP4").wait_for(timeout=300_000)
        assert page.locator("video").count() >= 1
        page.get_by_text("The top-1 class over time").wait_for()
        page.get_by_text("explained (chosen from the measured speed)").first.wait_for()
        print(page.get_by_text("explained (chosen from the measured speed)").first.inner_text())
        page.screenshot(path=str(SCREENSHOTS / "live-video-1400.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        time.sleep(2)
        page.screenshot(path=str(SCREENSHOTS / "live-video-390.png"), full_page=True)
        assert not exceptions_shown(page)

        # A click on a moment of the timeline opens that frame on Explore: the second dot is the
        # second frame (1/6 s at 6 frames a second), the one Explore's record then names.
        page.set_viewport_size({"width": 1400, "height": 1000})
        chart = page.locator("[data-testid='stVegaLiteChart']").first
        chart.scroll_into_view_if_needed()
        time.sleep(2)
        points = timeline_points(chart)
        assert len(points) >= 12, points  # a dot a frame (and the legend's)
        page.mouse.click(*points[1])
        page.get_by_role("heading", name="Why did the model say that?").wait_for(timeout=120_000)
        page.locator(OVERLAY).first.wait_for(timeout=120_000)
        with page.expect_download() as download:
            page.get_by_role("button", name="Record (JSON)").click()
        record = json.loads(Path(download.value.path()).read_text())
        assert record["image"]["name"] == "cup.mp4 at 0.2 s.jpg", record["image"]
        page.screenshot(path=str(SCREENSHOTS / "live-timeline-explore-1400.png"))
        assert not exceptions_shown(page)


def test_without_a_camera_the_page_says_so_in_one_sentence_and_links_to_the_video_mode():
    require_chromium()
    # No fake camera: this headless Chromium has none (the fake UI answers any prompt, so nothing waits on a
    # person). classroom.test is this server by another name, an http:// page that is not localhost: where a
    # phone opening the laptop's address lands, and where browsers give no page a camera.
    flags = ["--use-fake-ui-for-media-stream", "--host-resolver-rules=MAP classroom.test 127.0.0.1"]
    with streamlit_server() as url, browser_page(extra_args=flags) as (page, console):
        page.goto(url + "/Live")
        page.get_by_text("No camera was found on this device: a video file can be explained instead.").wait_for(
            timeout=240_000)
        assert page.locator("iframe[title*='webrtc']").count() == 0  # no Start button that could only fail
        page.screenshot(path=str(SCREENSHOTS / "live-no-camera-1400.png"))
        page.set_viewport_size({"width": 390, "height": 844})
        time.sleep(2)
        page.screenshot(path=str(SCREENSHOTS / "live-no-camera-390.png"), full_page=True)
        page.get_by_role("link", name="Explain a video file instead").click()
        page.get_by_text("A video (MP4, WebM or MOV").wait_for(timeout=60_000)
        assert len(page.context.pages) == 1  # the same tab, so the same session and choices
        assert not exceptions_shown(page)

        page.goto(url.replace("127.0.0.1", "classroom.test") + "/Live")
        page.get_by_text("Browsers open a camera only on an https:// page or on localhost").wait_for(timeout=240_000)
        assert page.get_by_role("link", name="Explain a video file instead").count() == 1
        assert not exceptions_shown(page)
