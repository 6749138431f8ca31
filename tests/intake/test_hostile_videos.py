"""Hostile videos, built here, each refused with one sentence by the sandboxed decoder;
the reader keeps serving the next video."""

from __future__ import annotations

import io
import time

import av
import numpy as np
import pytest

import gradcam
from gradcam.cli import main
from gradcam.intake import video as video_intake
from videos import codec_bomb, hours_long, huge_frames, moving_cup, write_mp4


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory):
    frames, _ = moving_cup(frames=12)
    small = [np.asarray(frame[::4, ::4]) for frame in frames]  # 140 x 80
    return write_mp4(tmp_path_factory.mktemp("clips") / "small.mp4", small, fps=12).read_bytes()


def refused(data) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(gradcam.InvalidVideoError) as caught:
        gradcam.load_video_safely(data)
    return str(caught.value), time.monotonic() - started


def still_serves(clip: bytes) -> None:
    video = gradcam.load_video_safely(clip)
    assert len(video.frames) == 12 and video.size == (140, 80) and video.fps == 12


@pytest.mark.slow
def test_a_good_clip_comes_back_frame_by_frame(small_clip):
    video = gradcam.load_video_safely(small_clip)
    assert len(video.frames) == 12 and video.frames[0].dtype == np.uint8 and video.frames[0].shape == (80, 140, 3)
    assert video.times[0] == pytest.approx(0.0) and video.times[-1] == pytest.approx(11 / 12, abs=0.01)


@pytest.mark.slow
def test_a_truncated_file_is_one_sentence(small_clip, tmp_path):
    # With the index first (faststart) the file opens, and its frames stop part-way.
    message, _ = refused(small_clip[: len(small_clip) * 8 // 10])
    assert message.startswith("This video is damaged or cut short: it stopped being readable after")
    # With the index at the end, a cut file has no index at all.
    frames, _ = moving_cup(frames=12)
    plain = write_mp4(tmp_path / "index-last.mp4", [f[::4, ::4] for f in frames], faststart=False).read_bytes()
    message, _ = refused(plain[: len(plain) // 2])
    assert message == video_intake.NOT_A_VIDEO
    still_serves(small_clip)


@pytest.mark.slow
def test_a_huge_declared_frame_size_is_refused_before_decoding(small_clip):
    data = huge_frames()
    assert len(data) < 200_000  # a 35-megapixel frame in a small file
    message, seconds = refused(data)
    assert message == ("This video's frames are 8192 x 4320 pixels; the largest read is 3840 x 2160 (4K): "
                       "scale it down first.")
    still_serves(small_clip)


@pytest.mark.slow
def test_an_hours_long_file_is_refused_from_what_it_declares(small_clip):
    message, seconds = refused(hours_long())
    assert message == "This video is 3.0 hours long; the most explained is 60 seconds: trim it first."
    assert seconds < 30
    still_serves(small_clip)


@pytest.mark.slow
def test_a_codec_bomb_is_stopped_at_the_decoded_pixel_budget(small_clip):
    data = codec_bomb(frames=240)  # 240 4K frames: 2 gigapixels from ~35 kB
    assert len(data) < 100_000
    message, seconds = refused(data)
    assert message == ("This video decodes to more than 1,600 million pixels in all (far more than its size "
                       "suggests): it was not read.")
    assert seconds < 120
    still_serves(small_clip)


@pytest.mark.slow
def test_other_demuxers_and_codecs_are_not_reached(small_clip):
    # An animated GIF is a "video" to FFmpeg's probing; here only MP4/MOV and Matroska/WebM are parsed.
    from PIL import Image

    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF", save_all=True, append_images=[Image.new("RGB", (8, 8), "red")])
    assert refused(gif.getvalue())[0] == video_intake.NOT_A_VIDEO
    # MPEG-2 in Matroska: a container that is allowed, a codec that is not.
    mkv = io.BytesIO()
    with av.open(mkv, "w", format="matroska") as out:
        stream = out.add_stream("mpeg2video", rate=25)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")))
        out.mux(stream.encode())
    assert refused(mkv.getvalue())[0] == ("This video's codec (mpeg2video) is not one that can be read; "
                                          "H.264, HEVC, VP8, VP9 and AV1 can.")
    assert refused(b"")[0] == "The file is empty."
    still_serves(small_clip)


@pytest.mark.slow
def test_the_cli_writes_the_video_and_says_a_hostile_one_in_one_line(small_clip, tmp_path, capsys):
    (tmp_path / "clip.mp4").write_bytes(small_clip)
    (tmp_path / "hours.mp4").write_bytes(hours_long())
    code = main(["video", str(tmp_path / "hours.mp4"), "--out", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "error: This video is 3.0 hours long; the most explained is 60 seconds: trim it first.\n"
    code = main(["video", str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "out.mp4"), "--every", "4",
                 "--target", "espresso"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("12 frames at 12 frames/s: every 4 explained (--every), the rest interpolated")
    with av.open(str(tmp_path / "out.mp4")) as written:
        assert sum(1 for _ in written.decode(written.streams.video[0])) == 12
