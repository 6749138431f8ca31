"""The one ``Model`` type every part of the engine works on, and how its images are prepared.

A ``Model`` is a Keras classifier plus what it takes to feed it (input size,
channels, preprocessing) and to name its outputs (labels). Where it came from
(the offline zoo, a Keras application, a user's file) is ``gradcam.zoo``'s affair.
Compiled passes live with the model they were traced for, under its lock, so
every session shares one function object (see ``passes.py``).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image

# Each takes float32 RGB in 0..255 (N, H, W, C) and returns what the network expects.
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)
_TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)
PREPROCESSING: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "0..1": lambda x: x / 255.0,
    "-1..1": lambda x: x / 127.5 - 1.0,
    "caffe": lambda x: x[..., ::-1] - _CAFFE_MEAN_BGR,
    "torch": lambda x: (x / 255.0 - _TORCH_MEAN) / _TORCH_STD,
    "none": lambda x: x,
    "efficientnet-lite": lambda x: (x - 127.0) / 128.0,
}


# A model's own scaling (a KerasHub classifier's image converter), registered by name on first
# use: kept apart from PREPROCESSING, the names a person may choose from.
_OWN_PREPROCESSING: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
_affine_lock = threading.Lock()


def affine_preprocessing(scale: tuple[float, ...], offset: tuple[float, ...]) -> str:
    """The name of x * scale + offset on 0..255 pixels, per channel (a KerasHub classifier's
    own image converter), registered on first use; ``preprocessing_function`` finds it."""
    name = "x*(" + ",".join(f"{s:.6g}" for s in scale) + ")+(" + ",".join(f"{o:.6g}" for o in offset) + ")"
    with _affine_lock:
        if name not in _OWN_PREPROCESSING:
            factor, shift = np.asarray(scale, np.float32), np.asarray(offset, np.float32)
            _OWN_PREPROCESSING[name] = lambda x: x * factor + shift
    return name


def preprocessing_function(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """What a preprocessing name does to float32 RGB in 0..255: a PREPROCESSING entry or a model's own."""
    return PREPROCESSING[name] if name in PREPROCESSING else _OWN_PREPROCESSING[name]


# Compiled functions kept per model, least recently used dropped first: each new (layer,
# method) pair held ~21 MB on Lite0, for ever, and a page offering free choice (or the service,
# whose keys include the number of classes) could add them without end. The model's logits
# head is kept apart from the count: rebuilding it builds a layer.
MAX_COMPILED_PASSES = 24
_PINNED = ("head",)


@dataclass(eq=False)
class Model:
    """A classifier ready to explain: the Keras model plus what it takes to feed it."""

    name: str
    keras: object  # keras.Model
    input_size: tuple[int, int]  # (height, width)
    labels: list[str]
    preprocessing: str
    description: str = ""
    channels: int = 3
    # Extra names per class (ImageNet synonyms) so a target can be named loosely.
    synonyms: tuple[str, ...] = ()
    # Compiled functions live with the model they were traced for (see passes.py);
    # only ``compiled_pass`` and ``forget_passes`` touch them.
    _compiled: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def compiled_pass(self, key, build: Callable[[], object]):
        """The compiled function stored under ``key``, built by ``build()`` on first use.
        The lock makes every session share one function object; TensorFlow traces it
        once, on its first call."""
        with self._lock:
            if key not in self._compiled:
                self._compiled[key] = build()
                self._evict()
            else:
                self._compiled.move_to_end(key)
            return self._compiled[key]

    def _evict(self) -> None:
        unpinned = [k for k in self._compiled if k not in _PINNED]
        for key in unpinned[: max(0, len(unpinned) - MAX_COMPILED_PASSES)]:
            del self._compiled[key]

    def forget_passes(self, keep: Callable[[object], bool]) -> None:
        """Drop every compiled function whose key ``keep(key)`` rejects."""
        with self._lock:
            for key in [k for k in self._compiled if not keep(k)]:
                del self._compiled[key]

    def compiled_keys(self) -> list:
        """The keys of the compiled functions held, oldest use first."""
        with self._lock:
            return list(self._compiled)

    @property
    def outputs_probabilities(self) -> bool:
        """False for a model with one linear output (a regression or a raw score):
        its 'probability' is the output value itself, not a share of 100%."""
        from .graph import output_activation

        return not (len(self.labels) == 1 and output_activation(self.keras) == "linear")

    def network_image(self, image: Image.Image) -> Image.Image:
        """``image`` as the network sees it: the whole frame resized to the input size (never
        cropped, so the heatmap covers every pixel the person sees), in the network's colours."""
        height, width = self.input_size
        return image.convert("L" if self.channels == 1 else "RGB").resize((width, height), Image.BICUBIC)

    def prepare(self, image: Image.Image) -> np.ndarray:
        """The network's input for ``image`` (``network_image``, preprocessed)."""
        height, width = self.input_size
        x = np.asarray(self.network_image(image), np.float32).reshape(1, height, width, self.channels)
        return preprocessing_function(self.preprocessing)(x).astype(np.float32)


def sha256_of_weights(model: Model) -> str:
    """A fingerprint of the model's weights, for reports that must say exactly what ran."""
    digest = hashlib.sha256()
    for weight in model.keras.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return digest.hexdigest()


# A photo whose sides are both below this share of the network's input is stretched up so
# far that its map says little (a 1 x 1 image gives a uniform "strongest" map).
SMALL_PHOTO_SHARE = 0.25


def small_photo_note(photo_size: tuple[int, int], model: Model) -> str | None:
    """One sentence when the photo (width, height) is far below the network's input on both sides, else None:
    the dashboard shows it above the map and the command line prints it as a warning, word for word."""
    width, height = photo_size
    input_height, input_width = model.input_size
    if width >= input_width * SMALL_PHOTO_SHARE or height >= input_height * SMALL_PHOTO_SHARE:
        return None
    return (f"This photo is only {width} x {height} pixels; {model.name} looks at {input_width} x "
            f"{input_height}, so the photo was enlarged {max(input_width / width, input_height / height):.0f} times "
            "and its map says little about where anything is. Use a larger photo.")
