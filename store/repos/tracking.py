"""What the indexer follows and where it stopped: tracked token accounts and both ends of each
source's cursor. The caller owns the transaction (rows and cursors commit together)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from operator import attrgetter
from typing import Any, Final, TypeVar

from sqlalchemy import (
    Table,
    and_,
    delete,
    exists,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from store.dialect import (
    execute_many,
    insert_ignore,
    insert_many,
    one_list_parameter,
    select_among,
    update_many,
    upsert,
)
from store.tables import AssetEvent, AssetRow, IndexerCursor, IndexerUnseen, TrackedAccount

#: Values per ``IN (...)``: well under every dialect's limit on bound parameters (SQLite 32766,
#: asyncpg 32767, MySQL 65535), so a batch of any size is a handful of queries.
IN_CHUNK: Final = 1000


def chunks(values: Iterable[str], size: int = IN_CHUNK) -> Iterator[list[str]]:
    """The distinct ``values``, sorted, in lists of at most ``size``."""
    wanted = sorted(set(values))
    for i in range(0, len(wanted), size):
        yield wanted[i : i + size]


@dataclass(slots=True)
class AccountState:
    """A ``tracked_accounts`` row as a plain object (see :class:`Loaded`)."""

    address: str
    mint: str
    owner: str | None
    amount: int
    closed: bool
    slot: int
    position: int
    delegate: str | None = None
    frozen: bool = False
    authority_slot: int | None = None
    authority_position: int | None = None
    finalized: bool = False


@dataclass(slots=True)
class AssetState:
    """An ``assets`` row as a plain object (see :class:`Loaded`); the defaults are a new
    asset's."""

    mint: str
    standard: str
    owner: str | None = None
    token_account: str | None = None
    level: int | None = None
    name: str | None = None
    symbol: str | None = None
    uri: str | None = None
    update_authority: str | None = None
    creators: Any = dataclass_field(default_factory=list)
    collection: str | None = None
    supply: int = 0
    burnt: bool = False
    frozen: bool = False
    delegate: str | None = None
    activated: bool = False
    mint_slot: int | None = None
    metadata_slot: int | None = None
    token_slot: int | None = None
    last_slot: int = 0
    finalized: bool = False
    genuine: bool = False
    mint_position: int | None = None
    metadata_position: int | None = None
    token_position: int | None = None
    last_position: int = 0
    metadata_fields: Any = dataclass_field(default_factory=dict)
    metadata_error: str | None = None
    mint_closed: bool = False


_S = TypeVar("_S", AccountState, AssetState)
_TABLES: Final[dict[type[Any], tuple[Table, str]]] = {
    AccountState: (TrackedAccount.__table__, "address"),  # type: ignore[dict-item]
    AssetState: (AssetRow.__table__, "mint"),  # type: ignore[dict-item]
}


class Loaded(dict[str, _S]):
    """Rows of ``tracked_accounts`` or ``assets`` as plain objects by primary key, read and
    written with Core: :meth:`save` writes the new rows in one executemany and the changed ones
    in another. The ORM's unit of work (instrumented attributes, change events, a flush plan)
    cost more than the projection itself at thousands of transactions a second."""

    def __init__(self, cls: type[_S]) -> None:
        super().__init__()
        self._cls: type[_S] = cls
        self._table, self._key = _TABLES[cls]
        self._fields = tuple(f.name for f in fields(cls))
        self._values: Callable[[_S], tuple[Any, ...]] = attrgetter(*self._fields)
        self._stored: dict[str, tuple[Any, ...]] = {}

    async def load(self, session: AsyncSession, column: str, values: Iterable[str]) -> list[_S]:
        """The rows whose ``column`` is among ``values`` (chunked); a row already loaded is
        kept as it is in memory."""
        return await self.load_any(session, {column: values})

    async def load_any(self, session: AsyncSession, wanted: dict[str, Iterable[str]]) -> list[_S]:
        """The rows whose column is among its values for any of ``wanted``'s columns: one query
        where the values are one parameter (SQLite, PostgreSQL) or all fit one ``IN`` list (a
        small batch), else one per chunk and column."""
        lists = [(column, sorted(set(values))) for column, values in wanted.items()]
        if one_list_parameter(session) or sum(len(v) for _, v in lists) <= IN_CHUNK:
            return await self._select(session, lists)
        found: list[_S] = []
        for column, values in lists:
            for part in chunks(values):
                found += await self._select(session, [(column, part)])
        return found

    async def _select(self, session: AsyncSession, wanted: list[tuple[str, list[str]]]) -> list[_S]:
        at = self._fields.index(self._key)
        found: list[_S] = []
        # Rows as tuples in field order: positional construction, no mapping per row.
        for values in await select_among(session, self._table, self._fields, wanted):
            key = values[at]
            row = self.get(key)
            if row is None:
                row = self._cls(*values)
                self[key] = row
                self._stored[key] = values  # what _values(row) gives, built already
            found.append(row)
        return found

    async def save(self, session: AsyncSession) -> None:
        """Insert the new rows, and update the changed columns of the others (one executemany
        per set of changed columns: a transfer rewrites the owner, not the metadata)."""
        new: list[dict[str, Any]] = []
        changed: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for key, row in self.items():
            values = self._values(row)
            stored = self._stored.get(key)
            if stored is None:
                new.append(dict(zip(self._fields, values, strict=True)))
            elif values != stored:
                diff = {
                    f"v_{f}": v
                    for f, v, was in zip(self._fields, values, stored, strict=True)
                    if v is not was and v != was  # unchanged JSON is the same object
                }
                changed.setdefault(tuple(diff), []).append({**diff, "v_key": key})
            self._stored[key] = values
        if new:
            await insert_many(session, self._table, new)
        for columns, rows in changed.items():
            targets = [c[2:] for c in columns]
            await update_many(session, self._table, self._key, targets, rows)


