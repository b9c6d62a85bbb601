"""History kinds for a token account's delegate and frozen state: ``delegate``, ``undelegate``
(Approve / Revoke, and the implicit clears), ``freeze`` and ``thaw``.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = ("mint", "transfer", "burn", "close", "activate")
_NEW = ("delegate", "undelegate", "freeze", "thaw")


def _kinds_check(kinds: tuple[str, ...]) -> str:
    return "kind IN ({})".format(", ".join(f"'{k}'" for k in kinds))


def upgrade() -> None:
    with op.batch_alter_table("asset_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_asset_events_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_asset_events_kind"), _kinds_check(_KINDS + _NEW))


def downgrade() -> None:
    # The older schema cannot hold these rows; they are history the indexer writes again from
    # the chain after an upgrade (re-crawl), so they are dropped, not kept under another kind.
    events = sa.table("asset_events", sa.column("kind", sa.String))
    op.execute(sa.delete(events).where(events.c.kind.in_(_NEW)))
    with op.batch_alter_table("asset_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_asset_events_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_asset_events_kind"), _kinds_check(_KINDS))
