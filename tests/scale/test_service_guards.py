"""The service's guards, run on real Starlette requests without a Ray cluster (issue 16):
the token, the body's size before and while it is read, the per-request budgets, and a
photo that declares 7000 x 7000 decoded in the sandbox at MAX_SIDE."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from PIL import Image
from starlette.requests import Request

pytest.importorskip("ray")
from gradcam.scale import serve  # noqa: E402


def request(body: bytes = b"", headers: dict | None = None, chunks: int = 1) -> Request:
    size = -(-len(body) // chunks) or 1  # the body in ``chunks`` consecutive pieces
    parts = [body[i:i + size] for i in range(0, max(len(body), 1), size)]
    messages = [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)]

    async def receive():
        return messages.pop(0)

    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw, "query_string": b""}, receive)


def test_the_token_is_required_when_set(monkeypatch):
    assert serve.authorized(request().headers)  # no token set: open (loopback use)
    monkeypatch.setenv(serve.TOKEN_ENV, "s3cret")
    assert not serve.authorized(request().headers)
    assert not serve.authorized(request(headers={"Authorization": "Bearer wrong"}).headers)
    assert not serve.authorized(request(headers={"Authorization": "s3cret"}).headers)
    assert serve.authorized(request(headers={"Authorization": "Bearer s3cret"}).headers)


def test_a_body_over_the_limit_is_refused_by_its_length_before_it_is_read():
    declared = request(b"x", {"Content-Length": str(serve.MAX_PHOTO_BYTES + 1)})
    with pytest.raises(serve.Refused) as refused:
        asyncio.run(serve.read_body(declared))
    assert refused.value.status == 413 and str(refused.value) == "The photo is larger than 50 MB."
    # A body without a trustworthy length is read with a cap.
    too_long = request(b"\0" * (serve.MAX_PHOTO_BYTES + 10), chunks=4)
    with pytest.raises(serve.Refused):
        asyncio.run(serve.read_body(too_long))
    assert asyncio.run(serve.read_body(request(b"photo", chunks=2))) == b"photo"


@pytest.mark.parametrize("params, phrase", [
    ({"top": "²"}, "whole number"),
    ({"top": "11"}, "between 1 and 10"),
    ({"targets": ",".join(["1"] * 11)}, "between 1 and 10"),
    ({"targets": "1,-2"}, "class indices"),
])
def test_requests_beyond_the_budgets_are_refused_with_a_sentence(params, phrase):
    with pytest.raises(ValueError, match=phrase):
        serve._job(b"not read", params)


def test_a_photo_that_declares_7000_pixels_a_side_is_decoded_small_in_the_sandbox():
    buffer = io.BytesIO()
    Image.new("RGB", (7000, 7000), (30, 120, 200)).save(buffer, "PNG")  # ~100 kB
    assert len(buffer.getvalue()) < 300_000
    job = serve._job(buffer.getvalue(), {"top": "3"})
    assert max(job.image.size) == serve.MAX_SIDE and job.top == 3
    assert np.asarray(job.image)[0, 0].tolist() == [30, 120, 200]
    with pytest.raises(ValueError, match="no photo"):
        serve._job(b"", {})


def test_without_a_token_a_request_from_another_machine_is_refused(monkeypatch):
    # Issue 30: a service bound beyond loopback (a config file's host: 0.0.0.0) without a token
    # answered everyone. It answers this machine only; with the token set, the token decides.
    monkeypatch.delenv(serve.TOKEN_ENV, raising=False)
    explainer = serve.Explainer.func_or_class()

    def from_host(host: str, headers: dict | None = None) -> Request:
        asked = request(b"", headers)
        asked.scope["client"] = (host, 50000)
        return asked

    answer = asyncio.run(explainer.__call__(from_host("203.0.113.7")))
    assert answer.status_code == 403
    assert answer.body == b'{"error":"This explanation service has no token, so it answers this machine only."}'
    assert asyncio.run(explainer.__call__(from_host("127.0.0.1"))).status_code == 400  # served: "no photo"
    monkeypatch.setenv(serve.TOKEN_ENV, "s3cret")
    assert asyncio.run(explainer.__call__(from_host("203.0.113.7"))).status_code == 401
