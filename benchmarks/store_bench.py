"""LembroStore against Beaker's memory backend, and the cost of purges and evictions.

    python benchmarks/store_bench.py            # full run (about a minute)
    python benchmarks/store_bench.py --quick    # smaller sizes

1. Mixed get/touch/set workload. Store ops (a session dict in, a private
   copy out): LembroStore against Beaker's memory backend as
   beaker.session.Session uses it (a manager per call, read/write locks,
   Session's pickle + base64), cachetools' TTLCache with pickling and a lock,
   and cachelib's SimpleCache. Then the namespace managers alone, as Session
   drives them, each given Beaker's serialized bytes.
2. Purge and eviction cost per removed session at 10k, 100k and 1M: a
   purge of 1,000 expired (memory latency: a heap of 1M does not fit in
   the CPU's caches), a purge of n/4, and going over the cap then down to
   75% (n/4 evicted, the write's chunk and the purge thread's).
3. The flood scenario (flood.py, also asserted by tests/test_store_flood.py):
   returning users kept by lembro's eviction order against plain
   nearest-expiry eviction (express-lembro's policy: sort every session by expiry
   on each overflow), with users coming back every 5 s and every 30 s.
"""

from __future__ import annotations

import argparse
import base64
import pickle
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable

from _common import interleaved, print_rates
from beaker.container import MemoryNamespaceManager
from beaker.util import PickleSerializer
from cachelib import SimpleCache
from cachetools import TTLCache
from flood import run_flood  # the sibling module: run as python benchmarks/store_bench.py

from lembro_wsgi import LembroNamespaceManager, LembroStore
from lembro_wsgi.store import ENTRY_OVERHEAD

_BEAKER_PICKLE = PickleSerializer()
SESSION = {"user_id": 1234, "name": "visitor", "cart": [1, 2, 3], "csrf": "t" * 40}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def mixed_workload(sessions: int, ops: int, seed: int = 7) -> list[tuple[str, str]]:
    """60% get, 25% touch, 15% set, over a fixed population of ids."""
    rng = random.Random(seed)
    kinds = rng.choices(["get", "touch", "set"], weights=[60, 25, 15], k=ops)
    return [(kind, f"sid-{rng.randrange(sessions)}") for kind in kinds]


def bench_mixed(sessions: int, ops: int, rounds: int) -> None:
    """Store ops (a session dict in, a private copy out) and namespace managers as Beaker drives them."""
    work = mixed_workload(sessions, ops)
    store = LembroStore(interval=None, max_size="1G")
    ttl: TTLCache = TTLCache(maxsize=sessions * 2, ttl=1800)
    ttl_lock = threading.Lock()
    simple = SimpleCache(threshold=sessions * 2, default_timeout=1800)
    MemoryNamespaceManager.namespaces.clear()
    payload = beaker_serialize(SESSION)  # what Beaker's Session hands its manager: pickled, base64
    for i in range(sessions):
        sid = f"sid-{i}"
        store.set(sid, SESSION)
        ttl[sid] = pickle.dumps(SESSION, pickle.HIGHEST_PROTOCOL)
        simple.set(sid, SESSION)
        beaker_save(MemoryNamespaceManager, sid, payload)
        beaker_save(LembroNamespaceManager, sid, payload, max_size="1G")

    def lembro() -> int:
        for kind, sid in work:
            if kind == "get":
                store.get(sid)
            elif kind == "touch":
                store.touch(sid)
            else:
                store.set(sid, SESSION)
        return len(work)

    def beaker_session_memory() -> int:  # Beaker has no touch: a read-only request saves the data again
        for kind, sid in work:
            if kind == "get":
                beaker_deserialize(beaker_load(MemoryNamespaceManager, sid))
            else:
                beaker_save(MemoryNamespaceManager, sid, beaker_serialize(SESSION))
        return len(work)

    def ttl_cache() -> int:  # cachetools: no touch either, so the value is set again
        for kind, sid in work:
            if kind == "get":
                with ttl_lock:
                    blob = ttl[sid]
                pickle.loads(blob)
            elif kind == "touch":
                with ttl_lock:
                    ttl[sid] = ttl[sid]
            else:
                blob = pickle.dumps(SESSION, pickle.HIGHEST_PROTOCOL)
                with ttl_lock:
                    ttl[sid] = blob
        return len(work)

    def simple_cache() -> int:  # cachelib pickles and locks itself; touch is a get and a set
        for kind, sid in work:
            if kind == "get":
                simple.get(sid)
            elif kind == "touch":
                simple.set(sid, simple.get(sid))
            else:
                simple.set(sid, SESSION)
        return len(work)

    rates = interleaved({
        "lembro LembroStore": lembro,
        "beaker memory, as Session drives it": beaker_session_memory,
        "cachetools TTLCache + pickle + lock": ttl_cache,
        "cachelib SimpleCache": simple_cache,
    }, rounds)
    print_rates(
        f"Store ops: a session dict in, a private copy out (60% get, 25% touch, 15% set, {sessions:,} sessions),"
        f" median of {rounds} interleaved rounds", rates, "beaker memory, as Session drives it",
    )

    def manager(cls: type, **options: object) -> Callable[[], int]:
        def run() -> int:
            for kind, sid in work:
                if kind == "get":
                    beaker_load(cls, sid, **options)
                else:
                    beaker_save(cls, sid, payload, **options)
            return len(work)
        return run

    rates = interleaved({
        "lembro LembroNamespaceManager": manager(LembroNamespaceManager, max_size="1G"),
        "beaker MemoryNamespaceManager": manager(MemoryNamespaceManager),
    }, rounds)
    print_rates(
        "Namespace managers as Session drives them (a manager per call, read lock around a load, write lock"
        " around a save), given Beaker's serialized bytes", rates, "beaker MemoryNamespaceManager",
    )
    store.close()


