"""Claim: the user's first tier NFT, recorded exactly once.

One database transaction checks the qualification and the NFTs the user has, then writes the
``mint_operations`` row (the intent, with the mint address fixed now) and the ``pending``
``user_nfts`` row. The idempotency key names what makes an attempt legitimate: the user, the
level and how many earlier attempts provably failed, so a duplicate claim finds the operation
in flight and a failed one never blocks a new one.

Correctness rests on the database: the unique idempotency key (two racing claims get one
operation) and the unique pending / live tier NFT per user (one NFT). The lock
``nft_lock:claim:{user_id}`` only keeps concurrent duplicates from doing the same work.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import structlog
from sqlalchemy import Select, bindparam, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import AIW3Error, ConfigError, RetryableStoreError, StoreConflict
from core.types import StandardName
from minting import qualification
from minting.cache import Locks
from minting.errors import NftAlreadyOwned, QualificationNotMet, UserNotFound
from minting.keys import MintKeys
from minting.metrics import MintingMetrics
from minting.qualification import QualificationService, money_text
from store.repos import mint_operations, users
from store.repos.mint_operations import NewMintOperation
from store.tables import MintOperation, NftTier, User, UserNft

LOCK_TTL: Final = 30.0
LOCK_WAIT: Final = 10.0
# Busy SQLite writers, MySQL deadlocks and lost connections: the unit is run again from scratch.
_STORE_ATTEMPTS: Final = 8
_HELD: Final = ("pending", "unlocked", "active")

_log = structlog.stdlib.get_logger(__name__)


def claim_key(user_id: int, wallet: str, level: int, failed_before: int) -> str:
    # The wallet too: a database rebuilt under the same secret restarts user ids, and a
    # repeated key would name a mint that already exists on chain for someone else.
    return f"claim:{user_id}:{wallet}:level{level}:attempt{failed_before}"


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
    operation: MintOperation
    created: bool  # False: a duplicate claim, answered with the operation already recorded


@dataclass(frozen=True, slots=True)
class _Standing:
    """What a claim decides on, read in one statement."""

    user_id: int
    volume: Decimal
    badges: int
    failed_claims: int
    held_level: int | None
    level: int | None  # the first tier of the ladder (None: the table has none)
    min_volume: Decimal | None
    badges_required: int


class Claims:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        keys: MintKeys,
        *,
        standard: StandardName,
        locks: Locks,
        qualifications: QualificationService | None = None,
        metrics: MintingMetrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._keys = keys
        self._standard = standard
        self._locks = locks
        self._qualifications = qualifications
        self._metrics = metrics

    async def claim(self, wallet: str) -> ClaimOutcome:
        """Record the claim of ``wallet``'s user, or return the one already recorded."""
        started = time.perf_counter()
        level, status = "none", "error"
        try:
            outcome = await self._with_retries(wallet)
            level = str(outcome.operation.level)
            status = "created" if outcome.created else "duplicate"
            user_id = outcome.operation.user_id
            if outcome.created and self._qualifications is not None and user_id is not None:
                await self._qualifications.invalidate(user_id)
            return outcome
        except AIW3Error as exc:
            status = exc.code
            raise
        finally:
            if self._metrics is not None:
                self._metrics.claims.labels(level, status).inc()
                self._metrics.claim_duration.labels(level, status).observe(
                    time.perf_counter() - started
                )

    async def _with_retries(self, wallet: str) -> ClaimOutcome:
        for attempt in range(_STORE_ATTEMPTS):
            try:
                return await self._claim_once(wallet)
            except RetryableStoreError as exc:
                _log.warning("claim.store_retry", attempt=attempt, error=exc.code)
                # Jittered: 200 twins retrying in lock step would deadlock again together.
                await asyncio.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))
        raise RetryableStoreError("the database stayed busy; claim again")

    async def _claim_once(self, wallet: str) -> ClaimOutcome:
        # Three statements on the way to a new operation: the standing, the operation's
        # idempotent insert, the NFT's insert (and the transaction around them).
        async with self._sessions() as session, session.begin():
            standing = await _standing(session, wallet)
            if standing is None:
                raise UserNotFound(f"no user has wallet {wallet}", details={"wallet": wallet})
            user_id = standing.user_id
            async with self._locks.hold(f"nft_lock:claim:{user_id}", ttl=LOCK_TTL, wait=LOCK_WAIT):
                return await self._record(session, wallet, standing)

    async def _record(
        self, session: AsyncSession, wallet: str, standing: _Standing
    ) -> ClaimOutcome:
        level = standing.level
        if level is None or standing.min_volume is None:
            raise ConfigError("the tier table has no tier with a volume threshold")
        user_id = standing.user_id
        key = claim_key(user_id, wallet, level, standing.failed_claims)
        if standing.held_level is not None:
            # Most often this very claim, recorded earlier (or by a twin that committed since
            # the standing was read): a duplicate, not a refusal.
            twin = await mint_operations.get_by_key(session, key)
            if twin is not None:
                return ClaimOutcome(twin, False)
            held = await _held_tier_nft(session, user_id)
            raise NftAlreadyOwned(
                "the user already has a tier NFT: higher levels come by upgrade",
                details={
                    "level": standing.held_level if held is None else held.level,
                    "status": None if held is None else held.status,
                },
            )
        if standing.volume < standing.min_volume or standing.badges < standing.badges_required:
            twin = await mint_operations.get_by_key(session, key)
            if twin is not None:
                return ClaimOutcome(twin, False)
            raise QualificationNotMet(
                f"level {level} needs more trading volume or badges",
                details={
                    "level": level,
                    "volume_usd": money_text(standing.volume),
                    "volume_shortfall_usd": money_text(
                        max(Decimal(0), standing.min_volume - standing.volume)
                    ),
                    "badges": standing.badges,
                    "badges_shortfall": max(0, standing.badges_required - standing.badges),
                },
            )
        mint = str(self._keys.keypair(key).pubkey())
        operation, created = await mint_operations.create_or_get(
            session,
            NewMintOperation(
                idempotency_key=key,
                kind="claim",
                level=level,
                owner_address=wallet,
                mint_address=mint,
                asset_standard=self._standard.value,
                user_id=user_id,
                mint_secret_version=self._keys.current_version,
            ),
        )
        if not created:
            return ClaimOutcome(operation, False)
        try:
            # A plain insert, no savepoint: a refusal rolls the operation back with it.
            await session.execute(
                _PENDING_NFT,
                {"user_id": user_id, "level": level, "mint": mint, "operation_id": operation.id},
            )
        except StoreConflict:
            # Another operation's NFT (an upgrade in flight) took the user's one tier slot.
            raise NftAlreadyOwned(
                "the user already has a tier NFT in flight", details={"level": level}
            ) from None
        _log.info("claim.recorded", operation=operation.id, level=level, mint=mint)
        return ClaimOutcome(operation, True)


