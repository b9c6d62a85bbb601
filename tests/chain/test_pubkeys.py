"""Validation of user-supplied public keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from chain.pubkeys import decode_base58, is_pubkey, parse_pubkey
from core.errors import InputError, InvalidPublicKey


@given(st.binary(min_size=32, max_size=32))
def test_every_32_byte_key_round_trips(raw: bytes) -> None:
    pubkey = Pubkey.from_bytes(raw)
    assert parse_pubkey(str(pubkey)) == pubkey
    assert decode_base58(str(pubkey)) == raw


_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _reference_encode(raw: bytes) -> str:
    # Textbook base58 encoding (repeated division), independent of the decoder under test.
    number = int.from_bytes(raw, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _ALPHABET[rem] + out
    zeros = len(raw) - len(raw.lstrip(b"\x00"))
    return "1" * zeros + out


@given(st.binary(min_size=0, max_size=80))
def test_base58_decoder_inverts_a_reference_encoder(raw: bytes) -> None:
    text = _reference_encode(raw)
    if raw:
        assert decode_base58(text) == raw
    else:
        assert decode_base58(text) is None  # empty text is not an encoding of anything


def test_decoder_against_a_real_keypair() -> None:
    keypair = Keypair()
    assert decode_base58(str(keypair)) == bytes(keypair)


def test_known_program_ids_parse() -> None:
    assert parse_pubkey("11111111111111111111111111111111") == Pubkey.from_bytes(bytes(32))
    token = parse_pubkey("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
    assert str(token) == "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
    assert parse_pubkey("  TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA\n") == token


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "is empty"),
        ("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ50A", "not base58"),  # '0' is not base58
        ("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DAl", "not base58"),
        ("1" * 31, "decodes to 31 bytes"),
        ("1" * 33, "decodes to 33 bytes"),
        ("abc", "decodes to 3 bytes"),
        ("z" * 45, "too long"),
        (12345, "must be a base58 string"),
        (None, "must be a base58 string"),
    ],
)
def test_bad_input_gets_a_clear_error(value: object, fragment: str) -> None:
    with pytest.raises(InvalidPublicKey) as info:
        parse_pubkey(value, field="owner")
    err = info.value
    assert fragment in err.message
    assert err.message.startswith("owner")
    assert err.code == "invalid_public_key"
    assert isinstance(err, InputError)
    assert err.details["field"] == "owner"
    assert not is_pubkey(value)


def test_a_pasted_secret_key_is_refused_and_not_echoed() -> None:
    keypair = Keypair()
    secret = str(keypair)
    with pytest.raises(InvalidPublicKey) as info:
        parse_pubkey(secret, field="wallet")
    assert secret not in str(info.value)
    assert secret[:20] not in repr(info.value.to_dict())
