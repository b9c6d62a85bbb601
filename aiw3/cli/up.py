"""``aiw3 up``: everything on this machine with embedded defaults, until Ctrl-C.

Parts start in dependency order inside one ``AsyncExitStack`` and stop in reverse: the
database schema, the local chain (when the configured RPC address is on this machine), the
minting resources, the deployment's collection, the demo data, then the long-running parts
side by side: the mint worker, the chain listener, the outbox relay and a printer of the
events it publishes. Each part is the same object its own command runs (``aiw3 mint worker``,
``aiw3 indexer run``, ``aiw3 events relay``); here they share one process, so without Redis
the relay's in-process stream has a reader.

The local chain starts empty on every run. A database that recorded an earlier chain's
collection is therefore stale: an SQLite file is set aside (renamed, never deleted) and a new
one migrated; a server database is refused with what to do.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable
from contextlib import AsyncExitStack, suppress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from aiw3 import demo
from aiw3.cli import indexer as indexer_cli
from aiw3.cli import mint as mint_cli
from aiw3.cli._common import console, fail, settings_or_exit, wait_for_stop_signal
from aiw3.cli.events import stream_and_leases
from aiw3.health import serve_health
from aiw3.settings import Settings
from chain.localnet import Localnet, LocalnetConfig
from core.errors import AIW3Error, ConfigError
from minting.events import START, EventStream
from minting.relay import OutboxRelay, RelayMetrics
from store import migrate
from store.engine import create_engine, session_factory
from store.repos.transitions import NFT_EVENTS
from store.tables import TrustedCollection

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_SYSTEM_KEYPAIR = demo.STATE_DIR / "system-keypair.json"


async def _migrate(url: str, *, fresh_chain: bool) -> str | None:
    """Bring the schema to head; with a fresh local chain, set a stale SQLite file aside."""
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        async with session_factory(engine)() as session:
            recorded = (
                await session.execute(select(func.count()).select_from(TrustedCollection))
            ).scalar_one()
    finally:
        await engine.dispose()
    if fresh_chain and recorded:
        _set_aside(url)
        return await _migrate(url, fresh_chain=False)
    engine = create_engine(url)
    try:
        return await migrate.current_revision(engine)
    finally:
        await engine.dispose()


def _set_aside(url: str) -> None:
    parsed = make_url(url)
    if not parsed.get_backend_name() == "sqlite" or not parsed.database:
        raise ConfigError(
            "the database holds the state of an earlier local chain (the local chain starts "
            "empty on every run): point AIW3_DATABASE_URL at an empty database, or at SQLite",
            code="stale_database",
        )
    file = Path(parsed.database)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    aside = file.with_name(f"{file.name}.{stamp}.old")
    file.rename(aside)
    console.print(
        f"database  earlier chain's state moved to {aside}", highlight=False, soft_wrap=True
    )


def _local_chain(settings: Settings) -> Localnet | None:
    """A local chain listening where the settings point, or None for a remote RPC."""
    rpc, ws = urlsplit(settings.rpc_url), urlsplit(settings.ws_url)
    if rpc.hostname not in _LOOPBACK or ws.hostname not in _LOOPBACK:
        return None
    return Localnet(
        LocalnetConfig(),
        host=rpc.hostname or "127.0.0.1",
        rpc_port=rpc.port or 8899,
        ws_port=ws.port or 8900,
    )


def _with_system_keypair(settings: Settings) -> Settings:
    """The settings with a development system keypair when none is configured (local only)."""
    if settings.system_keypair is not None:
        return settings
    demo.keypair(_SYSTEM_KEYPAIR)
    console.print(
        f"keys      development system keypair {_SYSTEM_KEYPAIR}", highlight=False, soft_wrap=True
    )
    return settings.model_copy(update={"system_keypair": SecretStr(str(_SYSTEM_KEYPAIR))})


async def _print_events(stream: EventStream, stop: asyncio.Event) -> None:
    """Print every event the relay publishes (the in-process stream's only reader)."""
    after = START
    while not stop.is_set():
        entries = await stream.read(NFT_EVENTS, after)
        for entry in entries:
            after = entry.entry_id
            payload = json.dumps(entry.event.payload, separators=(",", ":"), sort_keys=True)
            console.print(
                f"event     {entry.event.event_type:<12} {payload}", highlight=False, soft_wrap=True
            )
        if not entries:
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)


