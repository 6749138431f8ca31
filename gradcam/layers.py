"""Keras layers the project adds to models: what token models (Vision Transformers) need
and Keras does not ship, and the audit's correction (P-ClArC).

Keras has patch embeddings (a strided ``Conv2D`` and a ``Reshape``), attention
(``MultiHeadAttention``), ``LayerNormalization`` and a way to read the class token
(``Cropping1D``), but no learned extra tokens and no learned position embedding.
``ArtifactProjection`` is the audit's fix (``gradcam/audit/correction.py``): it
projects a shortcut's direction out of a layer's activations. All three are
registered with Keras under the package name ``gradcam``, so a
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


@keras.saving.register_keras_serializable(package=PACKAGE)
class ArtifactProjection(keras.layers.Layer):
    """P-ClArC (Anders et al. 2022), inserted after an audited layer:
    a' = a - v v^T (a - z), with the inner product over every axis but the batch.

    ``direction`` v is the unit vector from the clean photos' mean activation to the
    flagged photos' (the artifact's direction in this layer), ``reference`` z the
    clean photos' mean activation; both have the layer's output shape. The
    activation's component along v is set to the clean photos' value, so whatever
    the artifact adds along v no longer reaches the layers after it; everything
    orthogonal to v passes unchanged. Both are non-trainable weights, so the file
    holds numbers only (no code): safe mode loads it. Zero weights make it the identity.
    """

    def build(self, input_shape):
        shape = tuple(int(d) for d in input_shape[1:])
        self.direction = self.add_weight(name="direction", shape=shape, initializer="zeros", trainable=False)
        self.reference = self.add_weight(name="reference", shape=shape, initializer="zeros", trainable=False)

    def call(self, a):
        v = keras.ops.cast(self.direction, a.dtype)
        z = keras.ops.cast(self.reference, a.dtype)
        axes = tuple(range(1, len(a.shape)))
        along = keras.ops.sum((a - z) * v, axis=axes, keepdims=True)  # v^T (a - z), one number per photo
        return a - along * v

    def compute_output_shape(self, input_shape):
        return input_shape
