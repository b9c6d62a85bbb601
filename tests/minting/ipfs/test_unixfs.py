"""The importer gives exactly the CIDs kubo's ``ipfs add`` prints, published by kubo itself.

Vectors from kubo's ``test/cli/add_test.go`` and ``test/cli/cid_profiles_test.go``: "hello
world" in every form, and files from its seeded ChaCha20 stream around the chunk size and the
174-link boundary (CIDv0, kubo's default), around kubo's ``unixfs-v1-2025`` profile's 1 MiB chunk
(CIDv1 raw leaves under a dag-pb root), and 256 MiB under one node of 1024 links.
"""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multiformats import CID, multihash

from minting.ipfs.unixfs import (
    CHUNK_SIZE,
    MAX_LINKS,
    CidVersion,
    add,
    add_text,
    decode_file_node,
)
from tests.minting.ipfs.kubo_stream import KuboStream, kubo_bytes

HELLO = b"hello world"
MIB = 1 << 20


def test_hello_world_as_add_test_go_publishes_it() -> None:
    assert str(add(HELLO)) == "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
    assert str(add(HELLO, cid_version=1)) == (
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    )
    assert str(add(HELLO, cid_version=1, raw_leaves=False)) == (
        "bafybeihykld7uyxzogax6vgyvag42y7464eywpf55gxi5qpoisibh3c5wa"
    )


def test_the_empty_file() -> None:
    # The well-known empty UnixFS file (v0) and the empty raw block (v1).
    assert str(add(b"")) == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    assert str(add(b"", cid_version=1)) == (
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    )


@pytest.mark.parametrize(
    ("size", "seed", "expected"),
    [
        (CHUNK_SIZE, "chunk-v0-seed", "QmWmRj3dFDZdb6ABvbmKhEL6TmPbAfBZ1t5BxsEyJrcZhE"),
        (CHUNK_SIZE + 1, "chunk-v0-seed", "QmYyLxtzZyW22zpoVAtKANLRHpDjZtNeDjQdJrcQNWoRkJ"),
        (MAX_LINKS * CHUNK_SIZE, "v0-seed", "QmUbBALi174SnogsUzLpYbD4xPiBSFANF4iztWCsHbMKh2"),
        (MAX_LINKS * CHUNK_SIZE + 1, "v0-seed", "QmV81WL765sC8DXsRhE5fJv2rwhS4icHRaf3J9Zk5FdRnW"),
    ],
    ids=["one-chunk", "two-chunks", "174-leaves", "175-leaves-two-levels"],
)
def test_cidv0_with_kubo_defaults(size: int, seed: str, expected: str) -> None:
    assert str(add(KuboStream(size, seed))) == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (MIB, "bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta"),
        (MIB + 1, "bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64"),
    ],
    ids=["one-raw-leaf", "dag-pb-root-over-raw-leaves"],
)
def test_cidv1_raw_leaves_as_the_v1_2025_profile(size: int, expected: str) -> None:
    stream = KuboStream(size, "chunk-v1-seed")
    assert str(add(stream, cid_version=1, chunk_size=MIB, max_links=1024)) == expected


def test_256_mib_under_1024_links() -> None:
    # add_test.go: IPFSAddDeterministic("262144KiB", "hello world", "--max-file-links", "1024").
    stream = KuboStream(1024 * CHUNK_SIZE, "hello world")
    assert str(add(stream, max_links=1024)) == "QmbBftNHWmjSWKLC49dMVrfnY8pjrJYntiAXirFJ7oJrNk"


class _Trickle(io.RawIOBase):
    """A stream that hands back a few bytes per read, as a pipe may."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        part = bytes(self._data[: min(size, 7777) if size >= 0 else None])
        self._data = self._data[len(part) :]
        return part


def test_short_reads_still_make_full_chunks() -> None:
    data = kubo_bytes(CHUNK_SIZE + 1, "chunk-v0-seed")
    assert str(add(_Trickle(data))) == "QmYyLxtzZyW22zpoVAtKANLRHpDjZtNeDjQdJrcQNWoRkJ"


def _reassemble(blocks: dict[bytes, bytes], cid: CID) -> bytes:
    block = blocks[bytes(cid.digest)]
    if cid.codec.name == "raw":
        return block
    node = decode_file_node(block)
    return node.data + b"".join(_reassemble(blocks, link) for link in node.links)


@given(
    data=st.binary(max_size=700),
    version=st.sampled_from([0, 1]),
    chunk_size=st.integers(min_value=1, max_value=64),
    max_links=st.integers(min_value=2, max_value=5),
)
def test_the_blocks_give_the_file_back(
    data: bytes, version: int, chunk_size: int, max_links: int
) -> None:
    blocks: dict[bytes, bytes] = {}
    order: list[bytes] = []

    def sink(cid: bytes, block: bytes) -> None:
        # Each block's binary CID is the one the multiformats library builds for it.
        parsed = CID.decode(cid)
        assert cid == bytes(_library_cid(block, parsed.codec.name, parsed.version))
        blocks[bytes(parsed.digest)] = block
        order.append(bytes(parsed.digest))

    cid_version: CidVersion = 1 if version else 0
    root = add(data, cid_version=cid_version, chunk_size=chunk_size, max_links=max_links, sink=sink)
    assert _reassemble(blocks, root) == data
    assert order[-1] == bytes(root.digest)  # the root comes last: present means complete
    assert add_text(data, cid_version=cid_version) == str(add(data, cid_version=cid_version))


def _library_cid(block: bytes, codec: str, version: int) -> CID:
    """The CID of a block as the multiformats library builds it, the reference for ours."""
    digest = multihash.wrap(hashlib.sha256(block).digest(), "sha2-256")
    return CID("base58btc" if version == 0 else "base32", version, codec, digest)


def test_decoding_refuses_what_is_not_a_file() -> None:
    directory = bytes.fromhex("0a020801")  # the empty UnixFS directory
    with pytest.raises(ValueError, match="not a UnixFS file"):
        decode_file_node(directory)
    with pytest.raises(ValueError, match="truncated"):
        decode_file_node(b"\x0a\x05ab")
