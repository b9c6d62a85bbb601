"""indexer.projection on real histories of the local chain, on every database: the rows it
writes, idempotence and order independence, authenticity, and the business links."""

from __future__ import annotations

import random
from typing import Any

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import CreateAccountParams, create_account
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from chain.codecs import ata, spl_token
from chain.rpc import RpcClient
from indexer.decode import DecodedTx, decode_transaction
from indexer.projection import Projection, Trust
from store.engine import session_factory
from store.repos import tracking
from store.tables import (
    AssetEvent,
    AssetRow,
    EventOutbox,
    NftTier,
    TrackedAccount,
    User,
    UserNft,
    metadata,
)

from . import chainops as ops
from .chainops import Deployment, _send


async def _decode_all(rpc: RpcClient, signatures: list[Signature]) -> list[DecodedTx]:
    out = []
    for sig in signatures:
        result = await rpc.get_transaction(sig, commitment=Confirmed)
        assert result is not None
        # Position in the block: one transaction per slot here, except when two share one.
        out.append(decode_transaction(result, len([d for d in out if d.ref.slot == result.slot])))
    return out


def _trust(deployment: Deployment) -> Trust:
    return Trust(
        collections=frozenset({str(deployment.collection)}),
        creators=frozenset({str(deployment.system.pubkey())}),
    )


async def _snapshot(engine: AsyncEngine) -> dict[str, Any]:
    async with session_factory(engine)() as s:
        assets = [
            {
                c.name: getattr(a, c.name)
                for c in AssetRow.__table__.columns
                if c.name != "updated_at"
            }
            for a in (await s.execute(select(AssetRow).order_by(AssetRow.mint))).scalars()
        ]
        events = sorted(
            (
                e.mint,
                e.kind,
                e.signature,
                e.instruction_index,
                e.slot,
                e.position,
                e.from_owner,
                e.to_owner,
            )
            for e in (await s.execute(select(AssetEvent))).scalars()
        )
        accounts = [
            {c.name: getattr(a, c.name) for c in TrackedAccount.__table__.columns}
            for a in (
                await s.execute(select(TrackedAccount).order_by(TrackedAccount.address))
            ).scalars()
        ]
        statuses = [
            (n.mint_address, n.status) for n in (await s.execute(select(UserNft))).scalars()
        ]
        outbox = sorted(
            (o.event_type, o.payload["mint"], o.payload["slot"])
            for o in (await s.execute(select(EventOutbox))).scalars()
        )
    return {
        "assets": assets,
        "events": events,
        "accounts": accounts,
        "nfts": statuses,
        "outbox": outbox,
    }


async def _reset(engine: AsyncEngine, pending: list[str]) -> None:
    async with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name != "nft_tiers":
                await conn.execute(delete(table))
    async with session_factory(engine)() as s, s.begin():
        level = (await s.execute(select(NftTier.level).order_by(NftTier.level))).scalars().first()
        for i, mint in enumerate(pending):
            user = User(wallet_address=f"wallet{i}")
            s.add(user)
            await s.flush()
            s.add(UserNft(user_id=user.id, level=level, status="pending", mint_address=mint))


async def _apply(engine: AsyncEngine, projection: Projection, txs: list[DecodedTx]) -> None:
    """One database transaction per chain transaction, as the runner does; and, as the runner
    does when a mint becomes tracked, the mint's history is read again (here: re-applied in
    chain order), since facts about a mint seen before its creation could not be attached."""
    new: set[str] = set()
    for tx in txs:
        async with session_factory(engine)() as s, s.begin():
            new |= (await projection.apply(s, tx)).new_mints
    if new:
        for tx in sorted(txs, key=lambda t: t.ref):
            if tx.mints() & new:
                async with session_factory(engine)() as s, s.begin():
                    await projection.apply(s, tx)


async def _history(
    client: AsyncClient, d: Deployment
) -> tuple[Pubkey, dict[str, Keypair], list[Signature]]:
    alice, bob, carol, mallory = [await ops.fund(client) for _ in range(4)]
    keys = {"alice": alice, "bob": bob, "carol": carol, "mallory": mallory}
    mint, minted = await ops.mint(
        client, d.system, alice.pubkey(), collection=d.collection, level="3"
    )
    sigs = [minted]
    sigs.append(await ops.forged_activation(client, mallory, alice.pubkey(), mint))
    sigs.append(await ops.activate(client, alice, mint))
    fresh = await ops.fresh_account(client, alice, bob.pubkey(), mint)
    alice_ata = ops.ata_of(alice.pubkey(), mint)
    sigs.append(await ops.approve(client, alice, alice_ata, mallory.pubkey()))
    sigs.append(await ops.transfer_plain(client, alice, alice_ata, fresh))
    sigs.append(await ops.close(client, alice, alice_ata))
    await ops.create_ata(client, bob, carol.pubkey(), mint)
    sigs.append(await ops.transfer_plain(client, bob, fresh, ops.ata_of(carol.pubkey(), mint)))
    sigs.append(await ops.activate(client, bob, mint))  # bob no longer owns it: no activation
    return mint, keys, sigs


