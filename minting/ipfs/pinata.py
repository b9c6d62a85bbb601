"""The ``pinata`` backend: Pinata's pinning API over httpx, with a JWT.

Endpoints (Pinata's documented "legacy" pinning API, still served on api.pinata.cloud):

* ``POST /pinning/pinFileToIPFS`` — https://docs.pinata.cloud/api-reference/endpoint/ipfs/pin-file-to-ipfs
  multipart ``file``, ``pinataMetadata`` (JSON ``{"name": ...}``) and ``pinataOptions`` (JSON
  ``{"cidVersion": 0|1}``); answers ``{"IpfsHash", "PinSize", "Timestamp", "isDuplicate"}``.
* ``GET /data/pinList?hashContains=<cid>&status=pinned`` —
  https://docs.pinata.cloud/api-reference/endpoint/ipfs/list-pins ; answers ``{"count", "rows":
  [{"ipfs_pin_hash", ...}]}``.
* content comes back through a gateway (``GET <gateway>/ipfs/<cid>``).

JSON goes through ``pinFileToIPFS`` too, not ``pinJSONToIPFS``
(https://docs.pinata.cloud/api-reference/endpoint/ipfs/pin-json-to-ipfs): that endpoint
re-serialises the document its own way, so its CID would not be the one our deterministic
bytes give, and the local and Pinata backends would name the same NFT differently.

Every request authenticates with ``Authorization: Bearer <JWT>``
(https://docs.pinata.cloud/account-management/api-keys). HTTP 429 and 5xx and transport errors
are retried with exponential backoff, honouring ``Retry-After`` up to a bound (Pinata allows
180 requests a minute, 30 on ``/data/``: https://docs.pinata.cloud/account-management/limits);
when the attempts run out :class:`PinningUnavailable` says "try later". 401/403 raise
:class:`PinningUnauthorized`, other 4xx :class:`PinningRejected` with Pinata's reason.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from prometheus_client import Histogram

from minting.ipfs.errors import (
    ContentMismatch,
    PinningError,
    PinningRejected,
    PinningUnauthorized,
    PinningUnavailable,
)
from minting.ipfs.local import parse_cid
from minting.ipfs.pinner import Pinner, timed_upload
from minting.ipfs.unixfs import CHUNK_SIZE, CidVersion, add, add_text

API_URL = "https://api.pinata.cloud"
GATEWAY_URL = "https://gateway.pinata.cloud"

Sleep = Callable[[float], Awaitable[None]]

_MAX_REASON = 300  # characters of Pinata's error text kept in a message


class PinataPinner(Pinner):
    """Pins on Pinata. ``client`` is optional (tests pass one bound to a mock transport)."""

    backend = "pinata"

    def __init__(
        self,
        jwt: str,
        *,
        histogram: Histogram | None = None,
        api_url: str = API_URL,
        gateway_url: str = GATEWAY_URL,
        client: httpx.AsyncClient | None = None,
        timeout: float = 60.0,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_delay: float = 30.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not jwt.strip():
            raise ValueError("a Pinata JWT is required")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._jwt = jwt
        self._api = api_url.rstrip("/")
        self._gateway = gateway_url.rstrip("/")
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None
        self._histogram = histogram
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._max_delay = max_delay
        self._sleep = sleep

    def __repr__(self) -> str:  # never the JWT
        return f"PinataPinner(api_url={self._api!r})"

    async def pin_bytes(
        self,
        data: bytes,
        *,
        name: str,
        content_type: str = "application/octet-stream",
        cid_version: CidVersion = 1,
    ) -> str:
        with timed_upload(self._histogram, self.backend):
            response = await self._request(
                "POST",
                f"{self._api}/pinning/pinFileToIPFS",
                what="pin",
                files={"file": (name, data, content_type)},
                data={
                    "pinataMetadata": json.dumps({"name": name}),
                    "pinataOptions": json.dumps({"cidVersion": cid_version}),
                },
            )
            return _checked_cid(_field(response, "IpfsHash"), data, cid_version)

    async def is_pinned(self, cid: str) -> bool:
        parse_cid(cid)  # refuse junk before it becomes a query
        response = await self._request(
            "GET",
            f"{self._api}/data/pinList",
            what="pin list",
            params={"hashContains": cid, "status": "pinned"},
        )
        rows = _field(response, "rows")
        if not isinstance(rows, list):
            raise PinningError("Pinata's pin list has no rows array")
        return any(isinstance(row, dict) and row.get("ipfs_pin_hash") == cid for row in rows)

    async def cat(self, cid: str) -> bytes:
        parsed = parse_cid(cid)
        response = await self._request("GET", f"{self._gateway}/ipfs/{cid}", what="gateway read")
        data = response.content
        # A gateway is not trusted: the bytes must give the CID asked for (as kubo's defaults
        # build it, which is how this service pins; content chunked otherwise is refused).
        computed = add(data, cid_version=0 if parsed.version == 0 else 1)
        if (computed.codec, computed.digest) != (parsed.codec, parsed.digest):
            raise ContentMismatch(
                f"the gateway's bytes for {cid} do not match it", details={"cid": cid}
            )
        return data

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _request(self, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._jwt}"}
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = await self._client.request(method, url, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}"
                delay = self._delay(attempt, None)
            else:
                if response.is_success:
                    return response
                status = response.status_code
                if status in (401, 403):
                    raise PinningUnauthorized(
                        f"Pinata refused the JWT ({status}): check AIW3_PINATA_JWT and its scopes",
                        details={"status": status, "reason": _reason(response)},
                    )
                if status != 429 and status < 500:
                    raise PinningRejected(
                        f"Pinata refused the {what} ({status}): {_reason(response)}",
                        details={"status": status, "reason": _reason(response)},
                    )
                reason = f"HTTP {status}"
                delay = self._delay(attempt, response.headers.get("Retry-After"))
            if attempt == self._max_attempts:
                raise PinningUnavailable(
                    f"Pinata {what} failed after {attempt} attempts ({reason}); try again later",
                    details={"attempts": attempt, "reason": reason},
                )
            await self._sleep(delay)
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        wait = _retry_after_seconds(retry_after)
        if wait is None:
            # Exponential, with jitter so that several workers do not retry in step.
            wait = self._backoff * 2 ** (attempt - 1) * (1 + random.random() / 4)
        return min(max(wait, 0.0), self._max_delay)


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _reason(response: httpx.Response) -> str:
    """Pinata's error text: ``{"error": {"reason", "details"}}``, ``{"error": "..."}`` or text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:_MAX_REASON] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        parts = [str(error[key]) for key in ("reason", "details") if error.get(key)]
        return ": ".join(parts)[:_MAX_REASON] or response.reason_phrase
    if isinstance(error, str):
        return error[:_MAX_REASON]
    return json.dumps(body)[:_MAX_REASON]


def _field(response: httpx.Response, name: str) -> Any:
    try:
        body = response.json()
    except ValueError:
        raise PinningError(f"Pinata answered {response.status_code} without JSON") from None
    if not isinstance(body, dict) or name not in body:
        raise PinningError(f"Pinata's answer has no {name!r}")
    return body[name]


def _checked_cid(cid: Any, data: bytes, cid_version: CidVersion) -> str:
    """The CID Pinata names must be the one the bytes give, so that the URI on chain addresses
    exactly what we built. Checked for content of one chunk, whose CID no importer setting can
    change; a bigger file's CID depends on Pinata's chunker, which it does not promise."""
    if not isinstance(cid, str):
        raise PinningError("Pinata's IpfsHash is not a string")
    parse_cid(cid)
    if len(data) <= CHUNK_SIZE:
        expected = add_text(data, cid_version=cid_version)
        if cid != expected:
            raise ContentMismatch(
                f"Pinata named the content {cid}, but its bytes give {expected}",
                details={"cid": cid, "expected": expected},
            )
    return cid
