"""Decoded transactions into the read model (``assets``, ``asset_events``, ``tracked_accounts``)
and the business links, idempotently and in any order.

A batch (:meth:`Projection.apply_all`; ``apply`` is a batch of one) loads every row it touches
in a few chunked IN-queries, applies each transaction in chain order in memory, then derives and
judges each touched mint once (rule 1 makes that equal to one at a time), and writes with a few
executemany statements: assets and token accounts as plain objects through Core
(``tracking.Loaded``), not the ORM unit of work, which alone cost more than the rest.

The rules (each a fact of the chain, never an inference from arrival order):

1. **Ordering.** A transaction's place is ``(slot, position in the block)``; a change inside it
   adds the instruction index. Every piece of state carries the place of the change that set
   it: each token account its balance/owner/closed state, and apart its delegate and frozen
   state; each metadata field its own; the mint its creation and close. A change is applied
   only if it is not older than the stored one (ties: the later application wins, so one
   transaction applied again rewrites the same values). The asset row is then *derived* from
   that state, never patched, so the rows depend on the set of transactions applied, not on
   their order.
2. **Idempotency.** Re-applying a transaction rewrites state with equal values (rule 1) and
   adds no history: ``asset_events`` is unique per (signature, instruction index, mint, kind),
   and business events go to the outbox only when their history row is new (guarded
   transitions of ``store.repos.transitions``). A failed transaction changes nothing.
3. **Ownership.** Only the pre/post token balances of zero-decimal mints say who holds what
   (they see plain ``Transfer`` and transfers through any program). ``supply`` is the sum of
   the open accounts' balances; ``owner``/``token_account`` are those of the one open account
   holding exactly the one token, and nothing otherwise (never an account holding 0).
   Balances are kept for mints not (yet) tracked, so a transfer applied before its mint's
   creation still counts.
4. **Burnt** when the mint is closed or a burn of it was applied (never inferred from a
   supply of 0: a former holder's lone close applied before the transfer that emptied the
   account leaves no open account known either); a burnt asset has no owner.
5. **Genuine** (ARCHITECTURE §3): ``token2022`` only as a member of one of the trusted
   collection mints (the program checks the group authority's signature for membership);
   ``metaplex`` only with a verified creator in the trusted creator set. The update authority
   proves nothing. Counterfeits are stored with ``genuine`` false; ``level`` is set only on a
   genuine NFT.
6. **Attacker-controlled metadata** is stored whole when it fits the columns; otherwise name,
   symbol, uri and level are refused together and ``metadata_error`` says why. Additional
   fields live apart (``field:<key>``), so no key can pose as ``collection`` or a claim.
7. **History.** One ``asset_events`` row per mint, transfer (a change of the sole holder),
   burn, token-account close (and mint close), valid activation, and delegate change
   (``delegate``/``undelegate``: Approve, Revoke, and the implicit clears of an owner change or
   of a delegate spending the token) and ``freeze``/``thaw`` of a holder's account, with slot,
   position and signature. Rows of a zero-decimal mint the transaction moves are written even
   before its asset row exists (a burn applied ahead of the mint is not lost).
8. **Activation.** A memo ``aiw3:activate:<mint>`` is kept as a claim and judged against the
   owner *when it executed*: the sender if the same transaction moves the NFT, else the
   receiver of the last mint/transfer before it in the history. Claims are judged again
   whenever the mint's history changes (a plain ``Transfer`` found later can make a claim valid
   or invalid), adding or removing its ``activate`` row; ``activated`` is whether any claim
   holds. A memo signed by anyone else is kept but never holds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from chain.asset import Asset as ChainAsset
from chain.asset import metaplex_level
from chain.programs import TOKEN_2022_PROGRAM
from core.types import StandardName
from indexer.decode import (
    ActivationMemo,
    Burned,
    Closed,
    CreatorVerified,
    DecodedTx,
    DelegateChanged,
    FreezeChanged,
    GroupCreated,
    GroupMember,
    MetadataAuthority,
    MetadataField,
    MetadataSet,
    MetaplexCreated,
    MintCreated,
    Minted,
    TxRef,
)
from store.repos import read_model, transitions
from store.repos.tracking import AccountState, AssetState, Loaded
from store.repos.transitions import ChainFact
from store.tables import AssetEvent, AssetRow

#: Position used for state read from accounts (``aiw3 indexer add``): a read at slot S
#: reflects every transaction of S.
END_OF_SLOT: Final = 2**31 - 1

# Column limits of ``assets`` (see store/tables.py): longer attacker text is refused, not cut.
_LIMITS: Final = {"name": 200, "symbol": 32, "uri": 512}
_LEVEL = re.compile(r"^[0-9]{1,9}$")

_Version = tuple[int, int, int]  # slot, position, instruction index

#: The changes ``_apply_metadata`` applies (to the mint they name).
_METADATA_CHANGES: Final = (
    MetadataSet,
    MetadataField,
    MetadataAuthority,
    GroupMember,
    MetaplexCreated,
    CreatorVerified,
    Burned,
)

#: Activation memos are kept among the versioned fields under this prefix (not metadata).
_CLAIM: Final = "claim:"
#: Set by a burn of the mint (not metadata either).
_BURNT: Final = "state:burnt"
_STATE: Final = (_CLAIM, "state:")


@dataclass(frozen=True, slots=True)
class Trust:
    """Who vouches for an NFT: the deployment's collection mints and creator keys."""

    collections: frozenset[str] = frozenset()
    creators: frozenset[str] = frozenset()


