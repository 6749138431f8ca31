"""Layers that live inside custom layers: the blocks a KerasHub transformer calls in its own ``call``.

KerasHub's ViT, DeiT and Swin keep their transformer blocks inside one custom layer
(``ViTBackbone``'s ``vit_encoder`` calls ``transformer_block_N`` in a Python loop), so
the functional graph that ``graph.py`` walks shows one node for all of them. What
PyTorch does with forward hooks is done here by intercepting the sub-layers' calls:

- every sub-layer of such a container gets its ``call`` wrapped once, by a wrapper
  that does exactly what the layer did unless this thread asked for something
  (``hooks``): the model, shared by every session, computes what it always did;
- the model is traced once, symbolically (nothing is computed, nothing allocated),
  with a wrapper recording each sub-layer's output shape in call order
  (``probe``); that says which blocks there are and where their tokens lie;
- a compiled pass asks, while it is being traced, for a block's output or its input
  normalisation: the captured tensor is part of the traced graph, so the pass is
  traced once per (model, layer) and never again per call.

Only layers outside Keras itself are opened (Keras' own MultiHeadAttention has
sub-layers too, but its query/key/value projections are no feature maps).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import types
import weakref
from typing import Callable, NamedTuple

SEPARATOR = "/"
_hooks = threading.local()  # .active: {id(layer): hook(original_call, *args, **kwargs)}
_probes: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_probes_lock = threading.Lock()
NORMALISATIONS = ("LayerNormalization", "RMSNormalization", "BatchNormalization", "GroupNormalization")


class Inner(NamedTuple):
    """One sub-layer's first call, seen while tracing the model."""

    path: str  # through the functional graph and the containers: "vit_backbone/vit_encoder/transformer_block_2/ln_1"
    shape: tuple  # output shape without the batch axis
    role: str  # "patches" (a convolution: the patch grid), "block", "input_norm", "attention", "other"
    heads: int = 0  # an attention layer's heads
    batch: int = 1  # the leading axis seen when the model ran on one photo (windows, for window attention)
    query_tokens: int = 0  # an attention layer's query and key lengths
    key_tokens: int = 0


def is_container(layer) -> bool:
    """A custom (non-Keras, non-functional) layer that calls sub-layers of its own."""
    import keras

    if isinstance(layer, keras.Model) or type(layer).__module__.startswith("keras."):
        return False
    return bool(children(layer))


def children(layer) -> list:
    try:
        return list(layer._flatten_layers(include_self=False, recursive=False))
    except AttributeError:
        return []


def _is_attention(layer) -> bool:
    name = type(layer).__name__
    return "Attention" in name


