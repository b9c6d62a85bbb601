"""Token-2022: mint/account TLV extensions, pointer instructions, and the token-metadata and
token-group interface instructions (8-byte sha256-derived discriminators).

Account layout: the 82-byte base mint (or 165-byte base account), zero padding up to byte 165,
one account-type byte, then TLV entries (u16 type, u16 length, value) from byte 166.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import TypeVar

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from chain.codecs import borsh, spl_token
from chain.codecs.spl_token import AccountState, MintState, TokenAccountState
from chain.programs import TOKEN_2022_PROGRAM
from core.errors import CodecError

BASE_SIZE = spl_token.ACCOUNT_SIZE  # the account-type byte sits right after the longer base
ACCOUNT_TYPE_OFFSET = BASE_SIZE
TLV_START = BASE_SIZE + 1
TLV_HEADER = 4
_EXTENSION_TYPE_SIZE = 2


class AccountType(IntEnum):
    UNINITIALIZED = 0
    MINT = 1
    ACCOUNT = 2


class ExtensionType(IntEnum):
    """Every extension type the program defines (spl-token-2022 ``ExtensionType``)."""

    UNINITIALIZED = 0
    TRANSFER_FEE_CONFIG = 1
    TRANSFER_FEE_AMOUNT = 2
    MINT_CLOSE_AUTHORITY = 3
    CONFIDENTIAL_TRANSFER_MINT = 4
    CONFIDENTIAL_TRANSFER_ACCOUNT = 5
    DEFAULT_ACCOUNT_STATE = 6
    IMMUTABLE_OWNER = 7
    MEMO_TRANSFER = 8
    NON_TRANSFERABLE = 9
    INTEREST_BEARING_CONFIG = 10
    CPI_GUARD = 11
    PERMANENT_DELEGATE = 12
    NON_TRANSFERABLE_ACCOUNT = 13
    TRANSFER_HOOK = 14
    TRANSFER_HOOK_ACCOUNT = 15
    CONFIDENTIAL_TRANSFER_FEE_CONFIG = 16
    CONFIDENTIAL_TRANSFER_FEE_AMOUNT = 17
    METADATA_POINTER = 18
    TOKEN_METADATA = 19
    GROUP_POINTER = 20
    TOKEN_GROUP = 21
    GROUP_MEMBER_POINTER = 22
    TOKEN_GROUP_MEMBER = 23
    CONFIDENTIAL_MINT_BURN = 24
    SCALED_UI_AMOUNT_CONFIG = 25
    PAUSABLE_CONFIG = 26
    PAUSABLE_ACCOUNT = 27

    @property
    def label(self) -> str:
        """The program's own name (``PermanentDelegate``), as explorers and agave show it."""
        return "".join(part.capitalize() for part in self.name.split("_"))


def extension_name(ext_type: int) -> str:
    """``PermanentDelegate`` for a type the program defines, ``Unknown(99)`` otherwise."""
    try:
        return ExtensionType(ext_type).label
    except ValueError:
        return f"Unknown({ext_type})"


# --- extensions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetadataPointer:
    authority: Pubkey | None
    metadata_address: Pubkey | None


@dataclass(frozen=True, slots=True)
class GroupPointer:
    authority: Pubkey | None
    group_address: Pubkey | None


@dataclass(frozen=True, slots=True)
class GroupMemberPointer:
    authority: Pubkey | None
    member_address: Pubkey | None


@dataclass(frozen=True, slots=True)
class TokenGroup:
    update_authority: Pubkey | None
    mint: Pubkey
    size: int
    max_size: int


@dataclass(frozen=True, slots=True)
class TokenGroupMember:
    mint: Pubkey
    group: Pubkey
    member_number: int


@dataclass(frozen=True, slots=True)
class TokenMetadata:
    update_authority: Pubkey | None
    mint: Pubkey
    name: str
    symbol: str
    uri: str
    additional_metadata: tuple[tuple[str, str], ...] = ()

    def field(self, key: str) -> str | None:
        """The value of one additional field (the last one wins, as in the program)."""
        found = None
        for k, v in self.additional_metadata:
            if k == key:
                found = v
        return found


@dataclass(frozen=True, slots=True)
class ImmutableOwner:
    pass


# The mint controls that decide who can move, freeze, burn or close a token: decoded, so that
# nothing carrying one reads like a plain NFT.


@dataclass(frozen=True, slots=True)
class MintCloseAuthority:
    """Who may close the mint once its supply is 0 (and so re-create it at the same address)."""

    close_authority: Pubkey | None


@dataclass(frozen=True, slots=True)
class PermanentDelegate:
    """A delegate over every token account of the mint: it transfers or burns without the holder."""

    delegate: Pubkey | None


