"""Real users survive a flood of one-shot clients; reported bytes track real memory."""

import gc
import secrets
import tracemalloc

import pytest

from lembro_wsgi import LembroStore

CAP = 512 * 1024


def test_returning_sessions_survive_a_flood_ten_times_the_cap(make_store, clock):
    store = make_store(max_size=CAP, timeout=1800)
    returning = [f"user-{i}" for i in range(500)]
    for sid in returning:
        store.set(sid, {"user": sid, "prefs": "r" * 300})
    for sid in returning:
        assert store.get(sid) is not None  # established users: they have come back once

    bot = {"ua": "crawler", "pad": "b" * 300}
    with LembroStore(interval=None) as scratch:
        scratch.set("bot-00000", bot)
        bot_bytes = scratch.stats()["bytes"]
    n, visit = 0, 0
    while n * bot_bytes < 10 * CAP:
        for _ in range(90):  # one-shot clients this simulated second
            store.set(f"bot-{n:05d}", bot)
            n += 1
        for _ in range(17):  # each returning user comes back about every 30 s
            sid = returning[visit % len(returning)]
            data = store.get(sid)
            if data is not None:
                store.touch(sid)
            visit += 1
        clock.advance(1)

    stats = store.stats()
    assert stats["evictions"] > n * 0.8
    assert stats["bytes"] <= CAP
    alive = store.all()
    kept = sum(sid in alive for sid in returning)
    assert kept >= 0.99 * len(returning), kept


@pytest.mark.parametrize("payload", [100, 1000, 10_000])
def test_reported_bytes_within_25_percent_of_real_memory(payload):
    store = LembroStore(interval=None, max_size="1G")
    sessions = 2000
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(sessions):
            sid = secrets.token_urlsafe(24)  # ids arrive with requests: the store keeps them
            store.set(sid, {"user_id": 12345, "data": "p" * payload})
            store.get(sid)
        del sid
        gc.collect()
        real = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    reported = store.stats()["bytes"]
    assert 0.75 <= reported / real <= 1.25, (reported, real)
