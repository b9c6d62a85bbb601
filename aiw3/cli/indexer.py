"""``aiw3 indexer run | backfill | add MINT...``: the chain listener.

Trust comes from the settings and the database: ``AIW3_CREATORS`` (else the system wallet) for
Metaplex, ``AIW3_COLLECTIONS`` plus the collections the minting engine recorded for Token-2022.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import redis.asyncio as redis
import typer
from prometheus_client import CollectorRegistry
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aiw3.cli._common import console, fail, settings_or_exit, wait_for_stop_signal
from aiw3.health import serve_health
from aiw3.settings import Settings
from chain.keys import load_keypair
from chain.pubkeys import parse_pubkey
from chain.rpc import RpcClient, endpoints_from_urls
from core.errors import AIW3Error
from indexer.metrics import IndexerMetrics
from indexer.projection import Projection, Trust
from indexer.runner import Indexer, IndexerConfig
from store.engine import create_engine, session_factory
from store.leases import Leases, LocalLeases, RedisLeases
from store.repos import collections

app = typer.Typer(help="The chain listener: index AIW3 NFTs into the read model.")


@dataclass
class IndexerResources:
    indexer: Indexer
    leases: Leases
    registry: CollectorRegistry
    trust: Trust


def _system_wallet(settings: Settings) -> str | None:
    # The creator default only needs the wallet's public key; no key is required to index.
    if settings.system_keypair is None:
        return None
    signer = load_keypair(settings.system_keypair.get_secret_value(), source="AIW3_SYSTEM_KEYPAIR")
    return str(signer.pubkey)


@asynccontextmanager
async def resources(settings: Settings) -> AsyncIterator[IndexerResources]:
    async with AsyncExitStack() as stack:
        engine = create_engine(settings.database_url)
        stack.push_async_callback(engine.dispose)
        sessions = session_factory(engine)
        registry = CollectorRegistry()
        rpc = await stack.enter_async_context(
            RpcClient(
                endpoints_from_urls([settings.rpc_url, *settings.rpc_fallback_urls]),
                metrics=registry,
            )
        )
        async with sessions() as session:
            recorded = [c.mint for c in await collections.list_all(session)]
        creators = settings.trusted_creators(_system_wallet(settings))
        trust = Trust(frozenset([*settings.collections, *recorded]), frozenset(creators))
        leases: Leases
        if settings.redis_url:
            client = redis.Redis.from_url(settings.redis_url)
            stack.push_async_callback(client.aclose)
            leases = RedisLeases(client)
        else:
            leases = LocalLeases()
        config = IndexerConfig(
            creators=tuple(creators),
            ws_url=settings.ws_url,
            max_connections=settings.indexer_max_connections,
            lease_ttl=settings.indexer_lease_ttl,
        )
        indexer = Indexer(rpc, sessions, Projection(trust), config, IndexerMetrics(registry))
        yield IndexerResources(indexer, leases, registry, trust)


def _run(work: Any) -> Any:
    try:
        return asyncio.run(work)
    except AIW3Error as exc:
        fail(exc.message, code=exc.code)


@app.command()
def run() -> None:
    """Lead (or stand by), backfill, then follow the chain live until SIGINT/SIGTERM; serves
    ``/metrics``, ``/livez`` and ``/readyz`` on AIW3_INDEXER_HOST:AIW3_INDEXER_PORT."""
    settings = settings_or_exit()

    async def work() -> None:
        async with resources(settings) as res:
            indexer = res.indexer
            server = await serve_health(
                res.registry,
                alive=indexer.alive,
                ready=lambda: indexer.ready,
                host=settings.indexer_host,
                port=settings.indexer_port,
            )
            stop = asyncio.Event()
            task = asyncio.create_task(res.indexer.run(res.leases, stop))
            waiter = asyncio.create_task(wait_for_stop_signal())
            try:
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.set()
                waiter.cancel()
                await task  # re-raises what stopped the loop, if anything did
                server.close()
                await server.wait_closed()

    _run(work())


@app.command()
def backfill() -> None:
    """Crawl every followed address from its cursor to now, with a progress bar; a creator or
    collection added to the settings is picked up (its history crawled, every asset judged
    again)."""
    settings = settings_or_exit()

    async def work() -> dict[str, int]:
        async with resources(settings) as res:
            rejudged = await res.indexer.retrust()
            columns = (
                TextColumn("backfill"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("addresses"),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=console, transient=False) as bar:
                task = bar.add_task("backfill", total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                indexed = await res.indexer.backfill(progress)
            await res.indexer.check_finality()  # prune what is final, undo what a fork dropped
            return {"transactions": indexed, "rejudged": rejudged}

    typer.echo(json.dumps(_run(work())))


@app.command()
def add(
    mints: Annotated[list[str], typer.Argument(help="Mint addresses (base58), any standard.")],
) -> None:
    """Read these mints from the chain now and upsert them (``genuine`` by the rules); a running
    indexer follows them from then on. Prints the stored rows as JSON."""
    settings = settings_or_exit()
    try:
        keys = [str(parse_pubkey(m, field="mint")) for m in mints]
    except AIW3Error as exc:
        fail(exc.message, code=exc.code, exit_code=2)

    async def work() -> list[dict[str, Any]]:
        async with resources(settings) as res:
            rows = await res.indexer.add(keys)
            return [
                {
                    "mint": r.mint,
                    "standard": r.standard,
                    "owner": r.owner,
                    "genuine": r.genuine,
                    "burnt": r.burnt,
                    "name": r.name,
                    "level": r.level,
                    "slot": r.last_slot,
                }
                for r in rows
            ]

    typer.echo(json.dumps(_run(work()), indent=2))
