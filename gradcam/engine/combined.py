"""Meta-methods: another method run several times, the maps fused.

- **RefineCAM** (Domeniconi et al. 2026), as pytorch-grad-cam's RefineCAM: the
  base method (Grad-CAM++) at the chosen layer and at every later stage of the
  network; each map scaled to [0, 1] and upsampled to the input, the product of
  them all, scaled again. The deep layers say *where*, the early one keeps its
  detail.
- **SESS** (Tursun et al. 2022), as pytorch-grad-cam's SESS: the input resized to
  several scales (12 by default: the shorter side from the input's to about
  four times it), windows of the input's size slid over each scale; each window's
  base map (Grad-CAM) is weighted by the class's probability in that window
  (over the best window's), pasted back where it came from, and the maps are
  averaged where they are positive, blurred (Gaussian, 11 px, sigma 5) and
  scaled to [0, 1].

Both need many passes: ``planned_passes`` says how many before anything runs,
``progress(done, total)`` follows them, ``stop`` ends early. Every pass is one
compiled pass of the base method at the network's input size, so memory stays
that of one explanation. This module gets the base method's pass as a function
(``run_base``) from cam.py, which owns the pipeline.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

SESS_SCALES = 12  # pytorch-grad-cam's num_scales
SESS_SCALE_STEP = 2.0 / 7.0  # each scale adds this share of the window (224, 288, 352, ... for 224)
SESS_BLUR_SIZE, SESS_BLUR_SIGMA = 11, 5.0  # cv2.GaussianBlur((11, 11), 5.0) in the reference
SCORE_BATCH = 32  # windows scored per forward pass


class Stopped(Exception):
    """Raised through ``stop``; cam.py turns it into ExplanationStopped."""


def resize(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of (n, h, w) maps with half-pixel centres and no antialiasing
    (what cv2.resize's default does, up or down)."""
    import tensorflow as tf

    if maps.shape[1:] == (height, width):
        return maps.astype(np.float32)
    out = tf.image.resize(np.asarray(maps, np.float32)[..., None], (height, width), method="bilinear")
    return out.numpy()[..., 0]


