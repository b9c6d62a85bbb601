"""Draws the tier images shipped beside this file (run ``python -m minting.images._draw``).

Pure Python (zlib + struct): a flat badge in the tier's colour with one pip per level, or a
trophy for the competition tier. The PNG bytes are deterministic, so a test can prove that the
shipped files are exactly what this code draws, and their CIDs never drift.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

SIZE = 64
Colour = tuple[int, int, int]

# level -> (background, foreground)
PALETTE: dict[int, tuple[Colour, Colour]] = {
    1: ((176, 104, 48), (250, 226, 196)),  # Tech Chicken: bronze
    2: ((46, 139, 87), (214, 245, 224)),  # Quant Ape: green
    3: ((40, 96, 176), (210, 226, 250)),  # On-chain Hunter: blue
    4: ((112, 56, 160), (232, 214, 250)),  # Alpha Alchemist: purple
    5: ((168, 32, 64), (250, 210, 220)),  # Quantum Alchemist: crimson
    100: ((212, 160, 23), (90, 60, 10)),  # Trophy Breeder: gold
}


def draw(level: int) -> bytes:
    """The PNG of one tier (64x64 RGB)."""
    background, foreground = PALETTE[level]
    pixels = [[background] * SIZE for _ in range(SIZE)]
    _frame(pixels, foreground)
    if level == 100:
        _trophy(pixels, foreground)
    else:
        _pips(pixels, foreground, level)
    return png(pixels)


def _frame(pixels: list[list[Colour]], colour: Colour) -> None:
    for i in range(4, SIZE - 4):
        for j in (4, 5, SIZE - 6, SIZE - 5):
            pixels[i][j] = pixels[j][i] = colour


def _fill(pixels: list[list[Colour]], colour: Colour, x: int, y: int, w: int, h: int) -> None:
    for row in range(y, y + h):
        for col in range(x, x + w):
            pixels[row][col] = colour


def _pips(pixels: list[list[Colour]], colour: Colour, count: int) -> None:
    pip, gap = 6, 3
    width = count * pip + (count - 1) * gap
    left = (SIZE - width) // 2
    for index in range(count):
        _fill(pixels, colour, left + index * (pip + gap), (SIZE - pip) // 2, pip, pip)


def _trophy(pixels: list[list[Colour]], colour: Colour) -> None:
    _fill(pixels, colour, 20, 16, 24, 14)  # cup
    _fill(pixels, colour, 14, 18, 6, 3)  # handles
    _fill(pixels, colour, 44, 18, 6, 3)
    _fill(pixels, colour, 29, 30, 6, 10)  # stem
    _fill(pixels, colour, 22, 40, 20, 6)  # base


def png(pixels: list[list[Colour]]) -> bytes:
    """A truecolour PNG (RFC 2083): signature, IHDR, one IDAT, IEND; filter 0 on every row."""
    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(c for pixel in row for c in pixel) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def image_path(level: int) -> Path:
    return Path(__file__).with_name(f"level-{level}.png")


if __name__ == "__main__":
    for tier in PALETTE:
        image_path(tier).write_bytes(draw(tier))
        print(image_path(tier), len(draw(tier)), "bytes")
