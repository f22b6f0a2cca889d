"""Prometheus metrics for a LembroStore: a custom collector for ``prometheus_client`` (extra ``prometheus``).

Next to an existing ``/metrics``::

    from prometheus_client import REGISTRY
    from lembro_wsgi.prometheus import LembroCollector
    REGISTRY.register(LembroCollector(middleware.store, name="web"))

Gauges ``lembro_sessions``, ``lembro_bytes``, ``lembro_max_bytes`` (and
``lembro_max_sessions`` when set), ``lembro_owners`` (owners, the values of
``owner_key``, with a live session) and ``lembro_owned_sessions`` (the live
sessions they own); counters ``lembro_evictions_total``,
``lembro_expirations_total``, ``lembro_purges_total``; all labelled ``store``.
The eviction tiers apart, labelled ``store`` and ``tier`` (``returning``: read
back since written; ``one_shot``: never read back): gauges
``lembro_tier_sessions``, ``lembro_tier_bytes`` and the counter
``lembro_tier_evictions_total``. They are metrics of their own, so the totals
keep their labels and queries such as ``lembro_bytes / lembro_max_bytes``
work as before. Returning users evicted mean the cap is too small::

    increase(lembro_tier_evictions_total{tier="returning"}[15m]) > 0

Several stores: ``LembroCollector({"web": web_store, "api": api_store})``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .store import LembroStore

_GAUGES = (
    ("lembro_sessions", "sessions", "Live sessions in the store."),
    ("lembro_bytes", "bytes", "Bytes the store's sessions use, as measured against its cap."),
    ("lembro_max_bytes", "max_size", "The store's byte cap (max_size)."),
    ("lembro_max_sessions", "max_sessions", "The store's cap on the number of sessions (max_sessions)."),
    ("lembro_owners", "owners", "Owners (values of owner_key: users signed in) with at least one live session."),
    ("lembro_owned_sessions", "owned_sessions", "Live sessions that have an owner (owner_key)."),
)
_COUNTERS = (  # CounterMetricFamily adds the _total suffix in the exposition
    ("lembro_evictions", "evictions", "Sessions evicted to stay under a cap."),
    ("lembro_expirations", "expirations", "Sessions removed after their idle timeout."),
    ("lembro_purges", "purges", "Runs of the periodic purge."),
)
#: The ``tier`` label's values and the prefixes of their keys in ``stats()``.
TIERS = (("returning", "returning_"), ("one_shot", "one_shot_"))
_TIER_FAMILIES = (
    (GaugeMetricFamily, "lembro_tier_sessions", "sessions",
     "Live sessions by eviction tier: returning (read back since written) or one_shot (never read back)."),
    (GaugeMetricFamily, "lembro_tier_bytes", "bytes", "Bytes the store's sessions use, by eviction tier."),
    (CounterMetricFamily, "lembro_tier_evictions", "evictions",
     "Sessions evicted to stay under a cap, by eviction tier; returning ones mean the cap is too small."),
)


class LembroCollector(Collector):
    """Reads ``store.stats()`` at each scrape; ``name`` is the ``store`` label.

    Several stores go in one collector, one label value each:
    ``LembroCollector({"web": web.store, "api": api.store})``. The metric
    names are described at registration, so a second collector or a clashing
    metric in the same registry is refused there.
    """

    def __init__(self, store: LembroStore | Mapping[str, LembroStore], name: str = "default") -> None:
        stores = {name: store} if isinstance(store, LembroStore) else store
        if not isinstance(stores, Mapping) or not stores:
            raise ValueError(f"store: expected a LembroStore or a dict of them by name, got {store!r}")
        for label, each in stores.items():
            if not isinstance(label, str) or not label:
                raise ValueError(f"name: expected a non-empty string, got {label!r}")
            if not isinstance(each, LembroStore):
                raise ValueError(f"store: expected a LembroStore, got {each!r}")
        self.stores = dict(stores)

    def _families(self, with_samples: bool) -> Iterator[Metric]:
        stats: dict[str, Mapping[str, Any]] = (
            {label: store.stats() for label, store in self.stores.items()} if with_samples else {})
        capped = any(store.max_sessions is not None for store in self.stores.values())
        for metric, key, doc in _GAUGES:
            if key == "max_sessions" and not capped:
                continue
            gauge = GaugeMetricFamily(metric, doc, labels=["store"])
            for label, figures in stats.items():
                if figures[key] is not None:
                    gauge.add_metric([label], float(figures[key] or 0))
            yield gauge
        for metric, key, doc in _COUNTERS:
            counter = CounterMetricFamily(metric, doc, labels=["store"])
            for label, figures in stats.items():
                counter.add_metric([label], float(figures[key] or 0))
            yield counter
        for family, metric, key, doc in _TIER_FAMILIES:
            tiered = family(metric, doc, labels=["store", "tier"])
            for label, figures in stats.items():
                for tier, prefix in TIERS:
                    tiered.add_metric([label, tier], float(figures[prefix + key] or 0))
            yield tiered

    def collect(self) -> Iterator[Metric]:
        return self._families(with_samples=True)

    def describe(self) -> Iterator[Metric]:
        """The metric names, without reading the stores: the registry checks them for clashes."""
        return self._families(with_samples=False)
