"""Class activation maps: one compiled pipeline, methods that only weight channels.

The pipeline (per model and layer, traced once): run the model capturing the
layer's feature maps A and the logits; take the scores s = W @ logits, one row of
W per target (a one-hot row for "this class"; other rows give contrastive or
counterfactual maps); differentiate every score with respect to A in the same
pass; let the method turn (A, dS/dA) into channel weights; the map is
ReLU(sum_k weight_k * A_k). Image and targets are tensor inputs, so a new photo
or a new class never retraces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from .layers import (
    TargetLayer, logits_head, output_activation, resolve_layer, run_capturing, run_capturing_many, stage_layers,
)
from .labels import find_class

# --- methods: each says only how channels are weighted --------------------------


def _gradcam_weights(features, grads):
    """Selvaraju et al. 2017: the spatial mean of the gradient."""
    import tensorflow as tf

    return tf.reduce_mean(grads, axis=(1, 2))


def _gradcam_plus_plus_weights(features, grads):
    """Chattopadhyay et al. 2018: positive gradients weighted per position by alpha,
    the closed form for an exponential score (as pytorch-grad-cam computes it)."""
    import tensorflow as tf

    g2 = grads * grads
    g3 = g2 * grads
    activation_sum = tf.reduce_sum(features, axis=(0, 1))  # (k,)
    denominator = 2.0 * g2 + activation_sum * g3
    alpha = tf.math.divide_no_nan(g2, tf.where(tf.abs(denominator) > 1e-12, denominator, 0.0))
    return tf.reduce_sum(alpha * tf.nn.relu(grads), axis=(1, 2))


METHODS: dict[str, tuple[str, Callable]] = {
    "gradcam": ("Grad-CAM", _gradcam_weights),
    "gradcam++": ("Grad-CAM++", _gradcam_plus_plus_weights),
}


# --- results --------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float  # the model's own probability (softmax or sigmoid output)
    logit: float  # the pre-activation score that Grad-CAM differentiates


@dataclass(frozen=True)
class Explanation:
    heatmap: np.ndarray  # (H, W) float32 in [0, 1] at the input image's own size
    raw: np.ndarray  # (h, w) float32 at layer resolution: ReLU(sum_k w_k A_k), unscaled
    target: int
    label: str
    probability: float
    layer: str
    method: str
    predictions: list[Prediction]
    no_positive_evidence: bool  # the map was <= 0 everywhere: heatmap is all zeros
    channel_weights: np.ndarray = field(repr=False)  # (k,) the method's weights
    before_relu: np.ndarray = field(repr=False)  # (h, w) the weighted sum before ReLU


@dataclass(frozen=True)
class CamTensors:
    """Everything one pass computed, for pages that teach how the map is made."""

    logits: np.ndarray  # (C,)
    probabilities: np.ndarray  # (C,)
    targets: np.ndarray  # (K,) the classes explained
    features: np.ndarray | None  # (h, w, k) the layer's activations A
    gradients: np.ndarray | None  # (K, h, w, k) dS/dA
    channel_weights: np.ndarray  # (K, k)
    before_relu: np.ndarray  # (K, h, w)


# --- the compiled pipeline ------------------------------------------------------


def _head(model):
    """The model's logits stand-in, made once per model (it builds a layer, which
    must not happen while tracing)."""
    with model._lock:
        if "head" not in model._compiled:
            model._compiled["head"] = logits_head(model.keras)
        return model._compiled["head"]


def _compiled(model, layer: TargetLayer, method: str, keep_tensors: bool):
    """One tf.function per (model, layer, method). The lock makes every session
    share one function object; TensorFlow traces it once, on its first call."""
    head = _head(model)
    key = ("cam", layer.name, method, keep_tensors)
    with model._lock:
        if key not in model._compiled:
            model._compiled[key] = _build(model, layer, method, keep_tensors, head)
        return model._compiled[key]


def _build(model, layer: TargetLayer, method: str, keep_tensors: bool, head):
    import tensorflow as tf

    weigh = METHODS[method][1]
    height, width = model.input_size
    classes = len(model.labels)
    keras_model = model.keras

    @tf.function(
        input_signature=[
            tf.TensorSpec((1, height, width, model.channels), tf.float32),
            tf.TensorSpec((None, classes), tf.float32),
            tf.TensorSpec((), tf.int32),
        ],
        reduce_retracing=True,
        autograph=False,  # no Python control flow on tensors here; skipping the conversion halves the trace
    )
    def run(x, target_rows, top):
        # Only the captured layer is watched (on_capture), not every weight the model
        # reads: the tape then records just the ops after that layer, and tracing the
        # backward pass takes about half as long (the cold first explanation).
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            features, logits = run_capturing(keras_model, x, layer.name, on_capture=tape.watch, head=head)
            logits = tf.reshape(logits, (-1,))
            # top > 0: explain the model's own top classes (decided inside this pass).
            rows = tf.cond(
                top > 0,
                lambda: tf.one_hot(tf.math.top_k(logits, k=top).indices, classes),
                lambda: target_rows,
            )
            scores = tf.linalg.matvec(rows, logits)
        grads = tape.jacobian(scores, features)[:, 0]  # (K, h, w, k)
        features = features[0]
        weights = weigh(features, grads)
        before_relu = tf.einsum("hwk,nk->nhw", features, weights)
        out = {"logits": logits, "rows": rows, "weights": weights, "before_relu": before_relu}
        if keep_tensors:
            out.update(features=features, gradients=grads)
        return out

    return run


def _forward(model):
    import tensorflow as tf

    head = _head(model)
    with model._lock:
        if "forward" not in model._compiled:
            height, width = model.input_size
            spec = tf.TensorSpec((1, height, width, model.channels), tf.float32)
            # The same graph walk as the explanations, so predictions and maps
            # agree on the logits, and a softmax model's true logits are reported.
            model._compiled["forward"] = tf.function(
                lambda x: run_capturing(model.keras, x, None, head=head)[1], input_signature=[spec], autograph=False
            )
        return model._compiled["forward"]


# --- helpers --------------------------------------------------------------------


def _probabilities(model, logits: np.ndarray) -> np.ndarray:
    kind = output_activation(model.keras)
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    if kind == "linear" and logits.size == 1:  # a regression: its value is what is shown
        return logits.copy()
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def _predictions(model, logits, probabilities, top: int) -> list[Prediction]:
    order = np.argsort(-logits, kind="stable")[:top]
    return [Prediction(int(i), model.labels[i], float(probabilities[i]), float(logits[i])) for i in order]


def target_index(model, target) -> int:
    """A class index from an int or a label (ImageNet names match loosely)."""
    if isinstance(target, (int, np.integer)):
        if not 0 <= int(target) < len(model.labels):
            raise ValueError(f"Class {target} does not exist; the model has {len(model.labels)} classes.")
        return int(target)
    return find_class(str(target), model.labels, model.synonyms)


def _as_image(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    from .images import load_image

    return load_image(image)


def upsample(raw: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """Scale a layer-resolution map to [0, 1] and resize it to ``size`` (width, height).

    Returns (heatmap, no_positive_evidence). A map with nothing above zero is all
    zeros, never NaN.
    """
    peak = float(raw.max()) if raw.size else 0.0
    if not peak > 0.0:
        return np.zeros((size[1], size[0]), np.float32), True
    scaled = Image.fromarray((raw / peak).astype(np.float32), mode="F")
    # Bilinear, not bicubic: it never overshoots, so the result stays in [0, 1].
    resized = np.clip(np.asarray(scaled.resize(size, Image.BILINEAR), np.float32), 0.0, None)
    # Pixel centres rarely land on a cell centre, so rescale: the hottest spot is 1.
    return resized / resized.max(), False


# --- public API -----------------------------------------------------------------


def predict(model, image, top: int = 5) -> list[Prediction]:
    """The model's ``top`` classes for ``image``, most likely first."""
    image = _as_image(image)
    logits = np.asarray(_forward(model)(model.prepare(image)), np.float64).reshape(-1)
    return _predictions(model, logits, _probabilities(model, logits), top)


