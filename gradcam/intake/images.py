"""The one way images enter the engine.

``load_image`` takes whatever a front end has (bytes, a path, an upload) and
returns a fully decoded 8-bit RGB ``PIL.Image.Image`` the way a person would
see it: upright, first frame only, transparency shown on white.

Anything that is not a usable image raises ``InvalidImageError`` whose message
is one plain sentence, so a front end can show ``str(error)`` as it is.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .decode_budget import MAX_PIXELS, check_before_load, check_before_open
from .files import FileRefused, read_regular_file
from ..errors import InvalidImageError
from .text import megabytes, valid_text

ImageSource = bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO

# The most bytes read from a path or a file object: a 50 MP uncompressed RGBA TIFF
# (200 MB) fits; /dev/zero or a huge file cannot make us read without bound.
MAX_FILE_BYTES = 256 * 1024 * 1024
# Front ends show (and explain) photos at most this many pixels on their long side:
# the network sees 224-300 px anyway, and a 24-megapixel heatmap helps nobody.
DISPLAY_MAX_SIDE = 1280
# What the paths that explain many photos decode to at most (the explanation service, the
# dataset audit): the network sees 224-300 px, and 32 photos of 7000 x 7000 held at once
# for a batch (147 MB each, their maps as large again) took a server to 4.4 GB.
EXPLAIN_MAX_SIDE = 1024
# The size a photo had before ``downscaled`` (PIL's ``info``, which travels with the image).
ORIGINAL_SIZE = "gradcam_original_size"

# File extensions an uploader should offer.
SUPPORTED_FORMATS = ("png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff", "ico")

# Only these decoders are allowed: it keeps odd plugins (EPS runs Ghostscript,
# TGA happily "recognises" random bytes) away from uploaded data.
_PILLOW_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF", "ICO")
_DISPLAY_NAMES = {"WEBP": "WebP"}

_FORMAT_ADVICE = "please use PNG, JPEG, WebP, BMP, GIF or TIFF"
_CORRUPT = "The image data is damaged or incomplete; the file may be truncated or corrupt."
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs",
                b"mif1", b"mif2", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


def load_image(data: ImageSource) -> Image.Image:
    """Decode ``data`` into a fully loaded, upright, 8-bit RGB image.

    ``data`` may be bytes-like, a path, or a binary file-like object with
    ``read()``. Raises ``InvalidImageError`` for anything that is not a usable
    image, and ``TypeError`` only for arguments that are not image sources at all.
    """
    raw = read_bytes(data)
    if not raw:
        raise InvalidImageError("The file is empty.")
    _refuse_known_non_images(raw)

    # Pillow only warns between 89 and 179 MP; make that an error here without
    # touching Image.MAX_IMAGE_PIXELS. (catch_warnings is process-wide before
    # Python 3.14; a thread race can at worst leave this one filter in place.)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            check_before_open(raw)
            return _decode(raw)
        except InvalidImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InvalidImageError(_too_many_pixels(_declared_size(raw))) from exc
        except UnidentifiedImageError as exc:
            raise InvalidImageError(_unidentified(raw)) from exc
        except MemoryError as exc:
            raise InvalidImageError("The image is too large to load into memory.") from exc
        except Exception as exc:
            raise InvalidImageError(_CORRUPT) from exc


def downscaled(image: Image.Image, max_side: int | None) -> Image.Image:
    """``image`` with its long side at most ``max_side`` (LANCZOS, aspect kept; None: as it is),
    its size before in ``image.info[ORIGINAL_SIZE]`` (boxes given in the photo's pixels need it)."""
    size = image.info.get(ORIGINAL_SIZE, image.size)
    if max_side is not None and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.LANCZOS)
    image.info[ORIGINAL_SIZE] = tuple(size)
    return image


def read_bytes(data: ImageSource) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, (str, os.PathLike)):
        return _read_path(data)
    read = getattr(data, "read", None)
    if read is None:
        kind = type(data).__name__
        raise TypeError(f"load_image needs bytes, a path or a binary file, not {kind}")
    try:
        # Like Image.open, start from the beginning, so an upload that was
        # already read once (say, for a preview) still works.
        if getattr(data, "seekable", lambda: False)():
            data.seek(0)
        try:
            raw = read(MAX_FILE_BYTES + 1)
        except TypeError:
            raw = read()  # a minimal reader whose read() takes no size
    except ValueError as exc:  # io raises it for a closed file
        raise InvalidImageError("The file was already closed, so it could not be read.") from exc
    except OSError as exc:
        raise InvalidImageError("The uploaded file could not be read.") from exc
    if isinstance(raw, str):
        raise TypeError("load_image needs a file opened in binary mode ('rb')")
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise InvalidImageError("The uploaded file could not be read.")
    return _within_size_limit(bytes(raw))


