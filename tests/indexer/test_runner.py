"""indexer.runner on the local chain: a backfill from nothing finds mints through the creator
and plain transfers through token accounts; a restart resumes from the cursors; the live loop
under a lease projects new transactions and serves health and metrics."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections import Counter

import httpx
import pytest
from prometheus_client import CollectorRegistry
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from aiw3.health import serve_health
from chain.keys import Signer
from chain.localnet import Localnet
from chain.rpc import RpcClient
from indexer import runner
from indexer.metrics import IndexerMetrics
from indexer.projection import Projection, Trust
from indexer.runner import Indexer, IndexerConfig, cursor_name
from indexer.sources import Seen
from minting.cache import LocalLocks
from minting.upgrades import Upgrades
from store.engine import session_factory
from store.leases import LocalLeases
from store.repos import tracking
from store.tables import (
    AssetEvent,
    AssetRow,
    EventOutbox,
    MintOperation,
    NftUpgradeRequest,
    TrackedAccount,
    UserNft,
)
from tests.harness.deadlock import deadlocks, lose_a_deadlock
from tests.harness.faults import FaultProxy
from tests.harness.localnet import raw_rpc, send, wait_status
from tests.minting.test_activation import STANDARD, minted_user, uri_for

from . import chainops as ops
from .chainops import Deployment
from .manual import HandDriven

_PATIENCE = 200  # polls of 50 ms: a guard against a hang, not a timing assertion


def _indexer(
    rpc: RpcClient, engine: AsyncEngine, d: Deployment, ws_url: str | None = None
) -> Indexer:
    projection = Projection(
        Trust(frozenset({str(d.collection)}), frozenset({str(d.system.pubkey())}))
    )
    config = IndexerConfig(creators=(str(d.system.pubkey()),), ws_url=ws_url, page_size=50)
    return Indexer(
        rpc, session_factory(engine), projection, config, IndexerMetrics(CollectorRegistry())
    )


async def _owner(engine: AsyncEngine, mint: str) -> str | None:
    async with session_factory(engine)() as s:
        row = await s.get(AssetRow, mint)
        return row.owner if row is not None else None


async def test_backfill_then_resume(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment, engine: AsyncEngine
) -> None:
    alice, bob = await ops.fund(client), await ops.fund(client)
    mint, _ = await ops.mint(
        client, deployment.system, alice.pubkey(), collection=deployment.collection
    )
    await ops.create_ata(client, alice, bob.pubkey(), mint)
    await ops.transfer_plain(
        client, alice, ops.ata_of(alice.pubkey(), mint), ops.ata_of(bob.pubkey(), mint)
    )
    indexer = _indexer(rpc, engine, deployment)
    assert await indexer.backfill() > 0
    assert await _owner(engine, str(mint)) == str(bob.pubkey())

    # A plain transfer back names neither the mint nor alice: only bob's account finds it.
    await ops.transfer_plain(
        client, bob, ops.ata_of(bob.pubkey(), mint), ops.ata_of(alice.pubkey(), mint)
    )
    restarted = _indexer(rpc, engine, deployment)
    await restarted.backfill()
    assert await _owner(engine, str(mint)) == str(alice.pubkey())
    async with session_factory(engine)() as s:
        transfers = await s.scalar(
            select(func.count())
            .select_from(AssetEvent)
            .where(AssetEvent.mint == str(mint), AssetEvent.kind == "transfer")
        )
    assert transfers == 2


async def test_a_backfill_fetches_each_transaction_once(
    localnet: Localnet, client: AsyncClient, rpc: RpcClient, engine: AsyncEngine
) -> None:
    """Most transactions mention several followed addresses (a transfer: its mint, both token
    accounts, the creator who paid for the new account); the backfill lists every one of
    them, and fetches each transaction once (the calls counted on the wire, batched or not)."""
    d = await ops.deploy(client)  # a creator of its own: its history is this test's
    alice, bob = await ops.fund(client), await ops.fund(client)
    mints = []
    for _ in range(3):
        mint, _ = await ops.mint(client, d.system, alice.pubkey(), collection=d.collection)
        await ops.create_ata(client, d.system, bob.pubkey(), mint)
        await ops.transfer_checked(client, alice, mint, bob.pubkey())
        mints.append(mint)
    # A plain transfer back names neither the mint nor the creator: only the accounts list it.
    back = mints[0]
    await ops.transfer_plain(
        client, bob, ops.ata_of(bob.pubkey(), back), ops.ata_of(alice.pubkey(), back)
    )
    async with (
        FaultProxy(localnet.rpc_url, localnet.ws_url) as proxy,  # counts the calls on the wire
        RpcClient([proxy.rpc_url], metrics=CollectorRegistry()) as counted,
    ):
        await _indexer(counted, engine, d).backfill()
    assert await _owner(engine, str(back)) == str(alice.pubkey())

    # What the chain lists for every address the backfill followed, read apart (``rpc``).
    async with session_factory(engine)() as s:
        accounts = (
            (
                await s.execute(
                    select(TrackedAccount.address).where(
                        TrackedAccount.mint.in_([str(m) for m in mints])
                    )
                )
            )
            .scalars()
            .all()
        )
    addresses = [d.system.pubkey(), *mints, *(Pubkey.from_string(a) for a in accounts)]
    listings = [
        [e.signature for e in await rpc.get_signatures_for_address(a, limit=1000) if e.err is None]
        for a in addresses
    ]
    distinct = {sig for listing in listings for sig in listing}
    assert sum(len(listing) for listing in listings) > len(distinct)  # listed more than once
    assert proxy.counts.calls["getTransaction"] == len(distinct)


async def test_a_backfill_stopped_between_batches_resumes_from_its_cursors(
    monkeypatch: pytest.MonkeyPatch,
    client: AsyncClient,
    rpc: RpcClient,
    engine: AsyncEngine,
) -> None:
    """Batches of two transactions (each with the cursors it covers): a backfill cancelled
    once it has committed some, then a new one, leave every NFT's history exactly once."""
    d = await ops.deploy(client)
    alice, bob = await ops.fund(client), await ops.fund(client)
    mints = []
    for _ in range(4):
        mint, _ = await ops.mint(client, d.system, alice.pubkey(), collection=d.collection)
        await ops.transfer_checked(client, alice, mint, bob.pubkey())
        mints.append(mint)
    for mint in mints[:2]:  # found only through the token accounts (a second round)
        await ops.transfer_plain(
            client, bob, ops.ata_of(bob.pubkey(), mint), ops.ata_of(alice.pubkey(), mint)
        )
    monkeypatch.setattr(runner, "_CRAWL_BATCH", 2)
    last = (await client.get_slot(Confirmed)).value
    for _ in range(_PATIENCE):  # all of it final: the batched path, not the journaled one
        if (await client.get_slot(Finalized)).value >= last:
            break
        await asyncio.sleep(0.05)
    first = asyncio.create_task(_indexer(rpc, engine, d).backfill())
    for _ in range(_PATIENCE * 10):
        if first.done() or await _events(engine) >= 3:
            break
        await asyncio.sleep(0.005)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    await _indexer(rpc, engine, d).backfill()
    async with session_factory(engine)() as s:
        kinds = Counter(
            (e.mint, e.kind)
            for e in (
                await s.execute(
                    select(AssetEvent).where(AssetEvent.mint.in_([str(m) for m in mints]))
                )
            ).scalars()
        )
    for i, mint in enumerate(mints):
        moved = 2 if i < 2 else 1
        assert (kinds[(str(mint), "mint")], kinds[(str(mint), "transfer")]) == (1, moved)
        holder = alice if i < 2 else bob
        assert await _owner(engine, str(mint)) == str(holder.pubkey())


