"""The compiled passes: one ``tf.function`` per (model, layer, method), traced once.

Image and targets are tensor inputs, so a new photo or a new class never
retraces. Each function is stored on its ``Model`` (``Model.compiled_pass``),
so every session shares one, and built from the graph runner (``graph.py``),
which captures a layer's activations on the way to the logits.

- ``cam_pass``: the one pass of gradient and activation methods, and the first
  pass of the perturbation methods (activations and logits only);
- ``guided_pass``: the gradient down to the input pixels, guided rule;
- ``scores_pass``: the target scores of a batch of perturbed copies;
- ``forward_pass`` / ``batch_forward_pass``: logits only, one image or any batch;
- ``layers_pass``: one class's maps at several layers from one backward pass;
- ``attention_pass``: attention rollout, from every attention layer's scores.
- ``occlusion_pass``: the logits of a batch of copies with patches covered (Occlusion);
- ``activations_pass``: one layer's activations for any batch (the audit's correction);
- ``fullgrad_pass``: FullGrad, from the gradients at the input and at every bias;
- ``substituted_logits_pass``: the logits with a layer's output replaced (concepts' directions);
  ``direction_logits`` skips it where the layer feeds a pooled classifier.
"""

from __future__ import annotations

import numpy as np

from ..errors import ExplanationTooCostly
from .graph import (TargetLayer, attention_inputs, logits_head, pooled_head, run_capturing, run_capturing_many,
                    vectorized_jacobians)
from .methods import Method

MAX_LAYER_SETS = 8  # layer combinations kept per model (see layers_pass)


def head(model):
    """The model's logits stand-in, made once per model (it builds a layer, which
    must not happen while tracing)."""
    return model.compiled_pass("head", lambda: logits_head(model.keras))


OUT_OF_MEMORY = ("This explanation ran out of memory while it ran; try fewer classes, a lighter method or a "
                 "model with a smaller input.")


class _Guarded:
    """A compiled pass whose out-of-memory failure becomes one sentence (ExplanationTooCostly):
    the cost estimate refuses what it can foresee, this catches what it could not. Anything
    else of the function (``get_concrete_function``, its tracing count) is the function's own."""

    def __init__(self, function):
        self._function = function

    def __call__(self, *args, **kwargs):
        try:
            return self._function(*args, **kwargs)
        except MemoryError as error:
            raise ExplanationTooCostly(OUT_OF_MEMORY) from error
        except Exception as error:
            if type(error).__name__ == "ResourceExhaustedError":  # TensorFlow's, without importing it here
                raise ExplanationTooCostly(OUT_OF_MEMORY) from error
            raise

    def __getattr__(self, name):
        return getattr(self._function, name)


def cached(model, key, build):
    """One compiled function per key on the model, built by ``build(head)``; out of memory is one sentence."""
    logits = head(model)
    return model.compiled_pass(key, lambda: _Guarded(build(logits)))


def input_spec(model, batch=1):
    import tensorflow as tf

    height, width = model.input_size
    return tf.TensorSpec((batch, height, width, model.channels), tf.float32)


def explain_signature(model):
    """(x, target_rows, top) of every explaining pass: the prepared image, rows over the
    classes, and how many of the model's own top classes to take (0: the rows given)."""
    import tensorflow as tf

    return [input_spec(model), tf.TensorSpec((None, len(model.labels)), tf.float32), tf.TensorSpec((), tf.int32)]


def _choose_rows(logits, target_rows, top, classes):
    """top > 0: the model's own top classes (decided inside this pass); else the given rows."""
    import tensorflow as tf

    return tf.cond(top > 0, lambda: tf.one_hot(tf.math.top_k(logits, k=top).indices, classes), lambda: target_rows)


def cam_pass(model, layer: TargetLayer, method: Method, keep_tensors: bool):
    """The one pass of gradient and activation methods, and the first pass of the
    perturbation methods (activations and logits only)."""
    return cached(model, ("cam", layer.name, method.name, keep_tensors),
                   lambda head: _build(model, layer, method, keep_tensors, head))


