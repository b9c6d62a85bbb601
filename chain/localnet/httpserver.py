"""A lean HTTP/1.1 JSON-RPC endpoint on asyncio streams.

A full ASGI stack (uvicorn + h11) costs more per request than executing a mint transaction;
the RPC path has to keep up with LiteSVM, so this speaks just the HTTP a JSON-RPC client uses:
POST with Content-Length or chunked bodies, keep-alive, and ``GET /health``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from chain.localnet.errors import RpcError
from chain.localnet.methods import RpcMethods
from chain.rpc.protocol import INTERNAL_ERROR, INVALID_REQUEST, MAX_BATCH_SIZE, PARSE_ERROR

_log = logging.getLogger(__name__)
_MAX_HEADER = 16 * 1024
_MAX_BODY = 4 * 1024 * 1024


class HttpRpcServer:
    """Serves ``methods`` over HTTP on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, methods: RpcMethods, host: str, port: int) -> None:
        self._methods = methods
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, limit=_MAX_HEADER
        )

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._connections):
            writer.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def handle_payload(self, body: bytes) -> bytes:
        """One JSON-RPC request or batch in, the reply bytes out (empty when nothing is to be
        answered: notifications only)."""
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _dump(_error(None, RpcError(PARSE_ERROR, "Parse error")))
        if isinstance(request, list):
            if not request or len(request) > MAX_BATCH_SIZE:
                return _dump(_error(None, RpcError(INVALID_REQUEST, "Invalid request")))
            replies = [reply for item in request if (reply := self._one(item)) is not None]
            # JSON-RPC 2.0 section 6: nothing at all rather than an empty array.
            return _dump(replies) if replies else b""
        reply = self._one(request)
        return _dump(reply) if reply is not None else b""

    def _one(self, request: Any) -> dict[str, Any] | None:
        """The reply to one call; None for a notification (a valid call without an ``id``),
        which is executed but never answered (JSON-RPC 2.0 section 4.1)."""
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error(None, RpcError(INVALID_REQUEST, "Invalid request"))
        request_id = request.get("id")
        try:
            result = self._methods.call(request["method"], request.get("params"))
            reply = {"jsonrpc": "2.0", "result": result, "id": request_id}
        except RpcError as exc:
            reply = _error(request_id, exc)
        except Exception:
            _log.exception("localnet: %s failed", request["method"])
            reply = _error(request_id, RpcError(INTERNAL_ERROR, "Internal error"))
        return reply if "id" in request else None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) != 3:
                    writer.write(_response(400, b"bad request", close=True))
                    return
                method, path, version = parts
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                keep_alive = headers.get("connection", "").lower() != "close" and (
                    version == "HTTP/1.1" or headers.get("connection", "").lower() == "keep-alive"
                )
                try:
                    body = await _read_body(reader, headers)
                except (ValueError, asyncio.LimitOverrunError):
                    writer.write(_response(400, b"bad request", close=True))
                    return
                if body is None:
                    writer.write(_response(413, b"payload too large", close=True))
                    return
                if method == "GET" and path.split("?")[0] == "/health":
                    writer.write(_response(200, b"ok", keep_alive, "text/plain"))
                elif method != "POST":
                    writer.write(
                        _response(
                            405,
                            b"Used HTTP Method is not allowed. POST or OPTIONS is required",
                            keep_alive,
                            "text/plain",
                        )
                    )
                else:
                    writer.write(_response(200, self.handle_payload(body), keep_alive))
                if writer.transport.get_write_buffer_size() > 1 << 16:
                    await writer.drain()
                if not keep_alive:
                    await writer.drain()
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            # Only stop() cancels handlers; ending normally keeps asyncio from logging it.
            return
        finally:
            if task is not None:
                self._handlers.discard(task)
            self._connections.discard(writer)
            writer.close()


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes | None:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # trailer end (no trailers expected)
                return b"".join(chunks)
            total += size
            if total > _MAX_BODY:
                return None
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0") or 0)
    if length > _MAX_BODY:
        return None
    return await reader.readexactly(length) if length else b""


def _response(
    status: int,
    body: bytes,
    keep_alive: bool = True,
    content_type: str = "application/json",
    *,
    close: bool = False,
) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 405: "Method Not Allowed", 413: "Payload Too Large"}[
        status
    ]
    connection = "keep-alive" if keep_alive and not close else "close"
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: {connection}\r\n\r\n"
    )
    return head.encode() + body


def _error(request_id: Any, exc: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": exc.to_json(), "id": request_id}


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
