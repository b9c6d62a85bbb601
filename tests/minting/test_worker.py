"""The sender worker on the local chain: claim -> mint -> unlocked, exactly once."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from chain.codecs import token2022
from chain.keys import Signer
from chain.localnet import Localnet
from chain.programs import TOKEN_2022_PROGRAM
from chain.rpc import RpcClient
from chain.standards import get_standard
from core.types import StandardName
from minting.cache import LocalLocks
from minting.claims import Claims
from minting.collection import ensure_collection
from minting.ipfs import LocalPinner
from minting.keys import MintKeys
from minting.metrics import MintingMetrics
from minting.worker import MintWorker
from store.engine import session_factory
from store.repos import mint_operations
from store.repos.mint_operations import NewMintOperation
from store.tables import EventOutbox, MintOperation, UserNft
from tests.minting.conftest import make_user

STANDARD = get_standard("token2022")


@pytest.fixture
def keys() -> MintKeys:
    # A fresh secret per test: the session's chain keeps the mints of earlier tests.
    return MintKeys({1: os.urandom(32)}, 1)


class _Stop(Exception):
    """Raised by a failpoint: the worker stops right after a durable step."""


@pytest.fixture
def pinner(tmp_path: Path) -> LocalPinner:
    return LocalPinner(tmp_path / "ipfs")


@pytest_asyncio.fixture
async def rpc(localnet: Localnet) -> AsyncIterator[RpcClient]:
    async with RpcClient([localnet.rpc_url], metrics=CollectorRegistry()) as client:
        yield client


async def _funded(rpc: RpcClient) -> Signer:
    system = Signer.generate()
    signature = await rpc.request_airdrop(system.pubkey, 10 * 10**9)
    for _ in range(200):
        status = (await rpc.get_signature_statuses([signature])).value[0]
        if status is not None and status.confirmation_status is not None:
            break
        await asyncio.sleep(0.02)
    for _ in range(200):
        if (await rpc.get_balance(system.pubkey, Confirmed)).value > 0:
            return system
        await asyncio.sleep(0.02)
    raise AssertionError("airdrop did not land")


async def _holdings(rpc: RpcClient, owner: str, mint: str) -> int:
    accounts = (
        await rpc.get_token_accounts_by_owner(
            Pubkey.from_string(owner), mint=Pubkey.from_string(mint)
        )
    ).value
    return sum(token2022.decode_account(bytes(a.account.data)).base.amount for a in accounts)


async def test_claim_then_worker_mints_into_the_wallet(
    engine: AsyncEngine, rpc: RpcClient, keys: MintKeys, pinner: LocalPinner
) -> None:
    sessions = session_factory(engine)
    system = await _funded(rpc)
    collection = await ensure_collection(sessions, rpc, system, keys, STANDARD)
    async with sessions() as session:
        user = await make_user(session, "100000")
    claims = Claims(sessions, keys, standard=StandardName.TOKEN2022, locks=LocalLocks())
    op = (await claims.claim(user.wallet_address)).operation
    registry = CollectorRegistry()
    worker = MintWorker(
        sessions,
        rpc,
        system,
        keys,
        STANDARD,
        pinner=pinner,
        collection=collection,
        metrics=MintingMetrics(registry),
        poll=0.02,
        compute_unit_limit=100_000,
        compute_unit_price=1_000,
    )
    await worker.run_once(within=30)

    assert await _holdings(rpc, user.wallet_address, op.mint_address) == 1
    account = (await rpc.get_account_info(Pubkey.from_string(op.mint_address))).value
    assert account is not None
    assert account.owner == TOKEN_2022_PROGRAM
    minted = token2022.decode_mint(bytes(account.data))
    member = minted.get(token2022.TokenGroupMember)
    assert member is not None
    assert member.group == collection
    meta = minted.get(token2022.TokenMetadata)
    assert meta is not None
    async with sessions() as session:
        nft = (await session.execute(select(UserNft))).scalar_one()
        done = await session.get(MintOperation, op.id)
        events = (await session.execute(select(EventOutbox))).scalars().all()
    assert nft.status == "unlocked"
    assert done is not None
    assert done.state == "confirmed"
    assert done.signed_tx is not None
    assert done.last_valid_block_height is not None
    assert [e.event_type for e in events] == ["unlocked"]
    # The NFT's own metadata JSON was pinned before the mint and is what the chain points at.
    assert done.metadata_uri is not None
    assert meta.uri == done.metadata_uri
    document = json.loads(await pinner.cat(done.metadata_uri.removeprefix("ipfs://")))
    assert op.mint_address in document["description"]
    assert {"trait_type": "level", "value": 1} in document["attributes"]
    assert registry.get_sample_value("nft_mint_operations", {"state": "confirmed"}) == 1
    assert (registry.get_sample_value("nft_fee_wallet_balance_sol") or 0) > 0

    # Running again changes nothing.
    assert await worker.run_once(within=5)
    assert await worker.step() == 0
    async with sessions() as session:
        assert len((await session.execute(select(EventOutbox))).scalars().all()) == 1


async def test_expired_blockhash_is_resigned_with_the_same_mint(
    engine: AsyncEngine, manual_localnet: Localnet, keys: MintKeys, pinner: LocalPinner
) -> None:
    sessions = session_factory(engine)
    chain = manual_localnet.chain
    async with RpcClient([manual_localnet.rpc_url], metrics=CollectorRegistry()) as rpc:
        system = Signer.generate()
        await rpc.request_airdrop(system.pubkey, 10 * 10**9)
        for _ in range(8):
            chain.advance_slot()
        async with sessions() as session:
            user = await make_user(session, "100000")
        claims = Claims(sessions, keys, standard=StandardName.TOKEN2022, locks=LocalLocks())
        op = (await claims.claim(user.wallet_address)).operation

        def stop_after_signing(name: str) -> None:
            if name == "after_signed":
                raise _Stop(name)

        registry = CollectorRegistry()
        metrics = MintingMetrics(registry)
        crashing = MintWorker(
            sessions, rpc, system, keys, STANDARD, pinner=pinner, failpoint=stop_after_signing
        )
        await crashing.step()  # signed and stored, never sent
        async with sessions() as session:
            signed = await session.get(MintOperation, op.id)
        assert signed is not None
        assert signed.state == "signed"
        first_signature = signed.signature

        # The stored blockhash expires: the finalized height passes lastValidBlockHeight.
        for _ in range(170):
            chain.advance_slot()

        async def clock() -> None:
            while True:
                chain.advance_slot()
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(clock())
        try:
            worker = MintWorker(
                sessions, rpc, system, keys, STANDARD, pinner=pinner, metrics=metrics, poll=0.02
            )
            await worker.run_once(within=30)
        finally:
            ticking.cancel()
        async with sessions() as session:
            done = await session.get(MintOperation, op.id)
            nft = (await session.execute(select(UserNft))).scalar_one()
        assert done is not None
        assert done.state == "confirmed"
        assert done.mint_address == op.mint_address
        assert done.signature != first_signature
        assert nft.status == "unlocked"
        assert registry.get_sample_value("nft_mint_resigns_total") == 1
        assert await _holdings(rpc, user.wallet_address, op.mint_address) == 1
        history = await rpc.get_signatures_for_address(Pubkey.from_string(op.mint_address))
        assert [str(h.signature) for h in history] == [done.signature]


async def test_an_upgrade_waiting_for_its_owner_is_left_alone(
    engine: AsyncEngine, rpc: RpcClient, keys: MintKeys, pinner: LocalPinner
) -> None:
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        op, _ = await mint_operations.create_or_get(
            session,
            NewMintOperation(
                idempotency_key="upgrade:test",
                kind="upgrade",
                level=2,
                owner_address=str(Keypair().pubkey()),
                mint_address=str(Keypair().pubkey()),
                asset_standard="token2022",
                user_id=None,
            ),
        )
        op.state = "signed"  # signed by the system keys, the owner's signature still missing
    worker = MintWorker(sessions, rpc, Signer.generate(), keys, STANDARD, pinner=pinner)
    assert await worker.resume() == 0
    assert await worker.step() == 0
    assert await worker.run_once(within=5)  # nothing of the worker's own is unfinished
    async with sessions() as session:
        left = await session.get(MintOperation, op.id)
    assert left is not None
    assert (left.state, left.attempts, left.signature) == ("signed", 0, None)


async def test_a_batch_write_that_finds_one_operation_moved_still_moves_the_others(
    engine: AsyncEngine, rpc: RpcClient, keys: MintKeys, pinner: LocalPinner
) -> None:
    """The ``sent`` marks of a batch go as one guarded statement; when another worker moved
    one of its operations first, that statement is rolled back and each row is guarded alone."""
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        for n in range(3):
            await mint_operations.create_or_get(
                session,
                NewMintOperation(
                    idempotency_key=f"claim:batch:{n}",
                    kind="claim",
                    level=1,
                    owner_address=str(Keypair().pubkey()),
                    mint_address=str(Keypair().pubkey()),
                    asset_standard="token2022",
                ),
            )
    worker = MintWorker(sessions, rpc, Signer.generate(), keys, STANDARD, pinner=pinner)
    held = await worker._claim(None)
    assert len(held) == 3
    async with sessions() as session, session.begin():  # another worker got there first
        assert await mint_operations.guarded_update(
            session, held[1].id, "created", {"state": "signed"}
        )
    moved = await worker._guarded_all([(op, {"state": "signed"}) for op in held], attempts=True)
    assert [op.id for op in moved] == [held[0].id, held[2].id]
    assert [op.attempts for op in held] == [1, 0, 1]  # our copies mirror what we wrote
    async with sessions() as session:
        rows = (await session.execute(select(MintOperation).order_by(MintOperation.id))).scalars()
        assert [(op.state, op.attempts) for op in rows if op.id in {o.id for o in held}] == [
            ("signed", 1),
            ("signed", 0),
            ("signed", 1),
        ]
    # All still as read: one statement moves the whole batch.
    moved = await worker._guarded_all([(op, {"state": "sent"}) for op in moved])
    assert [op.state for op in moved] == ["sent", "sent"]
