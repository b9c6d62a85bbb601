"""Every table of the service, business records and read model, as SQLAlchemy 2 models.

Enumerations are strings guarded by CHECK constraints (portable, readable in SQL). Constraint
names follow one convention so migrations are the same on every database.

Invariants held by the schema itself:
- one ``mint_operations`` row per idempotency key, and per mint address;
- a mint address appears at most once in ``user_nfts`` and ``assets``;
- at most one live (unlocked or active) tier NFT per user, and at most one in flight (pending):
  the generated columns ``live_tier_user_id`` / ``pending_tier_user_id`` hold the user id only in
  that state, NULL otherwise, and carry a unique index (NULLs never collide).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.types import StandardName
from store.types import BigId, BoundedString, JSONText, Money, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}

ADDRESS = 44  # base58 of 32 bytes is at most 44 characters
SIGNATURE = 88  # base58 of 64 bytes is at most 88 characters

NFT_STATUSES = ("pending", "unlocked", "active", "burned", "failed")
NFT_KINDS = ("tier", "competition")
BADGE_STATUSES = ("owned", "activated", "consumed")
MINT_KINDS = ("claim", "upgrade", "airdrop")
# ``awaiting_owner`` (0005): an upgrade signed by the system, waiting for the owner's wallet.
MINT_STATES = ("created", "signed", "sent", "confirmed", "finalized", "failed", "awaiting_owner")
UPGRADE_STATUSES = ("pending", "submitted", "confirmed", "failed", "expired")
ASSET_STANDARDS = tuple(StandardName)
# ``delegate``/``undelegate``/``freeze``/``thaw`` (0006): Approve/Revoke/FreezeAccount/ThawAccount.
ASSET_EVENT_KINDS = (
    "mint",
    "transfer",
    "burn",
    "close",
    "activate",
    "delegate",
    "undelegate",
    "freeze",
    "thaw",
)
RUN_STATUSES = ("running", "succeeded", "failed")


def _one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class _Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now, onupdate=_now)


# --- business records -------------------------------------------------------------------------


class NftTier(Base):
    """The level table of the business rules: configuration, one row per tier."""

    __tablename__ = "nft_tiers"
    __table_args__ = (
        _one_of("kind", NFT_KINDS, "kind"),
        CheckConstraint("fee_reduction_pct >= 0 AND fee_reduction_pct <= 100", name="fee"),
    )

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(BoundedString(64), unique=True)
    kind: Mapped[str] = mapped_column(BoundedString(16))
    min_volume_usd: Mapped[Decimal | None] = mapped_column(Money())
    badges_required: Mapped[int] = mapped_column(Integer, default=0)
    fee_reduction_pct: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    ai_agent_uses_per_week: Mapped[int | None] = mapped_column(Integer)


class User(_Timestamps, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    wallet_address: Mapped[str] = mapped_column(BoundedString(ADDRESS), unique=True)


class Trade(Base):
    __tablename__ = "trades"
    __table_args__ = (CheckConstraint("total_usd_price >= 0", name="non_negative"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    total_usd_price: Mapped[Decimal] = mapped_column(Money())
    traded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


class Badge(_Timestamps, Base):
    __tablename__ = "badges"
    __table_args__ = (
        _one_of("status", BADGE_STATUSES, "status"),
        UniqueConstraint("user_id", "badge_type"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    badge_type: Mapped[str] = mapped_column(BoundedString(64))
    status: Mapped[str] = mapped_column(BoundedString(16), default="owned")
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    consumed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    consumed_by_upgrade_id: Mapped[int | None] = mapped_column(
        ForeignKey("nft_upgrade_requests.id")
    )
    # Upgrades (0005): held for an open upgrade request, so no other can spend it meanwhile.
    reserved_by_upgrade_id: Mapped[int | None] = mapped_column(
        ForeignKey("nft_upgrade_requests.id"), index=True
    )


class MintOperation(_Timestamps, Base):
    """The intent (outbox) of one mint: written before anything is sent to the chain."""

    __tablename__ = "mint_operations"
    __table_args__ = (
        _one_of("kind", MINT_KINDS, "kind"),
        _one_of("state", MINT_STATES, "state"),
        _one_of("asset_standard", ASSET_STANDARDS, "standard"),
        Index(None, "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(BoundedString(128), unique=True)
    kind: Mapped[str] = mapped_column(BoundedString(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    level: Mapped[int] = mapped_column(ForeignKey("nft_tiers.level"))
    owner_address: Mapped[str] = mapped_column(BoundedString(ADDRESS))
    # Fixed before the first send: a second create at this address fails on chain.
    mint_address: Mapped[str] = mapped_column(BoundedString(ADDRESS), unique=True)
    asset_standard: Mapped[str] = mapped_column(BoundedString(16))
    metadata_uri: Mapped[str | None] = mapped_column(BoundedString(512))
    signed_tx: Mapped[bytes | None] = mapped_column(LargeBinary)
    signature: Mapped[str | None] = mapped_column(BoundedString(SIGNATURE), unique=True)
    blockhash: Mapped[str | None] = mapped_column(BoundedString(ADDRESS))
    last_valid_block_height: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(BoundedString(16), default="created")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    confirmed_slot: Mapped[int | None] = mapped_column(BigInteger)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    # Which server secret derived the mint keypair (migration 0003): no mint secret is stored.
    mint_secret_version: Mapped[int | None] = mapped_column(Integer)


class UserNft(_Timestamps, Base):
    __tablename__ = "user_nfts"
    __table_args__ = (
        _one_of("status", NFT_STATUSES, "status"),
        _one_of("kind", NFT_KINDS, "kind"),
        UniqueConstraint("live_tier_user_id"),
        UniqueConstraint("pending_tier_user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    level: Mapped[int] = mapped_column(ForeignKey("nft_tiers.level"))
    kind: Mapped[str] = mapped_column(BoundedString(16), default="tier")
    status: Mapped[str] = mapped_column(BoundedString(16), default="pending")
    mint_address: Mapped[str] = mapped_column(BoundedString(ADDRESS), unique=True)
    mint_operation_id: Mapped[int | None] = mapped_column(
        ForeignKey("mint_operations.id"), unique=True
    )
    metadata_uri: Mapped[str | None] = mapped_column(BoundedString(512))
    unlocked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    burned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    live_tier_user_id: Mapped[int | None] = mapped_column(
        BigInteger,
        Computed(
            "CASE WHEN kind = 'tier' AND status IN ('unlocked', 'active') THEN user_id END",
            persisted=True,
        ),
    )
    pending_tier_user_id: Mapped[int | None] = mapped_column(
        BigInteger,
        Computed("CASE WHEN kind = 'tier' AND status = 'pending' THEN user_id END", persisted=True),
    )


class UserNftQualification(Base):
    """The latest qualification check of a user for a level, with the numbers it used."""

    __tablename__ = "user_nft_qualifications"
    __table_args__ = (UniqueConstraint("user_id", "level"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    level: Mapped[int] = mapped_column(ForeignKey("nft_tiers.level"))
    qualified: Mapped[bool] = mapped_column(Boolean)
    volume_usd: Mapped[Decimal] = mapped_column(Money())
    badges_count: Mapped[int] = mapped_column(Integer)
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


class NftUpgradeRequest(_Timestamps, Base):
    __tablename__ = "nft_upgrade_requests"
    __table_args__ = (_one_of("status", UPGRADE_STATUSES, "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    from_user_nft_id: Mapped[int] = mapped_column(ForeignKey("user_nfts.id"))
    to_level: Mapped[int] = mapped_column(ForeignKey("nft_tiers.level"))
    mint_operation_id: Mapped[int | None] = mapped_column(
        ForeignKey("mint_operations.id"), unique=True
    )
    status: Mapped[str] = mapped_column(BoundedString(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text)


class EventOutbox(Base):
    """Events written in the same transaction as the change they announce; a relay publishes."""

    __tablename__ = "event_outbox"
    __table_args__ = (Index(None, "published_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    topic: Mapped[str] = mapped_column(BoundedString(64))
    event_type: Mapped[str] = mapped_column(BoundedString(32))
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    payload: Mapped[Any] = mapped_column(JSONText())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


# --- read model --------------------------------------------------------------------------------


class AssetRow(Base):
    """One row per NFT mint, as the chain says; each source keeps the slot it was read at."""

    __tablename__ = "assets"
    __table_args__ = (
        _one_of("standard", ASSET_STANDARDS, "standard"),
        Index(None, "owner", "burnt"),
        Index(None, "collection"),
    )

    mint: Mapped[str] = mapped_column(BoundedString(ADDRESS), primary_key=True)
    standard: Mapped[str] = mapped_column(BoundedString(16))
    owner: Mapped[str | None] = mapped_column(BoundedString(ADDRESS))
    token_account: Mapped[str | None] = mapped_column(BoundedString(ADDRESS))
    level: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(BoundedString(200))
    symbol: Mapped[str | None] = mapped_column(BoundedString(32))
    uri: Mapped[str | None] = mapped_column(BoundedString(512))
    update_authority: Mapped[str | None] = mapped_column(BoundedString(ADDRESS))
    creators: Mapped[Any] = mapped_column(JSONText(), default=list)
    collection: Mapped[str | None] = mapped_column(BoundedString(ADDRESS))
    supply: Mapped[int] = mapped_column(BigInteger, default=0)
    burnt: Mapped[bool] = mapped_column(Boolean, default=False)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    delegate: Mapped[str | None] = mapped_column(BoundedString(ADDRESS))
    activated: Mapped[bool] = mapped_column(Boolean, default=False)
    mint_slot: Mapped[int | None] = mapped_column(BigInteger)
    metadata_slot: Mapped[int | None] = mapped_column(BigInteger)
    token_slot: Mapped[int | None] = mapped_column(BigInteger)
    last_slot: Mapped[int] = mapped_column(BigInteger, default=0)
    finalized: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now, onupdate=_now)
    # Indexer (0004): authenticity, the position in the block of each source's last change (with
    # the slot above it orders changes: older ones are ignored), metadata fields with the
    # position each was set at, why attacker-controlled metadata was refused, a closed mint.
    genuine: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    mint_position: Mapped[int | None] = mapped_column(Integer)
    metadata_position: Mapped[int | None] = mapped_column(Integer)
    token_position: Mapped[int | None] = mapped_column(Integer)
    last_position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    metadata_fields: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    metadata_error: Mapped[str | None] = mapped_column(BoundedString(200))
    mint_closed: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class AssetEvent(Base):
    __tablename__ = "asset_events"
    __table_args__ = (
        _one_of("kind", ASSET_EVENT_KINDS, "kind"),
        # Re-reading a transaction (duplicate notification, backfill overlap) adds nothing.
        UniqueConstraint("signature", "instruction_index", "mint", "kind"),
        Index(None, "mint", "slot"),
        Index(None, "slot"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    mint: Mapped[str] = mapped_column(BoundedString(ADDRESS))
    kind: Mapped[str] = mapped_column(BoundedString(16))
    signature: Mapped[str] = mapped_column(BoundedString(SIGNATURE))
    instruction_index: Mapped[int] = mapped_column(Integer, default=0)
    slot: Mapped[int] = mapped_column(BigInteger)
    block_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    from_owner: Mapped[str | None] = mapped_column(BoundedString(ADDRESS))
    to_owner: Mapped[str | None] = mapped_column(BoundedString(ADDRESS))
    finalized: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    # Indexer (0004): the transaction's position in its block (history order is slot, position).
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


# A user's history: every event that moved an NFT to or from a wallet, newest last.
Index("ix_asset_events_to_owner_slot", AssetEvent.to_owner, AssetEvent.slot)
Index("ix_asset_events_from_owner_slot", AssetEvent.from_owner, AssetEvent.slot)


class IndexerCursor(Base):
    """Where a stream stopped; written in the same transaction as the rows it covers."""

    __tablename__ = "indexer_cursors"

    name: Mapped[str] = mapped_column(BoundedString(64), primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[str | None] = mapped_column(BoundedString(SIGNATURE))
    finalized_slot: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now, onupdate=_now)
    # Indexer (0004): the other end. ``slot``/``signature`` are the newest transaction seen; the
    # backfill walks back from the oldest one it reached, until the start of history.
    oldest_slot: Mapped[int | None] = mapped_column(BigInteger)
    oldest_signature: Mapped[str | None] = mapped_column(BoundedString(SIGNATURE))
    backfill_complete: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class IndexerUnseen(Base):
    """A transaction a live notification named that the RPC node did not serve yet (indexer,
    0007): kept until it is fetched and projected, or the node forgets it (a fork dropped it).
    Durable because later transactions move its addresses' cursors past it, so a restarted
    indexer's crawl from those cursors would never list it again."""

    __tablename__ = "indexer_unseen"

    signature: Mapped[str] = mapped_column(BoundedString(SIGNATURE), primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger)
    #: The followed addresses notified of it (their cursors move to it once projected).
    addresses: Mapped[Any] = mapped_column(JSONText(), default=list)
    first_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


