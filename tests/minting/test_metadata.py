"""NFT metadata: the Metaplex convention, deterministic bytes, images pinned once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minting.images import tier_image
from minting.ipfs import LocalPinner, json_bytes
from minting.ipfs.errors import PinningError
from minting.ipfs.unixfs import add
from minting.metadata import TierRef, build_metadata, pin_metadata, pin_tier_image

CHICKEN = TierRef(level=1, name="Tech Chicken")
TROPHY = TierRef(level=100, name="Trophy Breeder")
MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"


def test_the_document_follows_the_metaplex_convention() -> None:
    document = build_metadata(CHICKEN, image_cid="bafkreiabc", mint=MINT)
    assert document["name"] == "AIW3 Tech Chicken"
    assert len(document["name"].encode()) <= 32  # the on-chain name limit
    assert document["symbol"] == "AIW3"
    assert document["image"] == "ipfs://bafkreiabc"
    assert document["external_url"].startswith("https://")
    assert MINT in document["description"]
    assert document["attributes"] == [
        {"trait_type": "level", "value": 1},
        {"trait_type": "tier", "value": "Tech Chicken"},
    ]
    assert document["properties"]["files"] == [{"uri": "ipfs://bafkreiabc", "type": "image/png"}]


def test_the_same_nft_gives_the_same_bytes() -> None:
    first = json_bytes(build_metadata(TROPHY, image_cid="bafkreiabc", mint=MINT))
    again = json_bytes(build_metadata(TROPHY, image_cid="bafkreiabc", mint=MINT))
    other = json_bytes(build_metadata(TROPHY, image_cid="bafkreiabc", mint=MINT[::-1]))
    assert first == again != other
    assert b'": ' not in first
    assert b', "' not in first
    assert json.loads(first) == build_metadata(TROPHY, image_cid="bafkreiabc", mint=MINT)
    assert list(json.loads(first)) == sorted(json.loads(first))


async def test_pin_metadata_pins_the_image_once_and_returns_the_uri(tmp_path: Path) -> None:
    store = LocalPinner(tmp_path)
    uri = await pin_metadata(store, CHICKEN, mint=MINT)
    assert uri.startswith("ipfs://bafkrei")
    document = json.loads(await store.cat(uri))
    image_cid = str(add(tier_image(1), cid_version=1))
    assert document["image"] == f"ipfs://{image_cid}"
    assert await store.cat(image_cid) == tier_image(1)
    assert await pin_metadata(store, CHICKEN, mint=MINT) == uri


class _CountingStore(LocalPinner):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.uploads: list[str] = []

    async def pin_bytes(self, data: bytes, *, name: str, **options: object) -> str:  # type: ignore[override]
        self.uploads.append(name)
        return await super().pin_bytes(data, name=name)


async def test_an_image_already_pinned_is_not_uploaded_again(tmp_path: Path) -> None:
    store = _CountingStore(tmp_path)
    first = await pin_tier_image(store, 100)
    second = await pin_tier_image(store, 100)
    assert first == second
    assert store.uploads == ["level-100.png"]


class _BrokenStore(LocalPinner):
    async def pin_bytes(self, data: bytes, *, name: str, **options: object) -> str:  # type: ignore[override]
        raise PinningError("the pinning service is down")


async def test_a_pinning_failure_is_raised_not_swallowed(tmp_path: Path) -> None:
    with pytest.raises(PinningError):
        await pin_metadata(_BrokenStore(tmp_path), CHICKEN, mint=MINT)
