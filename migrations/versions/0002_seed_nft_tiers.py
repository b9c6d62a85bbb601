"""Seed the level table with the AIW3 business rules v1.1.0.

A new tier is a new row: add it in a migration like this one (or with SQL), not in code.
Special (competition) tiers use levels from 100 up, so they never sort among the ladder.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_tiers = sa.table(
    "nft_tiers",
    sa.column("level", sa.Integer()),
    sa.column("name", sa.String()),
    sa.column("kind", sa.String()),
    sa.column("min_volume_usd", store.types.Money()),
    sa.column("badges_required", sa.Integer()),
    sa.column("fee_reduction_pct", sa.Numeric(5, 2)),
    sa.column("ai_agent_uses_per_week", sa.Integer()),
)

_ROWS = [
    (1, "Tech Chicken", "tier", "100000", 0, "10", 10),
    (2, "Quant Ape", "tier", "500000", 2, "20", 20),
    (3, "On-chain Hunter", "tier", "5000000", 4, "30", 30),
    (4, "Alpha Alchemist", "tier", "10000000", 6, "40", 40),
    (5, "Quantum Alchemist", "tier", "50000000", 8, "55", 50),
    (100, "Trophy Breeder", "competition", None, 0, "25", None),
]


def upgrade() -> None:
    op.bulk_insert(
        _tiers,
        [
            {
                "level": level,
                "name": name,
                "kind": kind,
                "min_volume_usd": None if volume is None else Decimal(volume),
                "badges_required": badges,
                "fee_reduction_pct": Decimal(fee),
                "ai_agent_uses_per_week": uses,
            }
            for level, name, kind, volume, badges, fee, uses in _ROWS
        ],
    )


def downgrade() -> None:
    op.execute(_tiers.delete().where(_tiers.c.level.in_([row[0] for row in _ROWS])))
