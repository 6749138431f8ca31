"""Class names: the ImageNet-1k names we ship, and labels files a user uploads."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from ..errors import ModelLoadError
from ..intake.text import valid_text

MAX_LABELS_BYTES = 5_000_000

@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """(WordNet id, all names of the class) for the 1000 classes, in output order."""
    text = resources.files(__package__).joinpath("data/imagenet_classes.tsv").read_text("utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return tuple((wnid, names) for wnid, names in rows)


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """One short, unique display name per ImageNet class ("tabby", "espresso", ...)."""
    full = [names for _, names in imagenet_classes()]
    short = [names.split(",")[0].strip() for names in full]
    # A few classes share their first name (two "maillot"s): show those in full.
    return tuple(s if short.count(s) == 1 else f for s, f in zip(short, full))


def parse_labels(data: bytes | str, expected: int | None = None) -> list[str]:
    """Labels from a text file (one per line) or JSON (a list, or index -> name).

    JSON in Keras' imagenet_class_index format ({"0": ["n01440764", "tench"]}) is
    accepted too. Names are kept as plain text; front ends must not render them as HTML.
    """
    if isinstance(data, (bytes, bytearray)):
        if len(data) > MAX_LABELS_BYTES:
            raise ModelLoadError("The labels file is too large (over 5 MB).")
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ModelLoadError("The labels file is not UTF-8 text.") from None
    if len(data) > MAX_LABELS_BYTES:
        raise ModelLoadError("The labels file is too large (over 5 MB).")
    text = data.strip()
    if not text:
        raise ModelLoadError("The labels file is empty.")
    labels = None
    if text[0] in "[{":
        try:
            labels = _labels_from_json(text)
        except ModelLoadError:
            # "[background]" on the first line of a plain list is not JSON: read it as lines,
            # unless it really was one JSON document (then the JSON error is the useful one).
            if "\n" not in text:
                raise
    if labels is None:
        labels = [line.strip() for line in text.splitlines()]
    labels = [valid_text(label) or f"class {i}" for i, label in enumerate(labels)]  # a blank line still names a class
    if any("\x00" in label for label in labels):
        raise ModelLoadError("The labels file is not text.")
    if expected is not None and len(labels) != expected:
        raise ModelLoadError(
            f"The labels file has {len(labels)} labels but the model has {expected} outputs."
        )
    return labels


def _labels_from_json(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise ModelLoadError("The labels file looks like JSON but cannot be read as JSON.") from None
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, dict):
        try:
            items = sorted((int(k), v) for k, v in value.items())
        except (TypeError, ValueError):
            raise ModelLoadError("The labels JSON must map class numbers (0, 1, ...) to names.") from None
        if [i for i, _ in items] != list(range(len(items))):
            raise ModelLoadError("The labels JSON must number its classes 0, 1, 2, ... without gaps.")
        # Keras' class index format: {"0": ["n01440764", "tench"], ...}
        return [str(v[-1]) if isinstance(v, list) and v else str(v) for _, v in items]
    raise ModelLoadError("The labels JSON must be a list of names or an object of number -> name.")
