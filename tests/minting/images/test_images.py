"""The shipped tier images are valid PNGs, exactly what ``_draw`` makes, one per tier."""

from __future__ import annotations

import struct
import zlib

import pytest

from core.errors import ConfigError
from minting.images import tier_image
from minting.images._draw import PALETTE, draw

LEVELS = [1, 2, 3, 4, 5, 100]


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + data) == crc
        chunks.append((kind, data))
        pos += 12 + length
    return chunks


@pytest.mark.parametrize("level", LEVELS)
def test_each_tier_ships_a_small_valid_png(level: int) -> None:
    png = tier_image(level)
    assert png == draw(level)
    assert len(png) < 1024
    chunks = _chunks(png)
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (width, height, depth, colour) == (64, 64, 8, 2)
    assert len(zlib.decompress(chunks[1][1])) == height * (1 + width * 3)


def test_tiers_look_different() -> None:
    assert sorted(PALETTE) == LEVELS
    assert len({tier_image(level) for level in LEVELS}) == len(LEVELS)


def test_a_tier_without_an_image_says_what_to_add() -> None:
    with pytest.raises(ConfigError, match=r"level-6\.png"):
        tier_image(6)
