"""LembroStore through its public API, on a fake clock."""

import logging
import pickle
import sys
import threading

import pytest

from lembro_wsgi import LembroStore, SessionTooLarge
from lembro_wsgi.store import ENTRY_OVERHEAD


def entry_size(sid, data):
    """What one session adds to stats()['bytes'], measured through the API on a scratch store."""
    scratch = LembroStore(interval=None, max_size="1G")
    scratch.set(sid, data)
    return scratch.stats()["bytes"]


def test_set_get_roundtrip_and_missing(make_store):
    store = make_store()
    store.set("a", {"user": 1, "cart": [1, 2]})
    assert store.get("a") == {"user": 1, "cart": [1, 2]}
    assert store.get("missing") is None
    assert len(store) == 1
    assert "a" in store and "b" not in store


def test_upsert_replaces_data_and_bytes(make_store):
    store = make_store()
    store.set("a", {"v": "x" * 10})
    small = store.stats()["bytes"]
    store.set("a", {"v": "x" * 1000})
    assert store.get("a") == {"v": "x" * 1000}
    assert len(store) == 1
    assert small == entry_size("a", {"v": "x" * 10})
    assert store.stats()["bytes"] == entry_size("a", {"v": "x" * 1000}) > small + 990


def test_expired_session_is_removed_on_access(make_store, clock):
    store = make_store(timeout=10)
    store.set("a", {"n": 1})
    clock.advance(9.9)
    assert store.get("a") == {"n": 1}
    clock.advance(0.1)
    assert store.get("a") is None
    assert store.stats()["sessions"] == 0
    assert store.stats()["bytes"] == 0
    assert store.stats()["expirations"] == 1


def test_expired_sessions_never_returned_by_all_or_len(make_store, clock):
    store = make_store(timeout=10)
    store.set("old", 1)
    clock.advance(5)
    store.set("new", 2)
    clock.advance(6)
    assert store.all() == {"new": 2}
    assert len(store) == 1


def test_purge_counts_what_it_removed(make_store, clock):
    store = make_store(timeout=10)
    for i in range(5):
        store.set(f"s{i}", i)
    clock.advance(3)
    store.set("late", 0)
    clock.advance(8)
    assert store.purge() == 5
    assert store.purge() == 0
    stats = store.stats()
    assert stats["sessions"] == 1
    assert stats["purges"] == 2
    assert stats["expirations"] == 5


def test_touch_extends_life_without_rewriting(make_store, clock):
    store = make_store(timeout=10)
    store.set("a", {"n": 1})
    before = store.stats()["bytes"]
    clock.advance(8)
    assert store.touch("a") is True
    clock.advance(8)
    assert store.get("a") == {"n": 1}
    assert store.stats()["bytes"] == before
    clock.advance(10)
    assert store.get("a") is None
    assert store.touch("a") is False


def test_per_call_timeout_overrides_default_and_touch_keeps_it(make_store, clock):
    store = make_store(timeout=100)
    store.set("short", 1, timeout=5)
    store.set("long", 2)
    clock.advance(4)
    store.touch("short")
    clock.advance(4)
    assert store.get("short") == 1
    clock.advance(5)
    assert store.get("short") is None
    assert store.get("long") == 2
    store.set("long", 2, timeout=1)
    clock.advance(1)
    assert store.get("long") is None


def test_touch_with_new_timeout(make_store, clock):
    store = make_store(timeout=10)
    store.set("a", 1)
    store.touch("a", timeout=1000)
    clock.advance(500)
    assert store.get("a") == 1


def test_no_timeout_means_no_expiry(make_store, clock):
    store = make_store(timeout=None)
    store.set("a", 1)
    clock.advance(10**9)
    assert store.purge() == 0
    assert store.get("a") == 1


def test_destroy_and_clear(make_store):
    store = make_store()
    store.set("a", 1)
    store.set("b", 2)
    assert store.destroy("a") is True
    assert store.destroy("a") is False
    assert store.get("a") is None
    assert store.get("b") == 2
    store.clear()
    assert len(store) == 0
    assert store.stats()["bytes"] == 0
    store.set("c", 3)
    assert store.all() == {"c": 3}


def test_isolation_of_stored_data(make_store):
    store = make_store()
    data = {"items": [1, 2], "nested": {"k": "v"}}
    store.set("a", data)
    data["items"].append(3)
    data["nested"]["k"] = "changed"
    got = store.get("a")
    assert got == {"items": [1, 2], "nested": {"k": "v"}}
    got["items"].clear()
    assert store.get("a") == {"items": [1, 2], "nested": {"k": "v"}}
    everything = store.all()
    everything["a"]["items"].append(9)
    assert store.get("a")["items"] == [1, 2]


