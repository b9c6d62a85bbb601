"""The read model equals the chain (ARCHITECTURE §5.3), as a property on the real local chain.

Hypothesis draws a history: mints into the collection, upgrades (burn + mint in one
transaction), transfers (``TransferChecked``, plain ``Transfer``, plain ``Transfer`` to a fresh
non-ATA account), burns, lone closes of emptied accounts, activations (the owner's, a Memo v2
signed by another wallet, a Memo v1 that names the owner without their signature) and
counterfeits (a look-alike collection minting to our key, so our history lists them), and what
happens to the indexer meanwhile:

* it is crawled on demand (backfill) or runs live (``Indexer.run``: websocket subscriptions,
  gaps crawled after every (re)connect), drawn per example;
* restarts in process: a new runner and projection over the same database, resuming from its
  cursors; live, every other restart is a crash (the task cancelled at whatever it awaited);
* websocket drops (``localnet_dropConnections``: the server closes every connection);
* forks: a branch of a few operations is indexed, then dropped (``localnet_dropSlots``'s
  ``LocalChain.drop_slots``); the indexer rolls it back and the history goes on without it;
* deliveries out of order (a recent transaction projected before the crawl reaches it, several
  in reverse) and twice (crawled mode; live, the mint's and the accounts' subscriptions and the
  gap crawls deliver most transactions more than once anyway).

One more test kills a real ``aiw3 indexer backfill`` process with SIGKILL once it has
committed a few events, and a new backfill over the same database resumes from its cursors.

Then every NFT's ``assets`` row equals the chain's accounts, read with getTokenLargestAccounts
and getMultipleAccounts and decoded with ``chain.codecs`` (not through the indexer), and
``asset_events`` holds exactly the events of the operations performed (a dropped branch's
none), each once. Live, the test waits (bounded) for the indexer to get there.

The histories run on a chain of their own: 20 ms slots like the shared one, but final only
after 500 blocks (10 s), so a fork can drop what the indexer has already projected.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from sqlalchemy import delete, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from chain.codecs import token2022
from chain.keys import Signer
from chain.localnet import CommitmentLevel, Localnet, LocalnetConfig
from chain.rpc import RpcClient
from indexer.decode import decode_transaction
from indexer.metrics import IndexerMetrics
from indexer.projection import Projection, Trust
from indexer.runner import Indexer, IndexerConfig
from store.engine import create_engine, session_factory
from store.leases import LocalLeases
from store.tables import AssetEvent, AssetRow, metadata
from tests.aiw3.cli.test_indexer import _env
from tests.harness.localnet import raw_rpc

from . import chainops as ops
from .chainops import Deployment

_KINDS = (
    "mint",
    "mint",
    "upgrade",
    "transfer_checked",
    "transfer_plain",
    "transfer_fresh",
    "burn",
    "close",
    "activate",
    "forge_v2",
    "forge_v1",
    "counterfeit",
    "index",
    "restart",
    "early",
    "reverse",
    "duplicate",
    "drop",
    "fork",
)
#: What a branch that a fork drops does (each sends at least one transaction).
_BRANCH = ("mint", "transfer_checked", "transfer_plain", "burn", "activate", "upgrade")
_STEPS = st.lists(
    st.tuples(st.sampled_from(_KINDS), st.integers(0, 15), st.integers(0, 15)),
    min_size=6,
    max_size=12,
)
_SEEDED_TABLES = {"nft_tiers"}
_PATIENCE = 3000  # polls of 10 ms: a guard against a hang, not a timing assertion
#: Blocks until final on the property test's own chain (10 s at 20 ms).
_FINALITY_DEPTH = 500


@dataclass
class _Net:
    net: Localnet
    client: AsyncClient
    rpc: RpcClient


@pytest_asyncio.fixture(scope="session")
async def forkable() -> AsyncIterator[_Net]:
    """A chain of its own, final only after 500 blocks; blockhashes and signature statuses
    last longer than that (a node keeps both well past finality)."""
    config = LocalnetConfig(
        slot_ms=20,
        finality_depth=_FINALITY_DEPTH,
        blockhash_window=3 * _FINALITY_DEPTH,
        status_cache_blocks=6 * _FINALITY_DEPTH,
    )
    async with (
        Localnet(config, rpc_port=0, ws_port=0) as net,
        # Blockhashes and preflight at confirmed: the finalized state is 10 s old here.
        AsyncClient(net.rpc_url, commitment=Confirmed) as client,
        RpcClient([net.rpc_url], metrics=CollectorRegistry()) as rpc,
    ):
        yield _Net(net, client, rpc)


@dataclass
class _Nft:
    mint: Pubkey
    holder: Keypair
    account: Pubkey
    level: int
    genuine: bool = True


@dataclass
class _World:
    """What the test did, as the test itself knows it (the chain is the judge, not this)."""

    d: Deployment
    fake: Deployment
    wallets: list[Keypair]
    nfts: list[_Nft] = field(default_factory=list)
    burnt: list[Pubkey] = field(default_factory=list)
    emptied: list[tuple[Keypair, Pubkey]] = field(default_factory=list)
    sent: list[Signature] = field(default_factory=list)
    events: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    activated: set[str] = field(default_factory=set)
    forks: int = 0

    def expect(self, signature: Signature, *events: tuple[Pubkey, str]) -> None:
        self.sent.append(signature)
        for mint, kind in events:
            self.events[(str(mint), kind, str(signature))] += 1

    def all_mints(self) -> list[Pubkey]:
        return [n.mint for n in self.nfts] + self.burnt

    def save(self) -> _World:
        return dataclasses.replace(
            self,
            nfts=[dataclasses.replace(n) for n in self.nfts],
            burnt=list(self.burnt),
            emptied=list(self.emptied),
            sent=list(self.sent),
            events=Counter(self.events),
            activated=set(self.activated),
        )

    def restore(self, saved: _World) -> None:
        forks = self.forks
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(saved, f.name))
        self.forks = forks


def _indexer(
    rpc: RpcClient, engine: AsyncEngine, d: Deployment, ws_url: str | None = None
) -> Indexer:
    """A fresh runner and projection over ``engine``: a restart, in process."""
    projection = Projection(
        Trust(frozenset({str(d.collection)}), frozenset({str(d.system.pubkey())}))
    )
    config = IndexerConfig(
        creators=(str(d.system.pubkey()),), ws_url=ws_url, page_size=20, follow_poll=0.3
    )
    return Indexer(
        rpc, session_factory(engine), projection, config, IndexerMetrics(CollectorRegistry())
    )


@dataclass
class _Runner:
    """The indexer under test: crawled on demand, or running live in a task."""

    net: _Net
    engine: AsyncEngine
    d: Deployment
    live: bool
    indexer: Indexer | None = None
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def current(self) -> Indexer:
        assert self.indexer is not None
        return self.indexer

    def start(self) -> None:
        self.indexer = _indexer(
            self.net.rpc, self.engine, self.d, self.net.net.ws_url if self.live else None
        )
        if self.live:
            self.stop = asyncio.Event()
            self.task = asyncio.create_task(self.indexer.run(LocalLeases(), self.stop))

    async def halt(self, *, crash: bool = False) -> None:
        if self.task is None:
            return
        if crash:
            self.task.cancel()  # wherever it is: mid-projection, mid-crawl, mid-subscribe
        self.stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, 30)
        self.task = None

    async def restart(self, *, crash: bool = False) -> None:
        await self.halt(crash=crash)
        self.start()
        if not self.live:
            await self.current.backfill()

    async def catch_up(self, w: _World) -> None:
        """Crawled: backfill. Live: wait (bounded) until the read model equals the chain."""
        if not self.live:
            await self.current.backfill()
            return
        mismatch: str | None = "never compared"
        for _ in range(_PATIENCE // 10):
            assert self.task is not None
            if self.task.done():
                self.task.result()  # the live loop died: its error is the failure
                raise AssertionError("the live indexer stopped")
            mismatch = await _mismatch(self.net.client, self.engine, w)
            if mismatch is None:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the live indexer never caught up: {mismatch}")


@dataclass
class _Ctx:
    net: _Net
    engine: AsyncEngine
    runner: _Runner


async def _project(ctx: _Ctx, d: Deployment, signatures: list[Signature]) -> None:
    """Deliver transactions to a projection directly, in the order given (each in its own
    database transaction, as the runner does), at the runner's position in the block."""
    rpc = ctx.net.rpc
    indexer = _indexer(rpc, ctx.engine, d)
    for signature in signatures:
        result = await rpc.get_transaction(signature, commitment=Confirmed)
        assert result is not None
        position = await indexer.position(result.slot, str(signature))
        assert position is not None
        async with session_factory(ctx.engine)() as session, session.begin():
            await indexer._projection.apply(session, decode_transaction(result, position))


