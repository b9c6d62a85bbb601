"""The one way the service talks JSON-RPC to Solana: solana-py's ``AsyncClient`` per endpoint,
with failover, retries, circuit breakers, typed errors and a latency histogram.

A call goes to the first endpoint, in configured order, whose breaker is closed (or half-open
and free for its one probe) and that is not cooling down after a 429. A retryable failure sends
the next attempt to the next endpoint at once; once every usable endpoint has failed in a round,
the client sleeps (exponential backoff with jitter, or until a ``Retry-After`` ends) and
starts a new round, up to ``max_attempts`` requests. A definitive error is raised at once. When
the primary's breaker lets a probe through and it succeeds, traffic returns to the primary.

solana-py's own transport retry is switched off (``max_transport_retries=0``) so that this is
the only retry loop, and each request is bounded by one total timeout.

Batched methods (``get_transactions``, ``get_signatures_for_address_many``) send many calls of
one method as JSON-RPC batches (an array body) through the same endpoint's solana-py session:
each batch POST is one request of that same loop, breaker and histogram, so the client's cost per
HTTP request is paid once per ``BATCH_CALLS`` calls.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx2
import structlog
from prometheus_client import CollectorRegistry
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment
from solana.rpc.core import RPCException
from solana.rpc.models import DataSliceOpts, MemcmpOpts, TokenAccountOpts, TxOpts
from solders.account import Account
from solders.pubkey import Pubkey
from solders.rpc.requests import Body, GetSignaturesForAddress, GetTransaction
from solders.rpc.responses import (
    GetAccountInfoResp,
    GetBalanceResp,
    GetBlockHeightResp,
    GetBlockResp,
    GetLatestBlockhashResp,
    GetMinimumBalanceForRentExemptionResp,
    GetMultipleAccountsResp,
    GetProgramAccountsResp,
    GetSignaturesForAddressResp,
    GetSignatureStatusesResp,
    GetSlotResp,
    GetTokenAccountsByOwnerResp,
    GetTokenLargestAccountsResp,
    GetTransactionResp,
    RequestAirdropResp,
    RpcBlockhash,
    RpcConfirmedTransactionStatusWithSignature,
    RpcKeyedAccount,
    RpcSimulateTransactionResult,
    RpcTokenAccountBalance,
    SendTransactionResp,
    SimulateTransactionResp,
    batch_from_json,
)
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    EncodedConfirmedTransactionWithStatusMeta,
    TransactionDetails,
    TransactionErrorFieldless,
    TransactionStatus,
    UiConfirmedBlock,
)

from chain.rpc.breaker import BreakerState, CircuitBreaker
from chain.rpc.config import RpcConfig, RpcEndpoint, endpoints_from_urls
from chain.rpc.errors import (
    PreflightFailure,
    RpcNodeError,
    RpcRateLimited,
    RpcRejected,
    RpcRetryableError,
    RpcTimeout,
    RpcTransportError,
    RpcUnavailable,
    error_from_rpc,
)
from chain.rpc.metrics import NO_ENDPOINT, RpcMethod, RpcMetrics, Status
from chain.rpc.protocol import (
    BATCH_CALLS,
    LONG_TERM_STORAGE_SLOT_SKIPPED,
    MAX_MULTIPLE_ACCOUNTS,
    MAX_SIGNATURE_STATUSES,
    NODE_UNHEALTHY,
    SLOT_SKIPPED,
)
from core.errors import ConfigError
from core.types import Slotted

_TRANSACTION_DETAILS = {
    "full": TransactionDetails.Full,
    "signatures": TransactionDetails.Signatures,
    "accounts": TransactionDetails.Accounts,
    "none": TransactionDetails.None_,
}

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


_log = structlog.stdlib.get_logger(__name__)

_Batchable = Literal["getTransaction", "getSignaturesForAddress"]
#: The metric label of a POST of many calls of a method.
_BATCH_LABELS: dict[_Batchable, RpcMethod] = {
    "getTransaction": "batch:getTransaction",
    "getSignaturesForAddress": "batch:getSignaturesForAddress",
}


class _HideUrls(logging.Filter):
    """httpx2 logs every request with its full URL at INFO; an RPC URL may hold an API key."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx2.URL) for a in record.args):
            record.args = tuple(
                "[rpc url hidden]" if isinstance(a, httpx2.URL) else a for a in record.args
            )
        return True