def _standing_statement() -> Select[tuple[Any, ...]]:
    """The user of ``:wallet`` with their volume, badges, failed claims, the tier NFT held and
    the ladder's first tier: one statement, built once (its compiled form is cached)."""
    first = (
        select(func.min(NftTier.level))
        .where(NftTier.kind == "tier", NftTier.min_volume_usd.is_not(None))
        .scalar_subquery()
    )
    failed = (
        select(func.count())
        .select_from(MintOperation)
        .where(
            MintOperation.user_id == User.id,
            MintOperation.kind == "claim",
            MintOperation.state == "failed",
        )
        .scalar_subquery()
    )
    return (
        select(
            User.id,
            users.volume_of(User.id),
            users.usable_badges_of(User.id),
            failed,
            qualification.held_level_of(User.id),
            NftTier.level,
            NftTier.min_volume_usd,
            NftTier.badges_required,
        )
        .select_from(User)
        .outerjoin(NftTier, NftTier.level == first)
        .where(User.wallet_address == bindparam("wallet"))
    )


_STANDING: Final = _standing_statement()
_PENDING_NFT: Final = insert(UserNft).values(
    user_id=bindparam("user_id"),
    level=bindparam("level"),
    kind="tier",
    status="pending",
    mint_address=bindparam("mint"),
    mint_operation_id=bindparam("operation_id"),
)


async def _standing(session: AsyncSession, wallet: str) -> _Standing | None:
    """What a claim of ``wallet`` decides on (None: no such user)."""
    row = (await session.execute(_STANDING, {"wallet": wallet})).one_or_none()
    if row is None:
        return None
    user_id, volume, badges, failed_claims, held, level, min_volume, badges_required = row
    return _Standing(
        user_id=user_id,
        volume=Decimal(0) if volume is None else Decimal(volume),
        badges=int(badges),
        failed_claims=int(failed_claims),
        held_level=held,
        level=level,
        min_volume=min_volume,
        badges_required=int(badges_required or 0),
    )


async def _held_tier_nft(session: AsyncSession, user_id: int) -> UserNft | None:
    return (
        await session.execute(
            select(UserNft)
            .where(UserNft.user_id == user_id, UserNft.kind == "tier", UserNft.status.in_(_HELD))
            .order_by(UserNft.level.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
