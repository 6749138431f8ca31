"""Every pixel a session decodes in the sandbox counts against its budget, whichever page
decoded it (issue 30): photos that each pass the per-file limits cannot add up without
bound. Built in code: PNGs of ~140 kB that declare 7000 x 7000 (49 megapixels each)."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

import gradcam
from gradcam.intake import pixel_budget


def declared_7000() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (7000, 7000), (200, 30, 40)).save(buffer, "PNG")
    assert len(buffer.getvalue()) < 200_000
    return buffer.getvalue()


def test_a_session_past_its_pixels_is_refused_before_decoding_and_another_session_is_served(monkeypatch):
    monkeypatch.setattr(pixel_budget, "MAX_SESSION_PIXELS", 60_000_000)
    big = declared_7000()
    with gradcam.sandbox_session("budget-a"):
        first = gradcam.load_image_safely(big, max_side=256)  # 49 MP decoded (counted), 256 px returned
        assert first.size == (256, 256) and np.asarray(first)[0, 0].tolist() == [200, 30, 40]
        started = time.monotonic()
        with pytest.raises(gradcam.InvalidImageError) as refused:
            gradcam.load_image_safely(big, max_side=256)
        # Refused from its header: no 49 MP decode (~1 s here) happened.
        assert time.monotonic() - started < 5
    assert str(refused.value) == (
        "This session has decoded 49 megapixels of photos in the last 60 minutes; this photo's 49 megapixels "
        "would pass the limit of 60 megapixels an hour; try again in about 60 minutes.")
    with gradcam.sandbox_session("budget-b"):  # another session is served
        assert gradcam.load_image_safely(big, max_side=64).size == (64, 64)
    # A small photo still fits the first session's remaining 11 megapixels.
    small = io.BytesIO()
    Image.new("RGB", (320, 240), "white").save(small, "PNG")
    with gradcam.sandbox_session("budget-a"):
        assert gradcam.load_image_safely(small.getvalue()).size == (320, 240)
    # A library caller outside any session has no ledger.
    assert gradcam.load_image_safely(big, max_side=32).size == (32, 32)


def test_the_ledger_forgets_what_was_decoded_more_than_an_hour_ago():
    now = [0.0]
    ledger = pixel_budget.PixelLedger(limit=100, clock=lambda: now[0])
    ledger.charge(80)
    assert ledger.allowance() == 20
    now[0] = 1800.0
    ledger.charge(20)
    assert ledger.allowance() == 0
    assert ledger.refusal().endswith("another photo would pass the limit of 0 megapixels an hour; "
                                     "try again in about 30 minutes.")
    now[0] = 3601.0  # the first charge has left the window
    assert ledger.allowance() == 80
