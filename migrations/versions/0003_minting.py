"""Minting engine: the secret version of each mint operation, and the trusted collections.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mint_operations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mint_secret_version", sa.Integer(), nullable=True))
    op.create_table(
        "collections",
        sa.Column("mint", sa.String(length=44), nullable=False),
        sa.Column("standard", sa.String(length=16), nullable=False),
        sa.Column("authority", sa.String(length=44), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "standard IN ('token2022', 'metaplex')", name=op.f("ck_collections_standard")
        ),
        sa.PrimaryKeyConstraint("mint"),
    )


def downgrade() -> None:
    op.drop_table("collections")
    with op.batch_alter_table("mint_operations", schema=None) as batch_op:
        batch_op.drop_column("mint_secret_version")
