"""indexer.finality on a hand-driven local chain: a fork (``localnet_dropSlots``) that drops the
slot of a mint and of a plain transfer is detected, rolled back from the journal (the NFT back to
``pending``, its mint operation back to ``sent``, a ``reverted`` event in the outbox) and
re-derived from the surviving chain; once the chain finalizes, the journal is pruned and the
rows are marked finalized."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from chain.codecs import memo, spl_token
from chain.localnet import CommitmentLevel, Localnet
from chain.localnet.runtime import Block
from chain.standards import MintRequest, get_standard
from indexer.finality import Reverted
from indexer.metrics import IndexerMetrics
from indexer.projection import Projection, Trust
from indexer.runner import Indexer, IndexerConfig
from indexer.sources import Seen
from store.engine import session_factory
from store.repos.transitions import AWAITING_OWNER
from store.tables import (
    AssetEvent,
    AssetRow,
    Badge,
    EventOutbox,
    MintOperation,
    NftUpgradeRequest,
    ReorgJournal,
    User,
    UserNft,
)
from tests.harness.localnet import FINALITY_DEPTH, raw_rpc, send

from . import chainops as ops
from .chainops import Deployment
from .manual import HandDriven


def _plain_transfer(net: Localnet, owner: Keypair, mint: Pubkey, to: Keypair) -> Transaction:
    """A plain ``Transfer`` between the two ATAs, on the current block."""
    source, dest = ops.ata_of(owner.pubkey(), mint), ops.ata_of(to.pubkey(), mint)
    ix = spl_token.encode(spl_token.Transfer(ops.T22, source, dest, owner.pubkey(), 1))
    return Transaction([owner], Message([ix], owner.pubkey()), net.chain.current.blockhash)


async def _business(engine: AsyncEngine, mint: str) -> tuple[str, str, list[str]]:
    async with session_factory(engine)() as s:
        nft = (await s.execute(select(UserNft).where(UserNft.mint_address == mint))).scalar_one()
        op = (
            await s.execute(select(MintOperation).where(MintOperation.mint_address == mint))
        ).scalar_one()
        events = list(
            (await s.execute(select(EventOutbox.event_type).order_by(EventOutbox.id))).scalars()
        )
        return nft.status, op.state, events


async def _final_nft(
    chain: HandDriven, engine: AsyncEngine, *, follow_creator: bool
) -> tuple[Indexer, Deployment, Keypair, Keypair, Pubkey]:
    """A deployment, alice holding one of its NFTs and bob an empty account of it, all final;
    an indexer that follows the deployment's creator (or only what is added)."""
    client = chain.client
    async with chain.ticking():
        d = await ops.deploy(client)
        alice, bob = await ops.fund(client), await ops.fund(client)
        mint, _ = await ops.mint(client, d.system, alice.pubkey(), collection=d.collection)
        await ops.create_ata(client, alice, bob.pubkey(), mint)
    chain.advance(FINALITY_DEPTH + 2)
    indexer = Indexer(
        chain.rpc,
        session_factory(engine),
        Projection(Trust(frozenset({str(d.collection)}), frozenset())),
        IndexerConfig(creators=(str(d.system.pubkey()),) if follow_creator else (), page_size=50),
        IndexerMetrics(CollectorRegistry()),
    )
    return indexer, d, alice, bob, mint


async def _fork_back_to(chain: HandDriven, fork_point: Block, indexer: Indexer) -> Reverted:
    """Drop every block after ``fork_point`` (``localnet_dropSlots``), build one on it, and let
    the indexer see the fork."""
    net = chain.net
    dropped = await raw_rpc(
        net.rpc_url, "localnet_dropSlots", [net.chain.current.slot - fork_point.slot]
    )
    assert "error" not in dropped, dropped
    chain.advance()
    reverted = await indexer.check_finality()
    assert reverted is not None
    return reverted


