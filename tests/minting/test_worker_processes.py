"""``aiw3 mint worker`` as real processes on the local chain: killed with SIGKILL at each named
failpoint and restarted, and three of them sharing 200 concurrent claims of one user, each on
SQLite, PostgreSQL and MariaDB. Each time: exactly one NFT on chain, and the database agrees with
the chain."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chain.keys import Signer, write_keypair_file
from chain.localnet import Localnet
from chain.rpc import RpcClient
from core.types import StandardName
from minting.cache import LocalLocks
from minting.claims import Claims
from minting.keys import MintKeys
from minting.worker import FAILPOINTS
from store.engine import session_factory
from store.tables import EventOutbox, MintOperation, UserNft
from tests.minting.conftest import make_user
from tests.minting.test_worker import _holdings

ROOT = Path(__file__).resolve().parents[2]
# What each failpoint leaves in the database when the process dies there.
LEFT_AT = {
    "after_recorded": "created",  # metadata pinned, nothing recorded by the worker yet
    "after_signed": "signed",
    "after_sent": "sent",
    "before_commit": "sent",  # the confirming transaction never committed
}


class _Deployment:
    """The environment of ``aiw3`` processes sharing one database, chain and wallet."""

    def __init__(self, tmp_path: Path, database_url: str, localnet: Localnet) -> None:
        self.secret = os.urandom(32).hex()
        self.keys = MintKeys({1: self.secret.encode()}, 1)
        self.system = Signer(Keypair())
        self.home = tmp_path
        keypair_file = tmp_path / "system.json"
        write_keypair_file(keypair_file, self.system)
        self.env = {
            **os.environ,
            "HOME": str(tmp_path),
            "AIW3_DATABASE_URL": database_url,
            "AIW3_RPC_URL": localnet.rpc_url,
            "AIW3_WS_URL": localnet.ws_url,
            "AIW3_SYSTEM_KEYPAIR": str(keypair_file),
            "AIW3_MINT_SECRET": self.secret,
            "AIW3_MINT_SECRET_VERSION": "1",
            "AIW3_IPFS_DIR": str(tmp_path / "ipfs"),
            "AIW3_LOG_FORMAT": "json",
            "AIW3_WORKER_PORT": "0",
        }

    async def spawn(self, *args: str, **env: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aiw3",
            "mint",
            "worker",
            *args,
            env={**self.env, **env, "PYTHONPATH": str(ROOT)},
            cwd=self.home,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )


def _url(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


async def _claims_ready(
    engine: AsyncEngine, localnet: Localnet, tmp_path: Path
) -> tuple[_Deployment, async_sessionmaker[AsyncSession], str]:
    deployment = _Deployment(tmp_path, _url(engine), localnet)
    async with RpcClient([localnet.rpc_url], metrics=CollectorRegistry()) as rpc:
        await rpc.request_airdrop(deployment.system.pubkey, 10 * 10**9)
        for _ in range(500):
            if (await rpc.get_balance(deployment.system.pubkey)).value > 0:
                break
            await asyncio.sleep(0.02)
    sessions = session_factory(engine)
    async with sessions() as session:
        user = await make_user(session, "100000")
    return deployment, sessions, user.wallet_address


async def _exit_code(proc: asyncio.subprocess.Process, within: float = 90) -> int:
    await asyncio.wait_for(proc.wait(), within)
    assert proc.returncode is not None
    return proc.returncode


async def _agrees_with_chain(
    sessions: async_sessionmaker[AsyncSession], localnet: Localnet, wallet: str
) -> None:
    """One operation, confirmed; one NFT, unlocked; one event; one mint on chain, by the
    operation's own signature."""
    async with sessions() as session:
        op = (await session.execute(select(MintOperation))).scalar_one()
        nft = (await session.execute(select(UserNft))).scalar_one()
        events = (await session.execute(select(func.count()).select_from(EventOutbox))).scalar()
    assert op.state == "confirmed"
    assert nft.status == "unlocked"
    assert nft.mint_address == op.mint_address
    assert events == 1
    async with RpcClient([localnet.rpc_url], metrics=CollectorRegistry()) as rpc:
        assert await _holdings(rpc, wallet, op.mint_address) == 1
        history = await rpc.get_signatures_for_address(Pubkey.from_string(op.mint_address))
    assert [str(h.signature) for h in history if h.err is None] == [op.signature]