async def followed_addresses(session: AsyncSession) -> set[str]:
    """Every tracked mint (not burnt, or burnt but not yet crawled up to its burn: a burn
    found through another address must not hide the mint's activations) and every token
    account of a tracked mint that is open, or closed but not yet crawled up to its close.

    A token account's close is often learnt through another address (a burn and close names
    the mint; the mint's history lists it) before the account's own history was crawled, and
    that history may hold what only the account names: a plain ``Transfer`` out of it, and a
    lone ``CloseAccount`` before it was opened again. So a closed account stays followed
    until its own cursor reached its close: a newer slot, or the close's own signature."""
    mints = set(
        (await session.execute(select(AssetRow.mint).where(AssetRow.burnt.is_(False)))).scalars()
    )
    return (
        mints
        | await _burnt_not_crawled(session)
        | await _open_accounts(session)
        | await _closed_not_crawled(session)
    )


async def _burnt_not_crawled(session: AsyncSession) -> set[str]:
    """Burnt mints whose own cursor has not reached their burn: the burn may have been found
    through the token account first, and the mint's history holds what only it names (an
    activation memo). Without a burn in the history (an import found the mint closed), until
    the mint's history has been crawled at all."""
    cursor = aliased(IndexerCursor)
    rows = (
        await session.execute(
            select(AssetRow.mint, cursor.slot, cursor.signature)
            .outerjoin(cursor, cursor.name == literal("a:") + AssetRow.mint)
            .where(AssetRow.burnt.is_(True))
        )
    ).all()
    crawled = {mint: (slot, signature) for mint, slot, signature in rows if slot is not None}
    burns: dict[str, tuple[int, int, str]] = {}
    if crawled:
        found = await session.execute(
            select(
                AssetEvent.mint, AssetEvent.slot, AssetEvent.position, AssetEvent.signature
            ).where(AssetEvent.mint.in_(sorted(crawled)), AssetEvent.kind == "burn")
        )
        for mint, slot, position, signature in found:
            burns[mint] = max(
                burns.get(mint, (slot, position, signature)), (slot, position, signature)
            )
    out = {mint for mint, slot, _ in rows if slot is None}
    for mint, (at, last) in crawled.items():
        burn = burns.get(mint)
        if burn is not None and at <= burn[0] and last != burn[2]:
            out.add(mint)  # its cursor is at or before the burn's slot, not at the burn
    return out


async def _open_accounts(session: AsyncSession) -> set[str]:
    open_accounts = await session.execute(
        select(TrackedAccount.address)
        .join(AssetRow, AssetRow.mint == TrackedAccount.mint)
        .where(TrackedAccount.closed.is_(False))
    )
    return set(open_accounts.scalars())


async def _closed_not_crawled(session: AsyncSession) -> set[str]:
    """Closed token accounts of tracked mints whose own cursor has not reached their close."""
    cursor = aliased(IndexerCursor)
    # The close's own history row (same mint, slot and position as the account's state).
    reached = exists().where(
        AssetEvent.mint == TrackedAccount.mint,
        AssetEvent.kind == "close",
        AssetEvent.slot == TrackedAccount.slot,
        AssetEvent.position == TrackedAccount.position,
        AssetEvent.signature == cursor.signature,
    )
    rows = await session.execute(
        select(TrackedAccount.address)
        .join(AssetRow, AssetRow.mint == TrackedAccount.mint)
        .outerjoin(cursor, cursor.name == literal("a:") + TrackedAccount.address)
        .where(
            TrackedAccount.closed.is_(True),
            or_(
                cursor.name.is_(None),
                cursor.slot < TrackedAccount.slot,
                and_(cursor.slot == TrackedAccount.slot, ~reached),
            ),
        )
    )
    return set(rows.scalars())


