"""A door in front of the explanation service: every connection gets a deadline.

Ray Serve's HTTP server (uvicorn inside Ray's proxy actor) closes a connection only some
seconds after an answer (``keep_alive_timeout_s``); one that connects and never finishes
its request stays open for ever (50 slow clients, 30 s: all 50 still open), and Ray has no
setting for it. This door listens in front and passes each connection to the service on
loopback with time limits: the request's head within HEAD_SECONDS, its body within
BODY_SECONDS, the answer within ANSWER_SECONDS, one request per connection (it asks the
service to close after answering), and at most MAX_CONNECTIONS at once (beyond: closed at
once). It reads only the request's head; it neither parses nor keeps the body.

    python -m gradcam.scale.door --listen 0.0.0.0:8080 --to 127.0.0.1:8000

Like the service, it refuses to listen beyond loopback without GRADCAM_SERVICE_TOKEN. TLS
still belongs to a proxy (Caddy, nginx) in front of it, or in its place: such proxies have
their own header and body timeouts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from .serve import REQUEST_SECONDS, check_bind

HEAD_SECONDS = 10.0  # from the connection to the end of the request's head
BODY_SECONDS = 60.0  # the body (50 MB at most, checked by the service) after the head
ANSWER_SECONDS = REQUEST_SECONDS + 30  # the service's own request limit, and a margin
MAX_HEAD_BYTES = 64 * 1024
MAX_CONNECTIONS = 256
_log = logging.getLogger("gradcam.door")


class Door:
    """The door's rules; ``serve()`` gives the asyncio server (tests shorten the deadlines)."""

    def __init__(self, upstream: tuple[str, int], head_seconds: float = HEAD_SECONDS,
                 body_seconds: float = BODY_SECONDS, answer_seconds: float = ANSWER_SECONDS,
                 max_connections: int = MAX_CONNECTIONS):
        self.upstream = upstream
        self.head_seconds, self.body_seconds, self.answer_seconds = head_seconds, body_seconds, answer_seconds
        self.max_connections = max_connections
        self.open = 0  # connections being served now

    async def serve(self, host: str, port: int) -> asyncio.AbstractServer:
        check_bind(host)
        return await asyncio.start_server(self._connection, host, port, limit=MAX_HEAD_BYTES)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.open >= self.max_connections:
            writer.close()
            return
        self.open += 1
        upstream_writer = None
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.head_seconds)
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            upstream_writer.write(_one_request(head))
            body = asyncio.create_task(_pump(reader, upstream_writer, self.body_seconds))
            try:
                await _pump(upstream_reader, writer, self.answer_seconds)
            finally:
                body.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await body
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                OSError):
            pass  # a slow, silent or vanished client, or a head over 64 KB: the connection is closed
        finally:
            self.open -= 1
            for stream in (writer, upstream_writer):
                if stream is not None:
                    stream.close()


def _one_request(head: bytes) -> bytes:
    """The request's head with ``Connection: close``: the service closes after its answer, so a
    connection carries one request and the door's deadlines cover all of it."""
    lines = head[:-4].split(b"\r\n")
    kept = [line for line in lines[1:] if not line.lower().startswith((b"connection:", b"keep-alive:"))]
    return b"\r\n".join([lines[0], *kept, b"Connection: close"]) + b"\r\n\r\n"


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, seconds: float) -> None:
    """Copy until the source ends, within ``seconds`` in all (TimeoutError past them)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while True:
        left = end - loop.time()
        if left <= 0:
            raise asyncio.TimeoutError
        data = await asyncio.wait_for(source.read(65536), left)
        if not data:
            return
        sink.write(data)
        await sink.drain()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gradcam.scale.door", description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:8080", help="host:port to listen on (default %(default)s)")
    parser.add_argument("--to", default="127.0.0.1:8000", help="the service's host:port (default %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    async def run() -> None:
        host, port = _address(args.listen)
        server = await Door(_address(args.to)).serve(host, port)
        _log.info("door on %s, to %s", args.listen, args.to)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


if __name__ == "__main__":
    main()
