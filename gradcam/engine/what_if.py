"""What if part of the photo were gone? Cover a region and ask the model again.

A heatmap is a claim about the model; covering the region it points at and
watching the answer change is how a person tests that claim by hand. The cover
is one of the deletion curves' baselines (``baselines.py``: blur, mean, black),
so "covered" means the same thing everywhere in the project.

The edit happens at the network's input size, where the baselines live, and the
edited pixels are rounded to whole 8-bit values: the image returned is exactly
what the model scored, so ``predict(model, result.image)`` gives the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .baselines import BASELINES, baseline_pixels, network_pixels, prepared_pixels
from .cam import Prediction, as_image, to_probabilities, top_predictions
from .passes import batch_forward_pass, forward_pass


MAX_BOXES = 64
REGION_FORMS = (f"A region is a box (x0, y0, x1, y1) as fractions of the image, a list of at most {MAX_BOXES} "
                "such boxes, or a mask array (height, width).")


@dataclass(frozen=True)
class WhatIf:
    predictions: list[Prediction]  # the edited photo's top classes, most likely first (``predict``'s format)
    image: Image.Image  # the edited photo at the network's input size, exactly what was scored
    changes: np.ndarray = field(repr=False)  # (C,) each class's probability, edited minus unedited
    probabilities: np.ndarray = field(repr=False)  # (C,) the edited photo's probabilities
    original: list[Prediction] = field(repr=False)  # the unedited photo's top classes
    mask: np.ndarray = field(repr=False)  # (H, W) float32 in [0, 1] at the input size: 1 = covered
    unedited_logits: np.ndarray = field(repr=False)  # (C,) pass as ``unedited`` to the next edit of the same photo

    def change(self, index: int) -> float:
        """Class ``index``'s change of probability (edited minus unedited), in [-1, 1]."""
        return float(self.changes[index])


def region_mask(region, height: int, width: int) -> np.ndarray:
    """The region as a (height, width) float32 mask in [0, 1], 1 = covered.

    ``region`` is a box ``(x0, y0, x1, y1)`` as fractions of the image's width and
    height (clipped to the image; a pixel is covered when its centre is inside), a
    list of such boxes (their union: a person's several strokes), or a mask array
    at any resolution (bool, or floats in [0, 1] for a soft brush),
    resized bilinearly to the network's input.
    """
    if _is_box(region):
        return _box_mask(region, height, width)
    if isinstance(region, (tuple, list)) and region and all(_is_box(box) for box in region):
        # A flat list of boxes, one level: boxes nested in lists are not a region (64^3 of them
        # took 47 s, 5000 levels of nesting raised RecursionError); they fall to the array check.
        if len(region) > MAX_BOXES:
            raise ValueError(f"A region is at most {MAX_BOXES} boxes.")
        return np.max([_box_mask(box, height, width) for box in region], axis=0)
    try:
        mask = np.asarray(region, dtype=np.float32)
    except (TypeError, ValueError, RecursionError):
        raise ValueError(REGION_FORMS) from None
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim > 3:  # boxes nested in lists
        raise ValueError(REGION_FORMS)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError("A mask is a two-dimensional array (height, width): 1 where the photo is covered.")
    if mask.shape[0] > 8192 or mask.shape[1] > 8192:
        raise ValueError("A mask is at most 8192 pixels on each side.")
    if not np.all(np.isfinite(mask)):
        raise ValueError("A mask holds numbers from 0 (keep) to 1 (cover), not NaN or infinity.")
    mask = np.clip(mask, 0.0, 1.0)
    if mask.shape != (height, width):
        mask = np.asarray(Image.fromarray(mask, mode="F").resize((width, height), Image.BILINEAR), np.float32)
    return np.clip(mask, 0.0, 1.0)


def _is_box(value) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 4 and all(np.isscalar(v) for v in value)


def _box_mask(box, height: int, width: int) -> np.ndarray:
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError("A box is four numbers (x0, y0, x1, y1), fractions of the image.") from None
    if not all(np.isfinite((x0, y0, x1, y1))):
        raise ValueError("A box is four finite numbers (x0, y0, x1, y1), fractions of the image.")
    x0, x1 = sorted((min(max(x0, 0.0), 1.0), min(max(x1, 0.0), 1.0)))
    y0, y1 = sorted((min(max(y0, 0.0), 1.0), min(max(y1, 0.0), 1.0)))
    columns = (np.arange(width) + 0.5) / width
    rows = (np.arange(height) + 0.5) / height
    inside_x = (columns >= x0) & (columns < x1)
    inside_y = (rows >= y0) & (rows < y1)
    return (inside_y[:, None] & inside_x[None, :]).astype(np.float32)


def covered_pixels(pixels: np.ndarray, mask: np.ndarray, fill: str) -> np.ndarray:
    """The photo's ``pixels`` (network input size, 0..255) with ``mask`` replaced by
    the ``fill`` baseline, rounded to whole 8-bit values (what a saved photo holds)."""
    covered = baseline_pixels(pixels, fill)
    weight = mask[..., None]
    return np.round(pixels * (1.0 - weight) + covered * weight).clip(0, 255).astype(np.float32)


def what_if(model, image, region, *, fill: str = "blur", top: int = 5, unedited=None) -> WhatIf:
    """The model's answer for ``image`` with ``region`` covered by ``fill``.

    ``region``: a box ``(x0, y0, x1, y1)`` as fractions of the image, a list of
    boxes, or a mask at any resolution (see ``region_mask``); ``fill``: ``"blur"``, ``"mean"`` or
    ``"black"``, the deletion curves' baselines. One forward pass, of the unedited
    and the edited photo together, so the changes compare like with like; a page
    that edits the same photo again passes the first result's ``unedited_logits``
    as ``unedited``, and the pass scores the edited photo alone.
    """
    if fill not in BASELINES:
        raise ValueError(f'Unknown fill "{fill}"; choose one of: {", ".join(BASELINES)}.')
    image = as_image(image)
    height, width = model.input_size
    mask = region_mask(region, height, width)
    pixels = network_pixels(model, image)
    edited = covered_pixels(pixels, mask, fill)
    classes = len(model.labels)
    if unedited is None:
        batch = prepared_pixels(model, np.stack([pixels, edited]))
        logits = np.asarray(batch_forward_pass(model)(batch), np.float64).reshape(2, classes)
    else:
        known = np.asarray(unedited, np.float64).reshape(-1)
        if known.shape != (classes,):
            raise ValueError(f"The unedited photo's logits are one number per class ({classes}); got {known.size}.")
        edited_logits = np.asarray(forward_pass(model)(prepared_pixels(model, edited[None])), np.float64)
        logits = np.stack([known, edited_logits.reshape(classes)])
    before = to_probabilities(model, logits[0])
    after = to_probabilities(model, logits[1])
    shown = edited.astype(np.uint8)
    picture = Image.fromarray(shown[..., 0] if model.channels == 1 else shown)
    return WhatIf(predictions=top_predictions(model, logits[1], after, top), image=picture.convert("RGB"),
                  changes=(after - before).astype(np.float64), probabilities=after,
                  original=top_predictions(model, logits[0], before, top), mask=mask,
                  unedited_logits=logits[0].copy())
