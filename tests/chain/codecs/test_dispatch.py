"""chain.codecs: instructions dispatched to the codec of their program."""

from __future__ import annotations

from hypothesis import strategies as st
from solders.pubkey import Pubkey

from chain.codecs import decode_instruction

keys = st.binary(min_size=32, max_size=32).map(Pubkey.from_bytes)


def test_unknown_program_is_none() -> None:
    assert decode_instruction(Pubkey.new_unique(), [], b"\x01") is None
