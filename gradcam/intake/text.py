"""Text that came from outside (file names, labels files, model configs) made safe to show and save."""

from __future__ import annotations

import re

# A JSON "\\ud800" escape (or a browser's file name) decodes to a lone surrogate: a str
# that no encoder accepts, so it would later break the CSV download, the terminal and the page.
_SURROGATE = re.compile("[\ud800-\udfff]")


def is_valid_text(text: str) -> bool:
    """False when ``text`` holds a lone surrogate (where a reader must refuse, not repair)."""
    return _SURROGATE.search(text) is None


def valid_text(text: str) -> str:
    """``text`` as valid Unicode: each lone surrogate becomes U+FFFD, the replacement character."""
    return _SURROGATE.sub("\ufffd", text)


def megabytes(n: int) -> str:
    """A byte count as people read it in a sentence: "12 MB"."""
    return f"{n / (1024 * 1024):,.0f} MB"


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """A count and its noun as a sentence says it: "1 photo", "3 photos", "1,200 photos"."""
    return f"{count:,} {noun if count == 1 else (plural or noun + 's')}"