async def _events(engine: AsyncEngine) -> int:
    try:
        async with session_factory(engine)() as s:
            return len((await s.execute(select(AssetEvent.id))).all())
    except OperationalError:  # the backfill holds the write lock: look again
        return 0


async def test_a_lone_close_is_found_through_an_account_first_seen_closed(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment, engine: AsyncEngine
) -> None:
    """Bob's account is emptied by a plain ``Transfer`` and closed alone, then opened again and
    closed by a burn. The indexer learns of the account only from the mint's history, already
    closed; the first close is in the account's own history alone, so it is still crawled."""
    d = deployment
    alice, bob = await ops.fund(client), await ops.fund(client)
    mint, _ = await ops.mint(client, d.system, alice.pubkey(), collection=d.collection)
    ata_a, ata_b = ops.ata_of(alice.pubkey(), mint), ops.ata_of(bob.pubkey(), mint)
    await _indexer(rpc, engine, d).backfill()
    await ops.transfer_checked(client, alice, mint, bob.pubkey())
    await ops.transfer_plain(client, bob, ata_b, ata_a)
    lone = await ops.close(client, bob, ata_b)
    await ops.transfer_checked(client, alice, mint, bob.pubkey())
    burnt = await ops.burn(client, bob, mint, ata_b)
    await _indexer(rpc, engine, d).backfill()
    async with session_factory(engine)() as s:
        closes = set(
            (
                await s.execute(
                    select(AssetEvent.signature).where(
                        AssetEvent.mint == str(mint), AssetEvent.kind == "close"
                    )
                )
            ).scalars()
        )
    assert closes == {str(lone), str(burnt)}
    # Crawled up to its close, the account is no longer followed.
    assert str(ata_b) not in await _indexer(rpc, engine, d).followed()


