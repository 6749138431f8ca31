"""Untrusted bytes in: images, archives and model files, each measured against a budget
before it is decoded, and read in a sandboxed worker where it comes from a user."""

from .archives import MAX_ARCHIVE_BYTES, MAX_ARCHIVE_MEMBERS, BatchSource, InflationLedger, batch_sources
from .digest import sha256
from .images import DISPLAY_MAX_SIDE, SUPPORTED_FORMATS
from .sandbox import image_pool, model_pool, sandbox_session
from .video import FORMATS as VIDEO_FORMATS

__all__ = ["DISPLAY_MAX_SIDE", "MAX_ARCHIVE_BYTES", "MAX_ARCHIVE_MEMBERS", "SUPPORTED_FORMATS", "BatchSource",
           "InflationLedger", "batch_sources", "image_pool", "model_pool", "sandbox_session", "sha256",
           "VIDEO_FORMATS"]
