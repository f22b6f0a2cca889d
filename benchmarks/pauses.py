"""How long a concurrent read waits while a store evicts and purges, at 100k and 1M sessions.

    python benchmarks/pauses.py                  # 100k and 1M sessions (about 3 GB of memory)
    python benchmarks/pauses.py --sizes 100000   # 100k only
    python benchmarks/pauses.py --against DIR    # also a checkout of another lembro_wsgi, side by side

A store holds n sessions of about 550 bytes at its byte cap, half of them
returning (read back once). One thread reads returning sessions in a loop
and times each call, while the main thread (1) writes one new session that
takes the store over its cap, then lets the store come down to its
low-water mark (the purge thread's work, run here by ``purge()``), and (2)
after every session expires on a fake clock, purges. It prints the time of
the main thread's call and the worst and 99.9th percentile wait of a
concurrent read during each phase, medians of interleaved runs.

The peer is ``cachetools.TTLCache`` behind a lock, holding pickles and
capped by their total length: it evicts one entry per write over its cap,
and has nothing to come down to, but its ``expire()`` removes everything
expired in one call.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import pickle
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cachetools

DATA = {"user": 1234, "csrf": "t" * 40, "cart": list(range(60)), "pad": "x" * 200}
PHASES = ("write", "drain", "purge")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class LockedTTLCache:
    """cachetools.TTLCache as a session store: pickled values, one lock, capped by the pickles' length."""

    def __init__(self, max_size: int, timeout: float, clock: FakeClock) -> None:
        self.cache = cachetools.TTLCache(max_size, timeout, timer=clock, getsizeof=len)
        self.lock = threading.Lock()

    def set(self, sid: str, data: Any) -> None:
        blob = pickle.dumps(data, pickle.HIGHEST_PROTOCOL)
        with self.lock:
            self.cache[sid] = blob

    def get(self, sid: str) -> Any:
        with self.lock:
            blob = self.cache.get(sid)
        return None if blob is None else pickle.loads(blob)

    def purge(self) -> None:
        with self.lock:
            self.cache.expire()


class Reader(threading.Thread):
    """Reads returning sessions in a loop, timing each call while ``measuring`` is set."""

    def __init__(self, store: Any, ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.store, self.ids = store, ids
        self.measuring = threading.Event()
        self.done = threading.Event()
        self.times: list[float] = []

    def run(self) -> None:
        get, ids, clock, times = self.store.get, self.ids, time.perf_counter, self.times
        i = 0
        while not self.done.is_set():
            start = clock()
            get(ids[i % len(ids)])
            took = clock() - start
            if self.measuring.is_set():
                times.append(took)
            i += 1

    def phase(self, work: Callable[[], object]) -> tuple[float, float, float]:
        """Run ``work()`` while timing reads: its seconds, and the worst and 99.9th percentile read's."""
        self.times.clear()
        self.measuring.set()
        time.sleep(0.05)  # the reader is in its loop
        start = time.perf_counter()
        work()
        took = time.perf_counter() - start
        time.sleep(0.05)
        self.measuring.clear()
        times = sorted(self.times)
        return took, times[-1], times[int(len(times) * 0.999)]


def lembro(store_module: Any) -> Callable[[int, FakeClock], Any]:
    def build(n: int, clock: FakeClock) -> Any:
        probe = store_module.LembroStore(interval=None, max_size="1G", clock=clock)
        probe.set(f"sid-{0:039d}", DATA)  # an id as long as the others
        size = probe.stats()["bytes"]
        probe.close()
        return store_module.LembroStore(interval=None, max_size=size * n, timeout=1800, clock=clock)
    return build


def ttlcache(n: int, clock: FakeClock) -> LockedTTLCache:
    return LockedTTLCache(len(pickle.dumps(DATA, pickle.HIGHEST_PROTOCOL)) * n, 1800, clock)


def measure(build: Callable[[int, FakeClock], Any], n: int) -> dict[str, tuple[float, float, float]]:
    clock = FakeClock()
    store = build(n, clock)
    ids = [f"sid-{i:039d}" for i in range(n)]
    for i, sid in enumerate(ids):
        store.set(sid, DATA)
        if i % 2:
            store.get(sid)  # returning
    gc.collect()
    gc.freeze()
    reader = Reader(store, ids[1::2])
    reader.start()
    results = {"write": reader.phase(lambda: store.set("sid-the-write-over-the-cap-000000000000", DATA))}
    results["drain"] = reader.phase(store.purge)  # lembro: what the purge thread does after going over
    clock.now += 3600
    results["purge"] = reader.phase(store.purge)
    reader.done.set()
    reader.join()
    if hasattr(store, "close"):
        store.close()
    gc.unfreeze()
    return results


def load(path: str) -> Any:
    """lembro_wsgi.store from the checkout at ``path`` (this one, or another version to compare)."""
    sys.path.insert(0, str(Path(path).resolve()))
    for name in [m for m in sys.modules if m == "lembro_wsgi" or m.startswith("lembro_wsgi.")]:
        del sys.modules[name]
    module = importlib.import_module("lembro_wsgi.store")
    sys.path.pop(0)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs per contender; medians are shown")
    parser.add_argument("--against", help="a checkout of another lembro_wsgi version, measured in turn")
    options = parser.parse_args()
    contenders = {"LembroStore": lembro(load(str(Path(__file__).resolve().parent.parent)))}
    if options.against:
        contenders["LembroStore (--against)"] = lembro(load(options.against))
    contenders["cachetools.TTLCache"] = ttlcache
    print(f"Milliseconds: each phase's call, and the worst and 99.9th percentile concurrent read during it "
          f"(medians of {options.runs} interleaved runs)")
    print(f"{'contender':<24} {'sessions':>9} " + " ".join(
        f"{phase + ' call':>11} {'worst':>6} {'p99.9':>6}" for phase in PHASES))
    for n in options.sizes:
        results: dict[str, list[dict[str, tuple[float, float, float]]]] = {name: [] for name in contenders}
        for _ in range(options.runs):
            for name, build in contenders.items():
                results[name].append(measure(build, n))
                gc.collect()  # the store measured is gone
        for name, runs in results.items():
            cells = []
            for phase in PHASES:
                med = [statistics.median(run[phase][k] for run in runs) * 1000 for k in range(3)]
                cells.append(f"{med[0]:>11.1f} {med[1]:>6.1f} {med[2]:>6.2f}")
            print(f"{name:<24} {n:>9,} " + " ".join(cells))


if __name__ == "__main__":
    main()