@dataclass(slots=True)
class Applied:
    """What one call changed: new history rows by kind, and the mints and accounts touched."""

    events: Counter[str] = field(default_factory=Counter)
    mints: set[str] = field(default_factory=set)
    new_mints: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)
    refused: int = 0

    def merge(self, other: Applied) -> None:
        self.events.update(other.events)
        self.mints |= other.mints
        self.new_mints |= other.new_mints
        self.accounts |= other.accounts
        self.refused += other.refused


_EventKey = tuple[str, int, str, str]  # signature, instruction index, mint, kind


@dataclass(slots=True)
class _Batch:
    """Every row one :meth:`Projection.apply_all` touches, loaded once and changed in memory.

    ``accounts`` holds each token account the transactions name and each one of the mints they
    may derive (so a mint's accounts are found here without a query); ``assets`` the asset rows
    of every mint (or closed account) they name, new ones added as their creation is applied.
    """

    accounts: Loaded[AccountState]
    assets: Loaded[AssetState]
    #: History keys already stored for the batch's signatures: a row among them is not new.
    stored: set[_EventKey]
    #: Versions of the burns (stored, or new in the batch) of mints the batch may create (rule
    #: 7: a burn applied before its mint's creation marks the new asset burnt).
    stored_burns: dict[str, list[_Version]]
    #: Per transaction (in chain order): its ``depends_on`` and the NFT mints it creates.
    names: list[tuple[set[str], set[str]]]
    #: New history rows, in the order applied, and their keys.
    rows: list[dict[str, Any]] = field(default_factory=list)
    keys: set[_EventKey] = field(default_factory=set)
    #: Stored activations judged again with another owner: rewritten, not new.
    replaced: list[dict[str, Any]] = field(default_factory=list)
    #: Mints to derive (and judge) once at the end: those of an asset row any transaction named.
    touched: set[str] = field(default_factory=set)

    def add_event(self, row: dict[str, Any]) -> None:
        key = (row["signature"], row["instruction_index"], row["mint"], row["kind"])
        if key in self.stored or key in self.keys:
            return  # already in the history (rule 2)
        self.keys.add(key)
        self.rows.append(row)
        if row["kind"] == "burn":  # seen by a creation of the mint applied later in the batch
            version = (row["slot"], row["position"], row["instruction_index"])
            self.stored_burns.setdefault(row["mint"], []).append(version)

    def burns_of(self, mint: str) -> list[_Version]:
        return self.stored_burns.get(mint, [])