@dataclass(frozen=True, slots=True)
class TransferHook:
    """Every transfer calls ``program_id``, which may refuse it."""

    authority: Pubkey | None
    program_id: Pubkey | None


@dataclass(frozen=True, slots=True)
class NonTransferable:
    """Soul-bound: the token can never leave the account it was minted to."""


@dataclass(frozen=True, slots=True)
class DefaultAccountState:
    """The state every new token account of the mint starts in (frozen: the freeze authority
    must thaw it before it can be used)."""

    state: AccountState


@dataclass(frozen=True, slots=True)
class UnknownExtension:
    """An extension this codec keeps as bytes: one the program defines but AIW3 never uses
    (``name`` says which), or a type it does not define."""

    extension_type: int
    data: bytes

    @property
    def name(self) -> str:
        return extension_name(self.extension_type)


Extension = (
    MetadataPointer
    | GroupPointer
    | GroupMemberPointer
    | TokenGroup
    | TokenGroupMember
    | TokenMetadata
    | ImmutableOwner
    | MintCloseAuthority
    | PermanentDelegate
    | TransferHook
    | NonTransferable
    | DefaultAccountState
    | UnknownExtension
)
E = TypeVar("E", bound=Extension)

_FIXED_SIZES = {
    ExtensionType.MINT_CLOSE_AUTHORITY: 32,
    ExtensionType.DEFAULT_ACCOUNT_STATE: 1,
    ExtensionType.NON_TRANSFERABLE: 0,
    ExtensionType.PERMANENT_DELEGATE: 32,
    ExtensionType.TRANSFER_HOOK: 64,
    ExtensionType.IMMUTABLE_OWNER: 0,
    ExtensionType.METADATA_POINTER: 64,
    ExtensionType.GROUP_POINTER: 64,
    ExtensionType.GROUP_MEMBER_POINTER: 64,
    ExtensionType.TOKEN_GROUP: 80,
    ExtensionType.TOKEN_GROUP_MEMBER: 72,
}


def ext_name(ext: Extension) -> str:
    """The program's name of one decoded extension (``TokenGroupMember``)."""
    if isinstance(ext, UnknownExtension):
        return ext.name
    return extension_name(encode_extension(ext)[0])


def encode_token_metadata(meta: TokenMetadata) -> bytes:
    return (
        borsh.optional_nonzero_pubkey(meta.update_authority)
        + bytes(meta.mint)
        + borsh.string(meta.name)
        + borsh.string(meta.symbol)
        + borsh.string(meta.uri)
        + borsh.vec(meta.additional_metadata, lambda kv: borsh.string(kv[0]) + borsh.string(kv[1]))
    )


def decode_token_metadata(data: bytes) -> TokenMetadata:
    r = borsh.Reader(data, "token metadata")
    authority = r.optional_nonzero_pubkey("update_authority")
    mint = r.pubkey("mint")
    name = r.string("name")
    symbol = r.string("symbol")
    uri = r.string("uri")
    extra = r.vec(lambda: (r.string("key"), r.string("value")), "additional_metadata")
    r.end()
    return TokenMetadata(authority, mint, name, symbol, uri, tuple(extra))


def encode_extension(ext: Extension) -> tuple[int, bytes]:
    """The (type, value bytes) of one TLV entry."""
    match ext:
        case MetadataPointer():
            value = borsh.optional_nonzero_pubkey(ext.authority) + borsh.optional_nonzero_pubkey(
                ext.metadata_address
            )
            return ExtensionType.METADATA_POINTER, value
        case GroupPointer():
            value = borsh.optional_nonzero_pubkey(ext.authority) + borsh.optional_nonzero_pubkey(
                ext.group_address
            )
            return ExtensionType.GROUP_POINTER, value
        case GroupMemberPointer():
            value = borsh.optional_nonzero_pubkey(ext.authority) + borsh.optional_nonzero_pubkey(
                ext.member_address
            )
            return ExtensionType.GROUP_MEMBER_POINTER, value
        case TokenGroup():
            value = (
                borsh.optional_nonzero_pubkey(ext.update_authority)
                + bytes(ext.mint)
                + borsh.u64(ext.size)
                + borsh.u64(ext.max_size)
            )
            return ExtensionType.TOKEN_GROUP, value
        case TokenGroupMember():
            value = bytes(ext.mint) + bytes(ext.group) + borsh.u64(ext.member_number)
            return ExtensionType.TOKEN_GROUP_MEMBER, value
        case TokenMetadata():
            return ExtensionType.TOKEN_METADATA, encode_token_metadata(ext)
        case ImmutableOwner():
            return ExtensionType.IMMUTABLE_OWNER, b""
        case MintCloseAuthority():
            return ExtensionType.MINT_CLOSE_AUTHORITY, borsh.optional_nonzero_pubkey(
                ext.close_authority
            )
        case PermanentDelegate():
            return ExtensionType.PERMANENT_DELEGATE, borsh.optional_nonzero_pubkey(ext.delegate)
        case TransferHook():
            value = borsh.optional_nonzero_pubkey(ext.authority) + borsh.optional_nonzero_pubkey(
                ext.program_id
            )
            return ExtensionType.TRANSFER_HOOK, value
        case NonTransferable():
            return ExtensionType.NON_TRANSFERABLE, b""
        case DefaultAccountState():
            return ExtensionType.DEFAULT_ACCOUNT_STATE, borsh.u8(ext.state)
        case UnknownExtension():
            return ext.extension_type, ext.data


