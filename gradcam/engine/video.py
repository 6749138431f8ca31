"""Explain a video: every N-th frame through the batched engine, the maps between interpolated.

Why every N-th frame: neighbouring frames differ little, and a map computed for
each of 30 frames a second costs 30 passes a second. The explained frames
("key frames": 0, N, 2N, ... and the last) run through ``explain_batch`` eight at
a time; a frame between two key frames gets the two maps blended in proportion
to its distance from each (its ``Explanation`` is marked ``interpolated`` and
carries the nearer key frame's classes). N is chosen from the measured speed of
the explaining pass so the video is explained about as fast as it plays.

Temporal smoothing (``smoothing``: the newest map's weight in an exponential
average) keeps a steady scene's map from flickering; the raw map stays in
``Explanation.raw``.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from PIL import Image

from .batched import explain_batch
from .cam import Explanation, ExplanationStopped
from .overlay import overlay

EXPLAINED_PER_CALL = 8  # key frames per batched call (one of the engine's compiled batch sizes)
MAX_EXPLAINED = 300  # key frames at most, whatever N the speed allows
DEFAULT_SMOOTHING = 0.5  # the newest map's weight where smoothing is asked for without a number


class MapSmoother:
    """An exponential average of maps over frames: ``s = w * map + (1 - w) * s_before``.
    A map of another size (a new stream, a turned phone) starts it afresh."""

    def __init__(self, weight: float = DEFAULT_SMOOTHING):
        if not 0.0 < weight <= 1.0:
            raise ValueError("The smoothing weight must be above 0 and at most 1 (1: no smoothing).")
        self.weight = float(weight)
        self._average: np.ndarray | None = None

    def reset(self) -> None:
        self._average = None

    def update(self, heatmap: np.ndarray) -> np.ndarray:
        if self._average is None or self._average.shape != heatmap.shape:
            self._average = heatmap.astype(np.float32, copy=True)
        else:
            self._average *= 1.0 - self.weight
            self._average += self.weight * heatmap
        return self._average.copy()


@dataclass(frozen=True)
class VideoExplanation:
    """The frames' explanations in order (it is a sequence of them), and how they were made."""

    explanations: list[Explanation]
    times: list[float]  # seconds, per frame
    fps: float  # of the frames explained and written (a long video is thinned; see intake/video.py)
    every: int  # N: every N-th frame was explained, the others interpolated
    seconds_per_frame: float  # the measured cost of one explained frame that chose N (0 when N was given)
    size: tuple[int, int]  # (width, height) of the frames (the file's, scaled to at most max_side)
    smoothing: float | None
    out: str | None  # the MP4 written, if asked

    def __len__(self) -> int:
        return len(self.explanations)

    def __getitem__(self, index):
        return self.explanations[index]

    def __iter__(self):
        return iter(self.explanations)

    def timeline(self) -> list[dict]:
        """Per frame: its time, top-1 class and probability, and whether it was interpolated."""
        return [{"seconds": t, "label": e.predictions[0].label, "probability": e.predictions[0].probability,
                 "interpolated": e.interpolated} for t, e in zip(self.times, self.explanations)]


# Measured seconds per explained frame, per (model, layer, method): N needs it before the first key frame.
_speed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def seconds_per_frame(model, frame: Image.Image, layer=None, method: str = "gradcam") -> float:
    """One explained frame's cost in the batched engine, measured on copies of ``frame``
    (the first call also compiles the pass and is not counted)."""
    key = (str(layer), method)
    known = _speed.setdefault(model, {})
    if key not in known:
        batch = [frame] * EXPLAINED_PER_CALL
        explain_batch(model, batch, layer=layer, method=method)
        started = time.perf_counter()
        explain_batch(model, batch, layer=layer, method=method)
        known[key] = (time.perf_counter() - started) / EXPLAINED_PER_CALL
    return known[key]


def choose_every(frames: int, fps: float, cost: float) -> int:
    """The smallest N that explains the video about as fast as it plays (N >= fps x one frame's
    cost), and no more than MAX_EXPLAINED key frames."""
    return max(1, math.ceil(fps * cost - 1e-9), math.ceil(frames / MAX_EXPLAINED))


def key_frames(frames: int, every: int) -> list[int]:
    keys = list(range(0, frames, every))
    if keys[-1] != frames - 1:
        keys.append(frames - 1)  # the last frame is explained too: nothing is extrapolated
    return keys


