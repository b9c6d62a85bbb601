"""Upgrades on the local chain: the backend signs, a generated user keypair signs as a wallet."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from solana.rpc.async_api import AsyncClient
from solana.rpc.models import TxOpts
from solders.compute_budget import ID as COMPUTE_BUDGET
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chain.asset import fetch_asset
from chain.keys import Signer
from chain.rpc import RpcClient
from core.errors import RetryableStoreError
from minting import qualification
from minting.cache import LocalCache, LocalLocks
from minting.errors import (
    MaxLevelReached,
    NftNotFound,
    QualificationNotMet,
    UpgradeClosed,
    UpgradeInProgress,
    UpgradeMismatch,
)
from minting.events import LocalStream
from minting.ipfs.local import LocalPinner
from minting.keys import MintKeys
from minting.metrics import MintingMetrics
from minting.qualification import QualificationService
from minting.relay import OutboxRelay
from minting.upgrades import AWAITING_OWNER, Upgrades, UpgradeState, UpgradeTicket
from minting.worker import MintWorker
from store.engine import create_engine, session_factory
from store.leases import LocalLeases
from store.tables import Badge, EventOutbox, MintOperation, NftUpgradeRequest, UserNft
from tests.harness.deadlock import deadlocks, lose_a_deadlock
from tests.harness.localnet import blockhash as finalized_blockhash
from tests.harness.localnet import transfer_nft_tx, wait_status
from tests.minting.conftest import make_user
from tests.minting.test_activation import STANDARD, Minted, index, minted_user, uri_for


def _upgrades(
    m: Minted,
    rpc: RpcClient,
    system: Signer,
    metrics: MintingMetrics | None = None,
    qualifications: QualificationService | None = None,
) -> Upgrades:
    return Upgrades(
        m.sessions,
        rpc,
        system,
        m.keys,
        STANDARD,
        locks=LocalLocks(),
        uri_for=uri_for,
        metrics=metrics,
        qualifications=qualifications,
    )


def _development_upgrades(
    sessions: async_sessionmaker[AsyncSession], rpc: RpcClient, system: Signer
) -> Upgrades:
    """Upgrades under the development mint secret, for users without a minted NFT."""
    return Upgrades(
        sessions,
        rpc,
        system,
        MintKeys.development(system),
        STANDARD,
        locks=LocalLocks(),
        uri_for=uri_for,
    )


def _relay(
    m: Minted, metrics: MintingMetrics, qualifications: QualificationService | None = None
) -> OutboxRelay:
    """The outbox relay, which counts confirmed upgrades from their ``upgraded`` event."""
    return OutboxRelay(
        m.sessions,
        LocalStream(),
        LocalLeases(),
        minting_metrics=metrics,
        qualifications=qualifications,
    )


def _counted(registry: CollectorRegistry, status: str) -> float | None:
    labels = {"from_level": "1", "to_level": "2", "status": status}
    return registry.get_sample_value("nft_upgrades_total", labels)


def _wallet_signs(ticket: UpgradeTicket, wallet: Keypair) -> Transaction:
    tx = Transaction.from_bytes(base64.b64decode(ticket.transaction))
    assert not tx.is_signed()  # the owner's signature is missing
    tx.partial_sign([wallet], tx.message.recent_blockhash)
    assert tx.is_signed()
    return tx


async def _until(upgrades: Upgrades, signature: str, wanted: str) -> UpgradeState:
    for _ in range(1000):
        state = await upgrades.observe(signature)
        if state.status == wanted:
            return state
        await asyncio.sleep(0.02)
    raise AssertionError(f"the upgrade did not become {wanted}")


async def _rows(m: Minted) -> tuple[list[tuple[int, str]], list[tuple[str, int | None]], list[str]]:
    async with m.sessions() as session:
        nfts = (
            await session.execute(select(UserNft.level, UserNft.status).order_by(UserNft.id))
        ).all()
        badges = (
            await session.execute(
                select(Badge.status, Badge.reserved_by_upgrade_id).order_by(Badge.id)
            )
        ).all()
        events = (
            await session.execute(select(EventOutbox.event_type).order_by(EventOutbox.id))
        ).scalars()
        return [tuple(n) for n in nfts], [tuple(b) for b in badges], list(events)  # type: ignore[misc]


async def test_upgrade_end_to_end_posted_back_by_the_wallet(
    engine: AsyncEngine,
    rpc_client: RpcClient,
    solana_client: AsyncClient,
    system_wallet: Signer,
    tmp_path: Path,
) -> None:
    m = await minted_user(
        engine, rpc_client, solana_client, system_wallet, volume="600000", badges=3
    )
    upgrades = _upgrades(m, rpc_client, system_wallet)
    ticket = await upgrades.request(str(m.wallet.pubkey()))
    assert (ticket.from_level, ticket.to_level, ticket.created) == (1, 2, True)
    # Asked again before signing: the same transaction, nothing new recorded.
    again = await upgrades.request(str(m.wallet.pubkey()))
    assert (again.request_id, again.transaction, again.created) == (
        ticket.request_id,
        ticket.transaction,
        False,
    )
    nfts, badges, _ = await _rows(m)
    assert nfts == [(1, "unlocked"), (2, "pending")]
    async with m.sessions() as session:  # the level being minted counts as held
        assert (await qualification.compute(session, m.user_id)).nft_level == 2
    assert badges == [
        ("owned", ticket.request_id),
        ("owned", ticket.request_id),
        ("owned", None),
    ]

    # A worker never touches an upgrade waiting for its owner.
    pinner = LocalPinner(tmp_path / "ipfs")
    worker = MintWorker(
        m.sessions, rpc_client, system_wallet, m.keys, STANDARD, pinner=pinner, poll=0.02
    )
    assert await worker.run_once(within=2) is True  # drained: nothing of its own to do
    async with m.sessions() as session:
        op = await session.get(MintOperation, ticket.operation_id)
    assert op is not None
    assert op.state == AWAITING_OWNER
    assert (op.kind, op.blockhash is not None) == ("upgrade", True)
    assert op.last_valid_block_height == ticket.last_valid_block_height

    signed = _wallet_signs(ticket, m.wallet)
    await upgrades.submit(bytes(signed))
    state = await _until(upgrades, ticket.signature, "confirmed")
    assert state.to_mint == ticket.to_mint

    old = (await fetch_asset(rpc_client, Pubkey.from_string(ticket.from_mint))).value
    new = (await fetch_asset(rpc_client, Pubkey.from_string(ticket.to_mint))).value
    assert old.burnt
    assert (new.owner, new.level, new.burnt) == (str(m.wallet.pubkey()), "2", False)
    nfts, badges, events = await _rows(m)
    assert nfts == [(1, "burned"), (2, "unlocked")]
    assert [b[0] for b in badges] == ["consumed", "consumed", "owned"]
    assert all(b[1] is None for b in badges)
    assert events == ["unlocked", "upgraded"]
    async with m.sessions() as session:
        request = await session.get(NftUpgradeRequest, ticket.request_id)
        op = await session.get(MintOperation, ticket.operation_id, populate_existing=True)
    assert request is not None
    assert request.status == "confirmed"
    assert op is not None
    assert op.state == "confirmed"

    # Observed again: nothing more happens. Level 3 needs 5,000,000 and 4 badges.
    await upgrades.observe(ticket.signature)
    assert (await _rows(m))[2] == ["unlocked", "upgraded"]
    with pytest.raises(QualificationNotMet):
        await upgrades.request(str(m.wallet.pubkey()))
    with pytest.raises(UpgradeClosed):
        await upgrades.submit(bytes(signed))


async def test_upgrade_sent_by_the_wallet_itself(
    engine: AsyncEngine, rpc_client: RpcClient, solana_client: AsyncClient, system_wallet: Signer
) -> None:
    m = await minted_user(
        engine, rpc_client, solana_client, system_wallet, volume="600000", badges=2
    )
    registry = CollectorRegistry()
    metrics = MintingMetrics(registry)
    upgrades = _upgrades(m, rpc_client, system_wallet, metrics)
    ticket = await upgrades.request(str(m.wallet.pubkey()))
    signed = _wallet_signs(ticket, m.wallet)

    # A transaction changed after the backend signed it, or left unsigned, is refused.
    unsigned = Transaction.from_bytes(base64.b64decode(ticket.transaction))
    with pytest.raises(UpgradeMismatch):
        await upgrades.submit(bytes(unsigned))
    with pytest.raises(UpgradeMismatch):
        await upgrades.submit(b"\x01garbage")

    signature = (await solana_client.send_raw_transaction(bytes(signed))).value
    assert str(signature) == ticket.signature
    await wait_status(solana_client, signature, "confirmed")
    await _until(upgrades, ticket.signature, "confirmed")
    nfts, badges, events = await _rows(m)
    assert nfts == [(1, "burned"), (2, "unlocked")]
    assert [b[0] for b in badges] == ["consumed", "consumed"]
    assert events == ["unlocked", "upgraded"]
    assert _counted(registry, "requested") == 1
    assert _counted(registry, "confirmed") is None  # the relay counts it, from the event
    assert await _relay(m, metrics).run_once() == 2
    assert _counted(registry, "confirmed") == 1


async def test_concurrent_requests_record_one_upgrade(
    engine: AsyncEngine, rpc_client: RpcClient, solana_client: AsyncClient, system_wallet: Signer
) -> None:
    """Each with its own lock (as on separate machines without Redis): the database decides."""
    m = await minted_user(
        engine, rpc_client, solana_client, system_wallet, volume="600000", badges=4
    )
    racers = [_upgrades(m, rpc_client, system_wallet) for _ in range(4)]
    results = await asyncio.gather(
        *(r.request(str(m.wallet.pubkey())) for r in racers), return_exceptions=True
    )
    tickets = [r for r in results if isinstance(r, UpgradeTicket)]
    assert tickets
    unexpected = [
        r
        for r in results
        if not isinstance(r, UpgradeTicket | UpgradeInProgress | RetryableStoreError)
    ]
    assert unexpected == []
    assert len({t.request_id for t in tickets}) == 1
    nfts, badges, _ = await _rows(m)
    assert nfts == [(1, "unlocked"), (2, "pending")]
    assert sorted(b[1] is not None for b in badges) == [False, False, True, True]
    async with m.sessions() as session:
        assert len((await session.execute(select(NftUpgradeRequest))).all()) == 1


async def test_an_upgrade_failing_on_chain_changes_nothing(
    engine: AsyncEngine, rpc_client: RpcClient, solana_client: AsyncClient, system_wallet: Signer
) -> None:
    """The owner gave the old NFT away before sending: the burn fails, so the mint never
    happens either (one transaction), and the request is failed with the badges released."""
    m = await minted_user(
        engine, rpc_client, solana_client, system_wallet, volume="600000", badges=2
    )
    upgrades = _upgrades(m, rpc_client, system_wallet)
    ticket = await upgrades.request(str(m.wallet.pubkey()))
    signed = _wallet_signs(ticket, m.wallet)
    old_mint = Pubkey.from_string(ticket.from_mint)
    given = transfer_nft_tx(
        m.wallet, old_mint, Keypair().pubkey(), await finalized_blockhash(solana_client)
    )
    await wait_status(
        solana_client, (await solana_client.send_raw_transaction(bytes(given))).value, "confirmed"
    )
    sent = await solana_client.send_raw_transaction(bytes(signed), TxOpts(skip_preflight=True))
    await wait_status(solana_client, sent.value, "confirmed")

    await _until(upgrades, ticket.signature, "failed")
    assert (await rpc_client.get_account_info(Pubkey.from_string(ticket.to_mint))).value is None
    nfts, badges, events = await _rows(m)
    assert nfts == [(1, "unlocked"), (2, "failed")]
    assert badges == [("owned", None), ("owned", None)]
    assert events == ["unlocked"]


async def test_an_unsigned_upgrade_expires_and_can_be_asked_again(
    engine: AsyncEngine, rpc_client: RpcClient, solana_client: AsyncClient, system_wallet: Signer
) -> None:
    m = await minted_user(
        engine, rpc_client, solana_client, system_wallet, volume="600000", badges=2
    )
    upgrades = _upgrades(m, rpc_client, system_wallet)
    first = await upgrades.request(str(m.wallet.pubkey()))
    # Never signed: once the finalized height passes lastValidBlockHeight it can never land.
    await _until(upgrades, first.signature, "expired")
    nfts, badges, events = await _rows(m)
    assert nfts == [(1, "unlocked"), (2, "failed")]
    assert badges == [("owned", None), ("owned", None)]
    assert events == ["unlocked"]
    async with m.sessions() as session:
        op = await session.get(MintOperation, first.operation_id)
    assert op is not None
    assert op.state == "failed"
    assert (await rpc_client.get_account_info(Pubkey.from_string(first.to_mint))).value is None

    # Asked again: a new request, a new mint, and this time the owner signs.
    second = await upgrades.request(str(m.wallet.pubkey()))
    assert second.created
    assert second.request_id != first.request_id
    assert second.to_mint != first.to_mint
    await upgrades.submit(bytes(_wallet_signs(second, m.wallet)))
    await _until(upgrades, second.signature, "confirmed")
    nfts, badges, events = await _rows(m)
    assert nfts == [(1, "burned"), (2, "failed"), (2, "unlocked")]
    assert [b[0] for b in badges] == ["consumed", "consumed"]
    assert events == ["unlocked", "upgraded"]


async def test_refusals(engine: AsyncEngine, rpc_client: RpcClient, system_wallet: Signer) -> None:
    sessions = session_factory(engine)
    upgrades = _development_upgrades(sessions, rpc_client, system_wallet)
    async with sessions() as session:
        nobody = await make_user(session, "600000", 2)
        top = await make_user(session, "90000000", 10)
        short = await make_user(session, "600000", 1)
        for user, level in ((top, 5), (short, 1)):
            session.add(
                UserNft(
                    user_id=user.id,
                    level=level,
                    kind="tier",
                    status="unlocked",
                    mint_address=str(Keypair().pubkey()),
                )
            )
        await session.commit()
    with pytest.raises(NftNotFound):
        await upgrades.request(nobody.wallet_address)
    with pytest.raises(MaxLevelReached):
        await upgrades.request(top.wallet_address)
    with pytest.raises(QualificationNotMet) as short_of_badges:
        await upgrades.request(short.wallet_address)
    assert short_of_badges.value.details["badges_shortfall"] == 1
    async with sessions() as session:
        assert (await session.execute(select(NftUpgradeRequest))).first() is None


async def _claim_signature(m: Minted) -> str:
    async with m.sessions() as session:
        op = (
            await session.execute(select(MintOperation).where(MintOperation.kind == "claim"))
        ).scalar_one()
    assert op.signature is not None
    return op.signature


@pytest.mark.parametrize("first", ["indexer", "engine"])
async def test_one_upgraded_event_whoever_sees_the_upgrade_first(
    first: str,
    engine: AsyncEngine,
    rpc_client: RpcClient,
    solana_client: AsyncClient,
    system_wallet: Signer,
) -> None:
    """The chain listener and the minting engine both see the upgrade: old NFT burned, new
    one unlocked, badges consumed, request confirmed, one ``upgraded`` event and no
    ``burned``/``unlocked`` of its own, in either order. Either way the upgrade is counted
    confirmed once, and the user's cached qualification shows the new NFT's benefits once the
    relay has published the event (the indexer cannot reach the minting engine's cache)."""
    m = await minted_user(
        engine, rpc_client, solana_client, system_wallet, volume="600000", badges=2
    )
    registry = CollectorRegistry()
    metrics = MintingMetrics(registry)
    qualifications = QualificationService(m.sessions, LocalCache())
    upgrades = _upgrades(m, rpc_client, system_wallet, metrics, qualifications)
    ticket = await upgrades.request(str(m.wallet.pubkey()))
    signed = _wallet_signs(ticket, m.wallet)
    sent = (await solana_client.send_raw_transaction(bytes(signed))).value
    await wait_status(solana_client, sent, "confirmed")
    history = [await _claim_signature(m), ticket.signature]
    # Cached while the upgrade is open: the level-1 NFT's benefits.
    assert (await qualifications.check(m.user_id)).benefits.from_levels == (1,)

    if first == "indexer":
        await index(m, rpc_client, history)
        async with m.sessions() as session:
            request = await session.get(NftUpgradeRequest, ticket.request_id)
        assert request is not None
        assert request.status == "confirmed"  # the indexer settled the whole upgrade
        assert (await upgrades.observe(ticket.signature)).status == "confirmed"
    else:
        await _until(upgrades, ticket.signature, "confirmed")
        await index(m, rpc_client, history)
    await index(m, rpc_client, history)  # delivered again: nothing more
    await upgrades.settle_open()
    relay = _relay(m, metrics, qualifications)
    assert await relay.run_once() == 2
    assert await relay.run_once() == 0
    answer = await qualifications.check(m.user_id)
    assert (answer.nft_level, answer.benefits.from_levels) == (2, (2,))
    assert answer.benefits.fee_reduction_pct == 20
    assert _counted(registry, "requested") == 1
    assert _counted(registry, "confirmed") == 1

    nfts, badges, events = await _rows(m)
    assert nfts == [(1, "burned"), (2, "unlocked")]
    assert badges == [("consumed", None), ("consumed", None)]
    assert events == ["unlocked", "upgraded"]
    async with m.sessions() as session:
        op = await session.get(MintOperation, ticket.operation_id)
        upgraded = (
            await session.execute(select(EventOutbox).where(EventOutbox.event_type == "upgraded"))
        ).scalar_one()
    assert op is not None
    assert op.state == "confirmed"
    assert upgraded.payload["mint"] == ticket.to_mint
    assert upgraded.payload["from_mint"] == ticket.from_mint
    assert upgraded.payload["signature"] == ticket.signature


async def _request_status(m: Minted, request_id: int, wanted: str) -> NftUpgradeRequest:
    for _ in range(3000):
        async with m.sessions() as session:
            request = await session.get(NftUpgradeRequest, request_id)
        assert request is not None
        if request.status == wanted:
            return request
        await asyncio.sleep(0.01)
    raise AssertionError(f"the worker's loop did not settle request {request_id} as {wanted}")


async def test_the_worker_loop_settles_upgrades_nobody_asks_about(
    engine: AsyncEngine,
    rpc_client: RpcClient,
    solana_client: AsyncClient,
    system_wallet: Signer,
    tmp_path: Path,
) -> None:
    """Left unsigned until its blockhash expires: expired by the loop, everything as it was,
    and never sent nor re-signed by it. Then sent by the wallet itself: confirmed by the loop."""
    m = await minted_user(
        engine, rpc_client, solana_client, system_wallet, volume="600000", badges=2
    )
    registry = CollectorRegistry()
    metrics = MintingMetrics(registry)
    upgrades = _upgrades(m, rpc_client, system_wallet, metrics)
    worker = MintWorker(
        m.sessions,
        rpc_client,
        system_wallet,
        m.keys,
        STANDARD,
        pinner=LocalPinner(tmp_path / "ipfs"),
        poll=0.02,
        observe_every=0.05,
        upgrades=upgrades,
    )
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.run(stop))
    try:
        first = await upgrades.request(str(m.wallet.pubkey()))
        await _request_status(m, first.request_id, "expired")
        async with m.sessions() as session:
            op = await session.get(MintOperation, first.operation_id)
        assert op is not None
        assert op.state == "failed"
        # The very bytes handed to the wallet: the worker never signed anything of its own.
        assert op.signed_tx == base64.b64decode(first.transaction)
        assert op.signature == first.signature
        statuses = await solana_client.get_signature_statuses(
            [Signature.from_string(first.signature)], search_transaction_history=True
        )
        assert statuses.value[0] is None  # never sent
        nfts, badges, events = await _rows(m)
        assert nfts == [(1, "unlocked"), (2, "failed")]
        assert badges == [("owned", None), ("owned", None)]
        assert events == ["unlocked"]

        second = await upgrades.request(str(m.wallet.pubkey()))
        assert second.created
        signed = _wallet_signs(second, m.wallet)
        await solana_client.send_raw_transaction(bytes(signed))
        await _request_status(m, second.request_id, "confirmed")
    finally:
        stop.set()
        await loop
    nfts, badges, events = await _rows(m)
    assert nfts == [(1, "burned"), (2, "failed"), (2, "unlocked")]
    assert [b[0] for b in badges] == ["consumed", "consumed"]
    assert events == ["unlocked", "upgraded"]
    await _relay(m, metrics).run_once()
    for status in ("requested", "expired", "confirmed"):
        expected = 2 if status == "requested" else 1
        assert _counted(registry, status) == expected


