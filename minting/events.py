"""The event stream the outbox relay publishes to: a Redis Stream, or one in this process.

Each entry carries the outbox id as ``event_id``: the relay publishes at least once (a crash
between publishing and marking the outbox row publishes it again), so consumers dedupe on it.
The in-process stream serves the embedded set-up (``aiw3 up`` without Redis), where the
relay and its readers share one process.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as redis
from redis import exceptions as redis_errors

from core.errors import RetryableStoreError, StoreError

#: Read from the start of a stream.
START = "0-0"


@dataclass(frozen=True, slots=True)
class Event:
    """One outbox event as it travels: the outbox id is the id consumers dedupe on."""

    event_id: int
    event_type: str
    payload: Any


@dataclass(frozen=True, slots=True)
class Entry:
    """An event as read back, with the stream's own entry id (the position to read after)."""

    entry_id: str
    event: Event


class EventStream(Protocol):
    async def publish(self, stream: str, events: Sequence[Event]) -> list[str]:
        """Append ``events`` to ``stream`` in order; returns their entry ids."""

    async def read(self, stream: str, after: str = START, count: int = 100) -> list[Entry]:
        """Up to ``count`` entries after the entry id ``after``, oldest first."""


def _fields(event: Event) -> dict[str, str]:
    return {
        "event_id": str(event.event_id),
        "type": event.event_type,
        "payload": json.dumps(event.payload, separators=(",", ":"), sort_keys=True),
    }


def _event(fields: dict[str, str]) -> Event:
    return Event(int(fields["event_id"]), fields["type"], json.loads(fields["payload"]))


class LocalStream:
    """An in-process stream with Redis-shaped entry ids (``<n>-0``); unbounded, like an
    untrimmed Redis Stream, and gone with the process."""

    def __init__(self) -> None:
        self._streams: dict[str, list[Entry]] = {}
        self._last = 0

    async def publish(self, stream: str, events: Sequence[Event]) -> list[str]:
        entries = self._streams.setdefault(stream, [])
        ids = []
        for event in events:
            self._last += 1
            # A round trip through the wire format: readers get what Redis would give them.
            entries.append(Entry(f"{self._last}-0", _event(_fields(event))))
            ids.append(f"{self._last}-0")
        return ids

    async def read(self, stream: str, after: str = START, count: int = 100) -> list[Entry]:
        position = int(after.split("-", 1)[0])
        entries = self._streams.get(stream, [])
        # Entry n sits at index n - 1 only for a single stream; filter, it is small.
        return [e for e in entries if int(e.entry_id.split("-", 1)[0]) > position][:count]


@asynccontextmanager
async def _redis_boundary() -> AsyncIterator[None]:
    # Like the lease store: Redis errors leave as the store's, retryable when they can pass.
    try:
        yield
    except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
        raise RetryableStoreError(
            f"the event stream is unreachable ({type(exc).__name__}); try again"
        ) from exc
    except redis_errors.RedisError as exc:
        raise StoreError(f"the event stream refused the call ({type(exc).__name__})") from exc


class RedisStream:
    """Events on Redis Streams (``XADD``), one pipelined round trip per batch.

    ``maxlen`` trims each stream approximately (``MAXLEN ~``); None keeps every entry.
    """

    def __init__(self, client: redis.Redis, *, maxlen: int | None = None) -> None:
        self._client = client
        self._maxlen = maxlen

    async def publish(self, stream: str, events: Sequence[Event]) -> list[str]:
        if not events:
            return []
        # transaction=False: order within one connection is what matters, not atomicity
        # (a half-published batch is published again, whole, with the same event ids).
        async with _redis_boundary(), self._client.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(
                    stream,
                    _fields(event),  # type: ignore[arg-type]
                    maxlen=self._maxlen,
                    approximate=True,
                )
            ids = await pipe.execute()
        return [_text(i) for i in ids]

    async def read(self, stream: str, after: str = START, count: int = 100) -> list[Entry]:
        async with _redis_boundary():
            # redis-py types the reply loosely: [[stream, [(entry id, {field: value})]]].
            answer: Any = await self._client.xread({stream: after}, count=count)
        entries = []
        for _name, rows in answer or []:
            for entry_id, fields in rows:
                decoded = {_text(k): _text(v) for k, v in fields.items()}
                entries.append(Entry(_text(entry_id), _event(decoded)))
        return entries


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
