"""No call does unbounded work: expiry and eviction go a chunk (``store.CHUNK``) at a time (issue 23).

Each test counts removals per call through ``on_evict`` (called outside the lock, after each call's work),
so what a call removes is what it held the lock for; tests/test_store_model.py checks the same rules on
random sequences with a chunk of two.
"""

import time

import pytest

from lembro_wsgi import LembroStore
from lembro_wsgi import store as store_module
from lembro_wsgi.store import LOW_WATER

DATA = {"user": 1, "pad": "x" * 300}


@pytest.fixture
def chunk(monkeypatch):
    monkeypatch.setattr(store_module, "CHUNK", 50)
    return 50


def filled(clock, count, **options):
    """A store of ``count`` sessions, exactly at a cap made to hold them, and its on_evict record."""
    removed = []
    probe = LembroStore(interval=None, clock=clock)
    probe.set("sid-00000", DATA)
    size = probe.stats()["bytes"]
    store = LembroStore(interval=None, clock=clock, max_size=size * count, timeout=600,
                        on_evict=lambda sid, reason: removed.append((sid, reason)), **options)
    for i in range(count):
        store.set(f"sid-{i:05d}", DATA)
    assert len(store) == count and not removed
    return store, removed


@pytest.mark.parametrize("count", [1_000, 20_000])
def test_a_write_over_the_cap_frees_what_it_needs_and_a_chunk_more_whatever_the_size(clock, chunk, count):
    store, removed = filled(clock, count)
    store.set("one-more", DATA)
    assert len(removed) == 1 + chunk  # the one session the write needed, and a chunk toward 75%
    assert store.stats()["bytes"] <= store.max_size
    before = len(removed)
    store.set("another", DATA)  # still above 75%: every write takes a chunk more
    assert len(removed) - before == chunk


def test_writes_and_a_purge_bring_the_store_down_to_low_water(clock, chunk):
    store, removed = filled(clock, 2_000)
    store.set("over", DATA)
    assert store.stats()["bytes"] > store.max_size * LOW_WATER
    assert store.purge() == 0  # nothing expired; it finishes the eviction, a chunk per hold of the lock
    stats = store.stats()
    assert stats["bytes"] <= store.max_size * LOW_WATER < stats["bytes"] + 1000
    assert stats["evictions"] == len(removed) and {reason for _, reason in removed} == {"size"}
    assert "over" in store
    evictions = stats["evictions"]
    store.set("calm", DATA)  # back under 75%: writes evict nothing more
    assert store.stats()["evictions"] == evictions


def test_one_shot_sessions_go_first_while_coming_down(clock, chunk):
    store, removed = filled(clock, 1_000)
    returning = [f"sid-{i:05d}" for i in range(0, 1_000, 2)]
    for sid in returning:
        store.get(sid)
    store.set("over", DATA)
    store.purge()
    assert all(sid not in returning for sid, _ in removed)
    assert all(sid in store for sid in returning)


def test_an_expired_session_is_never_served_while_it_waits_for_its_chunk(clock, chunk):
    store, removed = filled(clock, 500)
    clock.advance(600)
    assert store.get("sid-00499") is None  # the last to expire: no chunk has reached it yet
    assert store.touch("sid-00498") is False
    assert store.replace("sid-00497", DATA) is False
    assert store.move("sid-00496", "new-id", DATA) is False
    assert "sid-00495" not in store and not store.destroy("sid-00494")
    assert len(removed) < 500  # a chunk per call, not everything at once
    store.set("sid-00300", {"new": True})  # an expired id written again is a new session
    assert store.get("sid-00300") == {"new": True}
    assert len(store) == 1 and store.stats()["sessions"] == 1
    assert len(removed) == 500 and {reason for _, reason in removed} == {"expired"}
    assert store.stats()["expirations"] == 500


def test_a_write_over_the_cap_removes_expired_sessions_before_any_live_one(clock, chunk):
    """Returning sessions that expired and wait for their chunk go before live one-shot ones, as expired."""
    store, removed = filled(clock, 400)
    for i in range(200):
        store.touch(f"sid-{i:05d}", timeout=60)  # returning, and expiring long before the one-shot rest
    clock.advance(61)
    # Over the cap even after the write's chunk of expired sessions, while 150 more still hold their bytes:
    store.set("big", {"pad": "y" * (store.max_size // 400 * (chunk + 20))})
    assert len(removed) > chunk and all(reason == "expired" for _, reason in removed)
    assert all(f"sid-{i:05d}" in store for i in range(200, 400))
    stats = store.stats()
    assert stats["evictions"] == 0 and stats["expirations"] == 200


@pytest.mark.parametrize("count", [1_000, 20_000])
def test_a_call_after_everything_expired_removes_a_chunk_whatever_the_size(clock, chunk, count):
    store, removed = filled(clock, count)
    clock.advance(600)
    store.get("sid-00000")
    first = len(removed)
    assert first <= chunk + 1
    assert store.purge() == count - first  # the purge finishes, a chunk per hold of the lock
    assert len(store) == 0 and len(removed) == count


def test_the_purge_thread_is_woken_to_finish_coming_down(clock, chunk):
    """Real time: the background thread (interval one hour) finishes the eviction without waiting for it."""
    probe = LembroStore(interval=None, clock=clock)
    probe.set("sid-00000", DATA)
    size = probe.stats()["bytes"]
    with LembroStore(interval=3600, clock=clock, max_size=size * 1_000, timeout=600) as store:
        for i in range(1_000):
            store.set(f"sid-{i:05d}", DATA)
        store.set("over", DATA)
        deadline = time.monotonic() + 5
        while store.stats()["bytes"] > store.max_size * LOW_WATER:
            assert time.monotonic() < deadline, "the purge thread never came down to 75%"
            time.sleep(0.01)
        assert store.stats()["purges"] == 0 and store.history() == []  # work a write left, not a scheduled purge


def test_the_way_down_never_evicts_the_session_whose_write_went_over(clock, monkeypatch):
    """A session alone above 75% of the cap stays: the write spared it, and so does the rest of the way down,
    which goes on (a chunk of one here) while other sessions are left to evict."""
    monkeypatch.setattr(store_module, "CHUNK", 1)
    removed = []
    store = LembroStore(interval=None, clock=clock, max_size=20_000, on_evict=lambda sid, reason: removed.append(sid))
    for i in range(30):
        store.set(f"small-{i:02d}", {"pad": "s" * 200})
    store.set("big", {"pad": "b" * 16_000})  # 80% of the cap
    assert "big" not in removed and 0 < len(store) - 1 < 30
    store.purge()  # the rest of the way down: every small one, never the big one
    assert len(removed) == 30 and store.get("big") is not None and len(store) == 1
    store.purge()
    assert len(store) == 1


def test_a_count_cap_of_one_keeps_the_last_session_written(clock):
    removed = []
    store = LembroStore(interval=None, clock=clock, max_sessions=1, on_evict=lambda sid, reason: removed.append(sid))
    store.set("u1", {"user": 1})
    store.set("u2", {"user": 2})
    store.purge()
    assert removed == ["u1"] and store.get("u2") == {"user": 2}
