"""Batched getSignaturesForAddress and getTransaction against the real local chain: every
answer equals the single call's, in the order asked, across POSTs, with missing addresses and
signatures, before/until paging, and the single call's typed error for a refused call. And the
local chain's own batch replies, on the wire."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Processed
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

from chain.localnet import Localnet
from chain.rpc import RpcClient, RpcRejected, SignaturesQuery
from chain.rpc.protocol import (
    BATCH_CALLS,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    MIN_CONTEXT_SLOT_NOT_REACHED,
    UNSUPPORTED_TRANSACTION_VERSION,
)
from tests.harness.localnet import airdrop, blockhash, mint_nft, wait_status

TRANSFERS = 40


@dataclass(frozen=True)
class History:
    wallet: Pubkey
    receivers: list[Pubkey]
    mints: list[Pubkey]
    signatures: list[Signature]  # every transaction the wallet signed, oldest first
    v0: Signature  # a version 0 transaction: refused without maxSupportedTransactionVersion


@pytest_asyncio.fixture(scope="module")
async def history(solana_client: AsyncClient) -> History:
    """A wallet with a history of SOL transfers, NFT mints and one v0 transfer, all finalized
    (so no answer changes between the batched and the single calls)."""
    wallet = Keypair()
    await airdrop(solana_client, wallet.pubkey())
    receivers = [Pubkey.new_unique() for _ in range(TRANSFERS)]
    recent = await blockhash(solana_client)
    signatures = []
    for receiver in receivers:
        ix = transfer(
            TransferParams(from_pubkey=wallet.pubkey(), to_pubkey=receiver, lamports=10**6)
        )
        tx = Transaction([wallet], Message([ix], wallet.pubkey()), recent)
        signatures.append((await solana_client.send_raw_transaction(bytes(tx))).value)
    mints = []
    for _ in range(3):
        mint, signature = await mint_nft(solana_client, wallet, Pubkey.new_unique())
        mints.append(mint.pubkey())
        signatures.append(signature)
    ix = transfer(
        TransferParams(from_pubkey=wallet.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=10**6)
    )
    message = MessageV0.try_compile(wallet.pubkey(), [ix], [], recent)
    v0 = (
        await solana_client.send_raw_transaction(bytes(VersionedTransaction(message, [wallet])))
    ).value
    for signature in [*signatures, v0]:
        await wait_status(solana_client, signature, "finalized", attempts=2000)
    return History(wallet.pubkey(), receivers, mints, signatures, v0)


@pytest_asyncio.fixture
async def client(localnet: Localnet) -> AsyncIterator[tuple[RpcClient, CollectorRegistry]]:
    registry = CollectorRegistry()
    async with RpcClient([localnet.rpc_url], metrics=registry) as rpc:
        yield rpc, registry


def _posts(registry: CollectorRegistry, method: str) -> float:
    labels = {"method": method, "endpoint": "0", "status": "ok"}
    return registry.get_sample_value("solana_rpc_duration_seconds_count", labels) or 0.0


async def test_signatures_of_many_addresses_equal_the_single_calls(
    client: tuple[RpcClient, CollectorRegistry], history: History
) -> None:
    rpc, registry = client
    newest_first = history.signatures[::-1]
    queries = [
        SignaturesQuery(history.wallet),
        *(SignaturesQuery(a) for a in history.receivers),
        *(SignaturesQuery(m) for m in history.mints),
        *(SignaturesQuery(Pubkey.new_unique()) for _ in range(70)),  # no history at all
        # Paging: before and until are exclusive, limit cuts from the newest.
        SignaturesQuery(history.wallet, before=newest_first[9], limit=5),
        SignaturesQuery(history.wallet, before=newest_first[9], until=newest_first[20]),
        SignaturesQuery(history.wallet, until=newest_first[3]),
        SignaturesQuery(history.wallet, limit=1),
        SignaturesQuery(history.wallet, before=Signature.new_unique()),  # unknown: nothing
        SignaturesQuery(history.wallet),  # the same query twice
    ]
    assert len(queries) > BATCH_CALLS

    batched = await rpc.get_signatures_for_address_many(queries)
    posts = _posts(registry, "batch:getSignaturesForAddress")
    assert posts == math.ceil(len(queries) / BATCH_CALLS)

    singles = [
        await rpc.get_signatures_for_address(
            q.address, before=q.before, until=q.until, limit=q.limit
        )
        for q in queries
    ]
    assert batched == singles
    # And they say what was asked (not merely the same thing twice).
    wallet_sigs = [entry.signature for entry in batched[0]]
    assert wallet_sigs[: len(newest_first) + 1] == [history.v0, *newest_first]
    assert [len(page) for page in batched[1 : 1 + TRANSFERS]] == [1] * TRANSFERS
    assert [[e.signature for e in batched[1 + i]] for i in range(TRANSFERS)] == [
        [s] for s in history.signatures[:TRANSFERS]
    ]
    paging = batched[-6:]
    assert [e.signature for e in paging[0]] == newest_first[10:15]
    assert [e.signature for e in paging[1]] == newest_first[10:20]
    assert [e.signature for e in paging[2]] == [history.v0, *newest_first[:3]]
    assert [e.signature for e in paging[3]] == [history.v0]
    assert paging[4] == []
    assert batched[-1] == batched[0]
    assert all(page == [] for page in batched[1 + TRANSFERS + 3 : 1 + TRANSFERS + 3 + 70])


async def test_paging_a_whole_history_in_batches(
    client: tuple[RpcClient, CollectorRegistry], history: History
) -> None:
    """Page the wallet's history 7 at a time by ``before``, one query per batch, as a crawl
    does: the pages join into exactly the full history."""
    rpc, _ = client
    full = await rpc.get_signatures_for_address(history.wallet)
    pages: list[Signature] = []
    before: Signature | None = None
    while True:
        (page,) = await rpc.get_signatures_for_address_many(
            [SignaturesQuery(history.wallet, before=before, limit=7)]
        )
        if not page:
            break
        pages.extend(entry.signature for entry in page)
        before = page[-1].signature
    assert pages == [entry.signature for entry in full]


async def test_transactions_equal_the_single_calls_in_order(
    client: tuple[RpcClient, CollectorRegistry], history: History
) -> None:
    rpc, registry = client
    unknown = [Signature.new_unique() for _ in range(15)]
    # Interleaved, with duplicates, more calls than one POST holds.
    wanted = [*history.signatures[::-1], *unknown, *history.signatures, history.v0]
    wanted = wanted[: len(wanted) // 2] + unknown[:3] + wanted[len(wanted) // 2 :]
    assert len(wanted) > BATCH_CALLS

    batched = await rpc.get_transactions(wanted)
    assert _posts(registry, "batch:getTransaction") == math.ceil(len(wanted) / BATCH_CALLS)
    singles = [await rpc.get_transaction(signature) for signature in wanted]
    assert batched == singles
    for signature, tx in zip(wanted, batched, strict=True):
        if signature in unknown:
            assert tx is None
        else:
            assert tx is not None
            assert tx.transaction.transaction.signatures[0] == signature  # type: ignore[union-attr]

    some = history.signatures[:3]
    encoded = await rpc.get_transactions(some, encoding="base64")
    assert encoded == [await rpc.get_transaction(s, encoding="base64") for s in some]
    assert await rpc.get_transactions([]) == []
    assert await rpc.get_signatures_for_address_many([]) == []


async def test_a_refused_call_raises_what_its_single_call_raises(
    client: tuple[RpcClient, CollectorRegistry], history: History
) -> None:
    rpc, registry = client
    with pytest.raises(RpcRejected) as single:
        await rpc.get_transaction(history.v0, max_supported_transaction_version=None)
    calls = [*history.signatures[:2], history.v0, Signature.new_unique()]
    with pytest.raises(RpcRejected) as batched:
        await rpc.get_transactions(calls, max_supported_transaction_version=None)
    assert type(batched.value) is type(single.value)
    assert batched.value.rpc_code == single.value.rpc_code == UNSUPPORTED_TRANSACTION_VERSION
    assert batched.value.details["batch_item"] == 2
    # A refusal is an answer: not retried, measured as rejected.
    for method in ("getTransaction", "batch:getTransaction"):
        labels = {"method": method, "endpoint": "0", "status": "rejected"}
        assert registry.get_sample_value("solana_rpc_duration_seconds_count", labels) == 1

    # The refused call in the second POST: its index among all the calls.
    too_many = [SignaturesQuery(history.wallet)] * (BATCH_CALLS + 5)
    too_many[BATCH_CALLS + 3] = SignaturesQuery(history.wallet, limit=1001)
    with pytest.raises(RpcRejected) as limit:
        await rpc.get_signatures_for_address_many(too_many)
    assert limit.value.rpc_code == INVALID_PARAMS
    assert limit.value.details["batch_item"] == BATCH_CALLS + 3
    with pytest.raises(RpcRejected) as processed:
        await rpc.get_transactions(history.signatures[:2], commitment=Processed)
    assert processed.value.rpc_code == INVALID_PARAMS
    assert processed.value.details["batch_item"] == 0


async def test_the_local_chain_answers_a_batch_as_json_rpc_says(localnet: Localnet) -> None:
    """Replies carry each call's own id (any JSON value), an error stays with its call (with
    the ``data`` solders needs), and notifications (calls without an id) are executed but
    never answered: a batch of notifications only gets an empty body, not ``[]``."""
    funded = Pubkey.new_unique()
    batch = [
        {
            "jsonrpc": "2.0",
            "id": "first",
            "method": "getSlot",
            "params": [{"commitment": "confirmed"}],
        },
        {"jsonrpc": "2.0", "method": "requestAirdrop", "params": [str(funded), 10**9]},
        {"jsonrpc": "2.0", "id": 7, "method": "getSlot", "params": [{"minContextSlot": 10**15}]},
        {"jsonrpc": "2.0", "id": None, "method": "noSuchMethod"},
        {
            "jsonrpc": "2.0",
            "id": 8,
            "method": "getBalance",
            "params": [str(funded), {"commitment": "processed"}],
        },
    ]
    async with httpx.AsyncClient() as http:
        replies = (await http.post(localnet.rpc_url, json=batch)).json()
        only_notifications = await http.post(localnet.rpc_url, json=[batch[1], batch[1]])
        one_notification = await http.post(localnet.rpc_url, json=batch[1])
    assert [reply["id"] for reply in replies] == ["first", 7, None, 8]
    assert isinstance(replies[0]["result"], int)
    assert replies[1]["error"]["code"] == MIN_CONTEXT_SLOT_NOT_REACHED
    assert "contextSlot" in replies[1]["error"]["data"]
    assert replies[2]["error"]["code"] == METHOD_NOT_FOUND
    assert replies[3]["result"]["value"] == 10**9  # the notification ran, in batch order
    assert (only_notifications.status_code, only_notifications.content) == (200, b"")
    assert (one_notification.status_code, one_notification.content) == (200, b"")
