"""Upgrades: badges reserved by an open upgrade request, and the mint state ``awaiting_owner``
(an upgrade signed by the system, waiting for the owner's signature: no worker touches it).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES = ("created", "signed", "sent", "confirmed", "finalized", "failed")


def _states_check(states: tuple[str, ...]) -> str:
    return "state IN ({})".format(", ".join(f"'{s}'" for s in states))


def upgrade() -> None:
    with op.batch_alter_table("mint_operations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_mint_operations_state"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_mint_operations_state"), _states_check((*_STATES, "awaiting_owner"))
        )
    with op.batch_alter_table("badges", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "reserved_by_upgrade_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_index(
            op.f("ix_badges_reserved_by_upgrade_id"), ["reserved_by_upgrade_id"], unique=False
        )
        batch_op.create_foreign_key(
            op.f("fk_badges_reserved_by_upgrade_id_nft_upgrade_requests"),
            "nft_upgrade_requests",
            ["reserved_by_upgrade_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("badges", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("fk_badges_reserved_by_upgrade_id_nft_upgrade_requests"), type_="foreignkey"
        )
        batch_op.drop_index(op.f("ix_badges_reserved_by_upgrade_id"))
        batch_op.drop_column("reserved_by_upgrade_id")
    # An operation still waiting for its owner cannot be described by the older schema: it
    # never landed (nothing was sent without the owner), so it is failed.
    op.execute(
        "UPDATE mint_operations SET state = 'failed', last_error = 'downgraded: awaiting owner' "
        "WHERE state = 'awaiting_owner'"
    )
    with op.batch_alter_table("mint_operations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_mint_operations_state"), type_="check")
        batch_op.create_check_constraint(op.f("ck_mint_operations_state"), _states_check(_STATES))