def decode_extension(ext_type: int, value: bytes) -> Extension:
    fixed = _FIXED_SIZES.get(ext_type)  # type: ignore[call-overload]
    if fixed is not None and len(value) != fixed:
        raise CodecError(
            f"extension {ext_type} must be {fixed} bytes, got {len(value)}",
            details={"extension": ext_type, "size": len(value)},
        )
    r = borsh.Reader(value, f"extension {ext_type}")
    if ext_type == ExtensionType.METADATA_POINTER:
        return MetadataPointer(r.optional_nonzero_pubkey(), r.optional_nonzero_pubkey())
    if ext_type == ExtensionType.GROUP_POINTER:
        return GroupPointer(r.optional_nonzero_pubkey(), r.optional_nonzero_pubkey())
    if ext_type == ExtensionType.GROUP_MEMBER_POINTER:
        return GroupMemberPointer(r.optional_nonzero_pubkey(), r.optional_nonzero_pubkey())
    if ext_type == ExtensionType.TOKEN_GROUP:
        return TokenGroup(r.optional_nonzero_pubkey(), r.pubkey(), r.u64(), r.u64())
    if ext_type == ExtensionType.TOKEN_GROUP_MEMBER:
        return TokenGroupMember(r.pubkey(), r.pubkey(), r.u64())
    if ext_type == ExtensionType.TOKEN_METADATA:
        return decode_token_metadata(value)
    if ext_type == ExtensionType.IMMUTABLE_OWNER:
        return ImmutableOwner()
    if ext_type == ExtensionType.MINT_CLOSE_AUTHORITY:
        return MintCloseAuthority(r.optional_nonzero_pubkey())
    if ext_type == ExtensionType.PERMANENT_DELEGATE:
        return PermanentDelegate(r.optional_nonzero_pubkey())
    if ext_type == ExtensionType.TRANSFER_HOOK:
        return TransferHook(r.optional_nonzero_pubkey(), r.optional_nonzero_pubkey())
    if ext_type == ExtensionType.NON_TRANSFERABLE:
        return NonTransferable()
    if ext_type == ExtensionType.DEFAULT_ACCOUNT_STATE:
        return DefaultAccountState(_account_state(r.u8("state")))
    return UnknownExtension(ext_type, bytes(value))


def _account_state(value: int) -> AccountState:
    try:
        return AccountState(value)
    except ValueError:
        raise CodecError(
            f"default account state {value} is unknown", details={"state": value}
        ) from None


def encode_tlv(extensions: Sequence[Extension]) -> bytes:
    out = bytearray()
    for ext in extensions:
        ext_type, value = encode_extension(ext)
        out += borsh.u16(ext_type) + borsh.u16(len(value)) + value
    return bytes(out)


def decode_tlv(data: bytes) -> tuple[Extension, ...]:
    r = borsh.Reader(data, "tlv")
    out: list[Extension] = []
    # As the program's get_tlv_data_info: a single byte left, or a zero type, is free space (a
    # later realloc may use it); a non-zero type without room for its length is malformed.
    while r.remaining >= 2:
        ext_type = r.u16("extension type")
        if ext_type == ExtensionType.UNINITIALIZED:
            break
        length = r.u16("extension length")
        out.append(decode_extension(ext_type, r.take(length, f"extension {ext_type} value")))
    return tuple(out)


def tlv_size(ext: Extension) -> int:
    return TLV_HEADER + len(encode_extension(ext)[1])


# --- accounts ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mint2022:
    base: MintState
    extensions: tuple[Extension, ...] = ()

    def get(self, kind: type[E]) -> E | None:
        for ext in self.extensions:
            if isinstance(ext, kind):
                return ext
        return None

    def names(self) -> tuple[str, ...]:
        """The program's names of the extensions, in account order."""
        return tuple(ext_name(e) for e in self.extensions)