async def ownership_before(
    session: AsyncSession, mint: str, slot: int, position: int
) -> tuple[bool, str | None]:
    """The owner the history shows just before (slot, position): the receiver of the last mint
    or transfer event before it, with whether the history holds one at all."""
    row = (
        await session.execute(
            select(AssetEvent.to_owner)
            .where(
                AssetEvent.mint == mint,
                AssetEvent.kind.in_(("mint", "transfer")),
                (AssetEvent.slot < slot)
                | ((AssetEvent.slot == slot) & (AssetEvent.position < position)),
            )
            .order_by(AssetEvent.slot.desc(), AssetEvent.position.desc())
            .limit(1)
        )
    ).first()
    return (False, None) if row is None else (True, row[0])


async def event_kinds(session: AsyncSession, mint: str) -> list[AssetEvent]:
    """The history of one mint in chain order."""
    rows = await session.execute(
        select(AssetEvent)
        .where(AssetEvent.mint == mint)
        .order_by(AssetEvent.slot, AssetEvent.position, AssetEvent.instruction_index)
    )
    return list(rows.scalars())


async def get_cursor(session: AsyncSession, name: str) -> IndexerCursor | None:
    return await session.get(IndexerCursor, name)


async def get_cursors(session: AsyncSession, names: Iterable[str]) -> dict[str, str | None]:
    """The newest signature of each of these cursors that exists (chunked ``IN`` queries)."""
    found: dict[str, str | None] = {}
    for part in chunks(names):
        rows = await session.execute(
            select(IndexerCursor.name, IndexerCursor.signature).where(IndexerCursor.name.in_(part))
        )
        found.update((name, value) for name, value in rows)
    return found


async def move_cursors(session: AsyncSession, newest: dict[str, tuple[int, str]]) -> None:
    """:func:`move_cursor` with ``newest`` for many cursors at once: one read per chunk of
    names, one insert of the new ones and one update of those that move (a batch of a crawl
    over thousands of addresses moves thousands of cursors). Not for a cursor loaded as an
    ORM object in this session (it would not see the change)."""
    current: dict[str, int] = {}
    for part in chunks(newest):
        rows = await session.execute(
            select(IndexerCursor.name, IndexerCursor.slot).where(IndexerCursor.name.in_(part))
        )
        current.update((name, value) for name, value in rows)
    table: Table = IndexerCursor.__table__  # type: ignore[assignment]
    new: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []
    for name, (slot, signature) in sorted(newest.items()):
        if name not in current:
            new.append({"name": name, "slot": slot, "signature": signature})
        elif slot >= current[name]:  # an end only ever moves outward
            moved.append({"v_key": name, "v_slot": slot, "v_signature": signature})
    await execute_many(session, ("insert", table.name, "newest"), insert(table), new)
    await update_many(session, table, "name", ["slot", "signature"], moved)


async def move_cursor(
    session: AsyncSession,
    name: str,
    *,
    newest: tuple[int, str] | None = None,
    oldest: tuple[int, str] | None = None,
    backfill_complete: bool | None = None,
) -> None:
    """Advance either end of a source's cursor (an end only ever moves outward: newer for
    ``newest``, older for ``oldest``)."""
    current = await get_cursor(session, name)
    row: dict[str, Any] = {
        "name": name,
        "slot": current.slot if current else 0,
        "signature": current.signature if current else None,
        "finalized_slot": current.finalized_slot if current else 0,
        "oldest_slot": current.oldest_slot if current else None,
        "oldest_signature": current.oldest_signature if current else None,
        "backfill_complete": current.backfill_complete if current else False,
    }
    if newest is not None and (current is None or newest[0] >= current.slot):
        row["slot"], row["signature"] = newest
    if oldest is not None and (row["oldest_slot"] is None or oldest[0] <= row["oldest_slot"]):
        row["oldest_slot"], row["oldest_signature"] = oldest
    if backfill_complete is not None:
        row["backfill_complete"] = backfill_complete
    await upsert(session, IndexerCursor.__table__, row, key=("name",))  # type: ignore[arg-type]
    if current is not None:
        # The loaded row now says what was written (no second read, and not dirty).
        for column, value in row.items():
            set_committed_value(current, column, value)


# --- notified, not served yet ----------------------------------------------------------------


async def keep_unseen(
    session: AsyncSession, signature: str, slot: int, addresses: Sequence[str]
) -> None:
    """Remember a notified transaction the node did not serve yet (once: a second notice of
    it keeps the first)."""
    table: Table = IndexerUnseen.__table__  # type: ignore[assignment]
    row = {
        "signature": signature,
        "slot": slot,
        "addresses": sorted(set(addresses)),
        "first_seen_at": dt.datetime.now(dt.UTC),
    }
    await insert_ignore(session, table, [row])


async def unseen(session: AsyncSession) -> list[IndexerUnseen]:
    """Every kept transaction, oldest slot first."""
    stmt = select(IndexerUnseen).order_by(IndexerUnseen.slot, IndexerUnseen.signature)
    return list((await session.execute(stmt)).scalars())


async def forget_unseen(session: AsyncSession, signature: str) -> None:
    await session.execute(
        delete(IndexerUnseen)
        .where(IndexerUnseen.signature == signature)
        .execution_options(synchronize_session=False)
    )
