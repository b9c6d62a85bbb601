"""One small HTTP endpoint per process: ``/metrics``, ``/livez`` and ``/readyz``.

The mint worker and the indexer each serve it on their own port; what "alive" and "ready" mean
is theirs to say, as two callables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

Check = Callable[[], bool]
_TEXT = "text/plain; charset=utf-8"


async def serve_health(
    registry: CollectorRegistry, *, alive: Check, ready: Check, host: str, port: int
) -> asyncio.Server:
    """Serve ``/metrics``, ``/livez`` (200 while ``alive()``) and ``/readyz`` (200 while
    ``ready()``) on ``host:port`` (0: a free port; see ``server.sockets``). One request per
    connection: probes and scrapers need no more."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5.0)
            while (await asyncio.wait_for(reader.readline(), 5.0)) not in (b"\r\n", b"\n", b""):
                pass  # the headers say nothing these answers depend on
            parts = request.decode("latin-1").split()
            status, body, kind = _answer(
                parts[1] if len(parts) > 1 else "/", registry, alive, ready
            )
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


def _answer(
    path: str, registry: CollectorRegistry, alive: Check, ready: Check
) -> tuple[str, bytes, str]:
    if path == "/metrics":
        return "200 OK", generate_latest(registry), CONTENT_TYPE_LATEST
    checks = {"/livez": alive, "/healthz": alive, "/readyz": ready}
    check = checks.get(path.split("?", 1)[0])
    if check is None:
        return "404 Not Found", b"not found\n", _TEXT
    if check():
        return "200 OK", b"ok\n", _TEXT
    return "503 Service Unavailable", b"not ok\n", _TEXT
