"""Qualification: exact volume thresholds, badges, benefits and the cache."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.keypair import Keypair
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from minting import qualification
from minting.cache import LocalCache, RedisCache
from minting.errors import UserNotFound
from minting.qualification import Qualification, QualificationService
from store.engine import session_factory
from store.repos import users
from store.tables import AssetRow, Badge, UserNft
from tests.minting.conftest import make_user


async def _nft(
    session: AsyncSession, user_id: int, level: int, status: str, kind: str = "tier"
) -> UserNft:
    nft = UserNft(
        user_id=user_id, level=level, kind=kind, status=status, mint_address=str(Keypair().pubkey())
    )
    session.add(nft)
    await session.commit()
    return nft


async def test_exactly_100000_qualifies_for_level_1(session: AsyncSession) -> None:
    user = await make_user(session, "100000.00")
    answer = await qualification.compute(session, user.id)
    assert answer.qualified_level == 1
    assert answer.next_level == 1
    assert answer.eligible
    assert answer.volume_shortfall_usd == 0
    assert answer.progress == 1


async def test_one_cent_short_does_not_qualify(session: AsyncSession) -> None:
    user = await make_user(session, "99999.99")
    answer = await qualification.compute(session, user.id)
    assert answer.qualified_level is None
    assert answer.next_level == 1
    assert not answer.eligible
    assert answer.volume_shortfall_usd == Decimal("0.01")
    assert answer.progress == Decimal("0.9999")


async def test_volume_in_the_billions_stays_exact(session: AsyncSession) -> None:
    user = await make_user(session, "4999999999.99")
    for amount in ("0.01", "1234567890.12345678"):
        await users.add_trade(session, user.id, Decimal(amount), None)
    await session.commit()
    answer = await qualification.compute(session, user.id)
    assert answer.volume_usd == Decimal("6234567890.12345678")
    assert answer.qualified_level == 1  # badges hold the rest back
    assert answer.to_dict()["volume_usd"] == "6234567890.12345678"


async def test_null_trade_amounts_are_ignored_and_no_trades_is_zero(session: AsyncSession) -> None:
    user = await make_user(session)
    answer = await qualification.compute(session, user.id)
    assert answer.volume_usd == 0
    assert answer.progress == 0
    assert answer.volume_shortfall_usd == Decimal(100000)


async def test_badges_count_owned_and_activated_not_consumed(session: AsyncSession) -> None:
    user = await make_user(session, "600000", badges=3)
    await _nft(session, user.id, 1, "unlocked")
    answer = await qualification.compute(session, user.id)
    assert answer.badges == 3
    assert answer.qualified_level == 2
    assert answer.nft_level == 1
    assert answer.next_level == 2
    assert answer.eligible

    await session.execute(
        update(Badge)
        .where(Badge.user_id == user.id, Badge.badge_type == "badge-0")
        .values(status="activated")
    )
    await session.execute(
        update(Badge)
        .where(Badge.user_id == user.id, Badge.badge_type.in_(["badge-1", "badge-2"]))
        .values(status="consumed")
    )
    await session.commit()
    answer = await qualification.compute(session, user.id)
    assert answer.badges == 1
    assert answer.qualified_level == 1
    assert answer.next_level == 2
    assert not answer.eligible
    assert answer.badges_shortfall == 1
    assert answer.progress == Decimal("0.5")  # badges are the lesser progress


async def test_top_tier_has_no_next_level(session: AsyncSession) -> None:
    user = await make_user(session, "50000000", badges=8)
    await _nft(session, user.id, 5, "active")
    answer = await qualification.compute(session, user.id)
    assert answer.qualified_level == 5
    assert answer.nft_level == 5
    assert answer.next_level is None
    assert not answer.eligible
    assert answer.progress == 1


async def test_benefits_take_the_larger_fee_reduction_never_the_sum(session: AsyncSession) -> None:
    user = await make_user(session, "100000")
    await _nft(session, user.id, 1, "unlocked")
    answer = await qualification.compute(session, user.id)
    assert answer.benefits.fee_reduction_pct == 10
    assert answer.benefits.ai_agent_uses_per_week == 10

    await _nft(session, user.id, 100, "active", kind="competition")
    answer = await qualification.compute(session, user.id)
    assert answer.benefits.fee_reduction_pct == 25  # Trophy Breeder's 25 beats 10; not 35
    assert answer.benefits.ai_agent_uses_per_week == 10
    assert answer.benefits.from_levels == (1, 100)


async def test_benefits_ignore_pending_burned_and_transferred_nfts(session: AsyncSession) -> None:
    user = await make_user(session, "100000")
    pending = await _nft(session, user.id, 1, "pending")
    await _nft(session, user.id, 100, "burned", kind="competition")
    answer = await qualification.compute(session, user.id)
    assert answer.benefits.fee_reduction_pct == 0
    assert answer.benefits.from_levels == ()
    assert answer.nft_level == 1  # being minted: the next step is level 2

    gone = await _nft(session, user.id, 100, "active", kind="competition")
    session.add(
        AssetRow(mint=gone.mint_address, standard="token2022", owner=str(Keypair().pubkey()))
    )
    await session.commit()
    answer = await qualification.compute(session, user.id)
    assert answer.benefits.from_levels == ()
    assert pending.status == "pending"


async def test_unknown_user(session: AsyncSession) -> None:
    with pytest.raises(UserNotFound) as info:
        await qualification.compute(session, 987654321)
    assert info.value.code == "USER_NOT_FOUND"


@pytest.fixture(params=["local", "redis"])
def cache(request: pytest.FixtureRequest) -> Any:
    if request.param == "local":
        return LocalCache()
    return RedisCache(request.getfixturevalue("redis_client"))


async def test_cached_until_invalidated(engine: AsyncEngine, cache: Any) -> None:
    sessions = session_factory(engine)
    service = QualificationService(sessions, cache)
    async with sessions() as session:
        user = await make_user(session, "99999.99")
    first = await service.check(user.id)
    assert first.qualified_level is None
    assert json.loads(str(await cache.get(f"nft_qual:{user.id}")))["user_id"] == user.id

    async with sessions() as session:
        await users.add_trade(session, user.id, Decimal("0.01"), None)
        await session.commit()
    assert (await service.check(user.id)) == first  # the TTL bounds this staleness

    await service.invalidate(user.id)
    fresh = await service.check_wallet(user.wallet_address)
    assert fresh.qualified_level == 1
    assert fresh.volume_usd == Decimal("100000.00")


@given(
    volume=st.decimals(min_value=0, max_value=10**12, places=8, allow_nan=False),
    badges=st.integers(0, 20),
    level=st.none() | st.integers(1, 5),
)
def test_the_cached_form_round_trips(volume: Decimal, badges: int, level: int | None) -> None:
    answer = Qualification(
        user_id=1,
        volume_usd=volume,
        badges=badges,
        nft_level=level,
        qualified_level=level,
        next_level=None if level == 5 else (level or 0) + 1,
        next_min_volume_usd=Decimal("500000"),
        next_badges_required=2,
        volume_shortfall_usd=Decimal("0.01"),
        badges_shortfall=1,
        progress=Decimal("0.5"),
        benefits=qualification.Benefits(Decimal("10.00"), 10, (1, 100)),
    )
    assert Qualification.from_dict(json.loads(json.dumps(answer.to_dict()))) == answer
