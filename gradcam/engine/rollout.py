"""Attention rollout and its gradient-weighted variant: maps from a transformer's
attention instead of from one layer's activations.

Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in
Transformers"): per block l, the attention averaged over heads, plus the identity
for the residual connection, rows normalised to sum to 1,

    Â_l = rownorm(mean_h A_l,h + I),      R = Â_L · ... · Â_2 · Â_1,

and the map is the class token's row of R over the patch tokens (for a model
without a class token, the mean of all rows: every token is read by its pooling).
It is the same map for every class.

Gradient-weighted rollout (Chefer, Gur & Wolf 2021, "Generic Attention-model
Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers"):
each head's attention weighted by the score's gradient, negatives dropped, heads
averaged, and accumulated with the residual

    Ā_l = mean_h (dS/dA_l,h ⊙ A_l,h)^+,      R_0 = I,   R_l = R_(l-1) + Ā_l · R_(l-1),

so the map is class-specific. Both run inside the compiled pass (``passes.py``);
the scores come from Keras ``MultiHeadAttention`` layers, captured by the graph
runner with ``return_attention_scores``.
"""

from __future__ import annotations

NO_ATTENTION = ("{method} needs a model with attention layers (Keras MultiHeadAttention), and {model} has none: "
                "it applies to transformers; use a layer-based method such as Grad-CAM.")


def _class_row(relevance, grid):
    """(K, T, T) -> (K, h, w): the class token's row over the patches, or the mean row."""
    import tensorflow as tf

    if grid.extra:
        row = relevance[:, 0, grid.extra:]
    else:
        row = tf.reduce_mean(relevance, axis=1)
    return tf.reshape(row, (-1, grid.height, grid.width))


def rollout_map(attentions, grads, grid):
    """Attention rollout over ``attentions`` [(1, heads, T, T)] in block order."""
    import tensorflow as tf

    tokens = tf.shape(attentions[0])[-1]
    eye = tf.eye(tokens)
    relevance = eye
    for scores in attentions:
        fused = tf.reduce_mean(scores[0], axis=0) + eye
        fused = fused / tf.reduce_sum(fused, axis=-1, keepdims=True)
        relevance = tf.matmul(fused, relevance)
    return _class_row(relevance[None], grid), tf.zeros((1, 0))


def gradient_rollout_map(attentions, grads, grid):
    """Gradient-weighted rollout: ``grads`` [(K, 1, heads, T, T)], dS_k/dA_l per block."""
    import tensorflow as tf

    count = tf.shape(grads[0])[0]
    tokens = tf.shape(attentions[0])[-1]
    relevance = tf.tile(tf.eye(tokens)[None], (count, 1, 1))  # (K, T, T)
    for scores, grad in zip(attentions, grads):
        fused = tf.reduce_mean(tf.nn.relu(grad[:, 0] * scores[0][None]), axis=1)  # (K, T, T)
        relevance = relevance + tf.matmul(fused, relevance)
    return _class_row(relevance, grid), tf.zeros((count, 0))
