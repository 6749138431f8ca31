"""The switch between explaining here and asking the explanation service.

With GRADCAM_BACKEND set to a URL, the maps of the built-in models come from that
explanation service (``serve run gradcam.scale.serve:app``) instead of this process;
this module is the only place that knows.
"""

from __future__ import annotations

import io
import os

from PIL import Image

import gradcam
from gradcam.scale import explain_remote


def backend() -> str | None:
    """The explanation service's URL from GRADCAM_BACKEND, or None: explain in this
    process (the default). Read on every call, and part of the cache keys, so a
    changed setting never serves the other backend's cached maps."""
    return os.environ.get("GRADCAM_BACKEND", "").strip() or None


def service_for(model_key: str, method: str) -> str | None:
    """The service's URL when it should explain this model and method, else None.
    Built-in models only: an uploaded model stays in this process (the service knows
    only its own zoo, and uploads are never sent anywhere). The slow methods stay here
    too: their progress bar and early stop need the engine in-process."""
    url = backend()
    return url if url and not model_key.startswith("own:") and not gradcam.METHODS[method].slow else None


def png_bytes(image: Image.Image) -> bytes:
    """Lossless and quick: the service explains exactly the pixels this page shows, and a
    session keeps a large upload as what it shows."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def explain_served(url: str, image: Image.Image, model_key: str, layer: str, method: str, *,
                   targets=None, top: int = 5) -> list[gradcam.Explanation]:
    """The service's maps for ``image`` as the engine's Explanations."""
    served = explain_remote(url, png_bytes(image), model_key, layer, method, targets=targets, top=top)
    return served.explanations(image.size)
