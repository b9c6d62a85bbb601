"""The sender worker when things go wrong: RPC outages and 429s, a lagging backup node, an
empty fee wallet, pinning down, a transaction the chain rejects for good.

The chain is the real local chain, behind the fault proxy of ``tests/harness/faults.py`` where
a node misbehaves; Pinata is the one third party, played by an ``httpx.MockTransport``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry
from solders.pubkey import Pubkey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chain.keys import Signer
from chain.localnet import Localnet
from chain.rpc import RpcClient, RpcConfig
from chain.standards import get_standard
from core.types import StandardName
from minting.cache import LocalLocks
from minting.claims import Claims
from minting.ipfs import LocalPinner, PinataPinner, Pinner
from minting.ipfs.unixfs import add
from minting.keys import MintKeys
from minting.metrics import MintingMetrics
from minting.worker import MintWorker
from store.engine import create_engine, session_factory
from store.tables import MintOperation, UserNft
from tests.harness.faults import FaultProxy
from tests.minting.conftest import make_user
from tests.minting.test_worker import _funded, _holdings

STANDARD = get_standard("token2022")
# Give up on a node fast, and never let the breaker hide the outage from the worker.
FAST = RpcConfig(
    request_timeout=0.5,
    max_attempts=2,
    backoff_base=0.01,
    backoff_max=0.05,
    max_retry_after=0.5,
    breaker_failure_threshold=10_000,
)


class _Stop(Exception):
    """Raised by a failpoint: the worker stops right after a durable step."""


@pytest.fixture
def keys() -> MintKeys:
    return MintKeys({1: os.urandom(32)}, 1)


@pytest.fixture
def pinner(tmp_path: Path) -> LocalPinner:
    return LocalPinner(tmp_path / "ipfs")


@pytest_asyncio.fixture
async def direct(localnet: Localnet) -> AsyncIterator[RpcClient]:
    async with RpcClient([localnet.rpc_url], metrics=CollectorRegistry()) as client:
        yield client


def _worker(
    sessions: async_sessionmaker[AsyncSession],
    rpc: RpcClient,
    system: Signer,
    keys: MintKeys,
    pinner: Pinner,
    metrics: MintingMetrics,
    **options: object,
) -> MintWorker:
    return MintWorker(
        sessions,
        rpc,
        system,
        keys,
        STANDARD,
        pinner=pinner,
        metrics=metrics,
        poll=0.02,
        backoff_base=0.01,
        backoff_max=0.05,
        **options,  # type: ignore[arg-type]
    )


async def _claim(sessions: async_sessionmaker[AsyncSession], keys: MintKeys) -> MintOperation:
    async with sessions() as session:
        user = await make_user(session, "100000")
    claims = Claims(sessions, keys, standard=StandardName.TOKEN2022, locks=LocalLocks())
    return (await claims.claim(user.wallet_address)).operation


async def _op(sessions: async_sessionmaker[AsyncSession], op_id: int) -> MintOperation:
    async with sessions() as session:
        op = await session.get(MintOperation, op_id)
    assert op is not None
    return op


async def _nft(sessions: async_sessionmaker[AsyncSession], mint: str) -> UserNft:
    async with sessions() as session:
        return (
            await session.execute(select(UserNft).where(UserNft.mint_address == mint))
        ).scalar_one()


async def _signatures(rpc: RpcClient, mint: str) -> list[str]:
    history = await rpc.get_signatures_for_address(Pubkey.from_string(mint))
    return [str(h.signature) for h in history if h.err is None]


async def test_rpc_outage_and_429s_are_retried_until_the_mint_lands(
    engine: AsyncEngine, localnet: Localnet, direct: RpcClient, keys: MintKeys, pinner: Pinner
) -> None:
    sessions = session_factory(engine)
    system = await _funded(direct)
    op = await _claim(sessions, keys)
    registry = CollectorRegistry()
    metrics = MintingMetrics(registry)
    async with (
        FaultProxy(localnet.rpc_url, localnet.ws_url) as proxy,
        RpcClient([proxy.rpc_url], metrics=CollectorRegistry(), config=FAST) as rpc,
    ):
        worker = _worker(sessions, rpc, system, keys, pinner, metrics)
        proxy.drop_http(n=None)  # the node is unreachable
        assert await worker.step() == 1
        waiting = await _op(sessions, op.id)
        assert waiting.state == "created"  # no blockhash to sign with
        assert waiting.signature is None
        assert waiting.last_error is not None
        assert waiting.last_error.startswith("rpc:")
        assert (registry.get_sample_value("nft_mint_retries_total", {"reason": "rpc"}) or 0) >= 1
        assert proxy.counts.dropped_http >= 1

        proxy.clear()
        proxy.rate_limit(n=5, retry_after=0)
        # The first send reaches the node and lands, but its reply is lost.
        proxy.timeout(n=1, methods={"sendTransaction"}, forward=True)
        assert await worker.run_once(within=60)
    assert proxy.counts.rate_limited == 5
    assert proxy.counts.timed_out == 1
    done = await _op(sessions, op.id)
    assert done.state == "confirmed"
    assert (await _nft(sessions, op.mint_address)).status == "unlocked"
    assert await _holdings(direct, op.owner_address, op.mint_address) == 1
    assert await _signatures(direct, op.mint_address) == [done.signature]


async def test_a_lagging_backup_node_is_no_proof_of_expiry(
    engine: AsyncEngine, manual_localnet: Localnet, keys: MintKeys, pinner: Pinner
) -> None:
    sessions = session_factory(engine)
    chain = manual_localnet.chain
    registry = CollectorRegistry()
    metrics = MintingMetrics(registry)
    async with (
        RpcClient([manual_localnet.rpc_url], metrics=CollectorRegistry()) as primary,
        FaultProxy(manual_localnet.rpc_url, manual_localnet.ws_url) as proxy,
        RpcClient([proxy.rpc_url], metrics=CollectorRegistry(), config=FAST) as backup,
    ):
        system = Signer.generate()
        await primary.request_airdrop(system.pubkey, 10 * 10**9)
        for _ in range(30):
            chain.advance_slot()
        op = await _claim(sessions, keys)

        def stop_after_signing(name: str) -> None:
            if name == "after_signed":
                raise _Stop(name)

        signer = _worker(
            sessions, primary, system, keys, pinner, metrics, failpoint=stop_after_signing
        )
        await signer.step()  # the primary signs, then this worker stops
        signed = await _op(sessions, op.id)
        assert signed.state == "signed"
        for _ in range(3):
            chain.advance_slot()
        # The backup stopped 10 slots ago: it has never heard of the signed blockhash.
        await proxy.lag(slots=10)
        lagging = _worker(sessions, backup, system, keys, pinner, metrics)
        for _ in range(3):
            await lagging.resume()
            assert await lagging.step() == 1
        assert proxy.counts.lagged > 0
        still = await _op(sessions, op.id)
        assert still.state == "signed"
        assert still.signature == signed.signature
        assert still.last_error is not None
        assert "Blockhash not found" in still.last_error
        assert registry.get_sample_value("nft_mint_resigns_total") == 0

        proxy.clear()  # the backup catches up; the blockhash is still valid on the primary

        async def clock() -> None:
            while True:
                chain.advance_slot()
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(clock())
        try:
            assert await lagging.run_once(within=30)
        finally:
            ticking.cancel()
        done = await _op(sessions, op.id)
        assert done.state == "confirmed"
        assert done.signature == signed.signature
        assert registry.get_sample_value("nft_mint_resigns_total") == 0
        assert await _signatures(primary, op.mint_address) == [signed.signature]


async def test_an_empty_fee_wallet_is_waited_out_not_failed(
    engine: AsyncEngine, direct: RpcClient, keys: MintKeys, pinner: Pinner
) -> None:
    sessions = session_factory(engine)
    system = Signer.generate()  # nothing to pay fees with yet
    op = await _claim(sessions, keys)
    registry = CollectorRegistry()
    metrics = MintingMetrics(registry)
    worker = _worker(sessions, direct, system, keys, pinner, metrics)
    for _ in range(2):
        await worker.resume()
        assert await worker.step() == 1
    waiting = await _op(sessions, op.id)
    assert waiting.state == "signed"
    assert waiting.last_error is not None
    assert waiting.last_error.startswith("funds:")
    assert registry.get_sample_value("nft_mint_retries_total", {"reason": "funds"}) == 2
    assert (await _nft(sessions, op.mint_address)).status == "pending"

    await _fund(direct, system)
    assert await worker.run_once(within=30)
    assert (await _op(sessions, op.id)).state == "confirmed"
    assert await _holdings(direct, op.owner_address, op.mint_address) == 1


async def _fund(rpc: RpcClient, system: Signer) -> None:
    await rpc.request_airdrop(system.pubkey, 10 * 10**9)
    for _ in range(500):
        if (await rpc.get_balance(system.pubkey)).value > 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("airdrop did not land")


class _Pinata:
    """Pinata's documented pin endpoints, answering 503 while ``down``."""

    def __init__(self) -> None:
        self.down = True
        self.failed = 0
        self.pinned: dict[str, bytes] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            self.failed += 1
            return httpx.Response(503, json={"error": "service unavailable"})
        if request.url.path == "/data/pinList":
            cid = request.url.params["hashContains"]
            rows = [{"ipfs_pin_hash": cid}] if cid in self.pinned else []
            return httpx.Response(200, json={"count": len(rows), "rows": rows})
        fields = _multipart(request)
        version = json.loads(fields["pinataOptions"])["cidVersion"]
        cid = str(add(fields["file"], cid_version=version))
        self.pinned[cid] = fields["file"]
        body = {
            "IpfsHash": cid,
            "PinSize": len(fields["file"]),
            "Timestamp": "2026-12-01T00:00:00Z",
        }
        return httpx.Response(200, json=body)


