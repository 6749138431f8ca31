"""Attention in the cost estimate, TensorFlow's out-of-memory as a sentence, and a token
grid read off the input size said to be a guess (issues 28 and 30, item 4).

The hostile model: a 256 x 256 photo reshaped into 65,536 tokens of 3 numbers, one
attention head over them, pooled into 2 classes: 26 parameters in a 36 kB file, whose
attention scores alone are 65,536^2 floats = 17 GB per copy. Before attention was
counted it was estimated at a few MB and died inside TensorFlow.
"""

import time

import keras
import numpy as np
import pytest
from PIL import Image

import gradcam
from gradcam.engine import cost, passes
from helpers import own_model

SIDE = 256


def token_model(side: int = SIDE, heads: int = 1):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((side, side, 3))
    tokens = keras.layers.Reshape((side * side, 3), name="pixels_as_tokens")(inputs)  # no patch embedding
    attended = keras.layers.MultiHeadAttention(heads, 1, name="attention")(tokens, tokens)
    pooled = keras.layers.GlobalAveragePooling1D()(attended)
    return keras.Model(inputs, keras.layers.Dense(2)(pooled))


def test_a_tiny_file_with_65536_tokens_is_refused_before_any_pass(tmp_path):
    path = tmp_path / "tokens.keras"
    token_model().save(path)
    assert path.stat().st_size < 50_000
    model = gradcam.load_model(path)
    started = time.perf_counter()
    with pytest.raises(gradcam.ExplanationTooCostly) as refused:
        gradcam.explain(model, Image.new("RGB", (64, 64)))
    assert time.perf_counter() - started < 1.0
    sentence = str(refused.value)
    assert "\n" not in sentence and "256 x 256" in sentence and "the limit is 2.0 GB" in sentence, sentence
    assert model.compiled_keys() == [], "a pass was built before the refusal"
    # Attention rollout reads the same scores: refused too.
    with pytest.raises(gradcam.ExplanationTooCostly):
        gradcam.explain(model, Image.new("RGB", (64, 64)), method="attention-rollout")


def test_the_scores_are_heads_times_tokens_squared_per_attention_layer():
    small = own_model(token_model(side=8, heads=3), ["a", "b"])
    without = own_model(token_model(side=8, heads=1), ["a", "b"])
    tokens = 8 * 8
    # Two copies (before and after the softmax) of heads x tokens x tokens.
    assert cost.activations(small).total - cost.activations(without).total == 2 * (3 - 1) * tokens * tokens


def test_keras_hub_blocks_and_their_attention_are_counted():
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=4, num_layers=2, num_heads=2,
                                            hidden_dim=16, mlp_dim=32)
    model = own_model(keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=3), ["a", "b", "c"])
    tokens, heads, blocks = 65, 2, 2
    # Before interception the encoder was one output of 65 x 16: now every block's tensors and scores count.
    assert cost.activations(model).total > 32 * 32 * 3 + blocks * 2 * heads * tokens * tokens


def test_an_out_of_memory_error_inside_a_pass_is_one_sentence(monkeypatch):
    import tensorflow as tf

    model = own_model(token_model(side=8), ["a", "b"])

    def exhausted(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[65536,65536]")

    real_cached = passes.cached
    monkeypatch.setattr(passes, "cached", lambda m, key, build: real_cached(m, key, lambda head: exhausted))
    with pytest.raises(gradcam.ExplanationTooCostly) as refused:
        gradcam.explain(model, Image.new("RGB", (8, 8)))
    assert str(refused.value) == passes.OUT_OF_MEMORY
    monkeypatch.undo()
    model.forget_passes(lambda key: False)
    assert np.isfinite(gradcam.explain(model, Image.new("RGB", (8, 8))).heatmap).all()  # and it carries on


def test_a_grid_read_off_the_input_size_says_it_is_a_guess():
    model = own_model(token_model(side=8), ["a", "b"])
    shown = {t.name: str(t) for t in gradcam.target_layers(model)}
    assert shown["pixels_as_tokens"] == "pixels_as_tokens  (8x8 tokens, a guess from the input size, 3)"
