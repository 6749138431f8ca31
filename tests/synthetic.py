"""Small hand-built Keras models whose answers are known exactly, for verdict,
report and page tests that must run in seconds rather than on Lite0."""

import keras
import numpy as np

from helpers import own_model

SIDE = 32


def gaussian(cy: float, cx: float, sigma: float) -> np.ndarray:
    y, x = np.mgrid[:SIDE, :SIDE].astype(np.float64)
    return np.exp(-0.5 * (((y - cy) / sigma) ** 2 + ((x - cx) / sigma) ** 2))


def centre_reader():
    """A model that reads the middle of the photo and nothing else: logit 0 is a
    Gaussian-weighted sum of the pixels around the centre (sigma a quarter of the
    side, the blob's own), set so a white photo gives class 0 a probability of
    sigmoid(3) and a black one sigmoid(-3); logit 1 is always 0."""
    weights = gaussian((SIDE - 1) / 2, (SIDE - 1) / 2, SIDE / 4)[..., None].repeat(3, axis=2)
    scale = 6.0 / weights.sum()
    inputs = keras.Input((SIDE, SIDE, 3))
    features = keras.layers.Conv2D(1, 1, use_bias=False, name="feature")(inputs)
    logits = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(features))
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    model.get_layer("feature").set_weights([np.ones((1, 1, 3, 1), np.float32)])
    kernel = np.zeros((SIDE * SIDE, 2), np.float32)
    kernel[:, 0] = weights[..., 0].reshape(-1) * scale
    model.get_layer("logits").set_weights([kernel, np.array([-3.0, 0.0], np.float32)])
    return own_model(model, ["middle", "other"])


def constant_model():
    """An 'untrained' model whose output never moves: every weight into the logits is zero."""
    inputs = keras.Input((SIDE, SIDE, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    logits = keras.layers.Dense(2, kernel_initializer="zeros", bias_initializer="zeros")(pooled)
    return own_model(keras.Model(inputs, keras.layers.Softmax()(logits)), ["a", "b"])


def wide_model(channels: int = 48):
    """A small random (seeded) CNN with more channels than Score-CAM's dashboard
    budget, so the budgeted map and the full map differ."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((SIDE, SIDE, 3))
    features = keras.layers.Conv2D(channels, 5, strides=4, padding="same", activation="relu", name="wide")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    logits = keras.layers.Dense(3)(pooled)
    return own_model(keras.Model(inputs, keras.layers.Softmax()(logits)), ["a", "b", "c"])
