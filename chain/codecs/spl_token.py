"""SPL Token instructions and the classic mint / token-account layouts.

The same instruction set runs on Token-2022 (which adds more instruction numbers), so every
builder takes the token ``program_id`` and every decoded instruction records it.

Decoding mirrors the token program: an instruction's data must hold every field it needs
(short data raises ``CodecError``), while trailing bytes are ignored because the program ignores
them too, and the indexer must describe what the program actually executed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from chain.codecs import borsh
from chain.programs import SYSVAR_RENT, TOKEN_PROGRAMS
from core.errors import CodecError

MINT_SIZE = 82
ACCOUNT_SIZE = 165
MULTISIG_SIZE = 355


class TokenInstructionType(IntEnum):
    INITIALIZE_MINT = 0
    INITIALIZE_ACCOUNT = 1
    INITIALIZE_MULTISIG = 2
    TRANSFER = 3
    APPROVE = 4
    REVOKE = 5
    SET_AUTHORITY = 6
    MINT_TO = 7
    BURN = 8
    CLOSE_ACCOUNT = 9
    FREEZE_ACCOUNT = 10
    THAW_ACCOUNT = 11
    TRANSFER_CHECKED = 12
    APPROVE_CHECKED = 13
    MINT_TO_CHECKED = 14
    BURN_CHECKED = 15
    INITIALIZE_ACCOUNT2 = 16
    SYNC_NATIVE = 17
    INITIALIZE_ACCOUNT3 = 18
    INITIALIZE_MULTISIG2 = 19
    INITIALIZE_MINT2 = 20


class AuthorityType(IntEnum):
    """``SetAuthority`` kinds; Token-2022 numbers continue past 3 (12 = MetadataPointer, ...)."""

    MINT_TOKENS = 0
    FREEZE_ACCOUNT = 1
    ACCOUNT_OWNER = 2
    CLOSE_ACCOUNT = 3
    METADATA_POINTER = 12
    GROUP_POINTER = 13
    GROUP_MEMBER_POINTER = 14


class AccountState(IntEnum):
    UNINITIALIZED = 0
    INITIALIZED = 1
    FROZEN = 2


# --- instructions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InitializeMint:
    program_id: Pubkey
    mint: Pubkey
    decimals: int
    mint_authority: Pubkey
    freeze_authority: Pubkey | None


@dataclass(frozen=True, slots=True)
class InitializeMint2:
    program_id: Pubkey
    mint: Pubkey
    decimals: int
    mint_authority: Pubkey
    freeze_authority: Pubkey | None


@dataclass(frozen=True, slots=True)
class Transfer:
    program_id: Pubkey
    source: Pubkey
    destination: Pubkey
    authority: Pubkey
    amount: int
    signers: tuple[Pubkey, ...] = ()


@dataclass(frozen=True, slots=True)
class TransferChecked:
    program_id: Pubkey
    source: Pubkey
    mint: Pubkey
    destination: Pubkey
    authority: Pubkey
    amount: int
    decimals: int
    signers: tuple[Pubkey, ...] = ()


@dataclass(frozen=True, slots=True)
class MintTo:
    program_id: Pubkey
    mint: Pubkey
    account: Pubkey
    authority: Pubkey
    amount: int
    signers: tuple[Pubkey, ...] = ()


@dataclass(frozen=True, slots=True)
class MintToChecked:
    program_id: Pubkey
    mint: Pubkey
    account: Pubkey
    authority: Pubkey
    amount: int
    decimals: int
    signers: tuple[Pubkey, ...] = ()


@dataclass(frozen=True, slots=True)
class Burn:
    program_id: Pubkey
    account: Pubkey
    mint: Pubkey
    authority: Pubkey
    amount: int
    signers: tuple[Pubkey, ...] = ()


@dataclass(frozen=True, slots=True)
class BurnChecked:
    program_id: Pubkey
    account: Pubkey
    mint: Pubkey
    authority: Pubkey
    amount: int
    decimals: int
    signers: tuple[Pubkey, ...] = ()


@dataclass(frozen=True, slots=True)
class CloseAccount:
    program_id: Pubkey
    account: Pubkey
    destination: Pubkey
    authority: Pubkey
    signers: tuple[Pubkey, ...] = ()


@dataclass(frozen=True, slots=True)
class SetAuthority:
    program_id: Pubkey
    target: Pubkey
    authority_type: int
    new_authority: Pubkey | None
    current_authority: Pubkey
    signers: tuple[Pubkey, ...] = ()


@dataclass(frozen=True, slots=True)
class FreezeAccount:
    program_id: Pubkey
    account: Pubkey
    mint: Pubkey
    authority: Pubkey
    signers: tuple[Pubkey, ...] = ()


@dataclass(frozen=True, slots=True)
class ThawAccount:
    program_id: Pubkey
    account: Pubkey
    mint: Pubkey
    authority: Pubkey
    signers: tuple[Pubkey, ...] = ()


@dataclass(frozen=True, slots=True)
class OtherTokenInstruction:
    """A token instruction this codec does not model (Approve, InitializeAccount3, ...)."""

    program_id: Pubkey
    kind: int
    accounts: tuple[Pubkey, ...]
    data: bytes


TokenIx = (
    InitializeMint
    | InitializeMint2
    | Transfer
    | TransferChecked
    | MintTo
    | MintToChecked
    | Burn
    | BurnChecked
    | CloseAccount
    | SetAuthority
    | FreezeAccount
    | ThawAccount
)


def _w(key: Pubkey) -> AccountMeta:
    return AccountMeta(key, is_signer=False, is_writable=True)


def _r(key: Pubkey) -> AccountMeta:
    return AccountMeta(key, is_signer=False, is_writable=False)


def _authority(key: Pubkey, signers: tuple[Pubkey, ...]) -> list[AccountMeta]:
    # A multisig authority does not sign itself; its member signers follow it.
    metas = [AccountMeta(key, is_signer=not signers, is_writable=False)]
    metas += [AccountMeta(s, is_signer=True, is_writable=False) for s in signers]
    return metas


def _pubkey_option(value: Pubkey | None) -> bytes:
    # Instruction data packs COption<Pubkey> as a one-byte tag (unlike account state).
    return b"\x00" if value is None else b"\x01" + bytes(value)


def _check_program(program_id: Pubkey) -> None:
    if program_id not in TOKEN_PROGRAMS:
        raise CodecError(
            f"{program_id} is not a token program", details={"program": str(program_id)}
        )


def encode(ix: TokenIx) -> Instruction:
    """Build the on-chain instruction for one decoded token instruction."""
    _check_program(ix.program_id)
    metas: list[AccountMeta]
    match ix:
        case InitializeMint():
            data = (
                bytes([TokenInstructionType.INITIALIZE_MINT, ix.decimals])
                + bytes(ix.mint_authority)
                + _pubkey_option(ix.freeze_authority)
            )
            metas = [_w(ix.mint), _r(SYSVAR_RENT)]
        case InitializeMint2():
            data = (
                bytes([TokenInstructionType.INITIALIZE_MINT2, ix.decimals])
                + bytes(ix.mint_authority)
                + _pubkey_option(ix.freeze_authority)
            )
            metas = [_w(ix.mint)]
        case Transfer():
            data = bytes([TokenInstructionType.TRANSFER]) + borsh.u64(ix.amount)
            metas = [_w(ix.source), _w(ix.destination), *_authority(ix.authority, ix.signers)]
        case TransferChecked():
            data = (
                bytes([TokenInstructionType.TRANSFER_CHECKED])
                + borsh.u64(ix.amount)
                + bytes([ix.decimals])
            )
            metas = [
                _w(ix.source),
                _r(ix.mint),
                _w(ix.destination),
                *_authority(ix.authority, ix.signers),
            ]
        case MintTo():
            data = bytes([TokenInstructionType.MINT_TO]) + borsh.u64(ix.amount)
            metas = [_w(ix.mint), _w(ix.account), *_authority(ix.authority, ix.signers)]
        case MintToChecked():
            data = (
                bytes([TokenInstructionType.MINT_TO_CHECKED])
                + borsh.u64(ix.amount)
                + bytes([ix.decimals])
            )
            metas = [_w(ix.mint), _w(ix.account), *_authority(ix.authority, ix.signers)]
        case Burn():
            data = bytes([TokenInstructionType.BURN]) + borsh.u64(ix.amount)
            metas = [_w(ix.account), _w(ix.mint), *_authority(ix.authority, ix.signers)]
        case BurnChecked():
            data = (
                bytes([TokenInstructionType.BURN_CHECKED])
                + borsh.u64(ix.amount)
                + bytes([ix.decimals])
            )
            metas = [_w(ix.account), _w(ix.mint), *_authority(ix.authority, ix.signers)]
        case CloseAccount():
            data = bytes([TokenInstructionType.CLOSE_ACCOUNT])
            metas = [_w(ix.account), _w(ix.destination), *_authority(ix.authority, ix.signers)]
        case SetAuthority():
            data = bytes([TokenInstructionType.SET_AUTHORITY, ix.authority_type]) + _pubkey_option(
                ix.new_authority
            )
            metas = [_w(ix.target), *_authority(ix.current_authority, ix.signers)]
        case FreezeAccount():
            data = bytes([TokenInstructionType.FREEZE_ACCOUNT])
            metas = [_w(ix.account), _r(ix.mint), *_authority(ix.authority, ix.signers)]
        case ThawAccount():
            data = bytes([TokenInstructionType.THAW_ACCOUNT])
            metas = [_w(ix.account), _r(ix.mint), *_authority(ix.authority, ix.signers)]
    return Instruction(ix.program_id, data, metas)


def _need(accounts: Sequence[Pubkey], n: int, what: str) -> None:
    if len(accounts) < n:
        raise CodecError(
            f"{what} needs {n} accounts, got {len(accounts)}",
            details={"instruction": what, "accounts": len(accounts)},
        )


def _read_pubkey_option(r: borsh.Reader, field: str) -> Pubkey | None:
    tag = r.u8(field + ".tag")
    if tag == 0:
        return None
    if tag == 1:
        return r.pubkey(field)
    raise CodecError(f"token instruction: {field} has option tag {tag}", details={"field": field})


def decode(
    program_id: Pubkey, accounts: Sequence[Pubkey], data: bytes
) -> TokenIx | OtherTokenInstruction:
    """Decode one token instruction (top-level or inner) from its resolved accounts and data."""
    _check_program(program_id)
    r = borsh.Reader(data, "token instruction")
    tag = r.u8("instruction")
    pid = program_id
    acc = tuple(accounts)
    if tag in (TokenInstructionType.INITIALIZE_MINT, TokenInstructionType.INITIALIZE_MINT2):
        decimals = r.u8("decimals")
        authority = r.pubkey("mint_authority")
        freeze = _read_pubkey_option(r, "freeze_authority")
        if tag == TokenInstructionType.INITIALIZE_MINT:
            _need(acc, 2, "InitializeMint")
            return InitializeMint(pid, acc[0], decimals, authority, freeze)
        _need(acc, 1, "InitializeMint2")
        return InitializeMint2(pid, acc[0], decimals, authority, freeze)
    if tag == TokenInstructionType.TRANSFER:
        _need(acc, 3, "Transfer")
        return Transfer(pid, acc[0], acc[1], acc[2], r.u64("amount"), acc[3:])
    if tag == TokenInstructionType.TRANSFER_CHECKED:
        _need(acc, 4, "TransferChecked")
        amount, decimals = r.u64("amount"), r.u8("decimals")
        return TransferChecked(pid, acc[0], acc[1], acc[2], acc[3], amount, decimals, acc[4:])
    if tag == TokenInstructionType.MINT_TO:
        _need(acc, 3, "MintTo")
        return MintTo(pid, acc[0], acc[1], acc[2], r.u64("amount"), acc[3:])
    if tag == TokenInstructionType.MINT_TO_CHECKED:
        _need(acc, 3, "MintToChecked")
        amount, decimals = r.u64("amount"), r.u8("decimals")
        return MintToChecked(pid, acc[0], acc[1], acc[2], amount, decimals, acc[3:])
    if tag == TokenInstructionType.BURN:
        _need(acc, 3, "Burn")
        return Burn(pid, acc[0], acc[1], acc[2], r.u64("amount"), acc[3:])
    if tag == TokenInstructionType.BURN_CHECKED:
        _need(acc, 3, "BurnChecked")
        amount, decimals = r.u64("amount"), r.u8("decimals")
        return BurnChecked(pid, acc[0], acc[1], acc[2], amount, decimals, acc[3:])
    if tag == TokenInstructionType.CLOSE_ACCOUNT:
        _need(acc, 3, "CloseAccount")
        return CloseAccount(pid, acc[0], acc[1], acc[2], acc[3:])
    if tag == TokenInstructionType.SET_AUTHORITY:
        _need(acc, 2, "SetAuthority")
        kind = r.u8("authority_type")
        new = _read_pubkey_option(r, "new_authority")
        return SetAuthority(pid, acc[0], kind, new, acc[1], acc[2:])
    if tag in (TokenInstructionType.FREEZE_ACCOUNT, TokenInstructionType.THAW_ACCOUNT):
        _need(
            acc, 3, "FreezeAccount" if tag == TokenInstructionType.FREEZE_ACCOUNT else "ThawAccount"
        )
        cls = FreezeAccount if tag == TokenInstructionType.FREEZE_ACCOUNT else ThawAccount
        return cls(pid, acc[0], acc[1], acc[2], acc[3:])
    return OtherTokenInstruction(pid, tag, acc, bytes(data))


# --- account layouts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MintState:
    mint_authority: Pubkey | None
    supply: int
    decimals: int
    is_initialized: bool
    freeze_authority: Pubkey | None


@dataclass(frozen=True, slots=True)
class TokenAccountState:
    mint: Pubkey
    owner: Pubkey
    amount: int
    delegate: Pubkey | None
    state: AccountState
    is_native: int | None
    delegated_amount: int
    close_authority: Pubkey | None


def read_mint_base(r: borsh.Reader) -> MintState:
    return MintState(
        mint_authority=r.coption_pubkey("mint_authority"),
        supply=r.u64("supply"),
        decimals=r.u8("decimals"),
        is_initialized=r.boolean("is_initialized"),
        freeze_authority=r.coption_pubkey("freeze_authority"),
    )


def read_account_base(r: borsh.Reader) -> TokenAccountState:
    mint = r.pubkey("mint")
    owner = r.pubkey("owner")
    amount = r.u64("amount")
    delegate = r.coption_pubkey("delegate")
    raw_state = r.u8("state")
    if raw_state > AccountState.FROZEN:
        raise CodecError(f"token account: state {raw_state} is unknown", details={"field": "state"})
    return TokenAccountState(
        mint=mint,
        owner=owner,
        amount=amount,
        delegate=delegate,
        state=AccountState(raw_state),
        is_native=r.coption_u64("is_native"),
        delegated_amount=r.u64("delegated_amount"),
        close_authority=r.coption_pubkey("close_authority"),
    )


def decode_mint(data: bytes) -> MintState:
    """A classic SPL mint: exactly 82 bytes."""
    if len(data) != MINT_SIZE:
        raise CodecError(
            f"SPL mint must be {MINT_SIZE} bytes, got {len(data)}", details={"size": len(data)}
        )
    return read_mint_base(borsh.Reader(data, "mint"))


def decode_token_account(data: bytes) -> TokenAccountState:
    """A classic SPL token account: exactly 165 bytes."""
    if len(data) != ACCOUNT_SIZE:
        raise CodecError(
            f"SPL token account must be {ACCOUNT_SIZE} bytes, got {len(data)}",
            details={"size": len(data)},
        )
    return read_account_base(borsh.Reader(data, "token account"))


def encode_mint(state: MintState) -> bytes:
    return (
        borsh.coption_pubkey(state.mint_authority)
        + borsh.u64(state.supply)
        + borsh.u8(state.decimals)
        + borsh.boolean(state.is_initialized)
        + borsh.coption_pubkey(state.freeze_authority)
    )


def encode_token_account(state: TokenAccountState) -> bytes:
    return (
        bytes(state.mint)
        + bytes(state.owner)
        + borsh.u64(state.amount)
        + borsh.coption_pubkey(state.delegate)
        + borsh.u8(state.state)
        + borsh.coption_u64(state.is_native)
        + borsh.u64(state.delegated_amount)
        + borsh.coption_pubkey(state.close_authority)
    )
