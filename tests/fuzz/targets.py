"""The fuzz targets, their seeds, and the rule every case must keep."""

from __future__ import annotations

import csv
import io
import resource
import signal
import threading
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from gradcam.errors import InvalidImageError, ModelLoadError

CORPUS = Path(__file__).resolve().parent / "corpus"
SLOW_SECONDS = 5.0  # a case slower than this is a finding (budgets aim at ~1 s)
HANG_SECONDS = 30.0  # the case is interrupted: a hang
MEMORY_MB = 1024  # a case that raises the process' peak memory by more is a finding


class Finding(AssertionError):
    """A case broke the target's rule."""


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    allowed: tuple[type[BaseException], ...]  # the documented exception(s)
    seeds: Callable[[], list[bytes]]


# --- the targets ---------------------------------------------------------------------


def run_load_image(data: bytes) -> None:
    import gradcam

    image = gradcam.load_image(data)
    assert image.mode == "RGB" and image.width * image.height > 0, (image.mode, image.size)


def run_read_state_dict(data: bytes) -> None:
    from gradcam.zoo.torch_legacy import read_state_dict

    for name, values in read_state_dict(data).items():
        assert isinstance(name, str) and isinstance(values, np.ndarray), name


def run_batch_sources(data: bytes) -> None:
    """Listing must never raise (a refused archive is a sentence in ``problems``); reading
    a listed member may raise InvalidImageError only."""
    from gradcam.intake import archives

    unpacked = archives.batch_sources([("upload.zip", data), ("after.jpg", b"\xff\xd8\xff x")])  # a JPEG's signature: listed
    assert unpacked.sources[-1].name == "after.jpg", "the rest of the upload was lost"
    for problem in unpacked.problems:
        assert problem.endswith(".") and "\n" not in problem, problem
    for source in unpacked.sources[:-1]:
        source.name.encode("utf-8")
        try:
            content = source.read()
            assert len(content) <= source.size, (len(content), source.size)
        except InvalidImageError:
            pass


def run_predictions_csv(data: bytes) -> None:
    """Fuzz text as file names, labels and errors: the CSV must be valid UTF-8, parse
    back to one row per record, and no line a spreadsheet sees may start a formula."""
    from gradcam.intake import archives
    from gradcam.report import batch

    text = data.decode("utf-8", "surrogateescape")  # lone surrogates included
    parts = (text.split("\x1f") + ["", "", ""])[:3]
    records = [
        {"file": parts[0], "sha256": "0" * 64, "error": None, "label": parts[1], "probability": 0.5,
         "top5": [{"index": k, "label": parts[1] if k == 0 else parts[2], "probability": 0.1, "logit": 0.0}
                  for k in range(5)],
         "layer": "top", "method": "gradcam"},
        {"file": parts[2], "sha256": "1" * 64, "error": parts[1] or "failed."},
    ]
    out = batch.predictions_csv(records)
    out.encode("utf-8")
    rows = list(csv.reader(io.StringIO(out, newline="")))
    assert len(rows) == 3 and all(len(row) == len(batch.CSV_COLUMNS) for row in rows), rows
    shown = [rows[1][0], rows[1][2], rows[2][0], rows[2][-1]]
    expected = [parts[0], parts[1], parts[2], parts[1] or "failed."]
    for cell, original in zip(shown, expected):
        assert cell.replace("'", "") == archives.valid_text(original).replace("'", ""), (cell, original)
        for line in cell.replace("\r", "\n").split("\n"):
            assert line[:1] not in ("=", "+", "-", "@", "\t"), cell
    for line in out.replace("\r", "\n").split("\n"):  # a reader that ignores quotes
        for cell in line.split(","):
            assert cell.lstrip('"')[:1] not in ("=", "+", "-", "@"), line


def run_masks_csv(data: bytes) -> None:
    """A boxes CSV for the audit (issue 30): boxes, or one ValueError sentence."""
    from gradcam.audit.sources import read_masks

    boxes, problems = read_masks(("masks.csv", data))
    for key, box in boxes.items():
        assert isinstance(key, str) and all(len(b) == 4 and all(np.isfinite(b)) for b in box), (key, box)


