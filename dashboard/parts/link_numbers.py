"""Numbers read from a link's query parameters: ASCII digits only.

``str.isdigit()`` accepts "²", "٣" and other Unicode digits, which ``int()`` then
refuses or reads as another number, so a crafted link (``?target=²``) broke the page
once. Every place where a link's value becomes a number uses ``link_number``.
"""

from __future__ import annotations

import re

_ASCII_DIGITS = re.compile(r"[0-9]{1,9}")  # nine digits: more than any count of classes, steps or layers


def link_number(value, below: int | None = None) -> int | None:
    """The whole number a link's value spells in ASCII digits (and under ``below``, when given), else None."""
    if not isinstance(value, str) or not _ASCII_DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if below is None or number < below else None
