"""The few value types every layer shares."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

_Value = TypeVar("_Value")


@dataclass(frozen=True, slots=True)
class Slotted(Generic[_Value]):
    """A value and the slot it reflects (the ``context.slot`` of the reply)."""

    slot: int
    value: _Value


class StandardName(StrEnum):
    """The asset standards the service mints and reads: the settings value, the ``standard``
    column of ``assets`` and ``mint_operations``, and the name of a ``chain.standards`` class."""

    TOKEN2022 = "token2022"
    METAPLEX = "metaplex"