def beaker_serialize(data: dict) -> bytes:
    """What Beaker's Session stores for ``data`` without encryption (Session._encrypt_data)."""
    return base64.b64encode(_BEAKER_PICKLE.dumps(data))


def beaker_deserialize(value: bytes) -> dict:
    return _BEAKER_PICKLE.loads(base64.b64decode(value))


def beaker_load(cls: type, sid: str, **options: object) -> bytes:
    """Session.load's calls: a new manager, the read lock around one read."""
    namespace = cls(sid, data_dir=None, digest_filenames=False, **options)
    namespace.acquire_read_lock()
    try:
        return namespace["session"]
    finally:
        namespace.release_read_lock()


def beaker_save(cls: type, sid: str, value: bytes, **options: object) -> None:
    """Session.save's calls: a new manager, the write lock around one write."""
    namespace = cls(sid, data_dir=None, digest_filenames=False, **options)
    namespace.acquire_write_lock(replace=True)
    try:
        namespace["session"] = value
    finally:
        namespace.release_write_lock()


def bench_removal_cost(sizes: list[int], expired: int) -> None:
    """Purges that find ``expired`` sessions and n/4 among n, and the way down to 75% after going over a cap."""
    print(f"\nRemoval cost per session, median of 3: purges of {expired:,} and of n/4 expired sessions; going over "
          "the cap (the write, then the purge thread's way down to 75%: n/4 evicted)")
    print(f"  {'sessions':>10} {'purge ' + format(expired, ',') + ' us/removed':>24} {'purge n/4 us/removed':>21} "
          f"{'evict n/4 us/removed':>21}")
    for n in sizes:
        few_us, quarter_us, evict_us = [], [], []
        for _ in range(3):
            clock = FakeClock()
            store = LembroStore(interval=None, max_size="8G", timeout=100, clock=clock)
            for i in range(n):
                store.set(f"sid-{i}", {"n": i}, timeout=10 if i < expired else 20 if i < expired + n // 4 else None)
                if i % 2:
                    store.get(f"sid-{i}")
            for now, count, times in ((15.0, expired, few_us), (25.0, n // 4, quarter_us)):
                clock.now = now
                start = time.perf_counter()
                removed = store.purge()
                times.append((time.perf_counter() - start) / removed * 1e6)
                assert removed == count
            store.max_sessions = len(store)  # the next write crosses the cap, and the store comes down to 75%
            before = store.stats()["evictions"]
            start = time.perf_counter()
            store.set("trigger", {"n": 0})
            store.purge()
            evict_us.append((time.perf_counter() - start) / (store.stats()["evictions"] - before) * 1e6)
            store.close()
        print(f"  {n:>10,} {statistics.median(few_us):>24.2f} {statistics.median(quarter_us):>21.2f}"
              f" {statistics.median(evict_us):>21.2f}")


class NearestExpiryStore:
    """express-lembro's policy, for comparison: on overflow sort every session by expiry, evict to 75%."""

    def __init__(self, max_size: int, timeout: float, clock: FakeClock) -> None:
        self.max_size, self.timeout, self.clock = max_size, timeout, clock
        self.entries: dict[str, tuple[bytes, float]] = {}
        self.bytes = 0

    def set(self, sid: str, data: dict) -> None:
        blob = pickle.dumps(data, pickle.HIGHEST_PROTOCOL)
        old = self.entries.get(sid)
        self.bytes += self.size(sid, blob) - (self.size(sid, old[0]) if old else 0)
        self.entries[sid] = (blob, self.clock() + self.timeout)
        if self.bytes > self.max_size:
            for victim, (victim_blob, _) in sorted(self.entries.items(), key=lambda item: item[1][1]):
                if self.bytes <= self.max_size * 0.75:
                    break
                del self.entries[victim]
                self.bytes -= self.size(victim, victim_blob)

    @staticmethod
    def size(sid: str, blob: bytes) -> int:
        """The same accounting as LembroStore, so both hold the same sessions under the cap."""
        return sys.getsizeof(blob) + sys.getsizeof(sid) + ENTRY_OVERHEAD

    def get(self, sid: str) -> dict | None:
        entry = self.entries.get(sid)
        return None if entry is None else pickle.loads(entry[0])

    def touch(self, sid: str) -> None:
        blob, _ = self.entries[sid]
        self.entries[sid] = (blob, self.clock() + self.timeout)


def bench_flood() -> None:
    cap = 512 * 1024
    print("\nFlood: 500 returning users among one-shot clients writing 10x a 512K cap (tests/test_store_flood.py)")
    for revisit_every in (5, 30):
        for name, build in (
            ("lembro (never-read-back first)", lambda clock: LembroStore(None, cap, timeout=1800, clock=clock)),
            ("nearest-expiry (express-lembro)", lambda clock: NearestExpiryStore(cap, 1800, clock)),
        ):
            clock = FakeClock()
            kept = run_flood(build(clock), clock.advance, cap, revisit_every=revisit_every)
            print(f"  users back every {revisit_every:>2} s  {name:<34} returning users kept {kept:7.1%}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}")
    bench_mixed(sessions=10_000, ops=50_000 if not args.quick else 10_000, rounds=7 if not args.quick else 3)
    bench_removal_cost([10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000], expired=1_000)
    bench_flood()


if __name__ == "__main__":
    main()