def _hide_transport_urls() -> None:
    logger = logging.getLogger("httpx2")
    if not any(isinstance(f, _HideUrls) for f in logger.filters):
        logger.addFilter(_HideUrls())


class _Endpoint:
    def __init__(self, spec: RpcEndpoint, config: RpcConfig) -> None:
        self.name = spec.name
        self.breaker = CircuitBreaker(config.breaker_failure_threshold, config.breaker_reset_after)
        self.not_before = 0.0  # monotonic time before which a 429's Retry-After forbids asking
        self.client = AsyncClient(
            spec.url,
            commitment=config.commitment,
            timeout=config.request_timeout,
            extra_headers=dict(spec.headers) or None,
            max_transport_retries=0,
        )

    def usable(self, now: float) -> bool:
        return now >= self.not_before and self.breaker.allows_request()

    def ready_at(self) -> float:
        return max(self.not_before, self.breaker.ready_at())


@dataclass(frozen=True)
class SignaturesQuery:
    """One address's page of signatures, as :meth:`RpcClient.get_signatures_for_address` takes
    it: newest first, ``before`` and ``until`` exclusive, ``limit`` 1..1000 (the node's default
    1000 when None)."""

    address: Pubkey
    before: Signature | None = None
    until: Signature | None = None
    limit: int | None = None


