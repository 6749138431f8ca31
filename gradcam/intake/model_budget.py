"""Budgets a model file must meet before Keras does any work on it.

Keras unpacks a ``.keras`` archive's members (it only refuses members over
4 GiB), parses their JSON and builds every layer, allocating its weights, before
anything can say "too big". A 1.5 MB archive whose config unpacks to 1.5 GiB,
or a 20 KB config declaring a Dense layer of 100 million units, costs gigabytes
that way. These checks read only what the file declares (the zip's central
directory, the config's numbers), so a hostile file is refused in milliseconds
and in bounded memory, inside or outside the sandbox.

Everything here raises ``ModelLoadError`` with one sentence, nothing else.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile

from ..errors import ModelLoadError
from .text import is_valid_text, megabytes, valid_text

MAX_MODEL_BYTES = 1000 * 2**20  # (binary megabytes, like every size this package names); a model file, or everything a .keras archive unpacks to
MAX_JSON_BYTES = 16 * 2**20  # config.json / metadata.json (ResNet50's config is ~0.1 MB)
MAX_ARCHIVE_MEMBERS = 1000
# float32 weights of this many parameters take 1.2 GB: more than a 1 GB file can hold.
MAX_PARAMETERS = 300_000_000
# The input the network sees, height x width: 2048 x 2048. A 100000 x 100000 input
# loads, then its first prediction needs terabytes.
MAX_INPUT_PIXELS = 2048 * 2048
MAX_CONFIG_DEPTH = 200  # nested dicts/lists: json itself recurses, and so does Keras

_JSON_MEMBERS = ("config.json", "metadata.json")
_EOCD = b"PK\x05\x06"


# --- the .keras archive ------------------------------------------------------------


def check_archive(data: bytes, folder: str = "") -> bytes:
    """Check a ``.keras`` zip's declared sizes; return its config.json (read within budget).
    ``folder``: where config.json sits in the zip ("" the top; "name/" a zipped preset folder).

    The entry count comes from the end-of-central-directory record, before the
    central directory is listed, so a zip of a million entries costs nothing.
    """
    entries = _declared_entries(data)
    if entries is not None and entries > MAX_ARCHIVE_MEMBERS:
        raise ModelLoadError(
            f"The model archive has {entries:,} entries; a Keras model has a handful "
            f"(the limit is {MAX_ARCHIVE_MEMBERS:,})."
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            NotImplementedError, struct.error, UnicodeDecodeError):
        raise ModelLoadError("The model file is damaged (its archive cannot be read).") from None
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise ModelLoadError(f"The model archive has more than {MAX_ARCHIVE_MEMBERS:,} entries.")
    total = 0
    for member in members:
        limit = MAX_JSON_BYTES if member.filename.split("/")[-1] in _JSON_MEMBERS else MAX_MODEL_BYTES
        if member.file_size > limit:
            raise ModelLoadError(
                f"The model archive's {_shown(member.filename)} unpacks to {megabytes(member.file_size)}; "
                f"the limit is {megabytes(limit)}."
            )
        total += member.file_size
    if total > MAX_MODEL_BYTES:
        raise ModelLoadError(
            f"The model archive unpacks to {megabytes(total)}; the limit is {megabytes(MAX_MODEL_BYTES)}."
        )
    if folder + "config.json" not in {member.filename for member in members}:
        raise ModelLoadError("The model archive has no config.json, so it is not a Keras model.")
    try:
        with archive.open(folder + "config.json") as member:
            # zipfile stops at the declared size, and the declared size is checked above.
            return member.read(MAX_JSON_BYTES + 1)
    except Exception:  # zlib.error, LZMAError, BadZipFile (CRC), NotImplementedError (encrypted), ...
        raise ModelLoadError("The model file is damaged (its archive cannot be read).") from None


def _declared_entries(data: bytes) -> int | None:
    """The total entry count in the end-of-central-directory record, or None if absent."""
    at = data.rfind(_EOCD, max(0, len(data) - 22 - 65535))
    if at < 0 or at + 22 > len(data):
        return None
    return struct.unpack_from("<H", data, at + 10)[0]  # zip64 archives say 0xFFFF: still counted by the listing


def _shown(name: str) -> str:
    """A member name as safe, short text for a sentence."""
    name = valid_text(name)
    name = "".join(c if c.isprintable() else "?" for c in name)
    return name if len(name) <= 60 else name[:57] + "..."


# --- the model's config --------------------------------------------------------------


def check_config_json(text: bytes | str) -> dict:
    """Parse a model config (config.json, or an .h5 file's model_config) and check it."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) > MAX_JSON_BYTES:
            raise ModelLoadError(f"The model's configuration is larger than {megabytes(MAX_JSON_BYTES)}.")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise ModelLoadError("The model's configuration is not UTF-8 text, so the file is damaged.") from None
    try:
        config = json.loads(text)
    except RecursionError:
        raise ModelLoadError("The model's configuration is nested too deeply to be read.") from None
    except ValueError:
        raise ModelLoadError("The model's configuration is not valid JSON, so the file is damaged.") from None
    if not isinstance(config, dict):
        raise ModelLoadError("The model's configuration does not describe a model.")
    check_config(config)
    return config


def check_config(config: dict) -> None:
    """Refuse a config whose declared parameters, input size, nesting or text are out of budget,
    before any layer is built."""
    parameters = 0
    for layer in _layers(config):
        parameters += _parameters(layer)
        if parameters > MAX_PARAMETERS:
            raise ModelLoadError(
                f"The model declares more than {MAX_PARAMETERS / 1e6:,.0f} million parameters "
                f"(layer {_shown(str(layer.get('name') or layer.get('config', {}).get('name', '?')))} "
                f"alone has {_parameters(layer) / 1e6:,.0f} million); the limit keeps memory bounded."
            )
        for shape in _declared_input_shapes(layer):
            check_input_shape(shape)


def _layers(config):
    """Every dict in the config that names a class (layers, nested models, their parts),
    iteratively, refusing nesting deeper than MAX_CONFIG_DEPTH and text that is not valid Unicode."""
    stack = [(config, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise ModelLoadError("The model's configuration is nested too deeply to be read.")
        if isinstance(value, dict):
            if isinstance(value.get("class_name"), str) and isinstance(value.get("config"), dict):
                yield value
            for key, item in value.items():
                if isinstance(key, str) and not is_valid_text(key):
                    _refuse_text()
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and not is_valid_text(value):
            _refuse_text()


def _refuse_text() -> None:
    # A lone surrogate ("\ud800" in JSON) becomes a layer or class name that later breaks
    # every place that encodes text (the page, a CSV, a terminal).
    raise ModelLoadError("The model's configuration contains text that is not valid Unicode.")


def _count(value) -> int:
    """A declared size as a non-negative int (anything else counts as 0; Keras refuses it later)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(value, 0)


def _counts(value) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [_count(v) for v in value]
    return [_count(value)]


def _input_shape(layer: dict) -> list | None:
    """The shape the layer says it is built on: Keras 3 keeps it in build_config, and a
    functional model's nodes carry the shapes of their input tensors."""
    build = layer.get("build_config")
    if isinstance(build, dict) and isinstance(build.get("input_shape"), list):
        shape = build["input_shape"]
        return shape[0] if shape and isinstance(shape[0], list) else shape
    nodes = layer.get("inbound_nodes")
    if isinstance(nodes, list) and nodes and isinstance(nodes[0], dict):
        args = nodes[0].get("args")
        if isinstance(args, list) and args and isinstance(args[0], dict):
            shape = (args[0].get("config") or {}).get("shape") if isinstance(args[0].get("config"), dict) else None
            if isinstance(shape, list):
                return shape
    return None


def _last_dim(layer: dict, config: dict) -> int:
    """The input's channel (or feature) count; 1 when the file does not say, which makes
    the estimate a lower bound: a layer is only refused for what it surely costs."""
    shape = _input_shape(layer)
    if not shape:
        return 1
    axis = 1 if config.get("data_format") == "channels_first" and len(shape) > 2 else -1
    return max(_count(shape[axis]), 1)


def _parameters(layer: dict) -> int:
    kind, config = layer["class_name"], layer["config"]
    units = _count(config.get("units"))
    bias = 0 if config.get("use_bias") is False else 1
    if kind in ("Dense", "EinsumDense", "QuantizedDense"):
        return units * _last_dim(layer, config) + bias * units
    if kind in ("SimpleRNN", "LSTM", "GRU", "LSTMCell", "GRUCell", "SimpleRNNCell"):
        gates = {"LSTM": 4, "LSTMCell": 4, "GRU": 3, "GRUCell": 3}.get(kind, 1)
        return gates * units * (_last_dim(layer, config) + units + 2)
    if kind == "Embedding":
        return _count(config.get("input_dim")) * _count(config.get("output_dim"))
    kernel = math.prod(_counts(config.get("kernel_size", 1)))
    channels = _last_dim(layer, config)
    filters = _count(config.get("filters"))
    if kind.startswith("DepthwiseConv"):
        multiplier = max(_count(config.get("depth_multiplier", 1)), 1)
        return kernel * channels * multiplier + bias * channels * multiplier
    if kind.startswith("SeparableConv"):
        multiplier = max(_count(config.get("depth_multiplier", 1)), 1)
        return kernel * channels * multiplier + channels * multiplier * filters + bias * filters
    if kind.startswith("Conv"):
        groups = max(_count(config.get("groups", 1)), 1)
        return filters * kernel * max(channels // groups, 1) + bias * filters
    if kind.endswith("Normalization"):
        return 4 * channels
    if units:  # a layer we do not know by name that still declares units
        return units
    return 0


def _declared_input_shapes(layer: dict):
    config = layer["config"]
    for key in ("batch_shape", "batch_input_shape"):
        if isinstance(config.get(key), list):
            yield config[key]
    if layer["class_name"] == "InputLayer" and isinstance(config.get("input_shape"), list):
        yield [None, *config["input_shape"]]


def check_input_shape(shape) -> None:
    """Refuse an input shape (batch first) whose picture is over MAX_INPUT_PIXELS."""
    sizes = _counts(list(shape)[1:])  # the first dimension is the batch
    if len(sizes) >= 3:  # height, width and channels, in either order: the two largest are the picture
        height, width = sorted(sizes[:3])[1:][::-1]
        if height * width > MAX_INPUT_PIXELS:
            raise ModelLoadError(
                f"The model declares a {height} x {width} input; the limit is "
                f"{MAX_INPUT_PIXELS / 1e6:.1f} megapixels (2048 x 2048)."
            )
    if math.prod(max(s, 1) for s in sizes) > 4 * MAX_INPUT_PIXELS * 3:
        raise ModelLoadError("The model declares an input far larger than an image.")
