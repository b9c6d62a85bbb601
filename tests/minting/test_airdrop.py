"""Airdrops: one competition NFT per award, through the claim's exactly-once pipeline."""

from __future__ import annotations

import asyncio

import pytest
from solders.keypair import Keypair
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from chain.rpc import RpcClient
from core.errors import InvalidPublicKey
from core.types import StandardName
from minting.airdrop import (
    Airdrops,
    AwardConflict,
    InvalidAwardId,
    NotACompetitionLevel,
    airdrop_key,
)
from minting.collection import ensure_collection
from minting.events import LocalStream
from minting.keys import MintKeys
from minting.relay import OutboxRelay
from minting.worker import MintWorker
from store.engine import session_factory
from store.leases import LocalLeases
from store.repos.transitions import NFT_EVENTS
from store.tables import MintOperation, User, UserNft
from tests.minting.conftest import make_user
from tests.minting.test_worker import STANDARD, _funded, _holdings, _uri, keys, rpc

__all__ = ["keys", "rpc"]  # fixtures shared with the worker's tests

KEYS = MintKeys({2: b"a" * 32}, 2)
TROPHY = 100


def _airdrops(engine: AsyncEngine, keys: MintKeys = KEYS) -> Airdrops:
    return Airdrops(session_factory(engine), keys, standard=StandardName.TOKEN2022)


async def _counts(engine: AsyncEngine) -> tuple[int, int, int]:
    async with session_factory(engine)() as session:
        found = []
        for table in (User, MintOperation, UserNft):
            found.append((await session.execute(select(func.count()).select_from(table))).scalar())
    return int(found[0] or 0), int(found[1] or 0), int(found[2] or 0)


async def test_airdrop_to_an_unknown_wallet_records_a_pending_competition_nft(
    engine: AsyncEngine,
) -> None:
    wallet = str(Keypair().pubkey())
    outcome = await _airdrops(engine).airdrop(wallet, TROPHY, "spring-2026-1st")
    op = outcome.operation

    assert outcome.created
    assert op.kind == "airdrop"
    assert op.idempotency_key == airdrop_key("spring-2026-1st", 0)
    assert op.idempotency_key.startswith("airdrop:spring-2026-1st")
    assert op.state == "created"
    assert op.level == TROPHY
    assert op.owner_address == wallet
    assert op.mint_secret_version == 2
    assert op.mint_address == str(KEYS.keypair(op.idempotency_key, 2).pubkey())
    async with session_factory(engine)() as session:
        user = (await session.execute(select(User))).scalar_one()
        nft = (await session.execute(select(UserNft))).scalar_one()
    assert user.wallet_address == wallet
    assert op.user_id == user.id
    assert (nft.kind, nft.status, nft.level) == ("competition", "pending", TROPHY)
    assert nft.mint_address == op.mint_address
    assert nft.mint_operation_id == op.id

    again = await _airdrops(engine).airdrop(wallet, TROPHY, "spring-2026-1st")
    assert not again.created
    assert again.operation.id == op.id
    assert await _counts(engine) == (1, 1, 1)


async def test_concurrent_duplicates_give_one_operation(engine: AsyncEngine) -> None:
    wallet = str(Keypair().pubkey())
    airdrops = _airdrops(engine)
    outcomes = await asyncio.gather(
        *(airdrops.airdrop(wallet, TROPHY, "final-42") for _ in range(20))
    )
    assert sum(o.created for o in outcomes) == 1
    assert len({o.operation.id for o in outcomes}) == 1
    assert await _counts(engine) == (1, 1, 1)


