"""The standard-library spellings of CIDs are the multiformats library's, for any bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from multiformats import CID, multibase, multihash

from minting.ipfs.cidtext import base32, base58btc, cid_text

_DIGESTS = st.binary(min_size=32, max_size=32)


@given(st.binary(max_size=100))
def test_base32_is_multibase_base32(data: bytes) -> None:
    assert "b" + base32(data) == multibase.encode(data, "base32")


# Leading zero bytes are the special case of base58 (one "1" each), so they are drawn often.
@given(st.tuples(st.binary(max_size=3).map(lambda b: b"\0" * len(b)), st.binary(max_size=100)))
def test_base58btc_is_multibase_base58btc(parts: tuple[bytes, bytes]) -> None:
    data = parts[0] + parts[1]
    assert "z" + base58btc(data) == multibase.encode(data, "base58btc")


@given(_DIGESTS)
def test_a_cidv0_is_printed_as_the_library_prints_it(digest: bytes) -> None:
    cid = CID("base58btc", 0, "dag-pb", multihash.wrap(digest, "sha2-256"))
    assert cid_text(bytes(cid)) == str(cid)
    assert cid_text(bytes(cid)).startswith("Qm")


@given(_DIGESTS, st.sampled_from(["raw", "dag-pb", "dag-cbor", "dag-json"]))
def test_a_cidv1_is_printed_as_the_library_prints_it(digest: bytes, codec: str) -> None:
    cid = CID("base32", 1, codec, multihash.wrap(digest, "sha2-256"))
    assert cid_text(bytes(cid)) == str(cid)
    assert str(CID.decode(cid_text(bytes(cid)))) == str(cid)