@dataclass(frozen=True, slots=True)
class Account2022:
    base: TokenAccountState
    extensions: tuple[Extension, ...] = ()

    def get(self, kind: type[E]) -> E | None:
        for ext in self.extensions:
            if isinstance(ext, kind):
                return ext
        return None

    def names(self) -> tuple[str, ...]:
        return tuple(ext_name(e) for e in self.extensions)


def _split(data: bytes, base_size: int, expected: AccountType, what: str) -> tuple[bytes, bytes]:
    if len(data) == spl_token.MULTISIG_SIZE:
        # The program refuses this length for mints and token accounts alike (it is how a
        # multisig is told apart), and never grows an extended account to it.
        raise CodecError(
            f"Token-2022 {what} of {len(data)} bytes: that is a multisig's size",
            details={"size": len(data)},
        )
    if len(data) == base_size:
        return data, b""
    if len(data) <= TLV_START - 1:
        raise CodecError(
            f"Token-2022 {what} of {len(data)} bytes is neither {base_size} nor extended",
            details={"size": len(data)},
        )
    if any(data[base_size:ACCOUNT_TYPE_OFFSET]):
        raise CodecError(f"Token-2022 {what}: padding after the base is not zero")
    account_type = data[ACCOUNT_TYPE_OFFSET]
    if account_type != expected:
        raise CodecError(
            f"Token-2022 {what}: account type is {account_type}, expected {int(expected)}",
            details={"account_type": account_type},
        )
    return data[:base_size], data[TLV_START:]


def decode_mint(data: bytes) -> Mint2022:
    """A Token-2022 mint (also accepts a plain 82-byte mint: no extensions)."""
    base, tlv = _split(bytes(data), spl_token.MINT_SIZE, AccountType.MINT, "mint")
    return Mint2022(spl_token.read_mint_base(borsh.Reader(base, "mint")), decode_tlv(tlv))


def decode_account(data: bytes) -> Account2022:
    """A Token-2022 token account (a plain 165-byte one has no extensions)."""
    base, tlv = _split(bytes(data), spl_token.ACCOUNT_SIZE, AccountType.ACCOUNT, "token account")
    state = spl_token.read_account_base(borsh.Reader(base, "token account"))
    return Account2022(state, decode_tlv(tlv))


def decode_mint_base(data: bytes) -> MintState:
    """A Token-2022 (or plain) mint's base state, its extensions checked for nothing and left
    undecoded: what an index needs (supply, decimals, authorities) without paying for them."""
    base, _ = _split(bytes(data), spl_token.MINT_SIZE, AccountType.MINT, "mint")
    return spl_token.read_mint_base(borsh.Reader(base, "mint"))


def decode_account_base(data: bytes) -> TokenAccountState:
    """A Token-2022 (or plain) token account's base state, extensions left undecoded."""
    base, _ = _split(bytes(data), spl_token.ACCOUNT_SIZE, AccountType.ACCOUNT, "token account")
    return spl_token.read_account_base(borsh.Reader(base, "token account"))


def _with_tlv(base: bytes, account_type: AccountType, extensions: Sequence[Extension]) -> bytes:
    if not extensions:
        return base
    padding = bytes(ACCOUNT_TYPE_OFFSET - len(base))
    packed = base + padding + bytes([account_type]) + encode_tlv(extensions)
    # Like the program, never 355 bytes: the two extra zero bytes read back as free space.
    return packed + bytes(account_size(len(packed)) - len(packed))


def encode_mint(mint: Mint2022) -> bytes:
    return _with_tlv(spl_token.encode_mint(mint.base), AccountType.MINT, mint.extensions)


def encode_account(account: Account2022) -> bytes:
    return _with_tlv(
        spl_token.encode_token_account(account.base), AccountType.ACCOUNT, account.extensions
    )


def account_size(packed_len: int) -> int:
    """The size the program gives an extended account whose TLV data ends at ``packed_len``:
    the same, except that a multisig's length (355) gets two more bytes so that the account
    cannot be mistaken for one (``adjust_len_for_multisig``)."""
    if packed_len == spl_token.MULTISIG_SIZE:
        return packed_len + _EXTENSION_TYPE_SIZE
    return packed_len


def mint_size(extensions: Sequence[Extension]) -> int:
    """Account size of a mint holding exactly these extensions, as the program computes it
    (for the fixed ones when allocating, for the variable ones when it reallocates)."""
    if not extensions:
        return spl_token.MINT_SIZE
    return account_size(TLV_START + sum(tlv_size(e) for e in extensions))


# --- instructions ------------------------------------------------------------------------------


def _discriminator(preimage: str) -> bytes:
    return hashlib.sha256(preimage.encode()).digest()[:8]


