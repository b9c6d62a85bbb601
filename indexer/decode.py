"""One transaction in, the changes it made to NFTs out: pure functions, no I/O.

A ``getTransaction`` result (json encoding, ``maxSupportedTransactionVersion`` 0) becomes a
:class:`DecodedTx`. Two kinds of facts come out of it:

* **balances**: the state each token account of a zero-decimal mint is left in, read from the
  pre/post token balances. They are the only source of ownership: they carry mint and owner even
  when the transaction's keys name neither (a plain ``Transfer``), and they see transfers made
  through any program. An account listed before but not after was closed.
* **changes**: what the top-level and inner instructions did, decoded through ``chain.codecs``:
  mint creation, metadata, group membership, mints, burns, closes, delegate and freeze state,
  and activation memos.

A failed transaction changed nothing on chain: it decodes to no balances and no changes (its
``ok`` is False). An instruction of a known program that the codecs refuse is skipped and
counted, so no bytes an attacker can put on chain stop ingestion.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from solders.pubkey import Pubkey
from solders.transaction_status import (
    EncodedConfirmedTransactionWithStatusMeta,
    UiCompiledInstruction,
    UiRawMessage,
    UiTransaction,
    UiTransactionStatusMeta,
    UiTransactionTokenBalance,
)

from chain.codecs import (
    DecodedInstruction,
    ata,
    decode_compiled,
    memo,
    metaplex,
    spl_token,
    token2022,
)
from chain.pubkeys import decode_base58
from chain.rpc.protocol import MAX_BASE58_TRANSACTION
from core.errors import CodecError

# Approve, Revoke and ApproveChecked are not modelled by the token codec; their account order
# is the program's: Approve [source, delegate, owner], ApproveChecked [source, mint, delegate,
# owner], Revoke [source, owner].
_APPROVE = 4
_REVOKE = 5
_APPROVE_CHECKED = 13


@dataclass(frozen=True, slots=True, order=True)
class TxRef:
    """Where a transaction sits in the chain: history is ordered by (slot, position)."""

    slot: int
    position: int
    signature: str = field(compare=False)
    block_time: dt.datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Balance:
    """A token account of ``mint`` as this transaction left it."""

    account: str
    mint: str
    owner: str | None
    amount: int
    closed: bool


@dataclass(frozen=True, slots=True)
class MintCreated:
    mint: str
    program: str
    decimals: int
    index: int


@dataclass(frozen=True, slots=True)
class MetadataSet:
    """Token-2022 token-metadata Initialize (in-mint metadata: ``mint`` is the metadata)."""

    mint: str
    update_authority: str | None
    name: str
    symbol: str
    uri: str
    index: int


@dataclass(frozen=True, slots=True)
class MetadataField:
    """Token-2022 UpdateField: ``field`` is ``name``, ``symbol``, ``uri`` or any other key."""

    mint: str
    field: str
    value: str
    index: int


@dataclass(frozen=True, slots=True)
class MetadataAuthority:
    mint: str
    update_authority: str | None
    index: int


@dataclass(frozen=True, slots=True)
class GroupCreated:
    """A Token-2022 collection (TokenGroup) mint: never an NFT itself."""

    mint: str
    update_authority: str | None
    index: int


@dataclass(frozen=True, slots=True)
class GroupMember:
    """InitializeMember: the program checked that the group's update authority signed."""

    mint: str
    group: str
    index: int


@dataclass(frozen=True, slots=True)
class MetaplexCreated:
    """CreateMetadataAccountV3; a creator counts as verified only when the program let the flag
    stand: it is the update authority and signed."""

    mint: str
    metadata: str
    update_authority: str
    name: str
    symbol: str
    uri: str
    creators: tuple[tuple[str, int, bool], ...]
    collection: str | None
    index: int


@dataclass(frozen=True, slots=True)
class CreatorVerified:
    """SignMetadata: ``creator`` signed the metadata at ``metadata`` (``mint`` when known)."""

    metadata: str
    mint: str | None
    creator: str
    index: int


@dataclass(frozen=True, slots=True)
class Minted:
    mint: str
    account: str
    amount: int
    index: int


@dataclass(frozen=True, slots=True)
class Burned:
    mint: str
    account: str
    amount: int
    index: int


@dataclass(frozen=True, slots=True)
class Closed:
    """CloseAccount of a token account or (Token-2022, supply 0) of a mint."""

    account: str
    index: int


