"""Notified transactions the RPC node did not serve yet: kept across indexer restarts.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "indexer_unseen",
        sa.Column("signature", sa.String(length=88), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("addresses", store.types.JSONText(), nullable=False),
        sa.Column("first_seen_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature"),
    )


def downgrade() -> None:
    # What it held is re-found by the next crawl of a followed address only if no cursor moved
    # past it: a downgrade gives that guarantee up, as the older schema did.
    op.drop_table("indexer_unseen")
