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
