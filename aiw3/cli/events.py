"""``aiw3 events``: the outbox relay that feeds the ``nft-events`` stream."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as redis
import structlog
import typer

from aiw3.cli._common import console, fail, settings_or_exit
from aiw3.health import serve_health
from aiw3.metrics import Metrics
from aiw3.settings import Settings
from core.errors import AIW3Error, ConfigError
from minting.cache import RedisCache
from minting.events import EventStream, LocalStream, RedisStream
from minting.qualification import QualificationService
from minting.relay import OutboxRelay
from store.engine import create_engine, session_factory
from store.leases import Leases, LocalLeases, RedisLeases

_log = structlog.stdlib.get_logger(__name__)

app = typer.Typer(help="The NFT event stream: publish the outbox.", no_args_is_help=True)


@asynccontextmanager
async def stream_and_leases(settings: Settings) -> AsyncIterator[tuple[EventStream, Leases]]:
    """Redis Streams and leases with ``AIW3_REDIS_URL``; in-process ones without it (for a
    relay that runs inside ``aiw3 up``, beside its readers)."""
    if not settings.redis_url:
        yield LocalStream(), LocalLeases()
        return
    client = redis.Redis.from_url(settings.redis_url)
    try:
        yield RedisStream(client), RedisLeases(client)
    finally:
        await client.aclose()


async def _relay(settings: Settings, once: bool, host: str, port: int) -> int:
    if not settings.redis_url:
        # An in-process stream in a process of its own reaches no reader: the events would
        # be marked published and seen by nobody.
        raise ConfigError(
            "a separate relay publishes to Redis: set AIW3_REDIS_URL (without Redis the "
            "relay runs in-process inside `aiw3 up`)",
            code="relay_needs_redis",
        )
    engine = create_engine(settings.database_url)
    # The cache the minting engine's processes share: each event's user gets their cached
    # qualification dropped, whoever (the engine or the indexer) made the change.
    cache_client = redis.Redis.from_url(settings.redis_url)
    try:
        async with stream_and_leases(settings) as (stream, leases):
            sessions = session_factory(engine)
            metrics = Metrics()
            relay = OutboxRelay(
                sessions,
                stream,
                leases,
                metrics=metrics.relay,
                qualifications=QualificationService(sessions, RedisCache(cache_client)),
                minting_metrics=metrics.minting,
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            if once:
                return await relay.run_once(stop)
            # Scraped like the worker and the indexer: this process counts confirmed upgrades
            # (nft_upgrades_total) and the outbox backlog, which nobody else exports.
            running = asyncio.ensure_future(relay.run(stop))
            server = await serve_health(
                metrics.registry,
                alive=lambda: not running.done(),
                ready=lambda: not running.done(),
                host=host,
                port=port,
            )
            _log.info("relay.started", host=host, port=server.sockets[0].getsockname()[1])
            try:
                await running
            finally:
                server.close()
            return 0
    finally:
        await cache_client.aclose()
        await engine.dispose()


@app.command()
def relay(
    once: bool = typer.Option(False, "--once", help="Publish what is there, then exit."),
    host: str = typer.Option("127.0.0.1", "--host", help="Where /metrics and health listen."),
    port: int = typer.Option(
        9104, "--port", min=0, max=65535, help="Port of /metrics, /livez, /readyz (0: any)."
    ),
) -> None:
    """Publish outbox events to the Redis Stream until stopped (SIGTERM finishes the batch
    in hand). One relay leads at a time; others stand by. Without --once, serves /metrics,
    /livez and /readyz on --host:--port."""
    settings = settings_or_exit()
    try:
        published = asyncio.run(_relay(settings, once, host, port))
    except AIW3Error as exc:
        fail(exc.message, code=exc.code)
    except OSError as exc:
        fail(f"{exc} (is --host:--port free?)", code="start_failed")
    if once:
        console.print(f"published {published} events", highlight=False)