async def _run(settings: Settings) -> None:
    chain = _local_chain(settings)
    revision = await _migrate(settings.database_url, fresh_chain=chain is not None)
    console.print(
        f"database  {settings.database_url}  (schema {revision})", highlight=False, soft_wrap=True
    )
    async with AsyncExitStack() as stack:
        if chain is None:
            console.print(f"chain     remote rpc {urlsplit(settings.rpc_url).hostname}")
        else:
            await stack.enter_async_context(chain)
            console.print(
                f"chain     rpc {chain.rpc_url}  ws {chain.ws_url}", highlight=False, soft_wrap=True
            )
            settings = _with_system_keypair(settings)
        res = await stack.enter_async_context(mint_cli.resources(settings))
        if chain is not None:
            await demo.fund(res.rpc, res.system, 1_000 * demo.SOL)
        worker = await mint_cli.build_worker(settings, res)  # ensures the collection first
        # The listener reads the trusted collections when it starts: after the worker's.
        listener = await stack.enter_async_context(indexer_cli.resources(settings))
        stream, leases = await stack.enter_async_context(stream_and_leases(settings))
        # The relay shares the minting resources' cache (in-process without Redis: this is
        # its only process) to drop the qualification of each user an event concerns, and
        # their upgrade counter, which it counts confirmed upgrades on.
        relay = OutboxRelay(
            res.sessions,
            stream,
            leases,
            metrics=RelayMetrics(res.registry),
            qualifications=res.qualifications,
            minting_metrics=res.metrics,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        started = loop.time()
        servers = [
            await serve_health(
                res.registry,
                alive=lambda: loop.time() - max(worker.alive_at, started) < 120.0,
                ready=lambda: worker.ready,
                host=settings.worker_host,
                port=settings.worker_port,
            ),
            await serve_health(
                listener.registry,
                alive=listener.indexer.alive,
                ready=lambda: listener.indexer.ready,
                host=settings.indexer_host,
                port=settings.indexer_port,
            ),
        ]
        for server in servers:
            stack.callback(server.close)
        worker_port, indexer_port = (s.sockets[0].getsockname()[1] for s in servers)
        console.print(
            f"worker    metrics http://{settings.worker_host}:{worker_port}/metrics  "
            f"health /livez /readyz",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            f"indexer   metrics http://{settings.indexer_host}:{indexer_port}/metrics  "
            f"health /livez /readyz",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            f"events    stream {NFT_EVENTS} ({'redis' if settings.redis_url else 'in-process'})",
            highlight=False,
            soft_wrap=True,
        )
        parts: list[Awaitable[None]] = [
            worker.run(stop),
            listener.indexer.run(listener.leases, stop),
            relay.run(stop),
            _print_events(stream, stop),
        ]
        tasks = [asyncio.ensure_future(part) for part in parts]
        if chain is not None:
            for user in await demo.seed(res.sessions, res.claims()):
                console.print(
                    f"demo      {user.name:<6} {user.wallet}  claim: {user.claim}  "
                    f"(keypair {user.keypair_file})",
                    highlight=False,
                    soft_wrap=True,
                )
        signal = asyncio.ensure_future(wait_for_stop_signal())
        await asyncio.sleep(0)  # its handlers are in place before we say we are running
        console.print("running; Ctrl-C to stop")
        try:
            await asyncio.wait([signal, *tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.set()
            signal.cancel()
            # Each part finishes the step in hand; the first failure is re-raised.
            results = await asyncio.gather(*tasks, return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise failures[0]
    console.print("stopped")


def up() -> None:
    """Migrate the database, start every part of the service (with demo data on the local
    chain) and print where they listen."""
    settings = settings_or_exit()
    try:
        asyncio.run(_run(settings))
    except AIW3Error as exc:
        fail(exc.message, code=exc.code)
    except OSError as exc:
        fail(
            f"{exc}. Check AIW3_DATABASE_URL, or free the ports of AIW3_RPC_URL/AIW3_WS_URL, "
            "AIW3_WORKER_PORT and AIW3_INDEXER_PORT.",
            code="start_failed",
        )
