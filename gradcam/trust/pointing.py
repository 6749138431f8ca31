"""Where will it look? A person's guess against the map: the classroom's pointing game.

A guess is a point (fractions of the photo's width and height). It is a hit when
it lands in the map's strongest region, where the heatmap is at least STRONGEST
of its peak (the half-maximum region the pointing-game literature uses for a
"hot" area); the distance to the peak is said too, as a share of the photo's diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRONGEST = 0.5  # the strongest region: heatmap >= half its peak


@dataclass(frozen=True)
class Guess:
    hit: bool  # inside the strongest region
    distance: float  # guess to the peak, as a share of the photo's diagonal (0..1)
    peak: tuple[float, float]  # (x, y) of the map's peak, fractions of the photo


def judge_guess(heatmap: np.ndarray, x: float, y: float) -> Guess:
    """``heatmap``: (H, W) in [0, 1] at the photo's size; (x, y): the guess in fractions."""
    heatmap = np.asarray(heatmap, np.float32)
    if heatmap.ndim != 2 or heatmap.size == 0:
        raise ValueError("A heatmap is a two-dimensional array.")
    if not (np.isfinite(x) and np.isfinite(y)):
        raise ValueError("A guess is a point with finite coordinates.")
    height, width = heatmap.shape
    x, y = min(max(float(x), 0.0), 1.0), min(max(float(y), 0.0), 1.0)
    column, row = min(int(x * width), width - 1), min(int(y * height), height - 1)
    peak_row, peak_column = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    peak = ((peak_column + 0.5) / width, (peak_row + 0.5) / height)
    top = float(heatmap.max())
    hit = top > 0 and heatmap[row, column] >= STRONGEST * top
    # Distance in pixels over the diagonal in pixels, so a wide photo's x counts as much as its y.
    distance = float(np.hypot((x - peak[0]) * width, (y - peak[1]) * height) / np.hypot(width, height))
    return Guess(hit=bool(hit), distance=distance, peak=peak)
