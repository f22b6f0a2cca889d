"""``history()``: one sample per purge, each with the figures since the sample before, the last ``HISTORY`` kept."""

import time

from lembro_wsgi.store import HISTORY


def test_each_purge_samples_what_happened_since_the_sample_before(make_store, clock):
    store = make_store(max_sessions=2, timeout=10)
    before = time.time()
    store.purge()  # nothing yet
    for name in ("a", "b"):
        store.set(name, name)
        store.get(name)  # returning
    store.set("c", "c")  # over 2 sessions: down to 1, the write in hand kept, so both returning ones go
    store.purge()
    clock.advance(10)
    store.purge()  # c expired
    store.set("d", "d")
    store.set("e", "e")
    store.set("f", "f")  # d and e, one-shot, evicted
    store.purge()
    after = time.time()
    samples = store.history()
    assert all(before <= sample.pop("time") <= after for sample in samples)
    bytes_of_f = store.stats()["bytes"]
    assert samples == [
        {"bytes": 0, "sessions": 0, "evictions": 0, "expirations": 0,
         "returning_evictions": 0, "one_shot_evictions": 0},
        {"bytes": bytes_of_f, "sessions": 1, "evictions": 2, "expirations": 0,
         "returning_evictions": 2, "one_shot_evictions": 0},
        {"bytes": 0, "sessions": 0, "evictions": 0, "expirations": 1,
         "returning_evictions": 0, "one_shot_evictions": 0},
        {"bytes": bytes_of_f, "sessions": 1, "evictions": 2, "expirations": 0,
         "returning_evictions": 0, "one_shot_evictions": 2},
    ]
    samples[0]["bytes"] = 99
    assert store.history()[0]["bytes"] == 0  # a copy: the caller cannot change the store's record


def test_only_the_last_samples_are_kept(make_store):
    store = make_store()
    for n in range(HISTORY + 5):
        store.set(n, n)
        store.purge()
    samples = store.history()
    assert HISTORY == 60 and len(samples) == HISTORY
    assert [sample["sessions"] for sample in samples] == list(range(6, HISTORY + 6))
    assert store.stats()["purges"] == HISTORY + 5
