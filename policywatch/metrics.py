"""Prometheus metrics. One ``Metrics`` per process, built by the composition root (never at import
time), with its own registry so tests and several services in one process do not collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)


class Metrics:
    """Everything PolicyWatch counts. Label values are source names, theme slugs and outcomes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.fetches = Counter(
            "policywatch_fetches", "Source polls by outcome.", ["source", "outcome"], registry=r
        )
        self.fetch_seconds = Histogram(
            "policywatch_fetch_duration_seconds",
            "Time to fetch and parse one source.",
            ["source"],
            buckets=FETCH_BUCKETS,
            registry=r,
        )
        self.items_fetched = Counter(
            "policywatch_items_fetched", "Items parsed from sources.", ["source"], registry=r
        )
        self.items_stored = Counter(
            "policywatch_items_stored", "New items stored.", ["source"], registry=r
        )
        self.items_updated = Counter(
            "policywatch_items_updated", "Items changed in place.", ["source"], registry=r
        )
        self.items_matched = Counter(
            "policywatch_items_matched", "Item-theme matches.", ["theme"], registry=r
        )
        self.deliveries = Counter(
            "policywatch_deliveries", "Outbox send attempts by outcome.", ["outcome"], registry=r
        )
        self.telegram_retry_after = Counter(
            "policywatch_telegram_retry_after", "429 answers from Telegram.", registry=r
        )
        self.source_failures = Gauge(
            "policywatch_source_consecutive_failures",
            "Failed polls in a row, per source (0 after a success).",
            ["source"],
            registry=r,
        )
        self.source_quiet = Gauge(
            "policywatch_source_quiet",
            "1 while a source's polls succeed but bring nothing new for longer than expected.",
            ["source"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "policywatch_outbox_pending", "Deliveries waiting to be sent.", registry=r
        )
        self.outbox_oldest_seconds = Gauge(
            "policywatch_outbox_oldest_pending_seconds",
            "Age of the oldest delivery waiting to be sent.",
            registry=r,
        )
        self.digest_runs = Counter(
            "policywatch_digest_runs", "Digests built, by outcome.", ["outcome"], registry=r
        )
        self.ticks = Counter(
            "policywatch_ticks", "Scheduler ticks by outcome.", ["tick", "outcome"], registry=r
        )
        self.purged_items = Counter(
            "policywatch_items_purged", "Unmatched items purged by retention.", registry=r
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