def _within_size_limit(raw: bytes) -> bytes:
    if len(raw) > MAX_FILE_BYTES:
        raise InvalidImageError(
            f"The file is larger than {megabytes(MAX_FILE_BYTES)}, more than any image this tool accepts needs.")
    return raw


def _read_path(path: str | os.PathLike[str]) -> bytes:
    """The guarded read (``files.read_regular_file``: a FIFO or a device is refused before it
    is opened), its refusals in load_image's sentences."""
    try:
        return read_regular_file(path, MAX_FILE_BYTES)
    except FileRefused as refused:
        shown = valid_text(os.fsdecode(path)) if refused.kind != "name" else ""
        raise InvalidImageError({
            "name": "The path is not a valid file name." if "NUL" not in refused.reason
            else "The path contains a NUL character, so it cannot name a file.",
            "missing": f"No such file: {shown}.",
            "folder": f"The path {shown} is a folder, not an image file.",
            "special": f"The path {shown} is not a regular file (it is a device, a pipe or a socket).",
            "too large": f"The file is larger than {megabytes(MAX_FILE_BYTES)}, more than any image this tool "
                         "accepts needs.",
            "denied": f"Permission denied when reading {shown}.",
        }.get(refused.kind, f"The file {shown} could not be read.")) from None


def _refuse_known_non_images(raw: bytes) -> None:
    """Name the common things people upload by mistake, which Pillow cannot read."""
    if raw[4:8] == b"ftyp":
        # The ftyp box: major brand, minor version, then compatible brands.
        box_end = min(int.from_bytes(raw[:4], "big"), 256)
        brands = {raw[8:12]} | {raw[i:i + 4] for i in range(16, box_end - 3, 4)}
        if brands & _AVIF_BRANDS:
            raise InvalidImageError(
                "AVIF images are not supported; please export the image as JPEG or PNG.")
        if brands & _HEIF_BRANDS:
            raise InvalidImageError(
                "HEIC/HEIF photos are not supported; please export the photo as JPEG.")
    head = raw[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"%pdf-"):
        raise InvalidImageError(
            "The file is a PDF document, not an image; please export the page as PNG or JPEG.")
    if head.startswith((b"<svg", b"<?xml", b"<!--", b"<!doctype svg")) and b"<svg" in head:
        raise InvalidImageError(f"SVG (vector) images are not supported; {_FORMAT_ADVICE}.")
    if head.startswith(b"<") and (b"<html" in head or b"<!doctype html" in head):
        raise InvalidImageError("The file is a web page (HTML), not an image.")


def _decode(raw: bytes) -> Image.Image:
    Image.init()  # registers every plugin once, so the filter below sees them all
    formats = [name for name in _PILLOW_FORMATS if name in Image.OPEN]
    with Image.open(io.BytesIO(raw), formats=formats) as image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise InvalidImageError(_too_many_pixels((width, height)))
        check_before_load(image, raw)
        image.load()  # Image.open is lazy and already sits on the first frame
        _apply_exif_orientation(image)
        return _to_rgb(image)


def _apply_exif_orientation(image: Image.Image) -> None:
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:
        pass  # a damaged EXIF block should not cost the user a photo whose pixels are fine


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        image = _high_depth_to_8bit(image)
    if image.mode == "La":
        image = image.convert("LA")  # Pillow cannot take premultiplied La straight to RGBA
    if image.has_transparency_data:
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, (0, 0), rgba)
        return background
    return image.convert("RGB")


