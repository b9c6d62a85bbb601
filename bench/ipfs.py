"""Pinning one small metadata JSON in the local store, as the mint worker does per NFT.

    flock /tmp/bench.lock .venv/bin/python bench/ipfs.py [--pins 2000] [--rounds 3]

Each round pins ``--pins`` distinct metadata documents (``build_metadata`` of one tier, a
random mint address each, CIDv1, one chunk) one after another through ``LocalPinner.pin_json``
into a fresh store under the system's temporary directory, then the same number through the
*library path*: the same store with the code this file's branch replaced (the ``multiformats``
CID and the ``bases`` package's base32 for the CID and the block's file name, a ``mkdir`` and a
buffered file per block), in this process, alternating. It prints pins per second (wall) and
the process's CPU per pin, user and kernel apart (every thread's; the kernel's is the file's
write, fsync and rename), the medians of the rounds, with the ratios; then the encoding alone
(the CID's text and the block's file name from the bytes, no disk) per pin. Both paths must give
the same CIDs (it stops if not). Numbers only, no asserts. The library path skips the importer's
builder (a few microseconds), so it flatters the old code slightly.

Measured on the shared 2-core machine (ext4 on a virtual disk, load 2-3 from other helpers),
2026-12-02 02:13-02:17 UTC, ``--pins 1000 --rounds 5``, twice: user CPU per pin 1.35/1.31 ms
(library path) -> 0.62/0.47 ms (ours), x2.2-2.8; the encoding alone 586/639 us -> 17/20 us per
pin (x33-35); kernel CPU per pin 1.9-2.8 ms either way, and wall 193-204 -> 245-256 pins/s
(rounds swung 133-442, the disk's fsync latency shared with the other helpers' databases).
What limits it now is that fsync, which stays: a pinned block must be on disk before the mint
that points to it is signed. The rest of a pin in Python, measured apart with the block write
stubbed out, is ~0.09 ms of user CPU, most of it ``asyncio.to_thread``'s hand-off (the fsync
must not block the event loop) and ~0.02 ms the CID; the user CPU counted beyond that while the
fsync runs (0.3-0.4 ms) is the thread's wake-ups and the VM's accounting, not Python's work.

Then the store also fsyncs a block's directory after the rename (before, a crash could lose the
name of a block already pinned; the library path here keeps the old single fsync), 02:19 UTC,
same settings, load 3-4: ours 335 pins/s (279-584), user 0.46 ms, kernel 1.96 ms per pin;
library path 282 pins/s (252-391), user 1.56 ms, kernel 1.60 ms: the directory's fsync costs
~0.3 ms of kernel CPU per pin, and wall time stays ahead of the old path.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, NamedTuple

from multiformats import CID, multibase, multihash

from minting.ipfs import LocalPinner, json_bytes
from minting.ipfs.cidtext import base32
from minting.ipfs.unixfs import CHUNK_SIZE, CidVersion, add_text
from minting.metadata import TierRef, build_metadata

_IMAGE_CID = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class _LibraryPinner(LocalPinner):
    """``LocalPinner`` as it was before (main at 197c2de), for files of one chunk: the CID and
    the block's name through the multiformats library, a mkdir and a buffered file per block."""

    def add(self, source: bytes | BinaryIO, *, cid_version: CidVersion = 0) -> str:
        if not isinstance(source, bytes) or len(source) > CHUNK_SIZE or cid_version != 1:
            raise ValueError("the library path here covers CIDv1 files of one chunk only")
        digest = multihash.wrap(hashlib.sha256(source).digest(), "sha2-256")
        cid = CID("base32", 1, "raw", digest)
        self._library_put(cid, source)
        return str(cid)

    def _library_put(self, cid: CID, block: bytes) -> None:
        key = multibase.encode(bytes(cid.digest), "base32")[1:]
        path = Path(self._blocks) / key[-3:-1] / key
        if path.is_file():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(block)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _documents(count: int) -> list[dict[str, object]]:
    tier = TierRef(3, "Gold")
    mints = ["".join(secrets.choice(_BASE58) for _ in range(44)) for _ in range(count)]
    return [build_metadata(tier, image_cid=_IMAGE_CID, mint=mint) for mint in mints]


async def _pin_all(pinner: LocalPinner, documents: list[dict[str, object]]) -> list[str]:
    return [await pinner.pin_json(document, name="m.json") for document in documents]


class _Run(NamedTuple):
    rate: float  # pins per second, wall clock
    user: float  # user CPU seconds per pin, every thread of the process
    system: float  # kernel CPU seconds per pin (the file's write, fsync and rename)


def _timed(
    make: Callable[[Path], LocalPinner], documents: list[dict[str, object]]
) -> tuple[_Run, list[str]]:
    """One fresh store's run, and the CIDs it gave."""
    with tempfile.TemporaryDirectory(prefix="bench-ipfs-") as root:
        pinner = make(Path(root))
        wall, before = time.perf_counter(), os.times()
        cids = asyncio.run(_pin_all(pinner, documents))
        wall, after = time.perf_counter() - wall, os.times()
    count = len(documents)
    run = _Run(
        count / wall, (after.user - before.user) / count, (after.system - before.system) / count
    )
    return run, cids


def _encoding_per_pin(blocks: list[bytes]) -> tuple[float, float]:
    """Seconds per pin for the CID's text and the block's name alone: ours, the library's."""

    def ours() -> None:
        for block in blocks:
            add_text(block, cid_version=1)
            base32(b"\x12\x20" + hashlib.sha256(block).digest())

    def library() -> None:
        for block in blocks:
            digest = multihash.wrap(hashlib.sha256(block).digest(), "sha2-256")
            cid = CID("base32", 1, "raw", digest)
            str(cid)
            multibase.encode(bytes(cid.digest), "base32")

    times = []
    for run in (ours, library):
        started = time.process_time()
        run()
        times.append((time.process_time() - started) / len(blocks))
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pins", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    documents = _documents(args.pins)
    size = statistics.median(len(json_bytes(document)) for document in documents)
    print(f"{args.pins} metadata documents of ~{size:.0f} bytes, {args.rounds} rounds")
    runs: dict[str, list[_Run]] = {"ours": [], "library": []}
    for _ in range(args.rounds):
        ours, cids = _timed(LocalPinner, documents)
        library, library_cids = _timed(_LibraryPinner, documents)
        if cids != library_cids:
            sys.exit("the two paths gave different CIDs")
        runs["ours"].append(ours)
        runs["library"].append(library)
    medians = {
        name: _Run(*(statistics.median(column) for column in zip(*rows, strict=True)))
        for name, rows in runs.items()
    }
    for name, run in medians.items():
        rates = "/".join(f"{r.rate:.0f}" for r in runs[name])
        print(
            f"{name:8} {run.rate:6.0f} pins/s ({rates}); CPU per pin: user "
            f"{run.user * 1e3:.3f} ms, kernel {run.system * 1e3:.3f} ms"
        )
    ours, library = medians["ours"], medians["library"]
    print(
        f"ours/library x{ours.rate / library.rate:.2f} pins/s; library/ours user CPU "
        f"x{library.user / ours.user:.2f}, kernel CPU x{library.system / ours.system:.2f}"
    )
    ours_encoding, library_encoding = _encoding_per_pin([json_bytes(d) for d in documents])
    print(
        f"encoding alone: ours {ours_encoding * 1e6:.1f} us, library {library_encoding * 1e6:.1f}"
        f" us per pin (x{library_encoding / ours_encoding:.1f})"
    )


if __name__ == "__main__":
    main()
