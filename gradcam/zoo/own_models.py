"""A user's own ``.keras`` / ``.h5`` file as a ``Model``: read, checked, labelled.

The bytes are read with one reader (existence, regular file, size), loaded either
here or, with ``sandbox=True``, in a sandboxed worker (``gradcam.intake.sandbox``),
and the model is checked for what Grad-CAM needs (one image input, one vector of
class scores, a feature layer). Every problem is a ``ModelLoadError``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..engine.graph import target_layers, walk_layers
from ..engine.model import Model
from ..errors import ModelLoadError
from ..intake import model_budget
from ..intake.files import FileRefused, read_regular_file
from ..intake.model_bytes import keras_model_from_bytes, rebuilt_model
from ..intake.presets import is_preset_archive, is_preset_folder, preset_folder_bytes, preset_from_archive
from ..intake.sandbox import verified_model_file
from ..intake.text import valid_text
from .hub import own_input_size, own_preprocessing, preset_model
from .labels import MAX_LABELS_BYTES, imagenet_classes, imagenet_labels, parse_labels

MAX_MODEL_BYTES = model_budget.MAX_MODEL_BYTES
# ImageNet-21k has 21,843 classes. A Dense(1,000,000) head is only an 8 MB file, but every
# class becomes a name in memory and an option the pages must offer.
MAX_CLASSES = 100_000


def _model_file_bytes(source) -> tuple[bytes, str]:
    """The model file's bytes and a name to show, from a path, bytes or a file object."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "uploaded model"
    elif hasattr(source, "read"):
        try:
            data = source.read(MAX_MODEL_BYTES + 1)
        except Exception as error:  # closed files, text-mode files, a failing upload
            raise ModelLoadError("The model file could not be read.") from error
        if not isinstance(data, (bytes, bytearray)):
            raise ModelLoadError("The model file must be opened in binary mode ('rb').")
        name = getattr(source, "name", "uploaded model")
        name = name if isinstance(name, str) else "uploaded model"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        data = _read_file(path, "model", MAX_MODEL_BYTES, "larger than 1 GB")
        name = valid_text(path.name)
    else:
        raise ModelLoadError(f"A model is a name, a path, bytes or a file, not {type(source).__name__}.")
    if not data:
        raise ModelLoadError("The model file is empty.")
    if len(data) > MAX_MODEL_BYTES:
        raise ModelLoadError("The model file is larger than 1 GB.")
    return data, name


def own_model(source, labels, preprocessing, sandbox: bool = False, name: str | None = None) -> Model:
    """A model file (.keras, .h5), a KerasHub preset folder, or a zip of one, as a Model."""
    if is_preset_folder(source):
        data, file_name = preset_folder_bytes(source), valid_text(Path(source).name)
    else:
        data, file_name = _model_file_bytes(source)
    if sandbox:
        keras_model = rebuilt_model(*verified_model_file(data))
    elif is_preset_archive(data):
        keras_model = preset_from_archive(data)
    else:
        keras_model = keras_model_from_bytes(data)
    file_name = Path(name).name if name else file_name
    try:
        return _checked_model(keras_model, file_name, labels, preprocessing)
    except ModelLoadError:
        raise
    except Exception as error:  # e.g. a Sequential saved before it was ever built
        raise ModelLoadError("The model's structure cannot be read (was it built before it was saved?).") from error


def preset_name_model(name: str) -> Model:
    """A KerasHub preset by name (fetched by KerasHub on first use), checked like a file."""
    return _checked_model(preset_model(name), name, None, None)


def checked_model(keras_model, name: str, labels=None, preprocessing: str | None = None) -> Model:
    """A Keras classifier built in this process (a KerasHub one too) as a Model, checked like a file."""
    return _checked_model(keras_model, name, labels, preprocessing)