async def test_a_history_projects_to_the_chain_in_any_order_and_twice(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment, engine: AsyncEngine
) -> None:
    mint, keys, sigs = await _history(client, deployment)
    txs = await _decode_all(rpc, sigs)
    projection = Projection(_trust(deployment))
    m = str(mint)

    await _reset(engine, [m])
    await _apply(engine, projection, txs)
    first = await _snapshot(engine)
    [asset] = first["assets"]
    assert asset["owner"] == str(keys["carol"].pubkey())
    assert asset["token_account"] == str(ops.ata_of(keys["carol"].pubkey(), mint))
    assert asset["genuine"] is True
    assert asset["level"] == 3
    assert asset["collection"] == str(deployment.collection)
    assert asset["supply"] == 1
    assert asset["burnt"] is False
    assert asset["activated"] is True
    assert asset["delegate"] is None  # the approval was on alice's account, now closed
    kinds = [(e[1], e[7]) for e in sorted(first["events"], key=lambda e: (e[4], e[5]))]
    alice, bob, carol, mallory = (
        str(keys[n].pubkey()) for n in ("alice", "bob", "carol", "mallory")
    )
    assert kinds == [
        ("mint", alice),
        ("activate", alice),
        ("delegate", mallory),
        ("transfer", bob),
        ("close", None),
        ("transfer", carol),
    ]
    assert first["nfts"] == [(m, "active")]
    assert [o[0] for o in first["outbox"]].count("transferred") == 2
    assert sorted(o[0] for o in first["outbox"]) == [
        "activated",
        "transferred",
        "transferred",
        "unlocked",
    ]

    await _apply(engine, projection, txs)  # every notification again
    assert await _snapshot(engine) == first

    for seed in range(3):
        shuffled = list(txs)
        random.Random(seed).shuffle(shuffled)
        await _reset(engine, [m])
        await _apply(engine, projection, shuffled)
        again = await _snapshot(engine)
        changed = {
            k: (v, first["assets"][0][k])
            for k, v in again["assets"][0].items()
            if v != first["assets"][0][k]
        }
        assert changed == {}
        assert again["assets"] == first["assets"]
        assert again["events"] == first["events"]
        assert again["accounts"] == first["accounts"]
        assert again["nfts"] == first["nfts"]
        assert sorted(o[0] for o in again["outbox"]) == sorted(o[0] for o in first["outbox"])

    # Burn and close: burnt, no owner, the user NFT burned, one more event.
    burn = await _decode_all(rpc, [await ops.burn(client, keys["carol"], mint)])
    await _apply(engine, projection, burn + burn)
    async with session_factory(engine)() as s:
        row = await s.get(AssetRow, m)
        assert row is not None
        assert row.burnt is True
        assert row.owner is None
        assert row.supply == 0
        nft = (await s.execute(select(UserNft))).scalar_one()
        assert nft.status == "burned"
        kinds_after = [e.kind for e in await tracking.event_kinds(s, m)]
        assert kinds_after.count("burn") == 1
        assert kinds_after.count("close") == 2


async def test_counterfeits_are_stored_as_not_genuine(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment, engine: AsyncEngine
) -> None:
    attacker = await ops.fund(client)
    fake = await ops.deploy(client)  # a look-alike collection under another key
    owner = Keypair().pubkey()
    outside, s1 = await ops.mint(client, attacker, owner, collection=None, level="5")
    lookalike, s2 = await ops.mint(
        client, fake.system, owner, collection=fake.collection, level="5"
    )
    # Our own key minting without the collection is not proof either.
    loose, s3 = await ops.mint(client, deployment.system, owner, collection=None, level="5")
    projection = Projection(_trust(deployment))
    await _reset(engine, [])
    await _apply(engine, projection, await _decode_all(rpc, [s1, s2, s3]))
    async with session_factory(engine)() as s:
        for mint in (outside, lookalike, loose):
            row = await s.get(AssetRow, str(mint))
            assert row is not None
            assert row.genuine is False
            assert row.level is None  # never trusted on a counterfeit
            assert row.owner == str(owner)


