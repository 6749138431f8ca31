"""Where an audit's photos come from: a folder (ImageFolder layout or flat), a list
of paths, images or uploads, a .zip of either, or the Parquet dataset that
``gradcam explain --ray`` writes; and the optional object masks (PNGs mirroring the
source, or a CSV of boxes).

Every source becomes a list of ``Entry``: a path to show, the true label when the
layout gives one, and how to decode the photo (late, so a 1,000-photo source is not
held in memory at once). Untrusted bytes (uploads, zip members) are decoded in the
sandbox; files on this machine's disk are read like ``gradcam explain FOLDER`` does.
A photo that cannot be read fails only when it is decoded, as its own row.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..intake.archives import batch_sources
from ..intake.images import SUPPORTED_FORMATS, load_image
from ..intake.sandbox import load_image_safely
from ..intake.text import valid_text

MAX_MASK_SIDE = 4096  # a mask larger than this on a side is refused (it would be a decompression bomb)


@dataclass(frozen=True)
class Entry:
    """One photo of the source."""

    path: str  # shown, and matched to masks and labels (relative inside a folder or zip)
    true_label: str | None
    read: Callable[[], Image.Image] | None = field(repr=False, compare=False)  # None: cannot be re-read
    # From a Parquet dataset: what the Ray job already computed.
    map: np.ndarray | None = field(default=None, repr=False, compare=False)
    target: int | None = None
    label: str | None = None
    probability: float | None = None
    predicted: str | None = None
    layer: str | None = None
    method: str | None = None
    error: str = ""


@dataclass(frozen=True)
class Source:
    entries: list[Entry]
    name: str  # what to call the source in a report
    problems: list[str]  # sentences about the source as a whole
    precomputed: bool = False  # maps came with it (Parquet)


def _is_photo_name(name: str) -> bool:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return not base.startswith(".") and "." in base and base.rsplit(".", 1)[-1].lower() in SUPPORTED_FORMATS


def _loose(label: str) -> str:
    return " ".join(label.lower().replace("_", " ").replace("-", " ").split())


def label_matcher(model_labels) -> Callable[[str], str | None]:
    """A folder name -> the model's label it names (exactly, or ignoring case, spaces,
    '_' and '-'), or None."""
    labels = list(model_labels or [])
    exact = set(labels)
    loose = {}
    for label in labels:
        loose.setdefault(_loose(label), label)

    def match(name: str) -> str | None:
        return name if name in exact else loose.get(_loose(name))

    return match


def _class_folders(paths: list[str], model_labels) -> tuple[dict[str, str], list[str]]:
    """({path: true label}, problems) when the paths are laid out one folder per class
    (ImageFolder); ({}, ...) for a flat layout. ``paths`` are relative, with '/'."""
    parts = [p.split("/") for p in paths]
    if not parts or any(len(p) != 2 for p in parts):
        return {}, []
    names = sorted({p[0] for p in parts})
    if model_labels is None:  # no model to match against (a Parquet audit without one): trust the folders
        return {path: p[0] for path, p in zip(paths, parts)}, []
    match = label_matcher(model_labels)
    matched = {name: match(name) for name in names}
    unknown = [name for name, label in matched.items() if label is None]
    if len(unknown) == len(names):
        shown = ", ".join(repr(n) for n in names[:5]) + (" ..." if len(names) > 5 else "")
        return {}, [f"The sub-folders ({shown}) are not the model's class names, so the photos have no true "
                    "labels and each photo's predicted class is explained."]
    problems = []
    if unknown:
        shown = ", ".join(repr(n) for n in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        problems.append(f"{len(unknown)} sub-folder{'s are' if len(unknown) != 1 else ' is'} not one of the model's "
                        f"classes ({shown}); their photos have no true label.")
    return {path: matched[p[0]] for path, p in zip(paths, parts) if matched[p[0]] is not None}, problems


def _strip_common_folder(paths: list[str]) -> list[str]:
    """Zips often hold one top folder around the class folders ("data/disc/001.png")."""
    while paths and all("/" in p for p in paths):
        top = {p.split("/", 1)[0] for p in paths}
        if len(top) != 1 or all(p.count("/") <= 1 for p in paths):
            break
        paths = [p.split("/", 1)[1] for p in paths]
    return paths


# --- folders, lists, zips ------------------------------------------------------------


def _folder(folder: Path, model_labels) -> Source:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and _is_photo_name(p.name)
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise ValueError(f"{folder} holds no images ({', '.join(SUPPORTED_FORMATS)}).")
    relative = [p.relative_to(folder).as_posix() for p in files]
    truth, problems = _class_folders(relative, model_labels)
    entries = [Entry(valid_text(rel), truth.get(rel), lambda p=p: load_image(p)) for rel, p in zip(relative, files)]
    return Source(entries, valid_text(folder.name or str(folder)), problems)


def _uploads(uploads: list[tuple[str, bytes]], model_labels) -> Source:
    """(name, bytes) uploads; archives among them go through the zip checks, and every
    photo is decoded in the sandbox."""
    unpacked = batch_sources(uploads)
    problems = list(unpacked.problems)
    if unpacked.skipped:
        problems.append(unpacked.skipped_text()[:1].upper() + unpacked.skipped_text()[1:] + ".")
    zips = [valid_text(name) for name, _ in uploads if name.lower().endswith(".zip")]
    names = []
    for source in unpacked.sources:
        name = source.name
        for prefix in zips:  # "data.zip/disc/001.png" -> "disc/001.png"
            if name.startswith(prefix + "/"):
                name = name[len(prefix) + 1:]
                break
        names.append(name)
    shown = _strip_common_folder(names)
    truth, folder_problems = _class_folders(shown, model_labels)
    entries = [Entry(name, truth.get(name), lambda s=s: load_image_safely(s.read()))
               for name, s in zip(shown, unpacked.sources)]
    if not entries:
        raise ValueError(" ".join(problems) or "The upload holds no images.")
    title = zips[0] if len(zips) == 1 and len(uploads) == 1 else f"{len(entries)} photos"
    return Source(entries, title, problems + folder_problems)


def _photo_list(items: list, model_labels) -> Source:
    entries = []
    for number, item in enumerate(items, 1):
        if isinstance(item, Image.Image):
            entries.append(Entry(f"photo {number}", None, lambda image=item: image.convert("RGB")))
        elif isinstance(item, (str, os.PathLike)):
            entries.append(Entry(valid_text(str(item)), None, lambda p=item: load_image(p)))
        elif isinstance(item, (bytes, bytearray)):
            entries.append(Entry(f"photo {number}", None, lambda data=bytes(item): load_image_safely(data)))
        else:
            raise ValueError(f"Item {number} of the list is not a path, an image or bytes.")
    if not entries:
        raise ValueError("The list of photos is empty.")
    return Source(entries, f"{len(entries)} photos", [])


def read_source(source, model_labels=None) -> Source:
    """The photos of ``source`` (see ``gradcam.audit``). ``model_labels`` name the
    class folders; raises ValueError (one sentence) when nothing can be read."""
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], (bytes, bytearray)):
        return _uploads([(str(source[0]), bytes(source[1]))], model_labels)
    if isinstance(source, (list, tuple)):
        items = list(source)
        if items and all(isinstance(i, tuple) and len(i) == 2 and isinstance(i[1], (bytes, bytearray))
                         for i in items):
            return _uploads([(str(n), bytes(d)) for n, d in items], model_labels)
        return _photo_list(items, model_labels)
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError("An audit's source is a folder, a .zip, a Parquet dataset or a list of photos.")
    path = Path(source).expanduser()
    if not path.exists():
        raise ValueError(f"{source} does not exist.")
    if is_parquet(path):
        return read_parquet(path, model_labels)
    if path.is_dir():
        return _folder(path, model_labels)
    if path.suffix.lower() == ".zip":
        return _uploads([(path.name, path.read_bytes())], model_labels)
    if _is_photo_name(path.name):
        return _photo_list([path], model_labels)
    raise ValueError(f"{source} is not a folder, a .zip, a Parquet dataset or an image.")


# --- the Ray job's Parquet -----------------------------------------------------------


def is_parquet(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == ".parquet"
    return path.is_dir() and any(path.rglob("*.parquet"))


def _pyarrow():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("Reading a Parquet dataset needs pyarrow: pip install pyarrow.") from None
    return pq


PARQUET_COLUMNS = ("file", "target", "target_label", "target_probability", "top1_label", "layer", "method", "error",
                   "map")


def _reader(location: str) -> Callable[[], Image.Image]:
    """Re-read a dataset photo (local path or a URI pyarrow opens) for the reliance test."""
    def read() -> Image.Image:
        if "://" in location:
            from pyarrow import fs

            try:
                filesystem, inner = fs.FileSystem.from_uri(location)
                with filesystem.open_input_file(inner) as handle:
                    return load_image_safely(handle.read())
            except OSError as error:
                raise ValueError(f"{location} cannot be read again: {' '.join(str(error).split())}") from None
        return load_image(location)

    return read


def _maps(column) -> list[np.ndarray | None]:
    """The ``map`` column (lists of rows of floats) as float32 arrays, through NumPy
    rather than Python lists: a million 7x7 maps as Python floats would take GBs.
    None for a missing or ragged map."""
    import pyarrow as pa

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    rows_per_map = column.value_lengths().to_numpy(zero_copy_only=False)
    inner = column.flatten()  # every map's rows, one after another
    cells_per_row = inner.value_lengths().to_numpy(zero_copy_only=False)
    values = inner.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    out: list[np.ndarray | None] = []
    row_at = cell_at = 0
    for k in range(len(column)):
        if not valid[k]:
            out.append(None)
            continue
        rows = int(rows_per_map[k])
        widths = cells_per_row[row_at:row_at + rows]
        row_at += rows
        cells = int(widths.sum())
        if rows and (widths == widths[0]).all():
            out.append(values[cell_at:cell_at + cells].reshape(rows, int(widths[0])))
        else:
            out.append(None)
        cell_at += cells
    return out


def read_parquet(path: Path, model_labels=None) -> Source:
    """The rows of a ``gradcam explain --ray`` dataset: maps reused as they are."""
    pq = _pyarrow()
    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    entries: list[Entry] = []
    problems: list[str] = []
    for file in files:
        try:
            table = pq.read_table(file)
        except Exception:  # a file an interrupted run left half-written
            problems.append(f"{file.name} is not a readable Parquet file; its rows are left out.")
            continue
        missing = [c for c in PARQUET_COLUMNS if c not in table.column_names]
        if missing:
            raise ValueError(f"{file.name} is not a 'gradcam explain --ray' output: it lacks the column"
                             f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}.")
        scalars = table.select([c for c in PARQUET_COLUMNS if c != "map"]).to_pylist()
        for row, grid in zip(scalars, _maps(table.column("map"))):
            location = str(row["file"])
            error = row["error"] or ""
            if not error and grid is None:
                error = "Its map in the dataset is not a two-dimensional grid."
            entries.append(Entry(valid_text(location), None, _reader(location), map=None if error else grid,
                                 target=None if row["target"] is None else int(row["target"]),
                                 label=row["target_label"], probability=row["target_probability"],
                                 predicted=row["top1_label"], layer=row["layer"], method=row["method"],
                                 error=str(error)))
    if not entries:
        raise ValueError(" ".join(problems) or f"{path} holds no rows.")
    # True labels from the class folders the photos lie in, relative to their common folder.
    locations = [e.path for e in entries]
    common = os.path.commonpath(locations) if len(locations) > 1 else os.path.dirname(locations[0])
    relative = [os.path.relpath(p, common).replace(os.sep, "/") if "://" not in p else p[len(common):].lstrip("/")
                for p in locations]
    truth, folder_problems = _class_folders(relative, model_labels)
    entries = [Entry(e.path, truth.get(rel), e.read, e.map, e.target, e.label, e.probability, e.predicted, e.layer,
                     e.method, e.error) for e, rel in zip(entries, relative)]
    return Source(entries, valid_text(path.name), problems + folder_problems, precomputed=True)


def relative_key(path: str) -> str:
    """How photos and masks are matched: the path without its extension, '/' separated."""
    path = path.replace("\\", "/")
    stem = path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
    return stem


# --- masks ---------------------------------------------------------------------------


Mask = np.ndarray | tuple  # a bool array at any size (resized to the photo), or a box (x0, y0, x1, y1) in pixels


def _mask_image(data: bytes | Path) -> np.ndarray:
    """A mask PNG: non-zero = object. Decoded in the sandbox (masks are uploads too)."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    image = load_image_safely(raw)
    if max(image.size) > MAX_MASK_SIDE:
        raise ValueError(f"A mask is larger than {MAX_MASK_SIDE} pixels on a side.")
    return np.asarray(image.convert("L")) > 0


