"""Just enough of the SPL Token / Token-2022 layouts to keep the token indexes and balances.

The project's real codecs live in ``chain.codecs``; the local chain only needs a token
account's mint, owner and amount and a mint's decimals, at fixed offsets in both programs.
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.account import Account
from solders.pubkey import Pubkey

TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
TOKEN_PROGRAMS = frozenset({TOKEN_PROGRAM, TOKEN_2022_PROGRAM})

_ACCOUNT_LEN = 165
_MINT_LEN = 82
_ACCOUNT_TYPE_OFFSET = 165  # Token-2022: byte after the padded base layout
_ACCOUNT_TYPE_MINT = 1
_ACCOUNT_TYPE_ACCOUNT = 2


@dataclass(frozen=True, slots=True)
class TokenAccount:
    mint: Pubkey
    owner: Pubkey
    amount: int
    state: int  # 0 uninitialized, 1 initialized, 2 frozen
    program: Pubkey


@dataclass(frozen=True, slots=True)
class Mint:
    decimals: int
    supply: int
    mint_authority: Pubkey | None
    freeze_authority: Pubkey | None
    program: Pubkey


def parse_token_account(account: Account | None) -> TokenAccount | None:
    """The token account in ``account``, or None when it is not an initialized one."""
    if account is None or account.owner not in TOKEN_PROGRAMS:
        return None
    data = bytes(account.data)
    if not _is_kind(data, account.owner, _ACCOUNT_LEN, _ACCOUNT_TYPE_ACCOUNT):
        return None
    state = data[108]
    if state == 0:
        return None
    return TokenAccount(
        mint=Pubkey.from_bytes(data[0:32]),
        owner=Pubkey.from_bytes(data[32:64]),
        amount=int.from_bytes(data[64:72], "little"),
        state=state,
        program=account.owner,
    )


def parse_mint(account: Account | None) -> Mint | None:
    """The mint in ``account``, or None when it is not an initialized mint."""
    if account is None or account.owner not in TOKEN_PROGRAMS:
        return None
    data = bytes(account.data)
    if not _is_kind(data, account.owner, _MINT_LEN, _ACCOUNT_TYPE_MINT) or data[45] == 0:
        return None
    return Mint(
        decimals=data[44],
        supply=int.from_bytes(data[36:44], "little"),
        mint_authority=_coption_key(data, 0),
        freeze_authority=_coption_key(data, 46),
        program=account.owner,
    )


def _is_kind(data: bytes, program: Pubkey, base_len: int, account_type: int) -> bool:
    if len(data) == base_len:
        return True
    return (
        program == TOKEN_2022_PROGRAM
        and len(data) > _ACCOUNT_TYPE_OFFSET
        and data[_ACCOUNT_TYPE_OFFSET] == account_type
    )


def _coption_key(data: bytes, offset: int) -> Pubkey | None:
    if int.from_bytes(data[offset : offset + 4], "little") == 0:
        return None
    return Pubkey.from_bytes(data[offset + 4 : offset + 36])
