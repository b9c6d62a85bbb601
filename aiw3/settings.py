"""One typed settings object, read from ``AIW3_*`` environment variables and an optional ``.env``.

Build it once at start-up with :func:`load_settings` and pass it down; nothing reads the
environment anywhere else.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from chain.keys import KeypairError, Signer, load_keypair
from chain.pubkeys import parse_pubkey
from core.errors import ConfigError, InvalidPublicKey
from core.types import StandardName

_ENV_PREFIX = "AIW3_"
SYSTEM_KEYPAIR_VARIABLE = _SYSTEM_KEYPAIR = _ENV_PREFIX + "SYSTEM_KEYPAIR"


class Pinning(StrEnum):
    LOCAL = "local"
    PINATA = "pinata"


class LogFormat(StrEnum):
    AUTO = "auto"  # console on a terminal, JSON lines otherwise
    JSON = "json"
    CONSOLE = "console"


_DB_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg", "mysql+asyncmy")


def _check_url(value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise ValueError(f"scheme must be one of {', '.join(schemes)}, got {parts.scheme!r}")
    if parts.scheme in ("http", "https", "ws", "wss", "redis", "rediss") and not parts.hostname:
        raise ValueError("the URL has no host")
    return value


class Settings(BaseSettings):
    """Every setting of the service. Defaults run the whole thing locally."""

    model_config = SettingsConfigDict(
        env_prefix=_ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///./aiw3.db"
    database_echo: bool = False
    rpc_url: str = "http://127.0.0.1:8899"
    # Extra RPC endpoints tried in order when the primary fails (comma separated).
    rpc_fallback_urls: Annotated[list[str], NoDecode, Field(default_factory=list)]
    ws_url: str = "ws://127.0.0.1:8900"
    redis_url: str | None = None
    system_keypair: SecretStr | None = None  # a path to a Solana CLI keypair file, or the JSON
    asset_standard: StandardName = StandardName.TOKEN2022
    pinning: Pinning = Pinning.LOCAL
    pinata_jwt: SecretStr | None = None
    ipfs_dir: Path = Path("./ipfs")  # the local pinning backend's block store
    jwt_secret: SecretStr = SecretStr("dev-only-change-me")
    # Verified creators that make a Metaplex NFT authentic (comma separated). Empty: the system
    # wallet alone; after a key rotation list the old keys too, so old NFTs stay authentic.
    creators: Annotated[list[str], NoDecode, Field(default_factory=list)]
    # Collection mints whose members are authentic Token-2022 NFTs, besides those the minting
    # engine records in the database (comma separated).
    collections: Annotated[list[str], NoDecode, Field(default_factory=list)]
    # The server secret mint keypairs are derived from (at least 32 characters). Unset: one is
    # derived from the system keypair (development only; see README "Mint keys").
    mint_secret: SecretStr | None = None
    # Recorded with every mint operation; bump it when the secret changes.
    mint_secret_version: int = Field(default=1, ge=1)
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.AUTO
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # The indexer's /metrics, /livez and /readyz (``aiw3 indexer run``).
    indexer_host: str = "127.0.0.1"
    indexer_port: int = Field(default=9102, ge=0, le=65535)
    # WebSocket connections the live subscriptions are spread over (one logsSubscribe each).
    indexer_max_connections: int = Field(default=4, ge=1, le=256)
    # How long a dead leader holds the lease (seconds): a standby takes over within 1.25x this.
    indexer_lease_ttl: float = Field(default=6.0, gt=0, le=300)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return _check_url(value, _DB_SCHEMES)

    @field_validator("rpc_url")
    @classmethod
    def _rpc_url(cls, value: str) -> str:
        return _check_url(value, ("http", "https"))

    @field_validator("rpc_fallback_urls", "creators", "collections", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("rpc_fallback_urls")
    @classmethod
    def _fallbacks(cls, value: list[str]) -> list[str]:
        return [_check_url(url, ("http", "https")) for url in value]

    @field_validator("creators", "collections")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            try:
                parse_pubkey(address)
            except InvalidPublicKey:
                raise ValueError(f"{address!r} is not a base58 public key") from None
        return value

    @field_validator("ws_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        return _check_url(value, ("ws", "wss"))

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        return _check_url(value, ("redis", "rediss", "unix"))

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("mint_secret")
    @classmethod
    def _mint_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value().encode()) < 32:
            raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("system_keypair")
    @classmethod
    def _keypair_source(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        # Load it once now: a bad or unreadable keypair must stop start-up, not the first mint.
        # The error text of chain.keys never repeats the value (it may be the secret itself).
        try:
            load_keypair(value.get_secret_value(), source=_SYSTEM_KEYPAIR)
        except KeypairError as exc:
            raise ValueError(exc.message) from None
        return value

    def system_signer(self) -> Signer:
        """The system wallet, or :class:`KeypairError` saying how to configure it."""
        if self.system_keypair is None:
            raise KeypairError(
                f"{_SYSTEM_KEYPAIR} is not set: set it to the system keypair (JSON array or "
                "base58) or to the path of a keypair file (create one with `aiw3 keys new`)",
                details={"variable": _SYSTEM_KEYPAIR},
            )
        return load_keypair(self.system_keypair.get_secret_value(), source=_SYSTEM_KEYPAIR)

    def trusted_creators(self, system_wallet: str | None) -> list[str]:
        """``AIW3_CREATORS``, or the system wallet alone when it is unset."""
        if self.creators:
            return list(self.creators)
        return [system_wallet] if system_wallet else []


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, or raise :class:`ConfigError` with one line naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _config_error(exc) from None
    except SettingsError as exc:
        # Raised while reading a source (e.g. an unreadable .env); the text names the field.
        raise ConfigError(f"invalid configuration: {exc}") from None


def _config_error(exc: ValidationError) -> ConfigError:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        variable = _ENV_PREFIX + field.upper()
        # Never echo the rejected input: it may be a secret (keypair JSON, JWT).
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{variable}: {message}")
    return ConfigError(
        "invalid configuration: " + "; ".join(problems),
        details={"variables": [p.split(":", 1)[0] for p in problems]},
    )