async def test_an_activation_is_found_through_a_mint_first_seen_burnt(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment, engine: AsyncEngine
) -> None:
    """The mint's history was crawled once; then the holder activates and burns. The burn is
    found through the token account first (a crawl stopped there, as a killed backfill
    would): the burnt mint is still crawled up to its burn, so the activation is not lost."""
    d = deployment
    alice = await ops.fund(client)
    mint, _ = await ops.mint(client, d.system, alice.pubkey(), collection=d.collection)
    account = ops.ata_of(alice.pubkey(), mint)
    await _indexer(rpc, engine, d).backfill()
    await ops.activate(client, alice, mint)
    await ops.burn(client, alice, mint, account)
    await _indexer(rpc, engine, d).crawl(str(account))
    assert str(mint) in await _indexer(rpc, engine, d).followed()
    await _indexer(rpc, engine, d).backfill()
    async with session_factory(engine)() as s:
        row = await s.get(AssetRow, str(mint))
        assert row is not None
        assert (row.burnt, row.activated) == (True, True)
    assert str(mint) not in await _indexer(rpc, engine, d).followed()


async def test_live_under_a_lease_with_health(
    localnet: Localnet,
    client: AsyncClient,
    rpc: RpcClient,
    deployment: Deployment,
    engine: AsyncEngine,
) -> None:
    indexer = _indexer(rpc, engine, deployment, localnet.ws_url)
    await indexer.backfill()
    registry = CollectorRegistry()
    server = await serve_health(
        registry, alive=indexer.alive, ready=lambda: indexer.ready, host="127.0.0.1", port=0
    )
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    task = asyncio.create_task(indexer.run(LocalLeases(), stop))
    try:
        alice, bob = await ops.fund(client), Keypair().pubkey()
        for _ in range(_PATIENCE):
            if indexer.ready:
                break
            await asyncio.sleep(0.05)
        mint, _ = await ops.mint(
            client, deployment.system, alice.pubkey(), collection=deployment.collection
        )
        for _ in range(_PATIENCE):
            if await _owner(engine, str(mint)) == str(alice.pubkey()):
                break
            await asyncio.sleep(0.05)
        assert await _owner(engine, str(mint)) == str(alice.pubkey())
        await ops.transfer_checked(client, alice, mint, bob)
        for _ in range(_PATIENCE):
            if await _owner(engine, str(mint)) == str(bob):
                break
            await asyncio.sleep(0.05)
        assert await _owner(engine, str(mint)) == str(bob)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/livez")).status_code == 200
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get("/nope")).status_code == 404
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        server.close()
    assert indexer.ready is False  # no longer leading