async def test_attacker_metadata_never_breaks_ingestion(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment, engine: AsyncEngine
) -> None:
    owner = Keypair().pubkey()
    long_title = "x" * 300
    weird = "nul\x00 🦀 \u202e"
    long_mint, s1 = await ops.mint(
        client, deployment.system, owner, collection=deployment.collection, title=long_title
    )
    weird_mint, s2 = await ops.mint(
        client,
        deployment.system,
        owner,
        collection=deployment.collection,
        title=weird,
        level="99999999999999999999",
    )
    emoji_mint, s3 = await ops.mint(
        client, deployment.system, owner, collection=deployment.collection, title="🦀 crab"
    )
    projection = Projection(_trust(deployment))
    await _reset(engine, [])
    await _apply(engine, projection, await _decode_all(rpc, [s1, s2, s3]))
    async with session_factory(engine)() as s:
        long_row = await s.get(AssetRow, str(long_mint))
        assert long_row is not None
        assert long_row.name is None
        assert long_row.metadata_error is not None
        assert "longer than 200" in long_row.metadata_error
        assert long_row.owner == str(owner)
        weird_row = await s.get(AssetRow, str(weird_mint))
        assert weird_row is not None
        assert weird_row.metadata_error == "name holds a NUL character"
        assert weird_row.level is None
        emoji_row = await s.get(AssetRow, str(emoji_mint))
        assert emoji_row is not None
        assert emoji_row.name is not None
        assert emoji_row.name.endswith("🦀 crab")
        assert emoji_row.level == 1


async def test_an_activation_is_judged_by_the_owner_when_it_ran_in_any_order(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment, engine: AsyncEngine
) -> None:
    """The mint's own history lists the memos before the plain ``Transfer`` that made bob the
    owner (it names neither mint nor bob): the crawl applies them first. Bob's memo becomes
    valid, and alice's (sent after she gave the NFT away) stops being, once it arrives."""
    alice, bob = await ops.fund(client), await ops.fund(client)
    mint, minted = await ops.mint(
        client, deployment.system, alice.pubkey(), collection=deployment.collection
    )
    await ops.create_ata(client, bob, bob.pubkey(), mint)
    moved = await ops.transfer_plain(
        client, alice, ops.ata_of(alice.pubkey(), mint), ops.ata_of(bob.pubkey(), mint)
    )
    by_bob = await ops.activate(client, bob, mint)
    by_alice = await ops.activate(client, alice, mint)
    mint_tx, move_tx, bob_tx, alice_tx = await _decode_all(rpc, [minted, moved, by_bob, by_alice])
    projection = Projection(_trust(deployment))
    m = str(mint)
    for order in (
        [mint_tx, move_tx, bob_tx, alice_tx],
        [mint_tx, bob_tx, alice_tx, move_tx],  # the mint's own history first
        [mint_tx, alice_tx, move_tx, bob_tx],
    ):
        await _reset(engine, [m])
        for tx in order:
            async with session_factory(engine)() as s, s.begin():
                await projection.apply(s, tx)
        async with session_factory(engine)() as s:
            row = await s.get(AssetRow, m)
            assert row is not None
            assert row.owner == str(bob.pubkey())
            assert row.activated is True
            activations = [
                (e.signature, e.to_owner)
                for e in await tracking.event_kinds(s, m)
                if e.kind == "activate"
            ]
        assert activations == [(str(by_bob), str(bob.pubkey()))]


async def test_a_burn_applied_before_its_mint_keeps_its_history(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment, engine: AsyncEngine
) -> None:
    """A burnt mint is no longer crawled, so a burn projected ahead of the mint's creation must
    leave its rows then, not wait for an asset row that did not exist yet."""
    alice = await ops.fund(client)
    mint, minted = await ops.mint(
        client, deployment.system, alice.pubkey(), collection=deployment.collection
    )
    burnt = await ops.burn(client, alice, mint)
    mint_tx, burn_tx = await _decode_all(rpc, [minted, burnt])
    projection = Projection(_trust(deployment))
    m = str(mint)
    await _reset(engine, [m])
    for tx in (burn_tx, mint_tx):
        async with session_factory(engine)() as s, s.begin():
            await projection.apply(s, tx)
    async with session_factory(engine)() as s:
        row = await s.get(AssetRow, m)
        assert row is not None
        assert (row.burnt, row.owner, row.supply) == (True, None, 0)
        kinds = sorted(e.kind for e in await tracking.event_kinds(s, m))
        nft = (await s.execute(select(UserNft))).scalar_one()
    assert kinds == ["burn", "close", "mint"]
    assert nft.status == "burned"


