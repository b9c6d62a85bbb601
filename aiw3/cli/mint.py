"""``aiw3 mint``: the sender worker, claims, upgrades, activations and operator actions on mint
operations. What the API will call prints JSON; an error prints one line with its code."""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime as dt
import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
import structlog
import typer
from prometheus_client import CollectorRegistry
from solders.pubkey import Pubkey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aiw3.cli._common import fail, settings_or_exit
from aiw3.health import serve_health
from aiw3.pinning import build_pinner
from aiw3.settings import Settings
from chain.keys import Signer
from chain.rpc import RpcClient, endpoints_from_urls
from chain.standards import AssetStandard, get_standard
from core.errors import AIW3Error, InputError
from core.types import StandardName
from minting import operations
from minting.activation import Activations
from minting.airdrop import Airdrops
from minting.cache import LocalCache, LocalLocks, Locks, RedisCache, RedisLocks
from minting.claims import Claims
from minting.collection import ensure_collection
from minting.ipfs import Pinner, upload_histogram
from minting.keys import MintKeys
from minting.metadata import TierRef, pin_metadata
from minting.metrics import MintingMetrics
from minting.qualification import QualificationService
from minting.upgrades import Upgrades
from minting.worker import FAILPOINTS, Failpoint, MintWorker
from store.engine import create_engine, session_factory
from store.repos import tiers

app = typer.Typer(
    help="Mint AIW3 NFTs: claims, the sender worker, operations.", no_args_is_help=True
)


_log = structlog.stdlib.get_logger(__name__)


def mint_keys(settings: Settings, system: Signer) -> MintKeys:
    """The configured mint secret, or the development one derived from the system wallet."""
    if settings.mint_secret is None:
        return MintKeys.development(system)
    secret = settings.mint_secret.get_secret_value().encode()
    return MintKeys({settings.mint_secret_version: secret}, settings.mint_secret_version)


@dataclass
class Resources:
    sessions: async_sessionmaker[AsyncSession]
    rpc: RpcClient
    system: Signer
    keys: MintKeys
    standard: AssetStandard
    locks: Locks
    qualifications: QualificationService
    metrics: MintingMetrics
    registry: CollectorRegistry
    pinner: Pinner

    def claims(self) -> Claims:
        return Claims(
            self.sessions,
            self.keys,
            standard=self.standard.name,
            locks=self.locks,
            qualifications=self.qualifications,
            metrics=self.metrics,
        )


@asynccontextmanager
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    """Database, RPC, keys and cache of one command, closed on the way out."""
    system = settings.system_signer()
    async with AsyncExitStack() as stack:
        engine = create_engine(settings.database_url)
        stack.push_async_callback(engine.dispose)
        registry = CollectorRegistry()
        rpc = await stack.enter_async_context(
            RpcClient(
                endpoints_from_urls([settings.rpc_url, *settings.rpc_fallback_urls]),
                metrics=registry,
            )
        )
        sessions = session_factory(engine)
        pinner = build_pinner(settings, histogram=upload_histogram(registry))
        stack.push_async_callback(pinner.aclose)
        locks: Locks
        if settings.redis_url:
            client = redis.Redis.from_url(settings.redis_url)
            stack.push_async_callback(client.aclose)
            locks, cache = RedisLocks(client), RedisCache(client)
        else:
            locks, cache = LocalLocks(), LocalCache()  # type: ignore[assignment]
        yield Resources(
            sessions=sessions,
            rpc=rpc,
            system=system,
            keys=mint_keys(settings, system),
            standard=get_standard(settings.asset_standard),
            locks=locks,
            qualifications=QualificationService(sessions, cache),
            metrics=MintingMetrics(registry),
            registry=registry,
            pinner=pinner,
        )


async def _collection(res: Resources) -> Pubkey | None:
    """The deployment's collection (created once): every Token-2022 NFT joins it."""
    if res.standard.name != StandardName.TOKEN2022:
        return None
    return await ensure_collection(res.sessions, res.rpc, res.system, res.keys, res.standard)


async def _tier_uris(res: Resources) -> dict[int, str]:
    """The metadata uri of each tier level, pinned (the same bytes give the same CID, so a
    repeat pins nothing new)."""
    async with res.sessions() as session:
        rows = await tiers.list_tiers(session)
    return {t.level: await pin_metadata(res.pinner, TierRef(t.level, t.name)) for t in rows}


def _no_uri(level: int) -> str:
    raise AIW3Error("the worker records no upgrade", code="config_error")


