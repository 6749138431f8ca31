"""Compiled passes are an LRU per model (issue 16): every new (layer, method) pair used to be
kept for ever, ~21 MB each on Lite0."""

import keras
import numpy as np
from PIL import Image

import gradcam
from helpers import own_model
from gradcam.engine import model as model_module


def test_a_model_keeps_at_most_its_budget_of_compiled_passes_the_newest_first(monkeypatch):
    monkeypatch.setattr(model_module, "MAX_COMPILED_PASSES", 2)
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for i in range(3):
        x = keras.layers.Conv2D(2, 3, padding="same", name=f"conv{i}")(x)
    model = own_model(keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))), ["a", "b"])
    image = Image.fromarray(np.full((16, 16, 3), 128, np.uint8))
    for i in range(3):
        gradcam.explain(model, image, layer=f"conv{i}")
    kept = [k for k in model.compiled_keys() if k != "head"]
    assert len(kept) == 2, kept
    assert [k[1] for k in kept] == ["conv1", "conv2"], kept  # the least recently used went first
    assert "head" in model.compiled_keys()  # pinned: never counted, never dropped
    again = gradcam.explain(model, image, layer="conv0")  # a dropped pass is simply built again
    assert again.layer == "conv0"
