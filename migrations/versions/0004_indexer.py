"""Indexer: block positions, authenticity, both cursor ends, tracked token accounts, an index
for a user's history.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A quoted 0 reads as false on every database (PostgreSQL casts the string to boolean).
_FALSE = "0"


def upgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("genuine", sa.Boolean(), nullable=False, server_default=_FALSE)
        )
        batch_op.add_column(sa.Column("mint_position", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("metadata_position", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("token_position", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("last_position", sa.Integer(), nullable=False, server_default=_FALSE)
        )
        batch_op.add_column(sa.Column("metadata_fields", store.types.JSONText(), nullable=True))
        batch_op.add_column(sa.Column("metadata_error", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("mint_closed", sa.Boolean(), nullable=False, server_default=_FALSE)
        )

    with op.batch_alter_table("asset_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("position", sa.Integer(), nullable=False, server_default=_FALSE)
        )
        batch_op.create_index("ix_asset_events_to_owner_slot", ["to_owner", "slot"], unique=False)
        batch_op.create_index(
            "ix_asset_events_from_owner_slot", ["from_owner", "slot"], unique=False
        )

    with op.batch_alter_table("indexer_cursors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("oldest_slot", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("oldest_signature", sa.String(length=88), nullable=True))
        batch_op.add_column(
            sa.Column("backfill_complete", sa.Boolean(), nullable=False, server_default=_FALSE)
        )

    op.create_table(
        "tracked_accounts",
        sa.Column("address", sa.String(length=44), nullable=False),
        sa.Column("mint", sa.String(length=44), nullable=False),
        sa.Column("owner", sa.String(length=44), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("delegate", sa.String(length=44), nullable=True),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("authority_slot", sa.BigInteger(), nullable=True),
        sa.Column("authority_position", sa.Integer(), nullable=True),
        sa.Column("finalized", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )
    with op.batch_alter_table("tracked_accounts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tracked_accounts_mint_closed"), ["mint", "closed"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tracked_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracked_accounts_mint_closed"))
    op.drop_table("tracked_accounts")

    with op.batch_alter_table("indexer_cursors", schema=None) as batch_op:
        batch_op.drop_column("backfill_complete")
        batch_op.drop_column("oldest_signature")
        batch_op.drop_column("oldest_slot")

    with op.batch_alter_table("asset_events", schema=None) as batch_op:
        batch_op.drop_index("ix_asset_events_from_owner_slot")
        batch_op.drop_index("ix_asset_events_to_owner_slot")
        batch_op.drop_column("position")

    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_column("mint_closed")
        batch_op.drop_column("metadata_error")
        batch_op.drop_column("metadata_fields")
        batch_op.drop_column("last_position")
        batch_op.drop_column("token_position")
        batch_op.drop_column("metadata_position")
        batch_op.drop_column("mint_position")
        batch_op.drop_column("genuine")
