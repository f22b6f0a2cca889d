"""The two eviction tiers in the figures: returning sessions (read back since written) and one-shot ones.

Through the public API: ``store.stats()`` and ``history()`` after floods on a
fake clock, the stats page (WebTest), the Prometheus collector (parsed back),
and a model check that the per-tier counters never drift.
"""

import re

import pytest
import webtest
from hypothesis import settings
from hypothesis.stateful import invariant

from lembro_wsgi import StatsApp
from lembro_wsgi.stats import ADVICE
from tests import test_store_model as base

CAP = 64 * 1024
PAGE = {"user": 1, "page": "x" * 300}  # about 700 bytes stored


def flood(store, clock, returning, rounds=12, one_shot=80):
    """``returning`` users (each visit: one page written, the next read back) and ``one_shot`` new clients
    per round who never come back; a purge after each round, one fake second apart.

    Returns how many returning users still had their session at their last visit.
    """
    kept = 0
    for _ in range(rounds):
        kept = 0
        for user in range(returning):
            sid = f"user-{user}"
            if store.get(sid) is not None:
                kept += 1
            store.set(sid, PAGE)
            store.get(sid)
        for client in range(one_shot):
            store.set(f"once-{clock.now}-{client}", PAGE)
        store.purge()
        clock.advance(1)
    return kept


def tiers_add_up(stats):
    for figure in ("sessions", "bytes", "evictions"):
        assert stats[f"returning_{figure}"] + stats[f"one_shot_{figure}"] == stats[figure], figure


def test_a_cap_large_enough_keeps_every_returning_user_and_evicts_one_shot_clients_only(make_store, clock):
    store = make_store(max_size=CAP)
    kept = flood(store, clock, returning=20)
    stats = store.stats()
    tiers_add_up(stats)
    assert kept == 20 and stats["returning_sessions"] == 20
    assert stats["evictions"] > 500 and stats["one_shot_evictions"] == stats["evictions"]
    assert stats["returning_evictions"] == 0
    assert 0 < stats["returning_bytes"] < stats["bytes"] <= CAP
    history = store.history()
    assert sum(sample["one_shot_evictions"] for sample in history) == stats["evictions"]
    assert all(sample["returning_evictions"] == 0 for sample in history)

    page = webtest.TestApp(StatsApp(store)).get("/").text
    assert 'role="alert"' not in page and ADVICE not in page
    assert "Returning users are safe" in page
    for figure in ("returning_sessions", "returning_bytes", "one_shot_sessions", "one_shot_bytes",
                   "one_shot_evictions"):
        assert f"{stats[figure]:,}" in page, figure


def test_a_cap_too_small_for_the_returning_users_evicts_them_and_the_page_warns(make_store, clock):
    store = make_store(max_size=CAP)
    kept = flood(store, clock, returning=120)  # ~84 KiB of returning users under a 64 KiB cap
    stats = store.stats()
    tiers_add_up(stats)
    assert kept < 120 and stats["returning_evictions"] > 0 and stats["one_shot_evictions"] > 0
    history = store.history()
    assert sum(sample["returning_evictions"] for sample in history) == stats["returning_evictions"]
    assert all(s["returning_evictions"] + s["one_shot_evictions"] == s["evictions"] for s in history)

    app = webtest.TestApp(StatsApp(store))
    page = app.get("/").text
    alert = re.search(r'<p class="alert" role="alert">(.*?)</p>', page)
    assert alert is not None and f"{stats['returning_evictions']:,} returning sessions evicted" in alert[1]
    assert ADVICE in alert[1] and "Returning users are safe" not in page
    body = app.get("/?format=json").json
    assert {key: body[key] for key in stats} == stats
    assert body["history"][-1]["returning_evictions"] == history[-1]["returning_evictions"]


def test_one_returning_session_evicted_is_enough_to_warn_in_the_singular(make_store):
    store = make_store(max_size=4000)
    store.set("regular", PAGE)
    store.get("regular")
    for i in range(8):  # returning sessions alone, past the cap
        store.set(f"next-{i}", PAGE)
        store.get(f"next-{i}")
    stats = store.stats()
    assert stats["returning_evictions"] >= 1 and stats["one_shot_evictions"] == 0
    page = webtest.TestApp(StatsApp(store)).get("/").text
    count = stats["returning_evictions"]
    assert f"{count:,} returning session{'' if count == 1 else 's'} evicted." in page


def test_tiers_follow_sessions_between_tiers_and_out(make_store, clock):
    store = make_store(max_size="1M", timeout=10)
    store.set("a", PAGE)
    store.set("b", PAGE)
    size = store.stats()["bytes"] // 2
    assert store.stats()["one_shot_sessions"] == 2 and store.stats()["one_shot_bytes"] == 2 * size
    store.get("a")
    store.touch("b")
    stats = store.stats()
    assert (stats["returning_sessions"], stats["returning_bytes"], stats["one_shot_bytes"]) == (2, 2 * size, 0)
    store.set("a", {"user": 1, "page": "x" * 1300})  # a rewrite stays returning, with its new size
    grown = store.stats()
    assert grown["returning_bytes"] == grown["bytes"] == 2 * size + 1000
    assert store.move("a", "c", PAGE)  # takes a's tier
    assert store.stats()["returning_sessions"] == 2 and store.stats()["returning_bytes"] == 2 * size
    store.set("d", PAGE)
    assert store.move("d", "b", PAGE)  # b is rewritten in the place of d: one-shot, as d was
    stats = store.stats()
    assert (stats["returning_sessions"], stats["one_shot_sessions"]) == (1, 1)
    assert stats["returning_bytes"] == stats["one_shot_bytes"] == size
    store.destroy("c")
    clock.advance(10)
    store.purge()  # b expires
    stats = store.stats()
    assert stats["sessions"] == stats["returning_bytes"] == stats["one_shot_bytes"] == 0
    store.set("e", PAGE)
    store.get("e")
    store.clear()
    assert store.stats()["returning_bytes"] == store.stats()["returning_sessions"] == 0


