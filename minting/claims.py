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
from typing import Final

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import AIW3Error, ConfigError, RetryableStoreError, StoreConflict
from core.types import StandardName
from minting import qualification
from minting.cache import Locks
from minting.errors import NftAlreadyOwned, QualificationNotMet, UserNotFound
from minting.keys import MintKeys
from minting.metrics import MintingMetrics
from minting.qualification import QualificationService, money_text
from store.repos import mint_operations, tiers, users
from store.repos.mint_operations import NewMintOperation
from store.tables import MintOperation, UserNft

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
            async with self._sessions() as session:
                user = await users.get_user_by_wallet(session, wallet)
            if user is None:
                raise UserNotFound(f"no user has wallet {wallet}", details={"wallet": wallet})
            async with self._locks.hold(f"nft_lock:claim:{user.id}", ttl=LOCK_TTL, wait=LOCK_WAIT):
                outcome = await self._with_retries(user.id, wallet)
            level = str(outcome.operation.level)
            status = "created" if outcome.created else "duplicate"
            if outcome.created and self._qualifications is not None:
                await self._qualifications.invalidate(user.id)
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

    async def _with_retries(self, user_id: int, wallet: str) -> ClaimOutcome:
        for attempt in range(_STORE_ATTEMPTS):
            try:
                return await self._claim_once(user_id, wallet)
            except RetryableStoreError as exc:
                _log.warning("claim.store_retry", attempt=attempt, error=exc.code)
                # Jittered: 200 twins retrying in lock step would deadlock again together.
                await asyncio.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))
        raise RetryableStoreError("the database stayed busy; claim again")

    async def _claim_once(self, user_id: int, wallet: str) -> ClaimOutcome:
        async with self._sessions() as session, session.begin():
            level = await _first_level(session)
            key = claim_key(user_id, wallet, level, await _failed_claims(session, user_id))
            existing = await mint_operations.get_by_key(session, key)
            if existing is not None:
                return ClaimOutcome(existing, False)
            held = await _held_tier_nft(session, user_id)
            if held is not None:
                # A twin of this very claim may have committed between the two reads (each
                # statement sees the latest commits): then it is a duplicate, not a refusal.
                twin = await mint_operations.get_by_key(session, key)
                if twin is not None:
                    return ClaimOutcome(twin, False)
                raise NftAlreadyOwned(
                    "the user already has a tier NFT: higher levels come by upgrade",
                    details={"level": held.level, "status": held.status},
                )
            answer = await qualification.compute(session, user_id)
            if answer.qualified_level is None:
                raise QualificationNotMet(
                    f"level {level} needs more trading volume or badges",
                    details={
                        "level": level,
                        "volume_usd": money_text(answer.volume_usd),
                        "volume_shortfall_usd": money_text(answer.volume_shortfall_usd),
                        "badges": answer.badges,
                        "badges_shortfall": answer.badges_shortfall,
                    },
                )
            mint = self._keys.keypair(key).pubkey()
            operation, created = await mint_operations.create_or_get(
                session,
                NewMintOperation(
                    idempotency_key=key,
                    kind="claim",
                    level=level,
                    owner_address=wallet,
                    mint_address=str(mint),
                    asset_standard=self._standard.value,
                    user_id=user_id,
                ),
            )
            if not created:
                return ClaimOutcome(operation, False)
            operation.mint_secret_version = self._keys.current_version
            try:
                async with session.begin_nested():
                    session.add(
                        UserNft(
                            user_id=user_id,
                            level=level,
                            kind="tier",
                            status="pending",
                            mint_address=str(mint),
                            mint_operation_id=operation.id,
                        )
                    )
            except StoreConflict:
                # Another operation's NFT (an upgrade in flight) took the user's one tier slot.
                raise NftAlreadyOwned(
                    "the user already has a tier NFT in flight", details={"level": level}
                ) from None
        _log.info("claim.recorded", operation=operation.id, level=level, mint=str(mint))
        return ClaimOutcome(operation, True)


async def _first_level(session: AsyncSession) -> int:
    ladder = [t for t in await tiers.list_tiers(session, kind="tier") if t.min_volume_usd]
    if not ladder:
        raise ConfigError("the tier table has no tier with a volume threshold")
    return ladder[0].level


async def _failed_claims(session: AsyncSession, user_id: int) -> int:
    return int(
        (
            await session.execute(
                select(func.count())
                .select_from(MintOperation)
                .where(
                    MintOperation.user_id == user_id,
                    MintOperation.kind == "claim",
                    MintOperation.state == "failed",
                )
            )
        ).scalar_one()
    )


async def _held_tier_nft(session: AsyncSession, user_id: int) -> UserNft | None:
    return (
        await session.execute(
            select(UserNft).where(
                UserNft.user_id == user_id, UserNft.kind == "tier", UserNft.status.in_(_HELD)
            )
        )
    ).scalar_one_or_none()
