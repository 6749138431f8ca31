"""The layer picker's text for blocks inside KerasHub's custom layers: the block's name
stays with its sub-layer ("transformer_block_2/ln_1"), the rest of the path follows."""

import pytest

import gradcam
from dashboard.parts.layer_labels import SIDEBAR_BOX_FITS, layer_option, whole_option
from dashboard.safe_text import md
from helpers import own_model


def test_a_keras_hub_blocks_input_norm_is_named_with_its_block():
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=4, num_layers=2, num_heads=2,
                                            hidden_dim=16, mlp_dim=32, name="vit_backbone")
    model = own_model(keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=3), ["a", "b", "c"])
    shown = [layer_option(t) for t in gradcam.target_layers(model)]
    assert "transformer_block_2/ln_1  (8x8 tokens + 1 class token, 16) · in vit_backbone/vit_encoder" in shown
    assert "vit_encoder  (8x8 tokens + 1 class token, 16) · in vit_backbone" in shown  # no block around it


def test_a_long_option_is_shown_whole_under_the_box_that_cuts_it(lite0):
    """Issue 32, item 14: the sidebar's box showed "transformer_block_12/ln_1  (14x" of a ViT's layer."""
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=4, num_layers=2, num_heads=2,
                                            hidden_dim=16, mlp_dim=32, name="vit_backbone")
    model = own_model(keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=3), ["a", "b", "c"])
    block = next(t for t in gradcam.target_layers(model) if layer_option(t).startswith("transformer_block_2/ln_1"))
    whole = whole_option(block)
    assert len(layer_option(block)) > SIDEBAR_BOX_FITS
    # It wraps between a path's parts in a narrow sidebar, never inside one ("vit_ encoder", seen in Chromium).
    assert whole.replace("\u200b", "") == md(
        "transformer_block_2/ln_1  (8x8 tokens + 1 class token, 16) · in vit_backbone/vit_encoder")
    assert whole.count("\u200b") == whole.count("/\u200b") == 2  # after each slash, after no underscore
    assert whole_option(gradcam.default_layer(lite0)) is None  # "top_activation  (7x7x1280)": the box shows it all