def run_audit_parquet(data: bytes) -> None:
    """A Parquet file given to the audit (issue 30): its rows, or one ValueError sentence; the
    photos it names are never read here (nothing is opened, no host is contacted)."""
    import tempfile

    from gradcam.audit.sources import read_source

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "job.parquet"
        path.write_bytes(data)
        source = read_source(path)
    for entry in source.entries:
        assert entry.map is None or (entry.map.ndim == 2 and np.isfinite(entry.map).all()), entry.path


def run_what_if_region(data: bytes) -> None:
    """A region as JSON (boxes, lists of boxes, masks, nested lists): a mask, or one sentence."""
    import json

    from gradcam.engine.what_if import region_mask

    try:
        region = json.loads(data.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return  # not JSON: the harness's own parse, not the target
    mask = region_mask(region, 12, 20)
    assert mask.shape == (12, 20) and np.isfinite(mask).all() and mask.min() >= 0 and mask.max() <= 1


# --- seeds, built here -------------------------------------------------------------------


def _encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _picture(size=(24, 16), mode="RGB") -> Image.Image:
    pixels = np.random.default_rng(3).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


@lru_cache(maxsize=None)
def image_seeds() -> tuple[bytes, ...]:
    from corpus import icon_around, many_scans_jpeg, rle8_bmp, tiff

    picture = _picture()
    frames = [_picture(), _picture().rotate(90)]
    return (
        _encode(picture, "PNG"),
        _encode(picture, "PNG", optimize=True),
        _encode(_picture(mode="RGBA"), "PNG"),
        _encode(_picture(mode="P"), "PNG", transparency=3),
        _encode(Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000), "PNG"),
        _encode(frames[0], "PNG", save_all=True, append_images=frames[1:]),
        _encode(picture, "JPEG", quality=80),
        _encode(picture, "JPEG", quality=80, progressive=True),
        _encode(_picture(mode="CMYK"), "JPEG"),
        many_scans_jpeg(3, (16, 16)),
        _encode(picture, "WEBP", quality=80),
        _encode(picture, "WEBP", lossless=True),
        _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:]),
        _encode(picture, "GIF"),
        _encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        _encode(picture, "BMP"),
        rle8_bmp(16, 8),
        _encode(picture, "TIFF"),
        _encode(picture, "TIFF", compression="tiff_deflate"),
        _encode(Image.fromarray(np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)), "TIFF"),
        tiff(8, 8, bytes(8), strips=8),
        _encode(_picture((32, 32), "RGBA"), "ICO", sizes=[(32, 32)]),
        icon_around(_encode(picture, "PNG")),
    )


@lru_cache(maxsize=None)
def pth_seeds() -> tuple[bytes, ...]:
    import collections

    from pth import Storage, Tensor, legacy_file, small_state_dict

    storage = Storage("7", np.arange(12, dtype=np.float32))
    shared = legacy_file(collections.OrderedDict([("a", Tensor(storage, 2, (2, 3), (3, 1))),
                                                  ("b", Tensor(storage, 0, (4,), (2,)))]), [storage])
    return small_state_dict()[0], shared


@lru_cache(maxsize=None)
def zip_seeds() -> tuple[bytes, ...]:
    from zips import many_entries_zip, zip_of

    photos = {"a.png": image_seeds()[0], "dir/b.jpg": image_seeds()[6], "notes.txt": b"hi", "dir/": b""}
    return (
        zip_of(photos),
        zip_of(photos, zipfile.ZIP_STORED),
        zip_of(photos, zipfile.ZIP_LZMA),
        zip_of(photos, zipfile.ZIP_BZIP2),
        zip_of({"__MACOSX/._a.jpg": b"junk", ".hidden.png": b"x", "c.gif": image_seeds()[13]}),
        many_entries_zip(3),
    )


def csv_seeds() -> tuple[bytes, ...]:
    return (b"cat.jpg\x1ftabby\x1fcoffee.jpg", b"=1+1\x1f@SUM(A1)\x1f-2", b"a\rb=1\x1f\n+x\x1f\t@",
            "caf\u00e9 \u2603.jpg\x1f\u732b\x1fx".encode(), b"\xed\xa0\x80.jpg\x1f\xff\x1f\"q\",")