def _build(model, layer: TargetLayer, method: Method, keep_tensors: bool, head):
    import tensorflow as tf

    classes = len(model.labels)
    keras_model = model.keras
    pfor = vectorized_jacobians(keras_model)  # not for KerasHub's transformers: see graph.vectorized_jacobians

    @tf.function(
        input_signature=explain_signature(model),
        reduce_retracing=True,
        autograph=False,  # no Python control flow on tensors here; skipping the conversion halves the trace
    )
    def run(x, target_rows, top):
        # ShapleyCAM differentiates the gradients once more: an outer tape records the inner one's work.
        outer = tf.GradientTape(watch_accessed_variables=False) if method.second_order else None
        if outer is not None:
            outer.__enter__()
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            def watch(tensor):
                tape.watch(tensor)
                if outer is not None:
                    outer.watch(tensor)

            features, logits = run_capturing(keras_model, x, layer.name,
                                             on_capture=watch if method.needs_gradients else None, head=head)
            logits = tf.reshape(logits, (-1,))
            rows = _choose_rows(logits, target_rows, top, classes)
            scores = (method.target_score(logits, rows) if method.target_score is not None
                      else tf.linalg.matvec(rows, logits))
        # ZERO, not None, where nothing flows (a transformer's last patch tokens): the check below says so.
        grads = tape.jacobian(scores, features, unconnected_gradients=tf.UnconnectedGradients.ZERO,
                               experimental_use_pfor=pfor)[:, 0] \
            if method.needs_gradients else None  # (K, h, w, k)
        hessian_times_activations = None
        if outer is not None:
            # H.A per target: the gradient of <G_k, A> with A held fixed as the vector.
            products = tf.reduce_sum(grads * tf.stop_gradient(features), axis=(1, 2, 3))  # (K,)
            outer.__exit__(None, None, None)
            hessian_times_activations = outer.jacobian(
                products, features, unconnected_gradients=tf.UnconnectedGradients.ZERO,
                experimental_use_pfor=pfor)[:, 0]
        features = features[0]
        out = {"logits": logits, "rows": rows, "features": features}
        if layer.grid is not None and grads is not None:
            out["gradient_reached"] = tf.reduce_any(tf.not_equal(grads, 0.0))
        if method.make_map is not None:
            before_relu, weights = (method.make_map(features, grads, hessian_times_activations)
                                    if method.second_order else method.make_map(features, grads))
            if not method.class_specific:  # one map, the same for every target
                count = tf.shape(rows)[0]
                before_relu = tf.repeat(before_relu, count, axis=0)
                weights = tf.repeat(weights, count, axis=0)
            out.update(weights=weights, before_relu=before_relu)
        if keep_tensors and grads is not None:
            out["gradients"] = grads
        if not keep_tensors and method.kind != "perturbation" and method.from_features is None:
            del out["features"]
        return out

    return run


def guided_pass(model, layer: TargetLayer | None, method: Method):
    """Guided Backpropagation (layer None) or Guided Grad-CAM: the gradient of each
    score down to the input pixels under the guided rule, in one compiled function."""
    import tensorflow as tf

    def build(head):
        classes = len(model.labels)
        keras_model = model.keras
        pfor = vectorized_jacobians(keras_model)  # not for KerasHub's transformers: see graph.vectorized_jacobians
        height, width = model.input_size

        @tf.function(
            input_signature=explain_signature(model),
            reduce_retracing=True,
            autograph=False,
        )
        def run(x, target_rows, top):
            out = {}
            if layer is not None:  # the Grad-CAM half, with ordinary gradients
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    features, logits = run_capturing(keras_model, x, layer.name, on_capture=tape.watch, head=head)
                    logits = tf.reshape(logits, (-1,))
                    rows = _choose_rows(logits, target_rows, top, classes)
                    scores = tf.linalg.matvec(rows, logits)
                grads = tape.jacobian(scores, features, experimental_use_pfor=pfor)[:, 0]
                cam, weights = method.make_map(features[0], grads)
                cam = tf.image.resize(tf.nn.relu(cam)[..., None], (height, width), method="bilinear")  # (K, H, W, 1)
                out["weights"] = weights
            # The guided half: the forward pass is the same; only the backward rule differs.
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(x)
                _, guided_logits = run_capturing_many(keras_model, x, [], head=head, guided=True)
                guided_logits = tf.reshape(guided_logits, (-1,))
                if layer is None:
                    logits = guided_logits
                    rows = _choose_rows(logits, target_rows, top, classes)
                scores = tf.linalg.matvec(rows, guided_logits)
            pixels = tape.jacobian(scores, x, experimental_use_pfor=pfor)[:, 0]  # (K, H, W, channels)
            if layer is not None:
                pixels = pixels * cam
            else:
                out["weights"] = tf.zeros((tf.shape(rows)[0], 0))
            out.update(logits=logits, rows=rows, pixels=pixels, before_relu=tf.reduce_max(tf.abs(pixels), axis=-1))
            return out

        return run

    return cached(model, ("guided", None if layer is None else layer.name, method.name), build)


