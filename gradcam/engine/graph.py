"""Which layers Grad-CAM can look at, and running a model so that one of them is seen.

Layers are named by their path through nested models: a transfer-learning model
whose base network is a nested ``keras.Model`` has target layers such as
``"mobilenetv2_1.00_224/out_relu"``. Running the graph ourselves (instead of
building ``keras.Model(model.inputs, inner_layer.output)``, which fails with
"Graph disconnected" for nested models) lets us capture such a layer's output.
"""

from __future__ import annotations

import threading
import weakref
from typing import Callable, Iterator, NamedTuple

from . import inner
from .tokens import TokenGrid, cannot_infer, from_grid, infer_grid, is_attention, to_grid

SEPARATOR = "/"
_LISTED_TARGETS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # Keras model -> its target layers
_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


# Layers that move, scale or drop pixels but compute no features: their "map" only
# repeats the input or the layer before, so they are poor Grad-CAM targets. They stay
# targetable by name, but are never a stage or the default, and lists mark them.
NON_FEATURE_LAYERS = {
    "ZeroPadding2D": "padding", "Cropping2D": "cropping", "UpSampling2D": "upsampling",
    "Rescaling": "rescaling", "Normalization": "normalization", "Resizing": "resizing", "CenterCrop": "cropping",
    "Dropout": "dropout", "SpatialDropout2D": "dropout", "GaussianNoise": "noise", "GaussianDropout": "dropout",
    "AlphaDropout": "dropout", "ActivityRegularization": "regularization",
}
_AUGMENTATION_PREFIX = "Random"  # RandomFlip, RandomCrop, ...: off when explaining, so they pass pixels on


class TargetLayer(NamedTuple):
    name: str  # path through nested models, e.g. "base/block_16_project"
    shape: tuple  # output shape without the batch axis: (height, width, channels)
    kind: str | None = None  # what a non-feature layer does ("padding", "rescaling", ...); None: it computes features
    # A token layer's patch grid: its (tokens, dim) output is seen as shape = (height, width, dim)
    # once the extra tokens are dropped (see tokens.py); None for a feature map.
    grid: TokenGrid | None = None

    @property
    def is_feature_layer(self) -> bool:
        return self.kind is None

    def __str__(self) -> str:
        height, width, channels = self.shape
        note = f"  · {self.kind}, not a feature layer" if self.kind else ""
        if self.grid is not None:
            return f"{self.name}  ({self.grid.describe(channels)}){note}"
        return f"{self.name}  ({height}x{width}x{channels}){note}"


def _non_feature_kind(layer) -> str | None:
    kind = type(layer).__name__
    if kind.startswith(_AUGMENTATION_PREFIX):
        return "augmentation"
    return NON_FEATURE_LAYERS.get(kind)


def _graph(keras_model):
    """The Functional graph behind a model (a built Sequential keeps one inside)."""
    return getattr(keras_model, "_functional", None) or keras_model


def _is_nested_model(layer) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def walk_layers(keras_model, prefix: str = "") -> Iterator[tuple[str, object]]:
    """Every layer in model order as (path, layer), descending into nested models."""
    for layer in keras_model.layers:
        path = prefix + layer.name
        if _is_nested_model(layer):
            yield from walk_layers(layer, path + SEPARATOR)
        else:
            yield path, layer


def _output_shape(layer):
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):  # never called, or called several times
        return None


def target_layers(model) -> list[TargetLayer]:
    """Every layer with a 4-D (feature map) output, and every token layer (a
    (tokens, dim) output whose patch grid can be told, see tokens.py), in model
    order. The default target is ``default_layer(model)``."""
    # A built model's layers never change: listed once per Keras model, as every explanation
    # resolves its layer through this walk (milliseconds on a hundred layers).
    listed = _LISTED_TARGETS.get(model.keras)
    if listed is None:
        listed = _LISTED_TARGETS[model.keras] = tuple(_targets(model.keras))
    return list(listed)


def _model_input_size(keras_model):
    try:
        shape = tuple(keras_model.inputs[0].shape)
    except (AttributeError, IndexError, TypeError):
        return None
    return tuple(shape[1:3]) if len(shape) == 4 else None