async def test_upgrade_transactions_carry_the_priority_fee_settings(
    engine: AsyncEngine, rpc_client: RpcClient, solana_client: AsyncClient, system_wallet: Signer
) -> None:
    """ComputeBudget limit and price first, as on mints; it still fits 1,232 bytes with the
    owner's signature, and lands."""
    m = await minted_user(
        engine, rpc_client, solana_client, system_wallet, volume="600000", badges=2
    )
    upgrades = Upgrades(
        m.sessions,
        rpc_client,
        system_wallet,
        m.keys,
        STANDARD,
        locks=LocalLocks(),
        uri_for=uri_for,
        compute_unit_limit=250_000,
        compute_unit_price=1_000,
    )
    ticket = await upgrades.request(str(m.wallet.pubkey()))
    signed = _wallet_signs(ticket, m.wallet)
    budget = [
        (signed.message.account_keys[ix.program_id_index], bytes(ix.data))
        for ix in signed.message.instructions[:2]
    ]
    assert budget == [
        (COMPUTE_BUDGET, bytes(set_compute_unit_limit(250_000).data)),
        (COMPUTE_BUDGET, bytes(set_compute_unit_price(1_000).data)),
    ]
    assert len(bytes(signed)) <= 1232
    await upgrades.submit(bytes(signed))
    await _until(upgrades, ticket.signature, "confirmed")


