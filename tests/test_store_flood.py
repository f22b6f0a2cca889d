"""Real users survive a flood of one-shot clients; reported bytes track real memory."""

import gc
import importlib.util
import secrets
import tracemalloc
from pathlib import Path

import pytest

from lembro_wsgi import LembroStore

CAP = 512 * 1024


def load_flood():
    """The scenario benchmarks/store_bench.py also runs, so test and benchmark measure one thing."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "flood.py"
    spec = importlib.util.spec_from_file_location("flood", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


flood = load_flood()


@pytest.mark.parametrize("revisit_every", [5, 30])
def test_returning_sessions_survive_a_flood_ten_times_the_cap(make_store, clock, revisit_every):
    store = make_store(max_size=CAP, timeout=1800)
    kept = flood.run_flood(store, clock.advance, CAP, revisit_every=revisit_every)
    stats = store.stats()
    assert stats["evictions"] > 5000 and stats["bytes"] <= CAP
    assert kept >= 0.99, kept


@pytest.mark.parametrize("payload", [100, 1000, 10_000])
def test_reported_bytes_within_5_percent_of_real_memory(payload):
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
    assert 0.95 <= reported / real <= 1.05, (reported, real)  # benchmarks/store_memory.py measures ~1.00
