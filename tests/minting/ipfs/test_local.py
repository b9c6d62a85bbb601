"""The local store: kubo's CIDs, content back by any form of its CID, damage detected."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multiformats import CID, multibase
from prometheus_client import CollectorRegistry

from minting.ipfs import LocalPinner, upload_histogram
from minting.ipfs.errors import ContentMismatch, ContentNotFound, InvalidCid
from minting.ipfs.unixfs import CHUNK_SIZE, add
from tests.minting.ipfs.kubo_stream import kubo_bytes


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


async def test_pins_and_reads_back_with_kubos_cids(tmp_path: Path) -> None:
    store = LocalPinner(tmp_path)
    assert await store.pin_bytes(b"hello world", name="h", cid_version=0) == (
        "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
    )
    v1 = await store.pin_bytes(b"hello world", name="h")
    assert v1 == "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    assert await store.cat(v1) == b"hello world"
    assert await store.cat(f"ipfs://{v1}") == b"hello world"
    assert await store.cat("Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD") == b"hello world"


async def test_multi_level_files_come_back_whole(tmp_path: Path) -> None:
    store = LocalPinner(tmp_path)
    data = kubo_bytes(174 * CHUNK_SIZE + 1, "v0-seed")
    cid = store.add(data)
    assert cid == "QmV81WL765sC8DXsRhE5fJv2rwhS4icHRaf3J9Zk5FdRnW"
    assert store.read(cid) == data
    v1 = store.add(data, cid_version=1)
    assert v1.startswith("bafybei")
    assert store.read(v1) == data


async def test_is_pinned_only_once_stored(tmp_path: Path) -> None:
    store = LocalPinner(tmp_path)
    cid = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    assert not await store.is_pinned(cid)
    with pytest.raises(ContentNotFound) as missing:
        await store.cat(cid)
    assert missing.value.code == "ipfs_not_found"
    await store.pin_bytes(b"hello world", name="h")
    assert await store.is_pinned(cid)
    # The same block under its v0 name (one dag-pb block, two CIDs) is not this raw block.
    assert not await store.is_pinned("Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD")
    assert all(not path.name.startswith(".tmp-") for path in _files(tmp_path))


async def test_a_damaged_block_is_refused(tmp_path: Path) -> None:
    store = LocalPinner(tmp_path)
    cid = await store.pin_bytes(b"the metadata", name="m")
    [block] = _files(tmp_path)
    block.write_bytes(b"the metadatA")
    with pytest.raises(ContentMismatch):
        await store.cat(cid)


async def test_json_is_pinned_as_its_canonical_bytes(tmp_path: Path) -> None:
    store = LocalPinner(tmp_path)
    first = await store.pin_json({"b": 1, "a": "é"}, name="doc")
    second = await store.pin_json({"a": "é", "b": 1}, name="other name")
    assert first == second
    assert await store.cat(first) == '{"a":"é","b":1}'.encode()


@pytest.mark.parametrize("text", ["", "hello", "Qm123", "bafyxx", "ipfs://", "/ipfs/Qm!"])
async def test_junk_is_not_a_cid(tmp_path: Path, text: str) -> None:
    with pytest.raises(InvalidCid) as refused:
        await LocalPinner(tmp_path).cat(text)
    assert refused.value.code == "invalid_cid"


async def test_only_sha2_256(tmp_path: Path) -> None:
    sha512 = (
        "bafkrgqbqt3gerhas23vuzrapkdeqf4vu2dwxp3srdj6hvg6nhsug2tgyn6mj3u23yx7utftq3i2ckw2fwdh5"
        "qmhid5qf3t35yvkc5e5ottlw6"
    )  # "hello world" with sha2-512 (kubo add_test.go)
    with pytest.raises(InvalidCid, match="sha2-256"):
        await LocalPinner(tmp_path).is_pinned(sha512)


async def test_uploads_are_timed(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    store = LocalPinner(tmp_path, histogram=upload_histogram(registry))
    await store.pin_bytes(b"x", name="x")
    await store.pin_json({"x": 1}, name="x")
    labels = {"backend": "local", "status": "ok"}
    assert registry.get_sample_value("ipfs_upload_duration_seconds_count", labels) == 2


@settings(max_examples=25, deadline=None)  # each example writes and fsyncs a block
@given(data=st.binary(max_size=2000), version=st.sampled_from([0, 1]))
def test_blocks_live_where_the_library_names_them(data: bytes, version: int) -> None:
    # The layout on disk is the store's format: a block's file is its multihash in the
    # multiformats library's base32, whatever spells it now.
    with tempfile.TemporaryDirectory() as root:
        cid = LocalPinner(Path(root)).add(data, cid_version=1 if version else 0)
        parsed = CID.decode(cid)
        assert cid == str(parsed)
        key = multibase.encode(bytes(parsed.digest), "base32")[1:]
        block = (Path(root) / "blocks" / key[-3:-1] / key).read_bytes()
        assert hashlib.sha256(block).digest() == parsed.raw_digest
        assert data in block  # one chunk: the file's one block (raw, or dag-pb around it)


def test_a_block_and_its_name_are_synced_before_the_pin_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"the metadata"
    key = multibase.encode(bytes(add(data, cid_version=1).digest), "base32")[1:]
    block = tmp_path / "blocks" / key[-3:-1] / key
    # Which inodes were fsynced, and whether the block was under its name at that moment.
    synced: list[tuple[int, bool]] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append((os.fstat(fd).st_ino, block.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    LocalPinner(tmp_path).add(data, cid_version=1)
    # The data before its name, then the directory holding the name, last; the new
    # directory's own name too.
    assert synced[-1] == (block.parent.stat().st_ino, True)
    assert (block.stat().st_ino, False) in synced
    assert (block.parent.parent.stat().st_ino, False) in synced
