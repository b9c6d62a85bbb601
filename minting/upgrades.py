"""Upgrade: one atomic transaction burns the user's tier NFT and mints the next level's.

``request(wallet)`` checks the next level's volume and badges, then, in one database
transaction, records the ``nft_upgrade_requests`` row, its mint operation (kind ``upgrade``,
idempotency key naming the request, so an expired request never blocks a new one), the
``pending`` new NFT and the badges it reserves. The transaction is built and signed by the
system keys (fee payer and mint authority, and the new mint's keypair derived from the key as
for claims) *before* that commit, and stored with its blockhash and ``lastValidBlockHeight``.
The wallet receives it partially signed; the owner's signature completes it. The compute-unit
limit and price settings come first in it, as on the worker's mints.

The mint operation waits in ``awaiting_owner``, a state the sender worker never claims: a worker
must not rebroadcast bytes the owner has not signed, and must never re-sign an upgrade (its own
re-sign builds a plain mint, which would leave the old NFT alive beside the new one).

The chain decides the rest (``observe`` / ``submit`` / ``settle_open``, which the mint worker's
loop calls, so nobody needs to ask):

- landed (confirmed, no error): ``store.repos.transitions.settle_upgrade`` in one database
  transaction: the old NFT ``burned`` and the new one ``unlocked`` (no events of their own),
  the badges consumed, the request and its operation ``confirmed``, and one ``upgraded``
  event. The indexer reaches the same function through ``transitions.move`` when it sees the
  transaction first; whoever comes second finds it done. The two may deadlock each other on
  MySQL/MariaDB or PostgreSQL: the loser runs its transaction again (``store.retry``). The
  outbox relay counts ``nft_upgrades_total{status="confirmed"}`` from that one event, so
  an upgrade the indexer settled counts too, once;
- landed with an error: that signature can never land again, so the request is ``failed``;
- never landed and its blockhash expired at ``finalized`` (the new mint absent there): the
  request is ``expired``. Either way the new NFT is ``failed``, the badges are released and the
  old NFT is untouched: the user may ask again.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import structlog
from solana.rpc.commitment import Confirmed, Finalized
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from solders.transaction_status import TransactionConfirmationStatus
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chain.asset import fetch_asset
from chain.keys import Signer
from chain.rpc import RpcClient
from chain.standards import AssetStandard, MintRequest
from core.errors import AIW3Error, ChainError, RetryableStoreError, StoreConflict
from minting import qualification
from minting.budget import with_budget
from minting.cache import Locks
from minting.errors import (
    MaxLevelReached,
    NftNotFound,
    QualificationNotMet,
    UpgradeClosed,
    UpgradeInProgress,
    UpgradeMismatch,
    UpgradeNotFound,
    UserNotFound,
)
from minting.keys import MintKeys
from minting.metrics import MintingMetrics
from minting.qualification import Qualification, QualificationService, money_text
from store import retry
from store.repos import mint_operations, nfts, transitions, users
from store.repos.mint_operations import NewMintOperation
from store.repos.transitions import AWAITING_OWNER, UPGRADE_OPEN, ChainFact
from store.tables import Badge, MintOperation, NftUpgradeRequest, UserNft

__all__ = ["AWAITING_OWNER", "UpgradeState", "UpgradeTicket", "Upgrades", "upgrade_key"]

OPEN: Final = UPGRADE_OPEN
LOCK_TTL: Final = 30.0
LOCK_WAIT: Final = 10.0
_LANDED: Final = (TransactionConfirmationStatus.Confirmed, TransactionConfirmationStatus.Finalized)

_log = structlog.stdlib.get_logger(__name__)


def upgrade_key(request_id: int, wallet: str, level: int) -> str:
    # The request id makes each attempt its own key (and its own mint address); the wallet
    # keeps a rebuilt database under the same secret from naming a mint that exists already.
    return f"upgrade:{request_id}:{wallet}:level{level}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class UpgradeTicket:
    """What the wallet signs: ``transaction`` is base64 of the legacy transaction signed by the
    system keys, missing only the owner's signature. ``signature`` (the fee payer's) is the
    transaction's id, known before the owner signs."""

    request_id: int
    operation_id: int
    from_mint: str
    to_mint: str
    from_level: int
    to_level: int
    transaction: str
    signature: str
    last_valid_block_height: int
    created: bool  # False: the open request already recorded, handed out again


@dataclass(frozen=True, slots=True)
class UpgradeState:
    request_id: int
    status: str  # pending, submitted, confirmed, failed, expired
    signature: str
    to_mint: str