def _high_depth_to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and float grayscale to "L" (or "LA"); Pillow's own convert clips at 255.

    In-place NumPy steps keep the scratch memory near one copy of the pixels
    (decode_budget counts on it: a 20 MP float image must not cost a gigabyte)."""
    values = np.asarray(image)
    wide = image.mode == "F" or (image.mode == "I" and (values.min() < 0 or values.max() > 65535))
    gray = _stretch(values) if wide else _sixteen_to_eight(values)
    result = Image.fromarray(gray)
    transparent = image.info.get("transparency")
    if isinstance(transparent, int) and image.mode != "F":
        result.putalpha(Image.fromarray(np.where(values == transparent, 0, 255).astype(np.uint8)))
    return result


def _sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    """0..65535 to 0..255, rounded (x / 257, as 65535 / 257 == 255)."""
    wide = values.astype(np.uint32)
    wide += 128
    wide //= 257
    return wide.astype(np.uint8)


def _stretch(values: np.ndarray) -> np.ndarray:
    """Map the finite min..max range onto 0..255 (NaN becomes black, infinities the ends)."""
    scaled = values.astype(np.float32)  # the one scratch copy; everything below is in place
    finite = np.isfinite(scaled)
    if not finite.any():
        return np.zeros(values.shape, np.uint8)
    low = float(scaled.min(where=finite, initial=np.inf))
    high = float(scaled.max(where=finite, initial=-np.inf))
    if low == high:
        return np.zeros(values.shape, np.uint8)
    del finite
    np.nan_to_num(scaled, copy=False, nan=low, posinf=high, neginf=low)
    scaled -= low
    scaled *= 255.0 / (high - low)
    np.clip(scaled, 0, 255, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8)


def _too_many_pixels(size: tuple[int, int] | None) -> str:
    limit = f"{MAX_PIXELS / 1_000_000:g} megapixels"
    if size is None:
        return f"The image has more pixels than the limit of {limit}."
    return f"The image is {size[0]} x {size[1]} pixels; the limit is {limit}."


def _declared_size(raw: bytes) -> tuple[int, int] | None:
    """The size a header claims, read by the format's plugin directly.

    Image.open refuses gigapixel headers without saying how big they were;
    the plugins themselves only parse the header and allocate nothing.
    """
    claimed = _claimed_format(raw)
    if claimed is None:
        return None
    factory = Image.OPEN[claimed][0]
    try:
        return factory(io.BytesIO(raw), "").size
    except Exception:
        return None


def header_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) as the header declares them, no pixel decoded (Pillow's open is lazy);
    None when the header cannot say (load_image then says what is wrong)."""
    Image.init()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw), formats=[n for n in _PILLOW_FORMATS if n in Image.OPEN]) as image:
                return image.size
    except Exception:  # a gigapixel header among them: the plugin reads its size directly
        return _declared_size(raw)


def _claimed_format(raw: bytes) -> str | None:
    """The supported format whose signature ``raw`` starts with, if any."""
    for name in _PILLOW_FORMATS:
        accept = Image.OPEN[name][1] if name in Image.OPEN else None
        if accept is not None and accept(raw[:16]):
            return name
    return None


def has_image_signature(raw: bytes) -> bool:
    """Whether ``raw`` starts like a file of a supported format (its first 16 bytes only, nothing decoded):
    a text or a document named photo.jpg does not, a damaged JPEG does (it fails later, with its sentence)."""
    return _claimed_format(raw[:16]) is not None


def _unidentified(raw: bytes) -> str:
    """Explain why Pillow did not recognise ``raw`` as an image."""
    if _is_text(raw[:4096]):
        return "The file contains text, not an image."
    claimed = _claimed_format(raw)
    if claimed is None:
        return f"The file is not an image in a supported format; {_FORMAT_ADVICE}."
    size = _fixed_header_size(raw)
    if size is not None and 0 in size:
        return "The image has no pixels (its width or height is zero)."
    name = _DISPLAY_NAMES.get(claimed, claimed)
    return f"The file seems to be in {name} format, but its header is damaged."


def _fixed_header_size(raw: bytes) -> tuple[int, int] | None:
    """Width and height for the formats that keep them at a fixed place.

    Needed because Pillow refuses zero-sized images as "unidentified".
    """
    if raw.startswith(b"\x89PNG\r\n\x1a\n") and raw[12:16] == b"IHDR" and len(raw) >= 24:
        return struct.unpack(">II", raw[16:24])
    if raw[:6] in (b"GIF87a", b"GIF89a") and len(raw) >= 10:
        return struct.unpack("<HH", raw[6:10])
    if raw[:2] == b"BM" and len(raw) >= 26 and int.from_bytes(raw[14:18], "little") >= 40:
        width, height = struct.unpack("<ii", raw[18:26])
        return width, abs(height)
    return None


def _is_text(head: bytes) -> bool:
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:
            return False
        decoded = head[:exc.start].decode("utf-8")  # a letter cut in half by our slice
    return bool(decoded.strip()) and all(ch.isprintable() or ch in "\t\r\n\f" for ch in decoded)