async def test_an_idle_chain_is_not_a_lag(
    localnet: Localnet, rpc: RpcClient, deployment: Deployment, engine: AsyncEngine
) -> None:
    """Nothing followed moves while the chain's slots go on: the newest projected slot falls
    behind the tip, but the leader, idle and fully subscribed, knows the read model is
    complete through the tip; its lag stays at zero and it stays caught up."""
    registry = CollectorRegistry()
    d = deployment
    projection = Projection(
        Trust(frozenset({str(d.collection)}), frozenset({str(d.system.pubkey())}))
    )
    config = IndexerConfig(creators=(str(d.system.pubkey()),), ws_url=localnet.ws_url)
    indexer = Indexer(rpc, session_factory(engine), projection, config, IndexerMetrics(registry))
    await indexer.backfill()

    def sample(name: str) -> float:
        return registry.get_sample_value(name) or 0.0

    stop = asyncio.Event()
    task = asyncio.create_task(indexer.run(LocalLeases(), stop))
    try:
        for _ in range(_PATIENCE):
            if indexer.ready and sample("indexer_chain_slot") > 0:
                break
            await asyncio.sleep(0.05)
        start = sample("indexer_chain_slot")
        for _ in range(_PATIENCE):
            if sample("indexer_chain_slot") >= start + 8:
                break
            await asyncio.sleep(0.05)
        tip = sample("indexer_chain_slot")
        assert tip > start + 3  # the chain moved on, nothing of ours did
        assert indexer.last_slot < tip
        assert sample("indexer_lag_slots") <= 1
        assert sample("indexer_lag_seconds") < 5
        assert sample("indexer_caught_up") == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert sample("indexer_caught_up") == 0  # no longer leading


async def test_positions_are_the_index_in_the_block(
    hand_driven: HandDriven, engine: AsyncEngine
) -> None:
    chain, rpc = hand_driven, hand_driven.rpc
    async with chain.ticking():
        d = await ops.deploy(chain.client)
        alice = await ops.fund(chain.client)
    # Two mints in one block: the second is at position 1, whatever order they arrive in.
    sent = []
    for key in (Keypair(), Keypair()):
        sent.append(str((await send(chain.client, chain.mint_tx(d, key, alice))).value))
    slot = chain.net.chain.current.slot
    chain.advance(2)

    block = await rpc.get_block(slot)
    assert block is not None
    assert [str(s) for s in block.signatures or ()] == sent
    indexer = _indexer(rpc, engine, d)
    await indexer.backfill()
    async with session_factory(engine)() as s:
        rows = (
            await s.execute(
                select(AssetEvent.signature, AssetEvent.slot, AssetEvent.position).where(
                    AssetEvent.kind == "mint"
                )
            )
        ).all()
    assert sorted(rows) == sorted([(sent[0], slot, 0), (sent[1], slot, 1)])

    # A slot a fork dropped has no block: the client says so instead of failing.
    chain.advance()
    dropped = chain.net.chain.current.slot - 1
    reply = await raw_rpc(chain.net.rpc_url, "localnet_dropSlots", [2])
    assert dropped in reply["result"]["droppedSlots"]
    assert await rpc.get_block(dropped) is None