@dataclass(frozen=True, slots=True)
class DelegateChanged:
    account: str
    delegate: str | None
    index: int


@dataclass(frozen=True, slots=True)
class FreezeChanged:
    account: str
    frozen: bool
    index: int


@dataclass(frozen=True, slots=True)
class ActivationMemo:
    """A memo ``aiw3:activate:<mint>``; ``signers`` are the accounts that provably signed it."""

    mint: str
    signers: tuple[str, ...]
    index: int


@dataclass(frozen=True, slots=True)
class Transferred:
    """The one token of ``mint`` moved between owners (derived from the balances)."""

    mint: str
    from_account: str
    to_account: str
    from_owner: str | None
    to_owner: str | None


Change = (
    MintCreated
    | MetadataSet
    | MetadataField
    | MetadataAuthority
    | GroupCreated
    | GroupMember
    | MetaplexCreated
    | CreatorVerified
    | Minted
    | Burned
    | Closed
    | DelegateChanged
    | FreezeChanged
    | ActivationMemo
)


@dataclass(frozen=True, slots=True)
class DecodedTx:
    ref: TxRef
    ok: bool
    signers: tuple[str, ...] = ()
    balances: tuple[Balance, ...] = ()
    changes: tuple[Change, ...] = ()
    transfers: tuple[Transferred, ...] = ()
    #: Instructions of known programs that did not decode (refused, not trusted).
    skipped: int = 0

    def mints(self) -> set[str]:
        """Every mint this transaction may have changed."""
        out = {b.mint for b in self.balances} | {t.mint for t in self.transfers}
        for change in self.changes:
            mint = getattr(change, "mint", None)
            if isinstance(mint, str):
                out.add(mint)
        return out


@dataclass(frozen=True, slots=True)
class RawInstruction:
    """One instruction in index form; ``stack_height`` 1 is top level."""

    program_id_index: int
    accounts: bytes
    data: bytes
    top_index: int


def decode_transaction(
    result: EncodedConfirmedTransactionWithStatusMeta, position: int
) -> DecodedTx:
    """Decode one ``getTransaction`` result found at ``position`` in its block."""
    inner = result.transaction
    tx = inner.transaction
    meta = inner.meta
    if not isinstance(tx, UiTransaction) or not isinstance(tx.message, UiRawMessage):
        raise CodecError("fetch transactions with encoding 'json'")
    block_time = (
        dt.datetime.fromtimestamp(result.block_time, dt.UTC)
        if result.block_time is not None
        else None
    )
    ref = TxRef(result.slot, position, str(tx.signatures[0]), block_time)
    if meta is None or meta.err is not None:
        return DecodedTx(ref, ok=False)
    message = tx.message
    keys = _account_keys(message, meta)
    signer_count = message.header.num_required_signatures
    return decode_parts(
        ref,
        keys,
        signer_count,
        _instructions(message, meta),
        pre=_balances(meta.pre_token_balances, keys),
        post=_balances(meta.post_token_balances, keys),
    )


def decode_parts(
    ref: TxRef,
    keys: Sequence[Pubkey],
    signer_count: int,
    instructions: Iterable[RawInstruction],
    *,
    pre: Sequence[tuple[str, str, str | None, int, int]],
    post: Sequence[tuple[str, str, str | None, int, int]],
) -> DecodedTx:
    """The decoding proper, on a successful transaction's parts: ``pre``/``post`` are
    ``(account, mint, owner, amount, decimals)`` token balances."""
    changes: list[Change] = []
    skipped = 0
    metadata_mints: dict[str, str] = {}
    pre_owners = {row[0]: row[2] for row in pre}
    for raw in instructions:
        try:
            decoded = decode_compiled(
                keys, raw.program_id_index, raw.accounts, raw.data, signer_count
            )
        except CodecError:
            skipped += 1
            continue
        if decoded is None:
            continue
        changes += _changes(decoded, raw.top_index, metadata_mints)
        spent = _spent_by_delegate(decoded, pre_owners)
        if spent is not None:
            changes.append(DelegateChanged(spent, None, raw.top_index))
    # SignMetadata names the metadata account only: resolve the mint from the same transaction.
    changes = [
        CreatorVerified(c.metadata, metadata_mints.get(c.metadata), c.creator, c.index)
        if isinstance(c, CreatorVerified) and c.mint is None
        else c
        for c in changes
    ]
    balances, transfers = _ownership(pre, post)
    signers = tuple(str(k) for k in keys[:signer_count])
    return DecodedTx(ref, True, signers, balances, tuple(changes), transfers, skipped)


