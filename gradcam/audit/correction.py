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

import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from PIL import Image

from ..engine.graph import SEPARATOR, resolve_layer, target_layers
from ..engine.model import Model
from ..engine.passes import activations_pass
from .counterfactuals import masks_of, objects_moved, photo_readers, region_filled, top_answers

CHUNK = 32  # photos per activations call: the means are summed, so memory stays bounded
SUFFIX = "_pclarc"  # the inserted layer is named after the audited one plus this
MIN_PHOTOS = 2  # photos needed on each side to tell a direction
MIN_CLEAN = 4  # fewer clean photos of the class than this: the members with the cue removed stand in
REFERENCE_PHOTOS = 64  # other classes' photos in z, the clean photos' mean activation (one pass, bounded)


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
    label: str | None = None  # the class whose shortcut was removed
    clean_answers: list[str] = field(default_factory=list)  # the corrected model's answers on the clean photos

    @property
    def limits(self) -> str:
        """What the correction cannot do, in one sentence, from the corrected model's
        answers on the class's photos without the cue."""
        return limits_sentence(self.label, self.clean_answers)

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
            layer=None, label: str | None = None, reference: Sequence[Image.Image] | None = None) -> Correction:
    """P-ClArC: a corrected copy of ``model`` that ignores what tells ``with_cue`` from
    ``without_cue`` at ``layer`` (the audited layer; default: the model's default).

    ``with_cue``: the flagged photos (the cluster's members); ``without_cue``: clean
    photos of the same class (or the members with the cue removed, when the class has
    none without it); ``label``: their class, for the sentence about what the fix
    cannot do; ``reference``: the clean photos whose mean activation is z (default:
    ``without_cue``; the fix of a finding gives every clean photo of the dataset, so
    the other classes keep, on average, what they had along v). One pass over each
    set; nothing is trained."""
    if len(with_cue) < MIN_PHOTOS or len(without_cue) < MIN_PHOTOS:
        raise ValueError(f"The correction needs at least {MIN_PHOTOS} photos with the cue and {MIN_PHOTOS} without "
                         f"it; it got {len(with_cue)} and {len(without_cue)}.")
    target = resolve_layer(model, layer)
    shifted = mean_activation(model, list(with_cue), target.name)
    clean = mean_activation(model, list(without_cue), target.name)
    difference = shifted - clean
    separation = float(np.linalg.norm(difference))
    if not separation > 0:
        raise ValueError(f'The photos with and without the cue give the same activations at "{target.name}": '
                         "there is no direction to remove there.")
    direction = (difference / separation).astype(np.float32)
    reference = (clean if reference is None else mean_activation(model, list(reference), target.name)).astype(
        np.float32)
    keras_model, projection = with_projection(model.keras, target.name, *_as_layer_output(target, direction, reference))
    corrected = Model(name=f"{model.name} (corrected)", keras=keras_model, input_size=model.input_size,
                      labels=list(model.labels), preprocessing=model.preprocessing,
                      description=f"{model.description} with the shortcut at {target.name} projected out (P-ClArC)"
                      .strip(), channels=model.channels, synonyms=model.synonyms)
    clean_answers = top_answers(corrected, list(without_cue)) if label is not None else []
    return Correction(model=corrected, original=model, layer=target.name, projection_layer=projection,
                      direction=direction, reference=reference, with_cue=len(with_cue),
                      without_cue=len(without_cue), separation=separation, label=label,
                      clean_answers=clean_answers)


SAME_PLACE = 0.5  # a cluster whose region covers this share of the flagged one's sits at the same place


def _class_clusters(audit, label: str) -> list:
    return [c for cls in audit.classes if cls.label == label for c in cls.clusters]


def _overlap(box, flagged_box) -> float:
    """The share of ``flagged_box`` (x0, y0, x1, y1) that ``box`` covers."""
    width = max(0.0, min(box[2], flagged_box[2]) - max(box[0], flagged_box[0]))
    height = max(0.0, min(box[3], flagged_box[3]) - max(box[1], flagged_box[1]))
    area = (flagged_box[2] - flagged_box[0]) * (flagged_box[3] - flagged_box[1])
    return width * height / area if area > 0 else 0.0


RETRAIN_BELOW = 0.8  # below this share of the class's clean photos still right, the model must be retrained


