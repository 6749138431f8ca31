"""The fix for a shortcut the audit found: P-ClArC (Anders et al. 2022), no retraining.

At the audited layer, the artifact's direction is

    v = (mean activation of the photos with the cue - mean activation of the clean photos),
        normalised to length 1,

and ``z`` is the clean photos' mean activation (both over every axis of the layer's
output but the batch: the cue sits at a place, so its direction has one). A layer
inserted right after the audited one computes

    a' = a - v v^T (a - z)

so the activation's component along v is always the clean photos' value: whatever
the cue adds along v no longer reaches the rest of the network. That makes the model
*ignore* the cue; it cannot teach the model what it never learned. A model that told
discs by the tag alone calls discs without the tag something else after the fix, and
``Correction.limits`` says so in one sentence: such a model must be retrained.

The corrected model is a copy (the original, shared by every session, is never
changed) with the same layer names, so a nested base model keeps its path; the
inserted ``gradcam.layers.ArtifactProjection`` is a registered Keras layer holding
two weight arrays, so the ``.keras`` file loads in safe mode, here and in the sandbox.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from PIL import Image

from ..engine.graph import SEPARATOR, resolve_layer
from ..engine.model import Model
from ..engine.passes import activations_pass

CHUNK = 32  # photos per activations call: the means are summed, so memory stays bounded
SUFFIX = "_pclarc"  # the inserted layer is named after the audited one plus this
MIN_PHOTOS = 2  # photos needed on each side to tell a direction


@dataclass(frozen=True)
class Correction:
    """A corrected model and what it was made from."""

    model: Model  # the corrected copy, ready to explain and audit
    original: Model
    layer: str  # the audited layer's path (the projection follows it)
    projection_layer: str  # the inserted layer's path: where the corrected activations are seen
    direction: np.ndarray = field(repr=False)  # v, the layer's output shape, length 1
    reference: np.ndarray = field(repr=False)  # z, the layer's output shape
    with_cue: int  # photos the direction came from, on each side
    without_cue: int
    separation: float  # |mean with cue - mean without| before normalising: how far the cue moves the layer

    def keras_bytes(self) -> bytes:
        """The corrected model as a ``.keras`` file's bytes (loads with safe_mode=True)."""
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "corrected.keras")
            self.model.keras.save(path)
            with open(path, "rb") as saved:
                return saved.read()

    def save(self, path) -> None:
        """Write the corrected model to ``path`` (a ``.keras`` file)."""
        if not str(path).endswith(".keras"):
            raise ValueError("The corrected model is saved as a .keras file (its name must end in .keras).")
        with open(path, "wb") as out:
            out.write(self.keras_bytes())


def mean_activation(model: Model, images: Sequence[Image.Image], layer: str) -> np.ndarray:
    """The mean of ``layer``'s activations over ``images`` (CHUNK photos per call, summed)."""
    run = activations_pass(model, layer)
    total, count = None, 0
    for start in range(0, len(images), CHUNK):
        x = np.concatenate([model.prepare(image) for image in images[start:start + CHUNK]])
        a = np.asarray(run(x), np.float64)
        total = a.sum(axis=0) if total is None else total + a.sum(axis=0)
        count += len(x)
    return total / count


