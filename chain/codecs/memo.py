"""SPL Memo: UTF-8 text; v2 requires every account passed to sign, v1 checks no account."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from chain.programs import MEMO_PROGRAM
from core.errors import CodecError

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
    """A Memo v2 instruction: the program fails unless every account passed signed, so each
    one of an executed memo is a signer. It rejects invalid UTF-8: refuse that too."""
    return Memo(_text(data), tuple(accounts))


def decode_v1(accounts: Sequence[Pubkey], data: bytes, signers: Sequence[bool] | None) -> Memo:
    """A Memo v1 instruction. v1 never checks its accounts, so anyone can name any wallet in
    one: only the accounts the transaction shows as signers (``signers``, one flag per account)
    count, and with no flags none does."""
    text = _text(data)
    if signers is None:
        return Memo(text, ())
    return Memo(text, tuple(a for a, s in zip(accounts, signers, strict=False) if s))


def _text(data: bytes) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError("memo is not valid UTF-8", details={"size": len(data)}) from exc


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