def scores_pass(model, layer: TargetLayer, method: Method):
    """The target scores of a batch of perturbed copies, for the channels given:
    Score-CAM masks the input with each channel's map (upsampled bilinearly with
    aligned corners and scaled to [0, 1], as pytorch-grad-cam); Ablation-CAM sets
    each channel to zero and runs the rest of the network from the layer. The batch
    size is a tensor dimension, so the last, shorter batch does not retrace."""
    import tensorflow as tf

    def build(head):
        classes = len(model.labels)
        keras_model = model.keras
        height, width = model.input_size

        @tf.function(
            input_signature=[input_spec(model), tf.TensorSpec((None, None, None), tf.float32),
                             tf.TensorSpec((None,), tf.int32), tf.TensorSpec((None, classes), tf.float32)],
            reduce_retracing=True,
            autograph=False,
        )
        def run(x, features, channels, rows):
            if method.perturbs == "input":
                maps = tf.transpose(tf.gather(features, channels, axis=-1), (2, 0, 1))[..., None]  # (b, h, w, 1)
                masks = tf.raw_ops.ResizeBilinear(images=maps, size=[height, width], align_corners=True,
                                                  half_pixel_centers=False)
                low = tf.reduce_min(masks, axis=(1, 2, 3), keepdims=True)
                high = tf.reduce_max(masks, axis=(1, 2, 3), keepdims=True)
                masks = (masks - low) / (high - low + 1e-8)
                _, logits = run_capturing_many(keras_model, x * masks, [], head=head)
            else:
                keep = 1.0 - tf.one_hot(channels, tf.shape(features)[-1])  # (b, k)
                ablated = features[None] * keep[:, None, None, :]
                _, logits = run_capturing_many(keras_model, x, [], head=head, substitute={layer.name: ablated})
            logits = tf.reshape(logits, (tf.shape(channels)[0], classes))
            return tf.matmul(rows, logits, transpose_b=True)  # (K, b)

        return run

    return cached(model, ("scores", layer.name, method.name), build)


def forward_pass(model):
    import tensorflow as tf

    # The same graph walk as the explanations, so predictions and maps agree on
    # the logits, and a softmax model's true logits are reported.
    return cached(model, "forward", lambda head: tf.function(
        lambda x: run_capturing(model.keras, x, None, head=head)[1], input_signature=[input_spec(model)],
        autograph=False))


def layers_pass(model, layers: tuple, method: Method):
    import tensorflow as tf

    key = ("layers", layers, method.name)
    # Every combination of layers is its own function: keep the few most recent,
    # so a page offering free choice cannot grow memory without end.
    kept = [k for k in model.compiled_keys() if isinstance(k, tuple) and k[0] == "layers" and k != key]
    stale = set(kept[: max(0, len(kept) - MAX_LAYER_SETS + 1)])
    model.forget_passes(lambda k: k not in stale)

    def build(head):
        keras_model = model.keras

        @tf.function(input_signature=[input_spec(model), tf.TensorSpec((), tf.int32)], autograph=False)
        def run(x, target):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                watch = tape.watch if method.needs_gradients else None
                features, logits = run_capturing_many(keras_model, x, list(layers), watch, head)
                logits = tf.reshape(logits, (-1,))
                index = tf.where(target >= 0, target, tf.cast(tf.argmax(logits), tf.int32))
                score = tf.gather(logits, index)
            # Every layer's gradient from one backward pass.
            grads = tape.gradient(score, features, unconnected_gradients=tf.UnconnectedGradients.ZERO) \
                if method.needs_gradients else [None] * len(features)
            maps, weights = [], []
            for a, g in zip(features, grads):
                m, w = method.make_map(a[0], g)  # (1, h, w), (1, k)
                maps.append(m[0])
                weights.append(w[0])
            return logits, index, maps, weights

        return run

    return cached(model, key, build)


