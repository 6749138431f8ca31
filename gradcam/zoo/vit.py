"""A small Vision Transformer built from Keras layers, and synthetic photos to train it on.

No ViT's ImageNet weights can be had offline, so the tests, the benchmark and the
sample model (``scripts/train_tiny_vit.py``) train this one in seconds on photos
with a planted tag: a red square on one patch of the grid means class "tag", a
blue square anywhere else means "no tag". A faithful map of "tag" sits on that one
patch, so any method, grid or orientation error shows.

The layout is a ViT's (Dosovitskiy et al. 2021), named like timm's: a patchify
``Conv2D`` (``patch_embed``), extra tokens first (class, then distillation or
register tokens), a learned position embedding, blocks of
``blockN_norm1`` -> ``blockN_attn`` (Keras ``MultiHeadAttention``) -> ``blockN_add1`` ->
``blockN_norm2`` -> MLP -> ``blockN_add2``, a final ``norm`` and the class token read by
``Cropping1D`` (or, without extra tokens, global average pooling) into the head.
"""

from __future__ import annotations

import numpy as np

LABELS = ["tag"]  # one sigmoid output: its logit says "tag" (> 0) or not, so its gradient means one thing


def build_vit(input_size=(32, 32), patch: int = 8, dim: int = 32, blocks: int = 2, heads: int = 2,
              extra_tokens: int = 1, classes: int = 1, name: str = "tiny_vit"):
    """The Keras model; ``input_size`` is (height, width) and need not be square."""
    import keras

    from ..layers import ExtraTokens, PositionEmbedding

    height, width = input_size[0] // patch, input_size[1] // patch
    inputs = keras.Input((*input_size, 3))
    tokens = keras.layers.Conv2D(dim, patch, strides=patch, name="patch_embed")(inputs)
    tokens = keras.layers.Reshape((height * width, dim), name="patch_tokens")(tokens)  # row-major
    if extra_tokens:
        tokens = ExtraTokens(extra_tokens, name="extra_tokens")(tokens)
    tokens = PositionEmbedding(name="pos_embed")(tokens)
    for i in range(blocks):
        y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm1")(tokens)
        y = keras.layers.MultiHeadAttention(heads, dim // heads, name=f"block{i}_attn")(y, y)
        tokens = keras.layers.Add(name=f"block{i}_add1")([tokens, y])
        y = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm2")(tokens)
        y = keras.layers.Dense(dim * 2, activation="gelu", name=f"block{i}_mlp1")(y)
        y = keras.layers.Dense(dim, name=f"block{i}_mlp2")(y)
        tokens = keras.layers.Add(name=f"block{i}_add2")([tokens, y])
    tokens = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")(tokens)
    if extra_tokens:
        count = height * width + extra_tokens
        read = keras.layers.Flatten(name="class_token")(keras.layers.Cropping1D((0, count - 1))(tokens))
    else:
        read = keras.layers.GlobalAveragePooling1D(name="pool")(tokens)
    activation = "sigmoid" if classes == 1 else "softmax"
    return keras.Model(inputs, keras.layers.Dense(classes, activation=activation, name="head")(read), name=name)


def tag_photos(count: int, input_size=(32, 32), patch: int = 8, where=(1, 2), seed: int = 0):
    """(photos in 0..1, (count, H, W, 3) float32; labels 1 = tag): half carry the red tag on
    patch ``where`` (row, column), the others a blue square on another patch."""
    rng = np.random.default_rng(seed)
    rows, columns = input_size[0] // patch, input_size[1] // patch
    photos = rng.uniform(0.0, 0.6, (count, *input_size, 3)).astype(np.float32)
    labels = rng.integers(0, 2, count)
    for i in range(count):
        r, c = where
        if not labels[i]:
            r, c = rng.integers(0, rows), rng.integers(0, columns)
            if (r, c) == tuple(where):
                r = (r + 1) % rows
        photos[i, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch] = \
            (1.0, 0.1, 0.1) if labels[i] else (0.1, 0.1, 1.0)
    return photos, labels


def train_tag_vit(input_size=(32, 32), patch: int = 8, where=(1, 2), extra_tokens: int = 1, photos: int = 384,
                  epochs: int = 6, seed: int = 0, **shape):
    """A tiny ViT trained on ``tag_photos`` (a few seconds on a CPU); returns the Keras model."""
    import keras

    keras.utils.set_random_seed(seed)
    model = build_vit(input_size, patch, extra_tokens=extra_tokens, **shape)
    x, y = tag_photos(photos, input_size, patch, where, seed)
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.BinaryCrossentropy())
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    return model
