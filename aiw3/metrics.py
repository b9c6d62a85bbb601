"""The Prometheus registry of one process, and the metrics the foundation owns.

A :class:`Metrics` object is created at start-up and passed down; nothing registers on the
library's global default registry, so tests can build as many as they like.
Labels are bounded: never a user id, a mint address, a URL or an error text.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from chain.rpc.metrics import RpcMetrics
from indexer.metrics import IndexerMetrics
from minting.ipfs import upload_histogram
from minting.metrics import MintingMetrics
from minting.relay import RelayMetrics

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Every metric of the service, on one registry. Each part's metrics live in its package;
    they are gathered here so that ``/metrics`` and the dashboard test see the same set."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.database_query_duration = Histogram(
            "database_query_duration_seconds",
            "Time spent in one database statement.",
            ["operation"],  # select / insert / update / delete / other
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )

        self.rpc = RpcMetrics(self.registry)
        self.ipfs_upload_duration = upload_histogram(self.registry)
        self.minting = MintingMetrics(self.registry)
        self.indexer = IndexerMetrics(self.registry)
        self.relay = RelayMetrics(self.registry)

    def render(self) -> bytes:
        """The text exposition format, for ``/metrics``."""
        return generate_latest(self.registry)
