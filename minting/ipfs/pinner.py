"""One interface for putting content on IPFS, whatever pins it.

A :class:`Pinner` pins bytes (or a JSON document, encoded by :func:`json_bytes`) and answers
with the CID; it fetches content back by CID and says whether a CID is already pinned, so that
shared assets (the tier images) are pinned once. Each backend records
``ipfs_upload_duration_seconds{backend, status}`` on a histogram it is given.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

from prometheus_client import CollectorRegistry, Histogram

from minting.ipfs.unixfs import CidVersion

Backend = Literal["local", "pinata"]
UploadStatus = Literal["ok", "error"]


class Pinner(ABC):
    """What the minting engine needs of IPFS. Backends implement the abstract methods."""

    backend: ClassVar[Backend]

    @abstractmethod
    async def pin_bytes(
        self,
        data: bytes,
        *,
        name: str,
        content_type: str = "application/octet-stream",
        cid_version: CidVersion = 1,
    ) -> str:
        """Pin ``data``; return its CID (as ``ipfs add`` would print it). ``name`` labels the
        pin where the backend keeps labels; it never changes the CID."""

    async def pin_json(
        self, document: Mapping[str, Any], *, name: str, cid_version: CidVersion = 1
    ) -> str:
        """Pin ``json_bytes(document)``; the same document always gives the same CID."""
        return await self.pin_bytes(
            json_bytes(document),
            name=name,
            content_type="application/json",
            cid_version=cid_version,
        )

    @abstractmethod
    async def is_pinned(self, cid: str) -> bool:
        """True if the content under ``cid`` is pinned here."""

    @abstractmethod
    async def cat(self, cid: str) -> bytes:
        """The bytes under ``cid``, checked against it."""

    async def aclose(self) -> None:  # noqa: B027  (optional hook: most backends hold nothing)
        """Release what the backend holds (connections); the default holds nothing."""


def json_bytes(document: Mapping[str, Any]) -> bytes:
    """The one encoding of a JSON document: sorted keys, no spaces, UTF-8, so that equal
    documents are equal bytes and so equal CIDs. Non-finite floats are refused (not JSON)."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def upload_histogram(registry: CollectorRegistry) -> Histogram:
    """``ipfs_upload_duration_seconds{backend, status}`` on ``registry`` (never the global one).
    ``backend`` is ``local`` or ``pinata``; ``status`` is ``ok`` or ``error``."""
    return Histogram(
        "ipfs_upload_duration_seconds",
        "Time to pin one piece of content on IPFS, retries included, by backend and outcome.",
        ["backend", "status"],
        registry=registry,
        buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    )


@contextmanager
def timed_upload(histogram: Histogram | None, backend: Backend) -> Iterator[None]:
    """Observe one upload on ``histogram`` (if any), ``status="error"`` when it raises."""
    started = time.perf_counter()
    status: UploadStatus = "error"
    try:
        yield
        status = "ok"
    finally:
        if histogram is not None:
            elapsed = time.perf_counter() - started
            histogram.labels(backend=backend, status=status).observe(elapsed)