def _blend(a: Explanation, b: Explanation, w: float) -> Explanation:
    """The frame a fraction ``w`` of the way from key frame ``a`` to ``b``."""
    nearer = a if w < 0.5 else b
    raw = (1 - w) * a.raw + w * b.raw if a.raw.shape == b.raw.shape else nearer.raw
    before = (1 - w) * a.before_relu + w * b.before_relu if a.before_relu.shape == b.before_relu.shape \
        else nearer.before_relu
    heatmap = ((1 - w) * a.heatmap + w * b.heatmap).astype(np.float32)
    return replace(nearer, heatmap=heatmap, raw=raw.astype(np.float32), before_relu=before.astype(np.float32),
                   no_positive_evidence=bool(heatmap.max() <= 0), interpolated=True)


class _Mp4Writer:
    """H.264 in MP4 (what every browser plays), frames given as RGB arrays."""

    def __init__(self, path: str, fps: float, size: tuple[int, int]):
        import av
        from fractions import Fraction

        # faststart: the index first, so a browser plays the file while it downloads
        self._container = av.open(path, "w", format="mp4", options={"movflags": "+faststart"})
        self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._stream.width, self._stream.height = size
        self._stream.pix_fmt = "yuv420p"
        # veryfast: encoding must not dominate explaining (the bench compares them)
        self._stream.options = {"preset": "veryfast", "crf": "23"}

    def write(self, rgb: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        self._container.mux(self._stream.encode())
        self._container.close()


def explain_video(model, video, out: str | None = None, *, every: int | None = None, layer=None,
                  method: str = "gradcam", target=None, smoothing: float | None = None, alpha: float = 0.4,
                  colormap: str = "jet", max_side: int | None = None,
                  progress: Callable[[int, int], None] | None = None, stop=None) -> VideoExplanation:
    """Explain ``video`` (a path, bytes or file-like, always decoded in the sandbox; or a
    ``Video`` already decoded): its frames' explanations in order, every N-th frame explained
    and the maps between interpolated; the overlay written to ``out`` (an MP4) if given.

    ``every``: N (default: chosen from the measured speed). ``target``: a class (index or
    label) for every frame; default each frame's own top-1. ``smoothing``: the newest map's
    weight in an exponential average over frames (None: the raw maps). ``progress(done,
    total)`` is called as frames are finished; ``stop`` (a threading.Event) ends the work
    early with ExplanationStopped (``out`` then holds the frames done so far).
    """
    from ..intake.sandbox import load_video_safely
    from ..intake.video import Video

    if not isinstance(video, Video):
        video = load_video_safely(video, max_side)
    if every is not None and (int(every) != every or every < 1):
        raise ValueError("every must be a whole number of at least 1.")
    smoother = MapSmoother(smoothing) if smoothing is not None else None
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be between 0 and 1.")
    images = [Image.fromarray(frame) for frame in video.frames]
    total = len(images)
    cost = 0.0
    if every is None:
        cost = seconds_per_frame(model, images[0], layer, method)
        every = choose_every(total, video.fps, cost)
    every = int(every)
    keys = key_frames(total, every)
    targets = None if target is None else [target]
    writer = _Mp4Writer(out, video.fps, video.size) if out else None
    explanations: list[Explanation] = []
    done_keys: dict[int, Explanation] = {}
    try:
        for start in range(0, len(keys), EXPLAINED_PER_CALL):
            if stop is not None and stop.is_set():
                raise ExplanationStopped("The video was stopped.")
            chunk = keys[start:start + EXPLAINED_PER_CALL]
            results = explain_batch(model, [images[i] for i in chunk], targets, layer, method)
            done_keys.update({i: r[0] for i, r in zip(chunk, results)})
            # Every frame up to this chunk's last key frame is now known: finish them in order.
            while len(explanations) <= chunk[-1]:
                i = len(explanations)
                if i in done_keys:
                    explanation = done_keys[i]
                else:
                    before = max(k for k in done_keys if k < i)
                    after = min(k for k in done_keys if k > i)
                    explanation = _blend(done_keys[before], done_keys[after], (i - before) / (after - before))
                if smoother is not None:
                    explanation = replace(explanation, heatmap=smoother.update(explanation.heatmap))
                if writer is not None:
                    writer.write(np.asarray(overlay(images[i], explanation.heatmap, alpha, colormap)))
                explanations.append(explanation)
                latest = max(k for k in done_keys if k <= i)
                for k in [k for k in done_keys if k < latest]:
                    del done_keys[k]  # no later frame blends from it
            if progress is not None:
                progress(len(explanations), total)
    finally:
        if writer is not None:
            writer.close()
    return VideoExplanation(explanations=explanations, times=list(video.times), fps=video.fps, every=every,
                            seconds_per_frame=cost, size=video.size, smoothing=smoothing, out=out)