METADATA_INITIALIZE = _discriminator("spl_token_metadata_interface:initialize_account")
METADATA_UPDATE_FIELD = _discriminator("spl_token_metadata_interface:updating_field")
METADATA_UPDATE_AUTHORITY = _discriminator("spl_token_metadata_interface:update_the_authority")
METADATA_REMOVE_KEY = _discriminator("spl_token_metadata_interface:remove_key_ix")
GROUP_INITIALIZE = _discriminator("spl_token_group_interface:initialize_token_group")
GROUP_INITIALIZE_MEMBER = _discriminator("spl_token_group_interface:initialize_member")
GROUP_UPDATE_MAX_SIZE = _discriminator("spl_token_group_interface:update_group_max_size")
GROUP_UPDATE_AUTHORITY = _discriminator("spl_token_group_interface:update_authority")

# Token-2022 instruction tags of the extensions (the classic set lives in spl_token).
_MINT_CLOSE_AUTHORITY_IX = 25
_DEFAULT_ACCOUNT_STATE_IX = 28
_NON_TRANSFERABLE_IX = 32
_PERMANENT_DELEGATE_IX = 35
_TRANSFER_HOOK_IX = 36
_METADATA_POINTER_IX = 39
_GROUP_POINTER_IX = 40
_GROUP_MEMBER_POINTER_IX = 41
# Sub-instructions of the extensions that have them.
_POINTER_INITIALIZE = 0
_POINTER_UPDATE = 1
_EXTENSION_INITIALIZE = 0


class BaseField(Enum):
    """The fixed metadata fields; any other field is a ``str`` key (additional metadata)."""

    NAME = 0
    SYMBOL = 1
    URI = 2


_FIELD_KEY = 3


@dataclass(frozen=True, slots=True)
class InitializeMetadataPointer:
    mint: Pubkey
    authority: Pubkey | None
    metadata_address: Pubkey | None


@dataclass(frozen=True, slots=True)
class InitializeGroupPointer:
    mint: Pubkey
    authority: Pubkey | None
    group_address: Pubkey | None


@dataclass(frozen=True, slots=True)
class InitializeGroupMemberPointer:
    mint: Pubkey
    authority: Pubkey | None
    member_address: Pubkey | None


@dataclass(frozen=True, slots=True)
class UpdateMetadataPointer:
    """Aim the mint's MetadataPointer elsewhere (signed by the pointer's authority)."""

    mint: Pubkey
    authority: Pubkey
    metadata_address: Pubkey | None


@dataclass(frozen=True, slots=True)
class UpdateGroupMemberPointer:
    mint: Pubkey
    authority: Pubkey
    member_address: Pubkey | None


@dataclass(frozen=True, slots=True)
class InitializeMintCloseAuthority:
    mint: Pubkey
    close_authority: Pubkey | None


@dataclass(frozen=True, slots=True)
class InitializePermanentDelegate:
    mint: Pubkey
    delegate: Pubkey


@dataclass(frozen=True, slots=True)
class InitializeNonTransferableMint:
    mint: Pubkey


@dataclass(frozen=True, slots=True)
class InitializeTransferHook:
    mint: Pubkey
    authority: Pubkey | None
    program_id: Pubkey | None


@dataclass(frozen=True, slots=True)
class InitializeDefaultAccountState:
    mint: Pubkey
    state: AccountState


@dataclass(frozen=True, slots=True)
class MetadataInitialize:
    metadata: Pubkey
    update_authority: Pubkey
    mint: Pubkey
    mint_authority: Pubkey
    name: str
    symbol: str
    uri: str
    program_id: Pubkey = TOKEN_2022_PROGRAM


@dataclass(frozen=True, slots=True)
class MetadataUpdateField:
    metadata: Pubkey
    update_authority: Pubkey
    field: BaseField | str
    value: str
    program_id: Pubkey = TOKEN_2022_PROGRAM


@dataclass(frozen=True, slots=True)
class MetadataUpdateAuthority:
    metadata: Pubkey
    update_authority: Pubkey
    new_authority: Pubkey | None
    program_id: Pubkey = TOKEN_2022_PROGRAM


@dataclass(frozen=True, slots=True)
class MetadataRemoveKey:
    metadata: Pubkey
    update_authority: Pubkey
    key: str
    idempotent: bool
    program_id: Pubkey = TOKEN_2022_PROGRAM


@dataclass(frozen=True, slots=True)
class GroupInitialize:
    group: Pubkey
    mint: Pubkey
    mint_authority: Pubkey
    update_authority: Pubkey | None
    max_size: int
    program_id: Pubkey = TOKEN_2022_PROGRAM


@dataclass(frozen=True, slots=True)
class GroupInitializeMember:
    member: Pubkey
    member_mint: Pubkey
    member_mint_authority: Pubkey
    group: Pubkey
    group_update_authority: Pubkey
    program_id: Pubkey = TOKEN_2022_PROGRAM


