"""Indexer throughput and live latency on the local chain.

    .venv/bin/python -m bench.indexer [--nfts 10000] [--in-flight 8] [--live 100]
        [--live-load 0] [--batch 500] [--per-tx 2000] [--backends sqlite postgres]
        [--profile sqlite|postgres|runner] [--runner-backfill]

(as a module: run as a script, this file would shadow the ``indexer`` package)

Starts ``aiw3 localnet`` as a subprocess (its CPU is not ours, but the machine's cores are
shared), then:

1. **Chain.** One deployment (system wallet + collection); ``--nfts`` Token-2022 NFT mints into
   the collection to 100 owners, then one ``TransferChecked`` of every NFT to another owner
   (an ATA created on the way); every transaction confirmed.
2. **Backfill**, timed apart over the same transactions: *list* and *fetch* (the signatures
   from ``getSignaturesForAddress`` of the creator, who pays for everything here, then
   ``getTransaction`` each once, ``--in-flight`` at a time, through ``chain.rpc.RpcClient``),
   *decode* (``indexer.decode``) and *project* on each of ``--backends`` (a SQLite file, a
   fresh PostgreSQL database): the first ``--per-tx`` transactions one database transaction
   each with its cursor (``apply``, as the runner's live path does), then all of them in
   batches of ``--batch`` (``apply_all``, one database transaction a batch with its cursor).
   Printed in transactions per second with the ratio to the 5,000 tx/s aim; ``--profile``
   prints cProfile's top functions of the batched run on that backend (cumulative, then own
   time); ``--per-tx 0`` skips the one-at-a-time runs. ``--runner-backfill`` also times
   ``Indexer.backfill`` from an empty SQLite database once every transaction is final (lists,
   fetches and projects; every followed address is listed, so each transaction is listed once
   per address it mentions, and fetched once), and prints its RPC calls by method.
3. **Live.** A fresh SQLite database and deployment with ``--live`` NFTs, the runner
   (``Indexer.run`` under a local lease, websocket source) started, caught up and quiet (its
   start-up crawls done); then ``--live`` transfers one at a time, each timed from the moment
   ``getSignatureStatuses`` says confirmed to the moment its new owner is visible in ``assets``
   (p50, p99, max), with the ratio of p99 to one 400 ms slot. ``--live-load R`` moves other
   NFTs at R transfers a second meanwhile (the loaded case).

Numbers only, no asserts; bounded by a timeout on every wait.

Measured (2 cores shared with other work and the chain; ``--nfts 10000``, 20,002 transactions,
``--batch 500``; before and after run back to back): the batched projection went from 1,894 to
2,353 tx/s on SQLite and from 1,389 to 1,529 tx/s on PostgreSQL once ``Loaded.save`` and the
history insert bypassed SQLAlchemy's per-row parameter construction
(``store.dialect.execute_many``: compiled once, each value through its type's bind processor,
tuples straight to the driver) and PostgreSQL's changed rows went as one ``UPDATE ... FROM
unnest(...)`` per set of columns (``store.dialect.update_many``). At ``--nfts 2000`` on a quieter
machine (profiled, SQLite) it was 1,020 -> 2,519 tx/s, PostgreSQL 2,092 -> 2,881 tx/s. Still
short of the 5,000 aim: what remains is the preload queries (``_load``: chunked ``IN`` selects,
their row building), about 0.06 ms/tx of Python in ``_apply_one``/``_derive``, the remaining bind
processors (JSON dumps, the bounded-string checks) and, on PostgreSQL, the round trips of each
batch's dozen statements; the numbers swing by a third with the machine's load.

2026-12-02 (same machine, shared; ``--nfts 10000``):

* ``Indexer.backfill`` (``--runner-backfill``) crawled each followed address apart and fetched a
  transaction once per address that mentions it: 300 NFTs 55.6 s (11 tx/s); 1,000 NFTs 34.4 s
  (58 tx/s, 7,002 ``getTransaction`` for 2,002 transactions). Now each round lists every
  address, de-duplicates, fetches each signature once and projects in chain order in batches
  with every cursor: 1,000 NFTs 5.2 s (385 tx/s, 2,002 ``getTransaction``), back to back; 10,000
  NFTs 46.3 s (432 tx/s; 20,002 ``getTransaction``, 30,021 ``getSignaturesForAddress``, 64
  ``getBlock``). What limits it now is the number of requests: the second round lists each of
  the 10,000 mints and 20,000 token accounts the first one found (one request each: about half
  the time), then the fetches (about 14 s), then projection (about 5 s). Profiled
  (``--profile runner``, 3,000 NFTs) the time is the client's own cost per HTTP request
  (solana-py over httpx: request building, the connection pool, h11), not the chain: 16
  listings in flight instead of 8 changed nothing (12.5 s against 12.7 s at 3,000 NFTs). JSON-RPC
  batches (many calls in one POST, in ``chain.rpc``) would be the next step. Live, 100
  transfers: confirmed -> visible p50 41 ms, p99 59 ms (0.15 of a slot).
* The batched projection, two back-to-back pairs (before -> after loading rows as tuples,
  building executemany parameters column by column, working out each transaction's mint sets
  once and skipping the metadata copy of a transfer): SQLite 3,297 -> 3,528 and 3,885 -> 4,609
  tx/s, PostgreSQL 2,417 -> 2,724 and 3,138 -> 3,617 tx/s (the earlier 2,353/1,529 were on a
  busier machine: the run-to-run spread is larger than either change). Still short of 5,000:
  profiled (SQLite, 4,000 NFTs), about a fifth of the time is SQLite itself (the driver's
  thread), the rest Python spread thin: JSON decoding of the loaded ``metadata_fields`` and
  encoding of the new ones, the bound-string checks of every bound value (about 22 a
  transaction), ``_set_field``/``_derive``/``_apply_one`` (about 0.05 ms a transaction) and the
  expanded ``IN`` lists of the preload; no single piece is more than a tenth. On PostgreSQL
  those ``IN`` lists rendered and cast a placeholder per value at every execution (about a
  tenth of the profile): now one array parameter (``= ANY($1)``, ``store.dialect.among``),
  PostgreSQL 2,991 -> 3,366 tx/s back to back (SQLite 3,453 -> 3,585, unchanged by it).

2026-12-02 02:36-03:03, main, quiet machine. ``--nfts 10000 --runner-backfill``: batched
projection SQLite 3,191 tx/s, PostgreSQL 3,059 tx/s; ``Indexer.backfill`` from empty 60.3 s
(332 tx/s, 20,002 ``getTransaction`` for 20,002 transactions); live over 100 NFTs p50 50 ms,
p99 109 ms (0.27 of a slot). Live in a bigger deployment (``--live 100 --live-among N``, the
timed transfers among N still NFTs the runner follows): N=2,000, start-up 51 s, p50 37 ms but
p99 (the max of 100) 4.6 s; N=10,000, start-up about 6 minutes and then one timed transfer not
visible within 30 s. **Not met at that size.** The cause is in the runner's shape, not the
projection: the live loop runs the crawls of the subscriptions' Gaps inline (each subscription
confirmed reports one; 20,000 followed addresses are listed one request each, in batches as they
arrive), and each ``_handle`` is its own crawl run, so a transaction listed by a mint and its
token account in different batches is fetched again; the "quiet" wait sees only projected
transactions, not listings that find nothing, so start-up crawls still run while the timed
transfers wait behind them. Next: crawls in their own task beside the notifications (ordered
per address), one run across a start-up's Gaps, and fewer subscriptions per NFT (a Geyser
source filters by account list instead).

2026-12-02 03:58-04:02, main, the crawls moved into their own task beside the notifications (the
runner takes a burst of Gaps as one crawl run; the two take turns only by database transaction;
a gapped address's cursor is left to its crawl), ``--live 100 --live-among N``, SQLite: N=2,000,
start-up 25.8 s (was 51 s), p50 31 ms, p99 48 ms; **N=10,000 (10,100 NFTs, 20,201 followed
addresses): start-up 63.5 s (was about 6 minutes), p50 42 ms, p99 65 ms (0.16 of a slot)**. The
live p99 aim is met at 10,000 NFTs. What the start-up still spends is the 20,201 listings, one
HTTP request each, and the 20,201 ``logsSubscribe`` frames; the live path no longer waits on them.
``--live-drop`` (the node closes every websocket halfway through the timed transfers) at N=10,000:
every connection back and every gap crawled 24.5 s after the drop, and the first transfer after
it visible 5.7 s after its confirmation (found by the crawl: its subscription was not back yet).

2026-12-02 04:21-04:25, crawls in JSON-RPC batches (``sources.list_many``: every address's page
in POSTs of 100 calls; ``RpcClient.get_transactions`` likewise), ``--nfts 10000
--runner-backfill --live 100 --live-among 10000 --live-drop``, SQLite: ``Indexer.backfill`` from
empty **17.8 s (1,125 tx/s; was 60.3 s)**, with 321 + 220 POSTs instead of 30,021
``getSignaturesForAddress`` and 20,002 ``getTransaction`` requests; batched projection 5,429
tx/s on that run. Live over 10,100 NFTs: start-up 25.2 s (was 63.5 s), p50 35 ms, p99 (the max of
100) 390 ms = 0.98 of a slot, the first transfer after the drop; before the drop p99 55 ms.
Every connection back and every gap crawled 2.1 s after the drop (was 24.5 s). What limits the
start-up now is subscribing (20,201 ``logsSubscribe`` frames, the node's answers, one Gap for
all) and the backfill's own fetch-and-project of 20,000 transactions.

2026-12-02 04:51-04:55, branch proj-speed, the batched projection at ``--nfts 10000 --per-tx 0
--live 0`` (20,002 transactions), main's code and the branch's run alternately, two pairs: SQLite
4,541 -> 6,457 and 5,230 -> 6,789 tx/s, PostgreSQL 4,465 -> 6,663 and 5,309 -> 7,711 tx/s (the
aim of 5,000 met on both, by 1.3-1.5; main's own numbers swing from 3,191 to 5,309 with the
machine's load). What did it: (1) no cyclic garbage collection while a batch runs
(``indexer.projection._collector_paused``): a batch's hundred thousand containers, collected
while alive, were promoted and set off full collections over the whole heap, 1.06 s of 4.37 s at
10,000 NFTs (measured with ``gc.callbacks``), the largest single cost; (2) bounded strings
checked a column at a time (``BoundedString.column_processor``: ``max(map(len, ...))``, the same
error) and one JSON encoder for every bind; (3) ``Loaded`` reads through
``store.dialect.select_among``: one statement compiled once, each list one parameter (SQLite
``IN (SELECT value FROM json_each(?))``, PostgreSQL ``= ANY($1)``), so no chunks, no per-value
placeholders and no ``Row`` objects; (4) on PostgreSQL new rows go as one ``INSERT ... SELECT
FROM unnest(...)`` (``store.dialect.insert_many``, also ``insert_ignore_many``): an executemany
of inserts ran row by row on the server. What remains (10,000 NFTs, statements timed around the
driver): SQLite 2.85 s, of it about 0.9 s in statements (the ``asset_events`` insert with its
indexes 0.33 s, the other inserts and updates 0.3 s, the preload selects 0.2 s) and the rest
Python spread thin (``_load`` and ``Loaded.save`` building rows and parameters, JSON of the
metadata, ``_apply_one`` 0.23 s, ``_derive`` 0.15 s); PostgreSQL 2.9 s, of it about 1.4 s in
statements (the ``asset_events`` insert 0.41 s, the other inserts 0.41 s, the updates 0.3 s,
selects 0.25 s), the server sharing the two cores with us. orjson (not a dependency) would cut
the JSON part; the schema's indexes on ``asset_events`` are the largest database cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import pstats
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import httpx
from prometheus_client import CollectorRegistry
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from solders.transaction_status import EncodedConfirmedTransactionWithStatusMeta
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.localnet import _start_localnet  # the one way the benches start a chain
from bench.mint import _drop_postgres, _postgres_database  # and make a PostgreSQL database
from chain.codecs import ata, spl_token
from chain.programs import TOKEN_2022_PROGRAM
from chain.rpc import RpcClient
from chain.standards import CollectionRequest, MintRequest, get_standard
from indexer.decode import DecodedTx, decode_transaction
from indexer.metrics import IndexerMetrics
from indexer.projection import Projection, Trust
from indexer.runner import Indexer, IndexerConfig, cursor_name
from store import migrate
from store.engine import create_engine, session_factory
from store.leases import LocalLeases
from store.repos import tracking
from store.tables import AssetRow

STANDARD = get_standard("token2022")
T22 = TOKEN_2022_PROGRAM
OWNERS = 100
AIM_TX_S = 5000
SLOT_S = 0.4
_T = TypeVar("_T")


# --- the chain ---------------------------------------------------------------------------------


class Chain:
    def __init__(self, client: AsyncClient, in_flight: int) -> None:
        self.client = client
        self.in_flight = in_flight
        self._hash: Hash | None = None
        self._hash_at = 0.0

    async def blockhash(self) -> Hash:
        if self._hash is None or time.monotonic() - self._hash_at > 1.0:
            # At the preflight commitment (solana-py default: finalized), as production does.
            self._hash = (await self.client.get_latest_blockhash()).value.blockhash
            self._hash_at = time.monotonic()
        return self._hash

    async def send(self, signers: Sequence[Keypair], plan: Sequence[object]) -> Signature:
        message = Message(list(plan), signers[0].pubkey())  # type: ignore[arg-type]
        tx = Transaction(list(signers), message, await self.blockhash())
        return (await self.client.send_raw_transaction(bytes(tx))).value

    async def confirm(self, signatures: Sequence[Signature], patience: float = 300.0) -> None:
        pending = list(signatures)
        deadline = time.monotonic() + patience
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} transactions did not confirm")
            still: list[Signature] = []
            for i in range(0, len(pending), 256):
                chunk = pending[i : i + 256]
                statuses = (await self.client.get_signature_statuses(chunk)).value
                for sig, status in zip(chunk, statuses, strict=True):
                    if status is None or status.confirmation_status is None:
                        still.append(sig)
                    elif status.err is not None:
                        raise RuntimeError(f"{sig} failed: {status.err}")
                    elif str(status.confirmation_status).endswith("Processed"):
                        still.append(sig)
            pending = still
            if pending:
                await asyncio.sleep(0.05)

    async def confirmed_at(self, signature: Signature, patience: float = 30.0) -> float:
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            status = (await self.client.get_signature_statuses([signature])).value[0]
            level = status.confirmation_status if status is not None else None
            if level is not None and not str(level).endswith("Processed"):
                return time.monotonic()
            await asyncio.sleep(0.002)
        raise RuntimeError(f"{signature} did not confirm")


async def _pool(n: int, jobs: Sequence[Callable[[], Awaitable[_T]]]) -> list[_T]:
    """Run ``jobs`` ``n`` at a time, results in job order."""
    out: list[_T | None] = [None] * len(jobs)
    queue = iter(enumerate(jobs))

    async def worker() -> None:
        for i, job in queue:
            out[i] = await job()

    await asyncio.gather(*(worker() for _ in range(n)))
    return [x for x in out if x is not None]


async def deploy(chain: Chain) -> tuple[Keypair, Pubkey]:
    system = Keypair()
    sig = (await chain.client.request_airdrop(system.pubkey(), 10**14)).value
    await chain.confirm([sig])
    collection = Keypair()
    plan = STANDARD.collection_plan(
        system=system.pubkey(),
        collection_mint=collection.pubkey(),
        request=CollectionRequest("AIW3", "https://example.invalid/c.json"),
    )
    await chain.confirm([await chain.send([system, collection], plan.instructions)])
    return system, collection.pubkey()


async def mint_many(
    chain: Chain, system: Keypair, collection: Pubkey, owners: Sequence[Keypair], n: int
) -> list[tuple[Pubkey, int]]:
    """``n`` NFTs, the i-th to ``owners[i % len]``; returns (mint, owner index)."""
    made: list[tuple[Pubkey, int]] = []

    def job(i: int) -> Callable[[], Awaitable[Signature]]:
        async def run() -> Signature:
            key = Keypair()
            plan = STANDARD.mint_plan(
                system=system.pubkey(),
                owner=owners[i % len(owners)].pubkey(),
                mint=key.pubkey(),
                request=MintRequest(str(1 + i % 5), "https://example.invalid/n.json"),
                collection=collection,
            )
            made.append((key.pubkey(), i % len(owners)))
            return await chain.send([system, key], plan.instructions)

        return run

    sigs = await _pool(chain.in_flight, [job(i) for i in range(n)])
    await chain.confirm(sigs)
    return made


def transfer_ixs(system: Keypair, owner: Keypair, mint: Pubkey, to: Pubkey) -> list[object]:
    src = ata.address(owner.pubkey(), mint, T22)
    dest = ata.address(to, mint, T22)
    return [
        ata.create(system.pubkey(), to, mint, T22),
        spl_token.encode(spl_token.TransferChecked(T22, src, mint, dest, owner.pubkey(), 1, 0)),
    ]


async def transfer_all(
    chain: Chain, system: Keypair, owners: Sequence[Keypair], nfts: Sequence[tuple[Pubkey, int]]
) -> int:
    def job(mint: Pubkey, holder: int) -> Callable[[], Awaitable[Signature]]:
        to = owners[(holder + 1) % len(owners)].pubkey()

        async def run() -> Signature:
            ixs = transfer_ixs(system, owners[holder], mint, to)
            return await chain.send([system, owners[holder]], ixs)

        return run

    sigs = await _pool(chain.in_flight, [job(m, h) for m, h in nfts])
    await chain.confirm(sigs)
    return len(sigs)


# --- backfill ----------------------------------------------------------------------------------


async def signatures_of(rpc: RpcClient, address: Pubkey) -> list[tuple[Signature, int]]:
    """Every signature of ``address``, oldest first, with its slot."""
    out: list[tuple[Signature, int]] = []
    before: Signature | None = None
    while True:
        page = await rpc.get_signatures_for_address(address, before=before, limit=1000)
        out += [(e.signature, e.slot) for e in page if e.err is None]
        if len(page) < 1000:
            break
        before = page[-1].signature
    out.reverse()
    return out


async def fresh_db(directory: str, name: str) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{directory}/{name}.db")
    await migrate.upgrade(engine)
    return engine


@contextlib.asynccontextmanager
async def database(backend: str, directory: str, name: str) -> AsyncIterator[AsyncEngine]:
    """A fresh migrated database: a SQLite file, or a new PostgreSQL database dropped after."""
    if backend == "sqlite":
        engine = await fresh_db(directory, name)
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    url, pg_name = await _postgres_database()
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        yield engine
    finally:
        await engine.dispose()
        await _drop_postgres(pg_name)


async def project(
    engine: AsyncEngine, projection: Projection, txs: Sequence[DecodedTx], batch: int, cursor: str
) -> float:
    """Project ``txs`` in database transactions of ``batch`` (each with the cursor, as the
    runner writes it); ``batch`` 1 goes through ``apply``, more through ``apply_all``."""
    sessions = session_factory(engine)
    start = time.perf_counter()
    for i in range(0, len(txs), batch):
        chunk = txs[i : i + batch]
        async with sessions() as session, session.begin():
            if batch == 1:
                await projection.apply(session, chunk[0])
            else:
                await projection.apply_all(session, chunk)
            last = chunk[-1].ref
            await tracking.move_cursor(session, cursor, newest=(last.slot, last.signature))
    return time.perf_counter() - start


async def profiled(
    engine: AsyncEngine, projection: Projection, txs: Sequence[DecodedTx], batch: int, cursor: str
) -> float:
    """:func:`project` under cProfile; prints where the time goes (cumulative, top 30)."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return await project(engine, projection, txs, batch, cursor)
    finally:
        profiler.disable()
        _print_profile(profiler)


