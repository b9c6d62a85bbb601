"""A fault-injecting proxy in front of a Solana node's JSON-RPC (HTTP) and PubSub (WebSocket)
ports, for tests of what production code does when a node misbehaves.

Point the code under test at ``proxy.rpc_url`` / ``proxy.ws_url`` and switch faults on between
steps::

    async with FaultProxy(localnet.rpc_url, localnet.ws_url) as proxy:
        proxy.rate_limit(n=2, retry_after=1)      # the next 2 requests get HTTP 429
        proxy.timeout(n=1, methods={"sendTransaction"}, forward=True)  # lands, reply lost
        await proxy.lag(slots=5)                  # a node 5 slots behind, stuck there

Without a fault everything passes through byte for byte (keep-alive, batches, WebSocket
frames); ``proxy.counts`` says what the proxy did. Faults are consumed in arrival order; a
request matches at most one: dropped, else held (timeout), else rate limited, else forwarded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from chain.localnet import Localnet
from chain.localnet.encoding import describe_error
from chain.localnet.errors import RpcError
from chain.localnet.methods import SOLANA_CORE_VERSION
from chain.localnet.runtime import Outcome, decode_transaction
from chain.pubkeys import decode_base58
from chain.rpc.protocol import (
    MAX_BASE58_TRANSACTION,
    MIN_CONTEXT_SLOT_NOT_REACHED,
    SEND_TRANSACTION_PREFLIGHT_FAILURE,
)

# A real node's blockhash validity: a blockhash is usable while the chain is at most this many
# blocks past it (lastValidBlockHeight = height + 150).
BLOCKHASH_WINDOW = 150
_MAX_HEAD = 64 * 1024


@dataclass
class FaultCounts:
    """What the proxy did since it started. Tests compare these before and after a step."""

    http_requests: int = 0  # requests read from clients
    forwarded: int = 0  # requests sent to the node (faults with forward=True included)
    rate_limited: int = 0  # answered 429
    timed_out: int = 0  # held without an answer
    held_back: int = 0  # answered only once release() was called
    dropped_http: int = 0  # connections closed instead of answering
    ws_connections: int = 0  # client WebSocket connections accepted
    dropped_ws: int = 0  # client WebSocket connections closed by drop_ws()
    notifications: int = 0  # notification frames received from the node
    duplicated: int = 0  # notification frames sent twice
    delayed: int = 0  # notification frames held back
    lagged: int = 0  # replies rewritten or answered from the lagging view
    blockhash_not_found: int = 0  # transactions refused for a blockhash newer than the view
    calls: Counter[str] = field(default_factory=Counter)  # JSON-RPC calls read, batched or not


@dataclass
class _Rule:
    remaining: int | None  # None: until switched off
    methods: frozenset[str] | None  # None: every request
    forward: bool = False
    retry_after: str | None = None

    def take(self, methods: set[str]) -> bool:
        """Whether this request is hit; a hit uses up one of ``remaining``."""
        if self.methods is not None and not self.methods & methods:
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
        return True


@dataclass(frozen=True)
class _LagView:
    """The state a lagging node answers from: its newest block and the blockhashes it knows."""

    slot: int
    height: int
    blockhash: str
    blockhashes: frozenset[str]


@dataclass(frozen=True, eq=False)
class _Frame:
    arrived: float  # loop time the node's frame reached the proxy
    message: str | bytes
    notification: bool
    twice: bool


@dataclass(eq=False)
class _WsPair:
    """A client connection and the proxy's connection to the node on its behalf."""

    client: ServerConnection
    upstream: ClientConnection
    subscriptions: set[int] = field(default_factory=set)  # ids the node gave this client
    outgoing: deque[_Frame] = field(default_factory=deque)  # node -> client, not yet sent
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # outgoing or delay changed
    done: asyncio.Event = field(default_factory=asyncio.Event)  # both sides closed