def _boxes_csv(text: str) -> dict[str, Mask]:
    boxes: dict[str, list] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not "".join(row).strip():
            continue
        if number == 1 and row[0].strip().lower() in ("path", "file"):
            continue  # a header
        if len(row) != 5:
            raise ValueError(f"Line {number} of the boxes CSV has {len(row)} fields; a box is path,x0,y0,x1,y1.")
        try:
            box = tuple(float(v) for v in row[1:])
        except ValueError:
            raise ValueError(f"Line {number} of the boxes CSV holds a coordinate that is not a number.") from None
        if not all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f"Line {number} of the boxes CSV is not a box with x1 > x0 and y1 > y0.")
        boxes.setdefault(relative_key(valid_text(row[0].strip())), []).append(box)  # several boxes: their union
    return {key: tuple(found) for key, found in boxes.items()}


def read_masks(masks) -> tuple[dict[str, Mask | Callable[[], Mask]], list[str]]:
    """({relative key: mask, or a function that reads it}, problems). Keys are
    ``relative_key`` of the photo's path; boxes are a tuple of (x0, y0, x1, y1)."""
    if masks is None:
        return {}, []
    if isinstance(masks, dict):
        return {relative_key(str(k)): v for k, v in masks.items()}, []
    if isinstance(masks, tuple) and len(masks) == 2 and isinstance(masks[1], (bytes, bytearray)):
        name, data = str(masks[0]), bytes(masks[1])
        if name.lower().endswith(".csv"):
            return _boxes_csv(data.decode("utf-8", "replace")), []
        return _mask_uploads([(name, data)])
    path = Path(masks).expanduser()
    if not path.exists():
        raise ValueError(f"{masks} does not exist.")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".png")
        if not files:
            raise ValueError(f"{masks} holds no PNG masks.")
        return {relative_key(p.relative_to(path).as_posix()): (lambda p=p: _mask_image(p)) for p in files}, []
    if path.suffix.lower() == ".csv":
        return _boxes_csv(path.read_text("utf-8", "replace")), []
    if path.suffix.lower() == ".zip":
        return _mask_uploads([(path.name, path.read_bytes())])
    raise ValueError(f"{masks} is not a folder of PNG masks, a .zip of them or a CSV of boxes.")