@dataclass(frozen=True, slots=True)
class GroupUpdateMaxSize:
    group: Pubkey
    update_authority: Pubkey
    max_size: int
    program_id: Pubkey = TOKEN_2022_PROGRAM


@dataclass(frozen=True, slots=True)
class GroupUpdateAuthority:
    """Hand the group's update authority to ``new_authority``: that key need not sign."""

    group: Pubkey
    update_authority: Pubkey
    new_authority: Pubkey | None
    program_id: Pubkey = TOKEN_2022_PROGRAM


Token2022Ix = (
    InitializeMetadataPointer
    | InitializeGroupPointer
    | InitializeGroupMemberPointer
    | UpdateMetadataPointer
    | UpdateGroupMemberPointer
    | InitializeMintCloseAuthority
    | InitializePermanentDelegate
    | InitializeNonTransferableMint
    | InitializeTransferHook
    | InitializeDefaultAccountState
    | MetadataInitialize
    | MetadataUpdateField
    | MetadataUpdateAuthority
    | MetadataRemoveKey
    | GroupInitialize
    | GroupInitializeMember
    | GroupUpdateMaxSize
    | GroupUpdateAuthority
)


def _meta(key: Pubkey, *, signer: bool = False, writable: bool = False) -> AccountMeta:
    return AccountMeta(key, is_signer=signer, is_writable=writable)


def _encode_field(field: BaseField | str) -> bytes:
    if isinstance(field, BaseField):
        return bytes([field.value])
    return bytes([_FIELD_KEY]) + borsh.string(field)


def encode(ix: Token2022Ix) -> Instruction:
    """Build one Token-2022 extension or interface instruction."""
    match ix:
        case (
            InitializeMetadataPointer() | InitializeGroupPointer() | InitializeGroupMemberPointer()
        ):
            if isinstance(ix, InitializeMetadataPointer):
                tag, target = _METADATA_POINTER_IX, ix.metadata_address
            elif isinstance(ix, InitializeGroupPointer):
                tag, target = _GROUP_POINTER_IX, ix.group_address
            else:
                tag, target = _GROUP_MEMBER_POINTER_IX, ix.member_address
            data = (
                bytes([tag, _POINTER_INITIALIZE])
                + borsh.optional_nonzero_pubkey(ix.authority)
                + borsh.optional_nonzero_pubkey(target)
            )
            return Instruction(TOKEN_2022_PROGRAM, data, [_meta(ix.mint, writable=True)])
        case UpdateMetadataPointer() | UpdateGroupMemberPointer():
            if isinstance(ix, UpdateMetadataPointer):
                tag, target = _METADATA_POINTER_IX, ix.metadata_address
            else:
                tag, target = _GROUP_MEMBER_POINTER_IX, ix.member_address
            data = bytes([tag, _POINTER_UPDATE]) + borsh.optional_nonzero_pubkey(target)
            metas = [_meta(ix.mint, writable=True), _meta(ix.authority, signer=True)]
            return Instruction(TOKEN_2022_PROGRAM, data, metas)
        case InitializeMintCloseAuthority():
            # Instruction data packs COption<Pubkey> with a one-byte tag.
            data = bytes([_MINT_CLOSE_AUTHORITY_IX]) + borsh.option(ix.close_authority, bytes)
            return Instruction(TOKEN_2022_PROGRAM, data, [_meta(ix.mint, writable=True)])
        case InitializePermanentDelegate():
            data = bytes([_PERMANENT_DELEGATE_IX]) + bytes(ix.delegate)
            return Instruction(TOKEN_2022_PROGRAM, data, [_meta(ix.mint, writable=True)])
        case InitializeNonTransferableMint():
            data = bytes([_NON_TRANSFERABLE_IX])
            return Instruction(TOKEN_2022_PROGRAM, data, [_meta(ix.mint, writable=True)])
        case InitializeTransferHook():
            data = (
                bytes([_TRANSFER_HOOK_IX, _EXTENSION_INITIALIZE])
                + borsh.optional_nonzero_pubkey(ix.authority)
                + borsh.optional_nonzero_pubkey(ix.program_id)
            )
            return Instruction(TOKEN_2022_PROGRAM, data, [_meta(ix.mint, writable=True)])
        case InitializeDefaultAccountState():
            data = bytes([_DEFAULT_ACCOUNT_STATE_IX, _EXTENSION_INITIALIZE, ix.state])
            return Instruction(TOKEN_2022_PROGRAM, data, [_meta(ix.mint, writable=True)])
        case MetadataInitialize():
            data = (
                METADATA_INITIALIZE
                + borsh.string(ix.name)
                + borsh.string(ix.symbol)
                + borsh.string(ix.uri)
            )
            metas = [
                _meta(ix.metadata, writable=True),
                _meta(ix.update_authority),
                _meta(ix.mint),
                _meta(ix.mint_authority, signer=True),
            ]
        case MetadataUpdateField():
            data = METADATA_UPDATE_FIELD + _encode_field(ix.field) + borsh.string(ix.value)
            metas = [_meta(ix.metadata, writable=True), _meta(ix.update_authority, signer=True)]
        case MetadataUpdateAuthority():
            data = METADATA_UPDATE_AUTHORITY + borsh.optional_nonzero_pubkey(ix.new_authority)
            metas = [_meta(ix.metadata, writable=True), _meta(ix.update_authority, signer=True)]
        case MetadataRemoveKey():
            data = METADATA_REMOVE_KEY + borsh.boolean(ix.idempotent) + borsh.string(ix.key)
            metas = [_meta(ix.metadata, writable=True), _meta(ix.update_authority, signer=True)]
        case GroupInitialize():
            data = (
                GROUP_INITIALIZE
                + borsh.optional_nonzero_pubkey(ix.update_authority)
                + borsh.u64(ix.max_size)
            )
            metas = [
                _meta(ix.group, writable=True),
                _meta(ix.mint),
                _meta(ix.mint_authority, signer=True),
            ]
        case GroupInitializeMember():
            data = GROUP_INITIALIZE_MEMBER
            metas = [
                _meta(ix.member, writable=True),
                _meta(ix.member_mint),
                _meta(ix.member_mint_authority, signer=True),
                _meta(ix.group, writable=True),
                _meta(ix.group_update_authority, signer=True),
            ]
        case GroupUpdateMaxSize():
            data = GROUP_UPDATE_MAX_SIZE + borsh.u64(ix.max_size)
            metas = [_meta(ix.group, writable=True), _meta(ix.update_authority, signer=True)]
        case GroupUpdateAuthority():
            data = GROUP_UPDATE_AUTHORITY + borsh.optional_nonzero_pubkey(ix.new_authority)
            metas = [_meta(ix.group, writable=True), _meta(ix.update_authority, signer=True)]
    return Instruction(ix.program_id, data, metas)


