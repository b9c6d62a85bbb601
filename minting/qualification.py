"""Who qualifies for which level, and what their NFTs give them.

Volume is the exact sum of the user's ``trades.total_usd_price``; badges count while owned or
activated (not consumed); the thresholds come from the tier table, so a new tier is a new row.
A user holds at most one tier NFT and climbs one level at a time, so the *next* level is the one
after the NFT they hold (level 1 without one); ``qualified_level`` is the highest level the
numbers alone would reach.

Answers are cached under ``nft_qual:{user_id}`` (trades arrive from the trading backend, so the
TTL bounds the staleness); claims and upgrades invalidate the entry when they change it, and the
outbox relay invalidates it for every NFT event of the user it publishes, so a change the
indexer or the reconciler settled (a mint, a burn, a transfer, an activation, an upgrade seen
on chain first) is seen within a relay poll, not after the TTL.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Final

from sqlalchemy import ScalarSelect, SQLColumnExpression, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from minting.cache import Cache
from minting.errors import UserNotFound
from store.repos import tiers, users
from store.tables import AssetRow, NftTier, User, UserNft

CACHE_TTL: Final = 300.0
_LIVE: Final = ("unlocked", "active")
_ZERO: Final = Decimal(0)


def cache_key(user_id: int) -> str:
    return f"nft_qual:{user_id}"


@dataclass(frozen=True, slots=True)
class Benefits:
    """What the user's live NFTs give: the largest fee reduction of any (never the sum) and the
    AI-agent uses of their tier NFT."""

    fee_reduction_pct: Decimal
    ai_agent_uses_per_week: int
    from_levels: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Qualification:
    user_id: int
    volume_usd: Decimal
    badges: int
    nft_level: int | None  # the tier NFT held (unlocked or active), or being minted
    qualified_level: int | None  # the highest level the volume and badges reach
    next_level: int | None  # the level a claim or upgrade would give; None at the top
    next_min_volume_usd: Decimal | None
    next_badges_required: int | None
    volume_shortfall_usd: Decimal
    badges_shortfall: int
    progress: Decimal  # 0..1 toward the next level (the lesser of volume and badge progress)
    benefits: Benefits

    @property
    def eligible(self) -> bool:
        """True when the next level exists and both its thresholds are met."""
        return (
            self.next_level is not None
            and self.volume_shortfall_usd == _ZERO
            and self.badges_shortfall == 0
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["eligible"] = self.eligible
        out: dict[str, Any] = _jsonable(data)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Qualification:
        b = data["benefits"]
        money = _money_or_none
        return cls(
            user_id=int(data["user_id"]),
            volume_usd=Decimal(data["volume_usd"]),
            badges=int(data["badges"]),
            nft_level=data["nft_level"],
            qualified_level=data["qualified_level"],
            next_level=data["next_level"],
            next_min_volume_usd=money(data["next_min_volume_usd"]),
            next_badges_required=data["next_badges_required"],
            volume_shortfall_usd=Decimal(data["volume_shortfall_usd"]),
            badges_shortfall=int(data["badges_shortfall"]),
            progress=Decimal(data["progress"]),
            benefits=Benefits(
                Decimal(b["fee_reduction_pct"]),
                int(b["ai_agent_uses_per_week"]),
                tuple(b["from_levels"]),
            ),
        )


def _money_or_none(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def money_text(value: Decimal) -> str:
    """A decimal as plain text without trailing zeros, the same on every database."""
    text = format(value.normalize(), "f")
    return text


def _jsonable(value: Any) -> Any:
    # Decimals travel as strings: a float would lose cents of a billion-dollar volume.
    if isinstance(value, Decimal):
        return money_text(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


async def compute(session: AsyncSession, user_id: int) -> Qualification:
    """The user's qualification, read now in ``session`` (no cache: claims call this inside
    their transaction). Three statements: the user's numbers in one (volume, badges, the
    tier NFT held), the ladder, and the tiers of the NFTs they hold."""
    row = (
        await session.execute(
            select(
                User,
                users.volume_of(User.id),
                users.usable_badges_of(User.id),
                held_level_of(User.id),
            ).where(User.id == user_id)
        )
    ).one_or_none()
    if row is None:
        raise UserNotFound(f"no user with id {user_id}", details={"user_id": user_id})
    user, volume, badges, held = row
    ladder = [
        t for t in await tiers.list_tiers(session, kind="tier") if t.min_volume_usd is not None
    ]
    live = await _live_tiers(session, user)
    return _assess(user_id, Decimal(volume or 0), int(badges), ladder, held, live)


def _assess(
    user_id: int,
    volume: Decimal,
    badges: int,
    ladder: list[NftTier],
    held: int | None,
    live: list[NftTier],
) -> Qualification:
    qualified: int | None = None
    for tier in ladder:  # ordered by level; the ladder only gets harder
        assert tier.min_volume_usd is not None
        if volume >= tier.min_volume_usd and badges >= tier.badges_required:
            qualified = tier.level
        else:
            break
    if held is None:
        following = ladder[0] if ladder else None
    else:
        following = next((t for t in ladder if t.level > held), None)
    if following is None:
        need_volume, need_badges = None, None
        volume_short, badges_short, progress = _ZERO, 0, Decimal(1)
    else:
        need_volume, need_badges = following.min_volume_usd, following.badges_required
        assert need_volume is not None
        volume_short = max(_ZERO, need_volume - volume)
        badges_short = max(0, need_badges - badges)
        progress = min(
            _fraction(volume, need_volume), _fraction(Decimal(badges), Decimal(need_badges))
        )
    return Qualification(
        user_id=user_id,
        volume_usd=volume,
        badges=badges,
        nft_level=held,
        qualified_level=qualified,
        next_level=None if following is None else following.level,
        next_min_volume_usd=need_volume,
        next_badges_required=need_badges,
        volume_shortfall_usd=volume_short,
        badges_shortfall=badges_short,
        progress=progress,
        benefits=_benefits(live),
    )


def _fraction(have: Decimal, need: Decimal) -> Decimal:
    if need <= 0 or have >= need:
        return Decimal(1)
    # Four places are plenty for a progress bar; rounded down, so 1 means qualified.
    return (have / need).quantize(Decimal("0.0001"), rounding=ROUND_FLOOR)


def _benefits(live: list[NftTier]) -> Benefits:
    fee = max((t.fee_reduction_pct for t in live), default=_ZERO)
    uses = max((t.ai_agent_uses_per_week or 0 for t in live if t.kind == "tier"), default=0)
    return Benefits(Decimal(fee), uses, tuple(sorted(t.level for t in live)))


def held_level_of(user_id: SQLColumnExpression[int] | int) -> ScalarSelect[int | None]:
    """The level of the tier NFT the user holds, as a scalar subquery (NULL without one).

    A pending tier NFT counts as held: it is the level being minted right now. During an
    upgrade the old NFT is still live beside the pending new one: the higher level is held."""
    return (
        select(func.max(UserNft.level))
        .where(
            UserNft.user_id == user_id,
            UserNft.kind == "tier",
            UserNft.status.in_((*_LIVE, "pending")),
        )
        .scalar_subquery()
    )


async def _live_tiers(session: AsyncSession, user: User) -> list[NftTier]:
    """Tiers of the unlocked or active NFTs the user still holds: one the read model shows
    burnt or owned by another wallet gives nothing."""
    stmt = (
        select(NftTier)
        .join(UserNft, UserNft.level == NftTier.level)
        .outerjoin(AssetRow, AssetRow.mint == UserNft.mint_address)
        .where(
            UserNft.user_id == user.id,
            UserNft.status.in_(_LIVE),
            or_(AssetRow.mint.is_(None), (AssetRow.owner == user.wallet_address) & ~AssetRow.burnt),
        )
    )
    return list((await session.execute(stmt)).scalars())


class QualificationService:
    """Cached qualification answers: ``check`` reads through the cache, ``invalidate`` drops
    users' entries (after a claim or upgrade, and for every NFT event the relay publishes)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache: Cache,
        *,
        ttl: float = CACHE_TTL,
    ) -> None:
        self._sessions = sessions
        self._cache = cache
        self._ttl = ttl

    async def check(self, user_id: int) -> Qualification:
        cached = await self._cache.get(cache_key(user_id))
        if cached is not None:
            return Qualification.from_dict(json.loads(cached))
        async with self._sessions() as session:
            answer = await compute(session, user_id)
        await self._cache.set(cache_key(user_id), json.dumps(answer.to_dict()), self._ttl)
        return answer

    async def check_wallet(self, wallet: str) -> Qualification:
        async with self._sessions() as session:
            user = await users.get_user_by_wallet(session, wallet)
        if user is None:
            raise UserNotFound(f"no user has wallet {wallet}", details={"wallet": wallet})
        return await self.check(user.id)

    async def invalidate(self, *user_ids: int) -> None:
        await self._cache.delete(*(cache_key(user_id) for user_id in user_ids))
