"""The batched engine: many photos' maps from one compiled call with a batch axis.

``explain_batch`` gives, per photo, exactly the list ``explain_many`` gives, but
runs photos through the network together, which is what a dataset job (Ray Data)
and a service grouping concurrent requests (Ray Serve) need.

Why the gradients stay per photo: every photo's scores depend only on its own
feature maps (inference mode: no layer mixes the batch), so the gradient of the
*sum over the batch* of target k's scores, taken at photo b's features, is photo
b's own gradient. One backward pass per target serves the whole batch.

Why buckets: a tf.function with a static batch size is traced once; batch sizes
are padded (with blank photos whose maps are discarded) to one of a few sizes, so
any number of photos runs on at most ``len(BUCKETS)`` compiled functions per
(model, layer, method, targets per photo), each traced once.

Which methods: the one-pass kinds (gradient and activation methods: a method
turns a photo's (features, gradients) into its map) run batched. The others
(Score-CAM and Ablation-CAM already batch their many forward passes per photo;
the guided methods differentiate down to the pixels) and smoothing run photo by
photo through ``explain_many``: the same answers, without the batch speed-up.

This module only adds to cam.py: it reuses its model head, its methods and how
it builds results.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import cam
from .cam import explain_many
from .cost import check_explanation, memory_budget_bytes
from .graph import resolve_layer, run_capturing, vectorized_jacobians
from .methods import Method, method as method_entry
from .passes import cached

BUCKETS = (1, 4, 8, 16, 32)  # batch sizes that get a compiled function; larger sets are split into 32s


def chunk_sizes(count: int, largest: int = BUCKETS[-1]) -> list[tuple[int, int]]:
    """How ``count`` photos are run: (photos, padded bucket) per call, in order.
    Full chunks of the largest bucket (at most ``largest``), then the rest padded to
    the smallest bucket that holds it (at most one padded call, wasting less than half of it)."""
    largest = max(b for b in BUCKETS if b <= max(largest, 1))
    sizes = [(largest, largest)] * (count // largest)
    rest = count % largest
    if rest:
        sizes.append((rest, next(b for b in BUCKETS if b >= rest)))
    return sizes


def photos_per_call(model, method, targets: int) -> int:
    """The largest bucket whose pass stays within the memory budget (one photo over it
    is refused with ExplanationTooCostly): a big model runs in smaller calls, never refused
    for the batch alone."""
    per_photo = check_explanation(model, method, targets)
    fitting = [b for b in BUCKETS if per_photo * b <= memory_budget_bytes()]
    return max(fitting, default=BUCKETS[0])




def _compiled(model, layer, method, bucket: int, count: int, own_top: bool):
    """One tf.function per (model, layer, method, bucket, targets per photo, whether
    they are each photo's own top classes), shared by every thread. In practice a
    handful: top-1 for datasets, top-5 and one class for the dashboard."""
    return cached(model, ("batch", layer.name, method.name, bucket, count, own_top),
                       lambda head: _build(model, layer, method, bucket, count, own_top, head))


def _build(model, layer, method, bucket: int, count: int, own_top: bool, head):
    import tensorflow as tf

    height, width = model.input_size
    classes = len(model.labels)
    keras_model = model.keras
    pfor = vectorized_jacobians(keras_model)  # not for KerasHub's transformers: see graph.vectorized_jacobians

    @tf.function(
        input_signature=[
            tf.TensorSpec((bucket, height, width, model.channels), tf.float32),
            tf.TensorSpec((bucket, count, classes), tf.float32),  # per photo: its rows over the classes
        ],
        autograph=False,
    )
    def run(x, target_rows):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            watch = tape.watch if method.needs_gradients else None
            features, logits = run_capturing(keras_model, x, layer.name, on_capture=watch, head=head)
            logits = tf.reshape(logits, (bucket, classes))
            # Each photo's own top classes are decided inside this pass.
            rows = tf.one_hot(tf.math.top_k(logits, k=count).indices, classes) if own_top else target_rows
            scores = tf.einsum("bkc,bc->bk", rows, logits)
            per_target = tf.reduce_sum(scores, axis=0)  # (K,): see the module's note on why this is exact
        if not method.needs_gradients:
            grads = None
        elif count == 1:  # one backward pass, no vectorised Jacobian machinery
            grads = tape.gradient(per_target, features)[tf.newaxis]
        else:
            grads = tape.jacobian(per_target, features, experimental_use_pfor=pfor)  # (K, B, h, w, k)
        # The method as cam.py applies it, photo by photo (the batch size is static):
        # the very same operations, so the maps equal explain_many's.
        maps, weights = [], []
        for b in range(bucket):
            before_relu, weight = method.make_map(features[b], None if grads is None else grads[:, b])
            if not method.class_specific:  # one map, the same for every target
                before_relu, weight = tf.repeat(before_relu, count, axis=0), tf.repeat(weight, count, axis=0)
            maps.append(before_relu)
            weights.append(weight)
        return {"logits": logits, "rows": rows, "weights": tf.stack(weights), "before_relu": tf.stack(maps)}

    return run


def _per_photo_targets(model, targets, count: int) -> list[list[int]] | None:
    """None, or each photo's class indices. ``targets`` is None, one list for every
    photo (indices or labels), or one list per photo."""
    if targets is None:
        return None
    targets = list(targets)
    per_photo = targets and all(isinstance(t, (list, tuple, np.ndarray)) for t in targets)
    if not per_photo:
        targets = [targets] * count
    elif len(targets) != count:
        raise ValueError(f"{len(targets)} target lists were given for {count} photos; give one per photo.")
    indices = [[cam.target_index(model, t) for t in photo_targets] for photo_targets in targets]
    if any(not photo_targets for photo_targets in indices):
        raise ValueError("Every photo needs at least one target class.")
    return indices


def explain_batch(model, images: Sequence, targets=None, layer=None, method: str = "gradcam",
                  top: int = 1, **options) -> list[list[cam.Explanation]]:
    """Per photo, the list ``explain_many(model, photo, ...)`` returns, computed in
    batches (one compiled call per up to 32 photos).

    ``targets``: None (each photo's own ``top`` classes), one list of indices or
    labels for every photo, or one such list per photo. ``options`` are
    ``explain_many``'s (``smooth``, ``max_channels``, ...). A photo that cannot be
    read raises ``InvalidImageError`` before anything runs; decode photos first
    (with ``load_image``) to keep the good ones of a set with broken ones.
    """
    chosen = method_entry(method)
    images = [cam.as_image(image) for image in images]
    indices = _per_photo_targets(model, targets, len(images))
    if not chosen.one_pass or any(options.values()):
        # Photo by photo (see the module's note), with the same answers.
        return [explain_many(model, image, None if indices is None else indices[i], layer, method, top, **options)
                for i, image in enumerate(images)]
    target_layer = resolve_layer(model, layer)
    classes = len(model.labels)
    top = max(1, min(int(top), classes))
    results: list[list[cam.Explanation]] = []
    start = 0
    most = photos_per_call(model, chosen, top if indices is None else max(len(t) for t in indices))
    for count, bucket in chunk_sizes(len(images), most):
        chunk = images[start:start + count]
        chunk_targets = None if indices is None else indices[start:start + count]
        results.extend(_explain_chunk(model, chunk, chunk_targets, target_layer, chosen, top, bucket))
        start += count
    return results


def _explain_chunk(model, images, indices, layer, method: Method, top, bucket) -> list[list[cam.Explanation]]:
    """One compiled call for up to ``bucket`` photos, with the method and layer explain_batch resolved."""
    height, width = model.input_size
    x = np.zeros((bucket, height, width, model.channels), np.float32)  # blank padding photos
    for b, image in enumerate(images):
        x[b] = model.prepare(image)[0]
    classes = len(model.labels)
    count = top if indices is None else max(len(t) for t in indices)
    rows = np.zeros((bucket, count, classes), np.float32)
    if indices is not None:
        # Photos with fewer targets keep all-zero rows: a zero score, a discarded map.
        for b, photo_targets in enumerate(indices):
            rows[b, np.arange(len(photo_targets)), photo_targets] = 1.0
    out = _compiled(model, layer, method, bucket, count, indices is None)(x, rows)
    logits_all = out["logits"].numpy().astype(np.float64)
    chosen_all = out["rows"].numpy().argmax(axis=2)
    weights_all = out["weights"].numpy()
    maps_all = out["before_relu"].numpy()
    results = []
    for b, image in enumerate(images):
        logits = logits_all[b]
        chosen = chosen_all[b] if indices is None else np.asarray(indices[b])
        asked = len(chosen)  # rows past it padded a shorter target list
        tensors = cam.CamTensors(logits=logits, probabilities=cam.to_probabilities(model, logits), targets=chosen,
                                 features=None, gradients=None, channel_weights=weights_all[b, :asked],
                                 before_relu=maps_all[b, :asked])
        predictions = cam.top_predictions(model, logits, tensors.probabilities, 5)
        results.append([cam.explanation_of(image, tensors, k, index, model.labels[index], layer.name, method,
                                           predictions) for k, index in enumerate(chosen)])
    return results