def _heads(layer) -> int:
    for attribute in ("_num_heads", "num_heads", "heads"):
        value = getattr(layer, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1


def _wrap(layer) -> None:
    """Make ``layer.call`` consult this thread's hooks; once per layer, for the model's life."""
    if layer.__dict__.get("_gradcam_intercepted"):
        return
    original = layer.call

    def call(*args, **kwargs):
        hook = getattr(_hooks, "active", {}).get(id(layer))
        return original(*args, **kwargs) if hook is None else hook(original, *args, **kwargs)

    object.__setattr__(layer, "call", call)  # not Keras' tracking __setattr__: a function is no state
    object.__setattr__(layer, "_gradcam_intercepted", True)


def _wrap_function(layer, attribute: str) -> None:
    """Make the function ``layer`` keeps as ``attribute`` (and calls in its ``call``) consult this
    thread's hooks; once per layer and attribute. ``functools.wraps`` keeps its name and module,
    so Keras still serialises it as the function it was (``"gelu"``)."""
    marks = layer.__dict__.setdefault("_gradcam_intercepted_functions", set())
    if attribute in marks:
        return
    original = getattr(layer, attribute)
    key = (id(layer), attribute)

    @functools.wraps(original)
    def function(*args, **kwargs):
        hook = getattr(_hooks, "active", {}).get(key)
        return original(*args, **kwargs) if hook is None else hook(original, *args, **kwargs)

    object.__setattr__(layer, attribute, function)
    marks.add(attribute)


def function_attributes(layer, names: frozenset) -> list[str]:
    """The attributes of a custom layer that hold a function named in ``names`` (KerasHub's Swin
    MLP keeps GELU as ``act_layer`` and calls it between its two Dense layers). A Keras layer's
    own activation is part of its output, hooked with the layer itself: not listed here."""
    if type(layer).__module__.startswith("keras."):
        return []
    found = []
    for attribute, value in vars(layer).items():
        value = getattr(value, "__wrapped__", value)  # already intercepted: the function inside
        if isinstance(value, types.FunctionType) and value.__name__ in names:
            found.append(attribute)
    return found


@contextlib.contextmanager
def hooks(found: dict):
    """Inside this block, this thread's calls of each layer in ``found`` ({layer: hook}) go
    through ``hook(original_call, *args, **kwargs)``; other threads see the plain layer. A key
    ``(layer, attribute)`` hooks the function the layer keeps in that attribute instead."""
    previous = getattr(_hooks, "active", {})
    active = {}
    for key, hook in found.items():
        if isinstance(key, tuple):
            layer, attribute = key
            _wrap_function(layer, attribute)
            active[(id(layer), attribute)] = hook
        else:
            _wrap(key)
            active[id(key)] = hook
    _hooks.active = {**previous, **active}
    try:
        yield
    finally:
        _hooks.active = previous


def sub_layers(container, prefix: str) -> list[tuple[str, object]]:
    """(path, layer) of every layer below ``container``, depth first; attention layers are
    not opened (their projections are no feature maps)."""
    found = []
    for child in children(container):
        path = prefix + SEPARATOR + child.name
        found.append((path, child))
        if not _is_attention(child):
            found.extend(sub_layers(child, path))
    return found


def find(container, inner_path: list[str]):
    """The sub-layer at ``inner_path`` (names below ``container``), or None."""
    layer = container
    for name in inner_path:
        layer = next((child for child in children(layer) if child.name == name), None)
        if layer is None:
            return None
    return layer


def _first_tensor(value):
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    return value


def _static_shape(tensor) -> tuple | None:
    shape = getattr(tensor, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(None if d is None else int(d) for d in shape)
    except TypeError:
        return None


def probe(keras_model, containers: list[tuple[str, object]], input_shape: tuple) -> list[Inner]:
    """What runs inside ``containers`` [(path, layer)] when ``keras_model`` sees one photo of
    ``input_shape`` (height, width, channels): each sub-layer's first call, in call order.
    Traced symbolically once per model and kept while the model lives."""
    with _probes_lock:
        if keras_model in _probes:
            return _probes[keras_model]
    import tensorflow as tf

    layers = [(path, layer) for container_path, container in containers
              for path, layer in sub_layers(container, container_path)]
    by_id = {id(layer): (path, layer) for path, layer in layers}
    parents = {}
    for container_path, container in containers:
        _note_parents(container, parents)
    seen: dict[int, Inner] = {}
    order: list[int] = []

    def recorder(layer):
        def hook(original, *args, **kwargs):
            out = original(*args, **kwargs)
            if id(layer) not in seen:
                seen[id(layer)] = None  # placeholder keeps the call order of the first call
                order.append(id(layer))
                seen[id(layer)] = _describe(by_id[id(layer)][0], layer, args, out, parents)
            return out

        return hook

    spec = tf.TensorSpec((1, *input_shape), tf.float32)
    try:
        with hooks({layer: recorder(layer) for _, layer in layers}):
            tf.function(lambda x: keras_model(x, training=False), autograph=False).get_concrete_function(spec)
        found = [seen[i] for i in order if seen[i] is not None]
    except Exception:  # a custom layer that cannot be traced symbolically: its insides stay unlisted
        found = []
    with _probes_lock:
        _probes[keras_model] = found
    return found


def _note_parents(layer, parents: dict) -> None:
    for child in children(layer):
        parents[id(child)] = layer
        if not _is_attention(child):
            _note_parents(child, parents)


def _describe(path: str, layer, args, out, parents: dict) -> Inner | None:
    shape = _static_shape(_first_tensor(out))
    if shape is None or not shape:
        return None
    batch = shape[0] if shape[0] is not None else 1
    kind = type(layer).__name__
    parent = parents.get(id(layer))
    if _is_attention(layer):
        query = _static_shape(_first_tensor(args)) or ()
        tokens = query[1] if len(query) == 3 and query[1] else 0
        return Inner(path, shape[1:], "attention", _heads(layer), batch, tokens, tokens)
    if len(shape) == 4 and "Conv" in kind:
        return Inner(path, shape[1:], "patches", batch=batch)
    if len(shape) == 3 and any(_is_attention(child) for child in children(layer)):
        return Inner(path, shape[1:], "block", batch=batch)
    if len(shape) == 3 and kind in NORMALISATIONS and parent is not None \
            and any(_is_attention(child) for child in children(parent)) \
            and next((c for c in children(parent) if type(c).__name__ in NORMALISATIONS), None) is layer:
        return Inner(path, shape[1:], "input_norm", batch=batch)
    return Inner(path, shape[1:], "other", batch=batch)


def capture_hook(on_output: Callable) -> Callable:
    """A hook that hands the layer's output (the first tensor of a tuple) to ``on_output``
    and lets what it returns flow on in its place."""

    def hook(original, *args, **kwargs):
        out = original(*args, **kwargs)
        if isinstance(out, tuple):
            return (on_output(out[0]), *out[1:])
        return on_output(out)

    return hook