async def test_a_trader_with_a_tier_nft_gets_one_nft_per_award(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        user = await make_user(session, "100000")
        session.add(
            UserNft(
                user_id=user.id, level=1, status="unlocked", mint_address=str(Keypair().pubkey())
            )
        )
        await session.commit()
    first = await _airdrops(engine).airdrop(user.wallet_address, TROPHY, "cup-1")
    second = await _airdrops(engine).airdrop(user.wallet_address, TROPHY, "cup-2")
    assert first.created
    assert second.created
    assert first.operation.mint_address != second.operation.mint_address
    assert {first.operation.user_id, second.operation.user_id} == {user.id}
    assert await _counts(engine) == (1, 2, 3)


async def test_refusals_have_their_codes_and_write_nothing(engine: AsyncEngine) -> None:
    wallet = str(Keypair().pubkey())
    airdrops = _airdrops(engine)
    for level in (1, 5, 7):  # tier levels, and a level that does not exist
        with pytest.raises(NotACompetitionLevel) as refused:
            await airdrops.airdrop(wallet, level, "cup")
        assert refused.value.code == "NOT_A_COMPETITION_LEVEL"
        assert refused.value.details["competition_levels"] == [TROPHY]
    with pytest.raises(InvalidPublicKey):
        await airdrops.airdrop("not-a-wallet", TROPHY, "cup")
    for award in ("", " cup", "cup 1", "x" * 101, "-cup"):
        with pytest.raises(InvalidAwardId) as bad:
            await airdrops.airdrop(wallet, TROPHY, award)
        assert bad.value.code == "INVALID_AWARD_ID"
    assert await _counts(engine) == (0, 0, 0)

    await airdrops.airdrop(wallet, TROPHY, "cup")
    with pytest.raises(AwardConflict) as taken:
        await airdrops.airdrop(str(Keypair().pubkey()), TROPHY, "cup")
    assert taken.value.code == "AWARD_CONFLICT"
    assert await _counts(engine) == (1, 1, 1)


async def test_a_failed_airdrop_can_be_given_again(engine: AsyncEngine) -> None:
    wallet = str(Keypair().pubkey())
    first = (await _airdrops(engine).airdrop(wallet, TROPHY, "cup")).operation
    async with session_factory(engine)() as session, session.begin():
        # What the worker or `aiw3 mint cancel` records once the mint provably never landed.
        await session.execute(
            update(MintOperation).where(MintOperation.id == first.id).values(state="failed")
        )
        await session.execute(
            update(UserNft).where(UserNft.mint_operation_id == first.id).values(status="failed")
        )
    again = await _airdrops(engine).airdrop(wallet, TROPHY, "cup")
    assert again.created
    assert again.operation.idempotency_key == airdrop_key("cup", 1)
    assert again.operation.mint_address != first.mint_address
    third = await _airdrops(engine).airdrop(wallet, TROPHY, "cup")
    assert not third.created
    assert third.operation.id == again.operation.id


async def test_the_worker_mints_an_airdrop_and_the_relay_announces_it(
    engine: AsyncEngine, rpc: RpcClient, keys: MintKeys
) -> None:
    sessions = session_factory(engine)
    system = await _funded(rpc)
    collection = await ensure_collection(sessions, rpc, system, keys, STANDARD)
    wallet = str(Keypair().pubkey())
    op = (await _airdrops(engine, keys).airdrop(wallet, TROPHY, "grand-final")).operation

    worker = MintWorker(
        sessions, rpc, system, keys, STANDARD, uri_for=_uri, collection=collection, poll=0.02
    )
    await worker.run_once(within=30)
    assert await _holdings(rpc, wallet, op.mint_address) == 1
    async with sessions() as session:
        nft = (await session.execute(select(UserNft))).scalar_one()
    assert (nft.kind, nft.status, nft.level) == ("competition", "unlocked", TROPHY)

    stream = LocalStream()
    relay = OutboxRelay(sessions, stream, LocalLeases())
    assert await relay.run_once() == 1
    [entry] = await stream.read(NFT_EVENTS)
    assert entry.event.event_type == "unlocked"
    assert entry.event.payload["mint"] == op.mint_address
    assert entry.event.payload["kind"] == "competition"
    assert entry.event.payload["level"] == TROPHY
