"""chain.codecs.borsh: the Borsh primitives and the bounded reader."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from chain.codecs import borsh
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
