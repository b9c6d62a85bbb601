"""The indexer's Prometheus metrics, on the registry the process passes in (bounded labels)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from store.tables import ASSET_EVENT_KINDS


class IndexerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.last_slot = Gauge(
            "indexer_last_processed_slot",
            "Slot of the newest transaction projected into the read model.",
            registry=registry,
        )
        self.chain_slot = Gauge(
            "indexer_chain_slot", "Confirmed slot of the chain tip, last read.", registry=registry
        )
        self.lag_slots = Gauge(
            "indexer_lag_slots",
            "Confirmed chain tip minus the slot the read model is known complete through (the "
            "newest projected, or the tip as last read while idle and fully subscribed).",
            registry=registry,
        )
        self.lag_seconds = Gauge(
            "indexer_lag_seconds",
            "Seconds the read model may be behind: since the newest projected transaction's "
            "block time, or since the leader was last idle and fully subscribed if later.",
            registry=registry,
        )
        self.events = Counter(
            "indexer_events_total", "New history rows by kind.", ["kind"], registry=registry
        )
        for kind in ASSET_EVENT_KINDS:
            self.events.labels(kind=kind)
        self.transactions = Counter(
            "indexer_transactions_total",
            "Transactions fetched and projected, by outcome.",
            ["outcome"],  # applied / failed_on_chain / missing / dropped
            registry=registry,
        )
        self.reconnects = Counter(
            "indexer_websocket_reconnects_total",
            "WebSocket connections re-opened after a drop.",
            registry=registry,
        )
        self.gaps_filled = Counter(
            "indexer_gaps_filled_total",
            "Transactions found by crawling that the live source had not delivered.",
            registry=registry,
        )
        self.backfill_remaining = Gauge(
            "indexer_backfill_remaining_addresses",
            "Addresses whose history the backfill has not finished.",
            registry=registry,
        )
        self.gap_backlog = Gauge(
            "indexer_gap_backlog_addresses",
            "Addresses whose gap (after a (re)connect or a new subscription) is not crawled yet.",
            registry=registry,
        )
        self.reverted = Counter(
            "indexer_reverted_transactions_total",
            "Projected transactions rolled back because a fork dropped their slot.",
            registry=registry,
        )
        self.finalized_slot = Gauge(
            "indexer_finalized_slot",
            "Newest finalized slot; the journal holds changes above it.",
            registry=registry,
        )
        self.caught_up = Gauge(
            "indexer_caught_up", "1 when the indexer is live and caught up.", registry=registry
        )