class Upgrades:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rpc: RpcClient,
        system: Signer,
        keys: MintKeys,
        standard: AssetStandard,
        *,
        locks: Locks,
        uri_for: Callable[[int], str],
        collection: Pubkey | None = None,
        qualifications: QualificationService | None = None,
        metrics: MintingMetrics | None = None,
        compute_unit_limit: int | None = None,
        compute_unit_price: int | None = None,
    ) -> None:
        self._sessions = sessions
        self._rpc = rpc
        self._system = system
        self._keys = keys
        self._standard = standard
        self._locks = locks
        self._uri_for = uri_for
        self._collection = collection
        self._qualifications = qualifications
        self._metrics = metrics
        self._cu_limit = compute_unit_limit
        self._cu_price = compute_unit_price

    # -- asking -------------------------------------------------------------------------------

    async def request(self, wallet: str) -> UpgradeTicket:
        """Record ``wallet``'s upgrade to the next level and return it for the owner to sign;
        while one is open and unsigned, the same one is returned."""
        async with self._sessions() as session:
            user = await users.get_user_by_wallet(session, wallet)
        if user is None:
            raise UserNotFound(f"no user has wallet {wallet}", details={"wallet": wallet})
        async with self._locks.hold(f"nft_lock:upgrade:{user.id}", ttl=LOCK_TTL, wait=LOCK_WAIT):
            open_id = await self._open_request(user.id)
            if open_id is not None:
                state = await self._settle(open_id)
                if state.status == "pending":
                    return await self._ticket(open_id, created=False)
                if state.status == "submitted":
                    raise UpgradeInProgress(
                        "the upgrade was signed and sent: it lands or expires first",
                        details={"request": open_id, "signature": state.signature},
                    )
            try:
                ticket = await self._create(user.id, wallet)
            except AIW3Error as exc:
                self._count("none", "none", exc.code)
                raise
        self._count(str(ticket.from_level), str(ticket.to_level), "requested")
        await self._invalidate(user.id)
        return ticket

    async def _create(self, user_id: int, wallet: str) -> UpgradeTicket:
        async with self._sessions() as session:
            old = await nfts.live_tier_nft(session, user_id)
            if old is None:
                raise NftNotFound(
                    "the user holds no minted tier NFT to upgrade (claim level 1 first)",
                    details={"wallet": wallet},
                )
            answer = await qualification.compute(session, user_id)
        if answer.nft_level != old.level:
            # A racing request recorded its new NFT meanwhile (the lock is only an economy).
            raise UpgradeInProgress("another upgrade of the user was just recorded")
        to_level, badges_needed = _next(answer, old.level)
        asset = (await fetch_asset(self._rpc, Pubkey.from_string(old.mint_address))).value
        if asset.owner != wallet or asset.token_account is None:
            raise NftNotFound(
                f"wallet {wallet} no longer holds its tier NFT on chain",
                details={"mint": old.mint_address, "owner": asset.owner},
            )
        # Finalized: every node the wallet may send through knows it.
        latest = (await self._rpc.get_latest_blockhash(Finalized)).value
        uri = self._uri_for(to_level)
        async with self._sessions() as session, session.begin():
            if (await nfts.live_tier_nft(session, user_id)) is None:
                raise NftNotFound("the tier NFT moved meanwhile; ask again")
            request = NftUpgradeRequest(
                user_id=user_id, from_user_nft_id=old.id, to_level=to_level, status="pending"
            )
            session.add(request)
            await session.flush()
            key = upgrade_key(request.id, wallet, to_level)
            mint_keypair = self._keys.keypair(key)
            new_mint = mint_keypair.pubkey()
            op, _ = await mint_operations.create_or_get(
                session,
                NewMintOperation(
                    idempotency_key=key,
                    kind="upgrade",
                    level=to_level,
                    owner_address=wallet,
                    mint_address=str(new_mint),
                    asset_standard=self._standard.name.value,
                    user_id=user_id,
                    metadata_uri=uri,
                ),
            )
            plan = self._standard.upgrade_plan(
                system=self._system.pubkey,
                owner=Pubkey.from_string(wallet),
                old_mint=Pubkey.from_string(old.mint_address),
                new_mint=new_mint,
                request=MintRequest(level=str(to_level), uri=uri),
                collection=self._collection,
                old_collection=(
                    Pubkey.from_string(asset.collection.address) if asset.collection else None
                ),
                old_token_account=Pubkey.from_string(asset.token_account),
            )
            # The owner's signature counts in the size check: the plan lists every signer.
            plan = with_budget(plan, self._cu_limit, self._cu_price)
            tx = plan.sign([self._system.solders_keypair(), mint_keypair], latest.blockhash)
            # Still inside the transaction that created it: no worker ever sees it "created".
            op.state = AWAITING_OWNER
            op.mint_secret_version = self._keys.current_version
            op.signed_tx = bytes(tx)
            op.signature = str(tx.signatures[0])
            op.blockhash = str(latest.blockhash)
            op.last_valid_block_height = latest.last_valid_block_height
            request.mint_operation_id = op.id
            try:
                async with session.begin_nested():
                    session.add(
                        UserNft(
                            user_id=user_id,
                            level=to_level,
                            kind="tier",
                            status="pending",
                            mint_address=str(new_mint),
                            mint_operation_id=op.id,
                            metadata_uri=uri,
                        )
                    )
            except StoreConflict:
                raise UpgradeInProgress("another tier NFT of the user is being minted") from None
            await _reserve(session, user_id, request.id, badges_needed, answer)
            ticket = UpgradeTicket(
                request_id=request.id,
                operation_id=op.id,
                from_mint=old.mint_address,
                to_mint=str(new_mint),
                from_level=old.level,
                to_level=to_level,
                transaction=base64.b64encode(bytes(tx)).decode(),
                signature=op.signature,
                last_valid_block_height=latest.last_valid_block_height,
                created=True,
            )
        _log.info(
            "upgrade.requested", request=ticket.request_id, to_level=to_level, mint=str(new_mint)
        )
        return ticket

    # -- the owner's answer -------------------------------------------------------------------

    async def submit(self, signed: bytes) -> UpgradeState:
        """Take back the transaction signed by the owner, check it is the one we signed with
        every signature valid, and send it."""
        try:
            tx = Transaction.from_bytes(signed)
        except ValueError:
            raise UpgradeMismatch("not a serialised transaction") from None
        op, request = await self._by_signature(str(tx.signatures[0]))
        assert op.signed_tx is not None
        ours = Transaction.from_bytes(op.signed_tx)
        if bytes(tx.message) != bytes(ours.message):
            raise UpgradeMismatch(
                "the transaction differs from the one the backend signed",
                details={"request": request.id},
            )
        if not all(tx.verify_with_results()):
            raise UpgradeMismatch(
                "a signature is missing or invalid: the owner signs in the wallet",
                details={"request": request.id},
            )
        if request.status not in OPEN:
            raise UpgradeClosed(
                f"upgrade request {request.id} is {request.status}: ask again",
                details={"request": request.id, "status": request.status},
            )
        # The signed bytes are kept before sending, so anyone can resend them later.
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(MintOperation)
                .where(MintOperation.id == op.id, MintOperation.state == AWAITING_OWNER)
                .values(signed_tx=bytes(tx))
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                update(NftUpgradeRequest)
                .where(NftUpgradeRequest.id == request.id, NftUpgradeRequest.status.in_(OPEN))
                .values(status="submitted")
                .execution_options(synchronize_session=False)
            )
        await self._rpc.send_raw_transaction(bytes(tx), preflight_commitment=Confirmed)
        return await self._settle(request.id)

    async def observe(self, signature: str) -> UpgradeState:
        """Look at the chain for the upgrade with this signature (the wallet sent it)."""
        _, request = await self._by_signature(signature)
        return await self._settle(request.id)

    async def settle_open(self) -> list[UpgradeState]:
        """Settle every open request (confirm, fail or expire what the chain decided): the mint
        worker's loop calls it, so an upgrade the wallet sent itself, or one left unsigned until
        its blockhash expired, is settled without anyone asking. It only reads the chain: an
        upgrade waiting for its owner is never sent nor signed again. A request the chain or
        the database cannot answer for now is left for the next call (a settle that lost a
        deadlock runs again first), so the worker's loop never stops on it."""
        try:
            async with self._sessions() as session:
                ids = list(
                    (
                        await session.execute(
                            select(NftUpgradeRequest.id)
                            .where(NftUpgradeRequest.status.in_(OPEN))
                            .order_by(NftUpgradeRequest.id)
                        )
                    ).scalars()
                )
        except (RetryableStoreError, OperationalError) as exc:
            _log.warning("upgrade.settle_put_off", error=f"{type(exc).__name__}: {exc}")
            return []
        states = []
        for request_id in ids:
            try:
                states.append(await self._settle(request_id))
            except (ChainError, RetryableStoreError, OperationalError) as exc:
                _log.warning(
                    "upgrade.settle_put_off",
                    request=request_id,
                    error=f"{type(exc).__name__}: {exc}",
                )
        return states

    # -- the chain's answer -------------------------------------------------------------------

    async def _settle(self, request_id: int) -> UpgradeState:
        request, op = await self._load(request_id)
        assert op.signature is not None
        assert op.last_valid_block_height is not None
        state = UpgradeState(request.id, request.status, op.signature, op.mint_address)
        if request.status not in OPEN:
            return state
        signature = Signature.from_string(op.signature)
        status = (
            await self._rpc.get_signature_statuses([signature], search_transaction_history=True)
        ).value[0]
        if status is not None and status.err is not None:
            return await self._close(request, op, "failed", f"failed on chain: {status.err}")
        if status is not None and status.confirmation_status in _LANDED:
            return await self._confirm(request, op, status.slot)
        if status is not None:
            return state  # processed: confirmation is a slot away
        mint = Pubkey.from_string(op.mint_address)
        found = await self._rpc.get_account_info(mint, commitment=Confirmed)
        if found.value is not None:
            # Only this transaction creates that mint (its key is ours alone).
            return await self._confirm(request, op, found.slot)
        if await self._rpc.get_block_height(Finalized) <= op.last_valid_block_height:
            return state
        if (await self._rpc.get_account_info(mint, commitment=Finalized)).value is not None:
            return state
        return await self._close(request, op, "expired", "blockhash expired unsigned or unsent")

    async def _confirm(
        self, request: NftUpgradeRequest, op: MintOperation, slot: int
    ) -> UpgradeState:
        # The same store function the indexer reaches through ``transitions.move``: whoever
        # sees the transaction first settles the whole upgrade, with its one event.
        # A deadlock with the indexer settling it at the same moment runs it again: the second
        # try finds it settled. Confirmed upgrades are counted by the outbox relay from the one
        # ``upgraded`` event, whoever wrote it (counting here would miss the indexer's).
        fact = ChainFact(slot=slot, signature=op.signature, at=_now())
        new = await retry.in_transaction(
            self._sessions,
            lambda session: transitions.settle_upgrade(session, request.id, fact),
            what="upgrade.confirm",
        )
        if new is not None:
            _log.info("upgrade.confirmed", request=request.id, mint=op.mint_address, slot=slot)
        await self._invalidate(request.user_id)
        return await self._state(request.id)

    async def _close(
        self, request: NftUpgradeRequest, op: MintOperation, status: str, reason: str
    ) -> UpgradeState:
        """The upgrade can never land: undo the request and leave the old NFT as it was."""
        fact = ChainFact(slot=0, signature=None, at=_now())

        async def close(session: AsyncSession) -> str | None:
            """The old NFT's level when this call closed the request, None when it was
            closed or settled already."""
            if not await _close_request(session, request.id, status, reason):
                return None
            await _fail_operation(session, op.id, reason)
            await transitions.move(session, op.mint_address, "failed", fact)
            await session.execute(
                update(Badge)
                .where(Badge.reserved_by_upgrade_id == request.id)
                .values(reserved_by_upgrade_id=None)
                .execution_options(synchronize_session=False)
            )
            old = await session.get(UserNft, request.from_user_nft_id)
            return "none" if old is None else str(old.level)

        # Counted after the commit: a try the database rolled back counts nothing.
        from_level = await retry.in_transaction(self._sessions, close, what="upgrade.close")
        if from_level is not None:
            _log.info("upgrade.closed", request=request.id, status=status, reason=reason)
            self._count(from_level, str(op.level), status)
        await self._invalidate(request.user_id)
        return await self._state(request.id)

    # -- reads --------------------------------------------------------------------------------

    async def _open_request(self, user_id: int) -> int | None:
        async with self._sessions() as session:
            found: int | None = (
                await session.execute(
                    select(NftUpgradeRequest.id).where(
                        NftUpgradeRequest.user_id == user_id, NftUpgradeRequest.status.in_(OPEN)
                    )
                )
            ).scalar_one_or_none()
        return found

    async def _by_signature(self, signature: str) -> tuple[MintOperation, NftUpgradeRequest]:
        async with self._sessions() as session:
            op = (
                await session.execute(
                    select(MintOperation).where(
                        MintOperation.signature == signature, MintOperation.kind == "upgrade"
                    )
                )
            ).scalar_one_or_none()
            request = (
                None
                if op is None
                else (
                    await session.execute(
                        select(NftUpgradeRequest).where(
                            NftUpgradeRequest.mint_operation_id == op.id
                        )
                    )
                ).scalar_one_or_none()
            )
        if op is None or request is None:
            raise UpgradeNotFound(
                "no upgrade has this transaction signature", details={"signature": signature}
            )
        return op, request

    async def _load(self, request_id: int) -> tuple[NftUpgradeRequest, MintOperation]:
        async with self._sessions() as session:
            request = await session.get(NftUpgradeRequest, request_id, populate_existing=True)
            if request is None or request.mint_operation_id is None:
                raise UpgradeNotFound(f"no upgrade request {request_id}")
            op = await session.get(MintOperation, request.mint_operation_id, populate_existing=True)
        assert op is not None
        return request, op

    async def _state(self, request_id: int) -> UpgradeState:
        request, op = await self._load(request_id)
        assert op.signature is not None
        return UpgradeState(request.id, request.status, op.signature, op.mint_address)

    async def _ticket(self, request_id: int, *, created: bool) -> UpgradeTicket:
        request, op = await self._load(request_id)
        async with self._sessions() as session:
            old = await session.get(UserNft, request.from_user_nft_id)
        assert old is not None
        assert op.signed_tx is not None
        assert op.signature is not None
        assert op.last_valid_block_height is not None
        return UpgradeTicket(
            request_id=request.id,
            operation_id=op.id,
            from_mint=old.mint_address,
            to_mint=op.mint_address,
            from_level=old.level,
            to_level=request.to_level,
            transaction=base64.b64encode(op.signed_tx).decode(),
            signature=op.signature,
            last_valid_block_height=op.last_valid_block_height,
            created=created,
        )

    async def _invalidate(self, user_id: int) -> None:
        if self._qualifications is not None:
            await self._qualifications.invalidate(user_id)

    def _count(self, from_level: str, to_level: str, status: str) -> None:
        if self._metrics is not None:
            self._metrics.upgrades.labels(from_level, to_level, status).inc()