def _need(accounts: Sequence[Pubkey], n: int, what: str) -> None:
    if len(accounts) < n:
        raise CodecError(
            f"{what} needs {n} accounts, got {len(accounts)}",
            details={"instruction": what, "accounts": len(accounts)},
        )


_INTERFACE = frozenset(
    {
        METADATA_INITIALIZE,
        METADATA_UPDATE_FIELD,
        METADATA_UPDATE_AUTHORITY,
        METADATA_REMOVE_KEY,
        GROUP_INITIALIZE,
        GROUP_INITIALIZE_MEMBER,
        GROUP_UPDATE_MAX_SIZE,
        GROUP_UPDATE_AUTHORITY,
    }
)


def is_interface_instruction(data: bytes) -> bool:
    return bytes(data[:8]) in _INTERFACE


def decode_interface(program_id: Pubkey, accounts: Sequence[Pubkey], data: bytes) -> Token2022Ix:
    """A token-metadata or token-group interface instruction (any implementing program)."""
    r = borsh.Reader(data, "interface instruction")
    disc = r.take(8, "discriminator")
    acc = tuple(accounts)
    out: Token2022Ix
    if disc == METADATA_INITIALIZE:
        _need(acc, 4, "token-metadata Initialize")
        name, symbol, uri = r.string("name"), r.string("symbol"), r.string("uri")
        out = MetadataInitialize(acc[0], acc[1], acc[2], acc[3], name, symbol, uri, program_id)
    elif disc == METADATA_UPDATE_FIELD:
        _need(acc, 2, "token-metadata UpdateField")
        tag = r.u8("field")
        field: BaseField | str
        if tag == _FIELD_KEY:
            field = r.string("field key")
        elif tag in (0, 1, 2):
            field = BaseField(tag)
        else:
            raise CodecError(f"token-metadata UpdateField: field tag {tag} is unknown")
        out = MetadataUpdateField(acc[0], acc[1], field, r.string("value"), program_id)
    elif disc == METADATA_UPDATE_AUTHORITY:
        _need(acc, 2, "token-metadata UpdateAuthority")
        new = r.optional_nonzero_pubkey("new_authority")
        out = MetadataUpdateAuthority(acc[0], acc[1], new, program_id)
    elif disc == METADATA_REMOVE_KEY:
        _need(acc, 2, "token-metadata RemoveKey")
        idempotent = r.boolean("idempotent")
        out = MetadataRemoveKey(acc[0], acc[1], r.string("key"), idempotent, program_id)
    elif disc == GROUP_INITIALIZE:
        _need(acc, 3, "token-group InitializeGroup")
        authority = r.optional_nonzero_pubkey("update_authority")
        out = GroupInitialize(acc[0], acc[1], acc[2], authority, r.u64("max_size"), program_id)
    elif disc == GROUP_INITIALIZE_MEMBER:
        _need(acc, 5, "token-group InitializeMember")
        out = GroupInitializeMember(acc[0], acc[1], acc[2], acc[3], acc[4], program_id)
    elif disc == GROUP_UPDATE_MAX_SIZE:
        _need(acc, 2, "token-group UpdateGroupMaxSize")
        out = GroupUpdateMaxSize(acc[0], acc[1], r.u64("max_size"), program_id)
    elif disc == GROUP_UPDATE_AUTHORITY:
        _need(acc, 2, "token-group UpdateGroupAuthority")
        new = r.optional_nonzero_pubkey("new_authority")
        out = GroupUpdateAuthority(acc[0], acc[1], new, program_id)
    else:
        raise CodecError(f"unknown interface discriminator {disc.hex()}")
    # Interface instructions are Borsh-deserialised whole: trailing bytes are an error there.
    r.end()
    return out


