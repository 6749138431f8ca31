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

from ..intake.archives import MAX_ARCHIVE_BYTES, batch_sources
from ..intake.files import FileRefused, read_regular_file
from ..intake.images import EXPLAIN_MAX_SIDE, MAX_FILE_BYTES, ORIGINAL_SIZE, SUPPORTED_FORMATS, downscaled, load_image
from ..intake.sandbox import load_image_safely
from ..intake.text import counted, megabytes, valid_text

MAX_PARQUET_FILE_BYTES = 256 * 1024 * 1024  # one file of the Ray job's dataset, read whole (50,000 rows of 7 x 7 maps: ~15 MB)
MAX_MASKS_CSV_BYTES = 16 * 1024 * 1024  # a boxes CSV (a million short lines took minutes and GBs as boxes)
MAX_MASK_ROWS = 100_000  # lines of a boxes CSV (twice the most photos an audit reads)
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


# --- decoding: what the audit holds of a photo is bounded, whatever the file declares -------


def _photo_file(path) -> Image.Image:
    """A photo on this machine's disk, decoded here (like ``gradcam explain FOLDER``) one at a
    time and at once downscaled to EXPLAIN_MAX_SIDE: the audit holds 32 photos and their maps."""
    return downscaled(load_image(path), EXPLAIN_MAX_SIDE)


def _photo_upload(data: bytes) -> Image.Image:
    """Untrusted bytes: decoded in the sandbox, downscaled there (only that comes back), and
    counted against the session's decoded pixels."""
    return load_image_safely(data, max_side=EXPLAIN_MAX_SIDE)


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
    entries = [Entry(valid_text(rel), truth.get(rel), lambda p=p: _photo_file(p)) for rel, p in zip(relative, files)]
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
    entries = [Entry(name, truth.get(name), lambda s=s: _photo_upload(s.read()))
               for name, s in zip(shown, unpacked.sources)]
    if not entries:
        raise ValueError(" ".join(problems) or "The upload holds no images.")
    title = zips[0] if len(zips) == 1 and len(uploads) == 1 else counted(len(entries), "photo")
    return Source(entries, title, problems + folder_problems)


def _photo_list(items: list, model_labels) -> Source:
    entries = []
    for number, item in enumerate(items, 1):
        if isinstance(item, Image.Image):
            entries.append(Entry(f"photo {number}", None,
                                 lambda image=item: downscaled(image.convert("RGB"), EXPLAIN_MAX_SIDE)))
        elif isinstance(item, (str, os.PathLike)):
            entries.append(Entry(valid_text(str(item)), None, lambda p=item: _photo_file(p)))
        elif isinstance(item, (bytes, bytearray)):
            entries.append(Entry(f"photo {number}", None, lambda data=bytes(item): _photo_upload(data)))
        else:
            raise ValueError(f"Item {number} of the list is not a path, an image or bytes.")
    if not entries:
        raise ValueError("The list of photos is empty.")
    return Source(entries, counted(len(entries), "photo"), [])


def _local_file(path: Path, limit: int) -> bytes:
    """A .zip, a masks CSV, a mask PNG named by a path: the intake's guarded read (a FIFO or a
    device named photos.zip or masks.csv is refused before it is opened, not read for ever)."""
    try:
        return read_regular_file(path, limit)
    except FileRefused as refused:
        raise ValueError(f"{valid_text(str(path))} {refused.reason}.") from None


def read_source(source, model_labels=None, allow_uris: bool = False) -> Source:
    """The photos of ``source`` (see ``gradcam.audit``). ``model_labels`` name the
    class folders; raises ValueError (one sentence) when nothing can be read.
    ``allow_uris``: a Parquet dataset's photos may be object-store URIs (else local paths only)."""
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
        return read_parquet(path, model_labels, allow_uris)
    if path.is_dir():
        return _folder(path, model_labels)
    if path.suffix.lower() == ".zip":
        return _uploads([(path.name, _local_file(path, MAX_ARCHIVE_BYTES))], model_labels)
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
# What the columns hold (a file of other types is not the Ray job's output: refused by its schema).
_TEXT_COLUMNS = ("file", "target_label", "top1_label", "layer", "method", "error")
# Checked from the file's metadata before any column is read (a 3 KB file declared four
# 5000 x 5000 maps and inflated to 2.4 GB; a million rows took minutes and GBs):
MAX_PARQUET_ROWS = 50_000  # rows in one dataset (SpRAy and the report are sized for this)
MAX_MAP_VALUES = 16_000_000  # every map's cells together: 64 MB as float32 (326,000 maps of 7 x 7)
MAX_MAP_SIDE = 256  # a map is at a layer's resolution: 7 x 7 to 112 x 112 in real networks
MAX_TEXT_BYTES = 4096  # one path or label
MAX_TEXT_TOTAL = 64 * 1024 * 1024  # every text cell together, as decoded
# Photos named by a URI are read only where the person allows it (``allow_uris``), from these
# object stores, and never with options in the URI: pyarrow takes "?endpoint_override=HOST&scheme=http"
# from it, so a file could make the audit send (signed) requests to any host it names.
URI_SCHEMES = ("s3", "gs", "gcs")