def _print_profile(profiler: cProfile.Profile) -> None:
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


async def bench_backfill(
    rpc: RpcClient,
    registry: CollectorRegistry,
    system: Keypair,
    collection: Pubkey,
    args: argparse.Namespace,
    directory: str,
) -> None:
    t0 = time.perf_counter()
    listed = await signatures_of(rpc, system.pubkey())
    t_list = time.perf_counter() - t0

    def job(sig: Signature) -> Callable[[], Awaitable[EncodedConfirmedTransactionWithStatusMeta]]:
        async def run() -> EncodedConfirmedTransactionWithStatusMeta:
            result = await rpc.get_transaction(sig, commitment=Confirmed)
            if result is None:
                raise RuntimeError(f"{sig} not found")
            return result

        return run

    t0 = time.perf_counter()
    results = await _pool(args.in_flight, [job(s) for s, _ in listed])
    t_fetch = time.perf_counter() - t0

    t0 = time.perf_counter()
    decoded: list[DecodedTx] = []
    previous_slot, position = -1, 0
    for (_, slot), result in zip(listed, results, strict=True):
        position = position + 1 if slot == previous_slot else 0
        previous_slot = slot
        decoded.append(decode_transaction(result, position))
    t_decode = time.perf_counter() - t0

    trust = Trust(frozenset({str(collection)}), frozenset({str(system.pubkey())}))
    cursor = cursor_name(str(system.pubkey()))
    n = len(decoded)
    per_tx = decoded[: args.per_tx]
    timings: list[tuple[str, int, float]] = []
    skipped: list[str] = []
    made: dict[str, float] = {}
    for backend in args.backends:
        label = f"{backend}: one DB transaction per tx (apply)"
        if not per_tx:
            skipped.append(label)  # --per-tx 0
        else:
            async with database(backend, directory, f"{backend}_per_tx") as engine:
                t = await project(engine, Projection(trust), per_tx, 1, cursor)
                timings.append((label, len(per_tx), t))
        async with database(backend, directory, f"{backend}_batched") as engine:
            run = profiled if args.profile == backend else project
            t = await run(engine, Projection(trust), decoded, args.batch, cursor)
            timings.append((f"{backend}: {args.batch} tx per apply_all", n, t))

    if args.runner_backfill:
        async with database("sqlite", directory, "runner") as engine:
            config = IndexerConfig(creators=(str(system.pubkey()),))
            metrics = IndexerMetrics(CollectorRegistry())
            indexer = Indexer(rpc, session_factory(engine), Projection(trust), config, metrics)
            # Once all of it is final, as a backfill of history is: the not-final tail goes
            # one transaction at a time, journaled (the live path's cost, timed apart).
            await _until(lambda: _final(rpc, listed[-1][1]), 120, "the transactions to be final")
            calls = _rpc_calls(registry)
            profiler = cProfile.Profile() if args.profile == "runner" else None
            t0 = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            await indexer.backfill()
            timings.append(("sqlite: Indexer.backfill (all of it)", n, time.perf_counter() - t0))
            if profiler is not None:
                profiler.disable()
                _print_profile(profiler)
            made = {m: c - calls.get(m, 0) for m, c in _rpc_calls(registry).items()}

    print(f"backfill over {n} transactions (every one confirmed, listed once)")
    _rate("list   getSignaturesForAddress (pages of 1000)", n, t_list)
    _rate(f"fetch  getTransaction, {args.in_flight} in flight", n, t_fetch)
    _rate("decode indexer.decode", n, t_decode)
    for label in skipped:
        print(f"  project {label:<40} skipped")
    for label, count, seconds in timings:
        _rate(f"project {label}", count, seconds, aim=True)
    if args.runner_backfill:
        print(
            "  Indexer.backfill RPC calls: "
            + ", ".join(f"{m} {int(c)}" for m, c in sorted(made.items()) if c)
        )
    best = min(seconds / count for label, count, seconds in timings if "apply" in label)
    _rate(
        "end to end (list + fetch + decode + best project)",
        n,
        t_list + t_fetch + t_decode + best * n,
    )