def _targets(keras_model, with_unknown: bool = False) -> list:
    found = []
    grids_seen: list[tuple] = []  # the feature maps' (height, width) so far, latest first
    input_size = _model_input_size(keras_model)
    inside = _inner_by_container(keras_model)
    for path, layer in walk_layers(keras_model):
        if type(layer).__name__ == "InputLayer":
            continue
        for record in inside.get(path, ()):  # what a custom layer runs inside, before its own output
            if record.role == "patches":
                found.append(TargetLayer(record.path, record.shape))
                grids_seen.insert(0, tuple(record.shape[:2]))
            elif record.role in ("block", "input_norm") and record.batch == 1:
                grid = infer_grid(record.shape[0], grids_seen, input_size)
                if grid is not None:
                    found.append(TargetLayer(record.path, (grid.height, grid.width, record.shape[1]), None, grid))
        shape = _output_shape(layer)
        if shape is not None and len(shape) == 4:
            found.append(TargetLayer(path, tuple(shape[1:]), _non_feature_kind(layer)))
            grids_seen.insert(0, tuple(shape[1:3]))
        elif shape is not None and len(shape) == 3:
            grid = infer_grid(shape[1], grids_seen, input_size)
            if grid is not None and not grids_seen:  # no patch embedding before: read off the input size
                grid = grid._replace(guessed=True)
            if grid is not None:
                found.append(TargetLayer(path, (grid.height, grid.width, shape[2]), _non_feature_kind(layer), grid))
            elif with_unknown and shape[1] and shape[1] > 1:
                found.append(path)  # a token layer whose grid cannot be told: named, not a target
    return found


def _containers(keras_model) -> list[tuple[str, object]]:
    """(path, layer) of the custom layers that call sub-layers of their own (inner.py)."""
    return [(path, layer) for path, layer in walk_layers(keras_model) if inner.is_container(layer)]


def vectorized_jacobians(keras_model) -> bool:
    """Whether the passes may differentiate several targets at once with TensorFlow's vectorised
    Jacobian (pfor). Not for a model with custom layers that call sub-layers of their own
    (KerasHub's transformers): with TensorFlow 2.21, pfor over a KerasHub ViT's backward pass
    segfaults the whole process (seen with three targets at once: Explore's top 5 took the
    dashboard's server down). There the targets are differentiated one after another (a while
    loop inside the same compiled pass): slower by about the number of targets, never a crash."""
    return not _containers(keras_model)


def inner_layers(keras_model) -> list:
    """What runs inside the model's custom layers (``inner.Inner`` records, call order);
    empty for a model made of Keras layers only, or one whose input size is not fixed."""
    containers = _containers(keras_model)
    if not containers:
        return []
    try:
        shape = tuple(keras_model.inputs[0].shape)[1:]
    except (AttributeError, IndexError, TypeError):
        return []
    if len(shape) != 3 or None in shape:
        return []
    return inner.probe(keras_model, containers, shape)


def _inner_by_container(keras_model) -> dict[str, list]:
    records = inner_layers(keras_model)
    if not records:
        return {}
    by_container: dict[str, list] = {}
    for container_path, _ in _containers(keras_model):
        by_container[container_path] = [r for r in records if r.path.startswith(container_path + SEPARATOR)]
    return by_container


def token_grids(keras_model) -> dict[str, TokenGrid]:
    """The token layers' grids by layer path (what the graph runner reshapes)."""
    return {t.name: t.grid for t in _targets(keras_model) if t.grid is not None}


def attention_inputs(model) -> list[TargetLayer]:
    """Per attention layer, in model order, the token layer that feeds its query: a
    block's input normalisation (``blocks[i].norm1`` in timm terms; ``ln_1`` of a
    KerasHub ViT's ``transformer_block_N``, found inside its encoder)."""
    targets = {t.name: t for t in target_layers(model)}
    found = []
    inside = _inner_by_container(model.keras)
    for path, layer in walk_layers(model.keras):
        for record in inside.get(path, ()):
            if record.role == "input_norm" and record.path in targets and _block_has_mha(model.keras, record.path):
                found.append(targets[record.path])
        if not is_attention(layer):
            continue
        prefix = path[: len(path) - len(layer.name)]
        try:
            feeding = layer._inbound_nodes[0].input_tensors[0]._keras_history.operation
        except (AttributeError, IndexError):
            continue
        target = targets.get(prefix + feeding.name)
        if target is not None and target not in found:
            found.append(target)
    return found