def test_unpicklable_data_is_refused_and_old_value_kept(make_store):
    store = make_store()
    store.set("a", {"ok": 1})
    with pytest.raises(TypeError, match="pickle"):
        store.set("a", {"bad": threading.Lock()})
    assert store.get("a") == {"ok": 1}


def test_size_is_pickled_form_plus_fixed_overhead(make_store):
    import sys

    store = make_store()
    store.set("sid", {"k": "v" * 500})
    blob = pickle.dumps({"k": "v" * 500}, pickle.HIGHEST_PROTOCOL)
    assert store.stats()["bytes"] == sys.getsizeof(blob) + sys.getsizeof("sid") + ENTRY_OVERHEAD


def test_a_rewrite_is_sized_with_the_id_object_the_store_holds(make_store):
    import sys

    store = make_store()
    store.set(1, b"x")  # the store keeps this int as the key; an equal float later does not replace it
    store.set(1.0, b"yy")
    assert store.ids() == [1] and type(store.ids()[0]) is int
    assert store.stats()["bytes"] == sys.getsizeof(b"yy") + sys.getsizeof(1) + ENTRY_OVERHEAD


def test_eviction_goes_down_to_75_percent_in_one_batch(make_store, clock):
    one = entry_size("s000", {"p": "x" * 200})
    cap = one * 20
    store = make_store(max_size=cap)
    for i in range(20):
        store.set(f"s{i:03d}", {"p": "x" * 200})
        clock.advance(1)
    assert store.stats()["evictions"] == 0
    assert store.stats()["bytes"] == cap
    store.set("s020", {"p": "x" * 200})
    stats = store.stats()
    assert stats["bytes"] <= cap * 0.75
    assert stats["bytes"] > cap * 0.75 - one
    assert stats["evictions"] == 21 - stats["sessions"]
    # the batch took the nearest-expiry sessions, and the newest write survived
    assert store.get("s020") is not None
    survivors = sorted(store.all())
    assert survivors == [f"s{i:03d}" for i in range(21 - len(survivors), 21)]
    # no eviction on the next writes: hysteresis
    store.set("s021", {"p": "x" * 200})
    assert store.stats()["evictions"] == stats["evictions"]


def test_one_shot_sessions_are_evicted_before_returning_ones(make_store, clock):
    one = entry_size("r0", {"p": "x" * 100})
    store = make_store(max_size=one * 10, timeout=1000)
    for i in range(5):
        store.set(f"r{i}", {"p": "x" * 100})
    for i in range(5):
        assert store.get(f"r{i}") is not None  # read back: returning
    clock.advance(100)
    for i in range(6):
        store.set(f"c{i}", {"p": "x" * 100})  # later expiry, but never read back
        clock.advance(1)
    remaining = store.all()
    assert all(f"r{i}" in remaining for i in range(5))
    assert store.stats()["evictions"] >= 1
    assert store.stats()["bytes"] <= one * 10 * 0.75


def test_returning_sessions_go_nearest_expiry_first(make_store, clock):
    store = make_store(max_sessions=4, timeout=100)
    for name in ("a", "b", "c", "d"):
        store.set(name, name)
        store.get(name)
        clock.advance(1)
    store.touch("a")  # a now expires last of the four
    store.set("e", "e")
    # over 4 sessions: down to 3 (floor of 75%), never-read 'e' is kept as the write in hand
    assert sorted(store.all()) == ["a", "d", "e"]
    assert store.stats()["evictions"] == 2


def test_max_sessions_cap(make_store):
    store = make_store(max_sessions=100)
    for i in range(101):
        store.set(i, i)
    assert len(store) == 75
    assert store.stats()["evictions"] == 26
    assert store.get(100) == 100