def _multipart(request: httpx.Request) -> dict[str, bytes]:
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    fields = {}
    for part in request.content.split(b"--" + boundary)[1:-1]:
        head, _, body = part.strip(b"\r\n").partition(b"\r\n\r\n")
        fields[head.split(b'name="')[1].split(b'"')[0].decode()] = body
    return fields


@pytest.fixture
def pinata() -> _Pinata:
    return _Pinata()


async def test_no_mint_until_the_metadata_is_pinned(
    engine: AsyncEngine, direct: RpcClient, keys: MintKeys, pinata: _Pinata
) -> None:
    sessions = session_factory(engine)
    system = await _funded(direct)
    op = await _claim(sessions, keys)
    registry = CollectorRegistry()
    metrics = MintingMetrics(registry)
    client = httpx.AsyncClient(transport=httpx.MockTransport(pinata))

    async def no_sleep(delay: float) -> None:
        return None

    pinner = PinataPinner("test-only.jwt", client=client, max_attempts=1, sleep=no_sleep)
    worker = _worker(sessions, direct, system, keys, pinner, metrics)
    for _ in range(2):
        await worker.resume()
        assert await worker.step() == 1
    waiting = await _op(sessions, op.id)
    assert waiting.state == "created"
    assert waiting.metadata_uri is None
    assert waiting.signature is None
    assert waiting.last_error is not None
    assert waiting.last_error.startswith("pinning:")
    assert registry.get_sample_value("nft_mint_retries_total", {"reason": "pinning"}) == 2
    assert pinata.failed == 2
    account = await direct.get_account_info(Pubkey.from_string(op.mint_address))
    assert account.value is None

    pinata.down = False
    assert await worker.run_once(within=30)
    await client.aclose()
    done = await _op(sessions, op.id)
    assert done.state == "confirmed"
    assert done.metadata_uri is not None
    document = json.loads(pinata.pinned[done.metadata_uri.removeprefix("ipfs://")])
    assert op.mint_address in document["description"]