def batch_forward_pass(model):
    """Logits for any batch size (the explanations' pass is fixed at one image),
    sharing the explanations' graph walk, so curves and maps agree on the logits."""
    import tensorflow as tf

    def build(logits_head_):
        height, width = model.input_size
        spec = tf.TensorSpec((None, height, width, model.channels), tf.float32)
        return tf.function(lambda x: run_capturing(model.keras, x, None, head=logits_head_)[1],
                           input_signature=[spec], autograph=False)

    return cached(model, "forward_batch", build)


def activations_pass(model, layer_name: str):
    """One layer's activations for any batch, no gradient: what P-ClArC averages."""
    import tensorflow as tf

    def build(_logits_head):
        height, width = model.input_size
        spec = tf.TensorSpec((None, height, width, model.channels), tf.float32)
        return tf.function(lambda x: run_capturing(model.keras, x, layer_name)[0], input_signature=[spec],
                           autograph=False)

    return cached(model, ("activations", layer_name), build)


def substituted_logits_pass(model, layer: TargetLayer):
    """The logits when the layer's output is replaced by each of a batch of activations
    (b, h, w, k) and the rest of the network runs from there (Deep Feature Factorization's
    concept directions, in ``gradcam.concepts``). ``x`` feeds whatever joins later from
    before the layer (a skip connection)."""
    import tensorflow as tf

    def build(head):
        classes = len(model.labels)
        grid = tf.TensorSpec((None, *[d for d in layer.shape]), tf.float32)

        @tf.function(input_signature=[input_spec(model), grid], autograph=False)
        def run(x, features):
            _, logits = run_capturing_many(model.keras, x, [], head=head, substitute={layer.name: features})
            return tf.reshape(logits, (tf.shape(features)[0], classes))

        return run

    return cached(model, ("substituted", layer.name), build)


def direction_logits(model, layer: TargetLayer, x, directions: np.ndarray) -> np.ndarray:
    """The logits (n, classes) when the layer's output is each of ``directions`` (n, channels)
    at every position and the rest of the network runs from there. Where the layer feeds
    a global pooling and a classifier (``graph.pooled_head``: every last layer of a usual
    CNN), the directions go through that classifier alone, as pytorch-grad-cam's DFF passes
    its concept embeddings through the classifier. Anywhere else the substituted pass runs
    the rest of the network (``x`` feeds whatever joins it from before the layer)."""
    run = cached(model, ("directions", layer.name), lambda head_: _directions_run(model, layer, head_))
    return np.asarray(run(x, np.asarray(directions, np.float32)), np.float64).reshape(len(directions), -1)


def _directions_run(model, layer: TargetLayer, logits_head_):
    """run(x, directions) for ``direction_logits``: the pooled classifier compiled alone
    when the layer feeds one (one stored function either way)."""
    import tensorflow as tf

    chain = pooled_head(model.keras, layer.name)
    if not chain:
        def substituted(x, directions):
            tiled = np.broadcast_to(directions[:, None, None, :], (len(directions), *layer.shape)).copy()
            return substituted_logits_pass(model, layer)(x, tiled)

        return substituted
    final, stand_in = logits_head_ or (None, None)

    @tf.function(input_signature=[input_spec(model), tf.TensorSpec((None, layer.shape[-1]), tf.float32)],
                 autograph=False)
    def classifier(x, directions):  # x: nothing before the layer joins the classifier
        values = directions[:, None, None, :]  # a 1 x 1 grid: the pooling gives each vector back
        for op in chain:
            if op is final:
                values = stand_in(values)
            elif getattr(op, "_call_has_training_arg", False):
                values = op(values, training=False)
            else:
                values = op(values)
        return values

    return classifier