async def test_a_dropped_slot_is_rolled_back_and_re_derived(
    hand_driven: HandDriven, engine: AsyncEngine
) -> None:
    chain, net, client = hand_driven, hand_driven.net, hand_driven.client
    indexer, d, alice, bob, kept = await _final_nft(chain, engine, follow_creator=True)
    await indexer.backfill()
    assert await indexer.check_finality() is None
    async with session_factory(engine)() as s:
        assert await s.scalar(select(func.count()).select_from(ReorgJournal)) == 0
        row = await s.get(AssetRow, str(kept))
        assert row is not None
        assert row.finalized is True

    # A pending NFT whose mint the worker sent and saw confirmed.
    key = Keypair()
    async with session_factory(engine)() as s, s.begin():
        user = User(wallet_address=str(alice.pubkey()))
        s.add(user)
        await s.flush()
        op = MintOperation(
            idempotency_key="fork-test",
            kind="claim",
            level=1,
            owner_address=str(alice.pubkey()),
            mint_address=str(key.pubkey()),
            asset_standard="token2022",
            state="confirmed",
        )
        s.add(op)
        await s.flush()
        s.add(
            UserNft(
                user_id=user.id,
                level=1,
                status="pending",
                mint_address=str(key.pubkey()),
                mint_operation_id=op.id,
            )
        )

    # The branch that will be abandoned: the mint, then a plain transfer of the kept NFT.
    # Signed on the fork point's blockhash, so it can land again on the new branch.
    fork_point = net.chain.block_at(CommitmentLevel.CONFIRMED)
    minted = chain.mint_tx(d, key, alice, fork_point.blockhash)
    await send(client, minted)
    chain.advance()
    plain = _plain_transfer(net, alice, kept, bob)
    await send(client, plain)
    chain.advance(2)
    await indexer.backfill()
    async with session_factory(engine)() as s:
        kept_row = await s.get(AssetRow, str(kept))
        assert kept_row is not None
        assert kept_row.owner == str(bob.pubkey())
        assert kept_row.finalized is False
        assert await s.get(AssetRow, str(key.pubkey())) is not None
        journaled = await s.scalar(select(func.count()).select_from(ReorgJournal))
        assert journaled
    status, _, events = await _business(engine, str(key.pubkey()))
    assert status == "unlocked"
    assert events == ["unlocked"]

    reverted = await _fork_back_to(chain, fork_point, indexer)
    assert set(reverted.signatures) == {str(minted.signatures[0]), str(plain.signatures[0])}
    assert reverted.nfts == (str(key.pubkey()),)
    status, state, events = await _business(engine, str(key.pubkey()))
    assert (status, state) == ("pending", "sent")
    assert events == ["unlocked", "reverted"]
    async with session_factory(engine)() as s:
        assert await s.get(AssetRow, str(key.pubkey())) is None
        kept_row = await s.get(AssetRow, str(kept))
        assert kept_row is not None
        assert kept_row.owner == str(alice.pubkey())  # the surviving chain's owner
        history = await s.scalar(
            select(func.count())
            .select_from(AssetEvent)
            .where(AssetEvent.signature.in_([str(plain.signatures[0])]))
        )
        assert history == 0

    # The same signed mint lands again on the new branch: unlocked again, once.
    await send(client, minted)
    chain.advance(2)
    await indexer.backfill()
    status, _, events = await _business(engine, str(key.pubkey()))
    assert status == "unlocked"
    assert events == ["unlocked", "reverted", "unlocked"]

    chain.advance(FINALITY_DEPTH + 2)
    assert await indexer.check_finality() is None
    async with session_factory(engine)() as s:
        assert await s.scalar(select(func.count()).select_from(ReorgJournal)) == 0
        row = await s.get(AssetRow, str(key.pubkey()))
        assert row is not None
        assert row.finalized is True
        unfinal = await s.scalar(
            select(func.count()).select_from(AssetEvent).where(AssetEvent.finalized.is_(False))
        )
        assert unfinal == 0


async def test_an_import_read_on_a_dropped_block_is_read_again(
    hand_driven: HandDriven, engine: AsyncEngine
) -> None:
    """``aiw3 indexer add`` reads at confirmed: a plain transfer on a branch a fork then drops
    shows in the import. The import is journaled, so the rollback undoes it and the mint is
    read again from the surviving chain (the import's state outranks every transaction up to
    its slot: the crawl alone could never correct it)."""
    chain, net, client = hand_driven, hand_driven.net, hand_driven.client
    indexer, _, alice, bob, mint = await _final_nft(chain, engine, follow_creator=False)
    fork_point = net.chain.block_at(CommitmentLevel.CONFIRMED)
    await send(client, _plain_transfer(net, alice, mint, bob))
    chain.advance(2)
    [row] = await indexer.add([str(mint)])
    assert row.owner == str(bob.pubkey())

    reverted = await _fork_back_to(chain, fork_point, indexer)
    assert reverted.imports == (str(mint),)
    async with session_factory(engine)() as s:
        again = await s.get(AssetRow, str(mint))
        assert again is not None
        assert (again.owner, again.genuine) == (str(alice.pubkey()), True)


async def test_an_activation_judged_during_another_transaction_is_undone_with_its_own(
    hand_driven: HandDriven, engine: AsyncEngine
) -> None:
    """On a branch a fork drops: alice transfers to bob, bob activates. The memo arrives first
    (judged invalid: alice still holds it), the transfer after it makes the claim valid, so
    the memo's ``activate`` row is written while applying the transfer. The rollback removes
    it with the memo's transaction all the same."""
    chain, net, client = hand_driven, hand_driven.net, hand_driven.client
    indexer, _, alice, bob, mint = await _final_nft(chain, engine, follow_creator=True)
    await indexer.backfill()
    fork_point = net.chain.block_at(CommitmentLevel.CONFIRMED)
    moved = Transaction(
        [alice],
        Message(
            [
                spl_token.encode(
                    spl_token.TransferChecked(
                        ops.T22,
                        ops.ata_of(alice.pubkey(), mint),
                        mint,
                        ops.ata_of(bob.pubkey(), mint),
                        alice.pubkey(),
                        1,
                        0,
                    )
                )
            ],
            alice.pubkey(),
        ),
        net.chain.current.blockhash,
    )
    await send(client, moved)
    chain.advance()
    memo_ixs = [memo.activation(bob.pubkey(), mint), ops.mint_reference(mint)]
    claim = Transaction([bob], Message(memo_ixs, bob.pubkey()), net.chain.current.blockhash)
    await send(client, claim)
    chain.advance(2)
    for tx in (claim, moved):  # the memo first
        status = (await client.get_signature_statuses([tx.signatures[0]])).value[0]
        assert status is not None
        await indexer.process(Seen(str(tx.signatures[0]), status.slot, False, str(mint)))
    async with session_factory(engine)() as s:
        row = await s.get(AssetRow, str(mint))
        assert row is not None
        assert (row.owner, row.activated) == (str(bob.pubkey()), True)

    reverted = await _fork_back_to(chain, fork_point, indexer)
    assert set(reverted.signatures) == {str(claim.signatures[0]), str(moved.signatures[0])}
    async with session_factory(engine)() as s:
        kinds = (
            await s.execute(select(AssetEvent.kind).where(AssetEvent.mint == str(mint)))
        ).scalars()
        assert sorted(kinds) == ["mint"]
        row = await s.get(AssetRow, str(mint))
        assert row is not None
        assert (row.owner, row.activated) == (str(alice.pubkey()), False)


