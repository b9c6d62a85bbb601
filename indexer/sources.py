"""Where the indexer learns of transactions: one interface, several sources.

A source is an async iterator of :class:`Seen` (a transaction signature that mentions a followed
address) and :class:`Gap` (addresses whose notifications may have been missed: crawl them from
their cursors). The runner fetches each new signature once and projects it.

* :class:`CrawlSource` pages ``getSignaturesForAddress`` (``before``/``until``) for one
  address; :func:`list_many` does the same for thousands at once in JSON-RPC batches: backfill,
  and the gap after every (re)connect or restart.
* :class:`WebsocketSource` holds one ``logsSubscribe`` ``mentions`` subscription per address at
  ``confirmed``, spread over a bounded number of connections; after a drop it reconnects,
  re-subscribes everything and reports a :class:`Gap` once the subscriptions are live again
  (subscribe first, then crawl: nothing falls between).
* :class:`TransactionStream` is the seam for a Geyser / Yellowstone gRPC source (transaction
  filters with account lists), which is how this runs at mainnet scale. It delivers whole
  transactions with their slot and index in the block, so the runner skips the fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction_status import EncodedConfirmedTransactionWithStatusMeta
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from chain.rpc import RpcClient, SignaturesQuery

_log = structlog.stdlib.get_logger(__name__)

#: getSignaturesForAddress accepts at most 1,000 per page.
MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Seen:
    """A transaction that mentions ``address``, as the source listed it."""

    signature: str
    slot: int
    failed: bool
    address: str


@dataclass(frozen=True, slots=True)
class Gap:
    """Notifications for these addresses may have been missed (a connection was (re)opened)."""

    addresses: tuple[str, ...]


Event = Seen | Gap


class Source(Protocol):
    def __aiter__(self) -> AsyncIterator[Event]: ...


class TransactionStream(Protocol):
    """A push source of whole transactions (Geyser / Yellowstone gRPC ``SubscribeRequest`` with
    ``transactions`` filters: ``account_include`` = the followed addresses, ``failed`` false,
    commitment confirmed). Each item carries the transaction (same shape as ``getTransaction``)
    and its index in the block, so no fetch is needed; the runner follows the same cursors."""

    async def follow(self, addresses: Iterable[str]) -> None:
        """Extend the account filter (the stream re-sends the filter, not a new stream)."""

    def __aiter__(
        self,
    ) -> AsyncIterator[tuple[EncodedConfirmedTransactionWithStatusMeta, int]]: ...


class CrawlSource:
    """The signatures of one address, newest first, strictly between ``until`` and ``before``
    (both exclusive, either open), in pages of ``page_size``."""

    def __init__(
        self,
        rpc: RpcClient,
        address: str,
        *,
        until: str | None = None,
        before: str | None = None,
        page_size: int = MAX_PAGE,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE}")
        self._rpc = rpc
        self._address = address
        self._until = until
        self._before = before
        self._page_size = page_size

    async def __aiter__(self) -> AsyncIterator[Event]:
        key = Pubkey.from_string(self._address)
        until = Signature.from_string(self._until) if self._until else None
        before = Signature.from_string(self._before) if self._before else None
        while True:
            page = await self._rpc.get_signatures_for_address(
                key, before=before, until=until, limit=self._page_size
            )
            for entry in page:
                yield Seen(str(entry.signature), entry.slot, entry.err is not None, self._address)
            if len(page) < self._page_size:
                return
            before = page[-1].signature


async def list_many(
    rpc: RpcClient, untils: dict[str, str | None], *, page_size: int = MAX_PAGE
) -> dict[str, list[Seen]]:
    """What a :class:`CrawlSource` of each address (from ``until``, exclusive, to now) would
    list, for many addresses at once: a JSON-RPC batch of every address's first page, then of
    the next page of each address whose page was full, until none is (thousands of addresses
    cost a few POSTs, not a request each). Newest first per address."""
    if not 1 <= page_size <= MAX_PAGE:
        raise ValueError(f"page_size must be 1..{MAX_PAGE}")
    found: dict[str, list[Seen]] = {address: [] for address in untils}
    keys = {address: Pubkey.from_string(address) for address in untils}
    bounds = {a: Signature.from_string(u) if u else None for a, u in untils.items()}
    # address -> before (None: from the newest)
    todo: dict[str, Signature | None] = dict.fromkeys(untils)
    while todo:
        queries = [
            SignaturesQuery(keys[a], before=before, until=bounds[a], limit=page_size)
            for a, before in todo.items()
        ]
        pages = await rpc.get_signatures_for_address_many(queries)
        more: dict[str, Signature | None] = {}
        for address, page in zip(todo, pages, strict=True):
            found[address].extend(
                Seen(str(e.signature), e.slot, e.err is not None, address) for e in page
            )
            if len(page) == page_size:
                more[address] = page[-1].signature
        todo = more
    return found


class WebsocketSource:
    """Live ``logsSubscribe`` per address over at most ``max_connections`` connections."""

    def __init__(
        self,
        url: str,
        addresses: Iterable[str] = (),
        *,
        max_connections: int = 4,
        commitment: str = "confirmed",
        on_reconnect: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._url = url
        self._commitment = commitment
        self._on_reconnect = on_reconnect or (lambda: None)
        self._rng = rng or random.Random()  # backoff jitter only
        self._conns = [_Conn(i) for i in range(max_connections)]
        #: Events in arrival order; ``None`` stands for the Gap of every address in ``_gaps``.
        self._queue: asyncio.Queue[Seen | None] = asyncio.Queue()
        #: Addresses whose subscription went live since the last Gap was read: one Gap for all
        #: of them (a reconnect confirms thousands at once; one event each would queue the
        #: notifications behind them), queued at the first one's place.
        self._gaps: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._ids = itertools.count(1)
        #: Every address followed, on whichever connection (tens of thousands: a set, not a
        #: union of the connections' sets at every look).
        self._followed: set[str] = set()
        for address in addresses:
            self._assign(address)

    @property
    def addresses(self) -> frozenset[str]:
        return frozenset(self._followed)

    def live_subscriptions(self) -> int:
        return sum(len(c.live) for c in self._conns)

    def all_live(self) -> bool:
        """Every followed address's subscription is confirmed on an open connection."""
        return self.live_subscriptions() == len(self._followed)

    async def follow(self, addresses: Iterable[str]) -> None:
        """Subscribe to more addresses now (a :class:`Gap` follows once each is live)."""
        for address in addresses:
            if address in self._followed:
                continue
            conn = self._assign(address)
            if conn.ws is not None:
                # A connection that just dropped re-subscribes all its addresses, this one
                # included, once it is back.
                with contextlib.suppress(WebSocketException, OSError):
                    await self._subscribe(conn, [address])

    async def __aiter__(self) -> AsyncIterator[Event]:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(c), name=f"indexer-ws-{c.index}") for c in self._conns
            ]
        while True:
            event = await self._queue.get()
            if event is None:
                gap, self._gaps = tuple(sorted(self._gaps)), set()
                yield Gap(gap)
            else:
                yield event

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    # -- connections ---------------------------------------------------------------------------

    def _assign(self, address: str) -> _Conn:
        conn = min(self._conns, key=lambda c: len(c.addresses))
        conn.addresses.add(address)
        self._followed.add(address)
        return conn

    async def _run(self, conn: _Conn) -> None:
        attempt = 0
        while True:
            if not conn.addresses:
                await asyncio.sleep(0.05)  # nothing to follow on this connection yet
                continue
            try:
                async with connect(self._url, max_size=1 << 24) as ws:
                    if conn.opened:
                        self._on_reconnect()
                    conn.opened = True
                    conn.ws, conn.live, conn.pending = ws, {}, {}
                    await self._subscribe(conn, sorted(conn.addresses))
                    attempt = 0
                    async for message in ws:
                        self._handle(conn, message)
            except (TimeoutError, OSError, WebSocketException) as exc:
                _log.warning(
                    "indexer websocket dropped", connection=conn.index, error=type(exc).__name__
                )
            finally:
                conn.ws, conn.live, conn.pending = None, {}, {}
            attempt += 1
            delay = min(5.0, 0.05 * 2 ** min(attempt, 7))
            await asyncio.sleep(delay * (0.5 + self._rng.random()))

    async def _subscribe(self, conn: _Conn, addresses: Sequence[str]) -> None:
        assert conn.ws is not None
        for address in addresses:
            request_id = next(self._ids)
            conn.pending[request_id] = address
            await conn.ws.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": request_id,
                        "method": "logsSubscribe",
                        "params": [{"mentions": [address]}, {"commitment": self._commitment}],
                    }
                )
            )

    def _handle(self, conn: _Conn, message: str | bytes) -> None:
        try:
            frame: dict[str, Any] = json.loads(message)
        except ValueError:
            return
        if "id" in frame:
            address = conn.pending.pop(frame["id"], None)
            if address is not None and isinstance(frame.get("result"), int):
                conn.live[frame["result"]] = address
                # Live now: whatever happened before is the crawl's to find.
                if not self._gaps:  # else the Gap already queued takes this one too
                    self._queue.put_nowait(None)
                self._gaps.add(address)
            return
        if frame.get("method") != "logsNotification":
            return
        params = frame.get("params") or {}
        sub = params.get("subscription")
        address = conn.live.get(sub) if isinstance(sub, int) else None
        result = params.get("result") or {}
        value = result.get("value") or {}
        signature = value.get("signature")
        slot = (result.get("context") or {}).get("slot")
        if address is None or not isinstance(signature, str) or not isinstance(slot, int):
            return
        self._queue.put_nowait(Seen(signature, slot, value.get("err") is not None, address))


@dataclass(eq=False, slots=True)
class _Conn:
    index: int
    addresses: set[str] = field(default_factory=set)
    ws: ClientConnection | None = None
    live: dict[int, str] = field(default_factory=dict)  # subscription id -> address
    pending: dict[int, str] = field(default_factory=dict)  # request id -> address
    opened: bool = False