def attention_pass(model, method: Method):
    """Attention rollout (``rollout.py``): every attention layer's scores from one
    forward pass, and for the gradient-weighted variant their gradients from one
    backward pass; the map lies on the grid of the last block's tokens."""
    import tensorflow as tf

    blocks = attention_inputs(model)
    if not blocks:
        from .rollout import NO_ATTENTION

        raise ValueError(NO_ATTENTION.format(method=method.display_name, model=model.name or "this model"))
    grid = blocks[-1].grid

    def build(head):
        classes = len(model.labels)
        keras_model = model.keras
        pfor = vectorized_jacobians(keras_model)  # not for KerasHub's transformers: see graph.vectorized_jacobians

        @tf.function(
            input_signature=explain_signature(model),
            reduce_retracing=True,
            autograph=False,
        )
        def run(x, target_rows, top):
            attentions: list = []
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                if method.needs_gradients:
                    attentions = _WatchingList(tape)
                _, logits = run_capturing_many(keras_model, x, [], head=head, attention=attentions)
                logits = tf.reshape(logits, (-1,))
                rows = _choose_rows(logits, target_rows, top, classes)
                scores = tf.linalg.matvec(rows, logits)
            grads = tape.jacobian(scores, list(attentions), unconnected_gradients=tf.UnconnectedGradients.ZERO,
                                  experimental_use_pfor=pfor) \
                if method.needs_gradients else None  # [(K, 1, heads, T, T)] per block
            before_relu, weights = method.make_map(attentions, grads, grid)
            if not method.class_specific:
                count = tf.shape(rows)[0]
                before_relu = tf.repeat(before_relu, count, axis=0)
                weights = tf.repeat(weights, count, axis=0)
            return {"logits": logits, "rows": rows, "weights": weights, "before_relu": before_relu}

        return run

    return cached(model, ("attention", method.name), build)


class _WatchingList(list):
    """The attention maps, each watched by the tape as it is computed (see graph.py)."""

    def __init__(self, tape):
        super().__init__()
        self.watch = tape.watch


def occlusion_pass(model):
    """Logits of a batch of copies of the prepared input ``x``, each with its mask's
    pixels replaced by the prepared baseline ``fill``: x * (1 - m) + fill * m. The
    preprocessings are affine per channel, so blending prepared inputs equals
    preparing the blended photo. The batch size is a tensor dimension: the last,
    shorter batch does not retrace."""
    import tensorflow as tf

    def build(logits_head_):
        height, width = model.input_size
        masks = tf.TensorSpec((None, height, width, 1), tf.float32)

        @tf.function(input_signature=[input_spec(model), input_spec(model), masks], autograph=False)
        def run(x, fill, masks):
            covered = x * (1.0 - masks) + fill * masks
            return run_capturing(model.keras, covered, None, head=logits_head_)[1]

        return run

    return cached(model, "occlusion", build)


# --- FullGrad --------------------------------------------------------------------

BIAS_LAYERS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "BatchNormalization")


def bias_layers(keras_model) -> list[tuple[str, object]]:
    """(path, layer) of every layer whose 4-D output has a bias added, as pytorch-grad-cam's
    FullGrad picks its Conv2d and BatchNorm2d layers (a Keras depthwise or separable
    convolution is a grouped Conv2d there)."""
    from .graph import walk_layers

    found = []
    for path, layer in walk_layers(keras_model):
        if type(layer).__name__ not in BIAS_LAYERS:
            continue
        shape = getattr(getattr(layer, "output", None), "shape", None)
        if shape is None or len(shape) != 4:
            continue
        if type(layer).__name__ == "BatchNormalization" or getattr(layer, "use_bias", False):
            found.append((path, layer))
    return found


def effective_bias(layer) -> np.ndarray:
    """The bias a layer adds to its output: a convolution's own; a BatchNormalization's
    beta - moving_mean * gamma / sqrt(moving_variance + epsilon) in inference (its
    epsilon, 1e-3 by default in Keras; PyTorch's is 1e-5), as FullGrad's authors fold it."""
    if type(layer).__name__ != "BatchNormalization":
        return np.asarray(layer.bias.numpy(), np.float64)
    mean = np.asarray(layer.moving_mean.numpy(), np.float64)
    variance = np.asarray(layer.moving_variance.numpy(), np.float64)
    gamma = np.asarray(layer.gamma.numpy(), np.float64) if layer.scale else np.ones_like(mean)
    beta = np.asarray(layer.beta.numpy(), np.float64) if layer.center else np.zeros_like(mean)
    return beta - mean * gamma / np.sqrt(variance + layer.epsilon)


