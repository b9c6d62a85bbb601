"""Configuration of the RPC client: which endpoints, and how patiently to use them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from solana.rpc.commitment import Commitment

from core.errors import ConfigError

# Endpoint names become a metric label and appear in error messages; a URL may carry an API key
# in its path or query, so it is never used for either. Names are short and plain.
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class RpcEndpoint:
    """One JSON-RPC endpoint. ``name`` labels metrics and errors; ``url`` is never shown."""

    url: str
    name: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            # The URL itself is not repeated: it may hold an API key.
            raise ConfigError(f"RPC endpoint {self.name!r} needs an http(s) URL with a host")
        if not _NAME.match(self.name):
            raise ConfigError(
                "RPC endpoint names are 1-32 characters of letters, digits, '_', '.' or '-'"
            )

    def __repr__(self) -> str:
        return f"RpcEndpoint(name={self.name!r})"


def endpoints_from_urls(urls: Sequence[str]) -> list[RpcEndpoint]:
    """Endpoints named by their position (``"0"`` is the primary), in failover order."""
    if not urls:
        raise ConfigError("at least one RPC endpoint is needed: configure a primary RPC URL")
    return [RpcEndpoint(url=url, name=str(index)) for index, url in enumerate(urls)]


@dataclass(frozen=True)
class RpcConfig:
    """Timeouts, retries and circuit breaking. Defaults suit a public mainnet endpoint.

    * ``request_timeout``: seconds for one HTTP request, connect to last byte.
    * ``max_attempts``: requests per call, across all endpoints, first one included.
    * ``backoff_base`` / ``backoff_max``: exponential backoff between rounds over the endpoints,
      with jitter (a random delay in ``[d/2, d]`` for ``d = min(max, base * 2**round)``), so
      that many clients retrying at once spread out.
    * ``max_retry_after``: a ``Retry-After`` longer than this is not waited for; the endpoint is
      skipped until then and the call fails over or gives up.
    * ``breaker_failure_threshold``: consecutive failures that open an endpoint's breaker.
    * ``breaker_reset_after``: seconds an open breaker waits before letting one probe through.
    * ``commitment``: default commitment for reads (solana-py's own default is ``finalized``).
    * ``chunk_concurrency``: parallel requests when a call is split (getMultipleAccounts).
    """

    request_timeout: float = 10.0
    max_attempts: int = 4
    backoff_base: float = 0.25
    backoff_max: float = 4.0
    max_retry_after: float = 10.0
    breaker_failure_threshold: int = 5
    breaker_reset_after: float = 30.0
    commitment: Commitment = Commitment.CONFIRMED
    chunk_concurrency: int = 4

    def __post_init__(self) -> None:
        if self.request_timeout <= 0:
            raise ConfigError("RPC request_timeout must be positive")
        if self.max_attempts < 1:
            raise ConfigError("RPC max_attempts must be at least 1")
        if self.backoff_base < 0 or self.backoff_max < self.backoff_base:
            raise ConfigError("RPC backoff needs 0 <= backoff_base <= backoff_max")
        if self.max_retry_after < 0:
            raise ConfigError("RPC max_retry_after must not be negative")
        if self.breaker_failure_threshold < 1:
            raise ConfigError("RPC breaker_failure_threshold must be at least 1")
        if self.breaker_reset_after <= 0:
            raise ConfigError("RPC breaker_reset_after must be positive")
        if self.chunk_concurrency < 1:
            raise ConfigError("RPC chunk_concurrency must be at least 1")
