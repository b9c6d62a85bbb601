"""Borsh primitives, ATA and Memo codecs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction
from solders.transaction_metadata import FailedTransactionMetadata
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.instructions import get_associated_token_address

from chain.codecs import ata, borsh, decode_compiled, decode_instruction, memo, spl_token
from chain.programs import (
    ASSOCIATED_TOKEN_PROGRAM,
    MEMO_PROGRAM,
    MEMO_V1_PROGRAM,
    SYSTEM_PROGRAM,
    TOKEN_2022_PROGRAM,
    TOKEN_PROGRAM,
)
from core.errors import CodecError

keys = st.binary(min_size=32, max_size=32).map(Pubkey.from_bytes)


@given(st.text(), st.integers(0, 2**64 - 1), st.none() | st.integers(0, 255))
def test_borsh_round_trip(text: str, number: int, opt: int | None) -> None:
    raw = borsh.string(text) + borsh.u64(number) + borsh.option(opt, borsh.u8)
    r = borsh.Reader(raw)
    assert r.string() == text
    assert r.u64() == number
    assert r.option(r.u8) == opt
    r.end()


@given(st.binary(max_size=64))
def test_reader_never_raises_anything_but_codec_error(raw: bytes) -> None:
    r = borsh.Reader(raw)
    try:
        r.string()
        r.option(r.pubkey)
        r.vec(r.u64)
        r.boolean()
        r.coption_pubkey()
    except CodecError:
        pass


def test_reader_errors_name_the_field() -> None:
    r = borsh.Reader(b"\x05\x00\x00\x00ab", "thing")
    with pytest.raises(CodecError, match="thing: name needs 5 bytes"):
        r.string("name")
    with pytest.raises(CodecError, match="not a bool"):
        borsh.Reader(b"\x02").boolean()
    with pytest.raises(CodecError, match="Option tag 7"):
        borsh.Reader(b"\x07").option(borsh.Reader(b"").u8)
    with pytest.raises(CodecError, match="not UTF-8"):
        borsh.Reader(b"\x01\x00\x00\x00\xff").string()
    with pytest.raises(CodecError, match="trailing"):
        borsh.Reader(b"\x00").end()
    # A huge vector length cannot make the reader loop or allocate.
    with pytest.raises(CodecError):
        borsh.Reader(b"\xff\xff\xff\xff").vec(borsh.Reader(b"").u8)


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


@given(st.text(max_size=100), st.lists(keys, max_size=3))
def test_memo_round_trip_and_matches_solana_py(text: str, signers: list[Pubkey]) -> None:
    built = memo.encode(memo.Memo(text, tuple(signers)))
    assert decode_instruction(MEMO_PROGRAM, [m.pubkey for m in built.accounts], built.data) == (
        memo.Memo(text, tuple(signers))
    )
    if len(signers) == 1:
        theirs = create_memo(
            MemoParams(program_id=MEMO_PROGRAM, signer=signers[0], message=text.encode())
        )
        # solana-py marks the signer writable, which the memo program does not need.
        assert (theirs.program_id, theirs.data) == (built.program_id, built.data)
        assert [(m.pubkey, m.is_signer) for m in theirs.accounts] == [
            (m.pubkey, m.is_signer) for m in built.accounts
        ]


def test_memo_activation() -> None:
    owner, mint = Pubkey.new_unique(), Pubkey.new_unique()
    ix = memo.activation(owner, mint)
    decoded = memo.decode([owner], ix.data)
    assert decoded.text == f"aiw3:activate:{mint}"
    assert memo.parse_activation(decoded) == mint
    assert memo.parse_activation(memo.Memo("aiw3:activate:not-a-key", ())) is None
    assert memo.parse_activation(memo.Memo("hello", ())) is None
    with pytest.raises(CodecError):
        memo.decode([], b"\xff\xfe")


def test_unknown_program_is_none() -> None:
    assert decode_instruction(Pubkey.new_unique(), [], b"\x01") is None


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


def test_memo_v1_accounts_are_not_signers_unless_the_transaction_says_so() -> None:
    # Memo v2 fails unless every account passed signed; Memo v1 never looks at its accounts.
    # An activation memo sent to v1 naming someone else's wallet executes, so the decoder must
    # not report that wallet as a signer (it would activate another owner's NFT).
    svm = LiteSVM()
    payer, victim, mint = Keypair(), Pubkey.new_unique(), Pubkey.new_unique()
    svm.airdrop(payer.pubkey(), 10**10)
    text = f"{memo.ACTIVATE_PREFIX}{mint}".encode()
    forged = Instruction(MEMO_V1_PROGRAM, text, [AccountMeta(victim, False, False)])
    msg = Message([forged], payer.pubkey())
    sent = svm.send_transaction(Transaction([payer], msg, svm.latest_blockhash()))
    assert not isinstance(sent, FailedTransactionMetadata)
    compiled = msg.instructions[0]
    decoded = decode_compiled(
        msg.account_keys,
        compiled.program_id_index,
        compiled.accounts,
        compiled.data,
        msg.header.num_required_signatures,
    )
    assert isinstance(decoded, memo.Memo)
    assert victim not in decoded.signers
    # Without signer flags nothing proves a v1 account signed.
    assert decode_instruction(MEMO_V1_PROGRAM, [victim], text) == memo.Memo(text.decode(), ())
    # The same memo on v2 fails on chain unless the account signs; a signed one decodes.
    v2 = Instruction(MEMO_PROGRAM, text, [AccountMeta(victim, False, False)])
    sent = svm.send_transaction(
        Transaction([payer], Message([v2], payer.pubkey()), svm.latest_blockhash())
    )
    assert isinstance(sent, FailedTransactionMetadata)
    owner = Keypair()
    signed = memo.activation(owner.pubkey(), mint)
    msg = Message([signed], payer.pubkey())
    sent = svm.send_transaction(Transaction([payer, owner], msg, svm.latest_blockhash()))
    assert not isinstance(sent, FailedTransactionMetadata)
    compiled = msg.instructions[0]
    decoded = decode_compiled(
        msg.account_keys,
        compiled.program_id_index,
        compiled.accounts,
        compiled.data,
        msg.header.num_required_signatures,
    )
    assert isinstance(decoded, memo.Memo)
    assert decoded.signers == (owner.pubkey(),)
    # A v1 memo the owner really signed keeps the owner.
    genuine = Instruction(MEMO_V1_PROGRAM, text, [AccountMeta(owner.pubkey(), True, False)])
    msg = Message([genuine], payer.pubkey())
    compiled = msg.instructions[0]
    decoded = decode_compiled(
        msg.account_keys,
        compiled.program_id_index,
        compiled.accounts,
        compiled.data,
        msg.header.num_required_signatures,
    )
    assert isinstance(decoded, memo.Memo)
    assert decoded.signers == (owner.pubkey(),)


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
