"""Binary CIDs spelled as text (multibase), on the standard library.

Why not the ``multiformats`` library here: its ``CID`` validates every argument at run time
(``typing_validation``) and spells text through the ``bases`` package's generic alphabet code,
character by character: building one CID took ~0.1 ms, printing it ~0.2 ms and a block's file
name (its multihash in base32) ~0.3 ms, against a few microseconds here, on the path every
minted NFT's metadata takes. The encodings are fixed by the multibase spec (RFC 4648 base32,
lower case, unpadded; base58btc), so the standard library's ``base64.b32encode`` and integer
arithmetic give the same text; the library stays the reference (property tests compare the two
on random bytes and CIDs) and still parses CIDs given to us as text, where its checks count.
"""

from __future__ import annotations

import base64

_BASE58BTC = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_CIDV0_PREFIX = b"\x12\x20"  # a bare sha2-256 multihash (code 0x12, 32 bytes) is a CIDv0


def base32(data: bytes) -> str:
    """Multibase ``base32`` (RFC 4648, lower case, no padding), without the ``b`` prefix."""
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def base58btc(data: bytes) -> str:
    """Multibase ``base58btc`` (the Bitcoin alphabet), without the ``z`` prefix."""
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, digit = divmod(number, 58)
        digits.append(_BASE58BTC[digit])
    zeros = len(data) - len(data.lstrip(b"\0"))  # each leading zero byte is one "1"
    return "1" * zeros + "".join(reversed(digits))


def cid_text(cid: bytes) -> str:
    """A binary sha2-256 CID as ``ipfs add`` prints it: base58btc for v0 (``Qm...``), else
    multibase base32 (``b...``), the text ``str(multiformats.CID.decode(cid))`` gives."""
    if len(cid) == 34 and cid.startswith(_CIDV0_PREFIX):
        return base58btc(cid)
    return "b" + base32(cid)