def limits_sentence(label: str | None, answers: Sequence[str]) -> str:
    """The plain sentence about what the correction cannot do: it makes the model ignore
    the cue; it does not teach it what it never learned."""
    if label is None or not answers:
        return ("The correction makes the model ignore the cue; it does not teach it what it never learned: check "
                "its answers on photos without the cue.")
    count = len(answers)
    right = sum(a == label for a in answers)
    if right >= RETRAIN_BELOW * count:
        return (f"Without the cue the corrected model still calls {right} of {count} '{label}' photos '{label}': "
                "it had learned the class itself too, and now ignores the cue.")
    wrong = Counter(a for a in answers if a != label).most_common(1)[0]
    return (f"The correction makes the model ignore the cue; it does not teach it what it never learned: without "
            f"the cue it calls {wrong[1]} of {count} '{label}' photos '{wrong[0]}'"
            + (f" and {count - right - wrong[1]} something else" if count - right - wrong[1] else "")
            + ". It must be retrained on data without the cue.")


def correct_finding(model: Model, audit, source, finding=None, masks=None) -> Correction:
    """P-ClArC for one finding of ``audit`` (default: the most suspicious flagged cluster,
    else the first class the background swap flagged). ``source`` and ``masks`` are what
    was audited (the photos are read again).

    A flagged cluster: with the cue, its members; without it, the class's other photos
    (in no flagged cluster and in no cluster at the flagged one's place), or, when the
    class has fewer than MIN_CLEAN of those (every photo carries the cue), the members
    with the region filled by their mean colour. z: the mean over those clean photos
    and up to REFERENCE_PHOTOS photos of other classes.
    A class flagged by the background swap: with the cue, its photos; without it, the
    same objects cut out by their masks onto other classes' backgrounds."""
    if finding is None:
        findings = list(audit.flagged) + list(audit.flagged_classes)
        if not findings:
            raise ValueError("The audit flagged nothing, so there is no shortcut to correct.")
        finding = findings[0]
    if model is None or audit.layer not in {t.name for t in target_layers(model)}:
        raise ValueError("The correction needs the audited model (its layer "
                         f'"{audit.layer}" is not one of this model\'s).')
    readers = photo_readers(source, model.labels)
    label = finding.label
    in_class = [p for p in audit.photos if p.label == label and not p.error and p.path in readers]
    if not hasattr(finding, "members"):  # a class whose answer follows its backgrounds
        with_mask = masks_of(masks, readers)
        own = [found for found in (with_mask(p.path) for p in in_class) if found is not None]
        others = [found for found in (with_mask(p.path) for p in audit.photos
                                      if p.label != label and not p.error) if found is not None]
        if len(own) < MIN_PHOTOS or not others:
            raise ValueError(f"Correcting a background needs the masks of at least {MIN_PHOTOS} '{label}' photos and "
                             "of photos of other classes: give the masks that were audited.")
        moved = objects_moved(model, own, others)
        return correct(model, [image for image, _ in own], moved, layer=audit.layer, label=label,
                       reference=moved + [image for image, _ in others[:REFERENCE_PHOTOS]])
    missing = [path for path in finding.members if path not in readers]
    if missing:
        raise ValueError(f"{missing[0]} is in the audit but not in this source: give the source that was audited.")
    # Not clean: the flagged clusters' photos, and those of any cluster of the class whose
    # maps sit where the flagged one's do (SpRAy may split the cue's photos into a flagged
    # cluster and one the rules let pass; taking those as clean would bend the direction).
    suspect = {path for c in _class_clusters(audit, label)
               if c.flagged or _overlap(c.region, finding.region) >= SAME_PLACE for path in c.members}
    clean = [p.path for p in in_class if p.path not in suspect and (p.true_label is None or p.true_label == label)]
    with_cue = [readers[path]() for path in finding.members]
    if len(clean) >= MIN_CLEAN:
        without_cue = [readers[path]() for path in clean]
    else:
        # Every photo of the class carries the cue: the members with the region filled by
        # the photo's mean colour stand in. Not other classes' patches, though the audit's
        # evidence uses them: objects reach into that place in other classes' photos, and
        # their parts then enter v (on the Clever Hans demo the fix lost 7 of 22 right
        # triangles that way, none with the mean).
        without_cue = region_filled(model, with_cue, finding.region, "mean")
    other_classes = [readers[p.path]() for p in audit.photos
                     if p.label != label and not p.error and p.path in readers][:REFERENCE_PHOTOS]
    return correct(model, with_cue, without_cue, layer=audit.layer, label=label,
                   reference=list(without_cue) + other_classes)


def _as_layer_output(target, direction: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """v and z in the shape of the layer's own output. The engine sees a token layer's
    (tokens, dim) output as its patch grid (h, w, dim), extra tokens dropped (tokens.py);
    the inserted layer sees the tokens: the extra tokens (first) get v = 0, so the
    projection leaves the class token as it is, and the grid is laid out row-major again."""
    grid = target.grid
    if grid is None:
        return direction, reference
    dim = direction.shape[-1]

    def tokens(values):
        return np.concatenate([np.zeros((grid.extra, dim), np.float32),
                               values.reshape(grid.height * grid.width, dim)]).astype(np.float32)

    return tokens(direction), tokens(reference)


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
