"""Finality: journal what the not-yet-final window changed, undo what a fork dropped.

Every transaction projected at a slot above the finalized one is journaled in the same database
transaction as its rows (``reorg_journal``): a marker (``tx``, its signature) and the
before-image of each row it changed (``assets``, ``tracked_accounts``, ``indexer_cursors``), the
history rows it added (``asset_events``, by signature) and the status of each user NFT it moved
(``user_nfts``).

:meth:`Finality.check` asks the node, as a node shows a fork: a journaled transaction whose
signature status is gone (or now sits in another slot), or a journaled slot that has no block
any more (the surviving chain's parent skips it). Everything journaled at or after the first
dropped slot is undone, newest first, in one database transaction: rows return to their
before-images (cursors included, so the next crawl re-reads the surviving chain from there),
a user NFT goes back through :func:`store.repos.transitions.revert` with a ``reverted`` event in
the outbox, and a mint the dropped slot had confirmed goes back to ``sent`` for the minting
worker to check again. The caller then re-crawls (see ``Indexer.check_finality``). Journal
entries at or below the finalized slot are pruned, and rows that reflect a finalized slot are
marked ``finalized``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from solana.rpc.commitment import Finalized
from solders.signature import Signature
from sqlalchemy import Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chain.rpc import RpcClient
from indexer.decode import DecodedTx, DelegateChanged, FreezeChanged
from store.repos import read_model, transitions
from store.repos.transitions import ChainFact
from store.tables import (
    AssetEvent,
    AssetRow,
    IndexerCursor,
    MintOperation,
    ReorgJournal,
    TrackedAccount,
    UserNft,
)
from store.types import UTCDateTime

TX: Final = "tx"
#: An ``aiw3 indexer add`` read at a not-yet-final slot (row key: the mint).
IMPORT: Final = "import"
EVENTS: Final = "asset_events"
USER_NFTS: Final = "user_nfts"
#: Tables journaled as whole before-images, with their one-column key.
_IMAGED: Final[dict[str, tuple[Table, str]]] = {
    "assets": (AssetRow.__table__, "mint"),  # type: ignore[dict-item]
    "tracked_accounts": (TrackedAccount.__table__, "address"),  # type: ignore[dict-item]
    "indexer_cursors": (IndexerCursor.__table__, "name"),  # type: ignore[dict-item]
}
# Only a mint the worker had confirmed goes back; a finalized one cannot be dropped.
_RECHECK_FROM: Final = ("confirmed",)


@dataclass(slots=True)
class _Snapshot:
    slot: int
    signature: str
    images: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)
    events: int = 0
    statuses: dict[str, str] = field(default_factory=dict)
    #: The journal's marker of the change: a transaction (by signature) or an import (by mint).
    marker: tuple[str, str] = (TX, "")


@dataclass(frozen=True, slots=True)
class Reverted:
    """What one rollback undid: the first dropped slot, the transactions journaled from it on,
    and the user NFTs moved back."""

    from_slot: int
    signatures: tuple[str, ...]
    nfts: tuple[str, ...]
    #: Mints imported at a dropped slot: the caller reads them again from the surviving chain.
    imports: tuple[str, ...] = ()
    #: Mints and token accounts whose rows went back to a before-image: their cursors are
    #: gone, so the caller crawls each one's whole history again.
    restored: tuple[str, ...] = ()


class Finality:
    def __init__(self, rpc: RpcClient) -> None:
        self._rpc = rpc
        #: The newest finalized slot the node reported; changes at or below it are final.
        self.finalized_slot = 0

    async def refresh(self) -> int:
        self.finalized_slot = max(self.finalized_slot, await self._rpc.get_slot(Finalized))
        return self.finalized_slot

    # -- journaling (inside the projection's database transaction) ---------------------------

    async def capture(
        self,
        session: AsyncSession,
        slot: int,
        signature: str,
        tx: DecodedTx | None,
        cursors: Sequence[str],
    ) -> _Snapshot | None:
        """Before-images of every row this transaction may change; None when its slot is
        final (nothing to journal)."""
        if slot <= self.finalized_slot:
            return None
        mints: set[str] = set()
        accounts: set[str] = set()
        if tx is not None:
            mints = tx.mints() | {getattr(c, "account", "") for c in tx.changes}
            mints.discard("")
            accounts = {b.account for b in tx.balances} | {
                c.account for c in tx.changes if isinstance(c, DelegateChanged | FreezeChanged)
            }
        snap = await self._capture(session, _Snapshot(slot, signature), mints, accounts, cursors)
        snap.events = await _count_events(session, signature)
        snap.marker = (TX, signature)
        return snap

    async def capture_import(
        self, session: AsyncSession, slot: int, mint: str, accounts: Iterable[str]
    ) -> _Snapshot | None:
        """Before-images for an import (``aiw3 indexer add``) of ``mint`` read at ``slot``; None
        when that slot is final. A read at a slot a fork drops may show the dropped branch
        (an owner it moved the NFT to), and the import's state outranks every transaction up
        to its slot, so the surviving chain's could not correct it: it is undone and read again."""
        if slot <= self.finalized_slot:
            return None
        snap = await self._capture(session, _Snapshot(slot, ""), {mint}, set(accounts), ())
        snap.marker = (IMPORT, mint)
        return snap

    async def _capture(
        self,
        session: AsyncSession,
        snap: _Snapshot,
        mints: set[str],
        accounts: set[str],
        cursors: Sequence[str],
    ) -> _Snapshot:
        for name, keys in (
            ("assets", mints),
            ("tracked_accounts", accounts),
            ("indexer_cursors", set(cursors)),
        ):
            found = await _images(session, name, keys)
            for key in keys:
                snap.images[(name, key)] = found.get(key)
        snap.statuses = await transitions.statuses(session, sorted(mints))
        return snap

    async def record(self, session: AsyncSession, snap: _Snapshot | None) -> None:
        """Journal what changed since :meth:`capture`, in the same database transaction."""
        if snap is None:
            return
        await read_model.journal(session, snap.slot, *snap.marker, None)
        by_table: dict[str, set[str]] = {}
        for name, key in snap.images:
            by_table.setdefault(name, set()).add(key)
        for name, keys in by_table.items():
            after = await _images(session, name, keys)
            for key in sorted(keys):
                before = snap.images[(name, key)]
                if after.get(key) != before:
                    await read_model.journal(session, snap.slot, name, key, before)
                    await _unfinalize(session, name, key)
        if (
            snap.marker[0] == TX
            and snap.events == 0
            and await _count_events(session, snap.signature) > 0
        ):
            await read_model.journal(session, snap.slot, EVENTS, snap.signature, None)
        now = await transitions.statuses(session, sorted(snap.statuses))
        for mint, status in sorted(snap.statuses.items()):
            if now.get(mint) != status:
                await read_model.journal(session, snap.slot, USER_NFTS, mint, {"status": status})

    # -- detection, rollback, pruning ----------------------------------------------------------

    async def dropped_from(self, session: AsyncSession) -> int | None:
        """The first journaled slot the node no longer has, or None."""
        marks = (
            await session.execute(
                select(ReorgJournal.slot, ReorgJournal.row_key, ReorgJournal.table_name).where(
                    ReorgJournal.table_name.in_((TX, IMPORT)),
                    ReorgJournal.slot > self.finalized_slot,
                )
            )
        ).all()
        if not marks:
            return None
        dropped: set[int] = set()
        txs = [(slot, key) for slot, key, kind in marks if kind == TX]
        if txs:
            statuses = await self._rpc.get_signature_statuses(
                [Signature.from_string(signature) for _, signature in txs]
            )
            for (slot, _), status in zip(txs, statuses.value, strict=True):
                if status is None or status.slot != slot:
                    dropped.add(slot)
        # An import's slot is that of the block it read: gone once a fork dropped that block.
        for slot in sorted({slot for slot, _, _ in marks} - dropped):
            if await self._rpc.get_block(slot, transaction_details="none") is None:
                dropped.add(slot)
        return min(dropped) if dropped else None

    async def rollback(self, session: AsyncSession, from_slot: int) -> Reverted:
        """Undo every journaled change at or after ``from_slot``, newest first."""
        entries = await read_model.journal_since(session, from_slot)
        signatures: list[str] = []
        nfts: list[str] = []
        imports: list[str] = []
        restored: set[str] = set()
        oldest: dict[str, ReorgJournal] = {}
        now = dt.datetime.now(dt.UTC)
        for entry in entries:
            if entry.table_name == TX:
                signatures.append(entry.row_key)
                # Every history row of an undone transaction goes, whichever transaction wrote
                # it: an activation's row is added when its claim is judged again, which can
                # happen while applying another transaction of the mint (out of order, the
                # transfer that made the memo's signer the owner arrives after the memo).
                await session.execute(
                    delete(AssetEvent).where(AssetEvent.signature == entry.row_key)
                )
            elif entry.table_name == IMPORT:
                imports.append(entry.row_key)
            elif entry.table_name == EVENTS:
                await session.execute(
                    delete(AssetEvent).where(AssetEvent.signature == entry.row_key)
                )
            elif entry.table_name == USER_NFTS:
                # Newest first: the last one seen is the oldest, whose before-image is the
                # status the NFT returns to.
                oldest[entry.row_key] = entry
            elif entry.table_name in _IMAGED:
                await _restore(session, entry.table_name, entry.row_key, entry.before)
                if entry.table_name != "indexer_cursors":
                    restored.add(entry.row_key)
        # One step per NFT, to the status it had before the first dropped change. Those
        # leaving a live status go first: a user holds one live tier NFT (a unique column), and
        # an upgrade dropped takes the new NFT back to pending before the old one is unlocked.
        for entry in sorted(oldest.values(), key=lambda e: _status(e) in _LIVE):
            if await _revert_nft(session, entry, now):
                nfts.append(entry.row_key)
        # A before-image is the row as it was when the dropped transaction was applied, and
        # the crawl applies out of slot order: a surviving transaction of an older slot applied
        # after it is undone with it (its journal is at its own slot, or none when final). The
        # projection is idempotent and order-free, so the whole history of every restored row
        # is applied again: its cursor goes (the runner's ``a:<address>``).
        if restored:
            await session.execute(
                delete(IndexerCursor).where(
                    IndexerCursor.name.in_(sorted(f"a:{key}" for key in restored))
                )
            )
        await session.execute(delete(ReorgJournal).where(ReorgJournal.slot >= from_slot))
        session.expunge_all()  # rows were rewritten beneath the identity map
        return Reverted(
            from_slot,
            tuple(reversed(signatures)),
            tuple(dict.fromkeys(nfts)),
            tuple(sorted(set(imports))),
            tuple(sorted(restored)),
        )

    async def settle(self, session: AsyncSession) -> int:
        """Prune the journal at or below the finalized slot and mark the rows that reflect a
        finalized slot; returns the journal entries pruned."""
        final = self.finalized_slot
        pruned = await read_model.prune_journal(session, final)
        await session.execute(
            update(AssetRow)
            .where(AssetRow.finalized.is_(False), AssetRow.last_slot <= final)
            .values(finalized=True)
        )
        await session.execute(
            update(AssetEvent)
            .where(AssetEvent.finalized.is_(False), AssetEvent.slot <= final)
            .values(finalized=True)
        )
        await session.execute(
            update(TrackedAccount)
            .where(
                TrackedAccount.finalized.is_(False),
                TrackedAccount.slot <= final,
                or_(
                    TrackedAccount.authority_slot.is_(None), TrackedAccount.authority_slot <= final
                ),
            )
            .values(finalized=True)
        )
        await session.execute(
            update(IndexerCursor)
            .where(IndexerCursor.finalized_slot < final)
            .values(finalized_slot=final)
        )
        return pruned


