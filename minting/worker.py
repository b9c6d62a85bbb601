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
from dataclasses import dataclass
from typing import Any, Final

import structlog
from solana.rpc.commitment import Confirmed, Finalized
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcBlockhash
from solders.signature import Signature
from solders.transaction_status import (
    TransactionConfirmationStatus,
    TransactionErrorFieldless,
    TransactionStatus,
)
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chain.keys import Signer
from chain.rpc import RpcClient
from chain.rpc.errors import PreflightFailure
from chain.standards import AssetStandard, MintRequest, Plan
from core.errors import ChainError, RetryableChainError, RetryableStoreError, StoreError
from minting.budget import with_budget
from minting.ipfs import Pinner
from minting.ipfs.errors import PinningError
from minting.keys import MintKeys, MintSecretMissing
from minting.metadata import TierRef, pin_metadata, pin_tier_image
from minting.metrics import MintingMetrics
from minting.upgrades import Upgrades
from store import retry
from store.dialect import lock_for_claim
from store.repos import mint_operations, tiers, transitions
from store.repos.transitions import ChainFact
from store.tables import MINT_STATES, MintOperation

UNFINISHED: Final = ("created", "signed", "sent")
# What a worker signs alone. An upgrade waits for its owner's signature: a worker never
# rebroadcasts or re-signs it (the upgrade flow sends what the wallet signed).
WORKER_KINDS: Final = ("claim", "airdrop")
_LANDED: Final = (TransactionConfirmationStatus.Confirmed, TransactionConfirmationStatus.Finalized)
_FUNDS_ERRORS: Final = (
    TransactionErrorFieldless.InsufficientFundsForFee,
    TransactionErrorFieldless.AccountNotFound,  # a fee payer never funded has no account
)
# Rejections that say nothing against the transaction itself: it may land (or already did).
_NOT_DEFINITIVE: Final = (
    TransactionErrorFieldless.BlockhashNotFound,
    TransactionErrorFieldless.AlreadyProcessed,
    *_FUNDS_ERRORS,
)
# ``last_error`` prefix of a preflight rejection that will repeat: with the blockhash expired
# and no mint account at finalized, such an operation is failed instead of re-signed.
REJECTED: Final = "rejected"
FAILPOINTS: Final = ("after_recorded", "after_signed", "after_sent", "before_commit")

_log = structlog.stdlib.get_logger(__name__)

Failpoint = Callable[[str], None]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _no_failpoint(name: str) -> None:
    return None


