"""chain.codecs.ata: the Associated Token Account program's instructions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction
from solders.transaction_metadata import FailedTransactionMetadata
from spl.token.instructions import get_associated_token_address

from chain.codecs import ata, decode_instruction, spl_token
from chain.programs import (
    ASSOCIATED_TOKEN_PROGRAM,
    SYSTEM_PROGRAM,
    TOKEN_2022_PROGRAM,
    TOKEN_PROGRAM,
)
from core.errors import CodecError

keys = st.binary(min_size=32, max_size=32).map(Pubkey.from_bytes)


@given(keys, keys)
def test_ata_address_matches_solana_py(owner: Pubkey, mint: Pubkey) -> None:
    assert ata.address(owner, mint) == get_associated_token_address(owner, mint)
    assert ata.address(owner, mint, TOKEN_2022_PROGRAM) == get_associated_token_address(
        owner, mint, TOKEN_2022_PROGRAM
    )


@given(keys, keys, keys, st.sampled_from([TOKEN_PROGRAM, TOKEN_2022_PROGRAM]), st.booleans())
def test_ata_round_trip(
    payer: Pubkey, owner: Pubkey, mint: Pubkey, program: Pubkey, idempotent: bool
) -> None:
    built = ata.create(payer, owner, mint, program, idempotent=idempotent)
    assert built.program_id == ASSOCIATED_TOKEN_PROGRAM
    assert bytes(built.data) == (b"\x01" if idempotent else b"\x00")
    accounts = [m.pubkey for m in built.accounts]
    assert accounts[4] == SYSTEM_PROGRAM
    decoded = decode_instruction(built.program_id, accounts, built.data)
    assert decoded == ata.CreateAssociatedTokenAccount(
        payer, ata.address(owner, mint, program), owner, mint, program, idempotent
    )


def test_ata_legacy_empty_data_and_errors() -> None:
    accounts = [Pubkey.new_unique() for _ in range(6)]
    assert ata.decode(accounts, b"").idempotent is False
    with pytest.raises(CodecError):
        ata.decode(accounts, b"\x02")
    with pytest.raises(CodecError):
        ata.decode(accounts[:5], b"\x01")


def test_ata_trailing_bytes_are_refused_like_the_program() -> None:
    # The ATA program Borsh-deserialises non-empty data whole (try_from_slice): [1, 0] never
    # executes, so it must not decode as a CreateIdempotent. LiteSVM's real program judges.
    svm = LiteSVM()
    payer, owner = Keypair(), Pubkey.new_unique()
    svm.airdrop(payer.pubkey(), 10**10)
    mint = Keypair()
    setup = [
        create_account(
            CreateAccountParams(
                from_pubkey=payer.pubkey(),
                to_pubkey=mint.pubkey(),
                lamports=svm.minimum_balance_for_rent_exemption(spl_token.MINT_SIZE),
                space=spl_token.MINT_SIZE,
                owner=TOKEN_PROGRAM,
            )
        ),
        spl_token.encode(
            spl_token.InitializeMint2(TOKEN_PROGRAM, mint.pubkey(), 0, payer.pubkey(), None)
        ),
    ]
    tx = Transaction([payer, mint], Message(setup, payer.pubkey()), svm.latest_blockhash())
    assert not isinstance(svm.send_transaction(tx), FailedTransactionMetadata)
    good = ata.create(payer.pubkey(), owner, mint.pubkey())
    bad = Instruction(good.program_id, good.data + b"\x00", good.accounts)
    sent = svm.send_transaction(
        Transaction([payer], Message([bad], payer.pubkey()), svm.latest_blockhash())
    )
    assert isinstance(sent, FailedTransactionMetadata)
    with pytest.raises(CodecError):
        ata.decode([m.pubkey for m in bad.accounts], bytes(bad.data))
    sent = svm.send_transaction(
        Transaction([payer], Message([good], payer.pubkey()), svm.latest_blockhash())
    )
    assert not isinstance(sent, FailedTransactionMetadata)
    assert ata.decode([m.pubkey for m in good.accounts], bytes(good.data)).idempotent


def test_ata_recover_nested_is_decoded_not_refused() -> None:
    # RecoverNested (2) moves tokens out of an ATA owned by an ATA: a legitimate way for an NFT
    # to change accounts, so it must decode, with the accounts the real program uses.
    svm = LiteSVM()
    wallet = Keypair()
    svm.airdrop(wallet.pubkey(), 10**10)
    mint = Keypair()
    w = wallet.pubkey()
    owner_ata = ata.address(w, mint.pubkey())
    nested = ata.address(owner_ata, mint.pubkey())
    setup = [
        create_account(
            CreateAccountParams(
                from_pubkey=w,
                to_pubkey=mint.pubkey(),
                lamports=svm.minimum_balance_for_rent_exemption(spl_token.MINT_SIZE),
                space=spl_token.MINT_SIZE,
                owner=TOKEN_PROGRAM,
            )
        ),
        spl_token.encode(spl_token.InitializeMint2(TOKEN_PROGRAM, mint.pubkey(), 0, w, None)),
        ata.create(w, w, mint.pubkey()),
        ata.create(w, owner_ata, mint.pubkey()),
        spl_token.encode(spl_token.MintTo(TOKEN_PROGRAM, mint.pubkey(), nested, w, 1)),
    ]
    tx = Transaction([wallet, mint], Message(setup, w), svm.latest_blockhash())
    assert not isinstance(svm.send_transaction(tx), FailedTransactionMetadata)
    recover = ata.RecoverNested(nested, mint.pubkey(), owner_ata, owner_ata, mint.pubkey(), w)
    ix = ata.encode(recover)
    assert bytes(ix.data) == b"\x02"
    keys = [m.pubkey for m in ix.accounts]
    assert decode_instruction(ASSOCIATED_TOKEN_PROGRAM, keys, bytes(ix.data)) == recover
    sent = svm.send_transaction(Transaction([wallet], Message([ix], w), svm.latest_blockhash()))
    assert not isinstance(sent, FailedTransactionMetadata), sent
    assert svm.get_account(nested) is None
    held = svm.get_account(owner_ata)
    assert held is not None
    assert spl_token.decode_token_account(bytes(held.data)).amount == 1
    with pytest.raises(CodecError):
        ata.decode(keys[:6], b"\x02")
    with pytest.raises(CodecError):
        ata.decode(keys, b"\x02\x00")
