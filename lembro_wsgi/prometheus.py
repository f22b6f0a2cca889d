"""Prometheus metrics for a LembroStore: a custom collector for ``prometheus_client`` (extra ``prometheus``).

Next to an existing ``/metrics``::

    from prometheus_client import REGISTRY
    from lembro_wsgi.prometheus import LembroCollector
    REGISTRY.register(LembroCollector(middleware.store, name="web"))

Gauges ``lembro_sessions``, ``lembro_bytes``, ``lembro_max_bytes`` (and
``lembro_max_sessions`` when set); counters ``lembro_evictions_total``,
``lembro_expirations_total``, ``lembro_purges_total``; all labelled ``store``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .store import LembroStore

_GAUGES = (
    ("lembro_sessions", "sessions", "Live sessions in the store."),
    ("lembro_bytes", "bytes", "Bytes the store's sessions use, as measured against its cap."),
    ("lembro_max_bytes", "max_size", "The store's byte cap (max_size)."),
    ("lembro_max_sessions", "max_sessions", "The store's cap on the number of sessions (max_sessions)."),
)
_COUNTERS = (  # CounterMetricFamily adds the _total suffix in the exposition
    ("lembro_evictions", "evictions", "Sessions evicted to stay under a cap."),
    ("lembro_expirations", "expirations", "Sessions removed after their idle timeout."),
    ("lembro_purges", "purges", "Runs of the periodic purge."),
)


class LembroCollector(Collector):
    """Reads ``store.stats()`` at each scrape; ``name`` is the ``store`` label."""

    def __init__(self, store: LembroStore, name: str = "default") -> None:
        if not isinstance(store, LembroStore):
            raise ValueError(f"store: expected a LembroStore, got {store!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name: expected a non-empty string, got {name!r}")
        self.store = store
        self.name = name

    def collect(self) -> Iterator[Metric]:
        stats = self.store.stats()
        for metric, key, doc in _GAUGES:
            if stats[key] is not None:
                family = GaugeMetricFamily(metric, doc, labels=["store"])
                family.add_metric([self.name], float(stats[key] or 0))
                yield family
        for metric, key, doc in _COUNTERS:
            counter = CounterMetricFamily(metric, doc, labels=["store"])
            counter.add_metric([self.name], float(stats[key] or 0))
            yield counter

    def describe(self) -> Iterator[Metric]:
        """No metrics at registration time: the registry then does not call ``collect`` early."""
        return iter(())