class Projection:
    """Applies decoded transactions; the caller owns the database transaction."""

    def __init__(self, trust: Trust) -> None:
        self.trust = trust

    async def apply(self, session: AsyncSession, tx: DecodedTx) -> Applied:
        return await self.apply_all(session, [tx])

    async def apply_all(self, session: AsyncSession, txs: Iterable[DecodedTx]) -> Applied:
        """Apply a batch of transactions in one pass: load every row they touch in a few
        queries, apply each in chain order in memory, then derive and judge each touched mint
        once and write the new history in one insert. By rule 1 the rows equal those of
        applying the transactions one at a time, in any order."""
        applied = Applied()
        ordered = sorted((tx for tx in txs if tx.ok), key=lambda t: t.ref)  # failed: no change
        if not ordered:
            return applied
        with _collector_paused():
            await self._apply_batch(session, ordered, applied)
        return applied

    async def _apply_batch(
        self, session: AsyncSession, ordered: list[DecodedTx], applied: Applied
    ) -> None:
        batch = await _load(session, ordered)
        for tx, (names, candidates) in zip(ordered, batch.names, strict=True):
            self._apply_one(batch, tx, applied, names, candidates)
        by_mint = _by_mint(batch.accounts.values())
        for mint in sorted(batch.touched):
            self._derive(batch.assets[mint], by_mint.get(mint, []))
        applied.mints |= batch.touched
        activations = await self._judge_claims(session, batch)
        await batch.accounts.save(session)
        await batch.assets.save(session)
        new = batch.rows + activations
        await read_model.append_events(session, new + batch.replaced)
        applied.events.update(row["kind"] for row in new)
        await self._business(session, new)
        await session.flush()

    def _apply_one(
        self,
        batch: _Batch,
        tx: DecodedTx,
        applied: Applied,
        names: set[str],
        candidates: set[str],
    ) -> None:
        """Apply one transaction in memory; ``names`` is its ``depends_on``, ``candidates`` the
        NFT mints it creates (both worked out by ``_load``)."""
        ref = tx.ref
        at: _Version = (ref.slot, ref.position, 0)
        for b in tx.balances:
            _put_account(batch.accounts, b.account, b.mint, b.owner, b.amount, b.closed, at)
        _track_authorities(batch.accounts, ref, tx)
        groups = {c.mint for c in tx.changes if isinstance(c, GroupCreated)}
        known = {m: batch.assets[m] for m in names if m in batch.assets}
        for mint in sorted(candidates - groups - set(known)):
            asset = self._new_asset(mint, tx)
            batch.assets[mint] = known[mint] = asset
            applied.new_mints.add(mint)
            # A burn applied before the mint's creation left its history row (rule 7).
            burns = batch.burns_of(mint)
            if burns:
                fields = dict(asset.metadata_fields or {})
                for version in burns:
                    _set_field(fields, _BURNT, True, version)
                asset.metadata_fields = fields
        for asset in known.values():
            self._apply_mint_source(asset, tx)
            self._apply_metadata(asset, tx)
        batch.touched |= set(known)
        _history(batch, tx, known)
        applied.accounts |= {b.account for b in tx.balances if b.mint in known}

    # -- imports -----------------------------------------------------------------------------

    async def import_asset(
        self,
        session: AsyncSession,
        asset: ChainAsset,
        slot: int,
        accounts: Sequence[tuple[str, str | None, int]] = (),
    ) -> AssetRow:
        """Upsert an NFT read from the chain now (``aiw3 indexer add``): its metadata and its
        token accounts ``(address, owner, amount)``, as of ``slot``."""
        at: _Version = (slot, END_OF_SLOT, 0)
        assets = Loaded(AssetState)
        await assets.load(session, "mint", [asset.mint])
        row = assets.setdefault(asset.mint, AssetState(asset.mint, str(asset.standard)))
        row.standard = str(asset.standard)
        fields = dict(row.metadata_fields or {})
        values: dict[str, Any] = {
            "name": asset.name,
            "symbol": asset.symbol,
            "uri": asset.uri,
            "update_authority": asset.update_authority,
            _extra("level"): asset.level,
            "collection": asset.collection.address if asset.collection else None,
            "creators": [[c.address, c.share, c.verified] for c in asset.creators]
            if asset.standard == StandardName.METAPLEX
            else None,
        }
        for key, value in values.items():
            _set_field(fields, key, value, at)
        row.metadata_fields = fields
        _bump(row, "mint", at)
        if asset.token_account is not None and asset.owner is not None:
            accounts = [*accounts, (asset.token_account, asset.owner, asset.amount)]
        rows = Loaded(AccountState)
        await rows.load(session, "address", (a[0] for a in accounts))
        await rows.load(session, "mint", [asset.mint])
        for address, owner, amount in accounts:
            _put_account(rows, address, asset.mint, owner, amount, False, at)
        own = _by_mint(rows.values()).get(asset.mint, [])
        self._derive(row, own)
        if asset.burnt and not row.burnt:
            row.mint_closed = True  # the chain says burnt with no account left to prove it
            self._derive(row, own)
        await rows.save(session)
        await assets.save(session)
        stored = await session.get(AssetRow, asset.mint, populate_existing=True)
        assert stored is not None  # just written
        return stored

    async def rederive(self, session: AsyncSession, mints: Iterable[str]) -> int:
        """Recompute these asset rows from their stored state (after the trusted creators or
        collections changed); returns how many changed their ``genuine`` flag."""
        assets = Loaded(AssetState)
        await assets.load(session, "mint", mints)
        accounts = Loaded(AccountState)
        by_mint = _by_mint(await accounts.load(session, "mint", assets))
        changed = 0
        for asset in assets.values():
            before = asset.genuine
            self._derive(asset, by_mint.get(asset.mint, []))
            changed += asset.genuine != before
        await assets.save(session)
        return changed

    # -- state -------------------------------------------------------------------------------

    def _new_asset(self, mint: str, tx: DecodedTx) -> AssetState:
        created = next(c for c in tx.changes if isinstance(c, MintCreated) and c.mint == mint)
        metaplex = any(isinstance(c, MetaplexCreated) and c.mint == mint for c in tx.changes)
        standard = (
            StandardName.TOKEN2022
            if created.program == str(TOKEN_2022_PROGRAM) and not metaplex
            else StandardName.METAPLEX
        )
        return AssetState(mint, str(standard))

    def _apply_mint_source(self, asset: AssetState, tx: DecodedTx) -> None:
        for c in tx.changes:
            if isinstance(c, MintCreated) and c.mint == asset.mint:
                _bump(asset, "mint", (tx.ref.slot, tx.ref.position, c.index))
            elif isinstance(c, Closed) and c.account == asset.mint:
                at = (tx.ref.slot, tx.ref.position, c.index)
                if _newer(asset, "mint", at):
                    asset.mint_closed = True
                    _bump(asset, "mint", at)

    def _apply_metadata(self, asset: AssetState, tx: DecodedTx) -> None:
        mine = [
            c
            for c in tx.changes
            if isinstance(c, _METADATA_CHANGES) and getattr(c, "mint", None) == asset.mint
        ]
        if not mine:
            return  # a transfer: nothing of the metadata to copy and compare
        fields = dict(asset.metadata_fields or {})
        before = dict(fields)
        for c in mine:
            at: _Version = (tx.ref.slot, tx.ref.position, getattr(c, "index", 0))
            match c:
                case MetadataSet():
                    for key, value in (
                        ("update_authority", c.update_authority),
                        ("name", c.name),
                        ("symbol", c.symbol),
                        ("uri", c.uri),
                    ):
                        _set_field(fields, key, value, at)
                case MetadataField():
                    key = c.field if c.field in _LIMITS else _extra(c.field)
                    _set_field(fields, key, c.value, at)
                case MetadataAuthority():
                    _set_field(fields, "update_authority", c.update_authority, at)
                case GroupMember():
                    _set_field(fields, "collection", c.group, at)
                case MetaplexCreated():
                    entries: tuple[tuple[str, Any], ...] = (
                        ("update_authority", c.update_authority),
                        ("name", c.name),
                        ("symbol", c.symbol),
                        ("uri", c.uri),
                        ("collection", c.collection),
                        ("creators", [list(x) for x in c.creators]),
                    )
                    for key, value in entries:
                        _set_field(fields, key, value, at)
                case CreatorVerified():
                    _set_field(fields, f"verified:{c.creator}", True, at)
                case Burned():
                    # Kept with the state, not inferred from a supply of 0: the lone close of
                    # a former holder's emptied account, applied before the transfer that
                    # emptied it, leaves no open account known either.
                    _set_field(fields, _BURNT, True, at)
        if fields != before:
            asset.metadata_fields = fields
            latest = max(
                (tuple(v["at"]) for k, v in fields.items() if not k.startswith(_STATE)),
                default=None,
            )
            if latest is not None:
                asset.metadata_slot, asset.metadata_position = latest[0], latest[1]

    def _derive(self, asset: AssetState, accounts: Sequence[AccountState]) -> None:
        """Recompute the asset row from its versioned state and its token accounts (all of
        them, in address order)."""
        fields = asset.metadata_fields or {}

        def value(key: str) -> Any:
            entry = fields.get(key)
            return entry["v"] if entry else None

        open_accounts = [a for a in accounts if not a.closed]
        holders = [a for a in open_accounts if a.amount > 0]
        holder = holders[0] if len(holders) == 1 and holders[0].amount == 1 else None
        asset.supply = sum(a.amount for a in open_accounts)
        asset.burnt = bool(asset.mint_closed or value(_BURNT))
        if holder is None or asset.burnt:
            asset.owner = asset.token_account = asset.delegate = None
            asset.frozen = False
        else:
            asset.owner, asset.token_account = holder.owner, holder.address
            asset.delegate, asset.frozen = holder.delegate, holder.frozen
        if accounts:
            latest = max(accounts, key=lambda a: (a.slot, a.position))
            asset.token_slot, asset.token_position = latest.slot, latest.position

        creators = [
            {"address": a, "share": s, "verified": bool(v or value(f"verified:{a}"))}
            for a, s, v in (value("creators") or [])
        ]
        authority = value("update_authority")
        if asset.standard == StandardName.TOKEN2022 and authority:
            creators = [{"address": authority, "share": 100, "verified": False}]
        asset.creators = creators
        asset.update_authority = _address(authority)
        asset.collection = _address(value("collection"))
        asset.genuine = self._genuine(asset.standard, asset.collection, creators)

        name, symbol, uri = value("name"), value("symbol"), value("uri")
        error = _metadata_error(name=name, symbol=symbol, uri=uri)
        asset.metadata_error = error
        if error is None:
            asset.name, asset.symbol, asset.uri = name, symbol, uri
        else:
            asset.name = asset.symbol = asset.uri = None
        raw_level = (
            metaplex_level(name or "")
            if asset.standard == StandardName.METAPLEX
            else value(_extra("level"))
        )
        asset.level = _level(raw_level) if asset.genuine and error is None else None

        versions = [
            (asset.mint_slot, asset.mint_position),
            (asset.metadata_slot, asset.metadata_position),
            (asset.token_slot, asset.token_position),
        ]
        asset.last_slot, asset.last_position = max(
            ((s, p or 0) for s, p in versions if s is not None), default=(0, 0)
        )

    def _genuine(
        self, standard: str, collection: str | None, creators: Sequence[dict[str, Any]]
    ) -> bool:
        if standard == StandardName.TOKEN2022:
            return collection is not None and collection in self.trust.collections
        return any(c["verified"] and c["address"] in self.trust.creators for c in creators)

    # -- history and business ----------------------------------------------------------------

    async def _judge_claims(self, session: AsyncSession, batch: _Batch) -> list[dict[str, Any]]:
        """(Re)judge every activation memo of the touched mints against the history as it
        stands now (the stored rows and the batch's new ones); returns the new ``activate``
        rows to write.

        Out of order, a memo can arrive before the transfer that made its signer the owner
        (the transfer was a plain ``Transfer``, found later through a token account), or
        before the one that took the NFT away from its signer. So the memo is kept as a
        claim and judged again whenever anything of the mint is applied: a claim that became
        valid gets its ``activate`` row, one that no longer is loses it. ``activated`` is
        whether any claim holds."""
        claims = {
            mint: [v["v"] for k, v in sorted(fields.items()) if k.startswith(_CLAIM)]
            for mint in sorted(batch.touched)
            if (fields := batch.assets[mint].metadata_fields or {})
        }
        claims = {mint: found for mint, found in claims.items() if found}
        if not claims:
            return []
        # Who received the NFT when (mints and transfers), and the activations already written.
        moves: dict[str, list[tuple[_Version, str | None]]] = {}
        activations: dict[tuple[str, str, int], AssetEvent] = {}
        for e in await read_model.events_of(session, claims, ("mint", "transfer", "activate")):
            if e.kind == "activate":
                activations[(e.mint, e.signature, e.instruction_index)] = e
            else:
                moves.setdefault(e.mint, []).append(
                    ((e.slot, e.position, e.instruction_index), e.to_owner)
                )
        for row in batch.rows:
            if row["mint"] in claims and row["kind"] in ("mint", "transfer"):
                moves.setdefault(row["mint"], []).append(
                    ((row["slot"], row["position"], row["instruction_index"]), row["to_owner"])
                )
        new: list[dict[str, Any]] = []
        for mint, found in claims.items():
            asset = batch.assets[mint]
            activated = False
            for claim in found:
                signature, index = claim["signature"], claim["index"]
                owner = claim["sender"]
                if owner is None:
                    # The receiver of the last mint or transfer before the memo's transaction.
                    place = (claim["slot"], claim["position"])
                    before = [m for m in moves.get(mint, ()) if (m[0][0], m[0][1]) < place]
                    # No history of it (an import): the owner read now.
                    owner = max(before, key=lambda m: m[0])[1] if before else asset.owner
                valid = owner is not None and owner in claim["signers"]
                activated = activated or valid
                stored = activations.get((mint, signature, index))
                if stored is not None and valid and stored.to_owner == owner:
                    continue
                if stored is not None:
                    await session.delete(stored)
                if not valid:
                    continue
                row = {
                    "mint": mint,
                    "kind": "activate",
                    "signature": signature,
                    "instruction_index": index,
                    "slot": claim["slot"],
                    "position": claim["position"],
                    "block_time": _from_timestamp(claim["block_time"]),
                    "from_owner": None,
                    "to_owner": owner,
                    "finalized": False,
                }
                if stored is None:
                    new.append(row)
                else:
                    batch.replaced.append(row)  # the same activation, another owner: not new
            asset.activated = activated
        return new

    async def _business(self, session: AsyncSession, new: list[dict[str, Any]]) -> None:
        """Move the user NFTs that the new history rows concern (guarded, so exactly once), in
        chain order."""
        present = await read_model.user_nfts(session, {e["mint"] for e in new})
        if not present:
            return
        # The whole history, not only these transactions: an activation or burn seen before
        # the mint (out of order) still moves the row once the mint arrives.
        first: dict[tuple[str, str], AssetEvent] = {}
        for e in await read_model.events_of(session, present, ("mint", "activate", "burn")):
            first.setdefault((e.mint, e.kind), e)
        steps: list[tuple[_Version, int, str, str, ChainFact, dict[str, Any] | None]] = []
        for (mint, kind), e in first.items():
            at = (e.slot, e.position, e.instruction_index)
            steps.append(
                (at, 0, mint, _MOVES[kind], _fact(e.slot, e.signature, e.block_time), None)
            )
        for row in new:
            if row["mint"] in present and row["kind"] == "transfer":
                at = (row["slot"], row["position"], row["instruction_index"])
                fact = _fact(row["slot"], row["signature"], row["block_time"])
                extra = {"from": row["from_owner"], "to": row["to_owner"]}
                steps.append((at, 1, row["mint"], "transferred", fact, extra))
        for _, step, mint, what, when, payload in sorted(steps, key=lambda s: s[:3]):
            if step == 0:
                await transitions.move(session, mint, what, when)
            else:
                await transitions.emit_event(session, present[mint], what, when, payload)