class MintWorker:
    """Drives mint operations to the chain. ``run_once`` drains what is due; ``run`` loops.

    Before the first signature the NFT's metadata JSON is pinned with ``pinner`` and its
    ``ipfs://`` uri stored on the operation; a pinning failure puts the operation off (no
    mint without its metadata). ``failpoint(name)`` is called at each of :data:`FAILPOINTS`
    (after a durable step, and once inside the confirming transaction before its commit) so
    tests can kill a worker exactly there.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rpc: RpcClient,
        system: Signer,
        keys: MintKeys,
        standard: AssetStandard,
        *,
        pinner: Pinner,
        collection: Pubkey | None = None,
        metrics: MintingMetrics | None = None,
        batch: int = 20,
        hold_for: float = 30.0,
        poll: float = 0.2,
        linger: float = 0.05,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        compute_unit_limit: int | None = None,
        compute_unit_price: int | None = None,
        failpoint: Failpoint = _no_failpoint,
        observe_every: float = 2.0,
        upgrades: Upgrades | None = None,
    ) -> None:
        self._sessions = sessions
        self._rpc = rpc
        self._system = system
        self._keys = keys
        self._standard = standard
        self._pinner = pinner
        self._tier_names: dict[int, str] = {}
        self._image_cids: dict[int, str] = {}  # level -> its image's CID, pinned by us
        self._levels_lock = asyncio.Lock()  # one tier read / image pin for a whole batch
        self.alive_at = 0.0  # loop time of the last turn, for a liveness check
        self.ready = False  # the database and the chain answered the last step
        self._observe_every = observe_every
        self._observed_at = -observe_every
        self._collection = collection
        self._metrics = metrics
        self._batch = batch
        self._hold_for = dt.timedelta(seconds=hold_for)
        self._poll = poll
        self._linger = min(linger, poll)
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._cu_limit = compute_unit_limit
        self._cu_price = compute_unit_price
        self._failpoint = failpoint
        self._upgrades = upgrades  # settled from the loop: nobody else may ask about them

    # -- loops --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Resume every unfinished operation, then work until ``stop`` is set; the step in
        hand is finished first.

        A full batch is followed by the next at once; a part batch by a ``linger`` first, so
        that claims arriving one by one are taken a few at a time: each step has costs of its
        own (its claim, blockhash and writes) that a batch of one pays alone, and that cost
        CPU the claims, the database and the other workers share."""
        await self.resume()
        while not stop.is_set():
            done = await self._turn()
            if done < self._batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._linger if done else self._poll)

    async def run_once(
        self, *, within: float | None = 120.0, stop: asyncio.Event | None = None
    ) -> bool:
        """Resume, then work until no operation is unfinished (True), or ``within`` seconds
        pass or ``stop`` is set (False)."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        await self.resume()
        while await self._unfinished() > 0:
            if (deadline is not None and loop.time() >= deadline) or (
                stop is not None and stop.is_set()
            ):
                await self.observe()
                return False
            if not await self._turn():
                await asyncio.sleep(self._poll)
        await self.observe()
        return True

    async def resume(self) -> int:
        """Make every unfinished operation due now, even one a worker that died still holds
        (its hold would only expire later); returns how many. A live holder stays safe: the
        guarded writes let only one of two workers advance an operation."""

        async def unit(session: AsyncSession) -> int:
            result = await session.execute(
                update(MintOperation)
                .where(
                    MintOperation.state.in_(UNFINISHED),
                    MintOperation.kind.in_(WORKER_KINDS),
                    MintOperation.next_attempt_at > _now(),
                )
                .values(next_attempt_at=_now())
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

        # Workers started together each update every held row: on PostgreSQL they can
        # deadlock each other (and a running worker's claim); the loser runs it again.
        resumed = await retry.in_transaction(self._sessions, unit, what="mint.resume")
        if resumed:
            _log.info("mint.resumed", operations=resumed)
        return resumed

    async def _turn(self) -> int:
        try:
            done = await self.step()
        # The store's errors arrive translated (RetryableStoreError); a raw OperationalError
        # is a connect that failed before the translation hook saw it.
        except (OperationalError, RetryableStoreError, ChainError) as exc:
            self.ready = False
            _log.warning("mint.step_failed", error=f"{type(exc).__name__}: {exc}")
            return 0
        now = asyncio.get_running_loop().time()
        self.alive_at = now
        self.ready = True
        if now - self._observed_at >= self._observe_every:
            # A count over the table and a balance request: not on every short poll.
            self._observed_at = now
            await self.observe()
            await self.settle_upgrades()
        return done

    async def settle_upgrades(self) -> None:
        """Settle the open upgrades (sent by their wallet, or expired unsigned): this reads
        the chain only, never sends: an upgrade waits for its owner's signature."""
        if self._upgrades is not None:
            await self._upgrades.settle_open()

    async def step(self, *, due: dt.datetime | None = None) -> int:
        """Claim a batch of operations due by ``due`` (default: now) and advance each one
        step. Returns the count."""
        claimed = await self._claim(due)
        fresh = [op for op in claimed if op.state == "created"]
        known = [op for op in claimed if op.state != "created"]
        try:
            looks = await self._look(known)
        except Exception as exc:  # the node is down: each one is put off
            for op in known:
                await self._defer(op, exc)
            known, looks = [], {}
        latest: RpcBlockhash | None = None
        if fresh:
            try:  # one blockhash signs every new transaction of this step
                latest = (await self._rpc.get_latest_blockhash(Confirmed)).value
            except Exception as exc:  # the node is down: each one is put off
                for op in fresh:
                    await self._defer(op, exc)
                fresh = []
        # The common outcomes of a look are written in one transaction each for the whole
        # batch (every write still guarded per operation); the rare ones go one by one.
        confirms: list[_Confirmation] = []
        waiting: list[MintOperation] = []
        others: list[MintOperation] = []
        for op in known:
            look = looks[op.id]
            status = look.status
            if status is not None and status.err is None:
                if status.confirmation_status in _LANDED:
                    confirms.append(_Confirmation(op, status.slot, op.signature))
                else:
                    waiting.append(op)  # processed: confirmation is a slot away
            elif look.mint_slot is not None:
                # The mint exists, so one of this operation's transactions landed (the
                # address is ours alone) even if this node no longer knows the signature.
                signature = op.signature if status is not None else None
                confirms.append(_Confirmation(op, look.mint_slot, signature))
            else:
                others.append(op)
        batches = await asyncio.gather(
            self._start_all(fresh, latest),
            self._confirm_all(confirms),
            self._schedule_all(waiting, self._poll),
            return_exceptions=True,
        )
        for result in batches:  # each batch defers its own operations
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            if isinstance(result, Exception):  # their holds expire: another turn retries
                _log.error("mint.batch_failed", error=f"{type(result).__name__}: {result}")
        results = await asyncio.gather(*(self._follow(op) for op in others), return_exceptions=True)
        for op, result in zip(others, results, strict=True):
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
        for state in MINT_STATES:
            self._metrics.operations.labels(state).set(counts.get(state, 0))
        try:
            balance = (await self._rpc.get_balance(self._system.pubkey)).value
        except ChainError:
            return
        self._metrics.fee_wallet_balance.set(balance / 1e9)

    # -- one operation ------------------------------------------------------------------------

    async def _claim(self, due: dt.datetime | None) -> list[MintOperation]:
        now = _now()
        async with self._sessions() as session, session.begin():
            await lock_for_claim(session)
            ops = list(
                (
                    await session.execute(
                        select(MintOperation)
                        .where(
                            MintOperation.state.in_(UNFINISHED),
                            MintOperation.kind.in_(WORKER_KINDS),
                            MintOperation.next_attempt_at <= (due or now),
                        )
                        .order_by(MintOperation.next_attempt_at, MintOperation.id)
                        .limit(self._batch)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            # Rows are locked only until commit: pushing next_attempt_at out keeps other
            # workers off them while this one works (a crashed worker's hold simply expires).
            for op in ops:
                op.next_attempt_at = now + self._hold_for
        return ops

    async def _look(self, ops: list[MintOperation]) -> dict[int, _Look]:
        """What the chain says of each sent operation, in two batched requests: its
        signature's status, and (where that is not a success) whether its mint exists."""
        if not ops:
            return {}
        signatures = [Signature.from_string(op.signature or "") for op in ops]
        statuses = (
            await self._rpc.get_signature_statuses(signatures, search_transaction_history=True)
        ).value
        unsure = [op for op, st in zip(ops, statuses, strict=True) if st is None or st.err]
        found = await self._rpc.get_multiple_accounts(
            [Pubkey.from_string(op.mint_address) for op in unsure], commitment=Confirmed
        )
        exists = {op.id for op, a in zip(unsure, found.value, strict=True) if a is not None}
        return {
            op.id: _Look(status, found.slot if op.id in exists else None)
            for op, status in zip(ops, statuses, strict=True)
        }

    async def _start_all(self, fresh: list[MintOperation], latest: RpcBlockhash | None) -> None:
        """Pin, sign and send new operations: the signed bytes of all of them are stored in
        one transaction before any is sent, and the ``sent`` marks in one after."""
        if not fresh:
            return
        uris = await asyncio.gather(*(self._uri(op) for op in fresh), return_exceptions=True)
        signed: list[tuple[MintOperation, dict[str, Any]]] = []
        for op, uri in zip(fresh, uris, strict=True):
            if isinstance(uri, BaseException) and not isinstance(uri, Exception):
                raise uri
            try:
                if isinstance(uri, Exception):
                    raise uri
                self._failpoint("after_recorded")
                signed.append((op, self._signed(op, uri, latest)))
            except Exception as exc:
                await self._defer(op, exc)
        try:
            moved = await self._guarded_all(signed)
        except Exception as exc:
            for op, _ in signed:
                await self._defer(op, exc)
            return
        if not await self._passed("after_signed", moved):
            return
        # Never sent before: nothing on chain to look for yet.
        results = await asyncio.gather(
            *(self._transmit(op) for op in moved), return_exceptions=True
        )
        due = _now() + dt.timedelta(seconds=self._poll)
        sent: list[tuple[MintOperation, dict[str, Any]]] = []
        for op, result in zip(moved, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            if isinstance(result, Exception):
                await self._defer(op, result)
            elif result:
                sent.append((op, {"state": "sent", "next_attempt_at": due}))
        try:
            marked = await self._guarded_all(sent, attempts=True)
        except Exception as exc:
            for op, _ in sent:
                await self._defer(op, exc)
            return
        await self._passed("after_sent", marked)

    async def _passed(self, failpoint: str, ops: list[MintOperation]) -> bool:
        """Call ``failpoint`` after a durable step of ``ops``; an exception it raises (a test
        stopping the worker there) defers them, as any step's error does."""
        if not ops:
            return False
        try:
            self._failpoint(failpoint)
        except Exception as exc:
            for op in ops:
                await self._defer(op, exc)
            return False
        return True

    async def _uri(self, op: MintOperation) -> str:
        return op.metadata_uri or await self._pin(op)

    async def _follow(self, op: MintOperation) -> None:
        """A sent operation not seen landed, whose mint does not exist: re-sign once its
        blockhash provably expired (or fail it if the chain rejects it for good), and send."""
        if await self._provably_expired(op, Pubkey.from_string(op.mint_address)):
            if op.last_error is not None and op.last_error.startswith(REJECTED + ":"):
                await self._fail(op, op.last_error)
                return
            assert op.metadata_uri is not None
            op = await self._sign(op, op.metadata_uri, None, resign=True)
            self._failpoint("after_signed")
        await self._send(op)

    async def _provably_expired(self, op: MintOperation, mint: Pubkey) -> bool:
        assert op.last_valid_block_height is not None
        if await self._rpc.get_block_height(Finalized) <= op.last_valid_block_height:
            return False
        return (await self._rpc.get_account_info(mint, commitment=Finalized)).value is None

    async def _pin(self, op: MintOperation) -> str:
        """Pin the NFT's own metadata JSON; its uri is recorded with the signed transaction
        (same bytes, same CID: a pin repeated after a crash gives the uri the first gave)."""
        name, image_cid = await self._level(op.level)
        return await pin_metadata(
            self._pinner, TierRef(op.level, name), mint=op.mint_address, image_cid=image_cid
        )

    async def _level(self, level: int) -> tuple[str, str]:
        """The tier's name and its image's CID, read and pinned once per worker (an image,
        once pinned, stays pinned): not once per operation, nor once per operation of the
        first batch (they all ask at the same time, hence the lock)."""
        async with self._levels_lock:
            if level not in self._tier_names:
                async with self._sessions() as session:
                    rows = await tiers.list_tiers(session)
                self._tier_names = {t.level: t.name for t in rows}
            if level not in self._image_cids:
                self._image_cids[level] = await pin_tier_image(self._pinner, level)
        return self._tier_names.get(level, f"Level {level}"), self._image_cids[level]

    def _plan(self, op: MintOperation, uri: str) -> Plan:
        plan = self._standard.mint_plan(
            system=self._system.pubkey,
            owner=Pubkey.from_string(op.owner_address),
            mint=Pubkey.from_string(op.mint_address),
            request=MintRequest(level=str(op.level), uri=uri),
            collection=self._collection,
        )
        return with_budget(plan, self._cu_limit, self._cu_price)

    async def _sign(
        self, op: MintOperation, uri: str, latest: RpcBlockhash | None, *, resign: bool = False
    ) -> MintOperation:
        if latest is None:
            latest = (await self._rpc.get_latest_blockhash(Confirmed)).value
        moved = await self._guarded(op, self._signed(op, uri, latest))
        if resign:
            if self._metrics is not None:
                self._metrics.resigns.inc()
            _log.warning("mint.resigned", operation=op.id, mint=op.mint_address)
        return moved

    def _signed(self, op: MintOperation, uri: str, latest: RpcBlockhash | None) -> dict[str, Any]:
        """The columns of the operation signed with ``latest`` (written before any send)."""
        assert latest is not None
        mint = self._keys.keypair(op.idempotency_key, op.mint_secret_version)
        if str(mint.pubkey()) != op.mint_address:
            raise MintSecretMissing(
                f"operation {op.id}: the configured mint secret of version "
                f"{op.mint_secret_version} does not derive its mint address",
                details={"operation": op.id, "version": op.mint_secret_version},
            )
        plan = self._plan(op, uri)
        tx = plan.sign([self._system.solders_keypair(), mint], latest.blockhash)
        return {
            "state": "signed",
            "signed_tx": bytes(tx),
            "signature": str(tx.signatures[0]),
            "blockhash": str(latest.blockhash),
            "last_valid_block_height": latest.last_valid_block_height,
            "metadata_uri": uri,
            "last_error": None,
        }

    async def _send(self, op: MintOperation) -> None:
        if not await self._transmit(op):
            return
        if op.state != "signed":
            await self._schedule(op, self._poll)  # a rebroadcast: look again soon
            return
        due = _now() + dt.timedelta(seconds=self._poll)
        await self._guarded(op, {"state": "sent", "next_attempt_at": due}, attempts=True)
        self._failpoint("after_sent")

    async def _transmit(self, op: MintOperation) -> bool:
        """Send the stored bytes; True when the node took them (False: what the node said is
        already written, e.g. a rejection or a look again soon)."""
        assert op.signed_tx is not None
        try:
            await self._rpc.send_raw_transaction(op.signed_tx, preflight_commitment=Confirmed)
        except PreflightFailure as exc:
            if exc.err == TransactionErrorFieldless.BlockhashNotFound:
                # Not proof of expiry: this node may lag. The height check above decides.
                await self._schedule(op, self._poll, error=exc.message, expected=op.state)
                return False
            if exc.err in _NOT_DEFINITIVE or _already_in_use(exc):
                raise  # a passing cause (or the mint exists): deferred and looked at again
            # The simulation rejects the transaction itself and will again: it is not sent,
            # so once its blockhash provably expires the operation never landed.
            await self._reject(op, exc)
            return False
        if self._metrics is not None:
            self._metrics.sent.inc()
        return True

    async def _reject(self, op: MintOperation, exc: PreflightFailure) -> None:
        if self._metrics is not None:
            self._metrics.retries.labels(REJECTED).inc()
        delay = self._delay(op.attempts)
        _log.error("mint.rejected", operation=op.id, error=exc.message, err=str(exc.err))
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(MintOperation)
                .where(MintOperation.id == op.id, MintOperation.state == op.state)
                .values(
                    attempts=MintOperation.attempts + 1,
                    last_error=f"{REJECTED}: {exc.message} ({exc.err})"[:2000],
                    next_attempt_at=_now() + dt.timedelta(seconds=delay),
                )
                .execution_options(synchronize_session=False)
            )

    async def _fail(self, op: MintOperation, reason: str) -> None:
        """The operation provably never landed and its cause will repeat: fail it and its NFT."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(MintOperation)
                .where(MintOperation.id == op.id, MintOperation.state == op.state)
                .values(state="failed", last_error=reason[:2000])
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return
            await transitions.move(
                session, op.mint_address, "failed", ChainFact(slot=0, signature=None, at=_now())
            )
        _log.error("mint.failed", operation=op.id, mint=op.mint_address, reason=reason)

    async def _confirm(self, op: MintOperation, slot: int, signature: str | None) -> None:
        await self._commit_confirmations([_Confirmation(op, slot, signature)])

    async def _confirm_all(self, confirms: list[_Confirmation]) -> None:
        """Confirm in one transaction; if it fails, one by one, so that one bad operation
        does not hold the others back. Each failure defers its operation."""
        if not confirms:
            return
        try:
            await self._commit_confirmations(confirms)
            return
        except Exception as exc:
            if len(confirms) == 1:
                await self._defer(confirms[0].op, exc)
                return
        for confirm in confirms:
            try:
                await self._commit_confirmations([confirm])
            except Exception as exc:
                await self._defer(confirm.op, exc)

    async def _commit_confirmations(self, confirms: list[_Confirmation]) -> None:
        """Each operation ``confirmed`` and its NFT ``unlocked`` (one outbox event), guarded
        one by one, committed together: an operation another worker confirmed first is
        skipped, and nothing of the batch is committed unless all of it is."""
        done: list[_Confirmation] = []
        at = _now()
        async with self._sessions() as session, session.begin():
            for confirm in sorted(confirms, key=lambda c: c.op.id):  # one lock order
                op = confirm.op
                values = {"state": "confirmed", "confirmed_slot": confirm.slot, "last_error": None}
                if not await mint_operations.guarded_update(session, op.id, op.state, values):
                    continue  # another worker confirmed it first
                done.append(confirm)
            # The NFTs together (a few statements for the batch, not four per NFT).
            moves = [
                (c.op.mint_address, ChainFact(slot=c.slot, signature=c.signature, at=at))
                for c in done
            ]
            await transitions.move_many(session, moves, "unlocked")
            self._failpoint("before_commit")
        for confirm in done:
            _log.info(
                "mint.confirmed",
                operation=confirm.op.id,
                mint=confirm.op.mint_address,
                slot=confirm.slot,
            )

    # -- guarded writes -----------------------------------------------------------------------

    async def _guarded(
        self, op: MintOperation, values: dict[str, Any], *, attempts: bool = False
    ) -> MintOperation:
        """Apply ``values`` if the operation is still in the state we read; else stop here."""
        if not await self._guarded_all([(op, values)], attempts=attempts):
            raise _Moved(op.id)
        return op

    async def _guarded_all(
        self, changes: list[tuple[MintOperation, dict[str, Any]]], *, attempts: bool = False
    ) -> list[MintOperation]:
        """Apply each change if its operation is still in the state we read, all in one
        transaction; returns the operations that moved (the others moved on elsewhere)."""
        if not changes:
            return []
        ordered = sorted(changes, key=lambda c: c[0].id)  # one lock order
        moved: list[tuple[MintOperation, dict[str, Any]]] | None = None
        if len(ordered) > 1 and _alike(ordered):
            moved = await self._guarded_together(ordered, attempts=attempts)
        if moved is None:
            moved = await self._guarded_each(ordered, attempts=attempts)
        # The rows are now what we wrote: mirror them on our (detached) copies.
        for op, values in moved:
            for name, value in values.items():
                setattr(op, name, value)
            if attempts:
                op.attempts += 1
        return [op for op, _ in moved]

    async def _guarded_together(
        self, changes: list[tuple[MintOperation, dict[str, Any]]], *, attempts: bool
    ) -> list[tuple[MintOperation, dict[str, Any]]] | None:
        """One change of operations in one state (the ``sent`` marks of a batch) as one
        guarded statement; ``None`` (nothing written) when some row had moved on elsewhere,
        since which one is not known: the caller then goes row by row."""
        first, values = changes[0]
        ids = [op.id for op, _ in changes]
        try:
            async with self._sessions() as session, session.begin():
                count = await mint_operations.guarded_update_alike(
                    session, ids, first.state, values, attempts=attempts
                )
                if count != len(ids):
                    raise _Moved(first.id)  # rolls the statement back
        except _Moved:
            return None
        return changes

    async def _guarded_each(
        self, changes: list[tuple[MintOperation, dict[str, Any]]], *, attempts: bool
    ) -> list[tuple[MintOperation, dict[str, Any]]]:
        moved: list[tuple[MintOperation, dict[str, Any]]] = []
        async with self._sessions() as session, session.begin():
            for op, values in changes:
                if await mint_operations.guarded_update(
                    session, op.id, op.state, values, attempts=attempts
                ):
                    moved.append((op, values))
        return moved

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

    async def _schedule_all(self, ops: list[MintOperation], delay: float) -> None:
        """Look at ``ops`` again after ``delay``: one statement per state they are in."""
        if not ops:
            return
        due = _now() + dt.timedelta(seconds=delay)
        try:
            async with self._sessions() as session, session.begin():
                for state in sorted({op.state for op in ops}):
                    await session.execute(
                        update(MintOperation)
                        .where(
                            MintOperation.id.in_([op.id for op in ops if op.state == state]),
                            MintOperation.state == state,
                        )
                        .values(next_attempt_at=due)
                        .execution_options(synchronize_session=False)
                    )
        except Exception as exc:
            for op in ops:
                await self._defer(op, exc)

    async def _defer(self, op: MintOperation, error: Exception) -> None:
        if isinstance(error, _Moved):
            return
        reason = _reason(error)
        if self._metrics is not None:
            self._metrics.retries.labels(reason).inc()
        async with self._sessions() as session:
            fresh = await session.get(MintOperation, op.id)
        delay = self._delay(fresh.attempts if fresh is not None else 0)
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
        except (OperationalError, RetryableStoreError):
            return  # the hold expires on its own; the next claim retries

    def _delay(self, tries: int) -> float:
        return float(min(self._backoff_max, self._backoff_base * 2 ** min(tries, 16)))

    async def _unfinished(self) -> int:
        async with self._sessions() as session:
            return int(
                (
                    await session.execute(
                        select(func.count())
                        .select_from(MintOperation)
                        .where(
                            MintOperation.state.in_(UNFINISHED),
                            MintOperation.kind.in_(WORKER_KINDS),
                        )
                    )
                ).scalar_one()
            )


@dataclass(frozen=True, slots=True)
class _Confirmation:
    op: MintOperation
    slot: int
    signature: str | None


@dataclass(frozen=True, slots=True)
class _Look:
    status: TransactionStatus | None
    mint_slot: int | None  # the slot at which the mint account was seen, if it exists


class _Moved(Exception):
    """Another worker advanced the operation first: nothing to do."""


def _alike(changes: list[tuple[MintOperation, dict[str, Any]]]) -> bool:
    first, values = changes[0]
    return all(op.state == first.state and v == values for op, v in changes)


def _already_in_use(exc: PreflightFailure) -> bool:
    # create_account at an address that exists: one of our transactions made the mint.
    return any("already in use" in line for line in exc.logs)


def _reason(error: Exception) -> str:
    if isinstance(error, PinningError):
        return "pinning"
    if isinstance(error, PreflightFailure) and error.err in _FUNDS_ERRORS:
        return "funds"
    if isinstance(error, RetryableChainError):
        return "rpc"
    if isinstance(error, OperationalError | StoreError):
        return "store"
    if isinstance(error, MintSecretMissing):
        return "config"
    return "other"
