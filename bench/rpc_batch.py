"""JSON-RPC batches vs one call at a time: listing addresses and fetching transactions.

    .venv/bin/python -m bench.rpc_batch [--addresses 4000] [--transactions 2000]
        [--in-flight 8] [--repeat 3]

Starts ``aiw3 localnet`` as a subprocess, funds one wallet and sends ``--transactions`` SOL
transfers from it, each to a new address, all confirmed. Then, through ``chain.rpc.RpcClient``
(what the indexer uses), ``--repeat`` times each, interleaved:

* **list**: ``getSignaturesForAddress`` of ``--addresses`` addresses (the receivers, one
  signature each, then new addresses without history), ``--in-flight`` single calls at a time
  vs ``RpcClient.get_signatures_for_address_many`` (``BATCH_CALLS`` calls a POST,
  ``chunk_concurrency`` POSTs in flight);
* **fetch**: ``getTransaction`` of every transfer, ``--in-flight`` single calls at a time vs
  ``RpcClient.get_transactions``.

Prints each run's time, then the median calls per second of each path, the ratio batched /
single and the HTTP requests each made (from ``solana_rpc_duration_seconds``); checks that
both paths got the same answers (listed entries by signature and slot). Numbers only, no
asserts; bounded by a timeout on every wait.

Measured 2026-12-02 (2 cores shared with other work and the chain, defaults: 4,000 addresses,
2,000 transactions, 8 single calls in flight, 4 POSTs of 100 in flight), two runs a few
minutes apart (about 20 s each):

    list  4000 addresses     single   1456 calls/s (4000 POSTs)  batched  71597 calls/s (40 POSTs)
                             ratio 49.2
    fetch 2000 transactions  single   1369 calls/s (2000 POSTs)  batched  27945 calls/s (20 POSTs)
                             ratio 20.4

    list  4000 addresses     single   1342 calls/s (4000 POSTs)  batched  53528 calls/s (40 POSTs)
                             ratio 39.9
    fetch 2000 transactions  single   1239 calls/s (2000 POSTs)  batched  18964 calls/s (20 POSTs)
                             ratio 15.3

With solders' ``batch_to_json`` building the body (4.7 ms for 100 getTransaction calls, 47 us
a call, more than the HTTP request saved per call) it was 20,038 and 10,999 calls/s batched
(ratios 16 and 9.6); the client now joins each call's ``to_json()``, the same text at 0.14 ms.
What is left per batched call is parsing the reply: ``json.loads`` (ids) and solders'
``batch_from_json``, together about 12 us a call (profiled). At these rates listing the
indexer's 20,000 addresses is about 0.3 s instead of 14 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, cast

from prometheus_client import CollectorRegistry
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcConfirmedTransactionStatusWithSignature
from solders.signature import Signature
from solders.system_program import TransferParams, transfer

from bench.indexer import Chain, _pool, _rpc_calls  # sending, confirming, counting in bulk
from bench.localnet import _start_localnet  # the one way the benches start a chain
from chain.rpc import RpcClient, SignaturesQuery

_T = TypeVar("_T")
LAMPORTS = 10**6  # above the rent-exempt minimum of an empty account


async def make_history(chain: Chain, count: int) -> tuple[list[Pubkey], list[Signature]]:
    """``count`` confirmed transfers from one wallet, each to a new address."""
    wallet = Keypair()
    await chain.confirm([(await chain.client.request_airdrop(wallet.pubkey(), 10**14)).value])
    receivers = [Keypair().pubkey() for _ in range(count)]

    def job(to: Pubkey) -> Callable[[], Awaitable[Signature]]:
        ix = transfer(TransferParams(from_pubkey=wallet.pubkey(), to_pubkey=to, lamports=LAMPORTS))
        return lambda: chain.send([wallet], [ix])

    signatures = await _pool(chain.in_flight, [job(to) for to in receivers])
    await chain.confirm(signatures)
    return receivers, signatures


async def timed(run: Callable[[], Awaitable[_T]]) -> tuple[float, _T]:
    started = time.perf_counter()
    result = await asyncio.wait_for(run(), 300)
    return time.perf_counter() - started, result


def one_at_a_time(
    in_flight: int, items: Sequence[_T], call: Callable[[_T], Awaitable[object]]
) -> Callable[[], Awaitable[Sequence[object]]]:
    def job(item: _T) -> Callable[[], Awaitable[object]]:
        return lambda: call(item)

    return lambda: _pool(in_flight, [job(item) for item in items])


def _listed(pages: Sequence[object]) -> list[list[tuple[Signature, int]]]:
    listed = cast(Sequence[Sequence[RpcConfirmedTransactionStatusWithSignature]], pages)
    return [[(entry.signature, entry.slot) for entry in page] for page in listed]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=4000, help="addresses listed")
    parser.add_argument("--transactions", type=int, default=2000, help="transactions fetched")
    parser.add_argument("--in-flight", type=int, default=8, help="single calls in flight")
    parser.add_argument("--repeat", type=int, default=3, help="runs per path (median shown)")
    args = parser.parse_args()

    proc, rpc_url, _ = await _start_localnet()
    try:
        started = time.perf_counter()
        async with AsyncClient(rpc_url) as client:
            receivers, signatures = await make_history(
                Chain(client, args.in_flight), args.transactions
            )
        print(
            f"chain: {len(signatures)} transfers confirmed in {time.perf_counter() - started:.1f} s"
        )
        addresses = receivers[: args.addresses]
        addresses += [Keypair().pubkey() for _ in range(args.addresses - len(addresses))]
        queries = [SignaturesQuery(address) for address in addresses]
        rates: dict[str, list[float]] = {k: [] for k in ("list1", "listN", "fetch1", "fetchN")}
        registries = {k: CollectorRegistry() for k in rates}
        clients = {k: RpcClient([rpc_url], metrics=registries[k]) for k in rates}
        try:
            flight = args.in_flight
            list1 = clients["list1"]
            fetch1 = clients["fetch1"]
            runs: dict[str, Callable[[], Awaitable[Sequence[object]]]] = {
                "list1": one_at_a_time(flight, addresses, list1.get_signatures_for_address),
                "listN": lambda: clients["listN"].get_signatures_for_address_many(queries),
                "fetch1": one_at_a_time(flight, signatures, fetch1.get_transaction),
                "fetchN": lambda: clients["fetchN"].get_transactions(signatures),
            }
            answers: dict[str, Sequence[object]] = {}
            for _ in range(args.repeat):  # interleaved, so machine noise hits every path alike
                for key, run in runs.items():
                    seconds, answers[key] = await timed(run)
                    calls = len(queries) if key.startswith("list") else len(signatures)
                    rates[key].append(calls / seconds)
                    print(f"  {key}: {seconds:.2f} s", flush=True)
        finally:
            for rpc in clients.values():
                await rpc.close()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)

    # Listed entries are compared by signature and slot: their confirmationStatus moves on to
    # finalized while the runs go.
    same = _listed(answers["list1"]) == _listed(answers["listN"])
    same = same and answers["fetch1"] == answers["fetchN"]
    median = {k: statistics.median(v) for k, v in rates.items()}
    print(f"median of {args.repeat} runs; single calls {args.in_flight} in flight")
    rows = [
        ("list", f"{len(queries)} addresses", "getSignaturesForAddress"),
        ("fetch", f"{len(signatures)} transactions", "getTransaction"),
    ]
    for key, what, method in rows:
        single, batched = median[f"{key}1"], median[f"{key}N"]
        counted = [_rpc_calls(registries[f"{key}{k}"]) for k in "1N"]
        requests = [(c.get(method, 0) + c.get(f"batch:{method}", 0)) / args.repeat for c in counted]
        print(
            f"  {key:<5} {what:<18} single {single:6.0f} calls/s ({requests[0]:.0f} POSTs)"
            f"  batched {batched:6.0f} calls/s ({requests[1]:.0f} POSTs)"
        )
        print(f"  {'':<24} ratio {batched / single:.1f}")
    print(f"  same answers both ways: {same}")


if __name__ == "__main__":
    asyncio.run(main())
