"""The ``Asset``: what the chain says about one NFT, whichever standard minted it.

``decode_asset`` turns a set of raw accounts (the mint, its Metaplex metadata and edition, its
token accounts) into one ``Asset``: facts only. The rules that matter to partners are enforced
here, once:

* an owner is named only for an NFT (supply 1, decimals 0, nobody able to mint another), and
  only from a token account of this mint holding that 1 token (a token account left with 0
  tokens after a transfer says nothing about ownership);
* a mint that is closed (absent) or has supply 0 is burnt, and a burnt asset has no owner;
* every mint control (freeze and close authority, permanent delegate, transfer hook, ...) is
  reported, never dropped;
* genuineness is ``Asset.verdict(collections=..., creators=...)``: only what our key signed
  proves it (membership of a trusted collection mint for ``token2022``, a trusted verified
  creator for ``metaplex``), and it fails closed on every control anyone else could hold.
  Update authorities prove nothing: anyone can hand one to our key without our signature.

The indexer, the reconciler and the DAS API all use this model; it is frozen and serialises to
JSON with pubkeys as base58 strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
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
    TOKEN_PROGRAMS,
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
class Verdict:
    """Whether an asset is a genuine AIW3 NFT for a given set of trusted keys, and why.

    ``reasons`` lists every fault found (each ``"code: explanation"``), empty when genuine;
    ``proof`` names the on-chain fact that proves a genuine one.
    """

    genuine: bool
    reasons: tuple[str, ...] = ()
    proof: str | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.split(":", 1)[0] for r in self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {"genuine": self.genuine, "reasons": list(self.reasons), "proof": self.proof}


@dataclass(frozen=True, slots=True)
class Asset:
    """What the chain says about one mint: facts only, no trust. Whether it is genuine depends
    on which collections and creators the caller trusts: ``verdict`` / ``is_genuine``."""

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
    #: Metaplex: the collection and its ``verified`` flag (a collection authority signed once);
    #: Token-2022: the group the in-mint member data names (the group's authority at the time
    #: signed). Neither proves who controls that collection now.
    collection: AssetCollection | None = None
    token_standard: str | None = None
    mutable: bool = True
    burnt: bool = False
    #: The holder's token account (only for an NFT: ``is_nft``).
    frozen: bool = False
    delegate: str | None = None
    mint_authority: str | None = None
    #: Supply 1, decimals 0 and nobody able to mint another: only then is an owner named.
    is_nft: bool = False
    freeze_authority: str | None = None
    # Token-2022 mint controls (None / False when the extension is absent).
    permanent_delegate: str | None = None
    close_authority: str | None = None
    transfer_hook: str | None = None
    non_transferable: bool = False
    default_state: str | None = None
    #: Where the MetadataPointer / GroupMemberPointer aim (an AIW3 NFT: at the mint itself).
    metadata_pointer: str | None = None
    member_pointer: str | None = None
    #: The program's names of the mint's and the holder account's extensions.
    extensions: tuple[str, ...] = ()
    account_extensions: tuple[str, ...] = ()
    #: Metaplex: ``master`` or ``print`` (the account at the edition PDA), its max supply.
    edition: str | None = None
    edition_max_supply: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["creators"] = [asdict(c) for c in self.creators]
        out["extensions"] = list(self.extensions)
        out["account_extensions"] = list(self.account_extensions)
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
        for key in ("extensions", "account_extensions"):
            values[key] = tuple(values.get(key) or ())
        return cls(**values)

    def is_created_by(
        self, creators: Iterable[str] = (), *, collections: Iterable[str] = ()
    ) -> bool:
        """Provenance alone: ``metaplex``, a verified creator (only its signature sets the flag)
        is one of ``creators``; ``token2022``, the in-mint member data names one of the trusted
        ``collections`` (only their update authority's signature adds a member). False once
        burnt. Says nothing about who controls the token: see ``verdict``."""
        if self.burnt:
            return False
        if self.standard == StandardName.TOKEN2022:
            wanted = set(collections)
            return self.collection is not None and self.collection.address in wanted
        wanted = set(creators)
        return any(c.verified and c.address in wanted for c in self.creators)

    def verdict(self, *, collections: Iterable[str] = (), creators: Iterable[str] = ()) -> Verdict:
        """Genuine only when the chain proves our key signed (a trusted collection's membership
        for ``token2022``, a trusted verified creator for ``metaplex``) and nothing lets anyone
        else mint, freeze, move, close or re-point it. Fails closed: anything unexpected is a
        reason."""
        return _judge(self, frozenset(collections), frozenset(creators))

    def is_genuine(self, *, collections: Iterable[str] = (), creators: Iterable[str] = ()) -> bool:
        return self.verdict(collections=collections, creators=creators).genuine


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
    extensions: tuple[str, ...] = ()


def _holder(mint: Pubkey, token_program: Pubkey, accounts: Sequence[RawAccount]) -> _Holder | None:
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
            # The base state first: other accounts' extensions are not this asset's business.
            state = token2022.decode_account_base(acc.data)
        if state.mint != mint or state.state == AccountState.UNINITIALIZED:
            continue
        if state.amount == 1:
            holders.append(_Holder(acc.address, state))
    # Supply is 1 for an NFT, so at most one account can hold it; more means it is not one.
    if len(holders) != 1:
        return None
    found = holders[0]
    if token_program == TOKEN_2022_PROGRAM:
        raw = next(a for a in accounts if a.address == found.address)
        # The holder's own extensions matter: a transfer-hook or pausable marker, a CPI guard.
        return _Holder(found.address, found.state, token2022.decode_account(raw.data).names())
    return found


def decode_asset(
    mint: Pubkey | str, accounts: Iterable[RawAccount], *, standard: StandardName | None = None
) -> Asset:
    """Decode one mint from the accounts read for it (extra, unrelated accounts are ignored):
    the mint, its Metaplex metadata and edition PDAs when present, its token accounts.

    ``standard`` is a hint used only when the mint account is gone and nothing else tells.
    Raises ``NotFound`` when neither the mint nor its metadata is among ``accounts`` and
    ``CodecError`` when an account does not decode or the metadata names another mint.
    """
    mint_key = mint if isinstance(mint, Pubkey) else Pubkey.from_string(mint)
    # RPC reports a closed account as absent or as an empty, zero-lamport one; a closed address
    # that later received lamports is an empty system account. None of them is a mint.
    accs = [a for a in accounts if a.data or (a.lamports and a.owner != SYSTEM_PROGRAM)]
    by_address = {a.address: a for a in accs}
    mint_acc = by_address.get(mint_key)
    mpl_acc = _metadata_program_account(by_address, metaplex.metadata_pda(mint_key))
    edition_acc = _metadata_program_account(by_address, metaplex.master_edition_pda(mint_key))

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

    edition = metaplex.decode_edition(edition_acc.data) if edition_acc is not None else None
    burnt = base is None or base.supply == 0
    is_nft = (
        base is not None
        and base.supply == 1
        and base.decimals == 0
        and (
            base.mint_authority is None
            # The edition PDA holds a Metaplex NFT's mint authority: only the metadata program
            # can sign for it, and it never mints a second token of an original.
            or base.mint_authority == metaplex.master_edition_pda(mint_key)
        )
    )
    # Only an NFT has an owner: the holder of 1 of 3 tokens, or of 0.000001, owns nothing.
    holder = _holder(mint_key, token_program, accs) if is_nft else None
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
        "freeze_authority": _base58(base.freeze_authority) if base else None,
        "is_nft": is_nft,
        "account_extensions": holder.extensions if holder else (),
        **(_mint_controls(ext_mint) if ext_mint is not None else {}),
        **_edition_facts(edition),
    }
    if mpl_acc is not None:
        meta = metaplex.decode_metadata(mpl_acc.data)
        if meta.mint != mint_key:
            raise CodecError(
                f"metaplex metadata of {mint_key} names another mint {meta.mint}",
                details={"mint": str(mint_key)},
            )
        return _from_metaplex(meta, common)
    if ext_mint is not None:
        return _from_token2022(mint_key, ext_mint, common)
    return Asset(
        standard=standard or StandardName.METAPLEX,
        level=None,
        name="",
        symbol="",
        uri="",
        mutable=False,
        **common,
    )


def _metadata_program_account(
    by_address: Mapping[Pubkey, RawAccount], key: Pubkey
) -> RawAccount | None:
    # Anyone can fill an account with any bytes; only the metadata program's own are its data.
    acc = by_address.get(key)
    return acc if acc is not None and acc.owner == TOKEN_METADATA_PROGRAM else None


def _mint_controls(ext: token2022.Mint2022) -> dict[str, Any]:
    """The Token-2022 extensions that decide who else can act on the token, by name."""
    close = ext.get(token2022.MintCloseAuthority)
    delegate = ext.get(token2022.PermanentDelegate)
    hook = ext.get(token2022.TransferHook)
    default = ext.get(token2022.DefaultAccountState)
    metadata_pointer = ext.get(token2022.MetadataPointer)
    member_pointer = ext.get(token2022.GroupMemberPointer)
    return {
        "extensions": ext.names(),
        "close_authority": _base58(close.close_authority) if close else None,
        "permanent_delegate": _base58(delegate.delegate) if delegate else None,
        "transfer_hook": _base58(hook.program_id) if hook else None,
        "non_transferable": ext.get(token2022.NonTransferable) is not None,
        "default_state": default.state.name.lower() if default else None,
        "metadata_pointer": (
            _base58(metadata_pointer.metadata_address) if metadata_pointer else None
        ),
        "member_pointer": _base58(member_pointer.member_address) if member_pointer else None,
    }


def _edition_facts(edition: metaplex.MasterEdition | metaplex.Edition | None) -> dict[str, Any]:
    if isinstance(edition, metaplex.MasterEdition):
        return {"edition": "master", "edition_max_supply": edition.max_supply}
    if isinstance(edition, metaplex.Edition):
        return {"edition": "print"}
    return {}


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


def _from_token2022(mint: Pubkey, ext: token2022.Mint2022, common: dict[str, Any]) -> Asset:
    # Only the in-mint extensions are read. A pointer aimed elsewhere is reported (a wallet
    # following it would show another account's data) and makes the asset not genuine.
    meta = ext.get(token2022.TokenMetadata)
    if meta is not None and meta.mint != mint:
        raise CodecError(
            f"token metadata in {mint} names another mint {meta.mint}",
            details={"mint": str(mint)},
        )
    member = ext.get(token2022.TokenGroupMember)
    collection = None
    if member is not None and member.mint == mint:
        # The program writes membership only with the group's then update authority signing.
        collection = AssetCollection(str(member.group), True)
    authority = meta.update_authority if meta else None
    # Token-2022 metadata has no creator list, and its update authority can be handed to any
    # key without that key's signature: reported, never verified.
    creators = (AssetCreator(str(authority), 100, False),) if authority is not None else ()
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


# --- genuineness -------------------------------------------------------------------------------

#: The only mint extensions an AIW3 Token-2022 NFT carries, and the only holder-account one.
AIW3_MINT_EXTENSIONS: Final = frozenset(
    {"MetadataPointer", "TokenMetadata", "GroupMemberPointer", "TokenGroupMember"}
)
AIW3_ACCOUNT_EXTENSIONS: Final = frozenset({"ImmutableOwner"})
#: Token standards a Metaplex original can carry.
_METAPLEX_NFT_STANDARDS: Final = frozenset({None, "NonFungible", "ProgrammableNonFungible"})


def _judge(asset: Asset, collections: frozenset[str], creators: frozenset[str]) -> Verdict:
    reasons = _supply_faults(asset) + _extension_faults(asset)
    if asset.standard == StandardName.TOKEN2022:
        reasons += _token2022_faults(asset, collections)
        proof = (
            f"member of the trusted collection {asset.collection.address}"
            if (asset.collection is not None and asset.collection.address in collections)
            else None
        )
    else:
        reasons += _metaplex_faults(asset, creators)
        trusted = [c.address for c in asset.creators if c.verified and c.address in creators]
        proof = f"{trusted[0]} signed as verified creator" if trusted else None
    if reasons:
        return Verdict(False, tuple(reasons))
    return Verdict(True, (), proof)


def _supply_faults(asset: Asset) -> list[str]:
    if asset.burnt:
        return ["burnt: the mint has no supply (or is closed)"]
    out = []
    if asset.supply != 1:
        out.append(f"supply: {asset.supply} tokens exist; an NFT has exactly 1")
    if asset.decimals != 0:
        out.append(f"decimals: {asset.decimals}; an NFT has 0")
    return out


def _extension_faults(asset: Asset) -> list[str]:
    named = {
        "PermanentDelegate": f"permanent_delegate: {asset.permanent_delegate} can move or burn "
        "the token without the holder",
        "MintCloseAuthority": f"close_authority: {asset.close_authority} can close the mint and "
        "re-create it at the same address",
        "TransferHook": f"transfer_hook: program {asset.transfer_hook} is called on every "
        "transfer and may refuse it",
        "NonTransferable": "non_transferable: the token can never leave its account",
        "DefaultAccountState": f"default_state: new token accounts start {asset.default_state}",
    }
    allowed = AIW3_MINT_EXTENSIONS if asset.standard == StandardName.TOKEN2022 else frozenset()
    out = []
    for name in dict.fromkeys(asset.extensions):
        if name in allowed:
            continue
        if name in named:
            out.append(named[name])
        elif name.startswith("Unknown("):
            out.append(f"unknown_extension: the mint carries {name}")
        else:
            out.append(f"extension: the mint carries {name}, which an AIW3 NFT never does")
    out += [
        f"account_extension: the holder's account carries {name}"
        for name in dict.fromkeys(asset.account_extensions)
        if name not in AIW3_ACCOUNT_EXTENSIONS
    ]
    return out


def _token2022_faults(asset: Asset, collections: frozenset[str]) -> list[str]:
    out = []
    if asset.token_program != str(TOKEN_2022_PROGRAM):
        out.append("token_program: a token2022 asset must be a Token-2022 mint")
    if asset.mint_authority is not None:
        out.append(f"mint_authority: {asset.mint_authority} can mint more")
    if asset.freeze_authority is not None:
        out.append(f"freeze_authority: {asset.freeze_authority} can freeze the holder's account")
    if asset.metadata_pointer != asset.mint:
        out.append(f"metadata_pointer: points at {asset.metadata_pointer}, not at the mint itself")
    if "TokenMetadata" not in asset.extensions:
        out.append("metadata: the mint holds no TokenMetadata")
    if asset.member_pointer != asset.mint:
        out.append(f"member_pointer: points at {asset.member_pointer}, not at the mint itself")
    if asset.collection is None:
        out.append("collection: the mint is no member of any collection")
    elif asset.collection.address not in collections:
        out.append(f"collection: {asset.collection.address} is not a trusted collection")
    return out


def _metaplex_faults(asset: Asset, creators: frozenset[str]) -> list[str]:
    out = []
    if asset.update_authority is None:
        out.append("metadata: no Metaplex metadata account")
    edition_pda = str(metaplex.master_edition_pda(Pubkey.from_string(asset.mint)))
    if asset.edition == "print":
        out.append("edition: a print edition, not the original")
    elif asset.edition != "master":
        out.append(f"edition: no master edition at {edition_pda}")
    elif asset.edition_max_supply != 0:
        limit = "unlimited" if asset.edition_max_supply is None else asset.edition_max_supply
        out.append(f"edition: max supply {limit}, so prints can be made")
    # The master edition holds the mint authority and never mints a second token.
    if asset.mint_authority not in (None, edition_pda):
        out.append(f"mint_authority: {asset.mint_authority} can mint more")
    # Nobody at all (None) may freeze, or only the master edition (as for every Metaplex NFT).
    if asset.freeze_authority not in (None, edition_pda):
        out.append(f"freeze_authority: {asset.freeze_authority} can freeze the holder's account")
    if asset.token_standard not in _METAPLEX_NFT_STANDARDS:
        out.append(f"token_standard: {asset.token_standard} is not a non-fungible original")
    if not any(c.verified and c.address in creators for c in asset.creators):
        out.append("creator: no trusted creator signed (verified) this metadata")
    return out


#: Snapshots taken before giving up on finding the holder of an NFT (the token moved to an
#: account the largest-accounts list did not name yet).
_FETCH_ATTEMPTS: Final = 3


async def fetch_asset(rpc: RpcClient, mint: Pubkey) -> Slotted[Asset]:
    """Read one mint from the chain and decode it from one consistent snapshot.

    Everything decoded (the mint, its Metaplex metadata and edition PDAs, every token account
    the largest-accounts list names, emptied ones included) comes from a single
    getMultipleAccounts call, so it all reflects one slot, the slot reported: a burn or a
    transfer between two reads can no longer give "not burnt, no owner". When an NFT's holder
    is not among the accounts named (it moved to a new account meanwhile), the list and the
    snapshot are read again, a bounded number of times.
    """
    fixed = [mint, metaplex.metadata_pda(mint), metaplex.master_edition_pda(mint)]
    snapshot = await rpc.get_multiple_accounts(fixed)
    keys = fixed
    mint_acc = snapshot.value[0]
    if mint_acc is not None and mint_acc.owner in TOKEN_PROGRAMS:
        for _ in range(_FETCH_ATTEMPTS):
            largest = await rpc.get_token_largest_accounts(mint)
            # Each account once, whatever the list repeats.
            keys = list(dict.fromkeys([*fixed, *(b.address for b in largest.value)]))
            snapshot = await rpc.get_multiple_accounts(keys)
            asset = decode_asset(mint, _raw(keys, snapshot.value))
            if not (asset.is_nft and asset.owner is None):
                return Slotted(snapshot.slot, asset)
    return Slotted(snapshot.slot, decode_asset(mint, _raw(keys, snapshot.value)))


def _raw(keys: Sequence[Pubkey], accounts: Sequence[Account | None]) -> list[RawAccount]:
    return [RawAccount.from_solders(k, a) for k, a in zip(keys, accounts, strict=True) if a]
