"""The door in front of the explanation service (issue 30): Serve's HTTP server (uvicorn, as
in Ray's proxy) keeps connections that never finish a request open for ever; through the door
each gets a deadline, while a real request still gets its answer. Upstream here is uvicorn
itself on loopback, with the setting Serve gives it (``timeout_keep_alive``)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

pytest.importorskip("ray")
uvicorn = pytest.importorskip("uvicorn")

from gradcam.scale import serve  # noqa: E402
from gradcam.scale.door import Door  # noqa: E402


async def echo_length(scope, receive, send):
    """A small ASGI app: answers the body's length."""
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(size).encode()})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def upstream():
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(echo_length, host="127.0.0.1", port=port, log_level="critical",
                                           timeout_keep_alive=serve.KEEP_ALIVE_SECONDS, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def door(upstream):
    loop = asyncio.new_event_loop()
    port = free_port()
    guard = Door(("127.0.0.1", upstream), head_seconds=1.0, body_seconds=1.0, answer_seconds=3.0)
    started = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(guard.serve("127.0.0.1", port))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    yield port, guard
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def slow_clients(port: int, count: int, send: bytes) -> list[socket.socket]:
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        if send:
            client.sendall(send)
        clients.append(client)
    return clients


def still_open(clients: list[socket.socket]) -> int:
    """How many the server has not closed (a closed one reads b"" or resets at once)."""
    count = 0
    for client in clients:
        client.setblocking(False)
        try:
            count += client.recv(1) != b""
        except BlockingIOError:
            count += 1
        except ConnectionError:
            pass
    return count


def ask(port: int, body: bytes = b"a photo") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: "
                       + str(len(body)).encode() + b"\r\n\r\n" + body)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
        return answer


PARTIAL_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\n"
PARTIAL_BODY = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly a little"


def test_uvicorn_alone_keeps_connections_that_never_finish_a_request(upstream):
    # What the door is for: Serve's own setting closes only connections that had an answer.
    clients = slow_clients(upstream, 10, b"") + slow_clients(upstream, 10, PARTIAL_HEAD)
    time.sleep(serve.KEEP_ALIVE_SECONDS + 1)
    try:
        assert still_open(clients) == 20
    finally:
        for client in clients:
            client.close()


def test_the_door_closes_silent_and_slow_clients_and_still_answers_the_next(door):
    port, guard = door
    clients = slow_clients(port, 50, b"") + slow_clients(port, 10, PARTIAL_HEAD) + slow_clients(port, 10, PARTIAL_BODY)
    try:
        time.sleep(0.3)
        assert still_open(clients) == 70
        time.sleep(4.5)  # head 1 s; a body started: its 1 s, then the answer's 3 s at most
        assert still_open(clients) == 0
        assert guard.open == 0
    finally:
        for client in clients:
            client.close()
    answer = ask(port, b"x" * 100_000)  # one request per connection, answered in full, then closed
    assert answer.startswith(b"HTTP/1.1 200") and b"\r\n100000\r\n" in answer
    assert b"connection: close" in answer.lower()


def test_without_a_token_nothing_listens_beyond_loopback(monkeypatch, upstream):
    monkeypatch.delenv(serve.TOKEN_ENV, raising=False)
    sentence = ("Refusing to listen on 0.0.0.0 without a token: set GRADCAM_SERVICE_TOKEN (and put a TLS proxy in "
                "front), or listen on 127.0.0.1.")
    with pytest.raises(ValueError) as refused:
        serve.http_options(8000, host="0.0.0.0")
    assert str(refused.value) == sentence
    with pytest.raises(ValueError, match="Refusing to listen on 0.0.0.0 without a token"):
        asyncio.run(Door(("127.0.0.1", upstream)).serve("0.0.0.0", 0))
    assert serve.http_options(8000)["host"] == "127.0.0.1"
    assert serve.http_options(8000)["keep_alive_timeout_s"] == serve.KEEP_ALIVE_SECONDS
    monkeypatch.setenv(serve.TOKEN_ENV, "s3cret")
    assert serve.http_options(8000, host="0.0.0.0")["host"] == "0.0.0.0"


def test_without_a_token_the_start_up_says_so_loudly(monkeypatch, caplog):
    monkeypatch.delenv(serve.TOKEN_ENV, raising=False)
    with caplog.at_level("WARNING", logger="gradcam.serve"):
        serve.http_options(8000)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert caplog.records[0].getMessage().startswith("GRADCAM_SERVICE_TOKEN is not set: this explanation service "
                                                     "answers ANYONE who reaches its port")
