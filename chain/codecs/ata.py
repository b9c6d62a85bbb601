"""Associated Token Account program: address derivation, Create / CreateIdempotent and
RecoverNested."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from chain.programs import ASSOCIATED_TOKEN_PROGRAM, SYSTEM_PROGRAM, TOKEN_PROGRAM
from core.errors import CodecError

_CREATE = 0
_CREATE_IDEMPOTENT = 1
_RECOVER_NESTED = 2


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


@dataclass(frozen=True, slots=True)
class RecoverNested:
    """Moves the tokens of an ATA owned by the wallet's ATA (``nested``) into the wallet's ATA
    for that mint (``destination``) and closes it; the wallet signs."""

    nested: Pubkey
    nested_mint: Pubkey
    destination: Pubkey
    owner_account: Pubkey
    owner_mint: Pubkey
    wallet: Pubkey
    token_program: Pubkey = TOKEN_PROGRAM


AtaInstruction = CreateAssociatedTokenAccount | RecoverNested


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


def encode(ix: AtaInstruction) -> Instruction:
    if isinstance(ix, RecoverNested):
        return Instruction(
            ASSOCIATED_TOKEN_PROGRAM,
            bytes([_RECOVER_NESTED]),
            [
                AccountMeta(ix.nested, is_signer=False, is_writable=True),
                AccountMeta(ix.nested_mint, is_signer=False, is_writable=False),
                AccountMeta(ix.destination, is_signer=False, is_writable=True),
                AccountMeta(ix.owner_account, is_signer=False, is_writable=False),
                AccountMeta(ix.owner_mint, is_signer=False, is_writable=False),
                AccountMeta(ix.wallet, is_signer=True, is_writable=True),
                AccountMeta(ix.token_program, is_signer=False, is_writable=False),
            ],
        )
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


def decode(accounts: Sequence[Pubkey], data: bytes) -> AtaInstruction:
    """Empty data is the original Create; 0 is Create, 1 CreateIdempotent, 2 RecoverNested."""
    if len(data) > 1:
        # The program Borsh-deserialises non-empty data whole: extra bytes never execute.
        raise CodecError(
            f"associated token instruction has {len(data) - 1} trailing bytes",
            details={"size": len(data)},
        )
    if len(data) == 1 and data[0] == _RECOVER_NESTED:
        if len(accounts) < 7:
            raise CodecError(
                f"associated token RecoverNested needs 7 accounts, got {len(accounts)}",
                details={"accounts": len(accounts)},
            )
        return RecoverNested(*accounts[:7])
    if len(data) == 0 or data[0] == _CREATE:
        idempotent = False
    elif data[0] == _CREATE_IDEMPOTENT:
        idempotent = True
    else:
        raise CodecError(
            f"associated token instruction {data[0]} is unknown",
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
