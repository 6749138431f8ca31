"""Shared fixtures: the real offline model and real photos, loaded once per run."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
from PIL import Image


def photo(name: str) -> Image.Image:
    """A free-licence photo that ships inside scikit-image (no download)."""
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


def own_model(keras_model, labels, preprocessing="0..1"):
    """A gradcam Model around a Keras model built in a test."""
    from gradcam.engine.model import Model

    height, width = keras_model.inputs[0].shape[1:3]
    return Model(name="test", keras=keras_model, input_size=(height, width), labels=labels,
                 preprocessing=preprocessing)


def nested_lite0(lite0):
    """Transfer learning as people do it: the real EfficientNet-Lite0 without its
    classifier, nested and frozen under a new 3-class head. Returns (model, base)."""
    import keras

    keras.utils.set_random_seed(4)
    base = keras.Model(lite0.keras.inputs, lite0.keras.get_layer("top_activation").output, name="pretrained")
    base.trainable = False
    inputs = keras.Input((224, 224, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled))
    return own_model(model, ["a", "b", "c"], "efficientnet-lite"), base


@pytest.fixture(scope="session")
def lite0():
    import gradcam

    return gradcam.load_model("EfficientNet-Lite0")


@pytest.fixture(scope="session")
def cat():
    return photo("chelsea")  # Chelsea the cat: ImageNet calls her an Egyptian cat / tabby


@pytest.fixture(scope="session")
def coffee():
    return photo("coffee")  # a cup of espresso on a saucer


@pytest.fixture(scope="session")
def noise_image():
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8))
