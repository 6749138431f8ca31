"""explain_video: every N-th frame explained with the batched engine, the maps between
interpolated, an MP4 written; the map follows a moving object frame by frame."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest
from PIL import Image

import gradcam
from gradcam.engine.video import MAX_EXPLAINED, MapSmoother, choose_every, key_frames
from videos import inside, moving_cup, moving_object, peak, write_mp4


@pytest.fixture(scope="module")
def cup_clip(tmp_path_factory):
    frames, boxes = moving_cup(frames=24)
    return write_mp4(tmp_path_factory.mktemp("video") / "cup.mp4", frames, fps=12), boxes


@pytest.fixture(scope="module")
def cup_every_3(lite0, cup_clip, tmp_path_factory):
    path, _ = cup_clip
    out = tmp_path_factory.mktemp("out") / "cup-gradcam.mp4"
    return gradcam.explain_video(lite0, path, str(out), every=3), out


@pytest.mark.slow
def test_the_map_follows_the_cup_frame_by_frame(cup_clip, cup_every_3):
    _, boxes = cup_clip
    result, _ = cup_every_3
    assert len(result) == 24 and result.size == (560, 320) and result.every == 3
    xs = []
    for explanation, box in zip(result, boxes):
        assert explanation.heatmap.shape == (320, 560)  # the frame's own size
        assert explanation.label == "espresso"
        assert inside(peak(explanation.heatmap), box), (peak(explanation.heatmap), box)
        xs.append(peak(explanation.heatmap)[0])
    # The cup slides left to right, and so does the map's peak: never back, and across most of the frame.
    assert all(b >= a for a, b in zip(xs, xs[1:]))
    assert xs[-1] - xs[0] > 250


@pytest.mark.slow
def test_frames_between_key_frames_are_blends_marked_interpolated(cup_every_3):
    result, _ = cup_every_3
    keys = [i for i, e in enumerate(result) if not e.interpolated]
    assert keys == [0, 3, 6, 9, 12, 15, 18, 21, 23]  # every 3rd, and the last one
    # Frame 4 is a third of the way from key frame 3 to key frame 6.
    expected = (2 / 3) * result[3].heatmap + (1 / 3) * result[6].heatmap
    np.testing.assert_allclose(result[4].heatmap, expected, atol=1e-6)
    assert result[4].predictions == result[3].predictions  # the nearer key frame's classes


@pytest.mark.slow
def test_the_mp4_holds_every_frame_with_the_overlay(cup_every_3, cup_clip):
    result, out = cup_every_3
    path, _ = cup_clip
    with av.open(str(out)) as written, av.open(str(path)) as original:
        stream = written.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (560, 320)
        frames = [f.to_ndarray(format="rgb24") for f in written.decode(stream)]
        plain = [f.to_ndarray(format="rgb24") for f in original.decode(original.streams.video[0])]
    assert len(frames) == 24
    # Each written frame is the overlay of its own map (up to H.264's loss), not the plain frame.
    for i in (0, 4, 12, 23):
        drawn = np.asarray(gradcam.overlay(Image.fromarray(plain[i]), result[i].heatmap, 0.4, "jet"), np.int16)
        assert np.abs(frames[i].astype(np.int16) - drawn).mean() < 4
        assert np.abs(frames[i].astype(np.int16) - plain[i]).mean() > 20


@pytest.mark.slow
def test_smoothing_is_an_exponential_average_of_the_raw_maps(lite0, cup_clip, cup_every_3):
    path, _ = cup_clip
    raw, _ = cup_every_3
    smoothed = gradcam.explain_video(lite0, path, every=3, smoothing=0.3)
    average = raw[0].heatmap
    for i in range(1, 24):
        average = 0.3 * raw[i].heatmap + 0.7 * average  # written out plainly
        np.testing.assert_allclose(smoothed[i].heatmap, average, atol=1e-5)
    np.testing.assert_allclose(smoothed[5].raw, raw[5].raw, atol=1e-6)  # the raw map is kept


@pytest.mark.slow
def test_n_is_chosen_from_the_measured_speed(lite0, cup_clip):
    path, _ = cup_clip
    result = gradcam.explain_video(lite0, path)
    assert result.seconds_per_frame > 0
    assert result.every == choose_every(24, 12.0, result.seconds_per_frame)


def test_choose_every_keeps_up_with_the_video_and_caps_the_key_frames():
    assert choose_every(frames=100, fps=30, cost=0.01) == 1  # 30 frames/s cost 0.3 s a second
    assert choose_every(frames=100, fps=30, cost=0.05) == 2  # 1.5 s a second: every 2nd
    assert choose_every(frames=100, fps=10, cost=0.25) == 3
    assert choose_every(frames=3 * MAX_EXPLAINED, fps=10, cost=0.001) == 3  # at most MAX_EXPLAINED key frames
    assert key_frames(10, 4) == [0, 4, 8, 9]
    assert key_frames(9, 4) == [0, 4, 8]


def test_the_smoother_restarts_on_a_new_frame_size():
    smoother = MapSmoother(0.5)
    np.testing.assert_allclose(smoother.update(np.ones((2, 2), np.float32)), 1.0)
    np.testing.assert_allclose(smoother.update(np.zeros((2, 2), np.float32)), 0.5)
    np.testing.assert_allclose(smoother.update(np.zeros((3, 2), np.float32)), 0.0)
    with pytest.raises(ValueError, match="smoothing weight"):
        MapSmoother(0)


@pytest.mark.slow
def test_stop_ends_the_video_early(lite0, cup_clip, tmp_path):
    path, _ = cup_clip
    stop = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        stop.set()  # stop after the first batch of key frames

    with pytest.raises(gradcam.ExplanationStopped):
        gradcam.explain_video(lite0, path, str(tmp_path / "cut.mp4"), every=1, progress=progress, stop=stop)
    assert seen == [8]
    with av.open(str(tmp_path / "cut.mp4")) as cut:  # the frames done so far are a playable file
        assert sum(1 for _ in cut.decode(cut.streams.video[0])) == 8


@pytest.mark.slow
def test_held_back_a_cat_moving_down_a_portrait_frame(lite0, tmp_path):
    """Not tuned on: another photo, another direction, size, background, rate and N."""
    frames, boxes = moving_object("chelsea", (30, 0, 400, 300), (200, 162), (320, 560), 16, (20, 30, 90),
                                  vertical=True)
    result = gradcam.explain_video(lite0, write_mp4(tmp_path / "cat.mp4", frames, fps=8), every=2)
    hits = [inside(peak(e.heatmap), box) for e, box in zip(result, boxes)]
    assert "cat" in result[0].label
    assert sum(hits) >= 15, hits
    ys = [peak(e.heatmap)[1] for e in result]
    assert ys[-1] - ys[0] > 250
