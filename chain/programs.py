"""Program ids the chain layer talks to (mainnet addresses; the local chain loads the same ones)."""

from __future__ import annotations

from typing import Final

from solders.pubkey import Pubkey

SYSTEM_PROGRAM: Final = Pubkey.from_string("11111111111111111111111111111111")
TOKEN_PROGRAM: Final = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM: Final = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
ASSOCIATED_TOKEN_PROGRAM: Final = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
MEMO_PROGRAM: Final = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
# Memo v1 is still seen in old transactions; the decoder accepts both.
MEMO_V1_PROGRAM: Final = Pubkey.from_string("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo")
TOKEN_METADATA_PROGRAM: Final = Pubkey.from_string("metaqbxxUerdq28cj1RbAWkYQm3ybzjb6a8bt518x1s")
COMPUTE_BUDGET_PROGRAM: Final = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
ADDRESS_LOOKUP_TABLE_PROGRAM: Final = Pubkey.from_string(
    "AddressLookupTab1e1111111111111111111111111"
)
SYSVAR_RENT: Final = Pubkey.from_string("SysvarRent111111111111111111111111111111111")
SYSVAR_INSTRUCTIONS: Final = Pubkey.from_string("Sysvar1nstructions1111111111111111111111111")

#: Both token programs share the classic instruction set and base layouts.
TOKEN_PROGRAMS: Final = frozenset({TOKEN_PROGRAM, TOKEN_2022_PROGRAM})