async def _final(rpc: RpcClient, slot: int) -> bool:
    await asyncio.sleep(0.2)
    return await rpc.get_slot(Finalized) >= slot


def _rpc_calls(registry: CollectorRegistry) -> dict[str, float]:
    """Requests made so far by method (the RPC client's own histogram)."""
    out: dict[str, float] = {}
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "solana_rpc_duration_seconds_count":
                method = sample.labels["method"]
                out[method] = out.get(method, 0) + sample.value
    return out


def _rate(label: str, n: int, seconds: float, *, aim: bool = False) -> None:
    rate = n / seconds if seconds > 0 else float("inf")
    extra = f"  ratio to {AIM_TX_S}/s aim {rate / AIM_TX_S:.2f}" if aim else ""
    print(f"  {label:<48} {seconds:8.2f} s {rate:9.0f} tx/s{extra}")


# --- live --------------------------------------------------------------------------------------


async def _owner(connection: AsyncConnection, mint: Pubkey) -> str | None:
    # One Core query on a kept connection: the poll shares the indexer's event loop (and the
    # machine's 2 cores), so it must cost it as little as possible.
    row = (await connection.execute(_OWNER, {"mint": str(mint)})).first()
    await connection.commit()  # a fresh snapshot each time
    return row[0] if row is not None else None


