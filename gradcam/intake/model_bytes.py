"""A Keras model from a file's bytes, code-free: what the sandbox's model worker runs.

Uploaded bytes are read from memory (nothing a user uploads is written to disk),
their declared sizes checked against ``model_budget`` before Keras works on them,
and loaded with Keras' safe mode on. Every failure is a ``ModelLoadError`` with
one sentence.
"""

from __future__ import annotations

import io
import json
from typing import Callable

import numpy as np

from ..errors import ModelLoadError
from . import model_budget


def keras_model_from_bytes(data: bytes):
    """The Keras model in a .keras or .h5 file's bytes (safe mode, budgets checked)."""
    return whole_model(lambda: _load_from_bytes(data))


HUB_MISSING = "This model uses KerasHub layers; install keras-hub (pip install keras-hub) to load it."
# keras-hub 0.32's EfficientNetBackbone.get_config leaves num_features out (like stackwise_nores_option, keras-hub
# issue 3072), so Keras rebuilds the default 1280-channel top_conv and the saved weights do not fit it.
EFFICIENTNET_UNREADABLE = ("This KerasHub EfficientNet cannot be loaded from its file: keras-hub does not save the "
                           "backbone's num_features setting, so only EfficientNets with the default (1280) can be "
                           "rebuilt from a file.")
# Also what Keras 3.15 with keras-hub 0.32 says of a KerasHub EfficientNet it saved itself (Keras cannot
# read that file back either: tests/zoo/test_hub.py).
HUB_UNREADABLE = ("This model uses KerasHub layers, but Keras and the installed keras-hub cannot rebuild it from "
                  "this file (saved by another version, or a model they cannot read back), so it cannot be loaded.")


def _register_token_layers() -> None:
    # The project's own layers (class token, position embedding, the audit's correction)
    # are known to Keras by name, so safe mode loads a model that uses them (gradcam/layers.py).
    # KerasHub's classes are registered only for a config that names them (_check_hub): importing
    # keras_hub costs seconds that a plain Keras model never pays.
    from .. import layers  # noqa: F401


def hub_installed() -> bool:
    """Import KerasHub when it is installed: importing it registers its layers and models
    with Keras by name, which is all safe mode needs to rebuild them (no code from the file)."""
    try:
        import keras_hub  # noqa: F401
    except ImportError:
        return False
    return True


def uses_hub(config) -> bool:
    """True when a model's config (its JSON text or the parsed dict) names KerasHub classes."""
    text = config if isinstance(config, str) else config.decode("utf-8", "replace") \
        if isinstance(config, (bytes, bytearray)) else json.dumps(config)
    return '"keras_hub' in text or "keras_hub>" in text


def _load_from_bytes(data: bytes):
    # Uploaded bytes are read from memory: nothing a user uploads is written to disk.
    _register_token_layers()
    if data[:4] == b"PK\x03\x04":
        from keras.src.saving import saving_lib

        config = model_budget.check_archive(data)
        model_budget.check_config_json(config)
        _check_hub(config)
        try:
            return saving_lib.load_model(io.BytesIO(data), compile=False, safe_mode=True)
        except (MemoryError, ModelLoadError):
            raise
        except Exception as error:
            if uses_hub(config):
                text = config.decode("utf-8", "replace") if isinstance(config, bytes) else str(config)
                if '"EfficientNetBackbone"' in text and '"num_features"' not in text:
                    raise ModelLoadError(EFFICIENTNET_UNREADABLE) from error
                raise ModelLoadError(HUB_UNREADABLE) from error
            raise
    if data[:8] == b"\x89HDF\r\n\x1a\n":
        import h5py
        from keras.src.legacy.saving import legacy_h5_format

        # h5py itself parses the file; only the sandbox bounds what that costs.
        with h5py.File(io.BytesIO(data), "r") as h5:
            config = h5.attrs.get("model_config")
            if config is None:
                raise ModelLoadError("The file holds Keras weights or a layer, not a whole model.")
            model_budget.check_config_json(config)
            _check_hub(config)
            return legacy_h5_format.load_model_from_hdf5(h5, compile=False, safe_mode=True)
    raise ModelLoadError("The file is not a Keras model (expected a .keras or .h5 file).")


def _check_hub(config) -> None:
    """Import KerasHub (registering its classes) when ``config`` names them; its sentence where it is missing."""
    if uses_hub(config) and not hub_installed():
        raise ModelLoadError(HUB_MISSING)


def _explain_load_failure(error: Exception, config=None) -> str:
    text = str(error)
    if "keras_hub" in text or (config is not None and uses_hub(config)):
        return HUB_MISSING if not hub_installed() else HUB_UNREADABLE
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


def rebuilt_model(config: str, weights: list[np.ndarray]):
    """The model the sandbox verified, rebuilt here from Keras' own config and the weights.

    This process never parses the file (h5py, zip, the file's JSON): a crash or hang
    there stays in the worker. Building from the config costs what it cost the worker,
    which did it within budget, and the config's declared sizes are checked again.
    """
    import keras

    _register_token_layers()

    def rebuild():
        _check_hub(config)
        model = keras.saving.deserialize_keras_object(model_budget.check_config_json(config), safe_mode=True)
        model.set_weights(weights)
        return model

    return whole_model(rebuild, config)


def whole_model(load: Callable[[], object], config=None):
    """``load()``'s Keras model; any failure becomes ModelLoadError with one sentence."""
    import keras

    try:
        model = load()
    except ModelLoadError:
        raise
    except MemoryError as error:
        raise ModelLoadError("The model needs more memory than is available to load it.") from error
    except Exception as error:
        raise ModelLoadError(_explain_load_failure(error, config)) from error
    if not isinstance(model, keras.Model):
        raise ModelLoadError("The file holds Keras weights or a layer, not a whole model.")
    return model