class RpcClient:
    """Typed async Solana JSON-RPC over one or more endpoints. Use ``async with`` or
    :meth:`close`.

    ``metrics`` is either the caller's ``CollectorRegistry`` (the histogram is registered on it)
    or an :class:`RpcMetrics` already registered there, to share it between clients.
    """

    def __init__(
        self,
        endpoints: Sequence[RpcEndpoint | str],
        *,
        metrics: CollectorRegistry | RpcMetrics,
        config: RpcConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not endpoints:
            endpoints_from_urls([])  # raises the ConfigError saying an endpoint is needed
        specs = [
            e if isinstance(e, RpcEndpoint) else RpcEndpoint(url=e, name=str(i))
            for i, e in enumerate(endpoints)
        ]
        if len({s.name for s in specs}) != len(specs):
            raise ConfigError("RPC endpoint names must be unique")
        self._config = config or RpcConfig()
        self._metrics = metrics if isinstance(metrics, RpcMetrics) else RpcMetrics(metrics)
        self._rng = rng or random.Random()  # jitter, not cryptography
        self._endpoints = [_Endpoint(s, self._config) for s in specs]
        _hide_transport_urls()

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        for endpoint in self._endpoints:
            await endpoint.client.close()

    @property
    def config(self) -> RpcConfig:
        return self._config

    def breaker_states(self) -> dict[str, BreakerState]:
        """Breaker state per endpoint name, for readiness checks and dashboards."""
        return {e.name: e.breaker.state for e in self._endpoints}

    # -- typed methods -------------------------------------------------------------------------

    async def get_latest_blockhash(
        self, commitment: Commitment | None = None
    ) -> Slotted[RpcBlockhash]:
        resp = await self._call(
            "getLatestBlockhash",
            lambda c: c.get_latest_blockhash(self._commitment(commitment)),
            GetLatestBlockhashResp,
        )
        return Slotted(resp.context.slot, resp.value)

    async def send_raw_transaction(
        self,
        transaction: bytes,
        *,
        skip_preflight: bool = False,
        preflight_commitment: Commitment | None = None,
        max_retries: int | None = None,
    ) -> Signature:
        """Send signed bytes; returns the signature without waiting for confirmation.

        The same bytes never execute twice (one signature), so transport failures are retried
        like any read. When an earlier copy already landed (its reply was lost, or this is a
        deliberate resend), the node's preflight says AlreadyProcessed: that is success, and the
        transaction's signature is returned. Any other failed preflight raises
        :class:`PreflightFailure`.
        """
        opts = TxOpts(
            skip_confirmation=True,
            skip_preflight=skip_preflight,
            preflight_commitment=self._commitment(preflight_commitment),
            max_retries=max_retries,
        )
        try:
            resp = await self._call(
                "sendTransaction",
                lambda c: c.send_raw_transaction(transaction, opts),
                SendTransactionResp,
            )
        except PreflightFailure as exc:
            if exc.err != TransactionErrorFieldless.AlreadyProcessed:
                raise
            return VersionedTransaction.from_bytes(transaction).signatures[0]
        return resp.value

    async def simulate(
        self,
        transaction: VersionedTransaction,
        *,
        sig_verify: bool = False,
        replace_recent_blockhash: bool = False,
        commitment: Commitment | None = None,
        accounts: Sequence[Pubkey] | None = None,
    ) -> Slotted[RpcSimulateTransactionResult]:
        """simulateTransaction. A failing transaction is a result (``value.err``), not an
        error."""
        resp = await self._call(
            "simulateTransaction",
            lambda c: c.simulate_transaction(
                transaction,
                sig_verify=sig_verify,
                commitment=self._commitment(commitment),
                replace_recent_blockhash=replace_recent_blockhash,
                accounts_addresses=list(accounts) if accounts is not None else None,
            ),
            SimulateTransactionResp,
        )
        return Slotted(resp.context.slot, resp.value)

    async def get_signature_statuses(
        self, signatures: Sequence[Signature], *, search_transaction_history: bool = False
    ) -> Slotted[list[TransactionStatus | None]]:
        """Statuses in the order given (``None``: unknown). Split into requests of 256; the
        slot is the lowest any part reflects."""
        chunks = _chunks(list(signatures), MAX_SIGNATURE_STATUSES)

        async def one(chunk: list[Signature]) -> GetSignatureStatusesResp:
            return await self._call(
                "getSignatureStatuses",
                lambda c: c.get_signature_statuses(chunk, search_transaction_history),
                GetSignatureStatusesResp,
            )

        replies = await self._gather(one, chunks)
        return _merge(replies)

    async def get_transaction(
        self,
        signature: Signature,
        *,
        encoding: str = "json",
        commitment: Commitment | None = None,
        max_supported_transaction_version: int | None = 0,
    ) -> EncodedConfirmedTransactionWithStatusMeta | None:
        resp = await self._call(
            "getTransaction",
            lambda c: c.get_transaction(
                signature,
                encoding=encoding,
                commitment=self._commitment(commitment),
                max_supported_transaction_version=max_supported_transaction_version,
            ),
            GetTransactionResp,
        )
        return resp.value

    async def get_signatures_for_address(
        self,
        address: Pubkey,
        *,
        before: Signature | None = None,
        until: Signature | None = None,
        limit: int | None = None,
        commitment: Commitment | None = None,
    ) -> list[RpcConfirmedTransactionStatusWithSignature]:
        """Newest first; ``before``/``until`` exclusive; ``limit`` 1..1000."""
        resp = await self._call(
            "getSignaturesForAddress",
            lambda c: c.get_signatures_for_address(
                address,
                before=before,
                until=until,
                limit=limit,
                commitment=self._commitment(commitment),
            ),
            GetSignaturesForAddressResp,
        )
        return resp.value

    async def get_signatures_for_address_many(
        self,
        queries: Sequence[SignaturesQuery],
        *,
        commitment: Commitment | None = None,
    ) -> list[list[RpcConfirmedTransactionStatusWithSignature]]:
        """:meth:`get_signatures_for_address` for many queries in JSON-RPC batches.

        ``result[i]`` answers ``queries[i]`` exactly as ``get_signatures_for_address(q.address,
        before=q.before, until=q.until, limit=q.limit, commitment=commitment)`` would: one page,
        newest first, at most ``limit`` entries (1000 when None), failed transactions included
        (``err`` set); ``[]`` for an address without history or a ``before`` the node does not
        know. It does not page on: a full page means there may be more, asked for with
        ``before`` = the page's last signature (in a later call). The same query may appear
        more than once; an empty list sends nothing. How the calls travel, what is retried
        and what is raised: see :meth:`get_transactions`; each POST is measured as one
        ``batch:getSignaturesForAddress`` request.
        """
        core = self._endpoints[0].client  # any endpoint's: bodies do not depend on it
        level = self._commitment(commitment)

        def build(query: SignaturesQuery, call_id: int) -> Body:
            # solana-py's own request builder, as the single call uses, then the call's id.
            body = core._get_signatures_for_address_body(
                query.address, query.before, query.until, query.limit, level
            )
            return GetSignaturesForAddress(body.address, body.config, id=call_id)

        replies = await self._batch(
            "getSignaturesForAddress", queries, build, GetSignaturesForAddressResp
        )
        return [reply.value for reply in replies]

    async def get_transactions(
        self,
        signatures: Sequence[Signature],
        *,
        encoding: str = "json",
        commitment: Commitment | None = None,
        max_supported_transaction_version: int | None = 0,
    ) -> list[EncodedConfirmedTransactionWithStatusMeta | None]:
        """:meth:`get_transaction` for many signatures in JSON-RPC batches.

        ``result[i]`` is what ``get_transaction(signatures[i], ...)`` with the same arguments
        returns: the transaction, or ``None`` when the node does not have it at
        ``commitment`` (unknown, not yet confirmed, or out of its history). Order and
        duplicates are kept; an empty list sends nothing.

        The calls go :data:`~chain.rpc.protocol.BATCH_CALLS` to a POST, up to
        ``config.chunk_concurrency`` POSTs at a time. Each POST is one request to the client's
        retry loop, exactly like a single call: the first usable endpoint, failover, backoff,
        ``max_attempts``, the endpoint's circuit breaker, one observation of
        ``solana_rpc_duration_seconds{method="batch:getTransaction"}``. A POST is retried whole when
        the HTTP request fails, times out or is rate limited, when the reply is not one answer
        per call (matched by id, in any order), or when the node answers any call in it with a
        retryable error (node behind, internal error...): the error that single call would
        have been retried on. When the node refuses a call (e.g. ``-32015``, a version 0
        transaction without ``max_supported_transaction_version``), the method raises the
        :class:`RpcRejected` that call alone would raise, with ``details["batch_item"]`` its
        index in ``signatures``; if a POST gives up, its last retryable error is raised. No
        partial result is returned: any error fails the whole method (other POSTs in flight
        are cancelled).

        Each call is answered on its own, as a single call would be: two calls, even in one
        POST, may reflect different slots.
        """
        core = self._endpoints[0].client  # any endpoint's: bodies do not depend on it
        level = self._commitment(commitment)

        def build(signature: Signature, call_id: int) -> Body:
            # solana-py's own request builder, as the single call uses, then the call's id.
            body = core._get_transaction_body(
                signature, encoding, level, max_supported_transaction_version
            )
            return GetTransaction(body.signature, body.config, id=call_id)

        replies = await self._batch("getTransaction", signatures, build, GetTransactionResp)
        return [reply.value for reply in replies]

    async def get_account_info(
        self,
        pubkey: Pubkey,
        *,
        commitment: Commitment | None = None,
        data_slice: DataSliceOpts | None = None,
    ) -> Slotted[Account | None]:
        resp = await self._call(
            "getAccountInfo",
            lambda c: c.get_account_info(
                pubkey, self._commitment(commitment), encoding="base64", data_slice=data_slice
            ),
            GetAccountInfoResp,
        )
        return Slotted(resp.context.slot, resp.value)

    async def get_multiple_accounts(
        self, pubkeys: Sequence[Pubkey], *, commitment: Commitment | None = None
    ) -> Slotted[list[Account | None]]:
        """Accounts in the order given (``None``: does not exist), in requests of 100 keys run
        ``chunk_concurrency`` at a time. The slot is the lowest any part reflects."""
        chunks = _chunks(list(pubkeys), MAX_MULTIPLE_ACCOUNTS)

        async def one(chunk: list[Pubkey]) -> GetMultipleAccountsResp:
            return await self._call(
                "getMultipleAccounts",
                lambda c: c.get_multiple_accounts(chunk, self._commitment(commitment)),
                GetMultipleAccountsResp,
            )

        replies = await self._gather(one, chunks)
        return _merge(replies)

    async def get_program_accounts(
        self,
        program: Pubkey,
        *,
        filters: Sequence[int | MemcmpOpts] | None = None,
        commitment: Commitment | None = None,
        data_slice: DataSliceOpts | None = None,
    ) -> list[RpcKeyedAccount]:
        """Every account ``program`` owns that passes ``filters`` (an int is a dataSize filter,
        a :class:`MemcmpOpts` compares base58 bytes at an offset)."""
        resp = await self._call(
            "getProgramAccounts",
            lambda c: c.get_program_accounts(
                program,
                self._commitment(commitment),
                encoding="base64",
                data_slice=data_slice,
                filters=list(filters) if filters is not None else None,
            ),
            GetProgramAccountsResp,
        )
        return resp.value

    async def get_token_accounts_by_owner(
        self,
        owner: Pubkey,
        *,
        mint: Pubkey | None = None,
        program_id: Pubkey | None = None,
        commitment: Commitment | None = None,
    ) -> Slotted[list[RpcKeyedAccount]]:
        """Token accounts of ``owner``, filtered by ``mint`` or by token ``program_id``."""
        if (mint is None) == (program_id is None):
            raise ValueError("give exactly one of mint or program_id")
        opts = TokenAccountOpts(mint=mint, program_id=program_id, encoding="base64")
        resp = await self._call(
            "getTokenAccountsByOwner",
            lambda c: c.get_token_accounts_by_owner(owner, opts, self._commitment(commitment)),
            GetTokenAccountsByOwnerResp,
        )
        return Slotted(resp.context.slot, resp.value)

    async def get_token_largest_accounts(
        self, mint: Pubkey, *, commitment: Commitment | None = None
    ) -> Slotted[list[RpcTokenAccountBalance]]:
        resp = await self._call(
            "getTokenLargestAccounts",
            lambda c: c.get_token_largest_accounts(mint, self._commitment(commitment)),
            GetTokenLargestAccountsResp,
        )
        return Slotted(resp.context.slot, resp.value)

    async def get_slot(self, commitment: Commitment | None = None) -> int:
        resp = await self._call(
            "getSlot", lambda c: c.get_slot(self._commitment(commitment)), GetSlotResp
        )
        return resp.value

    async def get_block(
        self,
        slot: int,
        *,
        transaction_details: str = "signatures",
        commitment: Commitment | None = None,
    ) -> UiConfirmedBlock | None:
        """The block at ``slot`` (by default its signatures in block order, no transactions),
        or None when the slot was skipped: no block was produced there, or a fork dropped it.

        A block not (yet) available at ``commitment`` is the node's to serve later: retried,
        then raised like any retryable error."""
        details = _TRANSACTION_DETAILS[transaction_details]
        try:
            resp = await self._call(
                "getBlock",
                lambda c: c.get_block(
                    slot,
                    max_supported_transaction_version=0,
                    transaction_details=details,
                    rewards=False,
                    commitment=self._commitment(commitment),
                ),
                GetBlockResp,
            )
        except RpcRejected as exc:
            if exc.rpc_code in (SLOT_SKIPPED, LONG_TERM_STORAGE_SLOT_SKIPPED):
                return None
            raise
        return resp.value

    async def get_block_height(self, commitment: Commitment | None = None) -> int:
        resp = await self._call(
            "getBlockHeight",
            lambda c: c.get_block_height(self._commitment(commitment)),
            GetBlockHeightResp,
        )
        return resp.value

    async def get_balance(
        self, pubkey: Pubkey, commitment: Commitment | None = None
    ) -> Slotted[int]:
        resp = await self._call(
            "getBalance",
            lambda c: c.get_balance(pubkey, self._commitment(commitment)),
            GetBalanceResp,
        )
        return Slotted(resp.context.slot, resp.value)

    async def request_airdrop(
        self, pubkey: Pubkey, lamports: int, commitment: Commitment | None = None
    ) -> Signature:
        resp = await self._call(
            "requestAirdrop",
            lambda c: c.request_airdrop(pubkey, lamports, self._commitment(commitment)),
            RequestAirdropResp,
        )
        return resp.value

    async def get_minimum_balance_for_rent_exemption(
        self, size: int, commitment: Commitment | None = None
    ) -> int:
        resp = await self._call(
            "getMinimumBalanceForRentExemption",
            lambda c: c.get_minimum_balance_for_rent_exemption(size, self._commitment(commitment)),
            GetMinimumBalanceForRentExemptionResp,
        )
        return resp.value

    async def get_health(self) -> bool:
        """True when an endpoint answers getHealth with "ok"; an unhealthy node (-32005) is a
        failure like any other, so the call fails over and finally raises."""
        return await self._call("getHealth", lambda c: c.is_connected(), bool)

    # -- batches -------------------------------------------------------------------------------

    async def _batch(
        self,
        method: _Batchable,
        items: Sequence[_Item],
        build: Callable[[_Item, int], Body],
        parser: type[_Result],
    ) -> list[_Result]:
        """One ``method`` call per item (``build(item, index)``: its request, whose id is its
        index), ``BATCH_CALLS`` to a POST, each POST one request of :meth:`_call`. Replies in
        the order of ``items``."""
        if not items:
            return []
        calls = [build(item, index) for index, item in enumerate(items)]

        label = _BATCH_LABELS[method]

        async def one(chunk: list[Body]) -> list[_Result]:
            batch = _Batch(chunk)
            return await self._call(label, lambda c: batch.post(c, parser), list)

        replies = await self._gather(one, _chunks(calls, BATCH_CALLS))
        return [value for reply in replies for value in reply]

    # -- machinery -----------------------------------------------------------------------------

    def _commitment(self, commitment: Commitment | None) -> Commitment:
        return commitment if commitment is not None else self._config.commitment

    async def _gather(
        self, one: Callable[[list[_Item]], Awaitable[_Result]], chunks: list[list[_Item]]
    ) -> list[_Result]:
        if len(chunks) <= 1:
            return [await one(chunk) for chunk in chunks]
        gate = asyncio.Semaphore(self._config.chunk_concurrency)

        async def gated(chunk: list[_Item]) -> _Result:
            async with gate:
                return await one(chunk)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(gated(chunk)) for chunk in chunks]
        except BaseExceptionGroup as failed:
            # A TaskGroup wraps what its tasks raised (and cancels the rest); callers catch
            # the typed error of a single request, so the first chunk's error is raised as is.
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _call(
        self,
        method: RpcMethod,
        request: Callable[[AsyncClient], Awaitable[Any]],
        expected: type[_Result],
    ) -> _Result:
        config = self._config
        attempts = 0
        rounds = 0
        tried: set[int] = set()
        last: RpcRetryableError | None = None
        while True:
            index = self._pick(tried)
            if index is None:
                # Every endpoint was tried in this round or cannot be asked right now.
                until_ready = min(e.ready_at() for e in self._endpoints) - time.monotonic()
                if (
                    attempts >= config.max_attempts
                    or rounds >= config.max_attempts
                    or until_ready > max(config.backoff_max, config.max_retry_after)
                ):
                    # Out of attempts, or every breaker is open (or every endpoint asked us to
                    # go away for long): fail now instead of holding the caller.
                    raise last if last is not None else self._unavailable(method)
                await asyncio.sleep(max(self._backoff(rounds), until_ready))
                rounds += 1
                tried.clear()
                continue
            endpoint = self._endpoints[index]
            tried.add(index)
            attempts += 1
            outcome = await self._attempt(method, endpoint, request, expected)
            if isinstance(outcome, RpcRejected):
                raise outcome
            if not isinstance(outcome, RpcRetryableError):
                return outcome
            last = outcome
            _log.warning(
                "rpc_attempt_failed",
                method=method,
                endpoint=endpoint.name,
                error=outcome.code,
                rpc_code=outcome.rpc_code,
                attempt=attempts,
            )
            if attempts >= config.max_attempts:
                raise last

    def _pick(self, tried: set[int]) -> int | None:
        now = time.monotonic()
        for index, endpoint in enumerate(self._endpoints):
            if index not in tried and endpoint.usable(now):
                return index
        return None

    def _backoff(self, rounds: int) -> float:
        # "Equal jitter": half of the exponential step is fixed, half random, so clients that
        # failed together spread out but never retry in a tight loop.
        ceiling = min(self._config.backoff_max, self._config.backoff_base * (2.0**rounds))
        return ceiling / 2 + self._rng.uniform(0.0, ceiling / 2)

    def _unavailable(self, method: RpcMethod) -> RpcUnavailable:
        self._metrics.observe(method, NO_ENDPOINT, "unavailable", 0.0)
        states = ", ".join(f"{name}={state}" for name, state in self.breaker_states().items())
        return RpcUnavailable(
            f"{method}: no RPC endpoint can be asked right now ({states}); try again later",
            method=method,
            endpoint=NO_ENDPOINT,
        )

    async def _attempt(
        self,
        method: RpcMethod,
        endpoint: _Endpoint,
        request: Callable[[AsyncClient], Awaitable[Any]],
        expected: type[_Result],
    ) -> _Result | RpcRetryableError | RpcRejected:
        endpoint.breaker.begin()
        started = time.perf_counter()
        outcome: _Result | RpcRetryableError | RpcRejected
        status: Status
        try:
            outcome, status = await self._request(method, endpoint, request, expected)
        except BaseException:
            # Cancelled (or a bug): nothing learned about the endpoint; free a probe slot.
            endpoint.breaker.abandon()
            raise
        self._metrics.observe(method, endpoint.name, status, time.perf_counter() - started)
        if isinstance(outcome, RpcRetryableError):
            endpoint.breaker.record_failure()
            if isinstance(outcome, RpcRateLimited) and outcome.retry_after is not None:
                endpoint.not_before = time.monotonic() + outcome.retry_after
        else:
            # A definitive refusal still proves the endpoint is up and answering.
            endpoint.breaker.record_success()
        return outcome

    async def _request(
        self,
        method: RpcMethod,
        endpoint: _Endpoint,
        request: Callable[[AsyncClient], Awaitable[Any]],
        expected: type[_Result],
    ) -> tuple[_Result | RpcRetryableError | RpcRejected, Status]:
        try:
            async with asyncio.timeout(self._config.request_timeout):
                result = await request(endpoint.client)
        except TimeoutError:
            return RpcTimeout(
                f"{method} on endpoint {endpoint.name} timed out",
                method=method,
                endpoint=endpoint.name,
            ), "timeout"
        except SolanaRpcException as exc:
            # The cause is an httpx2 error; its text holds the URL (and so maybe an API key), so
            # it is summarised, never chained.
            return _from_http(exc.__cause__, method, endpoint.name)
        except RPCException as exc:
            parsed = exc.args[0] if exc.args else None
            return _with_status(error_from_rpc(parsed, method=method, endpoint=endpoint.name))
        except _BatchCallsFailed as exc:
            return _with_status(exc.error(method, endpoint.name))
        except Exception as exc:  # a reply solders or pydantic cannot parse
            return (
                RpcTransportError(
                    f"{method} on endpoint {endpoint.name}: unusable reply ({type(exc).__name__})",
                    method=method,
                    endpoint=endpoint.name,
                ),
                "error",
            )
        except BaseException as exc:
            # solders panics (PanicException, a BaseException) on an error reply with code
            # -32002, -32005 or -32016 but no "data". Everything else (cancellation,
            # KeyboardInterrupt) must propagate.
            if type(exc).__name__ != "PanicException":
                raise
            return (
                RpcNodeError(
                    f"{method} on endpoint {endpoint.name}: malformed error reply "
                    "(code -32002, -32005 or -32016 without data)",
                    method=method,
                    endpoint=endpoint.name,
                ),
                "error",
            )
        if isinstance(result, expected):
            return result, "ok"
        if isinstance(result, int):
            # solders hands back the bare code of an error it does not know as the "result".
            return _with_status(error_from_rpc(result, method=method, endpoint=endpoint.name))
        return (
            RpcTransportError(
                f"{method} on endpoint {endpoint.name}: unexpected reply {type(result).__name__}",
                method=method,
                endpoint=endpoint.name,
            ),
            "error",
        )