def compute(model, image, targets=None, layer=None, method: str = "gradcam", *, top: int = 1,
            keep_tensors: bool = False) -> CamTensors:
    """One compiled pass: maps for ``targets`` (rows over the classes, or class
    indices), or for the model's own ``top`` classes when targets is None."""
    if method not in METHODS:
        raise ValueError(f'Unknown method "{method}"; choose one of: {", ".join(METHODS)}.')
    target_layer = resolve_layer(model, layer)
    classes = len(model.labels)
    if targets is None:
        rows = np.zeros((0, classes), np.float32)
        top = max(1, min(int(top), classes))
    else:
        rows = np.asarray(targets, np.float32)
        if rows.ndim == 1:  # class indices: one-hot rows (not an eye(classes) matrix per call)
            indices = np.asarray(targets, int)
            rows = np.zeros((len(indices), classes), np.float32)
            rows[np.arange(len(indices)), indices] = 1.0
        top = 0
    out = _compiled(model, target_layer, method, keep_tensors)(model.prepare(_as_image(image)), rows, np.int32(top))
    logits = out["logits"].numpy().astype(np.float64)
    chosen = out["rows"].numpy()
    return CamTensors(
        logits=logits,
        probabilities=_probabilities(model, logits),
        targets=chosen.argmax(axis=1),
        features=out["features"].numpy() if keep_tensors else None,
        gradients=out["gradients"].numpy() if keep_tensors else None,
        channel_weights=out["weights"].numpy(),
        before_relu=out["before_relu"].numpy(),
    )