def depends_on(tx: DecodedTx) -> set[str]:
    """The mints whose asset rows decide what projecting ``tx`` writes (its metadata,
    activation memos and closes count only for a tracked mint): projected before one of them
    was tracked, it must be projected again once it is."""
    return tx.mints() | _closed_accounts(tx)


# --- batches -----------------------------------------------------------------------------------

#: The business status each history kind moves a user NFT to.
_MOVES: Final = {"mint": "unlocked", "activate": "active", "burn": "burned"}


async def _load(session: AsyncSession, txs: Sequence[DecodedTx]) -> _Batch:
    """Every row the batch touches, in a handful of queries."""
    mints: set[str] = set()
    addresses: set[str] = set()
    candidates: set[str] = set()
    names = [(depends_on(tx), _candidates(tx)) for tx in txs]
    for tx, (named, created) in zip(txs, names, strict=True):
        mints |= named
        addresses |= {b.account for b in tx.balances}
        addresses |= {
            c.account for c in tx.changes if isinstance(c, DelegateChanged | FreezeChanged)
        }
        candidates |= created
    assets = Loaded(AssetState)
    await assets.load(session, "mint", mints)
    accounts = Loaded(AccountState)
    await accounts.load_any(session, {"address": addresses, "mint": mints})
    stored = await read_model.event_keys(session, {tx.ref.signature for tx in txs})
    burns: dict[str, list[_Version]] = {}
    for e in await read_model.events_of(session, candidates - set(assets), ("burn",)):
        burns.setdefault(e.mint, []).append((e.slot, e.position, e.instruction_index))
    return _Batch(accounts, assets, stored, burns, names)