@pytest.mark.parametrize("failpoint", FAILPOINTS)
async def test_a_worker_killed_at_each_step_is_resumed_into_one_nft(
    engine: AsyncEngine, localnet: Localnet, tmp_path: Path, failpoint: str
) -> None:
    # On every backend (``engine``): the crash-safety rests on each database's own locking.
    deployment, sessions, wallet = await _claims_ready(engine, localnet, tmp_path)
    claims = Claims(sessions, deployment.keys, standard=StandardName.TOKEN2022, locks=LocalLocks())
    op = (await claims.claim(wallet)).operation

    doomed = await deployment.spawn(AIW3_FAILPOINT=failpoint)
    assert await _exit_code(doomed) == -signal.SIGKILL
    async with sessions() as session:
        left = await session.get(MintOperation, op.id)
        nft = (await session.execute(select(UserNft))).scalar_one()
    assert left is not None
    assert left.state == LEFT_AT[failpoint]
    # The uri is recorded with the signed transaction (pinning again gives the same one).
    assert (left.metadata_uri is None) == (failpoint == "after_recorded")
    assert nft.status == "pending"

    restarted = await deployment.spawn("--once", "--within", "60")
    code = await _exit_code(restarted)
    assert code == 0, (await restarted.stderr.read()).decode() if restarted.stderr else ""
    await _agrees_with_chain(sessions, localnet, wallet)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _get(url: str) -> httpx.Response | None:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return await client.get(url)
    except httpx.TransportError:
        return None


async def _until(condition: object, what: str, within: float = 90) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_200_concurrent_claims_over_3_workers_mint_one_nft(
    engine: AsyncEngine, localnet: Localnet, tmp_path: Path
) -> None:
    deployment, sessions, wallet = await _claims_ready(engine, localnet, tmp_path)
    ports = [_free_port() for _ in range(3)]
    health = [f"http://127.0.0.1:{port}" for port in ports]

    async def ready(url: str) -> bool:
        answer = await _get(f"{url}/readyz")
        return answer is not None and answer.status_code == 200

    # The first creates the collection; then the others start together and find it.
    workers = [await deployment.spawn(AIW3_WORKER_PORT=str(ports[0]))]
    await _until(lambda: ready(health[0]), "the first worker's readiness")
    workers += [await deployment.spawn(AIW3_WORKER_PORT=str(port)) for port in ports[1:]]
    for url in health:
        await _until(lambda url=url: ready(url), f"readiness at {url}")  # type: ignore[misc]
        assert (await _get(f"{url}/livez")).status_code == 200  # type: ignore[union-attr]

    async def one_claim() -> tuple[int, bool]:
        # A claim service of its own each: no in-process lock stands between the twins, only
        # the database's constraints.
        claims = Claims(
            sessions, deployment.keys, standard=StandardName.TOKEN2022, locks=LocalLocks()
        )
        outcome = await claims.claim(wallet)
        return outcome.operation.id, outcome.created

    answers = await asyncio.gather(*(one_claim() for _ in range(200)))
    assert len({op_id for op_id, _ in answers}) == 1
    assert sum(created for _, created in answers) == 1

    async def confirmed() -> bool:
        async with sessions() as session:
            states = (await session.execute(select(MintOperation.state))).scalars().all()
        return list(states) == ["confirmed"]

    await _until(confirmed, "the mint's confirmation")

    async def counted() -> bool:
        answer = await _get(f"{health[0]}/metrics")
        return answer is not None and 'nft_mint_operations{state="confirmed"} 1.0' in answer.text

    await _until(counted, "the operations gauge")
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    assert [await _exit_code(proc, 30) for proc in workers] == [0, 0, 0]
    await _agrees_with_chain(sessions, localnet, wallet)