# --- helpers -----------------------------------------------------------------------------------


async def _images(
    session: AsyncSession, name: str, keys: Iterable[str]
) -> dict[str, dict[str, Any]]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    table, key = _IMAGED[name]
    rows = await session.execute(select(table).where(table.c[key].in_(wanted)))
    return {m[key]: _encode(table, dict(m)) for m in rows.mappings()}


def _encode(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    # JSON-safe before-images; ``updated_at`` moves on every write and says nothing of the chain.
    out = {}
    for column in table.columns:
        if column.name == "updated_at":
            continue
        value = row[column.name]
        out[column.name] = value.isoformat() if isinstance(value, dt.datetime) else value
    return out


def _decode(table: Table, image: dict[str, Any]) -> dict[str, Any]:
    out = dict(image)
    for column in table.columns:
        value = out.get(column.name)
        if isinstance(column.type, UTCDateTime) and isinstance(value, str):
            out[column.name] = dt.datetime.fromisoformat(value)
    return out


async def _restore(
    session: AsyncSession, name: str, key: str, before: dict[str, Any] | None
) -> None:
    table, column = _IMAGED[name]
    await session.execute(delete(table).where(table.c[column] == key))
    if before is not None:
        await session.execute(insert(table).values(**_decode(table, before)))


async def _unfinalize(session: AsyncSession, name: str, key: str) -> None:
    # A row changed at a not-yet-final slot no longer reflects a finalized one.
    if name == "assets":
        await session.execute(update(AssetRow).where(AssetRow.mint == key).values(finalized=False))
    elif name == "tracked_accounts":
        await session.execute(
            update(TrackedAccount).where(TrackedAccount.address == key).values(finalized=False)
        )


async def _count_events(session: AsyncSession, signature: str) -> int:
    count = await session.scalar(
        select(func.count()).select_from(AssetEvent).where(AssetEvent.signature == signature)
    )
    return int(count or 0)


_LIVE: Final = ("unlocked", "active")


def _status(entry: ReorgJournal) -> str:
    return str((entry.before or {}).get("status"))


async def _revert_nft(session: AsyncSession, entry: ReorgJournal, now: dt.datetime) -> bool:
    mint, before = entry.row_key, _status(entry)
    current = (await transitions.statuses(session, [mint])).get(mint)
    if current is None or current == before:
        return False
    if not await transitions.revert(session, mint, from_status=current, to_status=before):
        return False
    if before == "pending":
        # An upgrade's mint: the request reopens and waits for its owner's transaction again
        # (a worker never sends an upgrade); the update below then finds nothing to do.
        await transitions.unsettle_upgrade(session, mint)
        # The mint it confirmed is gone: the minting worker checks (and re-sends) it again.
        await session.execute(
            update(MintOperation)
            .where(and_(MintOperation.mint_address == mint, MintOperation.state.in_(_RECHECK_FROM)))
            .values(state="sent", confirmed_slot=None, next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
    nft = (
        await session.execute(
            select(UserNft)
            .where(UserNft.mint_address == mint)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    await transitions.emit_event(
        session,
        nft,
        "reverted",
        ChainFact(entry.slot, None, now),
        {"from": current, "to": before, "dropped_slot": entry.slot},
    )
    return True
