"""chain.codecs.memo: Memo v1 and v2 instructions and the activation memo."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from solders.transaction_metadata import FailedTransactionMetadata
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams

from chain.codecs import decode_compiled, decode_instruction, memo
from chain.programs import (
    MEMO_PROGRAM,
    MEMO_V1_PROGRAM,
)
from core.errors import CodecError

keys = st.binary(min_size=32, max_size=32).map(Pubkey.from_bytes)


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
