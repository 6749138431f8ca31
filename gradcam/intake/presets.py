"""KerasHub preset folders read safely: a folder, or a zip of one (an upload).

A preset folder is what ``classifier.save_to_preset(folder)`` writes: ``config.json``
(the backbone), ``model.weights.h5``, ``task.json`` and ``task.weights.h5`` (the
classifier's head), ``preprocessor.json`` (its image converter), ``metadata.json``.
KerasHub reads a local folder as it is (no download). Here a zip of one is checked like
a ``.keras`` archive (entry count and declared sizes before anything is unpacked), its
members are unpacked into a private temporary folder, and KerasHub rebuilds the model
from it in safe mode. The sandbox's model worker runs exactly this for uploads.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

from ..errors import ModelLoadError
from . import model_budget
from .model_bytes import HUB_MISSING, hub_installed, uses_hub, whole_model
from .text import valid_text

PRESET_FILES = ("config.json", "model.weights.h5")  # what every preset folder holds
MAX_PRESET_FILES = 50


def is_preset_folder(path) -> bool:
    """True for a path to a folder (a preset, or else a folder given for a file: refused by name)."""
    try:
        return isinstance(path, (str, os.PathLike)) and Path(path).is_dir()
    except (OSError, ValueError):  # a name with a NUL byte, a path too long
        return False


def not_a_preset(folder: Path, missing: str) -> str:
    return f"{valid_text(folder.name)} is not a model file (a folder, and not a KerasHub preset: it has no {missing})."


def preset_folder_bytes(path) -> bytes:
    """A preset folder as the bytes of a zip (what the sandbox reads, like an upload)."""
    folder = Path(path)
    files = [f for f in sorted(folder.iterdir()) if f.is_file() and not f.name.startswith(".")]
    missing = [name for name in PRESET_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelLoadError(not_a_preset(folder, missing[0]))
    if len(files) > MAX_PRESET_FILES:
        raise ModelLoadError(f"The preset folder has {len(files)} files; a KerasHub preset has a handful.")
    total = sum(f.stat().st_size for f in files)
    if total > model_budget.MAX_MODEL_BYTES:
        raise ModelLoadError("The preset folder is larger than 1 GB.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for file in files:
            archive.write(file, file.name)
    return buffer.getvalue()


def is_preset_archive(data: bytes) -> bool:
    """True for a zip of a preset folder (rather than a ``.keras`` file, which is a zip too)."""
    if data[:4] != b"PK\x03\x04" or _declared_entries(data) > MAX_PRESET_FILES * 4:
        return False  # a zip of thousands of entries is no preset: the .keras checks refuse it, listing nothing
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False
    flat = {name.split("/")[-1] for name in names}
    return "model.weights.h5" in flat and ("task.json" in flat or "preprocessor.json" in flat)


def needs_hub(data: bytes) -> bool:
    """True when a model file's bytes need KerasHub: a zipped preset folder, or a ``.keras``
    or ``.h5`` file whose config names KerasHub classes. Read with the load's own bounded
    checks (``check_archive``: entry count and declared sizes before the config is read);
    a file that fails them is no KerasHub file here, and its load says what is wrong."""
    if is_preset_archive(data):
        return True
    try:
        if data[:4] == b"PK\x03\x04":
            return uses_hub(model_budget.check_archive(data))
        if data[:8] == b"\x89HDF\r\n\x1a\n":
            import h5py

            with h5py.File(io.BytesIO(data), "r") as h5:
                config = h5.attrs.get("model_config")
                return config is not None and uses_hub(config)
    except (ModelLoadError, MemoryError):
        raise
    except Exception:
        return False
    return False


def preset_from_archive(data: bytes):
    """The classifier in a zip of a preset folder, loaded in this process (the sandbox's
    model worker calls this; so does a trusted path). Declared sizes are checked before
    anything is unpacked; members sit at the top or in one folder; nothing else is read."""
    if not hub_installed():
        raise ModelLoadError(HUB_MISSING)
    root = _preset_root(data)
    # The entry count and declared sizes, before anything is unpacked; the backbone's declared sizes.
    model_budget.check_config_json(model_budget.check_archive(data, root))
    archive = zipfile.ZipFile(io.BytesIO(data))
    with tempfile.TemporaryDirectory(prefix="gradcam-preset-") as folder:
        for info in archive.infolist():
            if info.is_dir():
                continue
            if not info.filename.startswith(root) or "/" in info.filename[len(root):]:
                continue  # __MACOSX/, other folders, deeper folders: not part of a preset
            name = info.filename[len(root):]
            if not name or name.startswith(".") or "\\" in name:
                continue
            with archive.open(info) as member, open(os.path.join(folder, name), "wb") as out:
                out.write(member.read(model_budget.MAX_MODEL_BYTES + 1))
        return preset_from_folder(folder)


def _declared_entries(data: bytes) -> int:
    """The entry count the zip's end record declares (0 when it has none), read before any listing."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65535))
    if at < 0 or at + 22 > len(data):
        return 0
    return int.from_bytes(data[at + 10:at + 12], "little")


def _preset_root(data: bytes) -> str:
    """Where the preset's files sit in the zip: "" (the top) or "name/" (one folder zipped)."""
    try:
        names = [n for n in zipfile.ZipFile(io.BytesIO(data)).namelist()[: MAX_PRESET_FILES * 4]]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise ModelLoadError("The model file is damaged (its archive cannot be read).") from None
    if "config.json" in names:
        return ""
    roots = {n.rsplit("/", 1)[0] + "/" for n in names if n.endswith("/config.json") and n.count("/") == 1
             and not n.startswith("__MACOSX")}
    if len(roots) != 1:
        raise ModelLoadError("The zip is not a KerasHub preset folder (config.json and model.weights.h5 at its top "
                             "or in one folder).")
    return roots.pop()


def preset_from_folder(folder):
    """A KerasHub ImageClassifier from a local preset folder (never a download: the path
    must exist, and KerasHub reads a local folder as it is)."""
    if not hub_installed():
        raise ModelLoadError(HUB_MISSING)
    import keras_hub

    path = Path(folder)
    for name in PRESET_FILES:
        if not (path / name).is_file():
            raise ModelLoadError(not_a_preset(path, name))
    return whole_model(lambda: keras_hub.models.ImageClassifier.from_preset(str(path.resolve())), '"keras_hub')
