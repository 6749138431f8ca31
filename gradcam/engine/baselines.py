"""What replaces the pixels a test removes: the baselines, one implementation.

The deletion and insertion curves, the what-if edits and occlusion all ask the
same question: what does the model say when part of the photo is gone? "Gone"
means replaced by a baseline:

- ``blur``: a strongly blurred copy (Gaussian, radius BLUR_SHARE of the longer
  side), the default: it removes the detail without adding a new shape or colour;
- ``mean``: the photo's mean colour;
- ``black``: zeros.

All work on the photo at the network's input size, RGB 0..255 (``network_pixels``),
and ``prepared_pixels`` turns such pixels into the network's input.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from .model import preprocessing_function

BASELINES = ("blur", "mean", "black")
BLUR_SHARE = 0.05  # the blur baseline's Gaussian radius as a share of the input's longer side


def network_pixels(model, image: Image.Image) -> np.ndarray:
    """The photo at the network's input size, RGB 0..255, as ``model.prepare`` sees it."""
    height, width = model.input_size
    return np.asarray(model.network_image(image), np.float32).reshape(height, width, model.channels)


def prepared_pixels(model, pixels: np.ndarray) -> np.ndarray:
    return preprocessing_function(model.preprocessing)(pixels.astype(np.float32)).astype(np.float32)


def baseline_pixels(pixels: np.ndarray, baseline: str) -> np.ndarray:
    if baseline == "blur":
        radius = BLUR_SHARE * max(pixels.shape[:2])
        # The pixels are whole numbers 0..255 (a resized 8-bit photo), so PIL's blur loses nothing.
        photo = Image.fromarray(np.squeeze(pixels.astype(np.uint8), axis=-1) if pixels.shape[2] == 1
                                else pixels.astype(np.uint8))
        blurred = np.asarray(photo.filter(ImageFilter.GaussianBlur(radius)), np.float32)
        return blurred.reshape(pixels.shape)
    if baseline == "mean":
        return np.broadcast_to(pixels.mean(axis=(0, 1)), pixels.shape).astype(np.float32)
    if baseline == "black":
        return np.zeros_like(pixels)
    raise ValueError(f'Unknown baseline "{baseline}"; choose one of: {", ".join(BASELINES)}.')


def map_at_input(saliency: np.ndarray, height: int, width: int) -> np.ndarray:
    """A map at the network's input size (bilinear, like the heatmaps themselves)."""
    saliency = np.asarray(saliency, np.float32)
    if saliency.shape == (height, width):
        return saliency
    return np.asarray(Image.fromarray(saliency, mode="F").resize((width, height), Image.BILINEAR), np.float32)