def _checked_model(keras_model, file_name, labels, preprocessing) -> Model:
    if not keras_model.inputs:
        raise ModelLoadError("The model has no defined input; build it on an image shape before saving it.")
    if len(keras_model.inputs) != 1:
        raise ModelLoadError(
            f"The model has {len(keras_model.inputs)} inputs; Grad-CAM needs a model with one image input."
        )
    shape = tuple(keras_model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] not in (1, 3):
        raise ModelLoadError(
            "The model's input is not an image (expected height x width x 1 or 3 channels)."
        )
    model_budget.check_input_shape(shape)
    if len(keras_model.outputs) != 1 or len(keras_model.outputs[0].shape) != 2:
        raise ModelLoadError("The model must have one output: a vector of class scores.")
    classes = int(keras_model.outputs[0].shape[-1])
    if classes > MAX_CLASSES:
        raise ModelLoadError(f"The model has {classes:,} classes; the limit is {MAX_CLASSES:,}.")

    if not _has_target_layer(keras_model):
        raise ModelLoadError(
            "The model has no convolutional layer (a layer with a height x width x channels "
            "output) for Grad-CAM to look at."
        )
    names, synonyms = _own_labels(labels, classes), ()
    if labels is None and classes == len(imagenet_labels()) and own_preprocessing(keras_model, 3) is not None:
        # A KerasHub ImageNet-1k classifier (a preset): the 1000 class names the project ships.
        names, synonyms = list(imagenet_labels()), tuple(names for _, names in imagenet_classes())
    if preprocessing is None:
        # A KerasHub classifier's own image converter says how it scales pixels; else guess.
        preprocessing = own_preprocessing(keras_model, int(shape[-1])) \
            or ("none" if _rescales_itself(keras_model) else "0..1")
    own_size = own_input_size(keras_model)
    height = shape[1] or (own_size[0] if own_size else 224)
    width = shape[2] or (own_size[1] if own_size else 224)
    return Model(
        name=Path(file_name).name if isinstance(file_name, str) else "uploaded model",
        keras=keras_model,
        input_size=(int(height), int(width)),
        labels=names,
        preprocessing=preprocessing,
        description=f"your model, {classes} output{'s' if classes != 1 else ''}, {width}x{height} px",
        channels=int(shape[-1]),
        synonyms=synonyms,
    )


def _has_target_layer(keras_model) -> bool:
    probe = Model(name="", keras=keras_model, input_size=(1, 1), labels=[], preprocessing="none")
    return bool(target_layers(probe))


def _own_labels(labels, classes: int) -> list[str]:
    """The class names for an own model; every problem is a ModelLoadError (a ValueError)
    with one sentence."""
    if labels is None:
        return ["the output"] if classes == 1 else [f"class {i}" for i in range(classes)]
    if isinstance(labels, (list, tuple)):
        if not all(isinstance(label, (str, int, float)) for label in labels):
            raise ModelLoadError("Labels given as a list must be text (or numbers).")
        names = [valid_text(str(label)) for label in labels]
        if len(names) != classes:
            raise ModelLoadError(f"{len(names)} labels were given but the model has {classes} outputs.")
        return names
    if isinstance(labels, (bytes, bytearray)):
        return parse_labels(bytes(labels), classes)
    if hasattr(labels, "read"):
        try:
            data = labels.read(MAX_LABELS_BYTES + 1)
        except Exception as error:  # a closed file, a failing upload
            raise ModelLoadError("The labels file could not be read.") from error
        if not isinstance(data, (str, bytes, bytearray)):
            raise ModelLoadError("The labels file could not be read.")
        return parse_labels(data, classes)
    if isinstance(labels, str) and "\n" in labels:  # the labels' text itself
        return parse_labels(labels, classes)
    if not isinstance(labels, (str, os.PathLike)):
        raise ModelLoadError(f"Labels are a file, its text or a list of names, not {type(labels).__name__}.")
    return parse_labels(_read_file(Path(labels), "labels", MAX_LABELS_BYTES, "too large (over 5 MB)"), classes)


def _read_file(path: Path, what: str, limit: int, too_large: str) -> bytes:
    """A model or labels file's bytes (the intake's guarded read: a FIFO or a device is refused
    before it is opened), or ModelLoadError with one sentence."""
    try:
        return read_regular_file(path, limit)
    except FileRefused as refused:
        name = valid_text(path.name)
        raise ModelLoadError({
            "missing": f"No such {what} file: {name}.",
            "name": f"No such {what} file: {name}.",  # a NUL in the name cannot name a file
            "folder": f"{name} is not a {what} file (it is a folder, a device or a pipe).",
            "special": f"{name} is not a {what} file (it is a folder, a device or a pipe).",
            "too large": f"The {what} file is {too_large}.",
        }.get(refused.kind, f"The {what} file {name} could not be read.")) from None


def _rescales_itself(keras_model) -> bool:
    """True when the model scales its own pixels (a Rescaling or Normalization layer)."""
    return any(type(layer).__name__ in ("Rescaling", "Normalization") for _, layer in walk_layers(keras_model))