def _photo_location(location: str, allow_uris: bool) -> tuple[str, str | None]:
    """(how to read it: "path" or "uri", or why it is not read). Paths are local paths."""
    if "://" not in location:
        return "path", None
    scheme = location.split("://", 1)[0].lower()
    if scheme == "file":
        return "path", None
    shown = valid_text(location)
    if not allow_uris:
        return "uri", (f"{shown} is a URI; photos named in a dataset are read from local paths only, unless "
                       "URIs are allowed (allow_uris=True, --allow-uris).")
    if scheme not in URI_SCHEMES:
        return "uri", f"{shown} is not a local path or an {', '.join(URI_SCHEMES)} URI, so it is not read."
    if any(mark in location for mark in "?#@") or ":" in location.split("://", 1)[1].split("/", 1)[0]:
        return "uri", (f"{shown} carries options, a port or credentials; a dataset's URIs name a bucket and a "
                       "key only, so it is not read.")
    return "uri", None


def _reader(location: str, allow_uris: bool) -> Callable[[], Image.Image]:
    """Re-read a dataset photo for the reliance test and the masks: a local path (the guarded
    read), or an object-store URI where allowed and plain (``_photo_location``)."""
    kind, refused = _photo_location(location, allow_uris)

    def read() -> Image.Image:
        if refused is not None:
            raise ValueError(refused)
        if kind == "path":
            path = location[len("file://"):] if location.lower().startswith("file://") else location
            return _photo_file(path)
        from pyarrow import fs

        try:
            filesystem, inner = fs.FileSystem.from_uri(location)
            with filesystem.open_input_file(inner) as handle:
                return _photo_upload(handle.read(MAX_FILE_BYTES + 1))
        except OSError as error:
            raise ValueError(f"{valid_text(location)} cannot be read again: {' '.join(str(error).split())}") \
                from None

    return read


def _maps(column) -> list[np.ndarray | str]:
    """The ``map`` column (lists of rows of numbers) as float32 arrays, through NumPy
    rather than Python lists: a million 7x7 maps as Python floats would take GBs.
    A sentence instead of a map that is missing, ragged, too large or not finite."""
    import pyarrow as pa

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    rows_per_map = column.value_lengths().to_numpy(zero_copy_only=False)
    inner = column.flatten()  # every map's rows, one after another
    cells_per_row = inner.value_lengths().to_numpy(zero_copy_only=False)
    values = inner.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    out: list[np.ndarray | str] = []
    row_at = cell_at = 0
    for k in range(len(column)):
        if not valid[k]:
            out.append("Its map in the dataset is not a two-dimensional grid.")
            continue
        rows = int(rows_per_map[k])
        widths = cells_per_row[row_at:row_at + rows]
        row_at += rows
        cells = int(widths.sum())
        grid = values[cell_at:cell_at + cells]
        cell_at += cells
        if not rows or not (widths == widths[0]).all() or widths[0] == 0:
            out.append("Its map in the dataset is not a two-dimensional grid.")
        elif rows > MAX_MAP_SIDE or widths[0] > MAX_MAP_SIDE:
            out.append(f"Its map in the dataset is {rows} x {int(widths[0])} cells, larger than a layer's "
                       f"resolution ({MAX_MAP_SIDE} x {MAX_MAP_SIDE} at most).")
        elif not np.isfinite(grid).all():
            out.append("Its map in the dataset holds NaN or infinite values.")
        else:
            out.append(grid.reshape(rows, int(widths[0])))
    return out


def _schema_problem(schema) -> str | None:
    """Why the columns' types are not the Ray job's (None when they are)."""
    import pyarrow.types as t

    def text(kind):
        kind = kind.value_type if t.is_dictionary(kind) else kind
        return t.is_string(kind) or t.is_large_string(kind) or t.is_null(kind)

    def number(kind):
        return t.is_integer(kind) or t.is_floating(kind) or t.is_null(kind)

    def grid(kind):
        return ((t.is_list(kind) or t.is_large_list(kind)) and (t.is_list(kind.value_type)
                or t.is_large_list(kind.value_type)) and number(kind.value_type.value_type))

    expected = {**{c: (text, "text") for c in _TEXT_COLUMNS}, "target": (number, "class indices"),
                "target_probability": (number, "numbers"), "map": (grid, "lists of rows of numbers")}
    for column, (check, what) in expected.items():
        kind = schema.field(column).type
        if not check(kind):
            return f"its column '{column}' holds {kind}, not {what}"
    return None


