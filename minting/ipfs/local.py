"""A content-addressed block store on disk whose CIDs are exactly kubo's ``ipfs add``.

Layout: ``<root>/blocks/<xx>/<key>``, one file per block, where ``key`` is the block's
sha2-256 multihash in lower-case base32 (as kubo's flatfs keys blocks by multihash, so a CIDv0
and a CIDv1 of the same dag-pb block share one file) and ``xx`` two of its letters, to keep
directories small. Every block is written to a temporary file, flushed to disk and renamed into
place, its directory then flushed too (the rename itself), children before their parents, so a
root block present means its whole file is present and a crash never leaves a half block under
a real name nor loses a block once pinned. Two processes adding the same content
write the same bytes to the same name: whichever rename lands last wins, harmlessly.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from multiformats import CID
from prometheus_client import Histogram

from minting.ipfs.cidtext import base32
from minting.ipfs.errors import ContentMismatch, ContentNotFound, InvalidCid
from minting.ipfs.pinner import Pinner, timed_upload
from minting.ipfs.unixfs import MULTIHASH_SIZE, CidVersion, add_text, decode_file_node

_SHA2_256 = 0x12


class LocalPinner(Pinner):
    """The ``local`` backend: blocks in a directory, created on first write."""

    backend = "local"

    def __init__(self, root: Path, *, histogram: Histogram | None = None) -> None:
        # A str, not a Path: block paths are joined once per block, on the minting path.
        self._blocks = os.path.join(root, "blocks")
        self._histogram = histogram

    async def pin_bytes(
        self,
        data: bytes,
        *,
        name: str,
        content_type: str = "application/octet-stream",
        cid_version: CidVersion = 1,
    ) -> str:
        # name and content_type label a pin elsewhere; a block store has nowhere to keep them.
        with timed_upload(self._histogram, self.backend):
            return await asyncio.to_thread(self.add, data, cid_version=cid_version)

    async def is_pinned(self, cid: str) -> bool:
        return self._has(parse_cid(cid))

    async def cat(self, cid: str) -> bytes:
        return await asyncio.to_thread(self.read, cid)

    # Synchronous forms, for the CLI and for threads.

    def add(self, source: bytes | BinaryIO, *, cid_version: CidVersion = 0) -> str:
        """Store a file (bytes or a binary stream, read chunk by chunk); return its CID."""
        return add_text(source, cid_version=cid_version, sink=self._put)

    def read(self, cid: str) -> bytes:
        """The file under ``cid``, every block checked against its hash on the way."""
        return b"".join(self._file_parts(parse_cid(cid), cid))

    def _file_parts(self, cid: CID, asked: str) -> list[bytes]:
        block = self._get(cid, asked)
        if cid.codec.name == "raw":
            return [block]
        if cid.codec.name != "dag-pb":
            raise InvalidCid(f"{asked}: codec {cid.codec.name} is not a UnixFS file")
        try:
            node = decode_file_node(block)
        except ValueError as exc:
            raise InvalidCid(f"{asked}: not a UnixFS file ({exc})") from None
        parts = [node.data]
        for link in node.links:
            parts.extend(self._file_parts(link, asked))
        return parts

    def _has(self, cid: CID) -> bool:
        # One stat, as cheap as the event loop's own work: no thread for it.
        return os.path.isfile(self._path(bytes(cid.digest))[1])

    def _get(self, cid: CID, asked: str) -> bytes:
        try:
            block = Path(self._path(bytes(cid.digest))[1]).read_bytes()
        except FileNotFoundError:
            raise ContentNotFound(
                f"{asked} is not in the local IPFS store", details={"cid": asked}
            ) from None
        if hashlib.sha256(block).digest() != cid.raw_digest:
            # A damaged file must never be served as the content the chain points to.
            raise ContentMismatch(
                f"block {cid} of {asked} is damaged on disk", details={"cid": asked}
            )
        return block

    def _put(self, cid: bytes, block: bytes) -> None:
        directory, path = self._path(cid[-MULTIHASH_SIZE:])
        if os.path.isfile(path):
            return  # content addressed: the same name holds the same bytes
        try:
            fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        except FileNotFoundError:
            # The directory's first block. Created on demand rather than asked for before each
            # write: a mkdir per block cost more than the block's CID.
            os.makedirs(directory, exist_ok=True)
            _fsync_directory(self._blocks)  # the new directory's name, as the block's below
            _fsync_directory(os.path.dirname(self._blocks))
            fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            try:
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)  # on disk before its name, and before the mint that points to it
            finally:
                os.close(fd)
            os.replace(temporary, path)
            # The rename is on disk only once its directory is: without this a crash could
            # lose a block the chain already points to. It costs ~0.3 ms of kernel CPU per
            # block (bench/ipfs.py). Children's names land before their parent's.
            _fsync_directory(directory)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def _path(self, multihash: bytes) -> tuple[str, str]:
        """The block's directory and file: its multihash in base32, as kubo's flatfs keys."""
        key = base32(multihash)
        directory = os.path.join(self._blocks, key[-3:-1])
        return directory, os.path.join(directory, key)


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parse_cid(text: str) -> CID:
    """A sha2-256 CID (v0 or v1, any multibase), or :class:`InvalidCid`."""
    value = text.strip().removeprefix("ipfs://").removeprefix("/ipfs/")
    try:
        cid = CID.decode(value)
    except (ValueError, KeyError) as exc:
        raise InvalidCid(f"{text!r} is not a CID: {exc}", details={"cid": text}) from None
    if cid.hashfun.code != _SHA2_256:
        raise InvalidCid(f"{text}: only sha2-256 CIDs are supported", details={"cid": text})
    return cid
