"""Byte-level codecs for the programs AIW3 NFTs touch, and one dispatcher over all of them.

``decode_instruction`` works the same for a top-level instruction and for an inner (CPI) one:
both are a program id, the resolved account keys and the data. ``decode_compiled`` resolves the
index form found in transactions (``CompiledInstruction`` and inner instructions) first.
"""

from __future__ import annotations

from collections.abc import Sequence

from solders.pubkey import Pubkey

from chain.codecs import ata, memo, metaplex, spl_token, token2022
from chain.programs import (
    ASSOCIATED_TOKEN_PROGRAM,
    MEMO_PROGRAM,
    MEMO_V1_PROGRAM,
    TOKEN_2022_PROGRAM,
    TOKEN_METADATA_PROGRAM,
    TOKEN_PROGRAM,
)
from core.errors import CodecError

DecodedInstruction = (
    spl_token.TokenIx
    | spl_token.OtherTokenInstruction
    | token2022.Token2022Ix
    | ata.AtaInstruction
    | memo.Memo
    | metaplex.MetaplexIx
    | metaplex.OtherMetadataInstruction
)

__all__ = ["DecodedInstruction", "decode_compiled", "decode_instruction"]


def decode_instruction(
    program_id: Pubkey,
    accounts: Sequence[Pubkey],
    data: bytes,
    signers: Sequence[bool] | None = None,
) -> DecodedInstruction | None:
    """Decode an instruction of a known program; ``None`` for any other program.

    Raises ``CodecError`` when a known program's instruction is malformed.
    """
    data = bytes(data)
    if program_id == TOKEN_PROGRAM:
        return spl_token.decode(program_id, accounts, data)
    if program_id == TOKEN_2022_PROGRAM:
        return token2022.decode(accounts, data)
    if program_id == ASSOCIATED_TOKEN_PROGRAM:
        return ata.decode(accounts, data)
    if program_id == MEMO_PROGRAM:
        return memo.decode(accounts, data)
    if program_id == MEMO_V1_PROGRAM:
        return memo.decode_v1(accounts, data, signers)
    if program_id == TOKEN_METADATA_PROGRAM:
        return metaplex.decode(accounts, data, signers)
    return None


def decode_compiled(
    account_keys: Sequence[Pubkey],
    program_id_index: int,
    account_indexes: Sequence[int] | bytes,
    data: bytes,
    num_required_signatures: int | None = None,
) -> DecodedInstruction | None:
    """Decode an instruction given as indexes into a transaction's account keys (top-level
    ``CompiledInstruction`` or an inner instruction); signer flags come from the message header
    when ``num_required_signatures`` is given."""
    n = len(account_keys)
    indexes = list(account_indexes)
    for i in (program_id_index, *indexes):
        if not 0 <= i < n:
            raise CodecError(
                f"instruction references account index {i}, the transaction has {n}",
                details={"index": i, "accounts": n},
            )
    signers = (
        [i < num_required_signatures for i in indexes]
        if num_required_signatures is not None
        else None
    )
    return decode_instruction(
        account_keys[program_id_index], [account_keys[i] for i in indexes], data, signers
    )
