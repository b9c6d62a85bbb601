"""The sender worker: every recorded mint lands exactly once.

For each due operation (claimed with ``FOR UPDATE SKIP LOCKED``, so several workers share the
queue) the worker moves it along ``created -> signed -> sent -> confirmed``:

- **sign**: build the standard's mint plan, sign with the system wallet and the derived mint
  keypair, and store the signed bytes, signature, blockhash and ``lastValidBlockHeight``
  *before* anything is sent, so a restart resends the very same bytes;
- **send / rebroadcast** the same bytes until the signature is confirmed or provably expired;
- **re-sign** (fresh blockhash, same mint address) only when the finalized block height is past
  ``lastValidBlockHeight`` *and* the mint account does not exist at ``finalized``: then the old
  transaction can never land. A node's ``BlockhashNotFound`` proves nothing (it may lag);
- **confirm**: the NFT moves to ``unlocked`` through the shared guarded transition (one outbox
  event) and the operation to ``confirmed``, in one transaction.

Every state change is ``UPDATE ... WHERE state = :expected``: of two workers holding one
operation, one advances it and the other finds it moved. Causes that pass (RPC outage, an empty
fee wallet, a busy database) put the operation off with backoff; nothing is ever ``failed`` on a
guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from typing import Any, Final

import structlog
from solana.rpc.commitment import Confirmed, Finalized
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction_status import TransactionConfirmationStatus, TransactionErrorFieldless
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chain.keys import Signer
from chain.rpc import RpcClient
from chain.rpc.errors import PreflightFailure
from chain.standards import AssetStandard, MintRequest, Plan
from core.errors import ChainError, RetryableChainError
from minting.keys import MintKeys, MintSecretMissing
from minting.metrics import MintingMetrics
from store.repos import mint_operations, transitions
from store.repos.transitions import ChainFact
from store.tables import MintOperation

UNFINISHED: Final = ("created", "signed", "sent")
_LANDED: Final = (TransactionConfirmationStatus.Confirmed, TransactionConfirmationStatus.Finalized)
_FUNDS_ERRORS: Final = (TransactionErrorFieldless.InsufficientFundsForFee,)

_log = structlog.stdlib.get_logger(__name__)

UriFor = Callable[[int], str]
Failpoint = Callable[[str], None]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _no_failpoint(name: str) -> None:
    return None


class MintWorker:
    """Drives mint operations to the chain. ``run_once`` drains what is due; ``run`` loops.

    ``uri_for(level)`` gives the metadata URI of a level (pinned by the metadata service).
    ``failpoint(name)`` is called after each durable step (``signed``, ``sent``, ``landed``)
    so tests can stop a worker exactly there.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rpc: RpcClient,
        system: Signer,
        keys: MintKeys,
        standard: AssetStandard,
        *,
        uri_for: UriFor,
        collection: Pubkey | None = None,
        metrics: MintingMetrics | None = None,
        batch: int = 20,
        hold_for: float = 30.0,
        poll: float = 0.2,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        compute_unit_limit: int | None = None,
        compute_unit_price: int | None = None,
        failpoint: Failpoint = _no_failpoint,
    ) -> None:
        self._sessions = sessions
        self._rpc = rpc
        self._system = system
        self._keys = keys
        self._standard = standard
        self._uri_for = uri_for
        self._collection = collection
        self._metrics = metrics
        self._batch = batch
        self._hold_for = dt.timedelta(seconds=hold_for)
        self._poll = poll
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._cu_limit = compute_unit_limit
        self._cu_price = compute_unit_price
        self._failpoint = failpoint

    # -- loops --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; the step in hand is finished first."""
        while not stop.is_set():
            done = await self.step()
            await self.observe()
            if not done:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._poll)

    async def run_once(self, *, within: float = 120.0, stop: asyncio.Event | None = None) -> int:
        """Work until no operation is unfinished (or ``within`` seconds pass); returns how
        many steps were taken."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        steps = 0
        while loop.time() < deadline and not (stop is not None and stop.is_set()):
            steps += await self.step(ignore_schedule=True)
            if await self._unfinished() == 0:
                break
            await asyncio.sleep(self._poll)
        await self.observe()
        return steps

    async def step(self, *, ignore_schedule: bool = False) -> int:
        """Claim a batch of due operations and advance each one step. Returns the count."""
        claimed = await self._claim(ignore_schedule)
        results = await asyncio.gather(
            *(self._advance(op) for op in claimed), return_exceptions=True
        )
        for op, result in zip(claimed, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            if isinstance(result, Exception):
                await self._defer(op, result)
        return len(claimed)

    async def observe(self) -> None:
        """Refresh the gauges: operations by state and the fee wallet's balance."""
        if self._metrics is None:
            return
        async with self._sessions() as session:
            rows = await session.execute(
                select(MintOperation.state, func.count()).group_by(MintOperation.state)
            )
            counts: dict[str, int] = {state: count for state, count in rows}
        for state in ("created", "signed", "sent", "confirmed", "finalized", "failed"):
            self._metrics.operations.labels(state).set(counts.get(state, 0))
        try:
            balance = (await self._rpc.get_balance(self._system.pubkey)).value
        except ChainError:
            return
        self._metrics.fee_wallet_balance.set(balance / 1e9)

    # -- one operation ------------------------------------------------------------------------

    async def _claim(self, ignore_schedule: bool) -> list[MintOperation]:
        now = _now()
        due = now + dt.timedelta(days=1) if ignore_schedule else now
        async with self._sessions() as session, session.begin():
            ops = await mint_operations.claim_due(session, UNFINISHED, due, self._batch)
            # Rows are locked only until commit: pushing next_attempt_at out keeps other
            # workers off them while this one works (a crashed worker's hold simply expires).
            for op in ops:
                op.next_attempt_at = now + self._hold_for
        return ops

    async def _advance(self, op: MintOperation) -> None:
        if op.state == "created":
            op = await self._sign(op)
            self._failpoint("signed")
        assert op.signature is not None
        signature = Signature.from_string(op.signature)
        status = (
            await self._rpc.get_signature_statuses([signature], search_transaction_history=True)
        ).value[0]
        if status is not None and status.err is None:
            if status.confirmation_status in _LANDED:
                self._failpoint("landed")
                await self._confirm(op, status.slot, op.signature)
            else:
                await self._schedule(op, self._poll)  # processed: confirmation is a slot away
            return
        mint = Pubkey.from_string(op.mint_address)
        found = await self._rpc.get_account_info(mint, commitment=Confirmed)
        if found.value is not None:
            # The mint exists, so one of this operation's transactions landed (the address is
            # ours alone) even if this node no longer knows the signature.
            await self._confirm(op, found.slot, op.signature if status is not None else None)
            return
        if await self._provably_expired(op, mint):
            op = await self._sign(op, resign=True)
            self._failpoint("signed")
        await self._send(op)

    async def _provably_expired(self, op: MintOperation, mint: Pubkey) -> bool:
        assert op.last_valid_block_height is not None
        if await self._rpc.get_block_height(Finalized) <= op.last_valid_block_height:
            return False
        return (await self._rpc.get_account_info(mint, commitment=Finalized)).value is None

    def _plan(self, op: MintOperation, uri: str) -> Plan:
        plan = self._standard.mint_plan(
            system=self._system.pubkey,
            owner=Pubkey.from_string(op.owner_address),
            mint=Pubkey.from_string(op.mint_address),
            request=MintRequest(level=str(op.level), uri=uri),
            collection=self._collection,
        )
        budget = []
        if self._cu_limit is not None:
            budget.append(set_compute_unit_limit(self._cu_limit))
        if self._cu_price is not None:
            budget.append(set_compute_unit_price(self._cu_price))
        if budget:
            plan = Plan(tuple(budget) + plan.instructions, plan.fee_payer, plan.signers)
        return plan.check_size()

    async def _sign(self, op: MintOperation, *, resign: bool = False) -> MintOperation:
        uri = op.metadata_uri or self._uri_for(op.level)
        mint = self._keys.keypair(op.idempotency_key, op.mint_secret_version)
        if str(mint.pubkey()) != op.mint_address:
            raise MintSecretMissing(
                f"operation {op.id}: the configured mint secret of version "
                f"{op.mint_secret_version} does not derive its mint address",
                details={"operation": op.id, "version": op.mint_secret_version},
            )
        latest = (await self._rpc.get_latest_blockhash(Confirmed)).value
        tx = self._plan(op, uri).sign([self._system.solders_keypair(), mint], latest.blockhash)
        values: dict[str, Any] = {
            "state": "signed",
            "signed_tx": bytes(tx),
            "signature": str(tx.signatures[0]),
            "blockhash": str(latest.blockhash),
            "last_valid_block_height": latest.last_valid_block_height,
            "metadata_uri": uri,
        }
        moved = await self._guarded(op, values)
        if resign and self._metrics is not None:
            self._metrics.resigns.inc()
        if resign:
            _log.warning("mint.resigned", operation=op.id, mint=op.mint_address)
        return moved

    async def _send(self, op: MintOperation) -> None:
        assert op.signed_tx is not None
        try:
            await self._rpc.send_raw_transaction(op.signed_tx, preflight_commitment=Confirmed)
        except PreflightFailure as exc:
            if exc.err == TransactionErrorFieldless.BlockhashNotFound:
                # Not proof of expiry: this node may lag. The height check above decides.
                await self._schedule(op, self._poll, error=exc.message, expected=op.state)
                return
            raise
        if self._metrics is not None:
            self._metrics.sent.inc()
        if op.state == "signed":
            op = await self._guarded(op, {"state": "sent"}, attempts=True)
            self._failpoint("sent")
        await self._schedule(op, self._poll)

    async def _confirm(self, op: MintOperation, slot: int, signature: str | None) -> None:
        fact = ChainFact(slot=slot, signature=signature, at=_now())
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(MintOperation)
                .where(MintOperation.id == op.id, MintOperation.state == op.state)
                .values(state="confirmed", confirmed_slot=slot, last_error=None)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return  # another worker confirmed it first
            await transitions.move(session, op.mint_address, "unlocked", fact)
        _log.info("mint.confirmed", operation=op.id, mint=op.mint_address, slot=slot)

    # -- guarded writes -----------------------------------------------------------------------

    async def _guarded(
        self, op: MintOperation, values: dict[str, Any], *, attempts: bool = False
    ) -> MintOperation:
        """Apply ``values`` if the operation is still in the state we read; else stop here."""
        async with self._sessions() as session, session.begin():
            stmt = update(MintOperation).where(
                MintOperation.id == op.id, MintOperation.state == op.state
            )
            if attempts:
                stmt = stmt.values(attempts=MintOperation.attempts + 1)
            result = await session.execute(
                stmt.values(**values).execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise _Moved(op.id)
            fresh = await session.get(MintOperation, op.id, populate_existing=True)
            assert fresh is not None
            return fresh

    async def _schedule(
        self,
        op: MintOperation,
        delay: float,
        *,
        error: str | None = None,
        expected: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"next_attempt_at": _now() + dt.timedelta(seconds=delay)}
        if error is not None:
            values["last_error"] = error[:2000]
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(MintOperation)
                .where(MintOperation.id == op.id, MintOperation.state == (expected or op.state))
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    async def _defer(self, op: MintOperation, error: Exception) -> None:
        if isinstance(error, _Moved):
            return
        reason = _reason(error)
        if self._metrics is not None:
            self._metrics.retries.labels(reason).inc()
        async with self._sessions() as session:
            fresh = await session.get(MintOperation, op.id)
        tries = fresh.attempts if fresh is not None else 0
        delay = min(self._backoff_max, self._backoff_base * 2 ** min(tries, 16))
        message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
        _log.warning("mint.deferred", operation=op.id, reason=reason, error=message, delay=delay)
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(
                    update(MintOperation)
                    .where(MintOperation.id == op.id, MintOperation.state.in_(UNFINISHED))
                    .values(
                        attempts=MintOperation.attempts + 1,
                        last_error=f"{reason}: {message}"[:2000],
                        next_attempt_at=_now() + dt.timedelta(seconds=delay),
                    )
                    .execution_options(synchronize_session=False)
                )
        except OperationalError:
            return  # the hold expires on its own; the next claim retries

    async def _unfinished(self) -> int:
        async with self._sessions() as session:
            return int(
                (
                    await session.execute(
                        select(func.count())
                        .select_from(MintOperation)
                        .where(MintOperation.state.in_(UNFINISHED))
                    )
                ).scalar_one()
            )


class _Moved(Exception):
    """Another worker advanced the operation first: nothing to do."""


def _reason(error: Exception) -> str:
    if isinstance(error, PreflightFailure) and error.err in _FUNDS_ERRORS:
        return "funds"
    if isinstance(error, RetryableChainError):
        return "rpc"
    if isinstance(error, OperationalError):
        return "store"
    if isinstance(error, MintSecretMissing):
        return "config"
    return "other"
