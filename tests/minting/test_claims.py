"""Claims: one operation and one pending NFT per user, however many claims race."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from prometheus_client import CollectorRegistry
from solders.keypair import Keypair
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from chain.keys import Signer
from core.errors import RetryableStoreError
from core.types import StandardName
from minting.cache import LocalCache, LocalLocks, Locks
from minting.claims import ClaimOutcome, Claims, claim_key
from minting.errors import NftAlreadyOwned, QualificationNotMet, UserNotFound
from minting.keys import MintKeys
from minting.metrics import MintingMetrics
from minting.qualification import QualificationService, cache_key
from store.engine import session_factory
from store.tables import MintOperation, UserNft
from tests.minting.conftest import make_user

KEYS = MintKeys({1: b"k" * 32}, 1)


class _NoLocks:
    """No lock at all: the database constraints alone must hold."""

    @asynccontextmanager
    async def hold(self, name: str, *, ttl: float, wait: float) -> AsyncIterator[bool]:
        yield False


def _claims(engine: AsyncEngine, locks: Locks | None = None, **kwargs: object) -> Claims:
    return Claims(
        session_factory(engine),
        KEYS,
        standard=StandardName.TOKEN2022,
        locks=locks or LocalLocks(),
        **kwargs,  # type: ignore[arg-type]
    )


async def _counts(engine: AsyncEngine) -> tuple[int, int]:
    async with session_factory(engine)() as session:
        ops = (await session.execute(select(func.count()).select_from(MintOperation))).scalar()
        nfts = (await session.execute(select(func.count()).select_from(UserNft))).scalar()
    return int(ops or 0), int(nfts or 0)


async def test_claim_records_operation_and_pending_nft(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        user = await make_user(session, "100000.00")
    cache = LocalCache()
    service = QualificationService(session_factory(engine), cache)
    await service.check(user.id)
    registry = CollectorRegistry()
    claims = _claims(engine, qualifications=service, metrics=MintingMetrics(registry))

    outcome = await claims.claim(user.wallet_address)
    op = outcome.operation
    assert outcome.created
    assert op.idempotency_key == claim_key(user.id, user.wallet_address, 1, 0)
    assert op.state == "created"
    assert op.kind == "claim"
    assert op.level == 1
    assert op.owner_address == user.wallet_address
    assert op.mint_secret_version == 1
    assert op.mint_address == str(KEYS.keypair(op.idempotency_key, 1).pubkey())
    assert await cache.get(cache_key(user.id)) is None  # invalidated
    async with session_factory(engine)() as session:
        nft = (await session.execute(select(UserNft))).scalar_one()
    assert nft.status == "pending"
    assert nft.mint_address == op.mint_address
    assert nft.mint_operation_id == op.id

    again = await claims.claim(user.wallet_address)
    assert not again.created
    assert again.operation.id == op.id
    assert registry.get_sample_value("nft_claims_total", {"level": "1", "status": "created"}) == 1
    assert registry.get_sample_value("nft_claims_total", {"level": "1", "status": "duplicate"}) == 1


async def test_refusals_have_their_codes_and_write_nothing(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        poor = await make_user(session, "99999.99")
        rich = await make_user(session, "100000")
    registry = CollectorRegistry()
    claims = _claims(engine, metrics=MintingMetrics(registry))
    with pytest.raises(UserNotFound) as unknown:
        await claims.claim(str(Keypair().pubkey()))
    assert unknown.value.code == "USER_NOT_FOUND"
    with pytest.raises(QualificationNotMet) as short:
        await claims.claim(poor.wallet_address)
    assert short.value.code == "QUALIFICATION_NOT_MET"
    assert short.value.details["volume_shortfall_usd"] == "0.01"
    assert await _counts(engine) == (0, 0)
    status = {"level": "none", "status": "QUALIFICATION_NOT_MET"}
    assert registry.get_sample_value("nft_claims_total", status) == 1

    async with session_factory(engine)() as session:
        session.add(
            UserNft(
                user_id=rich.id, level=1, status="unlocked", mint_address=str(Keypair().pubkey())
            )
        )
        await session.commit()
    with pytest.raises(NftAlreadyOwned) as owned:
        await claims.claim(rich.wallet_address)
    assert owned.value.code == "NFT_ALREADY_OWNED"
    assert await _counts(engine) == (0, 1)


async def test_a_failed_operation_does_not_block_a_new_claim(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        user = await make_user(session, "200000")
    claims = _claims(engine)
    first = (await claims.claim(user.wallet_address)).operation
    async with session_factory(engine)() as session:
        await session.execute(
            update(MintOperation).where(MintOperation.id == first.id).values(state="failed")
        )
        await session.execute(
            update(UserNft)
            .where(UserNft.mint_address == first.mint_address)
            .values(status="failed")
        )
        await session.commit()
    second = await claims.claim(user.wallet_address)
    assert second.created
    assert second.operation.idempotency_key == claim_key(user.id, user.wallet_address, 1, 1)
    assert second.operation.mint_address != first.mint_address


@pytest.mark.parametrize("locking", ["none", "local"])
async def test_200_concurrent_claims_give_one_operation(engine: AsyncEngine, locking: str) -> None:
    async with session_factory(engine)() as session:
        user = await make_user(session, "100000")
    claims = _claims(engine, _NoLocks() if locking == "none" else LocalLocks())

    async def claim() -> ClaimOutcome | None:
        try:
            return await claims.claim(user.wallet_address)
        except RetryableStoreError:  # the one error a caller may see: "busy, claim again"
            return None

    results = await asyncio.gather(*(claim() for _ in range(200)))
    outcomes = [o for o in results if o is not None]
    assert sum(o.created for o in outcomes) == 1
    assert len({o.operation.id for o in outcomes}) == 1
    assert await _counts(engine) == (1, 1)


def test_mint_keys_are_derived_and_versioned() -> None:
    keys = MintKeys({1: b"a" * 32, 2: b"b" * 32}, 2)
    assert keys.keypair("claim:1:level1:attempt0") == keys.keypair("claim:1:level1:attempt0", 2)
    assert keys.keypair("x", 1).pubkey() != keys.keypair("x", 2).pubkey()
    assert keys.keypair("x").pubkey() != keys.keypair("y").pubkey()
    assert "a" * 32 not in repr(keys)
    system = Signer(Keypair.from_seed(bytes(32)))
    dev = MintKeys.development(system)
    assert dev.keypair("x") == MintKeys.development(system).keypair("x")
    assert dev.keypair("x") != MintKeys.development(Signer.generate()).keypair("x")