# --- instructions ------------------------------------------------------------------------------


def _changes(ix: DecodedInstruction, index: int, metadata_mints: dict[str, str]) -> list[Change]:
    s = str
    match ix:
        case spl_token.InitializeMint() | spl_token.InitializeMint2():
            return [MintCreated(s(ix.mint), s(ix.program_id), ix.decimals, index)]
        case spl_token.MintTo() | spl_token.MintToChecked():
            return [Minted(s(ix.mint), s(ix.account), ix.amount, index)]
        case spl_token.Burn() | spl_token.BurnChecked():
            return [Burned(s(ix.mint), s(ix.account), ix.amount, index)]
        case spl_token.CloseAccount():
            return [Closed(s(ix.account), index)]
        case spl_token.FreezeAccount():
            return [FreezeChanged(s(ix.account), True, index)]
        case spl_token.ThawAccount():
            return [FreezeChanged(s(ix.account), False, index)]
        case spl_token.SetAuthority() if ix.authority_type == spl_token.AuthorityType.ACCOUNT_OWNER:
            # A new owner clears the delegate (the balances show the new owner).
            return [DelegateChanged(s(ix.target), None, index)]
        case spl_token.OtherTokenInstruction():
            return _other_token(ix, index)
        case token2022.MetadataInitialize():
            return [
                MetadataSet(
                    s(ix.metadata),
                    s(ix.update_authority),
                    ix.name,
                    ix.symbol,
                    ix.uri,
                    index,
                )
            ]
        case token2022.MetadataUpdateField():
            name = ix.field.name.lower() if isinstance(ix.field, token2022.BaseField) else ix.field
            return [MetadataField(s(ix.metadata), name, ix.value, index)]
        case token2022.MetadataUpdateAuthority():
            new = s(ix.new_authority) if ix.new_authority is not None else None
            return [MetadataAuthority(s(ix.metadata), new, index)]
        case token2022.GroupInitialize():
            authority = s(ix.update_authority) if ix.update_authority is not None else None
            return [GroupCreated(s(ix.group), authority, index)]
        case token2022.GroupInitializeMember():
            return [GroupMember(s(ix.member_mint), s(ix.group), index)]
        case memo.Memo():
            target = memo.parse_activation(ix)
            if target is None:
                return []
            return [ActivationMemo(s(target), tuple(s(k) for k in ix.signers), index)]
        case metaplex.CreateMetadataAccountV3():
            metadata_mints[s(ix.metadata)] = s(ix.mint)
            return [_metaplex_created(ix, index)]
        case metaplex.SignMetadata():
            return [CreatorVerified(s(ix.metadata), None, s(ix.creator), index)]
        case metaplex.BurnNft():
            return [Burned(s(ix.mint), s(ix.token_account), 1, index)]
        case ata.CreateAssociatedTokenAccount() | ata.RecoverNested():
            return []  # the balances show the account and its owner
    return []


def _spent_by_delegate(ix: DecodedInstruction, pre_owners: dict[str, str | None]) -> str | None:
    """The source account when its delegate (not its owner) moved or burnt the token: the one
    token was the whole delegated amount, so the program cleared the delegate."""
    match ix:
        case spl_token.Transfer() | spl_token.TransferChecked():
            account = str(ix.source)
        case spl_token.Burn() | spl_token.BurnChecked():
            account = str(ix.account)
        case _:
            return None
    owner = pre_owners.get(account)
    return account if owner is not None and owner != str(ix.authority) else None


def _other_token(ix: spl_token.OtherTokenInstruction, index: int) -> list[Change]:
    acc = ix.accounts
    if ix.kind == _APPROVE and len(acc) >= 3:
        return [DelegateChanged(str(acc[0]), str(acc[1]), index)]
    if ix.kind == _APPROVE_CHECKED and len(acc) >= 4:
        return [DelegateChanged(str(acc[0]), str(acc[2]), index)]
    if ix.kind == _REVOKE and len(acc) >= 2:
        return [DelegateChanged(str(acc[0]), None, index)]
    return []