def _explanation(model, image, before_relu, weights, index, label, probability, layer, method, predictions):
    before = before_relu.astype(np.float32)
    raw = np.maximum(before, 0.0)
    heatmap, empty = upsample(raw, image.size)
    return Explanation(heatmap=heatmap, raw=raw, target=int(index), label=label, probability=float(probability),
                       layer=layer, method=method, predictions=predictions, no_positive_evidence=empty,
                       channel_weights=weights, before_relu=before)


def explain_many(model, image, targets: Sequence | None = None, layer=None, method: str = "gradcam",
                 top: int = 5) -> list[Explanation]:
    """Maps for several classes from one pass: ``targets`` (indices or labels), or
    the model's own ``top`` classes when targets is None."""
    image = _as_image(image)
    indices = None if targets is None else [target_index(model, t) for t in targets]
    tensors = compute(model, image, indices, layer, method, top=top)
    predictions = _predictions(model, tensors.logits, tensors.probabilities, 5)
    name = resolve_layer(model, layer).name
    return [
        _explanation(model, image, tensors.before_relu[k], tensors.channel_weights[k], index, model.labels[index],
                     tensors.probabilities[index], name, method, predictions)
        for k, index in enumerate(tensors.targets)
    ]


def explain(model, image, target=None, layer=None, method: str = "gradcam") -> Explanation:
    """The map for one class: ``target`` is None (the top-1 class), an index or a label."""
    return explain_many(model, image, None if target is None else [target], layer, method, top=1)[0]


def explain_contrast(model, image, target, other, layer=None, method: str = "gradcam") -> Explanation:
    """Why ``target`` rather than ``other``: the map of the difference of their two
    logits, i.e. the evidence that separates them (Selvaraju et al. 2017)."""
    image = _as_image(image)
    a, b = target_index(model, target), target_index(model, other)
    row = np.zeros((1, len(model.labels)), np.float32)
    row[0, a], row[0, b] = 1.0, -1.0
    tensors = compute(model, image, row, layer, method)
    predictions = _predictions(model, tensors.logits, tensors.probabilities, 5)
    return _explanation(model, image, tensors.before_relu[0], tensors.channel_weights[0], a,
                        f"{model.labels[a]} rather than {model.labels[b]}", tensors.probabilities[a],
                        resolve_layer(model, layer).name, method, predictions)