def _track_authorities(accounts: dict[str, AccountState], ref: TxRef, tx: DecodedTx) -> None:
    for c in tx.changes:
        if not isinstance(c, DelegateChanged | FreezeChanged):
            continue
        row = accounts.get(c.account)
        if row is None:
            continue  # not a token account of a zero-decimal mint: nothing of ours
        stored = (row.authority_slot, row.authority_position or 0)
        if row.authority_slot is not None and (ref.slot, ref.position) < stored:
            continue  # an older Approve/Revoke/Freeze/Thaw than the one applied
        if isinstance(c, DelegateChanged):
            row.delegate = c.delegate
        else:
            row.frozen = c.frozen
        row.authority_slot, row.authority_position = ref.slot, ref.position


def _history(batch: _Batch, tx: DecodedTx, known: dict[str, AssetState]) -> None:
    """This transaction's history rows (those not stored yet join the batch's), and its
    activation memos kept as claims."""
    ref = tx.ref
    owners = {b.account: b.owner for b in tx.balances}
    mints_of = {b.account: b.mint for b in tx.balances}

    def event(mint: str, kind: str, index: int, src: str | None, dst: str | None) -> None:
        batch.add_event(
            {
                "mint": mint,
                "kind": kind,
                "signature": ref.signature,
                "instruction_index": index,
                "slot": ref.slot,
                "position": ref.position,
                "block_time": ref.block_time,
                "from_owner": src,
                "to_owner": dst,
                "finalized": False,
            }
        )

    # Like balances, the history of a zero-decimal mint this transaction moves is kept
    # before its asset row exists: applied ahead of the mint's creation (out of order),
    # a burn would otherwise be lost for good (a burnt mint is no longer crawled).
    nfts = set(known) | set(mints_of.values())
    for c in tx.changes:
        match c:
            case Minted() if c.mint in nfts:
                event(c.mint, "mint", c.index, None, owners.get(c.account))
            case Burned() if c.mint in nfts:
                event(c.mint, "burn", c.index, owners.get(c.account), None)
            case Closed() if c.account in known:
                event(c.account, "close", c.index, None, None)
            case Closed() if mints_of.get(c.account) in nfts:
                event(mints_of[c.account], "close", c.index, owners.get(c.account), None)
            case DelegateChanged() if mints_of.get(c.account) in nfts:
                kind = "delegate" if c.delegate is not None else "undelegate"
                holder = owners.get(c.account)
                event(mints_of[c.account], kind, c.index, holder, _address(c.delegate))
            case FreezeChanged() if mints_of.get(c.account) in nfts:
                kind = "freeze" if c.frozen else "thaw"
                event(mints_of[c.account], kind, c.index, owners.get(c.account), None)
            case ActivationMemo() if c.mint in known:
                # Judged against the owner, so it needs the asset; one seen before it is
                # found again in the mint's own history, which is crawled once tracked.
                _record_claim(known[c.mint], tx, c)
    for t in tx.transfers:
        if t.mint in nfts:
            event(t.mint, "transfer", 0, t.from_owner, t.to_owner)