def test_gauge_shows_a_sliver_below_a_tenth_of_a_percent_and_axes_are_html(make_store, clock):
    store = make_store(max_size="1G")
    app = webtest.TestApp(StatsApp(store))
    assert ">0.0%</text>" in app.get("/").text  # empty
    store.set("a", PAGE)
    page = app.get("/").text
    assert "&lt;0.1%</text>" in page and ">0.0%<" not in page
    store.purge()
    clock.advance(1)
    store.purge()
    chart = app.get("/").text.split("Recent history", 1)[1]
    assert "<text" not in chart  # labels are HTML text: they keep their size when the SVG shrinks on a phone
    for label in ("0 B", "256 MiB", "512 MiB", "768 MiB", "1 GiB", "1 purges ago", "now"):
        assert f">{label}</span>" in chart, label


def test_chart_axes_scale_bytes_against_the_cap_and_evictions_by_tier(make_store, clock):
    store = make_store(max_size=CAP)
    flood(store, clock, returning=120, rounds=3)
    most = max(sample["evictions"] for sample in store.history())
    chart = webtest.TestApp(StatsApp(store)).get("/").text.split("Recent history", 1)[1]
    for label in ("0 B", "16 KiB", "32 KiB", "48 KiB", "64 KiB"):
        assert f">{label}</span>" in chart, label
    right = [int(v.replace(",", "")) for v in re.findall(r'<div class="axis right".*?</div>', chart)[0]
             .split("</span>")[1:] for v in re.findall(r">([\d,]+)$", v)]
    assert right[-1] == 0 and most <= right[0] <= 2 * most  # a round top, at most twice the tallest bar
    assert 'fill="#d0453b"' in chart and 'fill="#d99a1e"' in chart  # returning and one-shot bars


def test_prometheus_tier_families_add_up_to_the_totals(make_store, clock):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from lembro_wsgi.prometheus import LembroCollector

    web, api = make_store(max_size=CAP), make_store(max_size=CAP)
    flood(web, clock, returning=120, rounds=3)
    flood(api, clock, returning=10, rounds=3)
    registry = CollectorRegistry()
    registry.register(LembroCollector({"web": web, "api": api}))
    samples = [sample for family in text_string_to_metric_families(generate_latest(registry).decode())
               for sample in family.samples]

    def value(name, **labels):
        [found] = [s.value for s in samples if s.name == name and s.labels == labels]
        return found

    for label, store in (("web", web), ("api", api)):
        stats = store.stats()
        for metric, key in (("lembro_tier_sessions", "sessions"), ("lembro_tier_bytes", "bytes"),
                            ("lembro_tier_evictions_total", "evictions")):
            returning = value(metric, store=label, tier="returning")
            one_shot = value(metric, store=label, tier="one_shot")
            assert (returning, one_shot) == (stats[f"returning_{key}"], stats[f"one_shot_{key}"]), metric
            total = {"sessions": "lembro_sessions", "bytes": "lembro_bytes", "evictions": "lembro_evictions_total"}
            assert value(total[key], store=label) == returning + one_shot  # the totals keep their one label
    assert value("lembro_tier_evictions_total", store="web", tier="returning") > 0
    assert value("lembro_tier_evictions_total", store="api", tier="returning") == 0


class TierMachine(base.StoreMachine):
    """The store model's random operations, checking after each one that the per-tier figures are exact."""

    def __init__(self):
        super().__init__()
        self.tier_evictions = {True: 0, False: 0}

    def check_eviction(self, kept):
        for sid, reason in self.evicted:
            if reason == "size":
                self.tier_evictions[self.model[sid].warm] += 1
        super().check_eviction(kept)

    @invariant()
    def tiers_match(self):
        self.expire()
        stats = self.store.stats()
        for warm, tier in ((True, "returning"), (False, "one_shot")):
            sessions = [m for m in self.model.values() if m.warm is warm]
            assert stats[f"{tier}_sessions"] == len(sessions)
            assert stats[f"{tier}_bytes"] == sum(m.size for m in sessions)
            assert stats[f"{tier}_evictions"] == self.tier_evictions[warm]


class EternalTierMachine(TierMachine):
    default_timeout = None


class CountCappedTierMachine(TierMachine):
    max_sessions = 5


TIER_SETTINGS = settings(max_examples=60, stateful_step_count=60, deadline=None)
TestTiersAgainstModel = TierMachine.TestCase
TestTiersAgainstModel.settings = TIER_SETTINGS
TestEternalTiersAgainstModel = EternalTierMachine.TestCase
TestEternalTiersAgainstModel.settings = TIER_SETTINGS
TestCountCappedTiersAgainstModel = CountCappedTierMachine.TestCase
TestCountCappedTiersAgainstModel.settings = TIER_SETTINGS


@pytest.mark.parametrize("cap", ["64K", "1M"])
def test_history_samples_split_the_evictions_since_the_sample_before(make_store, clock, cap):
    store = make_store(max_size=cap)
    flood(store, clock, returning=120, rounds=4)
    stats = store.stats()
    history = store.history()
    assert len(history) == 4
    assert sum(s["returning_evictions"] for s in history) == stats["returning_evictions"]
    assert sum(s["one_shot_evictions"] for s in history) == stats["one_shot_evictions"]