_OWNER = select(AssetRow.owner).where(AssetRow.mint == bindparam("mint"))


def _processed(registry: CollectorRegistry) -> float:
    return sum(
        s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.name == "indexer_transactions_total"
    )


async def _until(check: Callable[[], Awaitable[bool]], patience: float, what: str) -> None:
    deadline = time.monotonic() + patience
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


async def _background(
    chain: Chain,
    system: Keypair,
    owners: Sequence[Keypair],
    nfts: Sequence[tuple[Pubkey, int]],
    rate: float,
    stop: asyncio.Event,
) -> int:
    """Transfers of ``nfts`` at ``rate`` per second, round robin, sent without waiting (each NFT
    comes round again long after its last transfer confirmed); returns how many were sent."""
    holders = {mint: holder for mint, holder in nfts}
    sent = 0
    while not stop.is_set():
        mint = nfts[sent % len(nfts)][0]
        holder = holders[mint]
        to = (holder + 1) % len(owners)
        ixs = transfer_ixs(system, owners[holder], mint, owners[to].pubkey())
        await chain.send([system, owners[holder]], ixs)
        holders[mint] = to
        sent += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1 / rate)
    return sent


async def bench_live(
    chain: Chain,
    rpc: RpcClient,
    ws_url: str,
    count: int,
    load: float,
    directory: str,
    among: int = 0,
    drop: bool = False,
    rpc_url: str = "",
) -> None:
    system, collection = await deploy(chain)
    owners = [Keypair() for _ in range(10)]
    # With --live-load, as many NFTs again (at least 5 s of transfers) move in the background.
    extra = max(count, int(load * 5)) if load > 0 else 0
    # With --live-among, that many more NFTs that stay still: the indexer follows them all
    # (a mint and a token account each), as it would in a deployment of that size.
    everything = await mint_many(chain, system, collection, owners, count + extra + among)
    nfts, busy = everything[:count], everything[count : count + extra]
    engine = await fresh_db(directory, "live")
    projection = Projection(Trust(frozenset({str(collection)}), frozenset({str(system.pubkey())})))
    config = IndexerConfig(creators=(str(system.pubkey()),), ws_url=ws_url)
    registry = CollectorRegistry()
    indexer = Indexer(rpc, session_factory(engine), projection, config, IndexerMetrics(registry))
    poll = await engine.connect()
    stop = asyncio.Event()
    t0 = time.perf_counter()
    task = asyncio.create_task(indexer.run(LocalLeases(), stop))
    latencies: list[float] = []
    since_send: list[float] = []
    quiet = asyncio.Event()  # stops the background transfers
    try:
        last_mint, last_holder = everything[-1]

        async def caught_up() -> bool:
            return await _owner(poll, last_mint) == str(owners[last_holder].pubkey())

        # Start-up (backfill, one subscription and one crawl per followed address) grows with
        # the deployment: 51 s at 2,100 NFTs, over 300 s at 10,100.
        await _until(caught_up, 300 + 0.1 * len(everything), "the live indexer to catch up")
        # Then quiet: every subscription live and the crawl of each (its Gap) done, so what is
        # timed is the live path, not the start-up crawls.
        before = -1.0
        while (now := _processed(registry)) != before or indexer.crawl_backlog():
            before = now
            await asyncio.sleep(1.0)
        startup = time.perf_counter() - t0
        loader = (
            asyncio.create_task(_background(chain, system, owners, busy, load, quiet))
            if load > 0
            else None
        )
        dropped_at = len(nfts) // 2 if drop else len(nfts)
        recovered = 0.0
        recovery: asyncio.Task[float] | None = None
        for i, (mint, holder) in enumerate(nfts):
            if i == dropped_at:
                # Every websocket closed by the node: the runner reconnects, re-subscribes
                # every followed address and crawls each one's gap, while these go on.
                async with httpx.AsyncClient() as http:
                    drop_request = {"jsonrpc": "2.0", "id": 1, "method": "localnet_dropConnections"}
                    (await http.post(rpc_url, json=drop_request)).raise_for_status()
                recovery = asyncio.create_task(_recovery(indexer, registry, config))
            to = owners[(holder + 1) % len(owners)].pubkey()
            sent = time.monotonic()
            sig = await chain.send(
                [system, owners[holder]], transfer_ixs(system, owners[holder], mint, to)
            )
            confirmed = await chain.confirmed_at(sig)

            async def visible(mint: Pubkey = mint, to: Pubkey = to) -> bool:
                return await _owner(poll, mint) == str(to)

            await _until(visible, 30, "a transfer to be visible")
            seen = time.monotonic()
            latencies.append(seen - confirmed)
            since_send.append(seen - sent)
        quiet.set()
        background = await loader if loader is not None else 0
        if recovery is not None:
            recovered = await asyncio.wait_for(recovery, 600)
    finally:
        quiet.set()
        stop.set()
        await asyncio.wait_for(task, 60)
        await poll.close()
        await engine.dispose()
    print(
        f"live over {count + extra + among} NFTs ({count} transfers one at a time; startup "
        f"and catch-up {startup:.2f} s; {background} background transfers at {load:g}/s)"
    )
    _latency("confirmed -> visible in assets", latencies, slot_ratio=True)
    _latency("sent -> visible in assets", since_send)
    if drop:
        print(
            f"  every websocket dropped before transfer {dropped_at + 1}: every connection "
            f"back and every gap crawled {recovered:.2f} s later"
        )
        _latency("confirmed -> visible, before the drop", latencies[:dropped_at])
        _latency("confirmed -> visible, after the drop", latencies[dropped_at:])


