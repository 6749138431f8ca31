"""Keras layers that token models (Vision Transformers) need and Keras does not ship.

Keras has patch embeddings (a strided ``Conv2D`` and a ``Reshape``), attention
(``MultiHeadAttention``), ``LayerNormalization`` and a way to read the class token
(``Cropping1D``), but no learned extra tokens and no learned position embedding.
These two are registered with Keras under the package name ``gradcam``, so a
``.keras`` file that uses them loads in safe mode (no code is read from the file:
Keras finds the class by its registered name) in this process and in the sandbox's
model worker, which imports this module before it reads any file.

A model built with your own custom layers loads the same way once your code has
registered them (``@keras.saving.register_keras_serializable(package=...)``) and
imported them before loading: see docs/transformers.md.
"""

from __future__ import annotations

import keras

PACKAGE = "gradcam"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ExtraTokens(keras.layers.Layer):
    """Prepends ``count`` learned tokens (class, distillation, register tokens) to a
    (batch, tokens, dim) sequence; the class token is the first one."""

    def __init__(self, count: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.count = int(count)

    def build(self, input_shape):
        self.tokens = self.add_weight(name="tokens", shape=(1, self.count, int(input_shape[-1])),
                                      initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, x):
        batch = keras.ops.shape(x)[0]
        extra = keras.ops.broadcast_to(keras.ops.cast(self.tokens, x.dtype), (batch, self.count, keras.ops.shape(x)[-1]))
        return keras.ops.concatenate([extra, x], axis=1)

    def compute_output_shape(self, input_shape):
        tokens = None if input_shape[1] is None else input_shape[1] + self.count
        return (input_shape[0], tokens, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "count": self.count}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector per token position (ViT's learned 1-D position embedding)."""

    def build(self, input_shape):
        self.positions = self.add_weight(name="positions", shape=(1, int(input_shape[1]), int(input_shape[2])),
                                         initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, x):
        return x + keras.ops.cast(self.positions, x.dtype)