def explain_counterfactual(model, image, target=None, layer=None, method: str = "gradcam") -> Explanation:
    """What speaks against ``target``: Grad-CAM with negated gradients, the regions
    whose removal would raise the class's score (Selvaraju et al. 2017)."""
    image = _as_image(image)
    index = predict(model, image, top=1)[0].index if target is None else target_index(model, target)
    row = np.zeros((1, len(model.labels)), np.float32)
    row[0, index] = -1.0
    tensors = compute(model, image, row, layer, method)
    predictions = _predictions(model, tensors.logits, tensors.probabilities, 5)
    return _explanation(model, image, tensors.before_relu[0], tensors.channel_weights[0], index,
                        f"against {model.labels[index]}", tensors.probabilities[index],
                        resolve_layer(model, layer).name, method, predictions)


_MAX_LAYER_SETS = 8


def _compiled_layers(model, layers: tuple, method: str):
    import tensorflow as tf

    head = _head(model)
    key = ("layers", layers, method)
    with model._lock:
        if key not in model._compiled:
            # Every combination of layers is its own function: keep the few most
            # recent, so a page offering free choice cannot grow memory without end.
            kept = [k for k in model._compiled if isinstance(k, tuple) and k[0] == "layers"]
            for old in kept[: max(0, len(kept) - _MAX_LAYER_SETS + 1)]:
                del model._compiled[old]
            weigh = METHODS[method][1]
            height, width = model.input_size
            keras_model = model.keras

            @tf.function(
                input_signature=[tf.TensorSpec((1, height, width, model.channels), tf.float32),
                                 tf.TensorSpec((), tf.int32)],
                autograph=False,
            )
            def run(x, target):
                with tf.GradientTape(watch_accessed_variables=False) as tape:  # as in _build
                    features, logits = run_capturing_many(keras_model, x, list(layers), tape.watch, head)
                    logits = tf.reshape(logits, (-1,))
                    index = tf.where(target >= 0, target, tf.cast(tf.argmax(logits), tf.int32))
                    score = tf.gather(logits, index)
                grads = tape.gradient(score, features)  # every layer's gradient from one backward pass
                maps, weights = [], []
                for a, g in zip(features, grads):
                    w = weigh(a[0], g)  # (1, k)
                    weights.append(w[0])
                    maps.append(tf.einsum("hwk,k->hw", a[0], w[0]))
                return logits, index, maps, weights

            model._compiled[key] = run
        return model._compiled[key]


def explain_layers(model, image, layers=None, target=None, method: str = "gradcam") -> list[Explanation]:
    """The map of one class at several layers from one forward and one backward
    pass: ``layers`` (names, default one per stage of the network, early to late)."""
    if method not in METHODS:
        raise ValueError(f'Unknown method "{method}"; choose one of: {", ".join(METHODS)}.')
    image = _as_image(image)
    chosen = stage_layers(model) if layers is None else [resolve_layer(model, layer) for layer in layers]
    names = tuple(t.name for t in chosen)
    index = -1 if target is None else target_index(model, target)
    logits, picked, maps, weights = _compiled_layers(model, names, method)(model.prepare(image), np.int32(index))
    logits = logits.numpy().astype(np.float64)
    probabilities = _probabilities(model, logits)
    picked = int(picked.numpy())
    predictions = _predictions(model, logits, probabilities, 5)
    return [
        _explanation(model, image, m.numpy(), w.numpy(), picked, model.labels[picked], probabilities[picked],
                     name, method, predictions)
        for name, m, w in zip(names, maps, weights)
    ]
