"""What one session may decode: pixels, counted wherever they were decoded.

The per-file limits (50 megapixels, the decode budgets) bound one photo; a zip of 500
small PNGs that each declare 7000 x 7000 asks for 24.5 gigapixels of decoding through
limits that each hold. So every photo decoded for a session in the sandbox
(``load_image_safely``: the Explore page, Compare, Batch, the Audit, whichever page)
counts its decoded pixels, at the size the decoder produced them (before any downscale),
against the session's ledger; beyond MAX_SESSION_PIXELS within the last
WINDOW_SECONDS the next photo is refused with one sentence, before it is decoded (the
worker reads its size from the header first). A session is ``sandbox_session``'s key
(the dashboard's session id); a library caller without one has no ledger.

Two photos decoded at once by one session may pass the limit by one photo each: the
ledger learns a photo's size only from its header, in the worker.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable

# 10 gigapixels an hour: ~800 twelve-megapixel phone photos, 200 at the 50 MP limit;
# about five minutes of one core's decoding, so one session cannot keep the workers for more.
MAX_SESSION_PIXELS = 10_000_000_000
WINDOW_SECONDS = 3600
MAX_SESSIONS = 4096  # ledgers kept (the least recently used is forgotten beyond)


def megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:,.0f} megapixels"


class PixelLedger:
    """Pixels one session decoded within the last WINDOW_SECONDS."""

    def __init__(self, limit: int | None = None, clock: Callable[[], float] = time.monotonic):
        self._limit = limit  # None: the module's MAX_SESSION_PIXELS as it is when asked, not when made
        self._clock = clock
        self._charged: list[tuple[float, int]] = []  # (when, pixels)
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        # A session's ledger outlives a change of the limit (an operator's, or a test's): read it each time.
        return MAX_SESSION_PIXELS if self._limit is None else self._limit

    def used(self) -> int:
        with self._lock:
            return self._used()

    def _used(self) -> int:
        start = self._clock() - WINDOW_SECONDS
        self._charged = [(when, n) for when, n in self._charged if when > start]
        return sum(n for _, n in self._charged)

    def allowance(self) -> int:
        """Pixels the session may still decode now (0 when none)."""
        with self._lock:
            return max(0, self.limit - self._used())

    def charge(self, pixels: int) -> None:
        with self._lock:
            self._charged.append((self._clock(), int(pixels)))

    def refusal(self, pixels: int | None = None) -> str:
        """The sentence for a photo (of ``pixels``, when known) this session may not decode now."""
        with self._lock:
            used = self._used()
            oldest = min((when for when, _ in self._charged), default=self._clock())
            minutes = max(1, -(-int(oldest + WINDOW_SECONDS - self._clock()) // 60))
        photo = f"this photo's {megapixels(pixels)}" if pixels else "another photo"
        return (f"This session has decoded {megapixels(used)} of photos in the last {WINDOW_SECONDS // 60} minutes; "
                f"{photo} would pass the limit of {megapixels(self.limit)} an hour; try again in about "
                f"{minutes} minute{'s' if minutes != 1 else ''}.")


_ledgers: OrderedDict[object, PixelLedger] = OrderedDict()
_ledgers_lock = threading.Lock()


def session_ledger(session) -> PixelLedger:
    """The ledger of ``session`` (any hashable key), made on first use."""
    with _ledgers_lock:
        ledger = _ledgers.get(session)
        if ledger is None:
            ledger = _ledgers[session] = PixelLedger()
            while len(_ledgers) > MAX_SESSIONS:
                _ledgers.popitem(last=False)
        else:
            _ledgers.move_to_end(session)
        return ledger