def _upgrades(
    settings: Settings,
    res: Resources,
    collection: Pubkey | None,
    uris: dict[int, str] | None = None,
) -> Upgrades:
    return Upgrades(
        res.sessions,
        res.rpc,
        res.system,
        res.keys,
        res.standard,
        locks=res.locks,
        uri_for=_no_uri if uris is None else uris.__getitem__,
        collection=collection,
        qualifications=res.qualifications,
        metrics=res.metrics,
        compute_unit_limit=settings.cu_limit,
        compute_unit_price=settings.cu_price_microlamports,
    )


async def build_worker(
    settings: Settings, res: Resources, failpoint: Failpoint = lambda _: None
) -> MintWorker:
    """The sender worker of these resources, after the collection exists (Token-2022)."""
    collection = await _collection(res)
    return MintWorker(
        res.sessions,
        res.rpc,
        res.system,
        res.keys,
        res.standard,
        pinner=res.pinner,
        collection=collection,
        metrics=res.metrics,
        batch=settings.worker_batch,
        compute_unit_limit=settings.cu_limit,
        compute_unit_price=settings.cu_price_microlamports,
        failpoint=failpoint,
        # Upgrades the wallet sent itself, or left unsigned until they expired, are settled
        # from the worker's loop (it only reads the chain for them).
        upgrades=_upgrades(settings, res, collection),
    )


def _run(settings: Settings, work: Any) -> Any:
    try:
        return asyncio.run(work(settings))
    except AIW3Error as exc:
        fail(exc.message, code=exc.code)


