"""Vision Transformers on their patch grid: token layers as targets, the default
layer, the no-gradient sentence, attention rollout (issue 20).

A tiny ViT (class token, learned position embedding, two blocks of Keras
MultiHeadAttention) is trained here in seconds on photos whose red tag sits on
patch (row 1, column 2) of a 4x4 grid: an asymmetric position, so a map rebuilt
column-major (transposed) would light (2, 1) instead and fail.
"""

import numpy as np
import pytest
from PIL import Image

import gradcam
from gradcam.engine.tokens import TokenGrid, from_grid, infer_grid, to_grid
from gradcam.zoo.vit import LABELS, build_vit, tag_photos, train_tag_vit
from helpers import own_model

WHERE = (1, 2)  # the tag's patch (row, column) on the 4x4 grid
SEED = 1  # the tiny ViT's training seed (at seed 0 Grad-CAM's mean-gradient map at norm1 stays all negative)


@pytest.fixture(scope="module")
def vit():
    return own_model(train_tag_vit(where=WHERE, seed=SEED), LABELS)


@pytest.fixture(scope="module")
def tagged():
    """Four photos with the tag, as a person would upload them."""
    photos, labels = tag_photos(12, where=WHERE, seed=7)
    return [Image.fromarray((p * 255).round().astype(np.uint8)) for p in photos[labels == 1][:4]]


def hottest_cell(raw):
    return tuple(int(i) for i in np.unravel_index(np.argmax(raw), raw.shape))


def test_token_layers_are_listed_with_their_grid(vit):
    shown = {t.name: str(t) for t in gradcam.target_layers(vit)}
    assert shown["block1_norm1"] == "block1_norm1  (4x4 tokens + 1 class token, 32)"
    assert shown["patch_tokens"] == "patch_tokens  (4x4 tokens, 32)"  # before the class token joins
    assert shown["block0_mlp1"] == "block0_mlp1  (4x4 tokens + 1 class token, 64)"
    assert "class_token" not in shown  # one token (what the head reads) is no grid
    assert gradcam.default_layer(vit).name == "block1_norm1"  # the last block's input norm
    assert [t.name for t in gradcam.stage_layers(vit)] == ["block0_norm1", "block1_norm1"]  # one per block


def test_the_grid_is_rebuilt_row_major_after_the_extra_tokens():
    import tensorflow as tf

    grid = TokenGrid(height=2, width=3, extra=2)
    tokens = tf.reshape(tf.range(8, dtype=tf.float32), (1, 8, 1))  # token i carries the value i
    extra, patches = to_grid(tokens, grid)
    assert extra.numpy().ravel().tolist() == [0, 1]
    # row r, column c is token extra + r * width + c
    assert patches.numpy()[0, :, :, 0].tolist() == [[2, 3, 4], [5, 6, 7]]
    assert from_grid(extra, patches, grid).numpy().ravel().tolist() == list(range(8))


@pytest.mark.parametrize("method", ["gradcam", "hirescam", "layercam", "scorecam"])
def test_maps_at_the_default_layer_sit_on_the_tag(vit, tagged, method):
    for photo in tagged:
        explanation = gradcam.explain(vit, photo, target="tag", method=method)
        assert explanation.layer == "block1_norm1"
        assert explanation.raw.shape == (4, 4)
        assert not explanation.no_positive_evidence
        assert hottest_cell(explanation.raw) == WHERE  # (2, 1) if the grid were transposed
        # and on the photo: the heatmap's hottest pixels are inside the tag's 8x8 patch
        rows, columns = np.nonzero(explanation.heatmap >= 0.95)
        assert rows.min() >= 8 - 4 and rows.max() < 16 + 4 and columns.min() >= 16 - 4 and columns.max() < 24 + 4


def test_the_last_blocks_output_gets_no_gradient_and_says_so(vit, tagged):
    with pytest.raises(ValueError) as refused:
        gradcam.explain(vit, tagged[0], target="tag", layer="block1_add2")
    assert str(refused.value) == ('At layer "block1_add2", no gradient reaches these tokens from the class score: '
                                  "pick an earlier layer.")
    # the same model still explains at the default layer afterwards
    assert hottest_cell(gradcam.explain(vit, tagged[0], target="tag").raw) == WHERE


