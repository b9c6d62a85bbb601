"""Leader failover: two indexers share the ``indexer`` lease; the leader dies, the standby takes
over once the lease lapses and resumes from the cursors, and the read model holds every change
made while nobody led, each once.

With Redis the leader is a real ``aiw3 indexer run`` process killed with SIGKILL (it never
releases the lease: the standby waits out the TTL); in-process the leader's task is cancelled.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import redis.asyncio as redis
from prometheus_client import CollectorRegistry
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from chain.keys import Signer
from chain.localnet import Localnet
from chain.rpc import RpcClient
from indexer.metrics import IndexerMetrics
from indexer.projection import Projection, Trust
from indexer.runner import Indexer, IndexerConfig
from store.engine import create_engine, session_factory
from store.leases import Leases, LocalLeases, RedisLeases
from store.tables import AssetEvent, AssetRow
from tests.aiw3.cli.test_indexer import _env, _free_port
from tests.services import REDIS_URL

from . import chainops as ops
from .chainops import Deployment

_PATIENCE = 600  # polls of 50 ms: a guard against a hang, not a timing assertion
_TTL = 2.0


def _indexer(rpc: RpcClient, engine: AsyncEngine, d: Deployment, ws_url: str) -> Indexer:
    return Indexer(
        rpc,
        session_factory(engine),
        Projection(Trust(frozenset({str(d.collection)}), frozenset({str(d.system.pubkey())}))),
        IndexerConfig(
            creators=(str(d.system.pubkey()),), ws_url=ws_url, lease_ttl=_TTL, follow_poll=0.5
        ),
        IndexerMetrics(CollectorRegistry()),
    )


async def _owner(engine: AsyncEngine, mint: Pubkey) -> str | None:
    async with session_factory(engine)() as s:
        row = await s.get(AssetRow, str(mint))
        return row.owner if row is not None else None


async def _until_owner(engine: AsyncEngine, mint: Pubkey, owner: Pubkey) -> None:
    for _ in range(_PATIENCE):
        if await _owner(engine, mint) == str(owner):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{mint} never showed owner {owner}")


async def _history_is_whole(engine: AsyncEngine, expected: dict[str, int]) -> None:
    """Each (kind) count as expected, and no (signature, instruction, mint, kind) twice."""
    async with session_factory(engine)() as s:
        kinds = dict(
            (await s.execute(select(AssetEvent.kind, func.count()).group_by(AssetEvent.kind))).all()
        )
        doubled = (
            await s.execute(
                select(AssetEvent.signature, AssetEvent.mint, AssetEvent.kind)
                .group_by(AssetEvent.signature, AssetEvent.mint, AssetEvent.kind)
                .having(func.count() > 1)
            )
        ).all()
    assert doubled == []
    assert {k: kinds.get(k, 0) for k in expected} == expected


async def _while_nobody_leads(
    client: AsyncClient, d: Deployment, alice: Keypair, first: Pubkey, bob: Pubkey
) -> Pubkey:
    """Changes the standby must find: a new mint and a transfer of the first NFT."""
    second, _ = await ops.mint(client, d.system, alice.pubkey(), collection=d.collection)
    await ops.transfer_checked(client, alice, first, bob)
    return second


async def test_standby_takes_over_a_killed_leader_process(
    tmp_path: Path, localnet: Localnet, solana_client: AsyncClient, redis_client: redis.Redis
) -> None:
    client = solana_client
    d = await ops.deploy(client)
    env = {
        **os.environ,
        **await _env(tmp_path, localnet, Signer(d.system)),
        "AIW3_COLLECTIONS": str(d.collection),
        "AIW3_REDIS_URL": REDIS_URL,
        "AIW3_INDEXER_PORT": str(port := _free_port()),
        "AIW3_INDEXER_LEASE_TTL": str(_TTL),
    }
    engine = create_engine(env["AIW3_DATABASE_URL"])
    leader = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiw3",
        "indexer",
        "run",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with RpcClient([localnet.rpc_url], metrics=CollectorRegistry()) as rpc:
        standby = _indexer(rpc, engine, d, localnet.ws_url)
        stop = asyncio.Event()
        task: asyncio.Task[None] | None = None
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                for _ in range(_PATIENCE):
                    try:
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.05)
            # The process leads (it is ready); the standby waits on the lease.
            task = asyncio.create_task(standby.run(RedisLeases(redis_client), stop))
            alice, bob = await ops.fund(client), Keypair().pubkey()
            first, _ = await ops.mint(client, d.system, alice.pubkey(), collection=d.collection)
            await _until_owner(engine, first, alice.pubkey())
            assert standby.ready is False

            leader.send_signal(signal.SIGKILL)
            await leader.wait()
            second = await _while_nobody_leads(client, d, alice, first, bob)

            await _until_owner(engine, first, bob)
            await _until_owner(engine, second, alice.pubkey())
            await _history_is_whole(engine, {"mint": 2, "transfer": 1})
        finally:
            if leader.returncode is None:
                leader.kill()
                await leader.wait()
            stop.set()
            if task is not None:
                await asyncio.wait_for(task, 30)
            await engine.dispose()


async def test_standby_takes_over_in_process(
    localnet: Localnet, solana_client: AsyncClient, rpc: RpcClient, engine: AsyncEngine
) -> None:
    client = solana_client
    d = await ops.deploy(client)
    leases: Leases = LocalLeases()
    leader = _indexer(rpc, engine, d, localnet.ws_url)
    standby = _indexer(rpc, engine, d, localnet.ws_url)
    stop_leader, stop_standby = asyncio.Event(), asyncio.Event()
    leading = asyncio.create_task(leader.run(leases, stop_leader))
    for _ in range(_PATIENCE):
        if leader.ready:
            break
        await asyncio.sleep(0.05)
    waiting = asyncio.create_task(standby.run(leases, stop_standby))
    try:
        alice, bob = await ops.fund(client), Keypair().pubkey()
        first, _ = await ops.mint(client, d.system, alice.pubkey(), collection=d.collection)
        await _until_owner(engine, first, alice.pubkey())
        assert standby.ready is False

        leading.cancel()
        await asyncio.gather(leading, return_exceptions=True)
        second = await _while_nobody_leads(client, d, alice, first, bob)

        await _until_owner(engine, first, bob)
        await _until_owner(engine, second, alice.pubkey())
        await _history_is_whole(engine, {"mint": 2, "transfer": 1})
    finally:
        stop_standby.set()
        await asyncio.wait_for(waiting, 30)
