"""What a session costs in ``stats()['bytes']``: its stored form plus its id plus a fixed overhead, for every shape
of id the integrations use (a str, Beaker's ``(namespace, key)`` tuple, anything hashable)."""

import pickle
import sys

import pytest

from lembro_wsgi.store import ENTRY_OVERHEAD


def held(sid):
    """The bytes an id holds: the object, and for a tuple each of its parts."""
    return sys.getsizeof(sid) + (sum(held(part) for part in sid) if type(sid) is tuple else 0)


@pytest.mark.parametrize(
    "sid",
    [
        "plain-ascii-id",
        "ïd-nön-ascii",
        ("beaker-namespace", "session"),  # a Beaker session or cache entry
        ("nämespace", "këy"),
        (42, "key"),
        ("ns", ("nested", "key")),
        ("one",),
        (),
        1234567890123,
        b"bytes-id",
    ],
)
def test_an_id_is_counted_as_the_memory_it_holds(make_store, sid):
    store = make_store()
    store.set(sid, b"v" * 100)
    assert store.stats()["bytes"] == held(sid) + sys.getsizeof(b"v" * 100) + ENTRY_OVERHEAD
    store.set(sid, {"n": 1})  # a rewrite keeps the id's share
    assert store.stats()["bytes"] == held(sid) + sys.getsizeof(pickle.dumps({"n": 1}, 5)) + ENTRY_OVERHEAD
    store.destroy(sid)
    assert store.stats()["bytes"] == 0


def test_a_session_exactly_as_large_as_the_cap_is_stored(make_store):
    """The cap is a maximum: a session of exactly ``max_size`` bytes fits (one byte more is refused)."""
    size = make_store(max_size="1M")
    size.set("sid", {"pad": "x" * 500})
    exact = size.stats()["bytes"]
    store = make_store(max_size=exact)
    store.set("sid", {"pad": "x" * 500})
    assert store.get("sid") == {"pad": "x" * 500} and store.stats()["bytes"] == exact


def test_a_write_that_expires_some_sessions_and_evicts_others_reports_them_all(make_store, clock):
    """on_evict hears of every removal a write makes, the expired ones before the evicted ones."""
    heard = []
    probe = make_store(max_size="1M")
    probe.set("sid-0", {"pad": "x" * 500})
    one = probe.stats()["bytes"]
    store = make_store(max_size=one * 10, on_evict=lambda sid, reason: heard.append((sid, reason)))
    for i in range(10):
        store.set(f"sid-{i}", {"pad": "x" * 500}, timeout=5 if i < 2 else 600)
    clock.advance(10)
    store.set("big", {"pad": "x" * 500 * 4})  # more than the two expired sessions free
    assert [reason for _, reason in heard][:2] == ["expired", "expired"]
    assert {sid for sid, reason in heard if reason == "expired"} == {"sid-0", "sid-1"}
    assert any(reason == "size" for _, reason in heard)
    assert len(heard) + len(store) == 11
