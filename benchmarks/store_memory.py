"""Reported bytes against the memory the store really holds, measured with tracemalloc.

    python benchmarks/store_memory.py

For sessions of about 100 B, 1 KB and 10 KB of data, writes 5,000 sessions
(ids made inside the measured region, as they arrive with requests) and
prints stats()['bytes'] divided by what tracemalloc saw allocated and kept.
1.00 means the reported bytes are the memory the store really holds.

    python benchmarks/store_memory.py --owners

does the same with an owner per session (its worst case for memory: one
session per owner, each owner's text made as it arrives with its request),
which is how OWNER_OVERHEAD is measured.
"""

from __future__ import annotations

import gc
import secrets
import sys
import tracemalloc

from lembro_wsgi import LembroStore

SESSIONS = 5_000


def measure(payload: int, owners: bool = False) -> tuple[int, int]:
    store = LembroStore(interval=None, max_size="1G")
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(SESSIONS):
        sid = secrets.token_urlsafe(24)
        store.set(sid, {"user_id": i, "data": "p" * payload}, owner=f"user-{i}" if owners else None)
        if i % 2:
            store.get(sid)
    gc.collect()
    real = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    reported = store.stats()["bytes"]
    store.close()
    return reported, real


def main() -> None:
    owners = "--owners" in sys.argv[1:]
    print(f"{'payload':>8} {'reported B/session':>19} {'tracemalloc B/session':>22} {'ratio':>6}")
    for payload in (100, 1_000, 10_000):
        reported, real = measure(payload, owners)
        print(f"{payload:>8,} {reported / SESSIONS:>19.0f} {real / SESSIONS:>22.0f} {reported / real:>6.3f}")


if __name__ == "__main__":
    main()
