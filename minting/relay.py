"""The outbox relay: events written with their state change reach the stream, at least once.

One relay publishes at a time: it holds the lease ``outbox-relay`` and renews it before every
batch, right before publishing, so a relay that lost the lease (a standby took over while it
stalled) stops publishing. A batch is the oldest unpublished outbox rows in id order, locked
in one transaction that publishes them, in order, and then marks them published:

- a crash after publishing and before the commit leaves the rows unpublished, so they are
  published again with the same ``event_id``: a duplicate, never a loss. Consumers dedupe;
- a batch that does not start at the oldest unpublished event (a stale relay still holds the
  older rows locked) is not published: the next try waits its turn, so order holds even while
  two relays overlap.

Two things hang on the events because every status change writes exactly one of them, whoever
made it (the minting engine, the indexer, the reconciler) and in whatever process:

- the cached qualification (``nft_qual:{user_id}``) of each user a batch concerns is dropped
  after the batch is published and before it is marked, so a failed drop leaves the batch to
  be published (and dropped) again: at least once, like the events. The indexer may not know
  the minting engine's cache (layers); the relay, in the minting package, does. The row is
  visible to the relay only once the change is committed, so an answer computed after the
  drop sees the change; a staleness longer than a relay poll needs a check that read the rows
  before the commit and stored its answer after the drop (that one lives until its TTL, as
  with a claim's own invalidation);
- ``nft_upgrades_total{status="confirmed"}`` counts each ``upgraded`` event once, after the
  commit that marks it published: an event published again after a crash before that commit
  is counted by the relay that marks it, once. The minting engine counts the other statuses,
  which only it decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
from collections.abc import Callable
from typing import Final

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import ConfigError, ConflictError, RetryableStoreError
from minting.events import Event, EventStream
from minting.metrics import MintingMetrics
from minting.qualification import QualificationService
from store.leases import Lease, Leases
from store.repos import outbox
from store.tables import EventOutbox

LEASE_NAME: Final = "outbox-relay"

_log = structlog.stdlib.get_logger(__name__)

Failpoint = Callable[[str], None]


def _no_failpoint(name: str) -> None:
    return None


class RelayLeaseHeld(ConflictError):
    """Another relay holds the lease (``--once`` does not wait for it)."""

    code = "RELAY_LEASE_HELD"


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "nft_events_published_total",
            "Outbox events published to the event stream (a republished duplicate counts again).",
            ["type"],  # the event type: a fixed set
            registry=registry,
        )
        self.backlog = Gauge(
            "nft_event_outbox_backlog",
            "Outbox events not yet published, as the relay last counted them.",
            registry=registry,
        )
        self.leader = Gauge(
            "nft_event_relay_leader",
            "1 while this relay holds the outbox-relay lease.",
            registry=registry,
        )


class OutboxRelay:
    """Publishes the outbox to ``stream``. ``run`` leads or stands by until stopped;
    ``run_once`` drains what is there under the lease and returns.

    ``failpoint(name)`` is called after a batch is published and before it is marked
    (``"published"``), so tests can crash the relay exactly there.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        stream: EventStream,
        leases: Leases,
        *,
        batch: int = 100,
        lease_ttl: float = 10.0,
        poll: float = 0.5,
        backoff: float = 1.0,
        metrics: RelayMetrics | None = None,
        qualifications: QualificationService | None = None,
        minting_metrics: MintingMetrics | None = None,
        owner: str | None = None,
        failpoint: Failpoint = _no_failpoint,
    ) -> None:
        if batch < 1:
            raise ConfigError(f"the relay batch must be at least 1, not {batch}")
        # The lease is renewed once per batch or idle poll: three chances before it lapses.
        if not 0 < poll * 3 <= lease_ttl:
            raise ConfigError(f"the relay poll ({poll} s) must be at most a third of its lease")
        self._sessions = sessions
        self._stream = stream
        self._leases = leases
        self._batch = batch
        self._lease_ttl = lease_ttl
        self._poll = poll
        self._backoff = backoff
        self._metrics = metrics
        self._qualifications = qualifications
        self._minting_metrics = minting_metrics
        self._owner = owner
        self._failpoint = failpoint

    # -- loops --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Lead (or stand by) until ``stop`` is set; the batch in hand is finished first."""
        while not stop.is_set():
            try:
                lease = await self._leases.acquire(LEASE_NAME, self._lease_ttl, self._owner)
            except RetryableStoreError as exc:
                _log.warning("relay.lease_store_unavailable", error=exc.message)
                await _wait(stop, self._backoff)
                continue
            if lease is None:
                await _wait(stop, self._poll)
                continue
            _log.info("relay.leading", token=lease.token)
            try:
                await self._lead(lease, stop)
            finally:
                await self._release(lease)

    async def run_once(self, stop: asyncio.Event | None = None) -> int:
        """Publish every unpublished event under the lease; returns how many."""
        lease = await self._leases.acquire(LEASE_NAME, self._lease_ttl, self._owner)
        if lease is None:
            raise RelayLeaseHeld("another outbox relay holds the lease; try again later")
        total = 0
        try:
            while stop is None or not stop.is_set():
                published = await self.publish_batch(lease)
                if not published:  # done, waiting on another relay's rows, or lease lost
                    break
                total += published
            await self._observe()
        finally:
            await self._release(lease)
        return total

    async def _lead(self, lease: Lease, stop: asyncio.Event) -> None:
        if self._metrics is not None:
            self._metrics.leader.set(1)
        while not stop.is_set():
            try:
                published = await self.publish_batch(lease)
                await self._observe()
            except RetryableStoreError as exc:
                # Redis or the database is away: nothing was marked, the batch comes again.
                _log.warning("relay.retry", error=exc.message)
                await _wait(stop, self._backoff)
                continue
            if published is None:
                _log.warning("relay.lease_lost", token=lease.token)
                return
            if published < self._batch:
                await _wait(stop, self._poll)

    # -- one batch ----------------------------------------------------------------------------

    async def publish_batch(self, lease: Lease) -> int | None:
        """Publish and mark the oldest unpublished batch; returns its size, or None (and
        publishes nothing) when the lease is no longer ours."""
        async with self._sessions() as session, session.begin():
            rows = await outbox.claim_unpublished(session, self._batch)
            if rows and not await _starts_at_oldest(session, rows):
                _log.info("relay.waiting_for_older_rows", first=rows[0].id)
                return 0
            # The fence: checked after the rows are ours and right before they go out.
            if not await self._leases.renew(lease, self._lease_ttl):
                return None
            for topic, group in itertools.groupby(rows, key=lambda row: row.topic):
                events = [Event(row.id, row.event_type, row.payload) for row in group]
                await self._stream.publish(topic, events)
            await self._invalidate(rows)
            self._failpoint("published")
            await outbox.mark_published(session, [row.id for row in rows], _now())
        if self._metrics is not None:
            for row in rows:
                self._metrics.published.labels(row.event_type).inc()
        self._count_upgrades(rows)
        if rows:
            _log.debug("relay.published", count=len(rows), last=rows[-1].id)
        return len(rows)

    # -- helpers ------------------------------------------------------------------------------

    async def _invalidate(self, rows: list[EventOutbox]) -> None:
        if self._qualifications is None:
            return
        users = sorted({row.user_id for row in rows if row.user_id is not None})
        if users:
            await self._qualifications.invalidate(*users)

    def _count_upgrades(self, rows: list[EventOutbox]) -> None:
        if self._minting_metrics is None:
            return
        for row in rows:
            if row.event_type == "upgraded":
                levels = (str(row.payload.get("from_level")), str(row.payload.get("to_level")))
                self._minting_metrics.upgrades.labels(*levels, "confirmed").inc()

    async def _observe(self) -> None:
        if self._metrics is None:
            return
        async with self._sessions() as session:
            backlog = (
                await session.execute(
                    select(func.count())
                    .select_from(EventOutbox)
                    .where(EventOutbox.published_at.is_(None))
                )
            ).scalar_one()
        self._metrics.backlog.set(int(backlog))

    async def _release(self, lease: Lease) -> None:
        if self._metrics is not None:
            self._metrics.leader.set(0)
        # An unreachable lease store cannot be told; the lease then lapses by its TTL.
        with contextlib.suppress(RetryableStoreError):
            await self._leases.release(lease)


async def _starts_at_oldest(session: AsyncSession, rows: list[EventOutbox]) -> bool:
    """True when no unpublished event up to the batch's last one is missing from it.

    ``SKIP LOCKED`` passes over rows another transaction holds; publishing after them would
    put later events first. A plain read still sees those rows as unpublished."""
    unpublished = (
        await session.execute(
            select(func.count())
            .select_from(EventOutbox)
            .where(EventOutbox.published_at.is_(None), EventOutbox.id <= rows[-1].id)
        )
    ).scalar_one()
    return int(unpublished) == len(rows)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