def _print(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _failpoint(name: str | None) -> Failpoint:
    """A failpoint that SIGKILLs this process at ``name`` (tests of crash safety only)."""
    if name is None:
        return lambda _: None
    if name not in FAILPOINTS:
        fail(f"AIW3_FAILPOINT must be one of {', '.join(FAILPOINTS)}", code="config_error")
    _log.warning("mint.failpoint_armed", failpoint=name)

    def hit(reached: str) -> None:
        if reached == name:
            os.kill(os.getpid(), signal.SIGKILL)

    return hit


@app.command()
def worker(
    once: bool = typer.Option(
        False, "--once", help="Finish every unfinished operation, then exit (0 when drained)."
    ),
    within: float | None = typer.Option(
        None, "--within", help="With --once: give up (exit 1) after this many seconds."
    ),
) -> None:
    """Send recorded mints to the chain until stopped (SIGTERM finishes the step in hand).
    Serves /metrics, /livez and /readyz on AIW3_WORKER_HOST:AIW3_WORKER_PORT."""
    settings = settings_or_exit()
    failpoint = _failpoint(settings.failpoint)

    async def work(settings: Settings) -> bool:
        async with resources(settings) as res:
            mint_worker = await build_worker(settings, res, failpoint)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            started = loop.time()
            server = await serve_health(
                res.registry,
                # Alive while the loop turns (a step may wait on a slow RPC: 120 s of grace).
                alive=lambda: loop.time() - max(mint_worker.alive_at, started) < 120.0,
                ready=lambda: mint_worker.ready,
                host=settings.worker_host,
                port=settings.worker_port,
            )
            port = server.sockets[0].getsockname()[1]
            _log.info("mint.worker_started", host=settings.worker_host, port=port, once=once)
            try:
                if once:
                    drained = await mint_worker.run_once(within=within, stop=stop)
                    await mint_worker.settle_upgrades()
                    return drained
                await mint_worker.run(stop)
                return True
            finally:
                server.close()
                _log.info("mint.worker_stopped")

    if not _run(settings, work):
        fail("unfinished operations remain", code="not_drained")


@app.command()
def claim(wallet: str = typer.Option(..., "--wallet", help="The user's wallet (base58).")) -> None:
    """Claim the user's level-1 NFT; prints the mint operation as JSON."""
    settings = settings_or_exit()

    async def work(settings: Settings) -> dict[str, Any]:
        async with resources(settings) as res:
            outcome = await res.claims().claim(wallet)
            return {"created": outcome.created, **operations.describe(outcome.operation)}

    _print(_run(settings, work))


@app.command()
def status(
    wallet: str | None = typer.Option(None, "--wallet", help="Operations minting to this wallet."),
    operation: int | None = typer.Option(None, "--operation", help="One operation by id."),
) -> None:
    """Operations by state, or the operations of one wallet, or one operation (JSON)."""
    settings = settings_or_exit()

    async def work(settings: Settings) -> Any:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                if operation is not None:
                    return operations.describe(await operations.get(session, operation))
                if wallet is not None:
                    return [
                        operations.describe(o) for o in await operations.for_wallet(session, wallet)
                    ]
                return {"operations": await operations.counts(session)}
        finally:
            await engine.dispose()

    _print(_run(settings, work))


@app.command()
def retry(operation: int = typer.Argument(..., help="The operation's id.")) -> None:
    """Make a stuck (unfinished) operation due now."""
    settings = settings_or_exit()

    async def work(settings: Settings) -> Any:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session, session.begin():
                op = await operations.retry(session, operation, dt.datetime.now(dt.UTC))
                return operations.describe(op)
        finally:
            await engine.dispose()

    _print(_run(settings, work))


@app.command()
def cancel(operation: int = typer.Argument(..., help="The operation's id.")) -> None:
    """Fail an operation that provably never landed (its NFT becomes failed)."""
    settings = settings_or_exit()

    async def work(settings: Settings) -> Any:
        async with resources(settings) as res, res.sessions() as session, session.begin():
            op = await operations.cancel(session, res.rpc, operation, dt.datetime.now(dt.UTC))
            return operations.describe(op)

    _print(_run(settings, work))


@app.command()
def airdrop(
    wallet: str = typer.Option(..., "--wallet", help="The winner's wallet (base58)."),
    level: int = typer.Option(..., "--level", help="The competition level (100: Trophy Breeder)."),
    award: str = typer.Option(..., "--award", help="The award's id: one NFT per award."),
) -> None:
    """Award a competition NFT; prints the mint operation as JSON (the worker mints it)."""
    settings = settings_or_exit()

    async def work(settings: Settings) -> dict[str, Any]:
        async with resources(settings) as res:
            airdrops = Airdrops(res.sessions, res.keys, standard=res.standard.name)
            outcome = await airdrops.airdrop(wallet, level, award)
            return {"created": outcome.created, **operations.describe(outcome.operation)}

    _print(_run(settings, work))


@app.command()
def upgrade(
    wallet: str = typer.Option(..., "--wallet", help="The user's wallet (base58)."),
) -> None:
    """Ask the user's upgrade to the next level; prints the request and the transaction
    (base64, signed by the system keys) for the owner to sign, as JSON."""
    settings = settings_or_exit()

    async def work(settings: Settings) -> dict[str, Any]:
        async with resources(settings) as res:
            upgrades = _upgrades(settings, res, await _collection(res), await _tier_uris(res))
            return dataclasses.asdict(await upgrades.request(wallet))

    _print(_run(settings, work))


@app.command("upgrade-submit")
def upgrade_submit(
    transaction: str = typer.Argument(..., help="The upgrade transaction signed by the owner."),
) -> None:
    """Take back an upgrade transaction the owner signed (base64) and send it; prints the
    request's state as JSON."""
    settings = settings_or_exit()
    try:
        signed = base64.b64decode(transaction, validate=True)
    except binascii.Error:
        fail("the transaction is not base64", code=InputError.code)

    async def work(settings: Settings) -> dict[str, Any]:
        async with resources(settings) as res:
            return dataclasses.asdict(await _upgrades(settings, res, None).submit(signed))

    _print(_run(settings, work))


@app.command()
def activate(
    mint: str = typer.Option(..., "--mint", help="The NFT's mint address."),
    wallet: str | None = typer.Option(
        None, "--wallet", help="Who must hold it (default: its holder on chain)."
    ),
) -> None:
    """Print the unsigned activation transaction of an NFT (base64, for its owner to sign and
    send), as JSON."""
    settings = settings_or_exit()

    async def work(settings: Settings) -> dict[str, Any]:
        async with resources(settings) as res:
            ticket = await Activations(res.sessions, res.rpc).prepare(wallet, mint)
            return dataclasses.asdict(ticket)

    _print(_run(settings, work))


@app.command("activation-check")
def activation_check(
    signature: str = typer.Argument(..., help="The activation transaction's signature."),
) -> None:
    """Check an activation the owner sent and make the NFT active if the chain says so;
    prints the outcome as JSON."""
    settings = settings_or_exit()

    async def work(settings: Settings) -> dict[str, Any]:
        async with resources(settings) as res:
            outcome = await Activations(res.sessions, res.rpc).confirm_activation(signature)
            return dataclasses.asdict(outcome)

    _print(_run(settings, work))
