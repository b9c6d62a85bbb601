"""The off-chain JSON of an AIW3 NFT, in the Metaplex/Solana NFT metadata convention.

https://developers.metaplex.com/token-metadata/token-standard : ``name``, ``symbol``,
``description``, ``image``, ``external_url``, ``attributes`` (``trait_type``/``value``) and
``properties.files`` (``uri``/``type``). The document is pinned as
:func:`minting.ipfs.json_bytes` gives it (sorted keys, no spaces), so the same NFT always
gives the same bytes and the same CID, and a retried mint points at the metadata the first
attempt pinned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from minting.images import CONTENT_TYPE, tier_image
from minting.ipfs import CidVersion, Pinner
from minting.ipfs.unixfs import add

SYMBOL = "AIW3"
EXTERNAL_URL = "https://aiw3.ai"


@dataclass(frozen=True, slots=True)
class TierRef:
    """What the metadata needs of a tier row: its level and its name."""

    level: int
    name: str


def build_metadata(
    tier: TierRef,
    *,
    image_cid: str,
    mint: str | None = None,
    external_url: str = EXTERNAL_URL,
) -> dict[str, Any]:
    """The metadata document of one NFT of ``tier``. ``mint`` (the NFT's address, fixed before
    the first send) makes the document, and so its CID, the NFT's own."""
    image = f"ipfs://{image_cid}"
    description = f"AIW3 Equity NFT, level {tier.level}: {tier.name}."
    if mint is not None:
        description += f" Mint {mint}."
    return {
        "name": f"AIW3 {tier.name}",
        "symbol": SYMBOL,
        "description": description,
        "image": image,
        "external_url": external_url,
        "attributes": [
            {"trait_type": "level", "value": tier.level},
            {"trait_type": "tier", "value": tier.name},
        ],
        "properties": {"category": "image", "files": [{"uri": image, "type": CONTENT_TYPE}]},
    }


async def pin_tier_image(pinner: Pinner, level: int, *, cid_version: CidVersion = 1) -> str:
    """The CID of the tier's image, pinned if it is not yet: each image is uploaded once."""
    image = tier_image(level)
    # The CID is known before any upload, so "already pinned?" costs no upload.
    cid = str(add(image, cid_version=cid_version))
    if await pinner.is_pinned(cid):
        return cid
    return await pinner.pin_bytes(
        image, name=f"level-{level}.png", content_type=CONTENT_TYPE, cid_version=cid_version
    )


async def pin_metadata(
    pinner: Pinner,
    tier: TierRef,
    *,
    mint: str | None = None,
    external_url: str = EXTERNAL_URL,
    cid_version: CidVersion = 1,
    image_cid: str | None = None,
) -> str:
    """Pin the tier image (once) and this NFT's metadata; return the on-chain ``uri``,
    ``ipfs://<CID>``. Raises a :class:`~minting.ipfs.errors.PinningError` when pinning fails:
    no mint may go ahead without its metadata pinned.

    ``image_cid``: the tier image's CID from an earlier :func:`pin_tier_image` of this
    pinner, so a caller pinning many NFTs of one tier reads, hashes and checks the image once
    (about half of a worker's CPU per mint went there)."""
    if image_cid is None:
        image_cid = await pin_tier_image(pinner, tier.level, cid_version=cid_version)
    document = build_metadata(tier, image_cid=image_cid, mint=mint, external_url=external_url)
    name = f"{mint or 'level-' + str(tier.level)}.json"
    cid = await pinner.pin_json(document, name=name, cid_version=cid_version)
    return f"ipfs://{cid}"