def scaled(maps: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's scale_cam_image per map: minus the minimum, over 1e-7 + the maximum left."""
    shifted = maps - maps.min(axis=(1, 2), keepdims=True)
    return shifted / (1e-7 + shifted.max(axis=(1, 2), keepdims=True))


def base_map_at_input(before_relu: np.ndarray, height: int, width: int) -> np.ndarray:
    """What pytorch-grad-cam's BaseCAM returns for one layer: ReLU, scaled, upsampled to
    the input, then scaled again (its aggregation over layers ends with a scale too)."""
    return scaled(resize(scaled(np.maximum(before_relu, 0.0)), height, width))


def _tick(progress, stop, done: int, total: int) -> None:
    if stop is not None and stop.is_set():
        raise Stopped
    if progress is not None and done:
        progress(done, total)


# --- RefineCAM ----------------------------------------------------------------------


def refine_layers(model, layer) -> list:
    """The chosen layer, then every stage layer after it (``graph.stage_layers``)."""
    from .graph import stage_layers, target_layers

    order = [t.name for t in target_layers(model)]
    place = order.index(layer.name) if layer.name in order else -1
    later = [t for t in stage_layers(model) if t.name in order and order.index(t.name) > place]
    return [layer, *later]


def refinecam(run_base: Callable, model, x, rows, top: int, layer, progress=None, stop=None) -> dict:
    """RefineCAM of the prepared input x. ``run_base(x, rows, top, layer)`` returns the
    base method's pass (a dict with before_relu (K, h, w), rows, logits)."""
    height, width = model.input_size
    layers = refine_layers(model, layer)
    product, first = None, None
    for number, target in enumerate(layers):
        _tick(None, stop, 0, len(layers))
        out = run_base(x, rows if first is None else first["rows"], top if first is None else 0, target)
        first = first or out
        at_input = base_map_at_input(out["before_relu"], height, width)
        product = at_input if product is None else product * at_input
        _tick(progress, stop, number + 1, len(layers))
    return {"logits": first["logits"], "rows": first["rows"], "before_relu": scaled(product),
            "weights": np.zeros((len(first["rows"]), 0), np.float32)}


# --- SESS ---------------------------------------------------------------------------


def window_starts(length: int, step: int, window: int) -> list[int]:
    """Where windows start along a side; the last is moved back inside the image."""
    starts = []
    for start in range(0, length, step):
        if start + window >= length:
            starts.append(max(length - window, 0))
            break
        starts.append(start)
    return starts


def sess_windows(height: int, width: int, scales: int = SESS_SCALES) -> list[tuple[int, int, int, int]]:
    """(scaled height, scaled width, y, x) of every window, scale by scale. The shorter
    side goes to window + i * round(window * 2/7), the longer follows (torchvision's resize)."""
    window = min(height, width)
    step = int(round(window * SESS_SCALE_STEP))
    out = []
    for i in range(max(int(scales), 1)):
        short = window + step * i
        if height <= width:
            scaled_height, scaled_width = short, int(short * width / height)
        else:
            scaled_height, scaled_width = int(short * height / width), short
        for y in window_starts(scaled_height, window, window):
            for x in window_starts(scaled_width, window, window):
                out.append((scaled_height, scaled_width, y, x))
    return out


def gaussian_blur(maps: np.ndarray, size: int = SESS_BLUR_SIZE, sigma: float = SESS_BLUR_SIGMA) -> np.ndarray:
    """cv2.GaussianBlur((size, size), sigma) with its default border (reflect, edge not repeated)."""
    half = size // 2
    kernel = np.exp(-((np.arange(size) - half) ** 2) / (2 * sigma**2))
    kernel /= kernel.sum()
    padded = np.pad(maps, ((0, 0), (half, half), (half, half)), mode="reflect")
    rows = sum(kernel[i] * padded[:, i:i + maps.shape[1], :] for i in range(size))
    return sum(kernel[i] * rows[:, :, i:i + maps.shape[2]] for i in range(size))


def sess(run_base: Callable, logits_of: Callable, probabilities_of: Callable, model, x, rows, top: int, layer,
         scales: int = SESS_SCALES, progress=None, stop=None) -> dict:
    """SESS of the prepared input x (1, H, W, C). ``run_base(x, rows, top, layer)`` is the
    base method's pass; ``logits_of(batch)`` the logits of prepared inputs;
    ``probabilities_of(logits)`` the model's probabilities of one row of logits."""
    import tensorflow as tf

    height, width = model.input_size
    if height != width:
        raise ValueError(f"SESS slides square windows the size of the model's input; this model's input is "
                         f"{width} x {height}, not square.")
    window = height
    windows = sess_windows(height, width, scales)
    batches = (len(windows) + SCORE_BATCH - 1) // SCORE_BATCH
    total = 1 + batches + len(windows)  # as planned_passes counts them
    first = run_base(x, rows, top, layer)  # the classes: the whole photo's, as the reference decides them
    _tick(progress, stop, 1, total)
    chosen = first["rows"]
    resized: dict[tuple[int, int], np.ndarray] = {}

    def patch(scaled_height, scaled_width, y, x0):
        key = (scaled_height, scaled_width)
        if key not in resized:
            resized.clear()  # one scale at a time in memory
            resized[key] = tf.image.resize(x, key, method="bilinear", antialias=True).numpy()
        return resized[key][:, y:y + window, x0:x0 + window]

    # Each window's weight: the class's probability in it (never negative), over the best window's.
    scores = []
    for start in range(0, len(windows), SCORE_BATCH):
        _tick(None, stop, 0, total)
        batch = np.concatenate([patch(*w) for w in windows[start:start + SCORE_BATCH]])
        logits = np.asarray(logits_of(batch), np.float64).reshape(len(batch), -1)
        probabilities = np.stack([probabilities_of(row) for row in logits])  # (b, C)
        scores.append(np.maximum(probabilities @ chosen.T.astype(np.float64), 0.0))  # (b, K)
        _tick(progress, stop, 1 + start // SCORE_BATCH + 1, total)
    scores = np.concatenate(scores).T  # (K, n)
    best = scores.max(axis=1, keepdims=True)
    weights = np.where(best > 0, scores / np.where(best > 0, best, 1.0), 1.0)

    done = 1 + batches
    fused = np.zeros((len(chosen), height, width), np.float64)
    counts = np.zeros_like(fused)
    for number, (scaled_height, scaled_width, y, x0) in enumerate(windows):
        _tick(None, stop, 0, total)
        out = run_base(patch(scaled_height, scaled_width, y, x0), chosen, 0, layer)
        cams = base_map_at_input(out["before_relu"], window, window) * weights[:, number, None, None]
        pasted = np.zeros((len(chosen), scaled_height, scaled_width), np.float32)
        pasted[:, y:y + window, x0:x0 + window] = cams
        back = resize(pasted, height, width)
        positive = back > 0.0
        fused[positive] += back[positive]
        counts += positive
        _tick(progress, stop, done + number + 1, total)
    mean = np.divide(fused, counts, out=np.zeros_like(fused), where=counts > 0)
    return {"logits": first["logits"], "rows": chosen, "before_relu": scaled(gaussian_blur(mean)).astype(np.float32),
            "weights": np.zeros((len(chosen), 0), np.float32)}


def planned_passes(model, method, layer, scales: int | None = None) -> int:
    """How many compiled passes a combined method will run, before it runs (the cost
    shown up front): one per layer for RefineCAM; for SESS one per window plus the
    first, and the windows' scoring batches."""
    if method.fuses == "layers":
        return len(refine_layers(model, layer))
    height, width = model.input_size
    count = len(sess_windows(height, width, SESS_SCALES if scales is None else scales))
    return 1 + count + (count + SCORE_BATCH - 1) // SCORE_BATCH
