"""Mint keypairs derived from a server secret, so no mint secret is ever stored.

``seed = HMAC-SHA256(secret, "aiw3-mint:" + idempotency key)`` is the 32-byte ed25519 seed of the
mint keypair: the same operation always gets the same mint address, so a restarted worker can
sign again and a crash after sending re-finds the same account on chain. Each operation records
the secret *version* that derived it; a worker holding secrets for several versions can finish
operations recorded before a rotation.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Final

from solders.keypair import Keypair

from chain.keys import Signer
from core.errors import ConfigError

_MINT_CONTEXT: Final = b"aiw3-mint:"
_DEV_CONTEXT: Final = b"aiw3-development-mint-secret"
MIN_SECRET_BYTES: Final = 32
DEV_SECRET_VERSION: Final = 0


class MintSecretMissing(ConfigError):
    code = "mint_secret_missing"


class MintKeys:
    """Derives mint keypairs. ``current`` is the version new operations use."""

    __slots__ = ("_current", "_secrets")

    def __init__(self, secrets: Mapping[int, bytes], current: int) -> None:
        if current not in secrets:
            raise ConfigError(f"no mint secret for the current version {current}")
        for version, secret in secrets.items():
            if len(secret) < MIN_SECRET_BYTES:
                raise ConfigError(
                    f"the mint secret of version {version} is shorter than {MIN_SECRET_BYTES} bytes"
                )
        self._secrets = dict(secrets)
        self._current = current

    @classmethod
    def development(cls, system: Signer) -> MintKeys:
        """A secret derived from the system keypair, for a deployment that configured none:
        stable across restarts, unique per system wallet. Production sets its own."""
        seed = bytes(system.solders_keypair())[:32]
        secret = hmac.new(seed, _DEV_CONTEXT, hashlib.sha256).digest()
        return cls({DEV_SECRET_VERSION: secret}, DEV_SECRET_VERSION)

    @property
    def current_version(self) -> int:
        return self._current

    def keypair(self, idempotency_key: str, version: int | None = None) -> Keypair:
        """The mint keypair of the operation recorded under ``idempotency_key``.

        Do not keep or log the result: ``str(keypair)`` is its secret."""
        wanted = self._current if version is None else version
        secret = self._secrets.get(wanted)
        if secret is None:
            raise MintSecretMissing(
                f"the mint secret of version {wanted} is not configured: an operation recorded "
                "under it cannot be signed until it is supplied again",
                details={"version": wanted},
            )
        seed = hmac.new(secret, _MINT_CONTEXT + idempotency_key.encode(), hashlib.sha256)
        return Keypair.from_seed(seed.digest())

    def __repr__(self) -> str:
        return f"MintKeys(versions={sorted(self._secrets)}, current={self._current})"

    def __reduce__(self) -> None:  # type: ignore[override]
        raise TypeError("MintKeys holds secrets and cannot be pickled")
