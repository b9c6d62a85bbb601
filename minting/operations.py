"""Operator views and actions on mint operations: describe, find, retry, cancel."""

from __future__ import annotations

import datetime as dt
from typing import Any

from solana.rpc.commitment import Finalized
from solders.pubkey import Pubkey
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chain.rpc import RpcClient
from minting.errors import OperationNotFound, OperationStateConflict
from minting.worker import UNFINISHED
from store.repos import transitions
from store.repos.transitions import ChainFact
from store.tables import MintOperation


def describe(op: MintOperation) -> dict[str, Any]:
    """The operation as JSON-ready data (never the signed bytes)."""
    return {
        "id": op.id,
        "idempotency_key": op.idempotency_key,
        "kind": op.kind,
        "state": op.state,
        "level": op.level,
        "user_id": op.user_id,
        "owner": op.owner_address,
        "mint": op.mint_address,
        "standard": op.asset_standard,
        "metadata_uri": op.metadata_uri,
        "signature": op.signature,
        "last_valid_block_height": op.last_valid_block_height,
        "attempts": op.attempts,
        "last_error": op.last_error,
        "confirmed_slot": op.confirmed_slot,
        "created_at": op.created_at.isoformat() if op.created_at else None,
        "next_attempt_at": op.next_attempt_at.isoformat() if op.next_attempt_at else None,
    }


async def get(session: AsyncSession, operation_id: int) -> MintOperation:
    op = await session.get(MintOperation, operation_id, populate_existing=True)
    if op is None:
        raise OperationNotFound(
            f"no mint operation {operation_id}", details={"operation": operation_id}
        )
    return op


async def for_wallet(session: AsyncSession, wallet: str) -> list[MintOperation]:
    stmt = select(MintOperation).where(MintOperation.owner_address == wallet)
    return list((await session.execute(stmt.order_by(MintOperation.id))).scalars())


async def counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(MintOperation.state, func.count()).group_by(MintOperation.state)
    )
    return {state: int(count) for state, count in rows}


async def retry(session: AsyncSession, operation_id: int, now: dt.datetime) -> MintOperation:
    """Make an unfinished operation due now (a failed one stays failed: claim again)."""
    op = await get(session, operation_id)
    if op.state not in UNFINISHED:
        raise OperationStateConflict(
            f"operation {op.id} is {op.state}: only an unfinished one can be retried",
            details={"operation": op.id, "state": op.state},
        )
    await session.execute(
        update(MintOperation)
        .where(MintOperation.id == op.id, MintOperation.state == op.state)
        .values(next_attempt_at=now, attempts=0)
    )
    return await get(session, operation_id)


async def cancel(
    session: AsyncSession, rpc: RpcClient, operation_id: int, now: dt.datetime
) -> MintOperation:
    """Fail an unfinished operation that provably never landed: never signed, or its
    blockhash expired at ``finalized`` with no mint account there. Its NFT becomes failed."""
    op = await get(session, operation_id)
    if op.state not in UNFINISHED:
        raise OperationStateConflict(
            f"operation {op.id} is {op.state}: only an unfinished one can be cancelled",
            details={"operation": op.id, "state": op.state},
        )
    if op.state != "created":
        assert op.last_valid_block_height is not None
        height = await rpc.get_block_height(Finalized)
        account = await rpc.get_account_info(
            Pubkey.from_string(op.mint_address), commitment=Finalized
        )
        if height <= op.last_valid_block_height or account.value is not None:
            raise OperationStateConflict(
                f"operation {op.id} may still land (or did): wait until its blockhash expires",
                details={"operation": op.id, "finalized_height": height},
            )
    result = await session.execute(
        update(MintOperation)
        .where(MintOperation.id == op.id, MintOperation.state == op.state)
        .values(state="failed", last_error="cancelled by an operator")
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise OperationStateConflict(f"operation {op.id} moved meanwhile; look again")
    await transitions.move(session, op.mint_address, "failed", ChainFact(0, None, now))
    return await get(session, operation_id)
