"""Associated Token Account program: address derivation and Create / CreateIdempotent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from aiw3.errors import CodecError
from chain.programs import ASSOCIATED_TOKEN_PROGRAM, SYSTEM_PROGRAM, TOKEN_PROGRAM

_CREATE = 0
_CREATE_IDEMPOTENT = 1


def address(owner: Pubkey, mint: Pubkey, token_program: Pubkey = TOKEN_PROGRAM) -> Pubkey:
    """The owner's associated token account for ``mint`` under ``token_program``."""
    key, _bump = Pubkey.find_program_address(
        [bytes(owner), bytes(token_program), bytes(mint)], ASSOCIATED_TOKEN_PROGRAM
    )
    return key


@dataclass(frozen=True, slots=True)
class CreateAssociatedTokenAccount:
    payer: Pubkey
    account: Pubkey
    owner: Pubkey
    mint: Pubkey
    token_program: Pubkey
    idempotent: bool


def create(
    payer: Pubkey,
    owner: Pubkey,
    mint: Pubkey,
    token_program: Pubkey = TOKEN_PROGRAM,
    *,
    idempotent: bool = True,
) -> Instruction:
    """Create the owner's ATA (idempotent by default: a retry must not fail the transaction)."""
    return encode(
        CreateAssociatedTokenAccount(
            payer, address(owner, mint, token_program), owner, mint, token_program, idempotent
        )
    )


def encode(ix: CreateAssociatedTokenAccount) -> Instruction:
    metas = [
        AccountMeta(ix.payer, is_signer=True, is_writable=True),
        AccountMeta(ix.account, is_signer=False, is_writable=True),
        AccountMeta(ix.owner, is_signer=False, is_writable=False),
        AccountMeta(ix.mint, is_signer=False, is_writable=False),
        AccountMeta(SYSTEM_PROGRAM, is_signer=False, is_writable=False),
        AccountMeta(ix.token_program, is_signer=False, is_writable=False),
    ]
    data = bytes([_CREATE_IDEMPOTENT if ix.idempotent else _CREATE])
    return Instruction(ASSOCIATED_TOKEN_PROGRAM, data, metas)


def decode(accounts: Sequence[Pubkey], data: bytes) -> CreateAssociatedTokenAccount:
    """Empty data is the original Create; 0 is Create, 1 CreateIdempotent (2 is RecoverNested)."""
    if len(data) > 1:
        # The program Borsh-deserialises non-empty data whole: extra bytes never execute.
        raise CodecError(
            f"associated token instruction has {len(data) - 1} trailing bytes",
            details={"size": len(data)},
        )
    if len(data) == 0 or data[0] == _CREATE:
        idempotent = False
    elif data[0] == _CREATE_IDEMPOTENT:
        idempotent = True
    else:
        raise CodecError(
            f"associated token instruction {data[0]} is not Create/CreateIdempotent",
            details={"instruction": data[0]},
        )
    if len(accounts) < 6:
        raise CodecError(
            f"associated token Create needs 6 accounts, got {len(accounts)}",
            details={"accounts": len(accounts)},
        )
    return CreateAssociatedTokenAccount(
        accounts[0], accounts[1], accounts[2], accounts[3], accounts[5], idempotent
    )