def _inner_layer(keras_model, path: str):
    """The layer at ``path``, inside a custom layer or not, or None."""
    for container_path, container in _containers(keras_model):
        if path.startswith(container_path + SEPARATOR):
            return inner.find(container, path[len(container_path) + 1:].split(SEPARATOR))
    return None


def _block_has_mha(keras_model, norm_path: str) -> bool:
    """True when the block around this input normalisation attends with a Keras
    MultiHeadAttention (whose scores rollout reads; Swin's window attention is not one)."""
    block = _inner_layer(keras_model, norm_path.rsplit(SEPARATOR, 1)[0])
    return block is not None and any(is_attention(child) for child in inner.children(block))


def inner_attention_layers(container) -> list:
    """The Keras attention layers a custom layer calls inside itself."""
    return [layer for _, layer in inner.sub_layers(container, "") if is_attention(layer)]


def has_attention(keras_model) -> bool:
    return any(is_attention(layer) or (inner.is_container(layer) and inner_attention_layers(layer))
               for _, layer in walk_layers(keras_model))


def default_layer(model) -> TargetLayer:
    """The last feature map before global pooling: the most class-specific one
    that still has a spatial layout (a 1x1 map cannot point anywhere). For a
    transformer, the last block's input normalisation: after the last block only
    the class token is read, so its patch tokens get no gradient from the score,
    while before its attention every patch still feeds the class token."""
    blocks = attention_inputs(model)
    if blocks:
        return blocks[-1]
    candidates = target_layers(model)
    features = [t for t in candidates if t.is_feature_layer] or candidates
    spatial = [t for t in features if (t.shape[0] or 2) * (t.shape[1] or 2) > 1]
    return (spatial or features)[-1]