def _next(answer: Qualification, held_level: int) -> tuple[int, int]:
    """The level an upgrade gives and the badges it needs, or the refusal."""
    if answer.next_level is None:
        raise MaxLevelReached(f"level {held_level} is the top tier", details={"level": held_level})
    if not answer.eligible:
        raise QualificationNotMet(
            f"level {answer.next_level} needs more trading volume or badges",
            details={
                "level": answer.next_level,
                "volume_usd": money_text(answer.volume_usd),
                "volume_shortfall_usd": money_text(answer.volume_shortfall_usd),
                "badges": answer.badges,
                "badges_shortfall": answer.badges_shortfall,
            },
        )
    assert answer.next_badges_required is not None
    return answer.next_level, answer.next_badges_required


async def _reserve(
    session: AsyncSession, user_id: int, request_id: int, count: int, answer: Qualification
) -> None:
    """Hold ``count`` usable badges for the request (oldest first), or refuse."""
    if count == 0:
        return
    ids = list(
        (
            await session.execute(
                select(Badge.id)
                .where(
                    Badge.user_id == user_id,
                    Badge.status.in_(users.LIVE_BADGE_STATUSES),
                    Badge.reserved_by_upgrade_id.is_(None),
                )
                .order_by(Badge.id)
                .limit(count)
                .with_for_update()
            )
        ).scalars()
    )
    result = await session.execute(
        update(Badge)
        .where(Badge.id.in_(ids), Badge.reserved_by_upgrade_id.is_(None))
        .values(reserved_by_upgrade_id=request_id)
        .execution_options(synchronize_session=False)
    )
    if len(ids) < count or result.rowcount != count:  # type: ignore[attr-defined]
        raise QualificationNotMet(
            f"level {answer.next_level} needs {count} badges not held by another request",
            details={"level": answer.next_level, "badges_needed": count, "badges_free": len(ids)},
        )


async def _close_request(
    session: AsyncSession, request_id: int, status: str, error: str | None
) -> bool:
    result = await session.execute(
        update(NftUpgradeRequest)
        .where(NftUpgradeRequest.id == request_id, NftUpgradeRequest.status.in_(OPEN))
        .values(status=status, error=error)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def _fail_operation(session: AsyncSession, operation_id: int, error: str) -> None:
    await session.execute(
        update(MintOperation)
        .where(MintOperation.id == operation_id, MintOperation.state == AWAITING_OWNER)
        .values(state="failed", last_error=error)
        .execution_options(synchronize_session=False)
    )
