"""Wire encodings: the local chain's base58 encoder against the one decoder and solders."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chain.localnet.encoding import b58encode
from chain.pubkeys import decode_base58


@given(st.binary(min_size=1, max_size=1232))
def test_base58_round_trip(data: bytes) -> None:
    """The local chain's encoder and the one decoder agree, up to a whole transaction."""
    assert decode_base58(b58encode(data), max_chars=1683) == data


@given(st.binary(min_size=32, max_size=32))
def test_base58_matches_solders(data: bytes) -> None:
    from solders.pubkey import Pubkey

    assert b58encode(data) == str(Pubkey.from_bytes(data))
