"""The errors of pinning and fetching content on IPFS.

    PinningError (AIW3Error)       the content is not (known to be) pinned: no mint may use it
    ├── PinningUnavailable         transport error, timeout, HTTP 429 or 5xx: try again later
    ├── PinningRejected            the pinning service refused the request (4xx): do not retry
    │   └── PinningUnauthorized    401/403: the JWT is missing, wrong or lacks the scope
    └── ContentMismatch            bytes that do not hash to the CID they were stored or served as
    InvalidCid (InputError)        not a CID this store can read
    ContentNotFound (NotFound)     no content under that CID here

Codes are stable: callers (the mint worker, the CLI) branch on the class, people read the code.
"""

from __future__ import annotations

from core.errors import AIW3Error, InputError, NotFound


class PinningError(AIW3Error):
    code = "pinning_error"


class PinningUnavailable(PinningError):
    """Nothing says the content can never be pinned; the same request may succeed later."""

    code = "pinning_unavailable"


class PinningRejected(PinningError):
    code = "pinning_rejected"


class PinningUnauthorized(PinningRejected):
    code = "pinning_unauthorized"


class ContentMismatch(PinningError):
    code = "ipfs_content_mismatch"


class InvalidCid(InputError):
    code = "invalid_cid"


class ContentNotFound(NotFound):
    code = "ipfs_not_found"
