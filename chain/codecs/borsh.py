"""Small Borsh/Pod primitives: a strict reader and matching writers.

Every on-chain layout in this package is read through ``Reader`` so that short or malformed bytes
raise ``CodecError`` (with the field that failed) instead of ``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeVar

from solders.pubkey import Pubkey

from core.errors import CodecError

_Item = TypeVar("_Item")

_ZERO_KEY = bytes(32)


class Reader:
    """Cursor over bytes; every read checks the remaining length first."""

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: bytes, what: str = "data") -> None:
        self._data = bytes(data)
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _fail(self, field: str, need: int) -> CodecError:
        return CodecError(
            f"{self._what}: {field} needs {need} bytes at offset {self._pos}, "
            f"{self.remaining} left",
            details={"layout": self._what, "field": field, "offset": self._pos},
        )

    def take(self, n: int, field: str = "bytes") -> bytes:
        if n < 0 or self.remaining < n:
            raise self._fail(field, n)
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def rest(self) -> bytes:
        return self.take(self.remaining)

    def u8(self, field: str = "u8") -> int:
        return self.take(1, field)[0]

    def u16(self, field: str = "u16") -> int:
        return int(struct.unpack("<H", self.take(2, field))[0])

    def u32(self, field: str = "u32") -> int:
        return int(struct.unpack("<I", self.take(4, field))[0])

    def u64(self, field: str = "u64") -> int:
        return int(struct.unpack("<Q", self.take(8, field))[0])

    def boolean(self, field: str = "bool") -> bool:
        at = self._pos
        value = self.u8(field)
        if value > 1:
            raise CodecError(
                f"{self._what}: {field} at offset {at} is {value}, not a bool",
                details={"layout": self._what, "field": field, "offset": at},
            )
        return value == 1

    def pubkey(self, field: str = "pubkey") -> Pubkey:
        return Pubkey.from_bytes(self.take(32, field))

    def optional_nonzero_pubkey(self, field: str = "pubkey") -> Pubkey | None:
        """Pod ``OptionalNonZeroPubkey``: 32 zero bytes mean none."""
        raw = self.take(32, field)
        return None if raw == _ZERO_KEY else Pubkey.from_bytes(raw)

    def coption_pubkey(self, field: str = "pubkey") -> Pubkey | None:
        """SPL ``COption<Pubkey>``: u32 tag (0 or 1) then 32 bytes, present either way."""
        tag = self.u32(field + ".tag")
        raw = self.take(32, field)
        if tag == 0:
            return None
        if tag == 1:
            return Pubkey.from_bytes(raw)
        raise CodecError(
            f"{self._what}: {field} has COption tag {tag}",
            details={"layout": self._what, "field": field},
        )

    def coption_u64(self, field: str = "u64") -> int | None:
        tag = self.u32(field + ".tag")
        value = self.u64(field)
        if tag == 0:
            return None
        if tag == 1:
            return value
        raise CodecError(
            f"{self._what}: {field} has COption tag {tag}",
            details={"layout": self._what, "field": field},
        )

    def string(self, field: str = "string", max_len: int | None = None) -> str:
        n = self.u32(field + ".len")
        if max_len is not None and n > max_len:
            raise CodecError(
                f"{self._what}: {field} is {n} bytes, limit {max_len}",
                details={"layout": self._what, "field": field},
            )
        raw = self.take(n, field)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError(
                f"{self._what}: {field} is not UTF-8",
                details={"layout": self._what, "field": field},
            ) from exc

    def option(self, read: Callable[[], _Item], field: str = "option") -> _Item | None:
        """Borsh ``Option<T>``: u8 tag 0 (none) or 1 then T."""
        at = self._pos
        tag = self.u8(field + ".tag")
        if tag == 0:
            return None
        if tag == 1:
            return read()
        raise CodecError(
            f"{self._what}: {field} at offset {at} has Option tag {tag}",
            details={"layout": self._what, "field": field, "offset": at},
        )

    def vec(
        self, read: Callable[[], _Item], field: str = "vec", max_len: int | None = None
    ) -> list[_Item]:
        n = self.u32(field + ".len")
        if max_len is not None and n > max_len:
            raise CodecError(
                f"{self._what}: {field} has {n} items, limit {max_len}",
                details={"layout": self._what, "field": field},
            )
        # Each item takes at least one byte: refuse absurd counts before looping.
        if n > self.remaining:
            raise self._fail(field, n)
        return [read() for _ in range(n)]

    def end(self) -> None:
        """Require that every byte was consumed."""
        if self.remaining:
            raise CodecError(
                f"{self._what}: {self.remaining} unexpected trailing bytes at offset {self._pos}",
                details={"layout": self._what, "offset": self._pos},
            )


def u8(value: int) -> bytes:
    return struct.pack("<B", value)


def u16(value: int) -> bytes:
    return struct.pack("<H", value)


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def boolean(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def string(value: str) -> bytes:
    raw = value.encode("utf-8")
    return u32(len(raw)) + raw


def pubkey(value: Pubkey) -> bytes:
    return bytes(value)


def optional_nonzero_pubkey(value: Pubkey | None) -> bytes:
    return _ZERO_KEY if value is None else bytes(value)


def coption_pubkey(value: Pubkey | None) -> bytes:
    return u32(0) + _ZERO_KEY if value is None else u32(1) + bytes(value)


def coption_u64(value: int | None) -> bytes:
    return u32(0) + u64(0) if value is None else u32(1) + u64(value)


def option(value: _Item | None, write: Callable[[_Item], bytes]) -> bytes:
    return b"\x00" if value is None else b"\x01" + write(value)


def vec(items: list[_Item] | tuple[_Item, ...], write: Callable[[_Item], bytes]) -> bytes:
    return u32(len(items)) + b"".join(write(i) for i in items)