def test_attention_rollout_is_the_literal_matrix_product(vit, tagged):
    import keras

    photo = tagged[0]
    x = vit.prepare(photo)
    norms = keras.Model(vit.keras.inputs, [vit.keras.get_layer(f"block{i}_norm1").output for i in range(2)])
    attentions = []
    for i, tokens in enumerate(norms(x)):
        _, scores = vit.keras.get_layer(f"block{i}_attn")(tokens, tokens, return_attention_scores=True)
        attentions.append(np.asarray(scores)[0].astype(np.float64))  # (heads, 17, 17)
    # Abnar & Zuidema: heads averaged, identity added for the residual, rows normalised, multiplied through.
    rollout = np.eye(17)
    for scores in attentions:
        fused = scores.mean(axis=0) + np.eye(17)
        for row in range(17):
            fused[row] = fused[row] / fused[row].sum()
        rollout = fused @ rollout
    expected = rollout[0, 1:].reshape(4, 4)  # the class token's row, over the 16 patches row by row

    explanation = gradcam.explain(vit, photo, method="attention-rollout")
    assert explanation.layer == "attention layers"
    np.testing.assert_allclose(explanation.raw, expected, rtol=1e-4, atol=1e-6)
    assert hottest_cell(explanation.raw) == WHERE


def test_gradient_weighted_rollout_sits_on_the_tag(vit, tagged):
    for photo in tagged:
        explanation = gradcam.explain(vit, photo, target="tag", method="gradient-rollout")
        assert hottest_cell(explanation.raw) == WHERE


def test_rollout_on_a_model_without_attention_says_it_does_not_apply(tagged):
    import keras

    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    cnn = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(features)))
    model = own_model(cnn, ["tag"])
    with pytest.raises(ValueError, match="needs a model with attention layers") as refused:
        gradcam.explain(model, tagged[0], method="attention-rollout")
    assert "\n" not in str(refused.value)
    assert gradcam.explain(model, tagged[0]).raw.shape == (30, 30)  # the CNN still explains with Grad-CAM


def test_register_tokens_and_a_non_square_input():
    """Three extra tokens (class, distillation, one register) before a 4x6 grid from a
    32x48 photo; the tag at (row 1, column 4): a wrong grid or orientation misses it."""
    where = (1, 4)
    # Seed 0 here: at seeds 1-3 this model's gradient maps at norm1 stay all negative (rollout is right at all four).
    keras_model = train_tag_vit(input_size=(32, 48), where=where, extra_tokens=3, seed=0)
    vit = own_model(keras_model, LABELS)
    assert str(gradcam.default_layer(vit)) == (
        "block1_norm1  (4x6 tokens + 3 extra tokens (class, distillation or registers), 32)")
    photos, labels = tag_photos(12, (32, 48), where=where, seed=7)
    for photo in photos[labels == 1][:3]:
        image = Image.fromarray((photo * 255).round().astype(np.uint8))
        for method in ("gradcam", "attention-rollout"):
            explanation = gradcam.explain(vit, image, target="tag", method=method)
            assert explanation.raw.shape == (4, 6)
            assert hottest_cell(explanation.raw) == where, method


def test_a_grid_that_cannot_be_told_is_named_in_one_sentence():
    import keras

    inputs = keras.Input((32, 32, 3))
    patches = keras.layers.Conv2D(8, 8, strides=8)(inputs)  # a 4x4 grid
    tokens = keras.layers.Reshape((8, 16), name="odd_tokens")(patches)  # 8 tokens: not 4x4 plus extras
    model = own_model(keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(tokens))), ["tag"])
    assert "odd_tokens" not in {t.name for t in gradcam.target_layers(model)}
    with pytest.raises(ValueError) as refused:
        gradcam.explain(model, Image.new("RGB", (32, 32)), layer="odd_tokens")
    assert str(refused.value) == ('The token grid of layer "odd_tokens" cannot be told from its token count and the '
                                  "model's patch embedding, so it cannot be shown as a map.")


def test_grid_inference_from_the_input_size_alone():
    # no feature map before the tokens (patches cut by reshapes): the input size decides, if uniquely
    assert infer_grid(1 + 14 * 14, [], (224, 224)) == TokenGrid(14, 14, 1)
    assert infer_grid(14 * 14, [], (224, 224)) == TokenGrid(14, 14, 0)
    assert infer_grid(5 + 16 * 16, [(16, 16)], (256, 256)) == TokenGrid(16, 16, 5)
    assert infer_grid(1, [(4, 4)], (32, 32)) is None


def test_a_batch_of_photos_gets_the_same_token_maps_as_one_at_a_time(vit, tagged):
    batch = gradcam.explain_batch(vit, tagged, targets=["tag"])
    for photo, (explained,) in zip(tagged, batch):
        alone = gradcam.explain(vit, photo, target="tag")
        assert explained.layer == alone.layer == "block1_norm1"
        np.testing.assert_allclose(explained.raw, alone.raw, rtol=1e-4, atol=1e-6)