def test_session_too_large_loses_nothing(make_store, caplog):
    store = make_store(max_size="4K")
    store.set("victim-session-id", {"v": 1})
    store.set("other", {"v": 2})
    before = store.stats()
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"), pytest.raises(SessionTooLarge) as info:
        store.set("victim-session-id", {"v": "x" * 5000})
    assert isinstance(info.value, ValueError)
    assert "max_size" in str(info.value)
    assert store.get("victim-session-id") == {"v": 1}
    assert store.get("other") == {"v": 2}
    assert store.stats()["bytes"] == before["bytes"]
    assert store.stats()["evictions"] == 0
    assert any("refused" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert all("victim-session-id" not in r.getMessage() for r in caplog.records)  # ids are truncated in logs


def test_stats_figures(make_store, clock):
    store = make_store(max_size="1M", max_sessions=10, timeout=10)
    assert store.stats() == {
        "sessions": 0, "bytes": 0, "max_size": 1024**2, "max_sessions": 10,
        "evictions": 0, "expirations": 0, "purges": 0,
        "returning_sessions": 0, "returning_bytes": 0, "returning_evictions": 0,
        "one_shot_sessions": 0, "one_shot_bytes": 0, "one_shot_evictions": 0,
        "owners": 0, "owned_sessions": 0,
    }
    for i in range(11):
        store.set(str(i), i)
    clock.advance(10)
    store.purge()
    stats = store.stats()
    assert stats["sessions"] == 0 and stats["bytes"] == 0
    assert stats["evictions"] == 4 and stats["expirations"] == 7 and stats["purges"] == 1


def test_on_evict_reports_reason_outside_the_lock(make_store, clock):
    seen = []
    holder = {}

    def on_evict(sid, reason):
        seen.append((sid, reason))
        holder["store"].get("anything")  # would deadlock if called under the lock

    store = make_store(max_sessions=2, timeout=5, on_evict=on_evict)
    holder["store"] = store
    store.set("a", 1)
    clock.advance(1)
    store.set("b", 2)
    store.set("c", 3)
    assert seen == [("a", "size"), ("b", "size")]
    clock.advance(5)
    store.purge()
    assert seen[-1] == ("c", "expired")


def test_on_evict_hears_of_expiries_in_a_write_that_fails(make_store, clock):
    class Unsizable(str):
        def __sizeof__(self):
            raise RuntimeError("no size")

    seen = []
    store = make_store(timeout=5, on_evict=lambda sid, reason: seen.append((sid, reason)))
    store.set("old", 1)
    clock.advance(5)
    with pytest.raises(RuntimeError, match="no size"):
        store.set(Unsizable("new"), 2)
    assert seen == [("old", "expired")] and store.ids() == []


def test_on_evict_errors_do_not_break_the_store(make_store, clock, caplog):
    def on_evict(sid, reason):
        raise RuntimeError("boom")

    store = make_store(timeout=1, on_evict=on_evict)
    store.set("a", 1)
    clock.advance(1)
    with caplog.at_level(logging.ERROR, logger="lembro_wsgi"):
        assert store.purge() == 1
    assert "on_evict" in caplog.text


def test_purges_and_evictions_logged_at_debug(make_store, clock, caplog):
    store = make_store(max_sessions=1, timeout=1)
    with caplog.at_level(logging.DEBUG, logger="lembro_wsgi"):
        store.set("a", 1)
        store.set("b", 1)
        clock.advance(1)
        store.purge()
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("evicted 1" in m for m in messages)
    assert any("purge removed 1" in m for m in messages)


def purge_threads():
    return [thread for thread in threading.enumerate() if thread.name == "lembro-purge"]


def test_close_is_idempotent_and_store_stays_usable(make_store):
    before = set(purge_threads())
    store = make_store(interval=0.5)
    (thread,) = set(purge_threads()) - before
    store.close()
    store.close()
    thread.join(5)
    assert not thread.is_alive()  # close() really stops the background purge
    store.set("a", 1)
    assert store.get("a") == 1
    with LembroStore(interval=0.5) as scoped:
        (scoped_thread,) = set(purge_threads()) - before
        scoped.set("x", 1)
    scoped_thread.join(5)
    assert not scoped_thread.is_alive()  # and so does leaving the with block


def test_non_ascii_text_is_accounted_as_what_it_holds_after_the_app_used_it():
    """A non-ASCII str grows when C code first asks for its UTF-8 form: it is pickled, never held as is."""
    store = LembroStore(interval=None)
    text = "é" * 1000
    store.set("k", text)
    before = store.stats()["bytes"]
    pickle.dumps(store.get("k"))  # the app uses what it read
    assert store.get("k") is not text
    assert store.stats()["bytes"] == before == (
        sys.getsizeof(pickle.dumps(text, pickle.HIGHEST_PROTOCOL)) + sys.getsizeof("k") + ENTRY_OVERHEAD)


def test_str_and_bytes_values_are_kept_as_they_are_and_mutable_ones_are_copied():
    store = LembroStore(interval=None)
    text, raw, mutable = "t" * 500, b"b" * 500, bytearray(b"m" * 500)
    store.set("text", text)
    store.set("raw", raw)
    store.set("mutable", mutable)
    mutable[0] = ord("X")
    assert store.get("text") == text and store.get("raw") == raw
    assert store.get("mutable") == bytearray(b"m" * 500)  # pickled: the caller's later change is not seen
    assert store.get("mutable") is not store.get("mutable")
    expected = sum(sys.getsizeof(sid) + ENTRY_OVERHEAD for sid in ("text", "raw", "mutable"))
    expected += sys.getsizeof(text) + sys.getsizeof(raw) + sys.getsizeof(pickle.dumps(bytearray(b"m" * 500), 5))
    assert store.stats()["bytes"] == expected