async def _recovery(indexer: Indexer, registry: CollectorRegistry, config: IndexerConfig) -> float:
    """Seconds from now until every connection is back (each counted as a reconnect) and the
    crawl of every gap they report is done."""
    t0 = time.perf_counter()

    def reconnects() -> float:
        return registry.get_sample_value("indexer_websocket_reconnects_total") or 0.0

    start = reconnects()

    async def back() -> bool:
        return reconnects() >= start + config.max_connections

    async def gaps() -> bool:  # the re-subscriptions' Gaps, reported as each is confirmed
        return indexer.crawl_backlog() > 0

    async def crawled() -> bool:
        return indexer.crawl_backlog() == 0

    await _until(back, 600, "every websocket to reconnect")
    await _until(gaps, 600, "the gaps of the re-subscriptions")
    await _until(crawled, 600, "the crawl of every gap")
    return time.perf_counter() - t0


def _latency(label: str, values: list[float], *, slot_ratio: bool = False) -> None:
    ordered = sorted(values)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    extra = f"  p99 / 400 ms slot {p99 / SLOT_S:.2f}" if slot_ratio else ""
    print(
        f"  {label:<34} p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  "
        f"max {ordered[-1] * 1000:7.1f} ms{extra}"
    )


# --- main --------------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nfts", type=int, default=10_000, help="NFTs minted and transferred")
    parser.add_argument("--in-flight", type=int, default=8, help="concurrent RPC requests")
    parser.add_argument("--live", type=int, default=100, help="NFTs (and transfers) live")
    parser.add_argument(
        "--live-among", type=int, default=0, help="more NFTs the live indexer follows, still"
    )
    parser.add_argument(
        "--live-load", type=float, default=0.0, help="background transfers per second, live"
    )
    parser.add_argument(
        "--live-drop",
        action="store_true",
        help="the node drops every websocket halfway through the timed live transfers",
    )
    parser.add_argument(
        "--runner-backfill",
        action="store_true",
        help="also time Indexer.backfill (every followed address crawled) on SQLite",
    )
    parser.add_argument("--batch", type=int, default=500, help="transactions per apply_all")
    parser.add_argument(
        "--per-tx", type=int, default=2000, help="transactions projected one at a time"
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=("sqlite", "postgres"),
        default=["sqlite", "postgres"],
        help="databases to project into",
    )
    parser.add_argument(
        "--profile",
        choices=("sqlite", "postgres", "runner"),
        help="cProfile the batched run on this backend, or Indexer.backfill (--runner-backfill)",
    )
    args = parser.parse_args()

    proc, rpc_url, ws_url = await _start_localnet()
    registry = CollectorRegistry()  # the RPC client's: the runner's backfill counts its calls
    try:
        async with (
            AsyncClient(rpc_url) as client,
            RpcClient([rpc_url], metrics=registry) as rpc,
        ):
            chain = Chain(client, args.in_flight)
            t0 = time.perf_counter()
            system, collection = await deploy(chain)
            owners = [Keypair() for _ in range(OWNERS)]
            nfts = await mint_many(chain, system, collection, owners, args.nfts)
            t_mint = time.perf_counter() - t0
            t0 = time.perf_counter()
            moved = await transfer_all(chain, system, owners, nfts)
            t_move = time.perf_counter() - t0
            print(
                f"chain: {args.nfts} NFT mints in {t_mint:.1f} s, {moved} TransferChecked "
                f"in {t_move:.1f} s ({args.in_flight} in flight)"
            )
            with tempfile.TemporaryDirectory() as directory:
                await bench_backfill(rpc, registry, system, collection, args, directory)
                if args.live > 0:
                    await bench_live(
                        chain,
                        rpc,
                        ws_url,
                        args.live,
                        args.live_load,
                        directory,
                        args.live_among,
                        args.live_drop,
                        rpc_url,
                    )
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


if __name__ == "__main__":
    asyncio.run(main())
