"""Initial schema: business records and read model.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 21:51:41.704387+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "asset_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("mint", sa.String(length=44), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=88), nullable=False),
        sa.Column("instruction_index", sa.Integer(), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("block_time", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("from_owner", sa.String(length=44), nullable=True),
        sa.Column("to_owner", sa.String(length=44), nullable=True),
        sa.Column("finalized", sa.Boolean(), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('mint', 'transfer', 'burn', 'close', 'activate')",
            name=op.f("ck_asset_events_kind"),
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "signature",
            "instruction_index",
            "mint",
            "kind",
            name=op.f("uq_asset_events_signature_instruction_index_mint_kind"),
        ),
    )
    with op.batch_alter_table("asset_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_asset_events_mint_slot"), ["mint", "slot"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_asset_events_slot"), ["slot"], unique=False)

    op.create_table(
        "assets",
        sa.Column("mint", sa.String(length=44), nullable=False),
        sa.Column("standard", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=44), nullable=True),
        sa.Column("token_account", sa.String(length=44), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=True),
        sa.Column("uri", sa.String(length=512), nullable=True),
        sa.Column("update_authority", sa.String(length=44), nullable=True),
        sa.Column("creators", store.types.JSONText(), nullable=False),
        sa.Column("collection", sa.String(length=44), nullable=True),
        sa.Column("supply", sa.BigInteger(), nullable=False),
        sa.Column("burnt", sa.Boolean(), nullable=False),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("delegate", sa.String(length=44), nullable=True),
        sa.Column("activated", sa.Boolean(), nullable=False),
        sa.Column("mint_slot", sa.BigInteger(), nullable=True),
        sa.Column("metadata_slot", sa.BigInteger(), nullable=True),
        sa.Column("token_slot", sa.BigInteger(), nullable=True),
        sa.Column("last_slot", sa.BigInteger(), nullable=False),
        sa.Column("finalized", sa.Boolean(), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "standard IN ('token2022', 'metaplex')", name=op.f("ck_assets_standard")
        ),
        sa.PrimaryKeyConstraint("mint"),
    )
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assets_collection"), ["collection"], unique=False)
        batch_op.create_index(batch_op.f("ix_assets_owner_burnt"), ["owner", "burnt"], unique=False)

    op.create_table(
        "event_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", store.types.JSONText(), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("event_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_outbox_published_at_id"), ["published_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_event_outbox_user_id"), ["user_id"], unique=False)

    op.create_table(
        "indexer_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.String(length=88), nullable=True),
        sa.Column("finalized_slot", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "nft_tiers",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("min_volume_usd", store.types.Money(precision=38, scale=8), nullable=True),
        sa.Column("badges_required", sa.Integer(), nullable=False),
        sa.Column("fee_reduction_pct", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("ai_agent_uses_per_week", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('tier', 'competition')", name=op.f("ck_nft_tiers_kind")),
        sa.CheckConstraint(
            "fee_reduction_pct >= 0 AND fee_reduction_pct <= 100", name=op.f("ck_nft_tiers_fee")
        ),
        sa.PrimaryKeyConstraint("level"),
        sa.UniqueConstraint("name", name=op.f("uq_nft_tiers_name")),
    )
    op.create_table(
        "reconcile_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("started_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("chain_slot", sa.BigInteger(), nullable=True),
        sa.Column("findings_count", sa.Integer(), nullable=False),
        sa.Column("repaired_count", sa.Integer(), nullable=False),
        sa.Column("summary", store.types.JSONText(), nullable=False),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name=op.f("ck_reconcile_runs_status")
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "reorg_journal",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("row_key", sa.String(length=128), nullable=False),
        sa.Column("before", store.types.JSONText(), nullable=True),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reorg_journal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reorg_journal_slot_id"), ["slot", "id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("wallet_address", sa.String(length=44), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("wallet_address", name=op.f("uq_users_wallet_address")),
    )
    op.create_table(
        "drift_findings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("subject", sa.String(length=88), nullable=False),
        sa.Column("details", store.types.JSONText(), nullable=False),
        sa.Column("repaired", sa.Boolean(), nullable=False),
        sa.Column("repair_action", sa.String(length=64), nullable=True),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["reconcile_runs.id"], name=op.f("fk_drift_findings_run_id_reconcile_runs")
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("drift_findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drift_findings_run_id"), ["run_id"], unique=False)

    op.create_table(
        "mint_operations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("owner_address", sa.String(length=44), nullable=False),
        sa.Column("mint_address", sa.String(length=44), nullable=False),
        sa.Column("asset_standard", sa.String(length=16), nullable=False),
        sa.Column("metadata_uri", sa.String(length=512), nullable=True),
        sa.Column("signed_tx", sa.LargeBinary(), nullable=True),
        sa.Column("signature", sa.String(length=88), nullable=True),
        sa.Column("blockhash", sa.String(length=44), nullable=True),
        sa.Column("last_valid_block_height", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("confirmed_slot", sa.BigInteger(), nullable=True),
        sa.Column("next_attempt_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "asset_standard IN ('token2022', 'metaplex')", name=op.f("ck_mint_operations_standard")
        ),
        sa.CheckConstraint(
            "kind IN ('claim', 'upgrade', 'airdrop')", name=op.f("ck_mint_operations_kind")
        ),
        sa.CheckConstraint(
            "state IN ('created', 'signed', 'sent', 'confirmed', 'finalized', 'failed')",
            name=op.f("ck_mint_operations_state"),
        ),
        sa.ForeignKeyConstraint(
            ["level"], ["nft_tiers.level"], name=op.f("fk_mint_operations_level_nft_tiers")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_mint_operations_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_mint_operations_idempotency_key")),
        sa.UniqueConstraint("mint_address", name=op.f("uq_mint_operations_mint_address")),
        sa.UniqueConstraint("signature", name=op.f("uq_mint_operations_signature")),
    )
    with op.batch_alter_table("mint_operations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mint_operations_state_next_attempt_at"),
            ["state", "next_attempt_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_mint_operations_user_id"), ["user_id"], unique=False)

    op.create_table(
        "trades",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("total_usd_price", store.types.Money(precision=38, scale=8), nullable=False),
        sa.Column("traded_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("total_usd_price >= 0", name=op.f("ck_trades_non_negative")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_trades_user_id_users")),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trades_user_id"), ["user_id"], unique=False)

    op.create_table(
        "user_nft_qualifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("qualified", sa.Boolean(), nullable=False),
        sa.Column("volume_usd", store.types.Money(precision=38, scale=8), nullable=False),
        sa.Column("badges_count", sa.Integer(), nullable=False),
        sa.Column("checked_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["level"], ["nft_tiers.level"], name=op.f("fk_user_nft_qualifications_level_nft_tiers")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_nft_qualifications_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "user_id", "level", name=op.f("uq_user_nft_qualifications_user_id_level")
        ),
    )
    op.create_table(
        "user_nfts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("mint_address", sa.String(length=44), nullable=False),
        sa.Column(
            "mint_operation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("metadata_uri", sa.String(length=512), nullable=True),
        sa.Column("unlocked_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("activated_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("burned_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "live_tier_user_id",
            sa.BigInteger(),
            sa.Computed(
                "CASE WHEN kind = 'tier' AND status IN ('unlocked', 'active') THEN user_id END",
                persisted=True,
            ),
            nullable=True,
        ),
        sa.Column(
            "pending_tier_user_id",
            sa.BigInteger(),
            sa.Computed(
                "CASE WHEN kind = 'tier' AND status = 'pending' THEN user_id END", persisted=True
            ),
            nullable=True,
        ),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('tier', 'competition')", name=op.f("ck_user_nfts_kind")),
        sa.CheckConstraint(
            "status IN ('pending', 'unlocked', 'active', 'burned', 'failed')",
            name=op.f("ck_user_nfts_status"),
        ),
        sa.ForeignKeyConstraint(
            ["level"], ["nft_tiers.level"], name=op.f("fk_user_nfts_level_nft_tiers")
        ),
        sa.ForeignKeyConstraint(
            ["mint_operation_id"],
            ["mint_operations.id"],
            name=op.f("fk_user_nfts_mint_operation_id_mint_operations"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_nfts_user_id_users")),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("live_tier_user_id", name=op.f("uq_user_nfts_live_tier_user_id")),
        sa.UniqueConstraint("mint_address", name=op.f("uq_user_nfts_mint_address")),
        sa.UniqueConstraint("mint_operation_id", name=op.f("uq_user_nfts_mint_operation_id")),
        sa.UniqueConstraint("pending_tier_user_id", name=op.f("uq_user_nfts_pending_tier_user_id")),
    )
    with op.batch_alter_table("user_nfts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_nfts_user_id"), ["user_id"], unique=False)

    op.create_table(
        "nft_upgrade_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "from_user_nft_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("to_level", sa.Integer(), nullable=False),
        sa.Column(
            "mint_operation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'submitted', 'confirmed', 'failed', 'expired')",
            name=op.f("ck_nft_upgrade_requests_status"),
        ),
        sa.ForeignKeyConstraint(
            ["from_user_nft_id"],
            ["user_nfts.id"],
            name=op.f("fk_nft_upgrade_requests_from_user_nft_id_user_nfts"),
        ),
        sa.ForeignKeyConstraint(
            ["mint_operation_id"],
            ["mint_operations.id"],
            name=op.f("fk_nft_upgrade_requests_mint_operation_id_mint_operations"),
        ),
        sa.ForeignKeyConstraint(
            ["to_level"],
            ["nft_tiers.level"],
            name=op.f("fk_nft_upgrade_requests_to_level_nft_tiers"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_nft_upgrade_requests_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "mint_operation_id", name=op.f("uq_nft_upgrade_requests_mint_operation_id")
        ),
    )
    with op.batch_alter_table("nft_upgrade_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_nft_upgrade_requests_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "badges",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("badge_type", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("activated_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("consumed_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "consumed_by_upgrade_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('owned', 'activated', 'consumed')", name=op.f("ck_badges_status")
        ),
        sa.ForeignKeyConstraint(
            ["consumed_by_upgrade_id"],
            ["nft_upgrade_requests.id"],
            name=op.f("fk_badges_consumed_by_upgrade_id_nft_upgrade_requests"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_badges_user_id_users")),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "badge_type", name=op.f("uq_badges_user_id_badge_type")),
    )
    with op.batch_alter_table("badges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_badges_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes; MySQL refuses to drop an index a foreign key uses.
    op.drop_table("badges")
    op.drop_table("nft_upgrade_requests")
    op.drop_table("user_nfts")
    op.drop_table("user_nft_qualifications")
    op.drop_table("trades")
    op.drop_table("mint_operations")
    op.drop_table("drift_findings")
    op.drop_table("users")
    op.drop_table("reorg_journal")
    op.drop_table("reconcile_runs")
    op.drop_table("nft_tiers")
    op.drop_table("indexer_cursors")
    op.drop_table("event_outbox")
    op.drop_table("assets")
    op.drop_table("asset_events")
