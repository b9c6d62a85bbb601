"""Column types that behave the same on SQLite, PostgreSQL and MySQL/MariaDB.

- :class:`UTCDateTime`: aware UTC datetimes in, aware UTC datetimes out (MySQL and SQLite keep
  no zone, so we store naive UTC and attach the zone on the way out).
- :class:`Money`: exact decimals. PostgreSQL and MySQL have DECIMAL; SQLite has none and would
  round through float, so there the value is stored as an integer count of 10^-8 units, which
  keeps ``SUM`` exact too.
- :class:`JSONText`: JSON kept as text, so every database reflects the same column type.
- :class:`BoundedString`: a VARCHAR that refuses a value longer than its length, since SQLite
  keeps any length and MySQL's ``INSERT IGNORE`` or a non-strict session truncate it silently.

A value these types refuse raises :class:`~core.errors.InputError` at bind time, before the
statement reaches the database (``store.errors`` keeps SQLAlchemy from wrapping it).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, Numeric, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator, TypeEngine

from core.errors import InputError

MONEY_SCALE = 8
_MONEY_UNIT = Decimal(10) ** MONEY_SCALE

# Autoincrementing 64-bit keys; SQLite only autoincrements an ``INTEGER PRIMARY KEY``.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[dt.datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise InputError(
                "naive datetime given; use an aware UTC datetime", code="naive_datetime"
            )
        value = value.astimezone(dt.UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Money(TypeDecorator[Decimal]):
    impl = Numeric(38, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(38, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | int | str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        try:
            amount = Decimal(value)
        except (ArithmeticError, ValueError, TypeError):
            raise InputError(
                f"money must be a number, not {value!r}", code="invalid_money"
            ) from None
        if not amount.is_finite():
            raise InputError("money must be a finite number", code="invalid_money")
        if amount != amount.quantize(Decimal(1) / _MONEY_UNIT):
            raise InputError(
                f"money has more than {MONEY_SCALE} decimal places", code="invalid_money"
            )
        if dialect.name == "sqlite":
            return int(amount * _MONEY_UNIT)
        return amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)) / _MONEY_UNIT
        return Decimal(value)


#: One encoder for every bind: ``json.dumps`` with options builds a new encoder per call.
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=str)


class JSONText(TypeDecorator[Any]):
    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return _JSON_ENCODER.encode(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


class BoundedString(TypeDecorator[str]):
    """``VARCHAR(length)`` that is an error, not a truncation, on every backend."""

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is not None and len(value) > self.length:
            raise self._too_long(value)
        return value

    def column_processor(self, dialect: Dialect) -> Callable[[list[Any]], list[Any]]:
        """:meth:`process_bind_param` for a whole column of an executemany at once: the same
        check and error, with the lengths measured in C (``map``) instead of one Python call
        per value; a batch of the indexer binds tens of thousands of these."""
        impl = dialect.type_descriptor(self.load_dialect_impl(dialect)).bind_processor(dialect)

        def process(values: list[Any]) -> list[Any]:
            # filter(None): no None (nor "", which fits anyway).
            if max(map(len, filter(None, values)), default=0) > self.length:
                raise self._too_long(next(v for v in values if v and len(v) > self.length))
            return list(map(impl, values)) if impl is not None else values

        return process

    def _too_long(self, value: str) -> InputError:
        return InputError(
            f"a value of {len(value)} characters does not fit {self.length}",
            code="value_too_long",
            details={"length": len(value), "limit": self.length},
        )