def decode(
    accounts: Sequence[Pubkey], data: bytes
) -> Token2022Ix | spl_token.TokenIx | spl_token.OtherTokenInstruction:
    """Any Token-2022 instruction: interface, pointer initialisation, or the classic set."""
    if is_interface_instruction(data):
        return decode_interface(TOKEN_2022_PROGRAM, accounts, data)
    if len(data) >= 2 and data[0] in _POINTERS and data[1] == _POINTER_INITIALIZE:
        r = borsh.Reader(data[2:], "pointer instruction")
        authority = r.optional_nonzero_pubkey("authority")
        target = r.optional_nonzero_pubkey("address")
        r.end()  # the program reads this as a fixed-size Pod: exact length only
        _need(accounts, 1, "pointer Initialize")
        return _POINTERS[data[0]](accounts[0], authority, target)
    extension = _decode_extension_ix(accounts, bytes(data))
    if extension is not None:
        return extension
    return spl_token.decode(TOKEN_2022_PROGRAM, accounts, data)


def _decode_extension_ix(accounts: Sequence[Pubkey], data: bytes) -> Token2022Ix | None:
    """The extension initialisations and pointer updates AIW3 reads; ``None`` for the rest."""
    if not data:
        return None
    tag, r = data[0], borsh.Reader(data[1:], "extension instruction")
    out: Token2022Ix
    if tag in (_METADATA_POINTER_IX, _GROUP_MEMBER_POINTER_IX) and data[1:2] == bytes(
        [_POINTER_UPDATE]
    ):
        r.u8("sub-instruction")
        target = r.optional_nonzero_pubkey("address")
        _need(accounts, 2, "pointer Update")
        cls = UpdateMetadataPointer if tag == _METADATA_POINTER_IX else UpdateGroupMemberPointer
        out = cls(accounts[0], accounts[1], target)
    elif tag == _MINT_CLOSE_AUTHORITY_IX:
        _need(accounts, 1, "InitializeMintCloseAuthority")
        out = InitializeMintCloseAuthority(
            accounts[0], r.option(lambda: r.pubkey("close_authority"), "close_authority")
        )
    elif tag == _PERMANENT_DELEGATE_IX:
        _need(accounts, 1, "InitializePermanentDelegate")
        out = InitializePermanentDelegate(accounts[0], r.pubkey("delegate"))
    elif tag == _NON_TRANSFERABLE_IX:
        _need(accounts, 1, "InitializeNonTransferableMint")
        out = InitializeNonTransferableMint(accounts[0])
    elif tag == _TRANSFER_HOOK_IX and data[1:2] == bytes([_EXTENSION_INITIALIZE]):
        r.u8("sub-instruction")
        _need(accounts, 1, "TransferHook Initialize")
        authority = r.optional_nonzero_pubkey("authority")
        out = InitializeTransferHook(accounts[0], authority, r.optional_nonzero_pubkey("program"))
    elif tag == _DEFAULT_ACCOUNT_STATE_IX and data[1:2] == bytes([_EXTENSION_INITIALIZE]):
        r.u8("sub-instruction")
        _need(accounts, 1, "DefaultAccountState Initialize")
        out = InitializeDefaultAccountState(accounts[0], _account_state(r.u8("state")))
    else:
        return None
    r.end()
    return out


_PointerIx = InitializeMetadataPointer | InitializeGroupPointer | InitializeGroupMemberPointer
_POINTERS: dict[int, type[_PointerIx]] = {
    _METADATA_POINTER_IX: InitializeMetadataPointer,
    _GROUP_POINTER_IX: InitializeGroupPointer,
    _GROUP_MEMBER_POINTER_IX: InitializeGroupMemberPointer,
}
