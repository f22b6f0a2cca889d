"""How long a concurrent read waits while a store evicts and purges, at 100k and 1M sessions.

    python benchmarks/pauses.py                  # 100k and 1M sessions (about 3 GB of memory)
    python benchmarks/pauses.py --sizes 100000   # 100k only
    python benchmarks/pauses.py --against DIR    # also a checkout of another version, side by side

A store holds n sessions of about 550 bytes at its byte cap, half of them
returning (read back once). One thread reads returning sessions in a loop
and times each call, while the main thread (1) writes one new session that
takes the store over its cap, then lets the store come down to its
low-water mark (the purge thread's work, run here by ``purge()``), and (2)
after every session expires on a fake clock, runs ``purge()``. It prints
the time of the main thread's call and the worst wait of a concurrent read
during each phase. The goal is a worst read of at most 20 ms at any size.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import sys
import threading
import time
from pathlib import Path

DATA = {"user": 1234, "csrf": "t" * 40, "cart": list(range(60)), "pad": "x" * 200}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Reader(threading.Thread):
    """Reads returning sessions in a loop; the worst single call while ``measuring`` is set."""

    def __init__(self, store: object, ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.store, self.ids = store, ids
        self.measuring = threading.Event()
        self.done = threading.Event()
        self.worst = 0.0
        self.reads = 0

    def run(self) -> None:
        get, ids, clock = self.store.get, self.ids, time.perf_counter
        i = 0
        while not self.done.is_set():
            start = clock()
            get(ids[i % len(ids)])
            took = clock() - start
            if self.measuring.is_set():
                self.worst = max(self.worst, took)
                self.reads += 1
            i += 1

    def phase(self, work: object) -> tuple[float, float, int]:
        """Run ``work()`` while measuring: (its seconds, the worst read's seconds, reads done meanwhile)."""
        self.worst, self.reads = 0.0, 0
        self.measuring.set()
        time.sleep(0.05)  # the reader is in its loop
        start = time.perf_counter()
        work()
        took = time.perf_counter() - start
        time.sleep(0.05)
        self.measuring.clear()
        return took, self.worst, self.reads


def measure(store_module: object, n: int) -> dict[str, float]:
    clock = FakeClock()
    probe = store_module.LembroStore(interval=None, max_size="1G", clock=clock)
    probe.set(f"sid-{0:039d}", DATA)  # an id as long as the others
    size = probe.stats()["bytes"]
    probe.close()
    store = store_module.LembroStore(interval=None, max_size=size * n, timeout=1800, clock=clock)
    ids = [f"sid-{i:039d}" for i in range(n)]
    for i, sid in enumerate(ids):
        store.set(sid, DATA)
        if i % 2:
            store.get(sid)  # returning
    returning = ids[1::2]
    gc.collect()
    gc.freeze()
    reader = Reader(store, returning)
    reader.start()

    over = reader.phase(lambda: store.set("sid-the-write-over-the-cap-000000000000", DATA))
    down = reader.phase(store.purge)
    clock.now += 3600
    purge = reader.phase(store.purge)
    reader.done.set()
    reader.join()
    store.close()
    gc.unfreeze()
    return {"write": over[0], "write_read": over[1], "drain": down[0], "drain_read": down[1],
            "purge": purge[0], "purge_read": purge[1]}


def load(path: str | None) -> object:
    if path is not None:
        sys.path.insert(0, str(Path(path).resolve()))
    for name in [m for m in sys.modules if m == "lembro_wsgi" or m.startswith("lembro_wsgi.")]:
        del sys.modules[name]
    module = importlib.import_module("lembro_wsgi.store")
    if path is not None:
        sys.path.pop(0)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs per version; medians are shown")
    parser.add_argument("--against", help="a checkout of another lembro_wsgi version, measured in turn")
    options = parser.parse_args()
    versions = {"this": None} | ({"against": options.against} if options.against else {})
    print(f"{'version':<8} {'sessions':>9} {'write ms':>9} {'read ms':>8} {'drain ms':>9} {'read ms':>8} "
          f"{'purge ms':>9} {'read ms':>8}   (read: the worst concurrent read; medians of {options.runs})")
    for n in options.sizes:
        results: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
        for _ in range(options.runs):
            for name, path in versions.items():
                results[name].append(measure(load(path), n))
        for name, runs in results.items():
            med = {key: statistics.median(run[key] for run in runs) * 1000 for key in runs[0]}
            print(f"{name:<8} {n:>9,} {med['write']:>9.1f} {med['write_read']:>8.1f} {med['drain']:>9.1f} "
                  f"{med['drain_read']:>8.1f} {med['purge']:>9.1f} {med['purge_read']:>8.1f}")


if __name__ == "__main__":
    main()
