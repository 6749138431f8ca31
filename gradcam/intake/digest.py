"""The one fingerprint of bytes that came in: an image's or a file's SHA-256, as hex.
Caches key on it, records and reports print it, reruns compare it."""

import hashlib


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
