"""Untrusted video in: its budgets, and the decoder that runs in the sandbox.

A video decoder is a large attack surface (FFmpeg parses dozens of containers and
codecs), so a video is only ever decoded in a sandboxed worker (``sandbox.py``'s
"video" pool) and only plain frames come back. The budgets, each checked before
the work it bounds and each refused with one sentence:

- the file's size (``MAX_VIDEO_BYTES``), before anything is read;
- the frame size the file declares, before a frame is decoded, and every decoded
  frame's own size (a stream may change size mid-way, or lie in its header);
- the duration the file declares, and the time stamps of the frames decoded (a
  file may declare ten seconds and hold hours);
- the pixels decoded in all (``MAX_DECODED_PIXELS``): a codec bomb (a few kB of
  black 4K frames) costs the decoder its whole budget in CPU and memory;
- the frames kept (``MAX_FRAMES``): a longer video is thinned to fewer frames per
  second rather than refused, down to ``MIN_FPS``.

Frames come back downscaled to ``max_side`` on their long side, with even sides
(the H.264 encoder needs them), all of the first frame's size.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidVideoError

MAX_VIDEO_BYTES = 200 * 2**20
MAX_SECONDS = 60.0
# The largest frame read: 4K UHD (a phone's best). Checked on the declared size and on every frame.
MAX_FRAME_SIDE = 3840
MAX_FRAME_PIXELS = 3840 * 2160
# Decoding cost in all: a minute of 1080p at 12 fps, or ~5 s of 4K at 30 fps.
MAX_DECODED_PIXELS = 1_600_000_000
MAX_FRAMES = 600  # frames kept (each is explained or interpolated, and drawn)
MIN_FPS = 10.0  # a long video is thinned to at least this many frames per second, never fewer
DEFAULT_MAX_SIDE = 640  # the long side of the frames explained and written out
FORMATS = ("mp4", "webm", "mov", "m4v", "mkv")  # what an uploader offers
# What FFmpeg may parse: its MP4/MOV and Matroska/WebM demuxers (named, never probed) and the decoders phones and browsers
# write. Every other demuxer and decoder FFmpeg carries stays out of reach of an upload.
DEMUXERS_TRIED = ("mov", "matroska")  # FFmpeg's "mov" reads MP4 and MOV, its "matroska" WebM and MKV
CODECS = ("h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mjpeg")


@dataclass(frozen=True)
class Video:
    """Decoded frames, all one size, in order, with their times in seconds."""

    frames: list[np.ndarray]  # (H, W, 3) uint8 RGB each
    times: list[float]
    fps: float  # of the frames kept (the file's own rate, or less where thinned)
    source_size: tuple[int, int]  # (width, height) of the file's frames
    thinned: int  # every how-many-th decoded frame was kept (1: all)

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.frames[0].shape[:2]
        return width, height

    @property
    def seconds(self) -> float:
        return len(self.frames) / self.fps


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


TOO_LONG = "This video is {} long; the most explained is {:.0f} seconds: trim it first."
TOO_LARGE_FRAMES = ("This video's frames are {} x {} pixels; the largest read is 3840 x 2160 (4K): "
                    "scale it down first.")
BOMB = ("This video decodes to more than {:,} million pixels in all (far more than its size suggests): "
        "it was not read.")
DAMAGED = "This video is damaged or cut short: it stopped being readable after {} frames."
NOT_A_VIDEO = "This file is not a video that can be read (MP4, WebM or MOV), or it is damaged."
NO_FRAMES = "This video has no frames that could be read."


def output_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so the long side is at most ``max_side``, both even and >= 2."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def check_frame_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise InvalidVideoError(NOT_A_VIDEO)
    if max(width, height) > MAX_FRAME_SIDE or width * height > MAX_FRAME_PIXELS:
        raise InvalidVideoError(TOO_LARGE_FRAMES.format(width, height))


def _declared_seconds(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # av.time_base: microseconds
    return None


def _open(av, data: bytes):
    """The file opened by one of DEMUXERS, named (FFmpeg's probing would try every demuxer it has)."""
    for demuxer in DEMUXERS_TRIED:
        try:
            return av.open(io.BytesIO(data), mode="r", format=demuxer)
        except (av.FFmpegError, ValueError, IndexError):
            continue
    raise InvalidVideoError(NOT_A_VIDEO)


def decoded_video(data: bytes, max_side: int) -> dict:
    """The worker's task: ``data`` decoded within the budgets above, as plain data."""
    import av

    if len(data) > MAX_VIDEO_BYTES:
        raise InvalidVideoError(f"This video is larger than {MAX_VIDEO_BYTES // 2**20} MB.")
    container = _open(av, data)
    with container:
        if not container.streams.video:
            raise InvalidVideoError("This file has no video in it.")
        stream = container.streams.video[0]
        if stream.codec_context.name not in CODECS:
            raise InvalidVideoError(f"This video's codec ({stream.codec_context.name}) is not one that can be "
                                    "read; H.264, HEVC, VP8, VP9 and AV1 can.")
        stream.thread_count = 1  # one thread: the worker's memory limit counts every thread's stack
        context = stream.codec_context
        check_frame_size(context.width, context.height)
        declared = _declared_seconds(container, stream)
        if declared is not None and declared > MAX_SECONDS:
            raise InvalidVideoError(TOO_LONG.format(_minutes(declared), MAX_SECONDS))
        rate = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        if not 0.1 <= rate <= 1000:
            rate = 25.0
        # Thin a long video to at most MAX_FRAMES frames, keeping at least MIN_FPS of them a second.
        expected = (declared or 0) * rate
        thinned = max(1, math.ceil(expected / MAX_FRAMES)) if expected else 1
        thinned = min(thinned, max(1, int(rate // MIN_FPS)))
        frames, times, decoded_pixels, size, count = [], [], 0, None, 0
        try:
            for frame in container.decode(stream):
                check_frame_size(frame.width, frame.height)
                decoded_pixels += frame.width * frame.height
                if decoded_pixels > MAX_DECODED_PIXELS:
                    raise InvalidVideoError(BOMB.format(MAX_DECODED_PIXELS // 1_000_000))
                seconds = float(frame.time) if frame.time is not None else count / rate
                if seconds > MAX_SECONDS or count / rate > MAX_SECONDS:
                    raise InvalidVideoError(TOO_LONG.format(f"more than {MAX_SECONDS:.0f} seconds", MAX_SECONDS))
                count += 1
                if (count - 1) % thinned:
                    continue
                if len(frames) >= MAX_FRAMES:
                    raise InvalidVideoError(
                        f"This video has more than {MAX_FRAMES} frames at {rate / thinned:.0f} frames a second; "
                        "trim it first.")
                if size is None:
                    source = (frame.width, frame.height)
                    size = output_size(frame.width, frame.height, max_side)
                frames.append(frame.to_ndarray(width=size[0], height=size[1], format="rgb24"))
                times.append(seconds)
        except av.FFmpegError:  # it opened as a video, then its data ran out or went wrong
            raise InvalidVideoError(DAMAGED.format(count)) from None
        if not frames:
            raise InvalidVideoError(NO_FRAMES)
        declared_frames = stream.frames  # 0 where the container does not say
        if declared_frames and count < 0.9 * declared_frames - 1:
            raise InvalidVideoError(DAMAGED.format(count))
    return {"frames": frames, "times": times, "fps": rate / thinned, "source_size": list(source),
            "thinned": thinned}


def video_from_reply(reply: dict) -> Video:
    """The worker's plain reply checked and typed (a subverted worker could send anything)."""
    frames = reply.get("frames")
    if not isinstance(frames, list) or not frames:
        raise InvalidVideoError(NO_FRAMES)
    shape = frames[0].shape if isinstance(frames[0], np.ndarray) else None
    if shape is None or len(shape) != 3 or shape[2] != 3 or any(
            not isinstance(f, np.ndarray) or f.shape != shape or f.dtype != np.uint8 for f in frames):
        raise InvalidVideoError("This file could not be read safely: it crashed the reader.")
    times = [float(t) for t in reply.get("times", [])]
    fps = float(reply.get("fps", 0))
    if len(times) != len(frames) or not 0 < fps <= 1000:
        raise InvalidVideoError("This file could not be read safely: it crashed the reader.")
    width, height = (int(v) for v in reply.get("source_size", shape[1::-1]))
    return Video(frames=frames, times=times, fps=fps, source_size=(width, height),
                 thinned=int(reply.get("thinned", 1)))


def reply_bytes_most(max_side: int = DEFAULT_MAX_SIDE) -> int:
    """The largest reply the worker may send: MAX_FRAMES square frames of ``max_side``."""
    return MAX_FRAMES * max_side * max_side * 3 + 2**20