@pytest.mark.parametrize("backend", ["mysql"], indirect=True)
async def test_a_unit_that_lost_a_deadlock_is_projected_again_whole(
    rpc: RpcClient, client: AsyncClient, system_wallet: Signer, engine: AsyncEngine
) -> None:
    """The indexer settles an upgrade while another writer takes the same rows in the
    opposite order (the request, then the old NFT's asset row): MariaDB rolls the indexer's
    transaction back. It is run again, whole: one ``upgraded`` event, the cursor moved, and
    the live loop would not have crashed."""
    m = await minted_user(engine, rpc, client, system_wallet, volume="600000", badges=2)
    upgrades = Upgrades(
        m.sessions, rpc, system_wallet, m.keys, STANDARD, locks=LocalLocks(), uri_for=uri_for
    )
    ticket = await upgrades.request(str(m.wallet.pubkey()))
    tx = Transaction.from_bytes(base64.b64decode(ticket.transaction))
    tx.partial_sign([m.wallet], tx.message.recent_blockhash)
    await wait_status(client, (await client.send_raw_transaction(bytes(tx))).value, "confirmed")
    async with m.sessions() as s:
        claim = (await s.execute(select(MintOperation).where(MintOperation.kind == "claim"))).one()
    indexer = Indexer(
        rpc,
        m.sessions,
        Projection(Trust()),
        IndexerConfig(creators=(str(system_wallet.pubkey),)),
        IndexerMetrics(CollectorRegistry()),
    )

    async def seen(signature: str | None, address: str) -> Seen:
        assert signature is not None
        found = await rpc.get_transaction(Signature.from_string(signature))
        assert found is not None
        return Seen(signature, found.slot, False, address)

    assert await indexer.process(await seen(claim[0].signature, m.mint))  # the old NFT's asset
    upgrade = await seen(ticket.signature, ticket.to_mint)
    before = await deadlocks(engine)
    wrote = await lose_a_deadlock(
        engine,
        indexer.process(upgrade),
        lock_first="UPDATE nft_upgrade_requests SET error = error WHERE id = :request",
        lock_then="SELECT mint FROM assets WHERE mint = :old FOR UPDATE",
        params={"request": ticket.request_id, "old": ticket.from_mint},
        ballast_user=m.user_id,
    )
    assert wrote
    assert await deadlocks(engine) > before
    await indexer.process(upgrade)  # delivered again: nothing more (checked below)
    async with m.sessions() as s:
        request = await s.get(NftUpgradeRequest, ticket.request_id)
        nfts = (await s.execute(select(UserNft.level, UserNft.status).order_by(UserNft.id))).all()
        events = (await s.execute(select(EventOutbox.event_type).order_by(EventOutbox.id))).all()
        old, new = await s.get(AssetRow, ticket.from_mint), await s.get(AssetRow, ticket.to_mint)
        cursor = await tracking.get_cursor(s, cursor_name(ticket.to_mint))
    assert request is not None
    assert request.status == "confirmed"
    assert [tuple(n) for n in nfts] == [(1, "burned"), (2, "unlocked")]
    assert [e for (e,) in events] == ["unlocked", "upgraded"]
    assert old is not None
    assert old.burnt
    assert new is not None
    assert new.owner == str(m.wallet.pubkey())
    assert cursor is not None
    assert cursor.signature == ticket.signature


