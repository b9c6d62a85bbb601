"""SPL Memo: UTF-8 text, signed by every account passed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from aiw3.errors import CodecError
from chain.programs import MEMO_PROGRAM

#: The activation memo the owner signs: ``aiw3:activate:<mint>``.
ACTIVATE_PREFIX = "aiw3:activate:"


@dataclass(frozen=True, slots=True)
class Memo:
    text: str
    signers: tuple[Pubkey, ...]


def encode(memo: Memo) -> Instruction:
    metas = [AccountMeta(s, is_signer=True, is_writable=False) for s in memo.signers]
    return Instruction(MEMO_PROGRAM, memo.text.encode("utf-8"), metas)


def decode(accounts: Sequence[Pubkey], data: bytes) -> Memo:
    """The memo program rejects invalid UTF-8, so such data never executed: refuse it too."""
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError("memo is not valid UTF-8", details={"size": len(data)}) from exc
    return Memo(text, tuple(accounts))


def activation(owner: Pubkey, mint: Pubkey) -> Instruction:
    """The owner's on-chain activation of one NFT."""
    return encode(Memo(f"{ACTIVATE_PREFIX}{mint}", (owner,)))


def parse_activation(memo: Memo) -> Pubkey | None:
    """The mint an activation memo names, or None when the memo is something else."""
    if not memo.text.startswith(ACTIVATE_PREFIX):
        return None
    try:
        return Pubkey.from_string(memo.text[len(ACTIVATE_PREFIX) :])
    except ValueError:
        return None
