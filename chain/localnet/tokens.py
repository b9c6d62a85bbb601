"""What the local chain indexes about token accounts and mints (both token programs).

The layouts are decoded by the project's codecs (``chain.codecs.spl_token`` for the classic
program, ``chain.codecs.token2022`` for Token-2022 with its account-type byte); this module only
picks the decoder by owner program and decides what a node would index: an initialized (or
frozen) token account, an initialized mint. Like a node's token index it reads the base state
and the account type, not the extensions (decoding those costs more than the rest of the
indexing). Bytes that do not decode are not a token account or mint, as on a real node, which
simply leaves them out of its indexes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from solders.account import Account
from solders.pubkey import Pubkey

from chain.codecs import spl_token, token2022
from chain.codecs.spl_token import AccountState, MintState, TokenAccountState
from chain.codecs.token2022 import ACCOUNT_TYPE_OFFSET, AccountType
from chain.programs import TOKEN_2022_PROGRAM, TOKEN_PROGRAM
from core.errors import CodecError

_ACCOUNT_DECODERS: Final[dict[Pubkey, Callable[[bytes], TokenAccountState]]] = {
    TOKEN_PROGRAM: spl_token.decode_token_account,
    TOKEN_2022_PROGRAM: token2022.decode_account_base,
}
_MINT_DECODERS: Final[dict[Pubkey, Callable[[bytes], MintState]]] = {
    TOKEN_PROGRAM: spl_token.decode_mint,
    TOKEN_2022_PROGRAM: token2022.decode_mint_base,
}


@dataclass(frozen=True, slots=True)
class TokenAccount:
    """The indexed part of a token account (compared to decide whether to re-index)."""

    mint: Pubkey
    owner: Pubkey
    amount: int
    state: AccountState  # INITIALIZED or FROZEN: uninitialized accounts are not indexed
    program: Pubkey


def parse_token_account(account: Account | None) -> TokenAccount | None:
    """The token account in ``account``, or None when it is not an initialized one."""
    decode = _ACCOUNT_DECODERS.get(account.owner) if account is not None else None
    if account is None or decode is None:
        return None
    data = bytes(account.data)
    if _typed_as_other(account.owner, data, AccountType.ACCOUNT):
        return None
    try:
        state = decode(data)
    except CodecError:
        return None  # a mint, a multisig, or junk written by a test
    if state.state == AccountState.UNINITIALIZED:
        return None
    return TokenAccount(
        mint=state.mint,
        owner=state.owner,
        amount=state.amount,
        state=state.state,
        program=account.owner,
    )


def parse_mint(account: Account | None) -> MintState | None:
    """The mint in ``account``, or None when it is not an initialized mint."""
    decode = _MINT_DECODERS.get(account.owner) if account is not None else None
    if account is None or decode is None:
        return None
    data = bytes(account.data)
    if _typed_as_other(account.owner, data, AccountType.MINT):
        return None
    try:
        mint = decode(data)
    except CodecError:
        return None
    return mint if mint.is_initialized else None


def _typed_as_other(program: Pubkey, data: bytes, wanted: AccountType) -> bool:
    """Whether an extended Token-2022 account's type byte names another kind: the decoder
    would refuse it too, but every transaction touches a mint and a token account, and asking
    the decoder first costs a failed decode (an exception) per account."""
    return (
        program == TOKEN_2022_PROGRAM
        and len(data) > ACCOUNT_TYPE_OFFSET
        and data[ACCOUNT_TYPE_OFFSET] != wanted
    )
