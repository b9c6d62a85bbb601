"""The local chain's state machine, in-process: configuration checks."""

from __future__ import annotations

import pytest

from chain.localnet import LocalnetConfig
from core.errors import ConfigError


@pytest.mark.parametrize(
    ("field", "message"),
    [("slot_ms", "slot_ms must be at least 1"), ("finality_depth", "finality_depth must be")],
)
def test_config_checks_raise_config_error(field: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LocalnetConfig(**{field: 0})  # type: ignore[arg-type]
