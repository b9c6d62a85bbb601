"""The ``Asset``: what the chain says about one NFT, whichever standard minted it.

``decode_asset`` turns a set of raw accounts (the mint, its metadata, its token accounts and,
for Token-2022, its collection's group mint) into one ``Asset``. The rules that matter to
partners are enforced here, once:

* the owner comes only from a token account of this mint holding exactly 1 token (a token
  account left with 0 tokens after a transfer says nothing about ownership);
* a mint that is closed (absent) or has supply 0 is burnt, and a burnt asset has no owner.

The indexer, the reconciler and the DAS API all use this model; it is frozen and serialises to
JSON with pubkeys as base58 strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from solders.account import Account
from solders.pubkey import Pubkey

from chain.codecs import metaplex, spl_token, token2022
from chain.codecs.spl_token import AccountState, MintState, TokenAccountState
from chain.programs import (
    SYSTEM_PROGRAM,
    TOKEN_2022_PROGRAM,
    TOKEN_METADATA_PROGRAM,
    TOKEN_PROGRAM,
)
from core.errors import CodecError, NotFound
from core.types import Slotted, StandardName

if TYPE_CHECKING:
    from chain.rpc import RpcClient


#: Token-2022 additional-metadata key holding the level.
LEVEL_FIELD: Final = "level"
#: Metaplex metadata has no extra fields: the level ends the name (``AIW3 Tech Chicken Lv1``).
_METAPLEX_LEVEL = re.compile(r" Lv(\S+)$")


@dataclass(frozen=True, slots=True)
class RawAccount:
    """One account as read from the chain (RPC or LiteSVM)."""

    address: Pubkey
    owner: Pubkey
    data: bytes
    lamports: int = 0

    @classmethod
    def from_solders(cls, address: Pubkey, account: Account) -> RawAccount:
        return cls(address, account.owner, bytes(account.data), account.lamports)


@dataclass(frozen=True, slots=True)
class AssetCreator:
    address: str
    share: int
    verified: bool


@dataclass(frozen=True, slots=True)
class AssetCollection:
    address: str
    verified: bool


@dataclass(frozen=True, slots=True)
class Asset:
    mint: str
    standard: StandardName
    token_program: str
    owner: str | None
    token_account: str | None
    amount: int
    supply: int
    decimals: int
    level: str | None
    name: str
    symbol: str
    uri: str
    creators: tuple[AssetCreator, ...] = field(default_factory=tuple)
    update_authority: str | None = None
    collection: AssetCollection | None = None
    token_standard: str | None = None
    mutable: bool = True
    burnt: bool = False
    frozen: bool = False
    delegate: str | None = None
    mint_authority: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["creators"] = [asdict(c) for c in self.creators]
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Asset:
        values = dict(data)
        values["standard"] = StandardName(values["standard"])
        values["creators"] = tuple(AssetCreator(**c) for c in values.get("creators") or ())
        coll = values.get("collection")
        values["collection"] = AssetCollection(**coll) if coll else None
        return cls(**values)

    def is_created_by(self, creators: Iterable[str]) -> bool:
        """True when one of ``creators`` is a verified creator of this asset."""
        wanted = set(creators)
        return any(c.verified and c.address in wanted for c in self.creators)


def _base58(key: Pubkey | None) -> str | None:
    return None if key is None else str(key)


def metaplex_name(title: str, level: str) -> str:
    """The on-chain name of a metaplex-standard NFT: at most 32 bytes, ending in ``Lv<level>``."""
    suffix = f" Lv{level}"
    budget = metaplex.MAX_NAME - len(suffix.encode())
    raw = title.encode()[: max(budget, 0)].decode("utf-8", errors="ignore").rstrip()
    return raw + suffix


def metaplex_level(name: str) -> str | None:
    match = _METAPLEX_LEVEL.search(name)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class _Holder:
    address: Pubkey
    state: TokenAccountState


def _holder(mint: Pubkey, token_program: Pubkey, accounts: Iterable[RawAccount]) -> _Holder | None:
    holders: list[_Holder] = []
    for acc in accounts:
        if acc.owner != token_program or acc.address == mint or not acc.data:
            continue
        size = len(acc.data)
        if token_program == TOKEN_PROGRAM:
            if size != spl_token.ACCOUNT_SIZE:
                continue  # a multisig or another mint: not a token account
            state = spl_token.decode_token_account(acc.data)
        else:
            if (
                size < spl_token.ACCOUNT_SIZE
                or size == spl_token.MULTISIG_SIZE
                or (
                    size > spl_token.ACCOUNT_SIZE
                    and acc.data[token2022.ACCOUNT_TYPE_OFFSET] != token2022.AccountType.ACCOUNT
                )
            ):
                continue  # a mint or a multisig: not a token account
            # Ownership needs only the base state; the extensions are not this asset's business.
            state = token2022.decode_account_base(acc.data)
        if state.mint != mint or state.state == AccountState.UNINITIALIZED:
            continue
        if state.amount == 1:
            holders.append(_Holder(acc.address, state))
    # Supply is 1 for an NFT, so at most one account can hold it; more means it is not one.
    return holders[0] if len(holders) == 1 else None


def decode_asset(
    mint: Pubkey | str, accounts: Iterable[RawAccount], *, standard: StandardName | None = None
) -> Asset:
    """Decode one NFT from the accounts read for it (extra, unrelated accounts are ignored).

    ``standard`` is a hint used only when the mint account is gone and nothing else tells.
    Raises ``NotFound`` when neither the mint nor its metadata is among ``accounts`` and
    ``CodecError`` when an account does not decode.
    """
    mint_key = mint if isinstance(mint, Pubkey) else Pubkey.from_string(mint)
    # RPC reports a closed account as absent or as an empty, zero-lamport one; a closed address
    # that later received lamports is an empty system account. None of them is a mint.
    accs = [a for a in accounts if a.data or (a.lamports and a.owner != SYSTEM_PROGRAM)]
    by_address = {a.address: a for a in accs}
    mint_acc = by_address.get(mint_key)
    mpl_acc = by_address.get(metaplex.metadata_pda(mint_key))
    if mpl_acc is not None and mpl_acc.owner != TOKEN_METADATA_PROGRAM:
        mpl_acc = None

    base: MintState | None = None
    ext_mint: token2022.Mint2022 | None = None
    if mint_acc is None:
        if mpl_acc is None and standard is None:
            raise NotFound(f"mint {mint_key} does not exist", details={"mint": str(mint_key)})
        token_program = TOKEN_2022_PROGRAM if standard == "token2022" else TOKEN_PROGRAM
    elif mint_acc.owner == TOKEN_PROGRAM:
        token_program = TOKEN_PROGRAM
        base = spl_token.decode_mint(mint_acc.data)
    elif mint_acc.owner == TOKEN_2022_PROGRAM:
        token_program = TOKEN_2022_PROGRAM
        ext_mint = token2022.decode_mint(mint_acc.data)
        base = ext_mint.base
    else:
        raise CodecError(
            f"{mint_key} is owned by {mint_acc.owner}, not a token program",
            details={"mint": str(mint_key), "owner": str(mint_acc.owner)},
        )
    if base is not None and not base.is_initialized:
        raise CodecError(f"mint {mint_key} is not initialized", details={"mint": str(mint_key)})

    burnt = base is None or base.supply == 0
    holder = None if burnt else _holder(mint_key, token_program, accs)
    common: dict[str, Any] = {
        "mint": str(mint_key),
        "token_program": str(token_program),
        "owner": _base58(holder.state.owner) if holder else None,
        "token_account": _base58(holder.address) if holder else None,
        "amount": holder.state.amount if holder else 0,
        "supply": base.supply if base else 0,
        "decimals": base.decimals if base else 0,
        "burnt": burnt,
        "frozen": bool(holder and holder.state.state == AccountState.FROZEN),
        "delegate": _base58(holder.state.delegate) if holder else None,
        "mint_authority": _base58(base.mint_authority) if base else None,
    }
    if mpl_acc is not None:
        return _from_metaplex(metaplex.decode_metadata(mpl_acc.data), common)
    if ext_mint is not None:
        return _from_token2022(mint_key, ext_mint, by_address, common)
    return Asset(
        standard=standard or StandardName.METAPLEX,
        level=None,
        name="",
        symbol="",
        uri="",
        mutable=False,
        **common,
    )


def _from_metaplex(meta: metaplex.Metadata, common: dict[str, Any]) -> Asset:
    collection = (
        AssetCollection(str(meta.collection.key), meta.collection.verified)
        if meta.collection
        else None
    )
    return Asset(
        standard=StandardName.METAPLEX,
        level=metaplex_level(meta.name),
        name=meta.name,
        symbol=meta.symbol,
        uri=meta.uri,
        creators=tuple(
            AssetCreator(str(c.address), c.share, c.verified) for c in meta.creators or ()
        ),
        update_authority=str(meta.update_authority),
        collection=collection,
        token_standard=meta.token_standard.label if meta.token_standard is not None else None,
        mutable=meta.is_mutable,
        **common,
    )


def _group_of(key: Pubkey, by_address: Mapping[Pubkey, RawAccount]) -> token2022.TokenGroup | None:
    acc = by_address.get(key)
    if acc is None or acc.owner != TOKEN_2022_PROGRAM:
        return None
    return token2022.decode_mint(acc.data).get(token2022.TokenGroup)


def _from_token2022(
    mint: Pubkey,
    ext: token2022.Mint2022,
    by_address: Mapping[Pubkey, RawAccount],
    common: dict[str, Any],
) -> Asset:
    # Metadata kept in a separate account (a pointer elsewhere) uses another program's layout;
    # AIW3 mints point at themselves, so only the in-mint extension is read.
    meta = ext.get(token2022.TokenMetadata)
    if meta is not None and meta.mint != mint:
        raise CodecError(
            f"token metadata in {mint} names another mint {meta.mint}",
            details={"mint": str(mint)},
        )
    member = ext.get(token2022.TokenGroupMember)
    collection = None
    group = None
    if member is not None and member.mint == mint:
        # Membership is written only by InitializeMember, which the group's update authority
        # must sign: the program itself verified it.
        collection = AssetCollection(str(member.group), True)
        group = _group_of(member.group, by_address)
    authority = meta.update_authority if meta else None
    creators: tuple[AssetCreator, ...] = ()
    if authority is not None:
        # Token-2022 metadata has no creator list and its update authority may be set without
        # that key's signature; the proof we can read on chain is membership of a group whose
        # (signing) update authority is that same key, so "verified" means exactly that.
        verified = group is not None and group.update_authority == authority
        creators = (AssetCreator(str(authority), 100, verified),)
    return Asset(
        standard=StandardName.TOKEN2022,
        level=meta.field(LEVEL_FIELD) if meta else None,
        name=meta.name if meta else "",
        symbol=meta.symbol if meta else "",
        uri=meta.uri if meta else "",
        creators=creators,
        update_authority=_base58(authority),
        collection=collection,
        token_standard=None,
        mutable=authority is not None,
        **common,
    )


async def fetch_asset(rpc: RpcClient, mint: Pubkey) -> Slotted[Asset]:
    """Read one NFT from the chain: its mint and metadata, the token accounts that hold any of
    it, and (Token-2022) its collection's group mint; then decode. The slot is the lowest that
    any of the reads reflects."""
    first_keys = [mint, metaplex.metadata_pda(mint)]
    first = await rpc.get_multiple_accounts(first_keys)
    slots = [first.slot]
    raws = [
        RawAccount.from_solders(k, a) for k, a in zip(first_keys, first.value, strict=True) if a
    ]
    more: list[Pubkey] = []
    mint_acc = first.value[0]
    if mint_acc is not None and mint_acc.owner in (TOKEN_PROGRAM, TOKEN_2022_PROGRAM):
        largest = await rpc.get_token_largest_accounts(mint)
        slots.append(largest.slot)
        # Only a non-empty account can name the owner; the decoder checks the amount again.
        more += [b.address for b in largest.value if b.amount.amount != "0"]
        if mint_acc.owner == TOKEN_2022_PROGRAM:
            member = token2022.decode_mint(bytes(mint_acc.data)).get(token2022.TokenGroupMember)
            if member is not None:
                more.append(member.group)
    if more:
        second = await rpc.get_multiple_accounts(more)
        slots.append(second.slot)
        raws += [
            RawAccount.from_solders(k, a) for k, a in zip(more, second.value, strict=True) if a
        ]
    return Slotted(min(slots), decode_asset(mint, raws))