class _BatchCallsFailed(Exception):
    """Calls of a batch the node answered with an error: ``(call id, parsed error)``."""

    def __init__(self, failed: list[tuple[int, object]]) -> None:
        super().__init__(f"{len(failed)} calls of a batch failed")
        self.failed = failed

    def error(self, method: str, endpoint: str) -> RpcRetryableError | RpcRejected:
        """What the POST fails with. A retryable error first: the POST is retried, as that
        call alone would have been. Else the first refusal, as that call alone would raise."""
        errors: list[RpcRetryableError | RpcRejected] = []
        for call_id, parsed in self.failed:
            error = error_from_rpc(parsed, method=method, endpoint=endpoint)
            error.details["batch_item"] = call_id
            errors.append(error)
        return next((e for e in errors if isinstance(e, RpcRetryableError)), errors[0])


class _Batch:
    """The calls of one JSON-RPC batch POST. A call's id is its index in the caller's list;
    the reply to it is found by that id, since a batch reply may come in any order
    (JSON-RPC 2.0, section 6)."""

    def __init__(self, calls: list[Body]) -> None:
        self._calls = calls
        self._ids: list[int] = [call.id for call in calls]

    def to_json(self) -> str:
        # The same text as solders' batch_to_json, which costs ~45 us a call (measured: 4.7 ms
        # for 100 getTransaction calls, against 0.14 ms for this join), more than the HTTP
        # request a batch saves per call.
        return "[" + ",".join(call.to_json() for call in self._calls) + "]"

    async def post(self, client: AsyncClient, parser: type[_Result]) -> list[_Result]:
        # solana-py 0.41 has no batch call, but its provider posts any body with a to_json():
        # the batch goes through the endpoint's own httpx session, headers and timeout, and a
        # transport failure or HTTP status comes back wrapped as for every single call.
        raw = await client._provider.make_request_unparsed(self)
        return self.parse(raw, parser)

    def parse(self, raw: str, parser: type[_Result]) -> list[_Result]:
        """One reply per call, in call order. Raises ``ValueError`` when the reply is not one
        answer per call, :class:`_BatchCallsFailed` naming every call answered with an error,
        and ``RPCException`` (as a single call does) when the node answered the whole batch
        with one error (too many calls, batches not served)."""
        payload = json.loads(raw)
        if isinstance(payload, dict):
            whole = parser.from_json(raw)  # type: ignore[attr-defined]
            if isinstance(whole, parser):
                raise ValueError("one result for a whole batch")
            raise RPCException(whole)
        if not isinstance(payload, list) or len(payload) != len(self._ids):
            raise ValueError("not one reply per call of the batch")
        got = [entry.get("id") if isinstance(entry, dict) else None for entry in payload]
        if got != self._ids:
            raw = json.dumps(self._in_call_order(payload, got))
        # solders parses a batch reply by position, one parser per entry.
        values: list[Any] = batch_from_json(raw, [parser] * len(self._ids))
        failed = [
            (call_id, value)
            for call_id, value in zip(self._ids, values, strict=True)
            if not isinstance(value, parser)
        ]
        if failed:
            raise _BatchCallsFailed(failed)
        return values

    def _in_call_order(self, payload: list[Any], got: list[Any]) -> list[Any]:
        position = {call_id: index for index, call_id in enumerate(self._ids)}
        ordered: list[Any] = [None] * len(self._ids)
        for entry, call_id in zip(payload, got, strict=True):
            index = position.get(call_id) if type(call_id) is int else None
            if index is None or ordered[index] is not None:
                raise ValueError("a batch reply whose ids do not match the calls")
            ordered[index] = entry
        return ordered


