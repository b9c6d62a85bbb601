"""Minimal Token-2022 NFT transactions that the local chain's tests send.

Built from solana-py's ``spl.token`` helpers plus the two Token-2022 instructions they lack
(MetadataPointer initialize, token-metadata Initialize / UpdateField), following the recipe in
shared/notes/solana-facts.md. Not the production builder: that lives in ``chain.standards``.
"""

from __future__ import annotations

import hashlib
import struct

from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction
from spl.token.constants import TOKEN_2022_PROGRAM_ID
from spl.token.instructions import (
    burn_checked,
    close_account,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    initialize_mint2,
    mint_to,
    set_authority,
    transfer_checked,
)
from spl.token.models import (
    AuthorityType,
    BurnCheckedParams,
    CloseAccountParams,
    InitializeMint2Params,
    MintToParams,
    SetAuthorityParams,
    TransferCheckedParams,
)

T22 = TOKEN_2022_PROGRAM_ID
# Base mint padded to 165 + account type byte + MetadataPointer TLV (2 + 2 + 64).
_MINT_SPACE = 165 + 1 + 4 + 64
# Room the metadata extension grows into later; funded up front (rent for the final size).
_METADATA_ROOM = 400


def _disc(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()[:8]


def _s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<I", len(raw)) + raw


def mint_nft_instructions(
    payer: Pubkey, mint: Pubkey, owner: Pubkey, rent: int, *, name: str, uri: str, level: int
) -> list[Instruction]:
    """One NFT: mint with MetadataPointer + TokenMetadata (``level`` field), ATA, MintTo 1,
    mint authority removed. ``rent`` is the minimum balance for the mint's final size."""
    pointer = Instruction(
        T22,
        bytes([39, 0]) + bytes(payer) + bytes(mint),
        [AccountMeta(mint, is_signer=False, is_writable=True)],
    )
    metadata_init = Instruction(
        T22,
        _disc("spl_token_metadata_interface:initialize_account") + _s(name) + _s("AIW3") + _s(uri),
        [
            AccountMeta(mint, is_signer=False, is_writable=True),
            AccountMeta(payer, is_signer=False, is_writable=False),
            AccountMeta(mint, is_signer=False, is_writable=False),
            AccountMeta(payer, is_signer=True, is_writable=False),
        ],
    )
    update_level = Instruction(
        T22,
        _disc("spl_token_metadata_interface:updating_field")
        + bytes([3])
        + _s("level")
        + _s(str(level)),
        [
            AccountMeta(mint, is_signer=False, is_writable=True),
            AccountMeta(payer, is_signer=True, is_writable=False),
        ],
    )
    ata = get_associated_token_address(owner, mint, T22)
    return [
        create_account(
            CreateAccountParams(
                from_pubkey=payer, to_pubkey=mint, lamports=rent, space=_MINT_SPACE, owner=T22
            )
        ),
        pointer,
        initialize_mint2(
            InitializeMint2Params(decimals=0, program_id=T22, mint=mint, mint_authority=payer)
        ),
        metadata_init,
        update_level,
        create_idempotent_associated_token_account(payer, owner, mint, T22),
        mint_to(MintToParams(program_id=T22, mint=mint, dest=ata, mint_authority=payer, amount=1)),
        set_authority(
            SetAuthorityParams(
                program_id=T22,
                account=mint,
                authority=AuthorityType.MINT_TOKENS,
                current_authority=payer,
                new_authority=None,
            )
        ),
    ]


def mint_rent_size() -> int:
    """Bytes to pass to getMinimumBalanceForRentExemption for ``rent`` above."""
    return _MINT_SPACE + _METADATA_ROOM


def mint_nft_tx(
    payer: Keypair, mint: Keypair, owner: Pubkey, rent: int, blockhash: Hash, *, level: int = 1
) -> Transaction:
    ixs = mint_nft_instructions(
        payer.pubkey(),
        mint.pubkey(),
        owner,
        rent,
        name=f"AIW3 Equity L{level}",
        uri="https://example.invalid/nft.json",
        level=level,
    )
    return Transaction([payer, mint], Message(ixs, payer.pubkey()), blockhash)


def transfer_nft_tx(owner: Keypair, mint: Pubkey, to_owner: Pubkey, blockhash: Hash) -> Transaction:
    source = get_associated_token_address(owner.pubkey(), mint, T22)
    dest = get_associated_token_address(to_owner, mint, T22)
    ixs = [
        create_idempotent_associated_token_account(owner.pubkey(), to_owner, mint, T22),
        transfer_checked(
            TransferCheckedParams(
                program_id=T22,
                source=source,
                mint=mint,
                dest=dest,
                owner=owner.pubkey(),
                amount=1,
                decimals=0,
            )
        ),
    ]
    return Transaction([owner], Message(ixs, owner.pubkey()), blockhash)


def burn_and_close_tx(owner: Keypair, mint: Pubkey, blockhash: Hash) -> Transaction:
    account = get_associated_token_address(owner.pubkey(), mint, T22)
    ixs = [
        burn_checked(
            BurnCheckedParams(
                program_id=T22,
                mint=mint,
                account=account,
                owner=owner.pubkey(),
                amount=1,
                decimals=0,
            )
        ),
        close_account(
            CloseAccountParams(
                program_id=T22, account=account, dest=owner.pubkey(), owner=owner.pubkey()
            )
        ),
    ]
    return Transaction([owner], Message(ixs, owner.pubkey()), blockhash)