def masks_csv_seeds() -> tuple[bytes, ...]:
    return (b"path,x0,y0,x1,y1\nred/a.png,0,0,4,4\nred/a.png,5,5,9,9\n", b"a.png,0,0,1,1\r\nb.png,nan,0,1,1\n",
            b"a.png," + b"1" * 140_000 + b",0,1,1\n", b"a.png,0,0,1\n", b"\"a\x00.png\",0,0,1,1\n",
            b"a.png,0,0,4,4\n" * 2000)


@lru_cache(maxsize=None)
def parquet_seeds() -> tuple[bytes, ...]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def table(files, maps, **columns):
        n = len(files)
        base = {"file": files, "target": [0] * n, "target_label": ["red"] * n, "target_probability": [0.9] * n,
                "top1_label": ["red"] * n, "layer": ["last_conv"] * n, "method": ["gradcam"] * n,
                "error": [None] * n, "map": maps}
        base.update(columns)
        buffer = io.BytesIO()
        pq.write_table(pa.table(base), buffer)
        return buffer.getvalue()

    grid = np.eye(3).tolist()
    return (
        table(["red/a.png", "blue/b.png"], [grid, grid]),
        table(["s3://bucket/a.png?endpoint_override=127.0.0.1:9&scheme=http"], [grid]),
        table(["a.png", "b.png"], [[[float("nan")] * 3] * 3, [[1.0, 2.0], [3.0]]]),
        table(["a.png"], ["not a map"]),
        table(["a.png"], [grid], target=["seven"]),
    )


def region_seeds() -> tuple[bytes, ...]:
    box = [0.1, 0.2, 0.6, 0.9]
    return ("[0.1, 0.2, 0.6, 0.9]".encode(), str([box, box]).encode(), str([[box] * 4] * 4).encode(),
            ("[" * 300 + "0.5" + "]" * 300).encode(), b"[[0, 1], [1, 0]]", b"[[NaN, 1], [1, 0]]", b'"the cup"')


TARGETS = {
    "load_image": Target("load_image", run_load_image, (InvalidImageError,), image_seeds),
    "read_state_dict": Target("read_state_dict", run_read_state_dict, (ModelLoadError,), pth_seeds),
    "batch_sources": Target("batch_sources", run_batch_sources, (), zip_seeds),
    "predictions_csv": Target("predictions_csv", run_predictions_csv, (), csv_seeds),
    "masks_csv": Target("masks_csv", run_masks_csv, (ValueError,), masks_csv_seeds),
    "audit_parquet": Target("audit_parquet", run_audit_parquet, (ValueError,), parquet_seeds),
    "what_if_region": Target("what_if_region", run_what_if_region, (ValueError,), region_seeds),
}


# --- the rule ----------------------------------------------------------------------------


class _Hang(BaseException):
    pass


@contextmanager
def _interrupt_after(seconds: float):
    """Raise _Hang in the case if it runs longer (main thread only: SIGALRM)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(*_):
        raise _Hang()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check(name: str, data: bytes) -> None:
    """Run one case through target ``name``; raise Finding if it breaks the rule: an
    exception other than the documented one, a hang, a slow case or a memory spike."""
    target = TARGETS[name]
    peak, started = _peak_mb(), time.perf_counter()
    try:
        with _interrupt_after(HANG_SECONDS):
            target.run(data)
    except _Hang:
        raise Finding(f"{name}: still running after {HANG_SECONDS:.0f} s") from None
    except target.allowed as error:
        message = str(error)
        if "\n" in message or not message.endswith(".") or "Traceback" in message:
            raise Finding(f"{name}: not one sentence: {message!r}") from error
    except Exception as error:
        raise Finding(f"{name}: {type(error).__name__}: {str(error)[:200]}") from error
    elapsed = time.perf_counter() - started
    if elapsed > SLOW_SECONDS:
        raise Finding(f"{name}: took {elapsed:.1f} s")
    grown = _peak_mb() - peak
    if grown > MEMORY_MB:
        raise Finding(f"{name}: peak memory grew by {grown:.0f} MB")


def corpus_files(name: str) -> list[Path]:
    return sorted((CORPUS / name).glob("*.bin"))


def save_to_corpus(name: str, data: bytes) -> Path:
    import hashlib

    folder = CORPUS / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}.bin"
    path.write_bytes(data)
    return path