def _scaled_per_channel(values):
    """pytorch-grad-cam's scale_cam_image per (target, channel): minus the minimum over
    the positions, over 1e-7 + the maximum that leaves. values (K, h, w, c)."""
    import tensorflow as tf

    shifted = values - tf.reduce_min(values, axis=(1, 2), keepdims=True)
    return shifted / (1e-7 + tf.reduce_max(shifted, axis=(1, 2), keepdims=True))


def _bias_term(bias, gradient):
    """sum over channels of _scaled_per_channel(|bias * gradient|), (K, h, w, c) -> (K, h, w),
    in fewer passes over the gradient (most of FullGrad's time past the backward pass):
    |b g| = |b| |g|, so its minimum and maximum per channel are |b| times |g|'s, and the
    scaled channels are summed by one weighted sum instead of being divided one by one."""
    import tensorflow as tf

    magnitude = tf.abs(gradient)
    low = tf.reduce_min(magnitude, axis=(1, 2))  # (K, c)
    high = tf.reduce_max(magnitude, axis=(1, 2))
    scale = tf.abs(bias)
    weight = scale / (1e-7 + scale * (high - low))  # (K, c): each channel's 1 / (1e-7 + its range), times |b|
    # Subtracting the minimum before weighting, not after: a channel whose gradient is the
    # same at every position gets a huge weight, and (x - low) w keeps it at 0 exactly.
    return tf.einsum("khwc,kc->khw", magnitude - low[:, None, None, :], weight)


def fullgrad_pass(model):
    """FullGrad (Srinivas & Fleuret 2019), as pytorch-grad-cam's FullGrad: for each
    target, |x * dS/dx| scaled per colour channel, plus, for every layer with a bias,
    |b * dS/d(output)| scaled per channel, summed over channels and upsampled
    (bilinear) to the input; all summed, then scaled to [0, 1] (minus the minimum,
    over the maximum). The chosen layer plays no part. One taped pass."""
    import tensorflow as tf

    def build(head):
        classes = len(model.labels)
        keras_model = model.keras
        pfor = vectorized_jacobians(keras_model)  # not for KerasHub's transformers: see graph.vectorized_jacobians
        height, width = model.input_size
        layers = bias_layers(keras_model)
        names = [path for path, _ in layers]
        biases = [tf.constant(effective_bias(layer), tf.float32) for _, layer in layers]

        @tf.function(input_signature=explain_signature(model), reduce_retracing=True, autograph=False)
        def run(x, target_rows, top):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(x)
                outputs, logits = run_capturing_many(keras_model, x, names, tape.watch, head)
                logits = tf.reshape(logits, (-1,))
                rows = _choose_rows(logits, target_rows, top, classes)
                scores = tf.linalg.matvec(rows, logits)
            grads = tape.jacobian(scores, [x, *outputs], unconnected_gradients=tf.UnconnectedGradients.ZERO,
                                  experimental_use_pfor=pfor)
            total = tf.reduce_sum(_scaled_per_channel(tf.abs(grads[0][:, 0] * x[0])), axis=-1)  # (K, H, W)
            # Upsampling is linear: layers of one resolution are summed first and upsampled once.
            by_grid: dict = {}
            for bias, gradient in zip(biases, grads[1:]):
                per_layer = _bias_term(bias, gradient[:, 0])
                grid = tuple(per_layer.shape[1:])
                if None in grid:  # a size known only when run: upsampled on its own
                    grid = ("unknown", len(by_grid))
                by_grid[grid] = per_layer if grid not in by_grid else by_grid[grid] + per_layer
            for summed in by_grid.values():
                total += tf.image.resize(summed[..., None], (height, width), method="bilinear")[..., 0]
            shifted = total - tf.reduce_min(total, axis=(1, 2), keepdims=True)
            before_relu = shifted / (1e-7 + tf.reduce_max(shifted, axis=(1, 2), keepdims=True))
            return {"logits": logits, "rows": rows, "before_relu": before_relu,
                    "weights": tf.zeros((tf.shape(rows)[0], 0))}

        return run

    return cached(model, ("fullgrad",), build)
