"""KerasHub classifiers: their own image converter, local preset folders, and preset names.

KerasHub (``pip install ".[hub]"``) is optional. Its image classifiers carry their
preprocessor inside the model (``classifier.preprocessor.image_converter``: an image
size, a scale and an offset, per channel or not): it is read here, so the person picks
nothing. A *preset folder* is what ``classifier.save_to_preset(folder)`` writes
(``config.json``, ``model.weights.h5``, ``task.json``, ``preprocessor.json`` ...); a
preset *name* is KerasHub's own catalogue, fetched on first use (``preset_cached`` says
whether it already was).
"""

from __future__ import annotations

import numpy as np

from ..engine.model import PREPROCESSING, affine_preprocessing
from ..errors import ModelLoadError
from ..intake.model_bytes import HUB_MISSING, hub_installed

# Preset names offered next to the Keras applications: (image size, download MB), ImageNet-1k.
PRESETS = {
    "resnet_50_imagenet": (224, 90),
    "vgg_16_imagenet": (224, 530),
    "efficientnet_b0_ra_imagenet": (224, 21),
    "vit_base_patch16_224_imagenet": (224, 330),
    "deit_base_distilled_patch16_224_imagenet": (224, 330),
    "swin_tiny_patch4_window7_224": (224, 110),
}
# Where KerasHub 0.32 fetches each preset from (its presets' "kaggle_handle"); with keras_hub already
# imported, its own registry is read instead, so a newer version's handle is the one checked.
_HANDLES = {
    "resnet_50_imagenet": "kaggle://keras/resnetv1/keras/resnet_50_imagenet/3",
    "vgg_16_imagenet": "kaggle://keras/vgg/keras/vgg_16_imagenet/3",
    "efficientnet_b0_ra_imagenet": "kaggle://keras/efficientnet/keras/efficientnet_b0_ra_imagenet/2",
    "vit_base_patch16_224_imagenet": "kaggle://keras/vit/keras/vit_base_patch16_224_imagenet/4",
    "deit_base_distilled_patch16_224_imagenet":
        "kaggle://keras/deit/keras/deit_base_distilled_patch16_224_imagenet/1",
    "swin_tiny_patch4_window7_224": "kaggle://keras/swin-transformer/keras/swin_tiny_patch4_window7_224/1",
}
_TOLERANCE = 1e-4


def installed() -> bool:
    """keras-hub is installed (found without importing it: that takes seconds)."""
    import importlib.util

    return importlib.util.find_spec("keras_hub") is not None


def _handle(name: str) -> str:
    import sys

    utils = sys.modules.get("keras_hub.src.utils.preset_utils")  # never imported here: that takes seconds
    known = getattr(utils, "BUILTIN_PRESETS", {}).get(name, {}).get("kaggle_handle") if utils else None
    return known if isinstance(known, str) else _HANDLES[name]


def preset_cached(name: str) -> bool:
    """True when KerasHub has already fetched the preset's weights: kagglehub keeps each file of
    a model under $KAGGLEHUB_CACHE (default ~/.cache/kagglehub)/models/<owner>/<model>/<framework>/
    <variation>/<version>/ and marks it complete in .../<variation>/.complete/<version>/<file>.complete
    once the download finished (a half-downloaded file has no mark)."""
    import os
    from pathlib import Path

    owner, model, framework, variation, version = _handle(name).removeprefix("kaggle://").split("/")
    cache = Path(os.environ.get("KAGGLEHUB_CACHE") or Path.home() / ".cache" / "kagglehub")
    folder = cache / "models" / owner / model / framework / variation
    weights = "model.weights.h5"
    return (folder / version / weights).is_file() and (folder / ".complete" / version / f"{weights}.complete").is_file()


def image_converter(keras_model):
    """A KerasHub classifier's own image converter, or None."""
    preprocessor = getattr(keras_model, "preprocessor", None)
    return getattr(preprocessor, "image_converter", None)


def _per_channel(value, channels: int) -> np.ndarray:
    if value is None:
        return np.zeros(channels, np.float32)
    return np.broadcast_to(np.asarray(value, np.float32).reshape(-1), (channels,)).astype(np.float32)


def own_preprocessing(keras_model, channels: int) -> str | None:
    """The PREPROCESSING name of the classifier's own scaling (x * scale + offset on 0..255
    pixels), or None when the model carries no KerasHub image converter."""
    converter = image_converter(keras_model)
    if converter is None:
        return None
    scale = getattr(converter, "scale", None)
    offset = getattr(converter, "offset", None)
    scale = np.ones(channels, np.float32) if scale is None else _per_channel(scale, channels)
    offset = _per_channel(offset, channels)
    probe = np.arange(channels * 2, dtype=np.float32).reshape(1, 1, 2, channels) * 37.0
    for name in PREPROCESSING:
        expected = probe * scale + offset
        if np.allclose(PREPROCESSING[name](probe), expected, atol=_TOLERANCE):
            return name
    return affine_preprocessing(tuple(float(s) for s in scale), tuple(float(o) for o in offset))


def own_input_size(keras_model) -> tuple[int, int] | None:
    """The converter's image size (height, width): what a classifier whose backbone takes
    any size (KerasHub's ResNet) was trained at."""
    converter = image_converter(keras_model)
    size = getattr(converter, "image_size", None)
    if size is None or len(size) != 2 or None in size:
        return None
    return int(size[0]), int(size[1])


def preset_offline_message(name: str) -> str:
    size, download_mb = PRESETS.get(name, (224, 0))
    return (f"Could not download the KerasHub preset {name} (about {download_mb} MB); without internet, save it on "
            "a machine that has internet (classifier.save_to_preset(folder)) and load that folder instead.")


def preset_model(name: str):
    """A KerasHub preset by name: KerasHub downloads it on first use and keeps it in its cache."""
    if not hub_installed():
        raise ModelLoadError(HUB_MISSING)
    import keras_hub

    try:
        return keras_hub.models.ImageClassifier.from_preset(name)
    except MemoryError as error:
        raise ModelLoadError("The model needs more memory than is available to load it.") from error
    except Exception as error:  # offline: KerasHub's downloader raises its own errors
        raise ModelLoadError(preset_offline_message(name)) from error
