"""The outbox relay: every event reaches the stream in order, a crash gives duplicates with the
same event id and never a loss, and only the lease holder publishes. In-process and in Redis,
on every database backend."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import ConfigError
from minting import qualification
from minting.cache import Cache, LocalCache, RedisCache
from minting.events import START, Entry, Event, EventStream, LocalStream, RedisStream
from minting.metrics import MintingMetrics
from minting.qualification import QualificationService
from minting.relay import LEASE_NAME, OutboxRelay, RelayLeaseHeld, RelayMetrics
from store.engine import session_factory
from store.leases import Leases, LocalLeases, RedisLeases
from store.repos import outbox
from store.repos.transitions import NFT_EVENTS
from store.tables import EventOutbox


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class _Backend:
    stream: EventStream
    leases: Leases
    redis: Any | None
    clock: _Clock

    async def expire_lease(self) -> None:
        """The lease lapses under its holder, as after a stall longer than its TTL."""
        if self.redis is not None:
            await self.redis.delete(f"aiw3:lease:{LEASE_NAME}")
        else:
            self.clock.now += 3600


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def parts(request: pytest.FixtureRequest) -> _Backend:
    clock = _Clock()
    if request.param == "local":
        return _Backend(LocalStream(), LocalLeases(clock), None, clock)
    client = request.getfixturevalue("redis_client")
    return _Backend(RedisStream(client), RedisLeases(client), client, clock)


class _Crash(Exception):
    """Raised by the failpoint: the relay dies after publishing, before marking."""


def _crash(name: str) -> None:
    if name == "published":
        raise _Crash(name)


def _relay(engine: AsyncEngine, parts: _Backend, **kwargs: Any) -> OutboxRelay:
    options: dict[str, Any] = {"lease_ttl": 1.0, "poll": 0.02, "backoff": 0.02, **kwargs}
    return OutboxRelay(session_factory(engine), parts.stream, parts.leases, **options)


async def _enqueue(engine: AsyncEngine, count: int, users: int = 3) -> list[int]:
    async with session_factory(engine)() as session, session.begin():
        ids = []
        for n in range(count):
            user = n % users
            payload = {"type": "unlocked", "user_id": user, "n": n}
            ids.append((await outbox.enqueue(session, NFT_EVENTS, "unlocked", payload, user)).id)
    return ids


async def _everything(stream: EventStream) -> list[Entry]:
    entries: list[Entry] = []
    while batch := await stream.read(NFT_EVENTS, entries[-1].entry_id if entries else START):
        entries.extend(batch)
    return entries


def _deduped(entries: list[Entry]) -> list[Event]:
    """What a consumer sees: the first copy of each event id."""
    seen: set[int] = set()
    events = []
    for entry in entries:
        if entry.event.event_id not in seen:
            seen.add(entry.event.event_id)
            events.append(entry.event)
    return events


async def _unpublished(engine: AsyncEngine) -> int:
    async with session_factory(engine)() as session:
        count = await session.execute(
            select(func.count()).select_from(EventOutbox).where(EventOutbox.published_at.is_(None))
        )
        return int(count.scalar_one())


async def test_publishes_in_order_and_marks_published(engine: AsyncEngine, parts: _Backend) -> None:
    ids = await _enqueue(engine, 7)
    registry = CollectorRegistry()
    relay = _relay(engine, parts, batch=3, metrics=RelayMetrics(registry))

    assert await relay.run_once() == 7

    entries = await _everything(parts.stream)
    assert [e.event.event_id for e in entries] == ids
    assert [e.event.payload["n"] for e in entries] == list(range(7))
    assert {e.event.event_type for e in entries} == {"unlocked"}
    assert await _unpublished(engine) == 0
    assert registry.get_sample_value("nft_events_published_total", {"type": "unlocked"}) == 7
    assert registry.get_sample_value("nft_event_outbox_backlog") == 0
    assert registry.get_sample_value("nft_event_relay_leader") == 0

    assert await relay.run_once() == 0  # nothing published twice
    assert len(await _everything(parts.stream)) == 7


async def test_a_crash_between_publish_and_mark_duplicates_and_loses_nothing(
    engine: AsyncEngine, parts: _Backend
) -> None:
    first = await _enqueue(engine, 3)
    with pytest.raises(_Crash):
        await _relay(engine, parts, failpoint=_crash).run_once()
    assert await _unpublished(engine) == 3  # published, but not marked
    assert [e.event.event_id for e in await _everything(parts.stream)] == first

    later = await _enqueue(engine, 2)
    assert await _relay(engine, parts).run_once() == 5  # the restarted relay

    entries = await _everything(parts.stream)
    assert [e.event.event_id for e in entries] == first + first + later  # duplicates, same ids
    assert [e.event_id for e in _deduped(entries)] == first + later  # each exactly once
    assert await _unpublished(engine) == 0


async def test_a_relay_that_lost_the_lease_publishes_nothing(
    engine: AsyncEngine, parts: _Backend
) -> None:
    ids = await _enqueue(engine, 4)
    stale = await parts.leases.acquire(LEASE_NAME, 1.0)
    assert stale is not None
    with pytest.raises(RelayLeaseHeld) as held:
        await _relay(engine, parts).run_once()
    assert held.value.code == "RELAY_LEASE_HELD"

    await parts.expire_lease()
    successor = await parts.leases.acquire(LEASE_NAME, 1.0)
    assert successor is not None
    assert successor.token > stale.token
    assert await _relay(engine, parts).publish_batch(stale) is None
    assert await _everything(parts.stream) == []
    assert await _unpublished(engine) == 4

    assert await _relay(engine, parts).publish_batch(successor) == 4
    assert [e.event.event_id for e in await _everything(parts.stream)] == ids


# SQLite has no row locks: there the second relay waits for the first's commit.
@pytest.mark.parametrize("backend", ["postgres", "mysql"], indirect=True)
async def test_a_batch_behind_rows_another_relay_holds_waits(engine: AsyncEngine) -> None:
    # A stale relay has the oldest event locked (its transaction still open): the next relay's
    # SKIP LOCKED batch would start after it, so it publishes nothing rather than out of order.
    ids = await _enqueue(engine, 3)
    stream = LocalStream()
    leases = LocalLeases()
    relay = OutboxRelay(session_factory(engine), stream, leases, lease_ttl=1.0, poll=0.02)
    lease = await leases.acquire(LEASE_NAME, 1.0)
    assert lease is not None
    async with session_factory(engine)() as session, session.begin():
        held = await outbox.claim_unpublished(session, 1)
        assert [row.id for row in held] == ids[:1]
        assert await relay.publish_batch(lease) == 0
    assert await stream.read(NFT_EVENTS) == []
    assert await relay.publish_batch(lease) == 3
    assert [e.event.event_id for e in await stream.read(NFT_EVENTS)] == ids


async def test_racing_relays_publish_each_event_once_in_order(
    engine: AsyncEngine, parts: _Backend
) -> None:
    registries = [CollectorRegistry(), CollectorRegistry()]
    relays = [_relay(engine, parts, batch=4, metrics=RelayMetrics(r)) for r in registries]
    stop = asyncio.Event()
    running = [asyncio.create_task(relay.run(stop)) for relay in relays]
    ids: list[int] = []
    try:
        for _ in range(6):
            ids += await _enqueue(engine, 10)
            await asyncio.sleep(0.03)
            await parts.expire_lease()  # hand the lease over mid-stream
        for _ in range(500):
            if await _unpublished(engine) == 0:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.gather(*running)

    entries = await _everything(parts.stream)
    # No crash, so no duplicate: each event went out once, from whichever relay held the lease,
    # in id order overall (so in order per user).
    assert [e.event.event_id for e in entries] == ids
    published = [
        r.get_sample_value("nft_events_published_total", {"type": "unlocked"}) or 0
        for r in registries
    ]
    assert sum(published) == len(ids)


def _cache(parts: _Backend) -> Cache:
    return LocalCache() if parts.redis is None else RedisCache(parts.redis)


async def test_each_user_of_a_batch_has_their_qualification_dropped(
    engine: AsyncEngine, parts: _Backend
) -> None:
    """Whoever wrote the event (the indexer settling a transfer, a burn, an upgrade), the
    relay drops its user's cached qualification as it publishes, before it marks the batch:
    a crash in between drops it again with the batch published again."""
    cache = _cache(parts)
    qualifications = QualificationService(session_factory(engine), cache)
    keys = {user: qualification.cache_key(user) for user in (0, 1, 2, 7)}
    for key in keys.values():
        await cache.set(key, "{}", 300)
    await _enqueue(engine, 4, users=2)  # users 0 and 1

    with pytest.raises(_Crash):
        await _relay(engine, parts, qualifications=qualifications, failpoint=_crash).run_once()
    assert [user for user, key in keys.items() if await cache.get(key)] == [2, 7]

    await cache.set(keys[0], "{}", 300)  # cached again before the events were marked
    assert await _relay(engine, parts, qualifications=qualifications).run_once() == 4
    assert [user for user, key in keys.items() if await cache.get(key)] == [2, 7]


async def test_confirmed_upgrades_are_counted_once_per_event(
    engine: AsyncEngine, parts: _Backend
) -> None:
    """From the one ``upgraded`` event, whoever settled the upgrade; counted once the batch is
    marked, so an event published twice (a crash before the mark) counts once."""
    async with session_factory(engine)() as session, session.begin():
        for user, (old, new) in enumerate([(1, 2), (2, 3), (1, 2)]):
            payload = {"type": "upgraded", "user_id": user, "from_level": old, "to_level": new}
            await outbox.enqueue(session, NFT_EVENTS, "upgraded", payload, user)
        await outbox.enqueue(session, NFT_EVENTS, "burned", {"type": "burned"}, 1)
    registry = CollectorRegistry()
    metrics = MintingMetrics(registry)

    def counted(old: str, new: str) -> float | None:
        labels = {"from_level": old, "to_level": new, "status": "confirmed"}
        return registry.get_sample_value("nft_upgrades_total", labels)

    with pytest.raises(_Crash):
        await _relay(engine, parts, minting_metrics=metrics, failpoint=_crash).run_once()
    assert counted("1", "2") is None  # published, not marked: not counted
    relay = _relay(engine, parts, minting_metrics=metrics)
    assert await relay.run_once() == 4
    assert await relay.run_once() == 0
    assert (counted("1", "2"), counted("2", "3")) == (2, 1)


def test_the_lease_is_renewed_often_enough() -> None:
    with pytest.raises(ConfigError):
        OutboxRelay(None, LocalStream(), LocalLeases(), lease_ttl=1.0, poll=0.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        OutboxRelay(None, LocalStream(), LocalLeases(), batch=0)  # type: ignore[arg-type]
