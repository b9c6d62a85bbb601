"""The indexer process: lead (lease), follow, fetch each transaction once, project, serve health.

What it follows: every configured creator, every tracked mint and every still-open token
account of a tracked mint (the table in issue 10 says why each is needed). Each followed
address has its own cursor (``a:<address>``: the newest signature projected), moved in the same
database transaction as the rows of that signature, so a restart resumes exactly: the crawl
from each cursor fills whatever the live source missed, and a duplicate is harmless.

Positions in the block: each transaction's index in its block's signature list
(``getBlock`` with ``transactionDetails: signatures`` at confirmed, one call per slot, cached),
so history and versions order by (slot, position) as the chain executed them.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey
from solders.signature import Signature
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chain.asset import fetch_asset
from chain.rpc import RpcClient
from core.errors import ChainError, RetryableChainError, RetryableStoreError
from indexer.decode import DecodedTx, decode_transaction
from indexer.finality import Finality, Reverted
from indexer.metrics import IndexerMetrics
from indexer.projection import END_OF_SLOT, Applied, Projection, depends_on
from indexer.sources import Event, Gap, Seen, WebsocketSource, list_many
from store import retry
from store.leases import Lease, Leases
from store.repos import tracking
from store.tables import AssetRow

# Seconds without a turn of the live loop after which the process is not alive.
_STALLED_AFTER = 30.0
_log = structlog.stdlib.get_logger(__name__)

_T = TypeVar("_T")

LEASE_NAME = "indexer"
#: Finalized transactions of one crawl projected per database transaction, and fetched at once.
_CRAWL_BATCH = 500
_FETCH_IN_FLIGHT = 8
#: Transactions of a run kept decoded because they named a mint not tracked yet (see _Run).
_KEPT = 20_000
#: Blocks whose signature lists are kept (slot numbers are never reused, even across forks).
_BLOCK_CACHE = 256
#: A notified transaction the node does not serve yet is fetched again after 0.2 s, 0.4 s, ...
#: (at most 5 s apart); after a minute it is given up only once the node no longer knows its
#: signature at all (a fork dropped it), never while it still does.
_UNSEEN_FIRST = 0.2
_UNSEEN_MAX_DELAY = 5.0
_UNSEEN_GIVE_UP = 60.0
#: Gaps reported within this of each other are crawled as one run (a start-up's subscriptions
#: are confirmed over a few seconds, one Gap each), waiting at most ``_GAP_GATHER_MAX``.
_GAP_GATHER = 0.05
_GAP_GATHER_MAX = 2.0
#: A crawl task that failed (the node or the database unreachable) tries again after this.
_GAP_RETRY = 1.0
#: A gap crawl outstanding for longer than this makes the process not ready (not caught up).
_GAP_GRACE = 2.0


def cursor_name(address: str) -> str:
    return f"a:{address}"


@dataclass
class IndexerConfig:
    creators: tuple[str, ...]
    ws_url: str | None = None
    max_connections: int = 4
    page_size: int = 1000
    #: A dead leader's lease lapses within this; a standby polls every quarter of it, so it
    #: takes over within 1.25 x the TTL of the death (7.5 s by default; issue 10 asks 10 s).
    lease_ttl: float = 6.0
    #: How far behind the tip (slots) still counts as caught up, for readiness.
    ready_lag_slots: int = 64
    #: How often the live loop looks for addresses others added (``aiw3 indexer add``).
    follow_poll: float = 2.0


class Indexer:
    def __init__(
        self,
        rpc: RpcClient,
        sessions: async_sessionmaker[AsyncSession],
        projection: Projection,
        config: IndexerConfig,
        metrics: IndexerMetrics,
    ) -> None:
        self._rpc = rpc
        self._sessions = sessions
        self._projection = projection
        self._config = config
        self._metrics = metrics
        self._live: WebsocketSource | None = None
        self._blocks: dict[int, dict[str, int]] = {}
        #: Notified signatures the node could not serve yet, fetched again when due.
        self._unseen: dict[str, _Unseen] = {}
        #: One writer: the live path and the crawl task take turns by database transaction
        #: (the projection reads, then writes, the rows a transaction touches).
        self._write = asyncio.Lock()
        #: Addresses waiting for the crawl task, and those it is crawling: the live path
        #: projects their notified transactions but leaves their cursors to the crawl (a cursor
        #: says everything up to it is projected, and the gap below is not yet).
        self._gaps: set[str] = set()
        self._crawling: set[str] = set()
        self._gap_reported = asyncio.Event()
        self._gaps_since: float | None = None
        self._crawler: asyncio.Task[None] | None = None
        self._crawl_run: _Run | None = None
        self._crawl_stopping = False
        self.finality = Finality(rpc)
        self.ready = False
        self.last_slot = 0
        #: The read model is known complete through this slot since this wall time: the tip
        #: as last read while nothing was queued, crawled or waited for, with every
        #: subscription live (an idle chain leaves the newest projected slot behind; it is
        #: not a lag).
        self._complete_slot = 0
        self._complete_at = 0.0
        #: Block time (Unix seconds) of the newest transaction projected.
        self._newest_block_time = 0.0
        self.alive_at = time.monotonic()

    # -- following -----------------------------------------------------------------------------

    def alive(self) -> bool:
        """The live loop turned within the last 30 s (a liveness probe restarts a stuck one)."""
        return time.monotonic() - self.alive_at < _STALLED_AFTER

    async def followed(self) -> set[str]:
        async with self._sessions() as session:
            return set(self._config.creators) | await tracking.followed_addresses(session)

    async def add(self, mints: Sequence[str]) -> list[AssetRow]:
        """Read these mints from the chain now (any standard, ours or not) and upsert them,
        ``genuine`` by the projection's rules; a running indexer follows them from then on
        (its live loop picks up new rows, and the crawl of each fills its history)."""
        await self.finality.refresh()
        rows = []
        for mint in mints:
            found = await fetch_asset(self._rpc, Pubkey.from_string(mint))
            account = found.value.token_account
            async with self._write, self._sessions() as session, session.begin():
                # Journaled like a transaction: the read may be of a block a fork drops.
                snapshot = await self.finality.capture_import(
                    session, found.slot, found.value.mint, [account] if account else []
                )
                rows.append(await self._projection.import_asset(session, found.value, found.slot))
                await self.finality.record(session, snapshot)
        return rows

    async def retrust(self) -> int:
        """Re-judge every stored asset under the current trusted creators and collections (a
        changed set); returns how many changed their ``genuine`` flag."""
        async with self._write, self._sessions() as session, session.begin():
            mints = (await session.execute(select(AssetRow.mint))).scalars().all()
            return await self._projection.rederive(session, mints)

    async def backfill(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Crawl every followed address from its cursor to now; new addresses found on the way
        (token accounts, new mints) are crawled too, in rounds. Each signature is fetched once
        per run, however many addresses list it. Returns transactions projected."""
        run = _Run()
        done: set[str] = set()
        total = 0
        while True:
            todo = sorted((await self.followed()) - done)
            if not todo:
                return total
            await self.finality.refresh()  # each round: what became final goes in batches

            def report(finished: int, n: int = len(todo)) -> None:
                self._metrics.backfill_remaining.set(n - finished)
                if progress is not None:
                    progress(len(done) + finished, len(done) + n)

            report(0)
            total += await self._crawl_all(todo, run, report=report)
            done.update(todo)

    async def crawl(self, address: str, *, gap: bool = False) -> int:
        """Project the signatures of ``address`` newer than its cursor, oldest first."""
        return await self._crawl_all([address], _Run(), gap=gap)

    async def _crawl_all(
        self,
        addresses: Sequence[str],
        run: _Run,
        *,
        gap: bool = False,
        report: Callable[[int], None] | None = None,
    ) -> int:
        """Project the signatures of all ``addresses`` newer than their cursors: list them all
        first, then fetch each signature once (a transaction mentions several followed
        addresses: a transfer its mint, both token accounts and often the creator) and project
        in chain order, moving every address's cursor with the rows it covers."""
        listed = await self._list(addresses)
        merged = _merge(listed)
        # Where each address's newest entry sits in ``merged``: done once that is projected.
        index = {m.signature: i for i, m in enumerate(merged)}
        ends = sorted(max(index[e.signature] for e in found) for found in listed.values() if found)
        finished = len(addresses) - len(ends)
        if report is not None:
            report(finished)
        count = 0
        i = 0
        while i < len(merged):
            final = self.finality.finalized_slot
            j = i
            if merged[i].slot <= final:
                # Finalized history (most of a backfill) goes in batches: nothing to journal, so
                # one database transaction and one ``apply_all`` for about 500 transactions,
                # never splitting a slot (so each address's cursor stays a point in its listing).
                j = min(i + _CRAWL_BATCH, len(merged))
                while j < len(merged) and merged[j].slot == merged[j - 1].slot:
                    j += 1
                while merged[j - 1].slot > final:
                    j -= 1
            chunk = merged[i:j]
            fetched: dict[str, DecodedTx | None] = {}
            done = await self._project_final(chunk, run, fetched) if chunk else None
            if done is None:
                # Not final, or one of them not visible: one at a time, journaled, in the order
                # of the block (which is each address's listing order), the slot's entries all.
                j = max(j, i + 1)
                while j < len(merged) and merged[j].slot == merged[j - 1].slot:
                    j += 1
                done = 0
                for entry in await self._in_block_order(merged[i:j]):
                    done += await self._crawl_one(entry, run, fetched)
            i = j
            count += done
            if gap:
                self._metrics.gaps_filled.inc(done)
            if report is not None:
                report(finished + bisect.bisect_left(ends, i))
        return count

    async def _list(self, addresses: Sequence[str]) -> dict[str, list[Seen]]:
        """Each address's signatures newer than its cursor, newest first (in batches)."""
        async with self._sessions() as session:
            cursors = await tracking.get_cursors(session, [cursor_name(a) for a in addresses])
        untils = {a: cursors.get(cursor_name(a)) for a in addresses}
        return await list_many(self._rpc, untils, page_size=self._config.page_size)

    async def _project_final(
        self, entries: Sequence[_Listed], run: _Run, fetched: dict[str, DecodedTx | None]
    ) -> int | None:
        """Fetch (a few at a time) and project transactions at finalized slots, all in one
        database transaction with the cursors of their addresses (the newest of each). One
        already projected in this run is not fetched again (only its cursors move). Returns
        how many were projected, or None when one is not visible (the caller goes one by one,
        with what was fetched into ``fetched``)."""
        wanted = [e for e in entries if not e.failed and e.signature not in run.projected]
        await self._fetch_all(wanted, fetched)
        if any(fetched[e.signature] is None for e in wanted):
            return None
        fresh = [d for e in wanted if (d := fetched[e.signature]) is not None]
        again = [run.kept[e.signature] for e in entries if e.signature in run.kept]
        # Each address's cursor goes to the newest of its entries here, by its own listing.
        best: dict[str, tuple[int, _Listed]] = {}
        for e in entries:
            for address, rank in zip(e.addresses, e.ranks, strict=True):
                if address not in best or rank < best[address][0]:
                    best[address] = (rank, e)
        newest = {cursor_name(a): (e.slot, e.signature) for a, (_, e) in best.items()}

        async def unit(session: AsyncSession) -> Applied:
            applied = await self._projection.apply_all(session, [*fresh, *again])
            await tracking.move_cursors(session, newest)
            return applied

        applied = await self._unit(unit, run)
        failed = sum(1 for e in entries if e.failed and e.signature not in run.projected)
        run.projected.update(e.signature for e in entries)
        run.note([*fresh, *again], applied)
        for d in fresh:
            outcome = "applied" if d.ok else "failed_on_chain"
            self._metrics.transactions.labels(outcome=outcome).inc()
        self._metrics.transactions.labels(outcome="failed_on_chain").inc(failed)
        for kind, n in applied.events.items():
            self._metrics.events.labels(kind=kind).inc(n)
        self.last_slot = max(self.last_slot, entries[-1].slot)
        self._metrics.last_slot.set(self.last_slot)
        times = [d.ref.block_time.timestamp() for d in fresh if d.ref.block_time is not None]
        self._newest_block_time = max([self._newest_block_time, *times])
        await self._follow_new(applied)
        return len(fresh) + len(again) + failed

    async def _fetch_all(
        self, entries: Sequence[_Listed], into: dict[str, DecodedTx | None]
    ) -> None:
        """Fetch and decode ``entries`` into ``into``; None for one not visible at confirmed
        (or not in the block its slot names)."""
        limit = asyncio.Semaphore(_FETCH_IN_FLIGHT)
        # Each block's signature list once, before its transactions (not once per fetch that
        # finds it missing from the cache at the same time).
        slots = sorted({e.slot for e in entries})
        blocks = dict(
            zip(slots, await asyncio.gather(*(self._block(s, limit) for s in slots)), strict=True)
        )

        # The transactions themselves in JSON-RPC batches (a few POSTs for hundreds).
        wanted = [Signature.from_string(e.signature) for e in entries]
        results = await self._rpc.get_transactions(wanted, commitment=Confirmed)
        for entry, result in zip(entries, results, strict=True):
            position = None
            if result is not None:
                block = blocks.get(result.slot)
                if block is not None:
                    position = block.get(entry.signature)
                else:  # another slot than listed (a fork moved it)
                    position = await self.position(result.slot, entry.signature)
            into[entry.signature] = (
                None if result is None or position is None else decode_transaction(result, position)
            )

    async def _in_block_order(self, entries: Sequence[_Listed]) -> list[_Listed]:
        """``entries`` (of consecutive slots) by slot and position in the block: the order of
        every address's own listing, whatever order the merge put a slot's entries in."""
        limit = asyncio.Semaphore(_FETCH_IN_FLIGHT)
        slots = sorted({e.slot for e in entries})
        blocks = dict(
            zip(slots, await asyncio.gather(*(self._block(s, limit) for s in slots)), strict=True)
        )

        def place(e: _Listed) -> tuple[int, int]:
            block = blocks.get(e.slot)
            position = block.get(e.signature) if block is not None else None
            return (e.slot, position if position is not None else END_OF_SLOT)

        return sorted(entries, key=place)

    async def _crawl_one(
        self, entry: _Listed, run: _Run, fetched: dict[str, DecodedTx | None]
    ) -> int:
        """Project one listed transaction in its own (journaled) database transaction, moving
        the cursor of every address that listed it; fetched only if not already (in this run,
        or into ``fetched``). Returns how many were projected (0 or 1)."""
        signature = entry.signature
        if signature in run.projected and signature not in run.kept:
            # Projected earlier in this run: only the cursors of the addresses listing it now.
            await self._commit(signature, entry.slot, None, entry.addresses, None, run=run)
            return 0
        decoded: DecodedTx | None = None
        if not entry.failed:
            decoded = run.kept.get(signature) or fetched.get(signature)
            if decoded is None:
                decoded = await self._fetch_one(signature, entry.slot)
            if decoded is None:
                self._metrics.transactions.labels(outcome="missing").inc()
                return 0  # not (yet) visible at confirmed: the next crawl finds it
        outcome = "applied" if decoded is not None and decoded.ok else "failed_on_chain"
        applied = await self._commit(
            signature, entry.slot, decoded, entry.addresses, outcome, run=run
        )
        run.projected.add(signature)
        if decoded is not None:
            run.note([decoded], applied)
        return 1

    async def process(self, entry: Seen, also: Sequence[str] = ()) -> bool:
        """Fetch and project one transaction and move the cursor of its address (and of the
        addresses ``also`` notified of it), in one database transaction. Returns whether
        anything new was written."""
        decoded: DecodedTx | None = None
        if not entry.failed:
            try:
                decoded = await self._fetch_one(entry.signature, entry.slot)
            except RetryableChainError as exc:
                # The node is unreachable or overloaded for now: the notification is not lost
                # with it, nor does it stop the live loop; it is kept and fetched again.
                _log.warning("indexer fetch failed", signature=entry.signature, error=str(exc))
            if decoded is None:
                # Not (yet) served at confirmed: a node behind a load balancer can lag the
                # one that notified. Later transactions move this address's cursor past it,
                # so no crawl would list it again: it is kept and fetched again instead.
                # Kept in the database too: a restarted indexer picks it up again.
                self._metrics.transactions.labels(outcome="missing").inc()
                addresses = (entry.address, *also)
                signature, slot = entry.signature, entry.slot

                async def keep(session: AsyncSession) -> None:
                    await tracking.keep_unseen(session, signature, slot, addresses)

                await self._unit(keep)
                now = time.monotonic()
                self._unseen.setdefault(
                    signature, _Unseen(slot, addresses, now, now + _UNSEEN_FIRST)
                )
                return False
        outcome = "applied" if decoded is not None and decoded.ok else "failed_on_chain"
        applied = await self._commit(
            entry.signature, entry.slot, decoded, self._unheld((entry.address, *also)), outcome
        )
        return bool(applied.events) or bool(applied.mints)

    def _unheld(self, addresses: Sequence[str]) -> list[str]:
        """Those of ``addresses`` whose cursor the live path may move: not waiting for, or in,
        a gap crawl. Moving one of those past its notified transaction would put the unfilled
        gap below a cursor, where a restart would never look again."""
        return [a for a in addresses if a not in self._gaps and a not in self._crawling]

    async def retry_unseen(self) -> int:
        """Fetch again the notified transactions that were not served yet and are due;
        returns how many are still waiting. One the node has forgotten entirely after
        :data:`_UNSEEN_GIVE_UP` seconds was dropped by a fork: nothing to index."""
        now = time.monotonic()
        for signature, u in list(self._unseen.items()):
            if u.due > now:
                continue
            try:
                decoded = await self._fetch_one(signature, u.slot)
            except ChainError as exc:  # the node is down: the next retry asks again
                _log.warning("indexer.unseen_retry_failed", signature=signature, error=str(exc))
                decoded = None
            if decoded is not None:
                outcome = "applied" if decoded.ok else "failed_on_chain"
                addresses = self._unheld(u.addresses)
                await self._commit(signature, u.slot, decoded, addresses, outcome, forget=True)
                del self._unseen[signature]
                continue
            if now - u.since >= _UNSEEN_GIVE_UP and await self._forgotten(signature):

                async def forget(session: AsyncSession, signature: str = signature) -> None:
                    await tracking.forget_unseen(session, signature)

                await self._unit(forget)
                del self._unseen[signature]
                self._metrics.transactions.labels(outcome="dropped").inc()
                _log.warning("indexer.unseen_dropped", signature=signature)
                continue
            u.tries += 1
            u.due = now + min(_UNSEEN_MAX_DELAY, _UNSEEN_FIRST * 2**u.tries)
        return len(self._unseen)

    async def load_unseen(self) -> int:
        """Take up the kept transactions (those a previous leader was still waiting for),
        due now; returns how many are waiting."""
        async with self._sessions() as session:
            rows = await tracking.unseen(session)
        now, wall = time.monotonic(), time.time()
        for row in rows:
            waited = max(0.0, wall - row.first_seen_at.timestamp())
            self._unseen.setdefault(
                row.signature, _Unseen(row.slot, tuple(row.addresses), now - waited, now)
            )
        return len(self._unseen)

    async def _forgotten(self, signature: str) -> bool:
        try:
            statuses = await self._rpc.get_signature_statuses(
                [Signature.from_string(signature)], search_transaction_history=True
            )
        except ChainError:
            return False  # not known to be gone: keep it
        return statuses.value[0] is None

    async def _fetch_one(self, signature: str, slot: int) -> DecodedTx | None:
        """Fetch and decode one transaction; None when not visible at confirmed."""
        # The block's signature list is fetched beside the transaction (at the slot the
        # notification or listing gave), not after it: one round trip, not two.
        result, _ = await asyncio.gather(
            self._rpc.get_transaction(Signature.from_string(signature), commitment=Confirmed),
            self.position(slot, signature),
        )
        position = None
        if result is not None:
            position = await self.position(result.slot, signature)
        if result is None or position is None:
            return None
        return decode_transaction(result, position)

    async def _commit(
        self,
        signature: str,
        slot: int,
        decoded: DecodedTx | None,
        addresses: Sequence[str],
        outcome: str | None,
        *,
        forget: bool = False,
        run: _Run | None = None,
    ) -> Applied:
        """Project ``decoded`` (None: a failed transaction, or one already projected) and move
        the cursors of ``addresses`` to it, journaled, in one database transaction."""
        slot = decoded.ref.slot if decoded is not None else slot
        cursors = sorted({cursor_name(a) for a in addresses})

        async def unit(session: AsyncSession) -> Applied:
            snapshot = await self.finality.capture(session, slot, signature, decoded, cursors)
            applied = Applied()
            if decoded is not None:
                applied = await self._projection.apply(session, decoded)
            await tracking.move_cursors(session, dict.fromkeys(cursors, (slot, signature)))
            await self.finality.record(session, snapshot)
            if forget:  # it was kept as not served yet: done now, with its rows
                await tracking.forget_unseen(session, signature)
            return applied

        applied = await self._unit(unit, run)
        if outcome is not None:
            self._metrics.transactions.labels(outcome=outcome).inc()
        for kind, n in applied.events.items():
            self._metrics.events.labels(kind=kind).inc(n)
        self.last_slot = max(self.last_slot, slot)
        self._metrics.last_slot.set(self.last_slot)
        if decoded is not None and decoded.ref.block_time is not None:
            self._newest_block_time = max(
                self._newest_block_time, decoded.ref.block_time.timestamp()
            )
        await self._follow_new(applied)
        return applied

    async def check_finality(self) -> Reverted | None:
        """Roll back what a fork dropped and re-derive it from the surviving chain (every
        followed address is crawled again from its restored cursor); then prune the journal
        and mark finalized rows. Returns what was rolled back, if anything."""
        await self.finality.refresh()
        async with self._sessions() as session:
            dropped = await self.finality.dropped_from(session)
        reverted = None
        if dropped is not None:
            # The crawl task stops first: nothing it listed or fetched before the rollback
            # may be written after it. It starts again once the rows are re-derived.
            live_crawl = await self._stop_crawler()
            try:
                reverted = await self._unit(lambda s: self.finality.rollback(s, dropped))
                _log.warning(
                    "indexer fork: rolled back",
                    from_slot=dropped,
                    transactions=len(reverted.signatures),
                )
                self._metrics.reverted.inc(len(reverted.signatures))
                self._blocks = {s: b for s, b in self._blocks.items() if s < dropped}
                if reverted.imports:
                    await self.add(reverted.imports)  # read again, from the surviving chain
                # Restored rows are crawled from the start of their history, followed or not
                # (a token account the dropped branch had created may hold a surviving
                # transfer).
                again = await self.followed() | set(reverted.restored)
                await self._crawl_all(sorted(again), _Run())
            finally:
                if live_crawl:
                    self._start_crawler()
        await self._unit(self.finality.settle)
        self._metrics.finalized_slot.set(self.finality.finalized_slot)
        return reverted

    async def position(self, slot: int, signature: str) -> int | None:
        """The transaction's index in the block at ``slot``, or None when the slot has no
        block (skipped, or dropped by a fork) or the block does not hold it."""
        block = await self._block(slot)
        return block.get(signature) if block is not None else None

    async def _block(
        self, slot: int, limit: asyncio.Semaphore | None = None
    ) -> dict[str, int] | None:
        """The block at ``slot`` as each signature's index in it (cached), or None when the
        slot has no block."""
        found = self._blocks.get(slot)
        if found is None:
            async with limit or contextlib.nullcontext():
                block = await self._rpc.get_block(slot, commitment=Confirmed)
            if block is None:
                return None
            found = {str(s): i for i, s in enumerate(block.signatures or ())}
            if len(self._blocks) >= _BLOCK_CACHE:
                del self._blocks[min(self._blocks)]
            self._blocks[slot] = found
        return found

    async def _unit(
        self, unit: Callable[[AsyncSession], Awaitable[_T]], run: _Run | None = None
    ) -> _T:
        """One database transaction of the indexer (a batch with its cursors, a rollback, the
        finality marks), run again whole on a deadlock or a lost connection: the minting
        engine settles the same upgrades and NFTs concurrently, and whichever the database
        picks as the loser tries again, so the batch is neither dropped nor left to crash the
        live loop. Every try starts from the rows as committed (the projection and the
        journal keep nothing of a rolled-back try), so nothing is doubled."""
        async with self._write:
            if run is not None and run.halted:
                raise _Halted  # the crawl task is being stopped: between units, never inside
            return await retry.in_transaction(self._sessions, unit, what="indexer")

    async def _follow_new(self, applied: Applied) -> None:
        fresh = set(applied.new_mints) | set(applied.accounts)
        if not fresh:
            return
        if self._live is not None:
            await self._live.follow(sorted(fresh))  # each reports a Gap: crawled when live
        # A new mint's own history holds what came before we tracked it.

    # -- the live loop -------------------------------------------------------------------------

    async def run(self, leases: Leases, stop: asyncio.Event) -> None:
        """Lead (or wait to), backfill, then follow live until ``stop`` is set or the lease is
        lost."""
        while not stop.is_set():
            lease = await leases.acquire(LEASE_NAME, self._config.lease_ttl)
            if lease is None:
                self.alive_at = time.monotonic()
                await _wait(stop, self._config.lease_ttl / 4)
                continue
            try:
                await self._lead(leases, lease, stop)
            finally:
                self.ready = False
                self._metrics.caught_up.set(0)
                await leases.release(lease)

    async def _lead(self, leases: Leases, lease: Lease, stop: asyncio.Event) -> None:
        if self._config.ws_url is None:
            raise ValueError("indexer run needs a websocket url")
        self._live = WebsocketSource(
            self._config.ws_url,
            sorted(await self.followed()),
            max_connections=self._config.max_connections,
            on_reconnect=self._metrics.reconnects.inc,
        )
        await self.load_unseen()  # what the last leader was still waiting for
        renewer = asyncio.create_task(self._renew(leases, lease, stop))
        self._start_crawler()
        events = aiter(self._live)
        polled = refreshed = time.monotonic()
        # One pending read at a time, kept across turns: cancelling it would close the
        # source's generator (the cancellation is thrown into it).
        getter: asyncio.Future[Event] | None = None
        waiter: asyncio.Future[object] = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set() and not renewer.done():
                if self._crawler is not None and self._crawler.done():
                    self._crawler.result()  # it stops only by an error: raise it here
                self.alive_at = time.monotonic()
                if self._unseen:
                    await self.retry_unseen()
                if self.alive_at - polled >= self._config.follow_poll:
                    polled = self.alive_at
                    await self._follow_added()
                    try:
                        await self.check_finality()
                    except RetryableChainError as exc:  # asked again at the next poll
                        _log.warning("indexer finality check failed", error=str(exc))
                if getter is None:
                    getter = asyncio.ensure_future(anext(events))
                pending: set[asyncio.Future[Any]] = {getter, waiter, renewer}
                if self._crawler is not None:  # (check_finality starts a new one after a fork)
                    pending.add(self._crawler)
                idle = _UNSEEN_FIRST if self._unseen else 1.0  # wake for a retry that is due
                done, _ = await asyncio.wait(
                    pending, timeout=idle, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    await self._refresh_lag(idle=True)
                    continue
                arrived = [getter.result()]
                # Take whatever else has arrived too (a transaction notifies each followed
                # address it mentions): each signature is then fetched and projected once.
                while True:
                    getter = asyncio.ensure_future(anext(events))
                    await asyncio.sleep(0)  # an event already queued completes it now
                    if not getter.done():
                        break
                    arrived.append(getter.result())
                await self._handle(arrived)
                # The tip's slot (one RPC) when idle, not ahead of an event already waiting.
                if not getter.done() or time.monotonic() - refreshed >= 1.0:
                    await self._refresh_lag(idle=not getter.done())
                    refreshed = time.monotonic()
        finally:
            for task in (getter, waiter, renewer, self._crawler):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await task
            await self._live.close()
            self._live = None
            self._crawler = None
            # The next leader (this process again, or another) crawls from the cursors.
            self._gaps, self._crawling, self._gaps_since = set(), set(), None
            self._gap_reported.clear()
            self._metrics.gap_backlog.set(0)

    async def _handle(self, arrived: Sequence[Event]) -> None:
        """Events that arrived together: the gaps go to the crawl task first (so the
        notifications below leave those cursors alone), then the notified signatures, each
        fetched and projected once, moving the cursor of every address notified of it."""
        self._report_gaps(a for e in arrived if isinstance(e, Gap) for a in e.addresses)
        seen: dict[str, list[Seen]] = {}
        for event in arrived:
            if isinstance(event, Seen):
                seen.setdefault(event.signature, []).append(event)
        for entries in seen.values():
            await self.process(entries[0], also=[e.address for e in entries[1:]])

    # -- the crawl task ------------------------------------------------------------------------

    def _start_crawler(self) -> None:
        self._crawler = asyncio.create_task(self._crawl_gaps(), name="indexer-crawl")
        if self._gaps:
            self._gap_reported.set()

    async def _stop_crawler(self) -> bool:
        """Stop the crawl task (what it was crawling goes back to the reported gaps), at a
        boundary between database transactions: cancelled inside one, its commit could still
        land after what follows. Returns whether it was running."""
        task, self._crawler = self._crawler, None
        if task is None:
            return False
        self._crawl_stopping = True
        try:
            if self._crawl_run is not None:
                self._crawl_run.halted = True  # its next unit raises _Halted; the task ends
            else:
                task.cancel()  # waiting for gaps: no database transaction to finish
            with contextlib.suppress(asyncio.CancelledError, _Halted):
                await task
        finally:
            self._crawl_stopping = False
        return True

    def crawl_backlog(self) -> int:
        """Addresses waiting for a gap crawl or being crawled (0: every gap is filled)."""
        return len(self._gaps | self._crawling)

    def _report_gaps(self, addresses: Iterable[str]) -> None:
        before = len(self._gaps)
        self._gaps.update(addresses)
        if len(self._gaps) == before:
            return
        if self._gaps_since is None:
            self._gaps_since = time.monotonic()
        self._metrics.gap_backlog.set(self.crawl_backlog())
        self._gap_reported.set()

    async def _crawl_gaps(self) -> None:
        """The crawl task, beside the live loop: fill the reported gaps, from each address's
        cursor, a run at a time. Its listings and fetches overlap the notifications; only the
        database transactions take turns with them (``_write``)."""
        while not self._crawl_stopping:
            await self._gap_reported.wait()
            # A burst of gaps (one per subscription, as each is confirmed) is one run, so each
            # transaction is fetched once however many of its addresses report a gap.
            waited, size = 0.0, -1
            while size != len(self._gaps) and waited < _GAP_GATHER_MAX:
                size = len(self._gaps)
                await asyncio.sleep(_GAP_GATHER)
                waited += _GAP_GATHER
            if self._crawl_stopping:
                return
            self._gap_reported.clear()
            todo, self._gaps = self._gaps, set()
            self._crawling = todo
            self._crawl_run = _Run()
            try:
                await self._crawl_all(sorted(todo), self._crawl_run, gap=True)
            except (asyncio.CancelledError, _Halted):
                self._gaps |= todo  # still to crawl, by whichever task runs next
                raise
            except (ChainError, RetryableStoreError) as exc:
                # Nothing is lost: the cursors say how far each address got. Try again soon.
                _log.warning("indexer gap crawl failed", error=str(exc), addresses=len(todo))
                self._gaps |= todo
                await asyncio.sleep(_GAP_RETRY)
                self._gap_reported.set()
            finally:
                self._crawling = set()
                self._crawl_run = None
            # What was reported during the run is the oldest outstanding now.
            self._gaps_since = time.monotonic() if self._gaps else None
            self._metrics.gap_backlog.set(self.crawl_backlog())

    async def _follow_added(self) -> None:
        # Rows written by another process (``aiw3 indexer add``): subscribe, and the Gap each
        # subscription reports crawls its history.
        assert self._live is not None
        fresh = await self.followed() - self._live.addresses
        if fresh:
            await self._live.follow(sorted(fresh))

    async def _renew(self, leases: Leases, lease: Lease, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await _wait(stop, self._config.lease_ttl / 3)
            if not await leases.renew(lease, self._config.lease_ttl):
                _log.warning("indexer lease lost: standing down")
                return

    async def _refresh_lag(self, *, idle: bool) -> None:
        """Read the tip; set lag, readiness and caught-up. ``idle``: no event is queued."""
        try:
            tip = await self._rpc.get_slot(Confirmed)
        except Exception:
            self.ready = False
            self._metrics.caught_up.set(0)
            return
        now = time.time()
        self._metrics.chain_slot.set(tip)
        if idle and self._settled():
            self._complete_slot, self._complete_at = max(self._complete_slot, tip), now
        lag = max(0, tip - max(self.last_slot, self._complete_slot))
        self._metrics.lag_slots.set(lag)
        newest = max(self._complete_at, self._newest_block_time)
        if newest > 0:
            self._metrics.lag_seconds.set(max(0.0, now - newest))
        # Caught up: live, and no gap crawl outstanding for long (a new token account's crawl
        # takes milliseconds; a start-up's or a reconnect's may take minutes).
        crawling = self._gaps_since is not None and (
            time.monotonic() - self._gaps_since > _GAP_GRACE
        )
        self.ready = (
            self._live is not None
            and not crawling
            and (lag <= self._config.ready_lag_slots or self._live.live_subscriptions() > 0)
        )
        self._metrics.caught_up.set(1 if self.ready else 0)

    def _settled(self) -> bool:
        """Every subscription live, no gap to crawl, no notified transaction waited for."""
        return (
            self._live is not None
            and self._live.all_live()
            and not self._gaps
            and not self._crawling
            and not self._unseen
        )


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@dataclass(slots=True)
class _Unseen:
    """A notified transaction the node did not serve yet (see :meth:`Indexer.retry_unseen`)."""

    slot: int
    addresses: tuple[str, ...]
    since: float
    due: float
    tries: int = 0


@dataclass(slots=True)
class _Listed:
    """A signature as a crawl listed it, with every address whose listing holds it (in the
    order they listed it)."""

    signature: str
    slot: int
    failed: bool
    addresses: list[str]
    #: Its place in each of those listings (0: the newest).
    ranks: list[int]


class _Halted(Exception):
    """The crawl task's run was asked to stop (see ``Indexer._stop_crawler``)."""


@dataclass(slots=True)
class _Run:
    """What one crawl run (a backfill's rounds) has projected, so each signature is fetched
    once however many addresses list it.

    A transaction projected before one of the mints it names was tracked (that mint's
    creation found only in a later round, through an address discovered meanwhile) is
    projected again when a later round lists it, as crawling that mint's history used to:
    its activation memos and metadata count only for a tracked mint. Those few are kept
    decoded (up to ``_KEPT``; past that they are fetched again)."""

    projected: set[str] = field(default_factory=set)
    kept: dict[str, DecodedTx] = field(default_factory=dict)
    #: Set to stop the crawl task's run before its next database transaction.
    halted: bool = False

    def note(self, txs: Sequence[DecodedTx], applied: Applied) -> None:
        """After projecting ``txs`` (``applied``: what that did): keep those that named a mint
        without an asset row, forget the others."""
        for tx in txs:
            signature = tx.ref.signature
            if depends_on(tx) - applied.mints:
                if signature in self.kept or len(self.kept) < _KEPT:
                    self.kept[signature] = tx
                else:
                    self.projected.discard(signature)  # fetched again if listed again
            else:
                self.kept.pop(signature, None)


def _merge(listed: dict[str, list[Seen]]) -> list[_Listed]:
    """Every listed signature once, oldest slot first; within a slot in first-seen order
    (``_in_block_order`` sorts a slot by position where that matters)."""
    merged: dict[str, _Listed] = {}
    for address, entries in listed.items():
        for rank in range(len(entries) - 1, -1, -1):  # oldest first
            e = entries[rank]
            found = merged.get(e.signature)
            if found is None:
                merged[e.signature] = _Listed(e.signature, e.slot, e.failed, [address], [rank])
            else:
                found.addresses.append(address)
                found.ranks.append(rank)
    return sorted(merged.values(), key=lambda m: m.slot)
