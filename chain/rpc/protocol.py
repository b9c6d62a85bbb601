"""Facts of the Solana JSON-RPC protocol: error codes and the limits a node enforces.

One module for both sides of the wire, like agave's ``rpc-client-api/src/custom_error.rs``:
the local chain answers with these codes and refuses past these limits, and the client splits
its requests by the same limits and classifies replies by the same codes.
"""

from __future__ import annotations

from typing import Final

# --- JSON-RPC 2.0 codes ------------------------------------------------------------------------
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603

# --- Solana's custom codes (agave rpc_custom_error.rs) -------------------------------------------
BLOCK_CLEANED_UP: Final = -32001
SEND_TRANSACTION_PREFLIGHT_FAILURE: Final = -32002
TRANSACTION_SIGNATURE_VERIFICATION_FAILURE: Final = -32003
BLOCK_NOT_AVAILABLE: Final = -32004
NODE_UNHEALTHY: Final = -32005
TRANSACTION_PRECOMPILE_VERIFICATION_FAILURE: Final = -32006
SLOT_SKIPPED: Final = -32007
NO_SNAPSHOT: Final = -32008
LONG_TERM_STORAGE_SLOT_SKIPPED: Final = -32009
KEY_EXCLUDED_FROM_SECONDARY_INDEX: Final = -32010
TRANSACTION_HISTORY_NOT_AVAILABLE: Final = -32011
SCAN_ERROR: Final = -32012
TRANSACTION_SIGNATURE_LEN_MISMATCH: Final = -32013
BLOCK_STATUS_NOT_AVAILABLE_YET: Final = -32014
UNSUPPORTED_TRANSACTION_VERSION: Final = -32015
MIN_CONTEXT_SLOT_NOT_REACHED: Final = -32016

#: solders panics when an error reply with one of these codes has no ``data``: a server always
#: sends it, a client never relies on ``except Exception`` around parsing such a reply.
CODES_NEEDING_DATA: Final = frozenset(
    {SEND_TRANSACTION_PREFLIGHT_FAILURE, NODE_UNHEALTHY, MIN_CONTEXT_SLOT_NOT_REACHED}
)

# --- node limits -------------------------------------------------------------------------------
#: getMultipleAccounts keys per request.
MAX_MULTIPLE_ACCOUNTS: Final = 100
#: getSignatureStatuses signatures per request.
MAX_SIGNATURE_STATUSES: Final = 256
#: getSignaturesForAddress ``limit`` (also its default).
MAX_SIGNATURES_FOR_ADDRESS: Final = 1000
#: Requests in one JSON-RPC batch.
MAX_BATCH_SIZE: Final = 1000
#: The largest request body agave accepts by default (``MAX_REQUEST_BODY_SIZE``, 50 KiB;
#: ``--rpc-max-request-body-size``); a larger one is refused with HTTP 413.
MAX_REQUEST_BODY_BYTES: Final = 50 * 1024
#: Calls the client puts in one batch POST: well under what nodes accept (providers' own caps
#: are often 100 or so), 100 of the longest calls it batches stay under
#: MAX_REQUEST_BODY_BYTES, and a reply of 100 transactions stays a few hundred KB, while the
#: per-request cost of the HTTP stack is already spread over 100 calls.
BATCH_CALLS: Final = 100
#: The largest transaction, in bytes once decoded (solana_packet::PACKET_DATA_SIZE).
PACKET_DATA_SIZE: Final = 1232
#: sendTransaction / simulateTransaction: the longest encoded text of a PACKET_DATA_SIZE
#: transaction in each encoding.
MAX_BASE58_TRANSACTION: Final = 1683
MAX_BASE64_TRANSACTION: Final = 1644
#: getAccountInfo & co. refuse base58 account data above this many bytes.
MAX_BASE58_ACCOUNT_BYTES: Final = 128
#: getProgramAccounts filters per request, and bytes in one memcmp filter.
MAX_ACCOUNT_FILTERS: Final = 4
MAX_MEMCMP_BYTES: Final = 128
#: getTokenLargestAccounts answers at most this many accounts.
MAX_TOKEN_LARGEST_ACCOUNTS: Final = 20
