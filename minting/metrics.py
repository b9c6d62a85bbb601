"""The minting engine's Prometheus metrics, registered on the caller's registry.

Labels are bounded: a level, a status or state from a fixed set, never an id or an address.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from store.tables import MINT_STATES


class MintingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.claims = Counter(
            "nft_claims_total",
            "Claims answered, by level and outcome (created, duplicate or the refusal's code).",
            ["level", "status"],
            registry=registry,
        )
        self.claim_duration = Histogram(
            "nft_claim_duration_seconds",
            "Time from a claim's arrival to its answer, by level and outcome.",
            ["level", "status"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.operations = Gauge(
            "nft_mint_operations",
            "Mint operations by state, as the worker last counted them.",
            ["state"],
            registry=registry,
        )
        for state in MINT_STATES:
            self.operations.labels(state).set(0)
        self.retries = Counter(
            "nft_mint_retries_total",
            "Mint steps put off for a cause that can pass (RPC outage, empty fee wallet).",
            # rpc / funds / store / pinning / config / rejected (a definitive preflight
            # rejection, failed once its blockhash provably expires) / other
            ["reason"],
            registry=registry,
        )
        self.resigns = Counter(
            "nft_mint_resigns_total",
            "Mint transactions signed again after their blockhash provably expired.",
            registry=registry,
        )
        self.sent = Counter(
            "nft_mint_sends_total",
            "Signed mint transactions sent or rebroadcast.",
            registry=registry,
        )
        self.upgrades = Counter(
            "nft_upgrades_total",
            # from_level/to_level: tier levels, or "none" for a refusal before the NFT is
            # known; status: requested, confirmed, failed, expired or the refusal's code.
            # "confirmed" is counted by the outbox relay from the ``upgraded`` event (whoever
            # settled the upgrade, the engine or the indexer), the others by ``Upgrades``.
            "Upgrade requests by levels and outcome.",
            ["from_level", "to_level", "status"],
            registry=registry,
        )
        self.fee_wallet_balance = Gauge(
            "nft_fee_wallet_balance_sol",
            "SOL balance of the system wallet that pays for mints.",
            registry=registry,
        )
