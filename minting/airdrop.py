"""Airdrop: an operator awards a competition NFT, recorded exactly once per award.

The same pipeline as a claim: one transaction writes the ``mint_operations`` row (kind
``airdrop``, the mint address derived from its idempotency key) and a ``pending``
``user_nfts`` row of kind ``competition``; the sender worker mints it like any other. The key
names the award (and how many earlier attempts for it provably failed), so the same award
given twice returns the operation already recorded, and a failed one can be given again.
The wallet need not belong to a known trader: its user row is created.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chain.pubkeys import parse_pubkey
from core.errors import ConflictError, InputError
from core.types import StandardName
from minting.keys import MintKeys
from store.repos import mint_operations, tiers, users
from store.repos.mint_operations import NewMintOperation
from store.tables import MintOperation, NftTier, UserNft

COMPETITION: Final = "competition"
# The key is at most 128 characters: "airdrop:" + award + ":attempt" + a few digits.
_AWARD_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")

_log = structlog.stdlib.get_logger(__name__)


class NotACompetitionLevel(InputError):
    """Only a competition tier (Trophy Breeder, ...) can be airdropped."""

    code = "NOT_A_COMPETITION_LEVEL"


class InvalidAwardId(InputError):
    code = "INVALID_AWARD_ID"


class AwardConflict(ConflictError):
    """The award was already given, to another wallet or at another level."""

    code = "AWARD_CONFLICT"


def airdrop_key(award_id: str, failed_before: int) -> str:
    return f"airdrop:{award_id}:attempt{failed_before}"


@dataclass(frozen=True, slots=True)
class AirdropOutcome:
    operation: MintOperation
    created: bool  # False: the award was already recorded, answered with its operation


class Airdrops:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        keys: MintKeys,
        *,
        standard: StandardName,
    ) -> None:
        self._sessions = sessions
        self._keys = keys
        self._standard = standard

    async def airdrop(self, wallet: str, level: int, award_id: str) -> AirdropOutcome:
        """Record the award ``award_id`` of a level-``level`` competition NFT to ``wallet``,
        or return the operation already recorded for it."""
        wallet = str(parse_pubkey(wallet, field="wallet"))
        if not _AWARD_ID.fullmatch(award_id):
            raise InvalidAwardId(
                "an award id is 1-100 letters, digits, '.', '_', ':' or '-', starting with a "
                "letter or digit",
                details={"award": award_id[:120]},
            )
        async with self._sessions() as session, session.begin():
            await _competition_tier(session, level)
            key, existing = await _current_attempt(session, award_id)
            if existing is not None:
                return AirdropOutcome(_same_award(existing, wallet, level, award_id), False)
            user = await users.get_or_create_user(session, wallet)
            mint = self._keys.keypair(key).pubkey()
            operation, created = await mint_operations.create_or_get(
                session,
                NewMintOperation(
                    idempotency_key=key,
                    kind="airdrop",
                    level=level,
                    owner_address=wallet,
                    mint_address=str(mint),
                    asset_standard=self._standard.value,
                    user_id=user.id,
                ),
            )
            if not created:  # a racing twin recorded it first
                return AirdropOutcome(_same_award(operation, wallet, level, award_id), False)
            operation.mint_secret_version = self._keys.current_version
            session.add(
                UserNft(
                    user_id=user.id,
                    level=level,
                    kind=COMPETITION,
                    status="pending",
                    mint_address=str(mint),
                    mint_operation_id=operation.id,
                )
            )
            await session.flush()
        _log.info("airdrop.recorded", operation=operation.id, level=level, mint=str(mint))
        return AirdropOutcome(operation, True)


async def _competition_tier(session: AsyncSession, level: int) -> NftTier:
    tier = next((t for t in await tiers.list_tiers(session) if t.level == level), None)
    if tier is None or tier.kind != COMPETITION:
        competition = [t.level for t in await tiers.list_tiers(session, kind=COMPETITION)]
        raise NotACompetitionLevel(
            f"level {level} is not a competition tier; airdrop one of {competition}",
            details={"level": level, "competition_levels": competition},
        )
    return tier


async def _current_attempt(
    session: AsyncSession, award_id: str
) -> tuple[str, MintOperation | None]:
    """The key of the award's live attempt and its operation (None: not recorded yet).

    Attempts that provably failed are passed over, so a failed airdrop can be given again."""
    attempt = 0
    while True:
        key = airdrop_key(award_id, attempt)
        existing = await mint_operations.get_by_key(session, key)
        if existing is None or existing.state != "failed":
            return key, existing
        attempt += 1


def _same_award(op: MintOperation, wallet: str, level: int, award_id: str) -> MintOperation:
    if op.owner_address != wallet or op.level != level:
        raise AwardConflict(
            f"award {award_id} was already given at level {op.level} to another wallet"
            if op.owner_address != wallet
            else f"award {award_id} was already given at level {op.level}",
            details={"award": award_id, "operation": op.id, "level": op.level},
        )
    return op