async def test_a_rejection_that_will_repeat_fails_once_provably_dead(
    engine: AsyncEngine, manual_localnet: Localnet, keys: MintKeys, pinner: Pinner
) -> None:
    sessions = session_factory(engine)
    chain = manual_localnet.chain
    registry = CollectorRegistry()
    metrics = MintingMetrics(registry)
    async with RpcClient([manual_localnet.rpc_url], metrics=CollectorRegistry()) as rpc:
        system = Signer.generate()
        await rpc.request_airdrop(system.pubkey, 10 * 10**9)
        for _ in range(8):
            chain.advance_slot()
        op = await _claim(sessions, keys)
        # A collection that does not exist: the group member instruction fails every time.
        broken = _worker(
            sessions, rpc, system, keys, pinner, metrics, collection=Signer.generate().pubkey
        )
        await broken.step()
        rejected = await _op(sessions, op.id)
        assert rejected.state == "signed"
        assert rejected.last_error is not None
        assert rejected.last_error.startswith("rejected:")
        assert registry.get_sample_value("nft_mint_retries_total", {"reason": "rejected"}) == 1

        # Still inside its blockhash's window: not proof it never landed, so not failed.
        await broken.resume()
        await broken.step()
        assert (await _op(sessions, op.id)).state == "signed"

        for _ in range(170):
            chain.advance_slot()
        await broken.resume()
        await broken.step()
        failed = await _op(sessions, op.id)
        assert failed.state == "failed"
        assert failed.last_error is not None
        assert failed.last_error.startswith("rejected:")
        assert (await _nft(sessions, op.mint_address)).status == "failed"
        assert registry.get_sample_value("nft_mint_resigns_total") == 0
        assert await broken.step() == 0  # nothing unfinished is left


async def test_a_turn_is_put_off_while_the_database_is_unreachable(
    direct: RpcClient, system_wallet: Signer, keys: MintKeys, pinner: LocalPinner
) -> None:
    """The store's errors reach the worker translated (RetryableStoreError): a turn against a
    database that cannot be reached reports not ready and returns, the loop goes on."""
    unreachable = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    try:
        worker = _worker(
            session_factory(unreachable),
            direct,
            system_wallet,
            keys,
            pinner,
            MintingMetrics(CollectorRegistry()),
        )
        worker.ready = True
        assert await worker._turn() == 0
        assert worker.ready is False
    finally:
        await unreachable.dispose()