@pytest.mark.parametrize("backend", ["mysql"], indirect=True)
async def test_a_settle_that_lost_a_deadlock_runs_again(
    engine: AsyncEngine, rpc_client: RpcClient, solana_client: AsyncClient, system_wallet: Signer
) -> None:
    """The engine's settle holds the request and waits for its badges, which another writer
    (in the opposite order, as the indexer may) holds while it waits for the request: MariaDB
    rolls the engine's transaction back, and the engine runs it again and settles once."""
    m = await minted_user(
        engine, rpc_client, solana_client, system_wallet, volume="600000", badges=2
    )
    upgrades = _upgrades(m, rpc_client, system_wallet)
    ticket = await upgrades.request(str(m.wallet.pubkey()))
    sent = await solana_client.send_raw_transaction(bytes(_wallet_signs(ticket, m.wallet)))
    await wait_status(solana_client, sent.value, "confirmed")

    before = await deadlocks(engine)
    state = await lose_a_deadlock(
        engine,
        upgrades.observe(ticket.signature),
        lock_first="UPDATE badges SET status = status WHERE reserved_by_upgrade_id = :request",
        lock_then="SELECT id FROM nft_upgrade_requests WHERE id = :request FOR UPDATE",
        params={"request": ticket.request_id},
        ballast_user=m.user_id,
    )
    assert await deadlocks(engine) > before
    assert state.status == "confirmed"
    nfts, badges, events = await _rows(m)
    assert nfts == [(1, "burned"), (2, "unlocked")]
    assert badges == [("consumed", None), ("consumed", None)]
    assert events == ["unlocked", "upgraded"]


async def test_settling_is_put_off_while_the_database_is_unreachable(
    rpc_client: RpcClient, system_wallet: Signer
) -> None:
    """The worker's loop calls it every turn: a database that cannot be reached puts the
    settling off to the next turn instead of stopping the loop."""
    unreachable = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    try:
        upgrades = _development_upgrades(session_factory(unreachable), rpc_client, system_wallet)
        assert await upgrades.settle_open() == []
    finally:
        await unreachable.dispose()