async def test_a_notified_transaction_the_node_does_not_serve_yet_is_fetched_again(
    localnet: Localnet, client: AsyncClient, deployment: Deployment, engine: AsyncEngine
) -> None:
    """The websocket's node notifies a transfer the RPC node (lagging behind a load balancer)
    does not serve yet: it is kept and fetched again once served, not left to a crawl that
    would never list it (later transactions move the address's cursor past it)."""
    registry = CollectorRegistry()
    async with (
        FaultProxy(localnet.rpc_url, localnet.ws_url) as proxy,
        RpcClient([proxy.rpc_url], metrics=CollectorRegistry()) as rpc,
    ):
        d = deployment
        projection = Projection(
            Trust(frozenset({str(d.collection)}), frozenset({str(d.system.pubkey())}))
        )
        config = IndexerConfig(
            creators=(str(d.system.pubkey()),), ws_url=localnet.ws_url, page_size=50
        )
        indexer = Indexer(
            rpc, session_factory(engine), projection, config, IndexerMetrics(registry)
        )
        await indexer.backfill()
        stop = asyncio.Event()
        task = asyncio.create_task(indexer.run(LocalLeases(), stop))
        try:
            alice, bob = await ops.fund(client), Keypair().pubkey()
            mint, _ = await ops.mint(client, d.system, alice.pubkey(), collection=d.collection)
            for _ in range(_PATIENCE):
                if await _owner(engine, str(mint)) == str(alice.pubkey()):
                    break
                await asyncio.sleep(0.05)
            assert await _owner(engine, str(mint)) == str(alice.pubkey())

            await proxy.lag(slots=0)  # the RPC node stops here; the websocket goes on
            await ops.transfer_checked(client, alice, mint, bob)

            def missing() -> float:
                found = registry.get_sample_value(
                    "indexer_transactions_total", {"outcome": "missing"}
                )
                return found or 0.0

            for _ in range(_PATIENCE):
                if missing() > 0:
                    break
                await asyncio.sleep(0.05)
            assert missing() > 0  # notified, not served
            assert await _owner(engine, str(mint)) == str(alice.pubkey())

            proxy.lag_off()  # the node catches up: nothing else notifies this address
            for _ in range(_PATIENCE):
                if await _owner(engine, str(mint)) == str(bob):
                    break
                await asyncio.sleep(0.05)
            assert await _owner(engine, str(mint)) == str(bob)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def test_a_transaction_not_served_yet_is_kept_across_a_restart(
    localnet: Localnet, client: AsyncClient, deployment: Deployment, engine: AsyncEngine
) -> None:
    """A notified transfer the node does not serve yet, then a later one that moves every
    cursor it would have moved past it: a restarted indexer's crawl from those cursors lists
    nothing, and it is still projected, from the kept list."""
    d = deployment

    async def slot_of(signature: Signature) -> int:
        status = (await client.get_signature_statuses([signature])).value[0]
        assert status is not None
        return status.slot

    async with (
        FaultProxy(localnet.rpc_url, localnet.ws_url) as proxy,
        RpcClient([proxy.rpc_url], metrics=CollectorRegistry()) as rpc,
    ):
        first = _indexer(rpc, engine, d)
        alice, bob = await ops.fund(client), await ops.fund(client)
        mint, _ = await ops.mint(client, d.system, alice.pubkey(), collection=d.collection)
        await first.backfill()
        accounts = [str(ops.ata_of(k.pubkey(), mint)) for k in (alice, bob)]

        await proxy.lag(slots=0)
        away = await ops.transfer_checked(client, alice, mint, bob.pubkey())
        seen = Seen(str(away), await slot_of(away), False, str(mint))
        assert await first.process(seen, also=accounts) is False  # notified, not served
        proxy.lag_off()
        back = await ops.transfer_checked(client, bob, mint, alice.pubkey())
        later = Seen(str(back), await slot_of(back), False, str(mint))
        assert await first.process(later, also=accounts) is True

        restarted = _indexer(rpc, engine, d)
        assert await restarted.backfill() == 0  # no cursor is behind the first transfer
        assert await restarted.load_unseen() == 1
        assert await restarted.retry_unseen() == 0
        assert await restarted.load_unseen() == 0  # done: no longer kept
    async with session_factory(engine)() as s:
        kinds = (
            await s.execute(
                select(AssetEvent.signature).where(
                    AssetEvent.mint == str(mint), AssetEvent.kind == "transfer"
                )
            )
        ).scalars()
        assert set(kinds) == {str(away), str(back)}
    assert await _owner(engine, str(mint)) == str(alice.pubkey())