async def test_delegate_and_frozen_state_follow_approve_revoke_freeze_thaw(
    client: AsyncClient, rpc: RpcClient, deployment: Deployment, engine: AsyncEngine
) -> None:
    """Approve/Revoke set and clear the holder's delegate, FreezeAccount/ThawAccount its frozen
    state; each is one history row, in any order and applied twice, one batch or one by one."""
    alice, mallory = await ops.fund(client), await ops.fund(client)
    mint, minted = await ops.mint(
        client, deployment.system, alice.pubkey(), collection=deployment.collection
    )
    account = ops.ata_of(alice.pubkey(), mint)
    approved = await ops.approve(client, alice, account, mallory.pubkey())
    txs = await _decode_all(rpc, [minted, approved])
    projection = Projection(_trust(deployment))
    m, a, d = str(mint), str(alice.pubkey()), str(mallory.pubkey())

    await _reset(engine, [m])
    await _apply(engine, projection, txs)
    async with session_factory(engine)() as s:
        row = await s.get(AssetRow, m)
        assert row is not None
        assert (row.owner, row.delegate) == (a, d)

    txs += await _decode_all(rpc, [await ops.approve(client, alice, account, None)])
    for order in (txs, list(reversed(txs))):
        await _reset(engine, [m])
        async with session_factory(engine)() as s, s.begin():
            await projection.apply_all(s, order + order)  # one batch, every tx twice
        async with session_factory(engine)() as s:
            row = await s.get(AssetRow, m)
            assert row is not None
            assert (row.owner, row.delegate, row.frozen) == (a, None, False)
            history = [(e.kind, e.from_owner, e.to_owner) for e in await tracking.event_kinds(s, m)]
        assert history == [("mint", None, a), ("delegate", a, d), ("undelegate", a, None)]

    # Our NFTs have no freeze authority: a zero-decimal mint of someone else's that has one.
    issuer = await ops.fund(client)
    other, account2 = await _freezable_nft(client, issuer, alice.pubkey())
    frozen = await _freeze(client, issuer, account2, other, freeze=True)
    thawed = await _freeze(client, issuer, account2, other, freeze=False)
    freeze_tx, thaw_tx = await _decode_all(rpc, [frozen, thawed])
    o = str(other)
    for order in ([freeze_tx], [thaw_tx, freeze_tx], [freeze_tx, thaw_tx, freeze_tx]):
        await _reset(engine, [])
        for tx in order:
            async with session_factory(engine)() as s, s.begin():
                await projection.apply(s, tx)
        async with session_factory(engine)() as s:
            state = await s.get(TrackedAccount, str(account2))
            assert state is not None
            assert state.frozen is (order == [freeze_tx])  # the newest applied one wins
            history = [(e.kind, e.from_owner) for e in await tracking.event_kinds(s, o)]
        expected = [("freeze", a)] if order == [freeze_tx] else [("freeze", a), ("thaw", a)]
        assert history == expected


async def _freezable_nft(
    client: AsyncClient, issuer: Keypair, owner: Pubkey
) -> tuple[Pubkey, Pubkey]:
    """A bare zero-decimal Token-2022 mint with a freeze authority, one token held by ``owner``."""
    mint_key = Keypair()
    rent = (await client.get_minimum_balance_for_rent_exemption(82)).value
    holder = ops.ata_of(owner, mint_key.pubkey())
    ixs = [
        create_account(
            CreateAccountParams(
                from_pubkey=issuer.pubkey(),
                to_pubkey=mint_key.pubkey(),
                lamports=rent,
                space=82,
                owner=ops.T22,
            )
        ),
        spl_token.encode(
            spl_token.InitializeMint2(
                ops.T22, mint_key.pubkey(), 0, issuer.pubkey(), issuer.pubkey()
            )
        ),
        ata.create(issuer.pubkey(), owner, mint_key.pubkey(), ops.T22),
        spl_token.encode(spl_token.MintTo(ops.T22, mint_key.pubkey(), holder, issuer.pubkey(), 1)),
    ]
    await _send(client, [issuer, mint_key], ixs)
    return mint_key.pubkey(), holder


async def _freeze(
    client: AsyncClient, issuer: Keypair, account: Pubkey, mint_key: Pubkey, *, freeze: bool
) -> Signature:
    cls = spl_token.FreezeAccount if freeze else spl_token.ThawAccount
    ix = spl_token.encode(cls(ops.T22, account, mint_key, issuer.pubkey()))
    return await _send(client, [issuer], [ix])