def projected(a: np.ndarray, direction: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """a' = a - v v^T (a - z) for a batch ``a`` (n, *shape), in NumPy: what the layer computes."""
    flat = (a - reference).reshape(len(a), -1) @ direction.reshape(-1)
    return a - flat.reshape((-1,) + (1,) * direction.ndim) * direction


def correct(model: Model, with_cue: Sequence[Image.Image], without_cue: Sequence[Image.Image],
            layer=None) -> Correction:
    """P-ClArC: a corrected copy of ``model`` that ignores what tells ``with_cue`` from
    ``without_cue`` at ``layer`` (the audited layer; default: the model's default).

    ``with_cue``: the flagged photos (the cluster's members); ``without_cue``: clean
    photos of the same class (or the members with the cue removed, when the class has
    none without it). One pass over each set; nothing is trained."""
    if len(with_cue) < MIN_PHOTOS or len(without_cue) < MIN_PHOTOS:
        raise ValueError(f"The correction needs at least {MIN_PHOTOS} photos with the cue and {MIN_PHOTOS} without "
                         f"it; it got {len(with_cue)} and {len(without_cue)}.")
    target = resolve_layer(model, layer)
    if target.grid is not None:
        raise ValueError(f'"{target.name}" is a token layer; the correction is inserted after a feature-map layer '
                         "(choose a convolutional layer).")
    shifted = mean_activation(model, list(with_cue), target.name)
    clean = mean_activation(model, list(without_cue), target.name)
    difference = shifted - clean
    separation = float(np.linalg.norm(difference))
    if not separation > 0:
        raise ValueError(f'The photos with and without the cue give the same activations at "{target.name}": '
                         "there is no direction to remove there.")
    direction = (difference / separation).astype(np.float32)
    reference = clean.astype(np.float32)
    keras_model, projection = with_projection(model.keras, target.name, direction, reference)
    corrected = Model(name=f"{model.name} (corrected)", keras=keras_model, input_size=model.input_size,
                      labels=list(model.labels), preprocessing=model.preprocessing,
                      description=f"{model.description} with the shortcut at {target.name} projected out (P-ClArC)"
                      .strip(), channels=model.channels, synonyms=model.synonyms)
    return Correction(model=corrected, original=model, layer=target.name, projection_layer=projection,
                      direction=direction, reference=reference, with_cue=len(with_cue),
                      without_cue=len(without_cue), separation=separation)


# --- a copy of the model with one layer inserted -----------------------------------


def with_projection(keras_model, layer_path: str, direction: np.ndarray, reference: np.ndarray):
    """(a copy of ``keras_model`` with an ArtifactProjection right after ``layer_path``,
    the inserted layer's path). Nested models are copied down to the one holding the
    layer; every copied layer gets the original's weights (the original is untouched)."""
    from ..layers import ArtifactProjection

    parts = layer_path.split(SEPARATOR)
    projection = ArtifactProjection(name=parts[-1] + SUFFIX)
    try:
        copy = _copy_inserting(keras_model, parts, projection)
    except ValueError:
        raise
    except Exception as error:  # a subclassed model or layer Keras cannot copy from its config
        raise ValueError(f'The correction cannot be inserted after "{layer_path}": this model cannot be copied '
                         f"layer by layer ({type(error).__name__}).") from error
    projection.set_weights([direction, reference])
    return copy, SEPARATOR.join(parts[:-1] + [projection.name])


def _functional(keras_model):
    """The Functional graph of a model (a built Sequential keeps one inside)."""
    import keras

    if isinstance(keras_model, keras.Sequential):
        inner = getattr(keras_model, "_functional", None)
        if inner is None:
            raise ValueError("The correction needs a built model (a Sequential with an Input).")
        return inner
    return keras_model


def _copy_inserting(keras_model, parts: list[str], projection):
    import keras

    head, rest = parts[0], parts[1:]
    copied: list[tuple[object, object]] = []
    found = []

    def clone_function(layer):
        if rest and layer.name == head:
            found.append(layer)
            return _copy_inserting(layer, rest, projection)
        twin = layer.__class__.from_config(layer.get_config())
        copied.append((layer, twin))
        return twin

    def call_function(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        if not rest and layer.name == head:
            found.append(layer)
            out = projection(out)
        return out

    source = _functional(keras_model)
    copy = keras.models.clone_model(source, clone_function=clone_function, call_function=call_function)
    if not found:
        raise ValueError(f'The layer "{SEPARATOR.join(parts)}" was not found where the correction goes.')
    for original, twin in copied:
        twin.set_weights(original.get_weights())
    if copy.name != keras_model.name:  # layer paths go through nested models' names: keep them
        copy.name = keras_model.name
    return copy