async def test_a_dropped_upgrade_is_reopened_and_settles_again_when_it_lands(
    hand_driven: HandDriven, engine: AsyncEngine
) -> None:
    """The indexer settles an upgrade (old NFT burned, new unlocked, badges consumed, one
    ``upgraded`` event); a fork drops its slot: both NFTs go back, the request is open again,
    its operation waits for the owner (never the worker's ``sent``), the badges are reserved
    again. The owner's signed transaction lands on the new branch: settled once more."""
    chain, net, client = hand_driven, hand_driven.net, hand_driven.client
    indexer, d, alice, _, old = await _final_nft(chain, engine, follow_creator=True)
    await indexer.backfill()
    new = Keypair()
    fork_point = net.chain.block_at(CommitmentLevel.CONFIRMED)
    plan = get_standard("token2022").upgrade_plan(
        system=d.system.pubkey(),
        owner=alice.pubkey(),
        old_mint=old,
        new_mint=new.pubkey(),
        request=MintRequest("2", "https://example.invalid/u.json", None),
        collection=d.collection,
        old_collection=d.collection,
        old_token_account=None,
    )
    upgrade = Transaction(
        [d.system, alice, new],
        Message(list(plan.instructions), d.system.pubkey()),
        fork_point.blockhash,
    )
    async with session_factory(engine)() as s, s.begin():
        user = User(wallet_address=str(alice.pubkey()))
        s.add(user)
        await s.flush()
        held = UserNft(user_id=user.id, level=1, status="unlocked", mint_address=str(old))
        op = MintOperation(
            idempotency_key="fork-upgrade",
            kind="upgrade",
            level=2,
            owner_address=str(alice.pubkey()),
            mint_address=str(new.pubkey()),
            asset_standard="token2022",
            user_id=user.id,
            state=AWAITING_OWNER,
            signature=str(upgrade.signatures[0]),
        )
        s.add_all([held, op])
        await s.flush()
        s.add(
            UserNft(
                user_id=user.id,
                level=2,
                status="pending",
                mint_address=str(new.pubkey()),
                mint_operation_id=op.id,
            )
        )
        request = NftUpgradeRequest(
            user_id=user.id, from_user_nft_id=held.id, to_level=2, mint_operation_id=op.id
        )
        s.add(request)
        await s.flush()
        s.add_all(
            Badge(user_id=user.id, badge_type=f"b{n}", reserved_by_upgrade_id=request.id)
            for n in range(2)
        )
        request_id = request.id

    async def state() -> tuple[Any, ...]:
        async with session_factory(engine)() as s:
            req = await s.get(NftUpgradeRequest, request_id)
            assert req is not None
            operation = await s.get(MintOperation, req.mint_operation_id)
            assert operation is not None
            badges = (
                await s.execute(
                    select(Badge.status, Badge.reserved_by_upgrade_id).order_by(Badge.id)
                )
            ).all()
            events = (
                await s.execute(select(EventOutbox.event_type).order_by(EventOutbox.id))
            ).scalars()
            rows = await s.execute(select(UserNft.mint_address, UserNft.status))
            statuses = {mint: status for mint, status in rows}
            return (
                statuses[str(old)],
                statuses[str(new.pubkey())],
                req.status,
                operation.state,
                [tuple(b) for b in badges],
                list(events),
            )

    settled = ("burned", "unlocked", "confirmed", "confirmed", [("consumed", None)] * 2)
    await send(client, upgrade)
    chain.advance(2)
    await indexer.backfill()
    assert await state() == (*settled, ["upgraded"])

    await _fork_back_to(chain, fork_point, indexer)
    assert await state() == (
        "unlocked",
        "pending",
        "submitted",
        AWAITING_OWNER,
        [("owned", request_id)] * 2,
        ["upgraded", "reverted", "reverted"],
    )

    await send(client, upgrade)  # the owner's signed bytes, once more
    chain.advance(2)
    await indexer.backfill()
    assert await state() == (*settled, ["upgraded", "reverted", "reverted", "upgraded"])