async def test_a_stuck_gap_crawl_neither_delays_live_transfers_nor_loses_its_gap(
    localnet: Localnet, client: AsyncClient, deployment: Deployment, engine: AsyncEngine
) -> None:
    """A transfer made while the indexer was down is a gap its start-up crawl fills; the
    node's listings hang meanwhile. A transfer of another NFT made once it is live is
    projected at once (the crawl runs beside the notifications, not in front of them), but
    leaves that mint's cursor where it was: every address has a start-up gap, and moving a
    cursor past an unfilled gap would lose the gap to a restart. Once the listings answer,
    the gaps are filled and the cursors move on."""
    d = deployment
    async with (
        FaultProxy(localnet.rpc_url, localnet.ws_url) as proxy,
        RpcClient([proxy.rpc_url], metrics=CollectorRegistry()) as rpc,
    ):
        alice, bob, carol = await ops.fund(client), await ops.fund(client), Keypair().pubkey()
        first, _ = await ops.mint(client, d.system, alice.pubkey(), collection=d.collection)
        second, _ = await ops.mint(client, d.system, bob.pubkey(), collection=d.collection)
        await _indexer(rpc, engine, d).backfill()
        async with session_factory(engine)() as s:
            before = await tracking.get_cursor(s, cursor_name(str(second)))
        assert before is not None
        missed = await ops.transfer_checked(client, alice, first, bob.pubkey())  # while down

        proxy.hold_back(None, methods={"getSignaturesForAddress"})
        indexer = _indexer(rpc, engine, d, ws_url=localnet.ws_url)
        stop = asyncio.Event()
        task = asyncio.create_task(indexer.run(LocalLeases(), stop))
        try:
            for _ in range(_PATIENCE):
                if indexer.crawl_backlog() > 0:
                    break
                await asyncio.sleep(0.05)
            assert indexer.crawl_backlog() > 0  # live, and its gaps waiting on the listings
            await asyncio.sleep(0.5)  # every subscription confirmed
            live = await ops.transfer_checked(client, bob, second, carol)
            for _ in range(_PATIENCE):
                if await _owner(engine, str(second)) == str(carol):
                    break
                await asyncio.sleep(0.05)
            assert await _owner(engine, str(second)) == str(carol)
            assert await _owner(engine, str(first)) == str(alice.pubkey())  # the gap, unfilled
            assert indexer.crawl_backlog() > 0  # the crawl is still stuck
            async with session_factory(engine)() as s:
                held = await tracking.get_cursor(s, cursor_name(str(second)))
            assert held is not None
            assert held.signature == before.signature

            proxy.release()  # the listings answer again
            cursor = None
            for _ in range(_PATIENCE):
                async with session_factory(engine)() as s:
                    cursor = await tracking.get_cursor(s, cursor_name(str(second)))
                if indexer.crawl_backlog() == 0 and cursor and cursor.signature == str(live):
                    break
                await asyncio.sleep(0.05)
            assert indexer.crawl_backlog() == 0
            assert cursor is not None
            assert cursor.signature == str(live)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    async with session_factory(engine)() as s:
        transfers = (
            await s.execute(
                select(AssetEvent.signature).where(
                    AssetEvent.kind == "transfer", AssetEvent.mint.in_([str(first), str(second)])
                )
            )
        ).scalars()
        assert Counter(transfers) == Counter({str(missed): 1, str(live): 1})
    assert await _owner(engine, str(first)) == str(bob.pubkey())
    assert await _owner(engine, str(second)) == str(carol)


async def test_the_live_loop_rides_out_an_rpc_outage(
    localnet: Localnet, client: AsyncClient, deployment: Deployment, engine: AsyncEngine
) -> None:
    """The node stops answering getTransaction (connections closed, every retry too): the
    notified transfer is kept, the live loop goes on (it neither crashes nor drops it), and
    once the node answers again the transfer is projected."""
    d = deployment
    async with (
        FaultProxy(localnet.rpc_url, localnet.ws_url) as proxy,
        RpcClient([proxy.rpc_url], metrics=CollectorRegistry()) as rpc,
    ):
        alice, bob = await ops.fund(client), Keypair().pubkey()
        mint, _ = await ops.mint(client, d.system, alice.pubkey(), collection=d.collection)
        indexer = _indexer(rpc, engine, d, ws_url=localnet.ws_url)
        await indexer.backfill()
        stop = asyncio.Event()
        task = asyncio.create_task(indexer.run(LocalLeases(), stop))
        try:
            await asyncio.sleep(0.5)  # every subscription confirmed
            proxy.drop_http(None, methods={"getTransaction"})
            await ops.transfer_checked(client, alice, mint, bob)
            for _ in range(_PATIENCE):
                if proxy.counts.dropped_http >= 4:  # the client's every attempt, at least
                    break
                await asyncio.sleep(0.05)
            assert proxy.counts.dropped_http >= 4
            await asyncio.sleep(0.5)
            assert not task.done()
            assert await _owner(engine, str(mint)) == str(alice.pubkey())

            proxy.clear()
            for _ in range(_PATIENCE):
                if await _owner(engine, str(mint)) == str(bob):
                    break
                await asyncio.sleep(0.05)
            assert await _owner(engine, str(mint)) == str(bob)
            assert not task.done()
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
