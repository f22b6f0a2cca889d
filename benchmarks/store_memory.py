"""Reported bytes against the memory the store really holds, measured with tracemalloc.

    python benchmarks/store_memory.py

For sessions of about 100 B, 1 KB and 10 KB of data, writes 5,000 sessions
(ids made inside the measured region, as they arrive with requests) and
prints stats()['bytes'] divided by what tracemalloc saw allocated and kept.
1.00 means the reported bytes are the memory the store really holds.
"""

from __future__ import annotations

import gc
import secrets
import tracemalloc

from lembro_wsgi import LembroStore

SESSIONS = 5_000


def measure(payload: int) -> tuple[int, int]:
    store = LembroStore(interval=None, max_size="1G")
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(SESSIONS):
        sid = secrets.token_urlsafe(24)
        store.set(sid, {"user_id": i, "data": "p" * payload})
        if i % 2:
            store.get(sid)
    gc.collect()
    real = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    reported = store.stats()["bytes"]
    store.close()
    return reported, real


def main() -> None:
    print(f"{'payload':>8} {'reported B/session':>19} {'tracemalloc B/session':>22} {'ratio':>6}")
    for payload in (100, 1_000, 10_000):
        reported, real = measure(payload)
        print(f"{payload:>8,} {reported / SESSIONS:>19.0f} {real / SESSIONS:>22.0f} {reported / real:>6.3f}")


if __name__ == "__main__":
    main()