class FaultProxy:
    """Proxies ``rpc_upstream`` (http://host:port) and ``ws_upstream`` (ws://host:port) on free
    loopback ports. Start it with ``async with`` (or ``start()`` / ``stop()``)."""

    def __init__(self, rpc_upstream: str, ws_upstream: str, *, host: str = "127.0.0.1") -> None:
        parts = urlsplit(rpc_upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError("rpc_upstream must be http://host:port")
        self._rpc_host, self._rpc_port = parts.hostname, parts.port
        self._ws_upstream = ws_upstream.rstrip("/")
        self._host = host
        self.counts = FaultCounts()
        self._http_server: asyncio.Server | None = None
        self._ws_server: Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._pairs: set[_WsPair] = set()
        self._drop: _Rule | None = None
        self._timeout: _Rule | None = None
        self._hold_back: _Rule | None = None
        self._rate_limit: _Rule | None = None
        self._release = asyncio.Event()
        self._duplicate = False
        self._delay = 0.0
        self._lag: _LagView | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def rpc_url(self) -> str:
        if self._http_server is None:
            raise RuntimeError("proxy not started")
        return f"http://{self._host}:{self._http_server.sockets[0].getsockname()[1]}"

    @property
    def ws_url(self) -> str:
        if self._ws_server is None:
            raise RuntimeError("proxy not started")
        return f"ws://{self._host}:{next(iter(self._ws_server.sockets)).getsockname()[1]}"

    @property
    def ws_connections(self) -> int:
        """Client WebSocket connections open right now."""
        return len(self._pairs)

    async def start(self) -> None:
        self._http_server = await asyncio.start_server(
            self._serve_http, self._host, 0, limit=_MAX_HEAD
        )
        self._ws_server = await serve(
            self._serve_ws, self._host, 0, max_size=None, compression=None
        )

    async def stop(self) -> None:
        self.clear()
        if self._ws_server is not None:
            for pair in list(self._pairs):
                pair.client.transport.abort()
                pair.upstream.transport.abort()
            self._ws_server.close()
            await self._ws_server.wait_closed()
        if self._http_server is not None:
            self._http_server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._http_server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ the faults

    def rate_limit(
        self,
        n: int | None = 1,
        *,
        retry_after: float | str | None = 1,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Answer the next ``n`` requests (None: all, until ``n=0`` or ``clear()``) naming one
        of ``methods`` (None: any) with HTTP 429 and ``Retry-After: retry_after`` (seconds, or
        an HTTP date as a string; None sends no header)."""
        header = None if retry_after is None else _retry_after_text(retry_after)
        self._rate_limit = _rule(n, methods, retry_after=header)

    def timeout(
        self, n: int | None = 1, *, methods: Iterable[str] | None = None, forward: bool = False
    ) -> None:
        """Hold the next ``n`` matching requests without answering, until the client gives up
        (closes) or ``release()``; ``forward=True`` still sends them to the node first, so a
        transaction lands while its sender sees only a timeout."""
        self._timeout = _rule(n, methods, forward=forward)

    def hold_back(self, n: int | None = 1, *, methods: Iterable[str] | None = None) -> None:
        """Hold the next ``n`` matching requests until ``release()``, then forward and answer
        them (a slow node: the client waits, within its own timeout, and gets its answer)."""
        self._hold_back = _rule(n, methods)

    def release(self) -> None:
        """Close every held request's connection (answer every held-back one) and switch the
        timeout and the hold-back off."""
        self._timeout = self._hold_back = None
        self._release.set()
        self._release = asyncio.Event()

    def drop_http(
        self, n: int | None = 1, *, methods: Iterable[str] | None = None, forward: bool = False
    ) -> None:
        """Close the connection of the next ``n`` matching requests without a reply;
        ``forward=True`` sends them to the node first (the reply is lost, not the request)."""
        self._drop = _rule(n, methods, forward=forward)

    async def drop_ws(
        self, subscriptions: Iterable[int] | None = None, *, abrupt: bool = True
    ) -> int:
        """Close client WebSocket connections (all, or those holding one of ``subscriptions``)
        and their node side; returns how many. ``abrupt`` drops the TCP connection without a
        close frame (a crash, a load balancer); otherwise they get close code 1012 (restart)."""
        wanted = None if subscriptions is None else set(subscriptions)
        pairs = [p for p in self._pairs if wanted is None or p.subscriptions & wanted]
        for pair in pairs:
            self.counts.dropped_ws += 1
            if abrupt:
                pair.client.transport.abort()
            else:
                await pair.client.close(1012, "service restart")
        for pair in pairs:
            # Wait until the node side is closed too, so its subscriptions are gone on return.
            await pair.done.wait()
        return len(pairs)

    def duplicate_notifications(self, on: bool = True) -> None:
        """Send each notification frame twice (replies to requests stay single)."""
        self._duplicate = on

    def delay_notifications(self, seconds: float) -> None:
        """Hold each notification ``seconds`` (0: off) after it arrived; frames behind it wait
        too, so order is kept, as on a slow link."""
        self._delay = max(0.0, seconds)
        for pair in self._pairs:
            pair.wake.set()

    async def lag(self, slots: int = 0) -> int:
        """Play a node that stopped at the block ``slots`` slots before the node's confirmed
        slot now, and so falls further behind as the chain advances. Returns that block's slot.

        getSlot, getBlockHeight and getLatestBlockhash answer from that block, every
        ``context.slot`` is capped at it, transactions and statuses of later slots are unknown,
        and a ``minContextSlot`` above it is -32016. sendTransaction (with preflight) and
        simulateTransaction of a transaction whose blockhash the view does not know get the
        node's BlockhashNotFound answers; without preflight the transaction is forwarded, as a
        lagging node passes it on to the leader. Account data itself is not rolled back."""
        if slots < 0:
            raise ValueError("slots must not be negative")
        confirmed = await self._rpc("getSlot", [{"commitment": "confirmed"}])
        target = int(confirmed) - slots
        config = {"commitment": "confirmed", "transactionDetails": "none", "rewards": False}
        # The last 151 blocks up to the target hold every blockhash such a node still accepts.
        batch = [
            {"jsonrpc": "2.0", "id": slot, "method": "getBlock", "params": [slot, config]}
            for slot in range(target - BLOCKHASH_WINDOW, target + 1)
        ]
        replies = await self._rpc_batch(batch)
        blocks = [(r["id"], r["result"]) for r in replies if r.get("result") is not None]
        if not blocks:
            raise RuntimeError(f"no block at or below slot {target} to lag at")
        slot, head = max(blocks, key=lambda b: int(b[0]))
        self._lag = _LagView(
            slot=int(slot),
            height=int(head["blockHeight"]),
            blockhash=str(head["blockhash"]),
            blockhashes=frozenset(
                str(b["blockhash"])
                for _, b in blocks
                if int(b["blockHeight"]) >= int(head["blockHeight"]) - BLOCKHASH_WINDOW
            ),
        )
        return self._lag.slot

    def lag_off(self) -> None:
        self._lag = None

    def clear(self) -> None:
        """Switch every fault off and release held requests (counts are kept)."""
        self._drop = self._rate_limit = None
        self.release()
        self._duplicate = False
        self.delay_notifications(0)
        self._lag = None

    # ------------------------------------------------------------------ HTTP

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        upstream = _Upstream(self._rpc_host, self._rpc_port)
        try:
            while True:
                request = await _read_message(reader)
                if request is None:
                    return
                self.counts.http_requests += 1
                calls = _calls_of(request.body)
                self.counts.calls.update(calls)
                methods = set(calls)
                if self._drop is not None and self._drop.take(methods):
                    if self._drop.forward:
                        await self._forward(request, upstream)
                    self.counts.dropped_http += 1
                    return
                if self._timeout is not None and self._timeout.take(methods):
                    if self._timeout.forward:
                        await self._forward(request, upstream)
                    self.counts.timed_out += 1
                    await self._hold(reader)
                    return
                if self._hold_back is not None and self._hold_back.take(methods):
                    self.counts.held_back += 1
                    await self._release.wait()
                if self._rate_limit is not None and self._rate_limit.take(methods):
                    self.counts.rate_limited += 1
                    writer.write(_too_many_requests(self._rate_limit.retry_after, request))
                else:
                    writer.write(await self._forward(request, upstream))
                await writer.drain()
                if not request.keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        except asyncio.CancelledError:
            # Only stop() cancels handlers; ending normally keeps asyncio from logging it.
            return
        finally:
            if task is not None:
                self._handlers.discard(task)
            upstream.close()
            writer.close()

    async def _hold(self, reader: asyncio.StreamReader) -> None:
        """Wait, answering nothing, until the client closes or ``release()`` is called."""
        released = asyncio.ensure_future(self._release.wait())
        closed = asyncio.ensure_future(reader.read())
        try:
            await asyncio.wait({released, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            released.cancel()
            closed.cancel()

    async def _forward(self, request: _Message, upstream: _Upstream) -> bytes:
        self.counts.forwarded += 1
        if self._lag is None:
            return (await upstream.exchange(request.raw)).raw
        return await self._forward_lagging(self._lag, request, upstream)

    async def _forward_lagging(
        self, view: _LagView, request: _Message, upstream: _Upstream
    ) -> bytes:
        try:
            payload = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return (await upstream.exchange(request.raw)).raw
        is_batch = isinstance(payload, list)
        items: list[Any] = payload if is_batch else [payload]
        answers: dict[int, Any] = {}
        for index, item in enumerate(items):
            answer = self._lagging_answer(view, item)
            if answer is not None:
                self.counts.lagged += 1
                answers[index] = answer
        rest = [i for i in range(len(items)) if i not in answers]
        connection = b"keep-alive" if request.keep_alive else b"close"
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: %s\r\n\r\n" % (
            connection
        )
        if rest:
            body = [items[i] for i in rest] if is_batch else items[0]
            response = await upstream.exchange(request.with_body(_dump(body)))
            try:
                replies = json.loads(response.body)
            except (ValueError, UnicodeDecodeError):
                return response.raw
            replies = replies if isinstance(replies, list) else [replies]
            if len(replies) != len(rest):
                return response.raw  # an error about the whole request: pass it on
            for index, reply in zip(rest, replies, strict=True):
                answers[index] = self._lagging_reply(view, items[index], reply)
            head = response.head
        out = [answers[i] for i in range(len(items))]
        return _Message(head, b"", b"", keep_alive=True).with_body(
            _dump(out if is_batch else out[0])
        )

    def _lagging_answer(self, view: _LagView, item: Any) -> Any:
        """The lagging node's own answer to one request, or None to ask the node."""
        if not isinstance(item, dict) or not isinstance(item.get("params"), list):
            return None
        method, params, request_id = item.get("method"), item["params"], item.get("id")
        config = next((p for p in params[1:] if isinstance(p, dict)), {})
        for part in params:
            wanted = part.get("minContextSlot") if isinstance(part, dict) else None
            if isinstance(wanted, int) and wanted > view.slot:
                return _error_reply(
                    request_id,
                    RpcError(
                        MIN_CONTEXT_SLOT_NOT_REACHED,
                        "Minimum context slot has not been reached",
                        {"contextSlot": view.slot},
                    ),
                )
        if method not in ("sendTransaction", "simulateTransaction", "isBlockhashValid"):
            return None
        if method == "isBlockhashValid":
            if params and params[0] not in view.blockhashes:
                return _result_reply(request_id, _wrap(view, False))
            return None
        if (method == "sendTransaction" and config.get("skipPreflight")) or (
            method == "simulateTransaction" and config.get("replaceRecentBlockhash")
        ):
            return None
        blockhash = _blockhash_of(params, config.get("encoding"))
        if blockhash is None or blockhash in view.blockhashes:
            return None
        self.counts.blockhash_not_found += 1
        refused = Outcome("BlockhashNotFound", [], 0, [], None, 0, []).simulation_value()
        if method == "sendTransaction":
            error = RpcError(
                SEND_TRANSACTION_PREFLIGHT_FAILURE,
                f"Transaction simulation failed: {describe_error('BlockhashNotFound')}",
                refused,
            )
            return _error_reply(request_id, error)
        if not config.get("innerInstructions", False):
            refused["innerInstructions"] = None
        return _result_reply(request_id, _wrap(view, refused))

    def _lagging_reply(self, view: _LagView, item: Any, reply: Any) -> Any:
        """The node's reply as the lagging node would give it."""
        if not isinstance(reply, dict) or "result" not in reply or not isinstance(item, dict):
            return reply
        method, result = item.get("method"), reply["result"]
        new = result
        if method == "getSlot" and isinstance(result, int):
            new = min(result, view.slot)
        elif method == "getBlockHeight" and isinstance(result, int):
            new = min(result, view.height)
        elif method == "getTransaction" and isinstance(result, dict):
            new = None if int(result.get("slot", 0)) > view.slot else result
        elif method == "getSignaturesForAddress" and isinstance(result, list):
            new = [e for e in result if int(e.get("slot", 0)) <= view.slot]
        elif isinstance(result, dict) and isinstance(result.get("context"), dict):
            new = self._lagging_context(view, method, result)
        if new == result:
            return reply
        self.counts.lagged += 1
        return {**reply, "result": new}

    @staticmethod
    def _lagging_context(view: _LagView, method: Any, result: dict[str, Any]) -> dict[str, Any]:
        slot = result["context"].get("slot")
        if not isinstance(slot, int) or slot <= view.slot:
            return result
        value = result.get("value")
        if method == "getLatestBlockhash":
            value = {
                "blockhash": view.blockhash,
                "lastValidBlockHeight": view.height + BLOCKHASH_WINDOW,
            }
        elif method == "getSignatureStatuses" and isinstance(value, list):
            value = [
                s if not isinstance(s, dict) or int(s.get("slot", 0)) <= view.slot else None
                for s in value
            ]
        return {**result, "context": {**result["context"], "slot": view.slot}, "value": value}

    async def _rpc(self, method: str, params: list[Any]) -> Any:
        (reply,) = await self._rpc_batch(
            [{"jsonrpc": "2.0", "id": 1, "method": method, "params": params}]
        )
        if "error" in reply:
            raise RuntimeError(f"{method} failed: {reply['error']}")
        return reply["result"]

    async def _rpc_batch(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The proxy's own requests to the node (not counted, never faulted)."""
        body = _dump(batch)
        head = (
            f"POST / HTTP/1.1\r\nHost: {self._rpc_host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        upstream = _Upstream(self._rpc_host, self._rpc_port)
        try:
            response = await upstream.exchange(head.encode() + body)
        finally:
            upstream.close()
        replies: list[dict[str, Any]] = json.loads(response.body)
        return replies

    # ------------------------------------------------------------------ WebSocket

    async def _serve_ws(self, client: ServerConnection) -> None:
        path = client.request.path if client.request is not None else "/"
        try:
            upstream = await connect(
                self._ws_upstream + path, max_size=None, compression=None, ping_interval=None
            )
        except (OSError, ConnectionClosed, TimeoutError):
            client.transport.abort()  # the node is down: so is the proxy, to the client
            return
        pair = _WsPair(client, upstream)
        self._pairs.add(pair)
        self.counts.ws_connections += 1
        pending: dict[Any, str] = {}  # request id -> subscribe method, to learn subscription ids
        tasks = [
            asyncio.create_task(self._ws_up(pair, pending)),
            asyncio.create_task(self._ws_down(pair, pending)),
            asyncio.create_task(self._ws_write(pair)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._ws_close_both(pair)
            self._pairs.discard(pair)
            pair.done.set()

    @staticmethod
    async def _ws_close_both(pair: _WsPair) -> None:
        """Close the side still open the way the other side ended: a close frame is mirrored
        with its code, a connection that just vanished (or drop_ws, stop) is aborted."""
        node_close = pair.upstream.protocol.close_rcvd
        client_close = pair.client.protocol.close_rcvd
        if client_close is None and node_close is not None:
            await pair.client.close(_sendable(node_close.code), node_close.reason)
        elif client_close is None:
            pair.client.transport.abort()
        if node_close is None and client_close is not None:
            await pair.upstream.close(_sendable(client_close.code), client_close.reason)
        elif node_close is None:
            pair.upstream.transport.abort()
        await pair.client.wait_closed()
        await pair.upstream.wait_closed()

    async def _ws_up(self, pair: _WsPair, pending: dict[Any, str]) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in pair.client:
                for item in _json_items(message):
                    method = item.get("method")
                    if isinstance(method, str) and method.endswith("Subscribe"):
                        pending[item.get("id")] = method
                await pair.upstream.send(message)

    async def _ws_down(self, pair: _WsPair, pending: dict[Any, str]) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionClosed):
            async for message in pair.upstream:
                notification = False
                for item in _json_items(message):
                    if isinstance(item.get("method"), str) and "params" in item:
                        notification = True
                    elif item.get("id") in pending and isinstance(item.get("result"), int):
                        del pending[item["id"]]
                        pair.subscriptions.add(item["result"])
                twice = notification and self._duplicate
                if notification:
                    self.counts.notifications += 1
                    self.counts.delayed += int(self._delay > 0)
                    self.counts.duplicated += int(twice)
                pair.outgoing.append(_Frame(loop.time(), message, notification, twice))
                pair.wake.set()

    async def _ws_write(self, pair: _WsPair) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame, wait = self._next_frame(pair, loop.time())
                if frame is None:
                    # No await since _next_frame: nothing can have arrived in between.
                    pair.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await pair.wake.wait()
                    continue
                pair.outgoing.remove(frame)
                await pair.client.send(frame.message)
                if frame.twice:
                    await pair.client.send(frame.message)

    def _next_frame(self, pair: _WsPair, now: float) -> tuple[_Frame | None, float | None]:
        """The frame to send now, else how long until one is due (None: until one arrives).
        Replies are always due and pass held notifications; notifications keep their order;
        a changed delay applies to notifications already held."""
        held_until: float | None = None
        for frame in pair.outgoing:
            if not frame.notification:
                return frame, None
            if held_until is None:
                due = frame.arrived + self._delay
                if due <= now:
                    return frame, None
                held_until = due
        return None, None if held_until is None else held_until - now


# ---------------------------------------------------------------------- HTTP messages


@dataclass(frozen=True)
class _Message:
    """One HTTP/1.1 request or response: ``raw`` is exactly what was on the wire."""

    head: bytes  # start line and headers, through the blank line
    body: bytes  # decoded (de-chunked)
    raw: bytes
    keep_alive: bool

    def with_body(self, body: bytes) -> bytes:
        """The same message with another body (Content-Length set, any chunking gone)."""
        lines = self.head.decode("latin-1").split("\r\n")
        kept = [
            line
            for line in lines[1:]
            if line
            and line.split(":", 1)[0].strip().lower() not in ("content-length", "transfer-encoding")
        ]
        head = "\r\n".join([lines[0], *kept, f"Content-Length: {len(body)}", "", ""])
        return head.encode("latin-1") + body


async def _read_message(reader: asyncio.StreamReader, *, response: bool = False) -> _Message | None:
    """The next message on ``reader``; None at a clean end of stream before one starts."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    version = lines[0].split(" ")[0] if response else lines[0].rsplit(" ", 1)[-1]
    keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
    raw = [head]
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            raw.append(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                raw.append(await reader.readuntil(b"\r\n"))
                break
            chunk = await reader.readexactly(size + 2)
            raw.append(chunk)
            chunks.append(chunk[:-2])
        body = b"".join(chunks)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
        raw.append(body)
    elif response:
        body = await reader.read()  # no length: the body runs to the end of the connection
        raw.append(body)
        keep_alive = False
    else:
        body = b""
    return _Message(head, body, b"".join(raw), keep_alive)


class _Upstream:
    """The proxy's keep-alive connection to the node for one client connection."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def exchange(self, raw: bytes) -> _Message:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port, limit=_MAX_HEAD)
        reader, writer = self._streams
        writer.write(raw)
        await writer.drain()
        response = await _read_message(reader, response=True)
        if response is None:
            self.close()
            raise ConnectionResetError("the node closed the connection without a reply")
        if not response.keep_alive:
            self.close()
        return response

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


def _too_many_requests(retry_after: str | None, request: _Message) -> bytes:
    body = _dump(
        {
            "jsonrpc": "2.0",
            "error": {"code": 429, "message": "Too many requests for a specific RPC call"},
            "id": None,
        }
    )
    header = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
    connection = "keep-alive" if request.keep_alive else "close"
    head = (
        f"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n{header}"
        f"Content-Length: {len(body)}\r\nConnection: {connection}\r\n\r\n"
    )
    return head.encode() + body


# ---------------------------------------------------------------------- JSON-RPC helpers


def _sendable(code: int) -> int:
    # 1005, 1006 and 1015 describe a close but may never be sent in a close frame.
    return 1000 if code in (1005, 1006, 1015) else code


def _rule(
    n: int | None,
    methods: Iterable[str] | None,
    *,
    forward: bool = False,
    retry_after: str | None = None,
) -> _Rule | None:
    if n is not None and n < 0:
        raise ValueError("n must be None (until switched off) or at least 0")
    if n == 0:
        return None
    return _Rule(n, None if methods is None else frozenset(methods), forward, retry_after)


def _retry_after_text(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


def _calls_of(body: bytes) -> list[str]:
    """The method of each call in a request (one, or a batch's)."""
    return [m for item in _json_items(body) if isinstance(m := item.get("method"), str)]


def _methods_of(body: bytes) -> set[str]:
    return set(_calls_of(body))


def _json_items(message: str | bytes) -> list[dict[str, Any]]:
    """The JSON-RPC objects in a message or batch (none if it is not JSON)."""
    try:
        payload = json.loads(message)
    except (ValueError, UnicodeDecodeError):
        return []
    items = payload if isinstance(payload, list) else [payload]
    return [item for item in items if isinstance(item, dict)]


def _blockhash_of(params: list[Any], encoding: Any) -> str | None:
    """The recent blockhash of the transaction in ``params``; None if it cannot be read (the
    node then answers the malformed request itself)."""
    if not params or not isinstance(params[0], str):
        return None
    try:
        if encoding == "base64":  # both methods default to base58
            raw = base64.b64decode(params[0], validate=True)
        else:
            decoded = decode_base58(params[0], max_chars=MAX_BASE58_TRANSACTION)
            if decoded is None:
                return None
            raw = decoded
        return str(decode_transaction(raw).message.recent_blockhash)
    except (ValueError, binascii.Error, RpcError):
        return None


def _wrap(view: _LagView, value: Any) -> dict[str, Any]:
    return {"context": {"slot": view.slot, "apiVersion": SOLANA_CORE_VERSION}, "value": value}


def _result_reply(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": result, "id": request_id}


def _error_reply(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


def _dump(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


# ---------------------------------------------------------------------- fixture


@pytest_asyncio.fixture
async def fault_proxy(localnet: Localnet) -> AsyncIterator[FaultProxy]:
    """A started proxy in front of the test's ``localnet``, every fault off."""
    async with FaultProxy(localnet.rpc_url, localnet.ws_url) as proxy:
        yield proxy
