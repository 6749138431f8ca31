"""Which layers Grad-CAM can look at, and running a model so that one of them is seen.

Layers are named by their path through nested models: a transfer-learning model
whose base network is a nested ``keras.Model`` has target layers such as
``"mobilenetv2_1.00_224/out_relu"``. Running the graph ourselves (instead of
building ``keras.Model(model.inputs, inner_layer.output)``, which fails with
"Graph disconnected" for nested models) lets us capture such a layer's output.
"""

from __future__ import annotations

from typing import Callable, Iterator, NamedTuple

SEPARATOR = "/"
_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


class TargetLayer(NamedTuple):
    name: str  # path through nested models, e.g. "base/block_16_project"
    shape: tuple  # output shape without the batch axis: (height, width, channels)

    def __str__(self) -> str:
        height, width, channels = self.shape
        return f"{self.name}  ({height}x{width}x{channels})"


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
    """Every layer with a 4-D (feature map) output, in model order. The default
    target is ``default_layer(model)``: the last one with more than one pixel."""
    found = []
    for path, layer in walk_layers(model.keras):
        if type(layer).__name__ == "InputLayer":
            continue
        shape = _output_shape(layer)
        if shape is not None and len(shape) == 4:
            found.append(TargetLayer(path, tuple(shape[1:])))
    return found


def default_layer(model) -> TargetLayer:
    """The last feature map before global pooling: the most class-specific one
    that still has a spatial layout (a 1x1 map cannot point anywhere)."""
    candidates = target_layers(model)
    spatial = [t for t in candidates if (t.shape[0] or 2) * (t.shape[1] or 2) > 1]
    return (spatial or candidates)[-1]


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
    raise ValueError(f'The model has no layer "{name}" that Grad-CAM can target.')


def output_activation(keras_model) -> str:
    """'softmax', 'sigmoid' or 'linear': what the model applies to its scores."""
    layer = _final_layer(keras_model)
    if type(layer).__name__ == "Softmax":
        return "softmax"
    name = getattr(getattr(layer, "activation", None), "__name__", "linear")
    return name if name in _PROBABILITY_ACTIVATIONS else "linear"


def _final_layer(keras_model):
    output = _graph(keras_model).outputs[0]
    return output._keras_history.operation


def _without_activation(layer) -> Callable:
    """``layer`` as it would be without its final softmax/sigmoid: the pre-activation
    scores (logits), computed from the layer's own weights, leaving it untouched."""
    from keras import ops

    if type(layer).__name__ in ("Softmax", "Activation"):
        return lambda x, *args, **kwargs: x
    if type(layer).__name__ == "Dense":

        def dense_logits(x, *args, **kwargs):
            logits = ops.matmul(x, layer.kernel)
            return logits + layer.bias if layer.use_bias else logits

        return dense_logits

    # Some other layer ends in a softmax: its log-probabilities differ from the
    # logits by one constant per image, which gives the same class ranking.
    def log_probabilities(*args, **kwargs):
        return ops.log(ops.maximum(layer(*args, **kwargs), 1e-30))

    return log_probabilities


def run_capturing(keras_model, x, layer_name: str | None, on_capture: Callable | None = None):
    """Run ``keras_model`` on ``x``; return (the named layer's output, the logits).
    With ``layer_name`` None nothing is captured: (None, logits).

    ``on_capture`` sees the layer's output as soon as it exists, so a gradient tape
    can watch it even when the layers are frozen (non-trainable weights are not
    watched by default, which silently breaks Grad-CAM on transfer-learning models).
    """
    captured = {}
    path = layer_name.split(SEPARATOR) if layer_name else [None]
    strip = _final_layer(keras_model) if output_activation(keras_model) != "linear" else None

    def run(model, inputs, remaining):
        def operation_fn(op):
            if op.name == remaining[0] and len(remaining) == 1:

                def capture(*args, **kwargs):
                    out = op(*args, **kwargs)
                    if on_capture is not None:
                        on_capture(out)
                    captured.setdefault("features", out)
                    return out

                return capture
            if op.name == remaining[0] and _is_nested_model(op):
                return lambda inner, *args, **kwargs: run(op, inner, remaining[1:])
            if op is strip:
                return _without_activation(op)
            return op

        outputs = _graph(model)._run_through_graph([inputs], operation_fn=operation_fn)
        return outputs[0] if isinstance(outputs, (list, tuple)) else outputs

    logits = run(keras_model, x, path)
    if layer_name is None:
        return None, logits
    if "features" not in captured:
        raise ValueError(f'Layer "{layer_name}" was not reached when running the model.')
    return captured["features"], logits