def _with_status(
    error: RpcRetryableError | RpcRejected,
) -> tuple[RpcRetryableError | RpcRejected, Status]:
    if isinstance(error, RpcRejected):
        return error, "rejected"
    if error.rpc_code == NODE_UNHEALTHY:
        return error, "unavailable"
    return error, "error"


def _from_http(
    cause: BaseException | None, method: str, endpoint: str
) -> tuple[RpcRetryableError, Status]:
    if isinstance(cause, httpx2.TimeoutException):
        return RpcTimeout(
            f"{method} on endpoint {endpoint} timed out", method=method, endpoint=endpoint
        ), "timeout"
    if isinstance(cause, httpx2.HTTPStatusError):
        code = cause.response.status_code
        if code == 429:
            retry_after = _retry_after(cause.response.headers.get("retry-after"))
            return (
                RpcRateLimited(
                    f"{method} on endpoint {endpoint}: rate limited (HTTP 429)",
                    retry_after=retry_after,
                    method=method,
                    endpoint=endpoint,
                ),
                "rate_limited",
            )
        error = RpcTransportError(
            f"{method} on endpoint {endpoint}: HTTP {code}",
            details={"http_status": code},
            method=method,
            endpoint=endpoint,
        )
        return error, "unavailable" if code == 503 else "error"
    name = type(cause).__name__ if cause is not None else "unknown"
    return RpcTransportError(
        f"{method} on endpoint {endpoint}: {name}", method=method, endpoint=endpoint
    ), "error"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        # float() also accepts "nan" and "inf"; neither is a usable delay.
        return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _chunks(items: list[_Item], size: int) -> list[list[_Item]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _merge(replies: Sequence[Any]) -> Slotted[list[Any]]:
    values: list[Any] = []
    for reply in replies:
        values.extend(reply.value)
    return Slotted(min(reply.context.slot for reply in replies), values)
