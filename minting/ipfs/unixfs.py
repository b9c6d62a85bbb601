"""UnixFS files as ``ipfs add`` (kubo) builds them, block for block.

kubo's defaults, which this module reproduces byte for byte:

* a fixed-size chunker of 262,144 bytes (``size-262144``);
* the *balanced* layout with at most 174 links per node: the first leaf is the root until a
  second chunk arrives, then each full tree of depth ``d`` becomes the first child of a tree
  of depth ``d + 1`` (boxo ``importer/balanced``);
* CIDv0: every node is dag-pb (a UnixFS ``File`` node, leaves carrying their chunk in ``Data``),
  named by a bare sha2-256 multihash (``Qm...``);
* CIDv1 (``--cid-version 1``): leaves are raw blocks (``bafk...``), inner nodes dag-pb
  (``bafy...``); a file of one chunk is that raw leaf itself.

The dag-pb and UnixFS protobuf messages are small and fixed, so they are written here rather
than generated: field order and presence are what kubo emits (links before data in ``PBNode``;
``Name`` always present, empty, in each link; ``filesize`` always present in UnixFS ``Data``).
Blocks are named by binary CIDs built from fixed prefixes (sha2-256 is the only hash, raw and
dag-pb the only codecs) and spelled by :mod:`minting.ipfs.cidtext`: the ``multiformats``
library's ``CID`` costs ~0.3 ms to build and print, per block (see there); :func:`add` still
answers with one, for callers that want the library's object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal

from multiformats import CID, varint

from minting.ipfs.cidtext import cid_text

CidVersion = Literal[0, 1]

CHUNK_SIZE = 262_144  # kubo Import.UnixFSChunker default: size-262144
MAX_LINKS = 174  # kubo Import.UnixFSFileMaxLinks default (boxo helpers.DefaultLinksPerBlock)

# UnixFS Data.DataType values (unixfs.proto).
_TYPE_RAW = 0
_TYPE_FILE = 2

# Protobuf wire types.
_VARINT = 0
_LEN = 2

# Binary CID prefixes (version, codec), before the 32-byte sha2-256 digest: a multihash is
# 0x12 (sha2-256) 0x20 (32 bytes); a CIDv1 is 0x01 then the codec (raw 0x55, dag-pb 0x70).
_PREFIXES: dict[tuple[CidVersion, str], bytes] = {
    (0, "dag-pb"): b"\x12\x20",
    (1, "raw"): b"\x01\x55\x12\x20",
    (1, "dag-pb"): b"\x01\x70\x12\x20",
}
MULTIHASH_SIZE = 34  # the last 34 bytes of every CID made here are its sha2-256 multihash

# Receives every block once it is complete, children before their parents, with its binary
# CID (``bytes(CID)``; its last MULTIHASH_SIZE bytes are the block's multihash).
BlockSink = Callable[[bytes, bytes], None]


@dataclass(frozen=True, slots=True)
class _Node:
    cid: bytes  # binary
    tsize: int  # the block's length plus the tsize of every child (dag-pb link Tsize)
    filesize: int  # file bytes under this node


def add(
    source: bytes | BinaryIO,
    *,
    cid_version: CidVersion = 0,
    raw_leaves: bool | None = None,
    chunk_size: int = CHUNK_SIZE,
    max_links: int = MAX_LINKS,
    sink: BlockSink | None = None,
) -> CID:
    """The root CID ``ipfs add`` gives these bytes; every block goes to ``sink`` on the way.

    ``raw_leaves`` defaults to kubo's choice for the version (off for v0, on for v1). A
    stream is read one chunk at a time, so a file of any size needs one chunk of memory.
    """
    root = _add(
        source, cid_version, raw_leaves, chunk_size=chunk_size, max_links=max_links, sink=sink
    )
    # From its text, so the CID keeps the base it is printed in (from bytes a v1 would be
    # base58btc).
    return CID.decode(cid_text(root))


def add_text(
    source: bytes | BinaryIO, *, cid_version: CidVersion = 0, sink: BlockSink | None = None
) -> str:
    """:func:`add` with kubo's defaults, the root CID as the text ``ipfs add`` prints: what a
    store needs, without building the library's object (see the module's docstring)."""
    root = _add(source, cid_version, None, chunk_size=CHUNK_SIZE, max_links=MAX_LINKS, sink=sink)
    return cid_text(root)


def _add(
    source: bytes | BinaryIO,
    cid_version: CidVersion,
    raw_leaves: bool | None,
    *,
    chunk_size: int,
    max_links: int,
    sink: BlockSink | None,
) -> bytes:
    if chunk_size < 1 or max_links < 2:
        raise ValueError("chunk_size must be >= 1 and max_links >= 2")
    builder = _Builder(
        _chunks(source, chunk_size),
        cid_version=cid_version,
        raw_leaves=cid_version == 1 if raw_leaves is None else raw_leaves,
        max_links=max_links,
        sink=sink or _discard,
    )
    return builder.build().cid


def _discard(cid: bytes, block: bytes) -> None:
    return None


def _chunks(source: bytes | BinaryIO, chunk_size: int) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start : start + chunk_size])
        return
    while True:
        # Full chunks only, as kubo's splitter (io.ReadFull), whatever the stream hands back.
        parts: list[bytes] = []
        wanted = chunk_size
        while wanted:
            part = source.read(wanted)
            if not part:
                break
            parts.append(part)
            wanted -= len(part)
        if not parts:
            return
        yield b"".join(parts)


class _Builder:
    def __init__(
        self,
        chunks: Iterator[bytes],
        *,
        cid_version: CidVersion,
        raw_leaves: bool,
        max_links: int,
        sink: BlockSink,
    ) -> None:
        self._chunks = chunks
        self._next: bytes | None = next(chunks, None)
        self._version = cid_version
        self._raw_leaves = raw_leaves
        self._max_links = max_links
        self._sink = sink

    def _done(self) -> bool:
        return self._next is None

    def _take(self) -> bytes:
        chunk = self._next
        assert chunk is not None
        self._next = next(self._chunks, None)
        return chunk

    def build(self) -> _Node:
        # boxo balanced.Layout: an empty file is one empty leaf; a file of one chunk is its
        # leaf; otherwise the tree grows one level each time the current one is full.
        if self._done():
            return self._leaf(None)
        root = self._leaf(self._take())
        depth = 1
        while not self._done():
            root = self._fill([root], depth)
            depth += 1
        return root

    def _fill(self, children: list[_Node], depth: int) -> _Node:
        while len(children) < self._max_links and not self._done():
            if depth == 1:
                children.append(self._leaf(self._take()))
            else:
                children.append(self._fill([], depth - 1))
        return self._inner(children)

    def _leaf(self, chunk: bytes | None) -> _Node:
        data = chunk or b""
        if self._raw_leaves:
            return self._emit(data, codec="raw", tsize_extra=0, filesize=len(data))
        # Chunk None (the empty file) leaves Data out, as kubo's NewLeafNode(nil) does.
        unixfs = _unixfs_data(chunk, filesize=len(data), blocksizes=())
        return self._emit(_pb_node((), unixfs), codec="dag-pb", tsize_extra=0, filesize=len(data))

    def _inner(self, children: list[_Node]) -> _Node:
        filesize = sum(child.filesize for child in children)
        unixfs = _unixfs_data(None, filesize=filesize, blocksizes=[c.filesize for c in children])
        block = _pb_node(children, unixfs)
        tsize_extra = sum(child.tsize for child in children)
        return self._emit(block, codec="dag-pb", tsize_extra=tsize_extra, filesize=filesize)

    def _emit(self, block: bytes, *, codec: str, tsize_extra: int, filesize: int) -> _Node:
        cid = block_cid(block, codec=codec, version=self._version)
        self._sink(cid, block)
        return _Node(cid=cid, tsize=len(block) + tsize_extra, filesize=filesize)


def block_cid(block: bytes, *, codec: str, version: CidVersion) -> bytes:
    """The binary CID of one block (sha2-256). CIDv0 exists only for dag-pb."""
    prefix = _PREFIXES.get((version, codec))
    if prefix is None:
        raise ValueError(f"no CIDv{version} for codec {codec} (CIDv0 names dag-pb blocks only)")
    return prefix + hashlib.sha256(block).digest()


# --- protobuf encoding -------------------------------------------------------------------------


def _key(field: int, wire_type: int) -> bytes:
    return varint.encode(field << 3 | wire_type)


def _len_field(field: int, value: bytes) -> bytes:
    return _key(field, _LEN) + varint.encode(len(value)) + value


def _uint_field(field: int, value: int) -> bytes:
    return _key(field, _VARINT) + varint.encode(value)


def _unixfs_data(data: bytes | None, *, filesize: int, blocksizes: Sequence[int]) -> bytes:
    """UnixFS ``Data``: Type=1, Data=2, filesize=3, blocksizes=4 (repeated, unpacked)."""
    out = [_uint_field(1, _TYPE_FILE)]
    if data is not None:
        out.append(_len_field(2, data))
    out.append(_uint_field(3, filesize))
    out.extend(_uint_field(4, size) for size in blocksizes)
    return b"".join(out)


def _pb_node(links: Sequence[_Node], data: bytes) -> bytes:
    """dag-pb ``PBNode``: Links=2 first (canonical order), then Data=1.
    Each ``PBLink`` is Hash=1, Name=2 (empty, but present, as kubo writes it), Tsize=3."""
    out = []
    for child in links:
        link = _len_field(1, child.cid) + _len_field(2, b"") + _uint_field(3, child.tsize)
        out.append(_len_field(2, link))
    out.append(_len_field(1, data))
    return b"".join(out)


# --- decoding (for cat) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DagPbNode:
    """What ``cat`` needs of a dag-pb UnixFS file node: its links and its own file bytes."""

    links: tuple[CID, ...]
    data: bytes


def decode_file_node(block: bytes) -> DagPbNode:
    """Decode a dag-pb block holding a UnixFS ``File`` (or ``Raw``) node; ``ValueError`` else."""
    links: list[CID] = []
    unixfs: bytes | None = None
    for field, value in _fields(block):
        if field == 2 and isinstance(value, bytes):
            links.append(_link_cid(value))
        elif field == 1 and isinstance(value, bytes):
            unixfs = value
        else:
            raise ValueError(f"unexpected dag-pb field {field}")
    if unixfs is None:
        raise ValueError("dag-pb node without UnixFS data")
    kind: int | None = None
    data = b""
    for field, value in _fields(unixfs):
        if field == 1 and isinstance(value, int):
            kind = value
        elif field == 2 and isinstance(value, bytes):
            data = value
    if kind not in (_TYPE_RAW, _TYPE_FILE):
        raise ValueError(f"not a UnixFS file (type {kind})")
    return DagPbNode(links=tuple(links), data=data)


def _link_cid(link: bytes) -> CID:
    for field, value in _fields(link):
        if field == 1 and isinstance(value, bytes):
            return CID.decode(value)
    raise ValueError("dag-pb link without a hash")


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, pos = _read_varint(buf, pos)
            yield field, value
        elif wire_type == _LEN:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated protobuf field")
            yield field, buf[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