# --- helpers -----------------------------------------------------------------------------------

#: Batches in flight with the cyclic collector paused (the runner's crawl and live tasks can
#: interleave theirs at the awaits): the last one out resumes it.
_pauses = 0


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch runs. A batch allocates some hundred thousand
    containers (loaded rows, their metadata, history rows, parameters) that live until its end
    and then go by reference counting; collected meanwhile they survive into the oldest
    generation and set off full collections over the whole heap, a fifth to a quarter of the
    batch's time. Nothing of the batch is cyclic garbage; any cycle made meanwhile (by anyone)
    is collected once the collector resumes."""
    global _pauses  # one collector per process, so one count
    if _pauses == 0 and not gc.isenabled():
        yield  # paused by someone else: theirs to resume
        return
    _pauses += 1
    gc.disable()
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0:
            gc.enable()


def _by_mint(accounts: Iterable[AccountState]) -> dict[str, list[AccountState]]:
    """Token accounts by mint, each list in address order (as ``_derive`` wants them)."""
    out: dict[str, list[AccountState]] = {}
    for account in sorted(accounts, key=lambda a: a.address):
        out.setdefault(account.mint, []).append(account)
    return out


def _record_claim(asset: AssetState, tx: DecodedTx, memo: ActivationMemo) -> None:
    """Keep an activation memo with what judging it needs (see ``_judge_claims``)."""
    ref = tx.ref
    # The owner when the memo executed: the sender if this same transaction moves the NFT.
    sender = next((t.from_owner for t in tx.transfers if t.mint == asset.mint), None)
    claim = {
        "signature": ref.signature,
        "index": memo.index,
        "slot": ref.slot,
        "position": ref.position,
        "block_time": ref.block_time.timestamp() if ref.block_time is not None else None,
        "signers": list(memo.signers),
        "sender": sender,
    }
    fields = dict(asset.metadata_fields or {})
    fields[f"{_CLAIM}{ref.signature}:{memo.index}"] = {
        "v": claim,
        "at": [ref.slot, ref.position, memo.index],
    }
    asset.metadata_fields = fields


def _from_timestamp(value: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, dt.UTC) if value is not None else None


def _extra(key: str) -> str:
    """Additional metadata fields live in their own namespace: a counterfeit's update authority
    can write any key, and a key called ``collection`` must not pose as membership."""
    return f"field:{key}"


def _fact(slot: int, signature: str, at: dt.datetime | None) -> ChainFact:
    return ChainFact(slot, signature, at or dt.datetime.now(dt.UTC))


def _candidates(tx: DecodedTx) -> set[str]:
    """Mints this transaction creates as NFTs: zero decimals and metadata or membership."""
    created = {c.mint for c in tx.changes if isinstance(c, MintCreated) and c.decimals == 0}
    described = {
        c.mint for c in tx.changes if isinstance(c, MetadataSet | GroupMember | MetaplexCreated)
    }
    return created & described


def _closed_accounts(tx: DecodedTx) -> set[str]:
    return {c.account for c in tx.changes if isinstance(c, Closed)}


def _newer(asset: AssetState, source: str, at: _Version) -> bool:
    slot = getattr(asset, f"{source}_slot")
    position = getattr(asset, f"{source}_position")
    return slot is None or (at[0], at[1]) >= (slot, position or 0)


def _bump(asset: AssetState, source: str, at: _Version) -> None:
    if _newer(asset, source, at):
        setattr(asset, f"{source}_slot", at[0])
        setattr(asset, f"{source}_position", at[1])


def _set_field(fields: dict[str, Any], key: str, value: Any, at: _Version) -> None:
    current = fields.get(key)
    if current is None or tuple(current["at"]) <= at:
        fields[key] = {"v": value, "at": list(at)}


def _put_account(
    accounts: dict[str, AccountState],
    address: str,
    mint: str,
    owner: str | None,
    amount: int,
    closed: bool,
    at: _Version,
) -> None:
    """Set a token account's state as of ``at`` unless it holds a newer one (``accounts``
    holds every stored row among those to put; a new row joins it)."""
    row = accounts.get(address)
    if row is None:
        accounts[address] = AccountState(address, mint, _address(owner), amount, closed, *at[:2])
        return
    if (at[0], at[1]) < (row.slot, row.position):
        return  # an older transaction: the account has moved on since
    # A closed address can be created again later (for any mint): the newer state wins whole.
    row.mint, row.owner, row.amount, row.closed = mint, _address(owner), amount, closed
    row.slot, row.position = at[0], at[1]
    if closed:
        row.delegate, row.frozen = None, False


def _address(value: Any) -> str | None:
    # Columns hold base58 addresses (at most 44 characters); anything else is not one.
    if isinstance(value, str) and 32 <= len(value) <= 44:
        return value
    return None


def _metadata_error(**values: Any) -> str | None:
    for key, text in values.items():
        if text is None:
            continue
        if not isinstance(text, str):
            return f"{key} is not text"
        if len(text) > _LIMITS[key]:
            return f"{key} is {len(text)} characters, longer than {_LIMITS[key]}"
        if "\x00" in text:
            return f"{key} holds a NUL character"
    return None


def _level(raw: Any) -> int | None:
    if isinstance(raw, str) and _LEVEL.match(raw):
        return int(raw)
    return None
