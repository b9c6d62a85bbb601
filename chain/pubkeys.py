"""Public keys supplied by users: base58 text that must decode to exactly 32 bytes.

Every address that crosses a trust boundary (HTTP body, query string, CLI argument, config
value) goes through :func:`parse_pubkey`, which turns every kind of bad input into one
:class:`~core.errors.InvalidPublicKey` with a message that says what is wrong.

The offending value is deliberately *not* echoed back: a user who pastes a secret key (64 bytes,
or a 32-byte seed, which looks exactly like an address) into an address field must not find it
again in our logs or error bodies.
"""

from __future__ import annotations

from solders.pubkey import Pubkey

from core.errors import InvalidPublicKey

PUBKEY_LENGTH = 32

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: value for value, char in enumerate(_ALPHABET)}
# 32 bytes never need more than 44 base58 characters; anything far longer is not an address and
# is refused before the quadratic big-integer decode below runs on it.
_MAX_PUBKEY_CHARS = 44
_MAX_DECODE_CHARS = 128


def decode_base58(text: str, *, max_chars: int = _MAX_DECODE_CHARS) -> bytes | None:
    """Decode Bitcoin-alphabet base58 (the Solana encoding); ``None`` if ``text`` is not base58
    or longer than ``max_chars`` (the decode is quadratic: callers bound what they accept, e.g.
    the local chain a whole transaction's 1,683 characters).

    Leading ``1`` characters stand for leading zero bytes, as in every Solana tool.
    """
    if not text or len(text) > max_chars:
        return None
    number = 0
    for char in text:
        digit = _INDEX.get(char)
        if digit is None:
            return None
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * zeros + body


def parse_pubkey(value: object, *, field: str = "public key") -> Pubkey:
    """Return ``value`` as a :class:`Pubkey` or raise :class:`InvalidPublicKey`.

    ``field`` names the input in the message (``"owner"``, ``"mint"``...), so a caller that
    validates several addresses gets an error saying which one is wrong.
    """
    if isinstance(value, Pubkey):
        return value
    if not isinstance(value, str):
        raise InvalidPublicKey(
            f"{field} must be a base58 string, got {type(value).__name__}",
            details={"field": field},
        )
    text = value.strip()
    if not text:
        raise InvalidPublicKey(f"{field} is empty", details={"field": field})
    if len(text) > _MAX_PUBKEY_CHARS:
        raise InvalidPublicKey(
            f"{field} is too long for a public key ({len(text)} characters, at most "
            f"{_MAX_PUBKEY_CHARS}); a public key is 32 bytes in base58",
            details={"field": field, "length": len(text)},
        )
    raw = decode_base58(text)
    if raw is None:
        raise InvalidPublicKey(
            f"{field} is not base58 (allowed characters: 1-9, A-Z and a-z except 0, O, I and l)",
            details={"field": field},
        )
    if len(raw) != PUBKEY_LENGTH:
        raise InvalidPublicKey(
            f"{field} decodes to {len(raw)} bytes; a public key is exactly {PUBKEY_LENGTH} bytes",
            details={"field": field, "decoded_length": len(raw)},
        )
    return Pubkey.from_bytes(raw)


def is_pubkey(value: object) -> bool:
    """True if :func:`parse_pubkey` would accept ``value``."""
    try:
        parse_pubkey(value)
    except InvalidPublicKey:
        return False
    return True