def _declared_map_values(metadata, schema) -> int:
    """Every map cell the file declares (the map column's leaf values, summed over row groups),
    read from the footer: nothing is decoded."""
    leaf = [i for i in range(metadata.num_columns) if metadata.schema.column(i).path.split(".")[0] == "map"]
    return sum(metadata.row_group(g).column(i).num_values for g in range(metadata.num_row_groups) for i in leaf)


def _text_bytes(array) -> tuple[int, int]:
    """(longest cell, all cells) of a text column in bytes, as decoded, counted without decoding
    it: a dictionary column repeats a value by index, so a 3 KB file can hold a 1 MB path a
    million times."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    if pa.types.is_dictionary(array.type):
        lengths = pc.binary_length(array.dictionary).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        used = array.indices.fill_null(0).to_numpy(zero_copy_only=False) if len(lengths) else np.zeros(0, np.int64)
        per_cell = lengths[used] if len(lengths) else np.zeros(0, np.int64)
    elif pa.types.is_null(array.type):
        return 0, 0
    else:
        per_cell = pc.binary_length(array).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return (int(per_cell.max()) if len(per_cell) else 0), int(per_cell.sum())


def _read_parquet_file(pq, file: Path, rows_before: int):
    """One file's table, checked from its footer before its columns are read; ValueError with
    the reason otherwise (a file that is no Parquet at all: None)."""
    name = valid_text(file.name)
    try:
        data = read_regular_file(file, MAX_PARQUET_FILE_BYTES)
        # Text columns stay dictionary-encoded as read: their decoded size is counted before it is made.
        parquet = pq.ParquetFile(io.BytesIO(data), read_dictionary=list(_TEXT_COLUMNS))
        metadata, schema = parquet.metadata, parquet.schema_arrow
    except FileRefused as refused:
        raise ValueError(f"{name} {refused.reason}.") from None
    except Exception:  # a file an interrupted run left half-written
        return None
    missing = [c for c in PARQUET_COLUMNS if c not in schema.names]
    if missing:
        raise ValueError(f"{name} is not a 'gradcam explain --ray' output: it lacks the column"
                         f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}.")
    wrong = _schema_problem(schema)
    if wrong:
        raise ValueError(f"{name} is not a 'gradcam explain --ray' output: {wrong}.")
    if rows_before + metadata.num_rows > MAX_PARQUET_ROWS:
        raise ValueError(f"{name} declares {metadata.num_rows:,} rows"
                         + (f" (after {rows_before:,} in the dataset's other files)" if rows_before else "")
                         + f"; an audit reads at most {MAX_PARQUET_ROWS:,} rows. Audit a part of the dataset.")
    values = _declared_map_values(metadata, schema)
    if values > MAX_MAP_VALUES:
        raise ValueError(f"{name} declares {values:,} map cells in {metadata.num_rows:,} rows; an audit holds at "
                         f"most {MAX_MAP_VALUES:,} (maps are at a layer's resolution, 7 x 7 for EfficientNet-Lite0), "
                         "so the file is not read.")
    try:
        table = parquet.read(columns=list(PARQUET_COLUMNS))
    except Exception:
        return None
    total = 0
    for column in _TEXT_COLUMNS:
        longest, size = _text_bytes(table.column(column))
        total += size
        if longest > MAX_TEXT_BYTES:
            raise ValueError(f"{name} holds a '{column}' value of {longest:,} bytes; a path or a label is at most "
                             f"{MAX_TEXT_BYTES:,}, so the file is not read.")
    if total > MAX_TEXT_TOTAL:
        raise ValueError(f"{name} holds {megabytes(total)} of paths and labels once unpacked, more than "
                         f"{megabytes(MAX_TEXT_TOTAL)}, so the file is not read.")
    return table


def _finite_or_none(value):
    return None if value is None or not np.isfinite(value) else float(value)


def read_parquet(path: Path, model_labels=None, allow_uris: bool = False) -> Source:
    """The rows of a ``gradcam explain --ray`` dataset: maps reused as they are. Each file is
    checked from its footer before it is read (its columns' types, rows, map cells); photo
    paths in it are local paths (URIs only with ``allow_uris``; see ``_photo_location``)."""
    pq = _pyarrow()
    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    entries: list[Entry] = []
    problems: list[str] = []
    uris = 0
    for file in files:
        table = _read_parquet_file(pq, file, len(entries))
        if table is None:
            problems.append(f"{valid_text(file.name)} is not a readable Parquet file; its rows are left out.")
            continue
        scalars = table.select([c for c in PARQUET_COLUMNS if c != "map"]).to_pylist()
        for row, grid in zip(scalars, _maps(table.column("map"))):
            location = str(row["file"])
            error = row["error"] or ""
            if not error and isinstance(grid, str):
                error = grid
            if "://" in location and not location.lower().startswith("file://"):
                uris += 1
            entries.append(Entry(valid_text(location), None, _reader(location, allow_uris),
                                 map=None if error or isinstance(grid, str) else grid,
                                 target=None if row["target"] is None else int(row["target"]),
                                 label=row["target_label"], probability=_finite_or_none(row["target_probability"]),
                                 predicted=row["top1_label"], layer=row["layer"], method=row["method"],
                                 error=str(error)))
    if not entries:
        raise ValueError(" ".join(problems) or f"{path} holds no rows.")
    if uris and not allow_uris:
        problems.append(f"{uris:,} photo{'s are' if uris != 1 else ' is'} named by a URI and not read again (the "
                        "reliance test and masks need the photos): photos are read from local paths only, unless "
                        "URIs are allowed (allow_uris=True, --allow-uris).")
    # True labels from the class folders the photos lie in, relative to their common folder.
    locations = [e.path for e in entries]
    local = [p for p in locations if "://" not in p]
    try:  # local paths (absolute or relative, not both) against their common folder
        common = os.path.commonpath(local) if len(local) > 1 else os.path.dirname(local[0]) if local else ""
    except ValueError:
        common = ""
    relative = [os.path.relpath(p, common or ".").replace(os.sep, "/") if "://" not in p
                else p.split("://", 1)[1].split("/", 1)[-1] for p in locations]
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
    raw = _local_file(data, MAX_FILE_BYTES) if isinstance(data, Path) else data
    image = load_image_safely(raw, max_side=EXPLAIN_MAX_SIDE)
    if max(image.info.get(ORIGINAL_SIZE, image.size)) > MAX_MASK_SIDE:
        raise ValueError(f"A mask is larger than {MAX_MASK_SIDE} pixels on a side.")
    return np.asarray(image.convert("L")) > 0


def _csv_rows(text: str):
    """(line number, fields) of a boxes CSV; a line the csv module refuses (a field over its
    128 KB limit, a NUL) is one sentence, and so is a file of more than MAX_MASK_ROWS lines."""
    reader = csv.reader(io.StringIO(text))
    number = 0
    while True:
        number += 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            longest = csv.field_size_limit()
            raise ValueError(f"Line {number} of the boxes CSV cannot be read: a field is longer than "
                             f"{longest // 1024} KB or holds a NUL character; a box is path,x0,y0,x1,y1.") from None
        if number > MAX_MASK_ROWS:
            raise ValueError(f"The boxes CSV has more than {MAX_MASK_ROWS:,} lines; an audit takes at most "
                             f"{MAX_MASK_ROWS:,} boxes.")
        yield number, row


def _boxes_csv(text: str) -> dict[str, Mask]:
    boxes: dict[str, list] = {}
    for number, row in _csv_rows(text):
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
        return _boxes_csv(_local_file(path, MAX_MASKS_CSV_BYTES).decode("utf-8", "replace")), []
    if path.suffix.lower() == ".zip":
        return _mask_uploads([(path.name, _local_file(path, MAX_ARCHIVE_BYTES))])
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


def photo_size(image: Image.Image) -> tuple[int, int]:
    """The photo's own (width, height), before the audit's downscale (``EXPLAIN_MAX_SIDE``)."""
    return tuple(image.info.get(ORIGINAL_SIZE, image.size))


def mask_at(mask, size: tuple[int, int], original: tuple[int, int] | None = None) -> np.ndarray:
    """A mask as a bool array at the photo's (width, height). Boxes are in the pixels of the
    photo's ``original`` size (default: ``size``), which the audit decodes downscaled."""
    width, height = size
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L")) > 0
    if isinstance(mask, tuple):
        boxes = mask if mask and isinstance(mask[0], tuple) else (mask,)
        inside = np.zeros((height, width), bool)
        sx, sy = (1.0, 1.0) if original is None else (width / original[0], height / original[1])
        for x0, y0, x1, y1 in ((b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy) for b in boxes):
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