def resolve_layer(model, layer) -> TargetLayer:
    """A TargetLayer from a name, a TargetLayer or None (the default)."""
    if layer is None:
        return default_layer(model)
    name = layer.name if isinstance(layer, TargetLayer) else str(layer)
    for target in target_layers(model):
        if target.name == name:
            return target
    # Let a bare inner name ("out_relu") stand for the nested path when it is unique.
    matches = [t for t in target_layers(model) if t.name.split(SEPARATOR)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    if any(path in (name,) or path.split(SEPARATOR)[-1] == name for path in _targets(model.keras, True)
           if isinstance(path, str)):
        raise ValueError(cannot_infer(name))
    raise ValueError(f'The model has no layer "{name}" that Grad-CAM can target.')


def output_activation(keras_model) -> str:
    """'softmax', 'sigmoid' or 'linear': what the model applies to its scores."""
    layer = _final_layer(keras_model)
    if type(layer).__name__ == "Softmax":
        return "softmax"
    name = getattr(getattr(layer, "activation", None), "__name__", "linear")
    return name if name in _PROBABILITY_ACTIVATIONS else "linear"


def _final_layer(keras_model):
    """The layer that makes the model's scores, looking inside a nested final model
    (a classifier head built as its own Sequential, a whole Keras application)."""
    layer = _graph(keras_model).outputs[0]._keras_history.operation
    while _is_nested_model(layer):
        layer = _graph(layer).outputs[0]._keras_history.operation
    return layer


def logits_head(keras_model):
    """(final layer, a stand-in that returns its pre-activation scores), or None
    when the model already outputs logits.

    Built once, eagerly, before any tracing. The stand-in is a twin of the final
    layer made from its own config with a linear activation, so quantized or unusual
    heads give exactly their logits; the cached model itself is never changed. The twin
    reads the final layer's own variables, not a copy of them: a model whose weights
    change after it explained something (``set_weights``, fine-tuning in a notebook)
    must be explained with its new weights.
    """
    if output_activation(keras_model) == "linear":
        return None
    layer = _final_layer(keras_model)
    if type(layer).__name__ in ("Softmax", "Activation"):
        return layer, lambda x, *args, **kwargs: x
    try:
        twin = type(layer).from_config({**layer.get_config(), "activation": "linear", "name": layer.name + "_logits"})
        twin.build(tuple(layer.input.shape))
        twin.set_weights(layer.get_weights())
        _share_variables(twin, layer)
    except Exception as error:
        raise ValueError(
            f'The last layer "{layer.name}" applies its {output_activation(keras_model)} inside itself '
            "in a way that cannot be separated, so its logits (what Grad-CAM explains) are not available."
        ) from error
    return layer, twin


def _share_variables(twin, layer) -> None:
    """Point every variable the twin holds as an attribute (a Dense's ``_kernel`` and
    ``bias``, a quantized layer's scales) at the final layer's own variable, so the
    compiled passes read the weights as they are now. A variable without a partner
    keeps its copy (the values agree today; set_weights above made sure)."""
    import keras

    for name, copy in list(vars(twin).items()):
        original = getattr(layer, name, None)
        if isinstance(copy, keras.Variable) and isinstance(original, keras.Variable) \
                and tuple(copy.shape) == tuple(original.shape):
            object.__setattr__(twin, name, original)  # not Layer.__setattr__: it would track it twice


def _in_inference_mode(op) -> Callable:
    # Keras' own Functional.call passes training=False down; so must we, or
    # dropout and data-augmentation layers (RandomFlip, ...) stay active.
    if getattr(op, "_call_has_training_arg", False):
        return lambda *args, **kwargs: op(*args, **{**kwargs, "training": False})
    return op


def _contains(model, layer) -> bool:
    return any(inner is layer for _, inner in walk_layers(model))


def run_capturing(keras_model, x, layer_name: str | None, on_capture: Callable | None = None, head=None):
    """Run ``keras_model`` on ``x``; return (the named layer's output, the logits).
    With ``layer_name`` None nothing is captured: (None, logits)."""
    names = [layer_name] if layer_name else []
    features, logits = run_capturing_many(keras_model, x, names, on_capture, head)
    return (features[0] if features else None), logits


# Activations whose backward pass the guided rule replaces: ReLU and the smooth
# ReLU-like units inside the Lite and Keras application models (ReLU6 in Lite0 and
# MobileNetV2, ReLU fused in VGG16's convolutions, swish/SiLU in EfficientNetB0).
RELU_LIKE = frozenset({"relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "hard_silu",
                       "hard_swish", "mish"})


def is_relu_like(op) -> bool:
    """True for a layer that ends in a ReLU-like activation (a ReLU layer, an
    Activation layer, or a convolution or dense layer with a fused activation)."""
    if type(op).__name__ in ("ReLU", "LeakyReLU", "ELU", "PReLU"):
        return True
    activation = getattr(op, "activation", None)
    return getattr(activation, "__name__", None) in RELU_LIKE


def guided_output(y):
    """Identity forward; backward, the guided backpropagation rule (Springenberg
    et al. 2015) at a ReLU-like unit's output y: the incoming gradient passes only
    where it is positive and the unit is active (y > 0). The unit's own backward
    pass then multiplies by its derivative, so for ReLU the result is exactly
    grad * (grad > 0) * (input > 0). A fresh custom gradient per call: nothing is
    registered globally, so no other thread or session ever sees it."""
    import tensorflow as tf

    @tf.custom_gradient
    def guided(value):
        def backward(upstream):
            keep = tf.logical_and(upstream > 0, value > 0)
            return upstream * tf.cast(keep, upstream.dtype)

        return tf.identity(value), backward

    return guided(y)


def _broadcast_batch(args):
    """A layer fed both a substituted tensor (a batch of n) and a tensor computed
    from the single input image (a batch of 1), e.g. a residual Add after an
    ablated layer: repeat the single one n times, so Concatenate works too."""
    import tensorflow as tf

    flat = tf.nest.flatten(args)
    tensors = [t for t in flat if tf.is_tensor(t) and t.shape.rank]
    batched = [t for t in tensors if t.shape[0] != 1]
    if not batched or len(batched) == len(tensors):
        return args
    count = tf.shape(batched[0])[0]
    rank = batched[0].shape.rank

    def grow(t):
        if tf.is_tensor(t) and t.shape.rank == rank and t.shape[0] == 1:
            return tf.repeat(t, count, axis=0)
        return t

    return tf.nest.map_structure(grow, args)


def _with_batches_matched(call: Callable) -> Callable:
    return lambda *args, **kwargs: call(*_broadcast_batch(args), **kwargs)


def _with_guided_output(call: Callable) -> Callable:
    return lambda *args, **kwargs: guided_output(call(*args, **kwargs))


_attention_recorder = threading.local()  # .record: where this thread's attention scores go, or None


def _record_softmax(layer) -> None:
    """Let ``layer`` (a Keras MultiHeadAttention) hand its attention scores, just after
    their softmax and before they weight the values, to this thread's recorder.

    Scores returned by the layer's call come too late for a gradient: the tape sees
    only what is computed after it starts watching, and the values were already
    weighted. The hook is the layer's own softmax step (``_masked_softmax``), wrapped
    once per layer; it changes nothing when no recorder is set, so the model, shared
    by every session, computes exactly what it did (another thread never records)."""
    if getattr(layer, "_gradcam_records_softmax", False):
        return
    original = layer._masked_softmax

    def masked_softmax(*args, **kwargs):
        scores = original(*args, **kwargs)
        record = getattr(_attention_recorder, "record", None)
        return record(scores) if record is not None else scores

    layer._masked_softmax = masked_softmax
    layer._gradcam_records_softmax = True


def _score_recorder(attention: list) -> Callable:
    """What receives each attention layer's scores: appended to ``attention`` (watched
    first by the tape, when ``attention`` has a ``watch``)."""
    watch = getattr(attention, "watch", None)

    def record(scores):
        if watch is not None:
            watch(scores)
        attention.append(scores)
        return scores

    return record


def _scores_asked(call: Callable, record: Callable, *args, **kwargs):
    """``call`` (an attention layer's) with its scores handed to ``record``; its output as
    the caller asked for it (with the scores only when the caller wanted them too)."""
    wanted = kwargs.get("return_attention_scores", False)
    _attention_recorder.record = record
    try:
        # Asking for the scores makes Keras compute them explicitly (no fused kernel).
        out, scores = call(*args, **{**kwargs, "return_attention_scores": True})
    finally:
        _attention_recorder.record = None
    return (out, scores) if wanted else out


def _with_attention_scores(op, attention: list) -> Callable:
    """The attention layer's call, its scores (batch, heads, queries, keys) appended to
    ``attention`` (watched first by the tape, when ``attention`` has a ``watch``)."""
    _record_softmax(op)
    record = _score_recorder(attention)
    return lambda *args, **kwargs: _scores_asked(_in_inference_mode(op), record, *args, **kwargs)


def _attention_hooks(container, attention: list) -> dict:
    """Hooks that record the scores of every Keras attention layer inside ``container``."""
    record = _score_recorder(attention)
    found = {}
    for layer in inner_attention_layers(container):
        _record_softmax(layer)
        found[layer] = lambda original, *args, **kwargs: _scores_asked(original, record, *args, **kwargs)
    return found


def _guided_hooks(container) -> dict:
    """Hooks that apply the guided rule inside ``container`` (KerasHub's transformer blocks): at
    the output of every ReLU-like Keras layer in it (ViT's and DeiT's MLP Dense with GELU) and of
    every ReLU-like function a custom layer keeps and calls itself (Swin's MLP ``act_layer``)."""
    def guided_call(original, *args, **kwargs):
        return guided_output(original(*args, **kwargs))

    found = {}
    for _, layer in inner.sub_layers(container, container.name):
        if type(layer).__module__.startswith("keras.") and is_relu_like(layer):
            found[layer] = guided_call
        for attribute in inner.function_attributes(layer, RELU_LIKE):
            found[(layer, attribute)] = guided_call
    return found


def run_capturing_many(keras_model, x, layer_names, on_capture: Callable | None = None, head=None, *,
                       substitute: dict | None = None, guided: bool = False, attention: list | None = None):
    """Run ``keras_model`` on ``x`` once; return ([each named layer's output], logits).

    ``head`` is ``logits_head(keras_model)``, so the scores are pre-softmax.
    ``on_capture`` sees each layer's output as soon as it exists, so a gradient tape
    can watch it even when the layers are frozen (non-trainable weights are not
    watched by default, which silently breaks Grad-CAM on transfer-learning models).

    ``substitute`` maps layer paths to tensors used instead of those layers'
    outputs: the rest of the network runs from there (Ablation-CAM feeds a batch
    of ablated activations this way; the layers before it, no longer needed, are
    pruned from the compiled graph). ``guided`` replaces the backward pass of
    every ReLU-like activation by the guided rule, inside custom layers too
    (``_guided_hooks``). Neither changes what the model computes.

    A token layer's output (n, tokens, dim) is captured as its patch grid
    (n, h, w, dim) (``tokens.to_grid``), and the sequence rebuilt from that grid
    flows on, so gradients with respect to the grid are the tokens' own; a
    substitute for a token layer is a grid too. ``attention``, a list, receives
    every attention layer's scores in the order they run (attention rollout).
    """
    captured: dict[str, object] = {}
    final, stand_in = head if head is not None else (None, None)
    substitute = substitute or {}
    grids = token_grids(keras_model) if (layer_names or substitute) else {}

    def keep(path, out):
        """The captured layer's output: kept as seen (a token layer as its grid), and what flows on."""
        grid = grids.get(path)
        if grid is not None:
            extra, seen = to_grid(out, grid)
        else:
            seen = out
        if on_capture is not None:
            on_capture(seen)
        captured.setdefault(path, seen)
        return from_grid(extra, seen, grid) if grid is not None else seen

    def replaced(path, out):
        grid = grids.get(path)
        if grid is not None:  # the grid is replaced; the extra tokens stay the layer's own
            return from_grid(to_grid(out, grid)[0], substitute[path], grid)
        return substitute[path]

    def inside(op, path, inner_paths):
        """A custom layer's call, with the sub-layers at ``inner_paths`` captured or replaced
        (and every attention layer inside it recorded, for rollout) while it runs."""
        found = {}
        for names in inner_paths:
            sub = inner.find(op, names)
            full = path + SEPARATOR + SEPARATOR.join(names)
            if sub is None:
                continue
            if full in substitute:
                found[sub] = inner.capture_hook(lambda out, full=full: replaced(full, out))
            else:
                found[sub] = inner.capture_hook(lambda out, full=full: keep(full, out))
        if attention is not None:
            found.update(_attention_hooks(op, attention))
        if guided:
            for sub, hook in _guided_hooks(op).items():
                found.setdefault(sub, hook)  # a captured sub-layer keeps its capture (never both in one pass)
        call = _in_inference_mode(op)

        def run_inside(*args, **kwargs):
            with inner.hooks(found):
                return call(*args, **kwargs)

        return run_inside

    def run(model, inputs, paths, prefix):
        # paths: the still-to-find layer paths below this model, split at "/".
        here = {p[0] for p in paths if len(p) == 1}
        below = {p[0] for p in paths if len(p) > 1}

        def operation_fn(op):
            path = prefix + op.name
            if path in substitute:
                return lambda *args, **kwargs: replaced(path, _in_inference_mode(op)(*args, **kwargs)) \
                    if grids.get(path) is not None else substitute[path]
            if op.name in here and not _is_nested_model(op):
                return lambda *args, **kwargs: keep(path, _in_inference_mode(op)(*args, **kwargs))
            if attention is not None and is_attention(op):
                return _with_attention_scores(op, attention)
            if not _is_nested_model(op) and inner.is_container(op) and (
                    op.name in below or guided or (attention is not None and inner_attention_layers(op))):
                return inside(op, path, [p[1:] for p in paths if len(p) > 1 and p[0] == op.name])
            # Guided: the rule applies inside a nested model too (a base network's ReLUs, a KerasHub backbone's blocks).
            if _is_nested_model(op) and (op.name in below or guided or (final is not None and _contains(op, final))
                                         or (attention is not None and has_attention(op))):
                inner_paths = [p[1:] for p in paths if len(p) > 1 and p[0] == op.name]
                return lambda inputs_, *args, **kwargs: run(op, inputs_, inner_paths, path + SEPARATOR)
            if final is not None and op is final:
                return stand_in
            call = _in_inference_mode(op)
            if substitute:
                call = _with_batches_matched(call)
            if guided and is_relu_like(op):
                call = _with_guided_output(call)
            return call

        outputs = _graph(model)._run_through_graph([inputs], operation_fn=operation_fn)
        return outputs[0] if isinstance(outputs, (list, tuple)) else outputs

    wanted = [*layer_names, *substitute]
    logits = run(keras_model, x, [name.split(SEPARATOR) for name in wanted], "")
    missing = [name for name in layer_names if name not in captured]
    if missing:
        raise ValueError(f'Layer "{missing[0]}" was not reached when running the model.')
    return [captured[name] for name in layer_names], logits


# After a global pooling, layers that act on each photo's pooled vector alone.
_GLOBAL_POOLS = frozenset({"GlobalAveragePooling2D", "GlobalMaxPooling2D"})
_VECTOR_LAYERS = frozenset({"Dense", "Dropout", "Activation", "Softmax", "ReLU", "Flatten", "Identity"})


def _producer(op):
    """The layer whose output feeds ``op`` (a nested model's final layer when its output does),
    or None when ``op`` has several inputs or was called several times."""
    try:
        tensor = op.input
    except (AttributeError, ValueError):
        return None
    if isinstance(tensor, (list, tuple, dict)):
        return None
    source = getattr(getattr(tensor, "_keras_history", None), "operation", None)
    while source is not None and _is_nested_model(source):
        source = _graph(source).outputs[0]._keras_history.operation
    return source


def pooled_head(keras_model, layer_path: str) -> list | None:
    """The layers from the feature layer at ``layer_path`` to the model's scores when they
    are one global pooling followed only by layers that act on the pooled vector (Dense,
    Dropout, activations), each fed by the one before: a classifier that a channel vector
    can go through directly, since pooling a vector repeated at every position gives the
    vector back. None when anything else follows (a convolution, a skip connection, a
    second branch): then only running the rest of the network says what the layer feeds."""
    order = [(path, layer) for path, layer in walk_layers(keras_model) if type(layer).__name__ != "InputLayer"]
    paths = [path for path, _ in order]
    if layer_path not in paths:
        return None
    start = paths.index(layer_path)
    chain = [layer for _, layer in order[start + 1:]]
    if not chain or type(chain[0]).__name__ not in _GLOBAL_POOLS \
            or any(type(layer).__name__ not in _VECTOR_LAYERS for layer in chain[1:]):
        return None
    if any(_producer(op) is not fed_by for op, fed_by in zip(chain, [order[start][1], *chain[:-1]])):
        return None
    return chain if _final_layer(keras_model) is chain[-1] else None


def stage_layers(model) -> list[TargetLayer]:
    """One layer per stage of the network, early to late: the last target layer at
    each spatial resolution (the film strip of how the evidence forms). A
    transformer keeps one resolution throughout: one stage per block, its input
    normalisation."""
    blocks = attention_inputs(model)
    if blocks:
        return blocks
    stages: dict[tuple, TargetLayer] = {}
    for target in target_layers(model):
        if not target.is_feature_layer:  # padding, rescaling, dropout: not a stage of the network
            continue
        height, width = target.shape[0], target.shape[1]
        if (height or 2) * (width or 2) > 1:
            stages.pop((height, width), None)  # keep insertion order of the last one
            stages[(height, width)] = target
    return list(stages.values())
