"""LiveExplainer: the latest frame wins (nothing queues), the map sits on the object, the
smoothing is the exponential average written out, and the drawn frame is the overlay."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

import gradcam
from gradcam.engine.live import LiveExplainer, LiveSettings
from videos import inside, moving_cup, peak


def wait_for(explainer, frame, seconds: float = 120.0):
    """The result of ``frame`` once it is explained."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = explainer.latest()
        if result is not None and result.frame is frame:
            return result
        time.sleep(0.02)
    raise AssertionError("the frame was never explained")


@pytest.fixture(scope="module")
def scene():
    """Two 640 x 480 camera frames: the cup on the left, then on the right."""
    frames, boxes = moving_cup(frames=2)
    canvas = [np.asarray(Image.fromarray(f).resize((640, 480), Image.BILINEAR)) for f in frames]
    scale = (640 / 560, 480 / 320)
    boxes = [tuple(round(v * scale[i % 2]) for i, v in enumerate(box)) for box in boxes]
    return canvas, boxes


@pytest.mark.slow
def test_the_latest_frame_wins_and_nothing_queues(lite0, scene, cat):
    frames, boxes = scene
    cat_frame = np.asarray(cat.resize((640, 480)))
    explainer = LiveExplainer(lite0, LiveSettings(smoothing=None))
    try:
        wait_for(explainer, explainer.submit(frames[0]) or frames[0])  # compiled and warm
        # A burst far faster than one explanation: all but a few are replaced while they wait.
        burst = [frames[i % 2].copy() for i in range(30)] + [cat_frame]
        for frame in burst:
            explainer.submit(frame)
        last = wait_for(explainer, cat_frame)
        stats = explainer.stats()
        assert "cat" in last.label
        assert stats.dropped >= 20  # dropped, never queued
        assert stats.explained <= 1 + 31 - stats.dropped
        assert 0 < last.latency < 60
    finally:
        explainer.close()


@pytest.mark.slow
def test_the_map_sits_on_the_cup_and_the_drawn_frame_is_the_overlay(lite0, scene):
    frames, boxes = scene
    explainer = LiveExplainer(lite0, LiveSettings(smoothing=None))
    try:
        for frame, box in zip(frames, boxes):
            explainer.submit(frame)
            result = wait_for(explainer, frame)
            assert result.label == "espresso"
            assert result.heatmap.shape == (480, 640)
            assert inside(peak(result.heatmap), box)
            drawn = explainer.draw(frame, alpha=0.6)
            expected = np.asarray(gradcam.overlay(Image.fromarray(frame), result.heatmap, 0.6, "jet"))
            np.testing.assert_array_equal(drawn, expected)
        # A later camera frame gets the newest map too (the video runs at the camera's rate).
        assert explainer.draw(frames[0], alpha=0.0) is frames[0]
    finally:
        explainer.close()


@pytest.mark.slow
def test_smoothing_is_the_exponential_average_and_the_raw_map_is_kept(lite0, scene):
    frames, _ = scene
    explainer = LiveExplainer(lite0, LiveSettings(smoothing=0.4))
    try:
        explainer.submit(frames[0])
        first = wait_for(explainer, frames[0])
        explainer.submit(frames[1])
        second = wait_for(explainer, frames[1])
        np.testing.assert_allclose(first.heatmap, first.raw_heatmap)
        np.testing.assert_allclose(second.heatmap, 0.4 * second.raw_heatmap + 0.6 * first.raw_heatmap, atol=1e-6)
        # The raw toggle draws the frame's own map.
        raw = explainer.draw(frames[1], alpha=0.5, raw=True)
        expected = np.asarray(gradcam.overlay(Image.fromarray(frames[1]), second.raw_heatmap, 0.5, "jet"))
        np.testing.assert_array_equal(raw, expected)
    finally:
        explainer.close()


@pytest.mark.slow
def test_a_bad_choice_is_one_sentence_and_the_explainer_keeps_serving(lite0, scene):
    frames, _ = scene
    explainer = LiveExplainer(lite0, LiveSettings(layer="no_such_layer", smoothing=None))
    try:
        explainer.submit(frames[0])
        deadline = time.monotonic() + 60
        while explainer.error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "no_such_layer" in explainer.error and "\n" not in explainer.error
        explainer.configure(LiveSettings(target="espresso", smoothing=None))
        explainer.submit(frames[1])
        assert wait_for(explainer, frames[1]).label == "espresso"
        assert explainer.error is None
    finally:
        explainer.close()