class TrackedAccount(Base):
    """A token account of a tracked mint (indexer, 0004): its last known balance and owner, each
    with the slot and block position it was read at. The owner of an NFT is the owner of the one
    open account holding its token; open accounts are followed (a plain ``Transfer`` or a lone
    ``CloseAccount`` names neither the mint nor the new owner)."""

    __tablename__ = "tracked_accounts"
    __table_args__ = (Index(None, "mint", "closed"),)

    address: Mapped[str] = mapped_column(BoundedString(ADDRESS), primary_key=True)
    mint: Mapped[str] = mapped_column(BoundedString(ADDRESS))
    owner: Mapped[str | None] = mapped_column(BoundedString(ADDRESS))
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    slot: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer)
    delegate: Mapped[str | None] = mapped_column(BoundedString(ADDRESS))
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    # Approve/Revoke/Freeze/Thaw are ordered on their own: a balance change does not reset them.
    authority_slot: Mapped[int | None] = mapped_column(BigInteger)
    authority_position: Mapped[int | None] = mapped_column(Integer)
    finalized: Mapped[bool] = mapped_column(Boolean, default=False)


class ReorgJournal(Base):
    """Before-images of read-model rows changed at a not-yet-final slot, to undo a fork."""

    __tablename__ = "reorg_journal"
    __table_args__ = (Index(None, "slot", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger)
    table_name: Mapped[str] = mapped_column(BoundedString(64))
    row_key: Mapped[str] = mapped_column(BoundedString(128))
    before: Mapped[Any] = mapped_column(JSONText(), nullable=True)  # NULL: no row before
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


class ReconcileRun(Base):
    __tablename__ = "reconcile_runs"
    __table_args__ = (_one_of("status", RUN_STATUSES, "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(BoundedString(16), default="running")
    chain_slot: Mapped[int | None] = mapped_column(BigInteger)
    findings_count: Mapped[int] = mapped_column(Integer, default=0)
    repaired_count: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[Any] = mapped_column(JSONText(), default=dict)


class DriftFinding(Base):
    __tablename__ = "drift_findings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reconcile_runs.id"), index=True)
    kind: Mapped[str] = mapped_column(BoundedString(48))
    subject: Mapped[str] = mapped_column(BoundedString(SIGNATURE))
    details: Mapped[Any] = mapped_column(JSONText(), default=dict)
    repaired: Mapped[bool] = mapped_column(Boolean, default=False)
    repair_action: Mapped[str | None] = mapped_column(BoundedString(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


class TrustedCollection(Base):
    """A collection mint this deployment created (migration 0003): its members are authentic,
    since only our signature adds one. Several exist after a key rotation."""

    __tablename__ = "collections"
    __table_args__ = (_one_of("standard", ASSET_STANDARDS, "standard"),)

    mint: Mapped[str] = mapped_column(BoundedString(ADDRESS), primary_key=True)
    standard: Mapped[str] = mapped_column(BoundedString(16))
    authority: Mapped[str] = mapped_column(BoundedString(ADDRESS))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


metadata = Base.metadata