async def _wipe(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name not in _SEEDED_TABLES:
                await conn.execute(delete(table))


async def _fork(w: _World, a: int, b: int, ctx: _Ctx) -> None:
    """A branch of one or two operations, indexed, then dropped by a fork switch; the world
    goes back to what it was before the branch."""
    chain = ctx.net.net.chain
    # Every earlier transaction is confirmed, so in a block below the one being built.
    first = chain.current.height
    saved = w.save()
    for i in range(1 + a % 2):
        await _step(w, _BRANCH[(a + i * b) % len(_BRANCH)], a + i, b + i, ctx)
    await ctx.runner.catch_up(w)  # the indexer has projected (and journaled) the branch
    # In process, not over HTTP: the clock ticks during a round trip, and the drop must start
    # exactly at the branch (the RPC method calls this same LocalChain.drop_slots).
    if chain.block_at(CommitmentLevel.FINALIZED).height >= first:
        return  # too slow a machine: the branch is final, so it stays (and so does the world)
    dropped = chain.drop_slots(chain.current.height - first + 1)
    assert dropped["droppedSlots"], dropped
    w.restore(saved)
    w.forks += 1
    if not ctx.runner.live:
        reverted = await ctx.runner.current.check_finality()
        assert reverted is not None  # the live loop checks on its own, every follow_poll


async def _step(w: _World, kind: str, a: int, b: int, ctx: _Ctx) -> None:
    d = w.d
    client = ctx.net.client
    runner = ctx.runner
    wallet = w.wallets[a % len(w.wallets)]
    nft = w.nfts[b % len(w.nfts)] if w.nfts else None
    if kind == "drop":
        await raw_rpc(ctx.net.net.rpc_url, "localnet_dropConnections")
        return
    if kind == "fork":
        await _fork(w, a, b, ctx)
        return
    if kind == "index":
        await runner.catch_up(w)
        return
    if kind == "restart":
        await runner.restart(crash=a % 2 == 1)
        return
    if kind in ("early", "reverse", "duplicate"):
        # Crawled only: a second writer beside the live leader is not a case (one leads).
        if w.sent and not runner.live:
            picks = {
                "early": [w.sent[-1 - a % min(3, len(w.sent))]],
                "reverse": list(reversed(w.sent[-(2 + a % 3) :])),
                "duplicate": [w.sent[a % len(w.sent)]] * 2,
            }
            await _project(ctx, d, picks[kind])
        return
    if kind == "mint" or (nft is None and kind != "counterfeit"):
        level = 1 + a % 4
        mint, sig = await ops.mint(
            client, d.system, wallet.pubkey(), collection=d.collection, level=str(level)
        )
        w.nfts.append(_Nft(mint, wallet, ops.ata_of(wallet.pubkey(), mint), level))
        w.expect(sig, (mint, "mint"))
        return
    if kind == "counterfeit":
        # A look-alike collection mints to our key: our history lists it, it is not ours.
        mint, sig = await ops.mint(
            client, w.fake.system, d.system.pubkey(), collection=w.fake.collection, level="5"
        )
        w.nfts.append(_Nft(mint, d.system, ops.ata_of(d.system.pubkey(), mint), 5, False))
        w.expect(sig, (mint, "mint"))
        return
    assert nft is not None
    if kind == "upgrade" and nft.genuine and nft.level < 5:
        new, sig = await ops.upgrade(
            client,
            d.system,
            nft.holder,
            nft.mint,
            collection=d.collection,
            level=str(nft.level + 1),
            old_account=nft.account,
        )
        w.expect(sig, (nft.mint, "burn"), (nft.mint, "close"), (new, "mint"))
        w.nfts.remove(nft)
        w.burnt.append(nft.mint)
        w.nfts.append(_Nft(new, nft.holder, ops.ata_of(nft.holder.pubkey(), new), nft.level + 1))
        return
    if kind == "burn":
        sig = await ops.burn(client, nft.holder, nft.mint, nft.account)
        w.expect(sig, (nft.mint, "burn"), (nft.mint, "close"))
        w.nfts.remove(nft)
        w.burnt.append(nft.mint)
        return
    if kind == "close" and w.emptied:
        owner, account = w.emptied.pop(a % len(w.emptied))
        mint = await _mint_of(client, account)
        sig = await ops.close(client, owner, account)
        w.expect(sig, (mint, "close"))
        return
    if kind == "activate":
        sig = await ops.activate(client, nft.holder, nft.mint)
        w.expect(sig, (nft.mint, "activate"))
        w.activated.add(str(nft.mint))
        return
    # Someone other than the holder signs (the fake deployment's wallet never holds one).
    forger = wallet if wallet is not nft.holder else w.fake.system
    if kind == "forge_v2":
        w.expect(await ops.activate(client, forger, nft.mint))
        return
    if kind == "forge_v1":
        w.expect(await ops.forged_activation(client, forger, nft.holder.pubkey(), nft.mint))
        return
    # A transfer of some kind (also what "upgrade" of a top level or counterfeit becomes, and
    # "close" with no emptied account to close).
    to = wallet if wallet is not nft.holder else w.wallets[(a + 1) % len(w.wallets)]
    if kind == "transfer_plain":
        dest = ops.ata_of(to.pubkey(), nft.mint)
        await ops.create_ata(client, to, to.pubkey(), nft.mint)  # idempotent
        sig = await ops.transfer_plain(client, nft.holder, nft.account, dest)
    elif kind == "transfer_fresh":
        dest = await ops.fresh_account(client, to, to.pubkey(), nft.mint)
        sig = await ops.transfer_plain(client, nft.holder, nft.account, dest)
    else:
        dest = ops.ata_of(to.pubkey(), nft.mint)
        sig = await ops.transfer_checked(
            client, nft.holder, nft.mint, to.pubkey(), source=nft.account
        )
    w.expect(sig, (nft.mint, "transfer"))
    w.emptied = [e for e in w.emptied if e[1] != dest]  # the token came back to it
    w.emptied.append((nft.holder, nft.account))
    nft.holder, nft.account = to, dest


async def _mint_of(client: AsyncClient, account: Pubkey) -> Pubkey:
    info = (await client.get_account_info(account, Confirmed)).value
    assert info is not None
    return token2022.decode_account_base(bytes(info.data)).mint


async def _chain_view(client: AsyncClient, w: _World, mint: Pubkey) -> dict[str, object]:
    """What the chain says of ``mint``, read and decoded without the indexer."""
    info = (await client.get_account_info(mint, Confirmed)).value
    assert info is not None  # Token-2022 burns leave the mint (supply 0)
    decoded = token2022.decode_mint(bytes(info.data))
    meta = decoded.get(token2022.TokenMetadata)
    member = decoded.get(token2022.TokenGroupMember)
    assert meta is not None
    genuine = member is not None and member.group == w.d.collection
    largest = (await client.get_token_largest_accounts(mint, Confirmed)).value
    holders = [x.address for x in largest if int(x.amount.amount) > 0]
    owner = account = None
    if decoded.base.supply == 1 and len(holders) == 1:
        raw = (await client.get_multiple_accounts(holders, Confirmed)).value[0]
        assert raw is not None
        state = token2022.decode_account_base(bytes(raw.data))
        owner, account = str(state.owner), str(holders[0])
    level = meta.field("level")
    return {
        "owner": owner,
        "token_account": account,
        "supply": decoded.base.supply,
        "burnt": decoded.base.supply == 0,
        "genuine": genuine,
        "collection": str(member.group) if member is not None else None,
        "name": meta.name,
        "uri": meta.uri,
        "level": int(level) if genuine and level is not None else None,
    }


def _row_view(row: AssetRow) -> dict[str, object]:
    return {
        "owner": row.owner,
        "token_account": row.token_account,
        "supply": row.supply,
        "burnt": row.burnt,
        "genuine": row.genuine,
        "collection": row.collection,
        "name": row.name,
        "uri": row.uri,
        "level": row.level,
    }


_FORKED = [
    ("mint", 0, 0),
    ("mint", 1, 0),
    ("transfer_plain", 2, 0),
    ("fork", 1, 3),
    ("close", 0, 0),
    ("fork", 0, 4),
    ("activate", 0, 1),
    ("transfer_fresh", 1, 1),
]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# A former holder's account, first seen already closed (by the burn), holds a lone close.
@example(
    steps=[
        ("mint", 5, 14),
        ("restart", 0, 0),
        ("early", 0, 0),
        ("close", 4, 0),
        ("transfer_plain", 13, 0),
        ("close", 0, 0),
        ("close", 1, 0),
        ("burn", 0, 0),
    ],
    seed=0,
    live=False,
)
# A fork's branch crawled (through the creator) before a surviving older transfer (through
# the mint): the rollback's before-image predates the transfer, applied after it.
@example(
    steps=[
        ("mint", 0, 0),
        ("mint", 0, 0),
        ("mint", 0, 0),
        ("mint", 0, 0),
        ("transfer_checked", 0, 0),
        ("fork", 5, 0),
    ],
    seed=0,
    live=False,
)
# Forks, crawled and live; live with websocket drops, a crash and a restart around them.
@example(steps=_FORKED, seed=1, live=False)
@example(
    steps=[
        *_FORKED[:3],
        ("drop", 0, 0),
        ("restart", 1, 0),
        *_FORKED[3:6],
        ("drop", 0, 0),
        ("restart", 0, 0),
        ("transfer_checked", 0, 1),
        ("burn", 0, 0),
    ],
    seed=2,
    live=True,
)
@given(steps=_STEPS, seed=st.integers(0, 2**16), live=st.booleans())
async def test_read_model_equals_the_chain(
    steps: list[tuple[str, int, int]],
    seed: int,
    live: bool,
    forkable: _Net,
    migrated_engine: AsyncEngine,
) -> None:
    engine = migrated_engine
    await _wipe(engine)
    client = forkable.client
    d, fake = await ops.deploy(client), await ops.deploy(client)
    wallets = [await ops.fund(client, 10**9) for _ in range(3)]
    w = _World(d, fake, wallets)
    ctx = _Ctx(forkable, engine, _Runner(forkable, engine, d, live))
    ctx.runner.start()
    rng = random.Random(seed)
    try:
        for kind, a, b in steps:
            await _step(w, kind, a, b, ctx)
        if not live and rng.random() < 0.5:
            await _project(ctx, d, rng.sample(w.sent, len(w.sent)))  # all, shuffled
        if not live:
            # The last word is the crawl's, from the cursors, after a restart.
            await ctx.runner.restart()
        await ctx.runner.catch_up(w)
    finally:
        await ctx.runner.halt()
    try:
        await _assert_equals_the_chain(client, engine, w)
    finally:
        await _wipe(engine)  # this chain's journal means nothing to the next test's chain


async def _mismatch(client: AsyncClient, engine: AsyncEngine, w: _World) -> str | None:
    """How the read model differs from the chain (and from what the test did), if it does."""
    try:
        await _assert_equals_the_chain(client, engine, w)
    except AssertionError as exc:
        return str(exc) or repr(exc)
    return None


async def _assert_equals_the_chain(client: AsyncClient, engine: AsyncEngine, w: _World) -> None:
    async with session_factory(engine)() as s:
        rows = {r.mint: r for r in (await s.execute(select(AssetRow))).scalars()}
        events = Counter(
            (e.mint, e.kind, e.signature) for e in (await s.execute(select(AssetEvent))).scalars()
        )
    assert set(rows) == {str(m) for m in w.all_mints()}
    for mint in w.all_mints():
        assert _row_view(rows[str(mint)]) == await _chain_view(client, w, mint), str(mint)
        assert rows[str(mint)].activated == (str(mint) in w.activated), str(mint)
    for nft in w.nfts:  # the test's own bookkeeping agrees with the chain too
        assert rows[str(nft.mint)].owner == str(nft.holder.pubkey())
    assert events == w.events


async def test_a_backfill_killed_mid_way_resumes_from_its_cursors(
    tmp_path: Path, localnet: Localnet, client: AsyncClient, rpc: RpcClient
) -> None:
    """``aiw3 indexer backfill`` in its own process, killed with SIGKILL once it has committed
    something; a new backfill over the same database ends equal to the chain, nothing doubled."""
    d = await ops.deploy(client)
    env = await _env(tmp_path, localnet, Signer(d.system))  # migrates the database file
    engine = create_engine(env["AIW3_DATABASE_URL"])
    w = _World(d, d, [await ops.fund(client, 10**9) for _ in range(3)])
    net = _Net(localnet, client, rpc)
    ctx = _Ctx(net, engine, _Runner(net, engine, d, live=False))
    for i in range(24):
        await _step(w, ("mint", "transfer_plain", "transfer_checked")[i % 3], i, i, ctx)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiw3",
        "indexer",
        "backfill",
        env={**os.environ, **env, "AIW3_COLLECTIONS": str(d.collection)},
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(_PATIENCE):
            if proc.returncode is not None or await _committed_events(engine) >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 30)
    restarted = _indexer(rpc, engine, d)
    await restarted.backfill()
    await _assert_equals_the_chain(client, engine, w)
    await engine.dispose()


async def _committed_events(engine: AsyncEngine) -> int:
    try:
        async with session_factory(engine)() as s:
            return len((await s.execute(select(AssetEvent.id))).all())
    except OperationalError:  # the other process holds the write lock: look again
        return 0