def _metaplex_created(ix: metaplex.CreateMetadataAccountV3, index: int) -> MetaplexCreated:
    authority = str(ix.update_authority)
    creators = tuple(
        (
            str(c.address),
            c.share,
            # The program refuses a verified flag except for the signing update authority.
            c.verified and str(c.address) == authority and ix.update_authority_is_signer,
        )
        for c in ix.data.creators or ()
    )
    collection = str(ix.data.collection.key) if ix.data.collection is not None else None
    return MetaplexCreated(
        str(ix.mint),
        str(ix.metadata),
        authority,
        ix.data.name.rstrip("\x00"),
        ix.data.symbol.rstrip("\x00"),
        ix.data.uri.rstrip("\x00"),
        creators,
        collection,
        index,
    )


# --- ownership ---------------------------------------------------------------------------------

_BalanceRow = tuple[str, str, str | None, int, int]


def _ownership(
    pre: Sequence[_BalanceRow], post: Sequence[_BalanceRow]
) -> tuple[tuple[Balance, ...], tuple[Transferred, ...]]:
    """Post-state of every zero-decimal token account, and the NFT moves between owners."""
    before = {row[0]: row for row in pre if row[4] == 0}
    after = {row[0]: row for row in post if row[4] == 0}
    balances = [Balance(a, m, o, amount, False) for a, m, o, amount, _ in after.values()]
    balances += [Balance(a, m, o, 0, True) for a, m, o, _, _ in before.values() if a not in after]
    balances.sort(key=lambda b: b.account)
    transfers: list[Transferred] = []
    for mint in sorted({b.mint for b in balances}):
        old = _sole_holder(before.values(), mint)
        new = _sole_holder(after.values(), mint)
        if old is None or new is None:
            continue  # a mint (nothing held before) or a burn (nothing after)
        if old[0] != new[0] or old[2] != new[2]:
            transfers.append(Transferred(mint, old[0], new[0], old[2], new[2]))
    return tuple(balances), tuple(transfers)


def _sole_holder(rows: Iterable[_BalanceRow], mint: str) -> _BalanceRow | None:
    # Owner only from an account holding exactly the one token; anything else is not an NFT.
    holders = [row for row in rows if row[1] == mint and row[3] > 0]
    if len(holders) != 1 or holders[0][3] != 1:
        return None
    return holders[0]


# --- the json encoding -------------------------------------------------------------------------


def _account_keys(message: UiRawMessage, meta: UiTransactionStatusMeta) -> list[Pubkey]:
    keys = list(message.account_keys)
    loaded = meta.loaded_addresses
    if loaded is not None:
        # v0: static keys, then looked-up writable, then looked-up read-only addresses.
        keys += [Pubkey.from_string(str(k)) for k in loaded.writable]
        keys += [Pubkey.from_string(str(k)) for k in loaded.readonly]
    return keys


def _instructions(message: UiRawMessage, meta: UiTransactionStatusMeta) -> list[RawInstruction]:
    inner: dict[int, list[RawInstruction]] = {}
    for group in meta.inner_instructions or ():
        for ix in group.instructions:
            if isinstance(ix, UiCompiledInstruction):
                inner.setdefault(group.index, []).append(_raw(ix, group.index))
    out: list[RawInstruction] = []
    for i, ix in enumerate(message.instructions):
        out.append(_raw(ix, i))
        out += inner.get(i, [])
    return out


def _raw(ix: UiCompiledInstruction, top_index: int) -> RawInstruction:
    data = decode_base58(ix.data, max_chars=MAX_BASE58_TRANSACTION)
    if data is None:  # a node never sends this: the reply is not what it claims to be
        raise CodecError("instruction data is not base58", details={"index": top_index})
    return RawInstruction(ix.program_id_index, bytes(ix.accounts), data, top_index)


def _balances(
    rows: Sequence[UiTransactionTokenBalance] | None, keys: Sequence[Pubkey]
) -> list[_BalanceRow]:
    out: list[_BalanceRow] = []
    for row in rows or ():
        if not 0 <= row.account_index < len(keys):
            continue
        amount = int(row.ui_token_amount.amount)
        owner = str(row.owner) if row.owner is not None else None
        out.append(
            (
                str(keys[row.account_index]),
                str(row.mint),
                owner,
                amount,
                row.ui_token_amount.decimals,
            )
        )
    return out
