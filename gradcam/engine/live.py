"""Explain a camera's frames as they come: the latest frame wins.

A camera gives 15-30 frames a second and one explanation takes longer than a
frame's interval on a CPU. Queueing frames would make the map fall ever further
behind the picture, so ``LiveExplainer`` keeps one slot: a new frame replaces the
one waiting (that one is dropped and counted), and one thread explains whatever is
in the slot when it is free. The caller draws the newest map over every frame it
shows (``draw``), so the video itself runs at the camera's rate while the map
follows at the explainer's.

The map is smoothed over explained frames (``MapSmoother``) unless ``smoothing``
is None; ``LiveResult.raw_heatmap`` keeps the unsmoothed one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .batched import explain_batch
from .cam import Prediction
from .overlay import colorize
from .video import DEFAULT_SMOOTHING, MapSmoother

READOUT_SECONDS = 3.0  # the frame rate and latency readouts average over this many seconds


@dataclass(frozen=True)
class LiveSettings:
    """What the next frames are explained with (the same choices as the Explore page)."""

    layer: str | None = None
    method: str = "gradcam"
    target: int | str | None = None  # None: each frame's own top-1
    smoothing: float | None = DEFAULT_SMOOTHING  # None: the raw map of each frame


@dataclass(frozen=True)
class LiveResult:
    frame: np.ndarray = field(repr=False)  # (H, W, 3) uint8: the frame this map is of
    heatmap: np.ndarray = field(repr=False)  # (H, W) float32 in [0, 1], smoothed unless smoothing is None
    raw_heatmap: np.ndarray = field(repr=False)  # this frame's own map
    label: str
    probability: float
    predictions: list[Prediction]
    layer: str
    method: str
    arrived: float  # time.monotonic() when the frame was submitted
    explained: float  # ... and when its map was ready

    @property
    def latency(self) -> float:
        return self.explained - self.arrived


@dataclass(frozen=True)
class LiveStats:
    explained_per_second: float
    latency_seconds: float  # mean, frame submitted to map ready, over the last READOUT_SECONDS
    dropped: int  # frames replaced before they were explained, since the start
    explained: int


class LiveExplainer:
    """One camera's explainer: ``submit`` frames from any thread, read ``latest()``, ``draw``."""

    def __init__(self, model, settings: LiveSettings | None = None):
        self.model = model
        self._settings = settings or LiveSettings()
        self._smoother = self._new_smoother(self._settings)
        self._lock = threading.Condition()
        self._waiting: tuple[np.ndarray, float] | None = None
        self._latest: LiveResult | None = None
        self._error: str | None = None
        self._done_times: deque = deque()  # (explained at, latency)
        self._dropped = self._explained = 0
        self._closed = False
        self._drawn_for: tuple[int, tuple] | None = None  # which result and size _colours belongs to
        self._colours: np.ndarray | None = None
        self._thread = threading.Thread(target=self._run, name="live-explainer", daemon=True)
        self._thread.start()

    @staticmethod
    def _new_smoother(settings: LiveSettings) -> MapSmoother | None:
        return None if settings.smoothing is None else MapSmoother(settings.smoothing)

    @property
    def settings(self) -> LiveSettings:
        return self._settings

    def configure(self, settings: LiveSettings) -> None:
        """New choices apply from the next frame; a new class, layer or method restarts the smoothing."""
        with self._lock:
            if settings != self._settings:
                self._settings = settings
                self._smoother = self._new_smoother(settings)

    def submit(self, frame: np.ndarray) -> None:
        """Offer a frame (H, W, 3 uint8 RGB); it replaces any frame still waiting."""
        with self._lock:
            if self._waiting is not None:
                self._dropped += 1
            self._waiting = (frame, time.monotonic())
            self._lock.notify()

    def latest(self) -> LiveResult | None:
        with self._lock:
            return self._latest

    @property
    def error(self) -> str | None:
        """The last explanation's error, one sentence (e.g. a layer the model does not have)."""
        return self._error

    def stats(self) -> LiveStats:
        with self._lock:
            now = time.monotonic()
            while self._done_times and now - self._done_times[0][0] > READOUT_SECONDS:
                self._done_times.popleft()
            times = list(self._done_times)
            span = now - times[0][0] if len(times) > 1 else 0.0
            rate = (len(times) - 1) / span if span > 0 else 0.0
            latency = float(np.mean([t[1] for t in times])) if times else 0.0
            return LiveStats(rate, latency, self._dropped, self._explained)

    def draw(self, frame: np.ndarray, alpha: float, colormap: str = "jet", raw: bool = False) -> np.ndarray:
        """``frame`` with the newest map over it (the map resized to the frame once per result)."""
        result = self.latest()
        if result is None or alpha <= 0:
            return frame
        height, width = frame.shape[:2]
        key = (id(result), (height, width, colormap, raw))
        if key != self._drawn_for:
            heatmap = result.raw_heatmap if raw else result.heatmap
            if heatmap.shape != (height, width):
                heatmap = np.asarray(Image.fromarray(heatmap, "F").resize((width, height), Image.BILINEAR))
            self._colours, self._drawn_for = colorize(heatmap, colormap).astype(np.uint16), key
        a = int(round(min(alpha, 1.0) * 256))
        return ((frame.astype(np.uint16) * (256 - a) + self._colours * a + 128) >> 8).astype(np.uint8)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._waiting is None and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                (frame, arrived), self._waiting = self._waiting, None
                settings, smoother = self._settings, self._smoother
            try:
                result = self._explain(frame, arrived, settings, smoother)
            except ValueError as error:  # bad choices for this model: one sentence, keep serving
                self._error = str(error)
                continue
            except Exception as error:  # never let the thread die silently: the page says why, and goes on
                self._error = f"This frame could not be explained ({type(error).__name__}: {error})."
                continue
            with self._lock:
                self._error = None
                if settings == self._settings:  # not a frame of choices changed meanwhile
                    self._latest = result
                    self._explained += 1
                    self._done_times.append((result.explained, result.latency))

    def _explain(self, frame, arrived, settings: LiveSettings, smoother) -> LiveResult:
        targets = None if settings.target is None else [settings.target]
        explanation = explain_batch(self.model, [Image.fromarray(frame)], targets, settings.layer,
                                    settings.method)[0][0]
        heatmap = explanation.heatmap if smoother is None else smoother.update(explanation.heatmap)
        return LiveResult(frame=frame, heatmap=heatmap, raw_heatmap=explanation.heatmap, label=explanation.label,
                          probability=explanation.probability, predictions=explanation.predictions,
                          layer=explanation.layer, method=explanation.method, arrived=arrived,
                          explained=time.monotonic())