def _mask_uploads(uploads) -> tuple[dict, list[str]]:
    unpacked = batch_sources(uploads)
    zips = [valid_text(name) for name, _ in uploads]
    names = []
    for source in unpacked.sources:
        name = source.name
        for prefix in zips:
            if name.startswith(prefix + "/"):
                name = name[len(prefix) + 1:]
        names.append(name)
    shown = _strip_common_folder(names)
    found = {relative_key(name): (lambda s=s: _mask_image(s.read())) for name, s in zip(shown, unpacked.sources)}
    return found, list(unpacked.problems)


def mask_at(mask, size: tuple[int, int]) -> np.ndarray:
    """A mask as a bool array at the photo's (width, height)."""
    width, height = size
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L")) > 0
    if isinstance(mask, tuple):
        boxes = mask if mask and isinstance(mask[0], tuple) else (mask,)
        inside = np.zeros((height, width), bool)
        for x0, y0, x1, y1 in boxes:
            c0, c1 = int(np.clip(np.floor(x0), 0, width)), int(np.clip(np.ceil(x1), 0, width))
            r0, r1 = int(np.clip(np.floor(y0), 0, height)), int(np.clip(np.ceil(y1), 0, height))
            inside[r0:r1, c0:c1] = True
        return inside
    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 2:
        raise ValueError("A mask is a two-dimensional array.")
    if mask.shape != (height, width):
        mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((width, height), Image.NEAREST)) > 0
    return mask
