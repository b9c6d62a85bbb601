"""The Pinata backend against Pinata's documented requests and answers (respx, no network)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
import respx
from prometheus_client import CollectorRegistry

from minting.ipfs import PinataPinner, upload_histogram
from minting.ipfs.errors import (
    ContentMismatch,
    InvalidCid,
    PinningRejected,
    PinningUnauthorized,
    PinningUnavailable,
)
from minting.ipfs.unixfs import add

API = "https://api.pinata.cloud"
GATEWAY = "https://gateway.pinata.cloud"
JWT = "eyJhbGciOiJIUzI1NiJ9.test-only.signature"
HELLO_V1 = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
HELLO_V0 = "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"


def _pinned(cid: str, size: int = 11) -> httpx.Response:
    # The documented pinFileToIPFS answer.
    body = {"IpfsHash": cid, "PinSize": size, "Timestamp": "2024-01-01T00:00:00Z"}
    return httpx.Response(200, json={**body, "isDuplicate": False})


class _Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps() -> _Sleeps:
    return _Sleeps()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest_asyncio.fixture
async def pinner(sleeps: _Sleeps, registry: CollectorRegistry) -> AsyncIterator[PinataPinner]:
    pinata = PinataPinner(
        JWT, histogram=upload_histogram(registry), max_attempts=4, backoff=0.5, sleep=sleeps
    )
    yield pinata
    await pinata.aclose()


def _multipart_fields(request: httpx.Request) -> dict[str, bytes]:
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    fields = {}
    for part in request.content.split(b"--" + boundary)[1:-1]:
        head, _, body = part.strip(b"\r\n").partition(b"\r\n\r\n")
        name = head.split(b'name="')[1].split(b'"')[0].decode()
        fields[name] = body
    return fields


@respx.mock
async def test_pins_bytes_with_the_documented_request(pinner: PinataPinner) -> None:
    route = respx.post(f"{API}/pinning/pinFileToIPFS").mock(return_value=_pinned(HELLO_V1))
    assert await pinner.pin_bytes(b"hello world", name="hello.txt") == HELLO_V1
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {JWT}"
    fields = _multipart_fields(request)
    assert fields["file"] == b"hello world"
    assert json.loads(fields["pinataMetadata"]) == {"name": "hello.txt"}
    assert json.loads(fields["pinataOptions"]) == {"cidVersion": 1}


@respx.mock
async def test_json_goes_up_as_its_canonical_bytes(pinner: PinataPinner) -> None:
    document = {"name": "AIW3", "attributes": [{"trait_type": "level", "value": 1}]}
    expected = b'{"attributes":[{"trait_type":"level","value":1}],"name":"AIW3"}'
    cid = str(add(expected, cid_version=0))
    route = respx.post(f"{API}/pinning/pinFileToIPFS").mock(return_value=_pinned(cid))
    assert await pinner.pin_json(document, name="1.json", cid_version=0) == cid
    fields = _multipart_fields(route.calls.last.request)
    assert fields["file"] == expected
    assert json.loads(fields["pinataOptions"]) == {"cidVersion": 0}


@respx.mock
async def test_a_cid_that_is_not_the_contents_is_refused(pinner: PinataPinner) -> None:
    respx.post(f"{API}/pinning/pinFileToIPFS").mock(return_value=_pinned(HELLO_V0))
    with pytest.raises(ContentMismatch):
        await pinner.pin_bytes(b"hello world!", name="x", cid_version=0)


@respx.mock
async def test_429_is_retried_honouring_retry_after(
    pinner: PinataPinner, sleeps: _Sleeps, registry: CollectorRegistry
) -> None:
    limited = httpx.Response(429, headers={"Retry-After": "3"}, json={"error": "rate limited"})
    respx.post(f"{API}/pinning/pinFileToIPFS").mock(
        side_effect=[limited, httpx.Response(503), _pinned(HELLO_V1)]
    )
    assert await pinner.pin_bytes(b"hello world", name="h") == HELLO_V1
    assert sleeps.delays[0] == 3.0
    assert 0.5 * 2 <= sleeps.delays[1] <= 0.5 * 2 * 1.25  # the second backoff step, jittered
    ok = {"backend": "pinata", "status": "ok"}
    assert registry.get_sample_value("ipfs_upload_duration_seconds_count", ok) == 1


@respx.mock
async def test_retries_are_bounded(pinner: PinataPinner, sleeps: _Sleeps) -> None:
    huge = httpx.Response(429, headers={"Retry-After": "86400"})
    route = respx.post(f"{API}/pinning/pinFileToIPFS").mock(return_value=huge)
    with pytest.raises(PinningUnavailable) as exhausted:
        await pinner.pin_bytes(b"hello world", name="h")
    assert route.call_count == 4
    assert sleeps.delays == [30.0, 30.0, 30.0]  # Retry-After capped at max_delay
    assert exhausted.value.code == "pinning_unavailable"
    assert "HTTP 429" in exhausted.value.message


@respx.mock
async def test_transport_errors_are_retried(pinner: PinataPinner) -> None:
    respx.post(f"{API}/pinning/pinFileToIPFS").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), _pinned(HELLO_V1)]
    )
    assert await pinner.pin_bytes(b"hello world", name="h") == HELLO_V1


@respx.mock
async def test_401_is_unauthorized_and_never_retried(
    pinner: PinataPinner, registry: CollectorRegistry
) -> None:
    body = {"error": {"reason": "INVALID_CREDENTIALS", "details": "Invalid/expired credentials"}}
    route = respx.post(f"{API}/pinning/pinFileToIPFS").mock(
        return_value=httpx.Response(401, json=body)
    )
    with pytest.raises(PinningUnauthorized) as refused:
        await pinner.pin_bytes(b"hello world", name="h")
    assert route.call_count == 1
    assert refused.value.code == "pinning_unauthorized"
    assert refused.value.details["reason"] == "INVALID_CREDENTIALS: Invalid/expired credentials"
    assert JWT not in str(refused.value.to_dict())
    error = {"backend": "pinata", "status": "error"}
    assert registry.get_sample_value("ipfs_upload_duration_seconds_count", error) == 1


@respx.mock
async def test_other_4xx_is_rejected_with_pinatas_reason(pinner: PinataPinner) -> None:
    route = respx.post(f"{API}/pinning/pinFileToIPFS").mock(
        return_value=httpx.Response(400, json={"error": "Invalid request format."})
    )
    with pytest.raises(PinningRejected) as refused:
        await pinner.pin_bytes(b"hello world", name="h")
    assert not isinstance(refused.value, PinningUnauthorized)
    assert route.call_count == 1
    assert refused.value.code == "pinning_rejected"
    assert "Invalid request format." in refused.value.message


@respx.mock
async def test_is_pinned_asks_the_pin_list(pinner: PinataPinner) -> None:
    rows = [{"ipfs_pin_hash": HELLO_V1, "size": 11, "date_pinned": "2024-01-01T00:00:00Z"}]
    route = respx.get(f"{API}/data/pinList").mock(
        side_effect=[
            httpx.Response(200, json={"count": 1, "rows": rows}),
            httpx.Response(200, json={"count": 0, "rows": []}),
        ]
    )
    assert await pinner.is_pinned(HELLO_V1)
    assert not await pinner.is_pinned(HELLO_V1)
    params = route.calls.last.request.url.params
    assert params["hashContains"] == HELLO_V1
    assert params["status"] == "pinned"
    with pytest.raises(InvalidCid):
        await pinner.is_pinned("not-a-cid")


@respx.mock
async def test_cat_checks_the_gateways_bytes(pinner: PinataPinner) -> None:
    respx.get(f"{GATEWAY}/ipfs/{HELLO_V1}").mock(
        return_value=httpx.Response(200, content=b"hello world")
    )
    respx.get(f"{GATEWAY}/ipfs/{HELLO_V0}").mock(
        return_value=httpx.Response(200, content=b"goodbye world")
    )
    assert await pinner.cat(HELLO_V1) == b"hello world"
    with pytest.raises(ContentMismatch):
        await pinner.cat(HELLO_V0)


def test_the_jwt_never_shows() -> None:
    assert JWT not in repr(PinataPinner(JWT))
    with pytest.raises(ValueError, match="JWT"):
        PinataPinner("  ")
