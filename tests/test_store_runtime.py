"""The store under real threads, its background purge, and os.fork()."""

import gc
import itertools
import os
import pickle
import random
import signal
import sys
import threading
import time
import weakref

import pytest

from lembro_wsgi import LembroStore
from lembro_wsgi.store import ENTRY_OVERHEAD
from tests.conftest import run_threads

DEADLINE = 5.0


def wait_for(condition, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def new_purge_threads(before):
    return [t for t in threading.enumerate() if t.name == "lembro-purge" and t not in before]


def stored_bytes(sessions):
    return sum(
        sys.getsizeof(pickle.dumps(data, pickle.HIGHEST_PROTOCOL)) + sys.getsizeof(sid) + ENTRY_OVERHEAD
        for sid, data in sessions.items()
    )


def test_eight_threads_hammering_overlapping_ids_stay_consistent():
    """Time moves by one tick at every clock reading, never backwards (``next`` on a count is atomic), so
    sessions left alone for 100 store calls expire whatever the scheduler does: no bet on real time."""
    ticks = itertools.count()
    frozen_at = []  # then frozen so the end state holds still
    store = LembroStore(
        interval=0.002, max_size="24K", timeout=0.01,
        clock=lambda: frozen_at[0] if frozen_at else next(ticks) * 1e-4,
    )

    def worker(seed):
        rng = random.Random(seed)
        for n in range(3000):
            sid = f"s{rng.randrange(200)}"
            op = rng.random()
            if op < 0.45:
                store.set(sid, {"n": n, "pad": "x" * rng.randrange(400)})
            elif op < 0.8:
                got = store.get(sid)
                assert got is None or set(got) == {"n", "pad"}
            elif op < 0.9:
                store.touch(sid)
            elif op < 0.97:
                store.destroy(sid)
            else:
                store.purge()

    errors = run_threads(worker)
    frozen_at.append(next(ticks) * 1e-4)
    store.close()
    assert errors == []
    stats = store.stats()
    assert stats["evictions"] > 0 and stats["purges"] > 0 and stats["expirations"] > 0
    everything = store.all()
    assert stats["sessions"] == len(everything) == len(store)
    assert 0 <= stats["bytes"] == stored_bytes(everything) <= 24 * 1024


def test_thread_counts_do_not_drift():
    store = LembroStore(interval=None, max_size="1G", timeout=None)

    def worker(seed):
        rng = random.Random(seed)
        for n in range(2000):
            sid = f"s{rng.randrange(40)}"
            if rng.random() < 0.6:
                store.set(sid, {"pad": "y" * rng.randrange(200)})
            else:
                store.destroy(sid)

    assert run_threads(worker) == []
    everything = store.all()
    assert store.stats()["sessions"] == len(everything) == len(store)
    assert store.stats()["bytes"] == stored_bytes(everything)


def test_background_purge_runs_without_any_access(clock):
    removed_by = []
    store = LembroStore(
        interval=0.01, timeout=5, clock=clock,
        on_evict=lambda sid, reason: removed_by.append((sid, reason, threading.current_thread().name)),
    )
    try:
        store.set("a", 1)
        clock.advance(5)
        assert wait_for(lambda: removed_by)
        assert removed_by == [("a", "expired", "lembro-purge")]
    finally:
        store.close()


def test_close_stops_the_background_thread():
    before = set(threading.enumerate())
    store = LembroStore(interval=0.01)
    threads = new_purge_threads(before)
    assert len(threads) == 1 and threads[0].daemon
    assert wait_for(lambda: store.stats()["purges"] >= 2)
    store.close()
    threads[0].join(DEADLINE)
    assert not threads[0].is_alive()
    purges = store.stats()["purges"]
    time.sleep(0.1)  # ten intervals: none may run after close()
    assert store.stats()["purges"] == purges


def test_no_background_thread_when_interval_is_none():
    before = set(threading.enumerate())
    store = LembroStore(interval=None)
    assert new_purge_threads(before) == []
    store.close()


def test_dropped_store_is_not_kept_alive_by_its_thread():
    before = set(threading.enumerate())
    store = LembroStore(interval=0.01)
    ref = weakref.ref(store)
    thread = new_purge_threads(before)[0]
    del store
    # The thread holds the store for the length of one purge: one may be running as the store is dropped.
    assert wait_for(lambda: gc.collect() >= 0 and ref() is None)
    thread.join(DEADLINE)
    assert not thread.is_alive()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # forking so is the point
def test_child_after_fork_has_working_lock_and_own_purge_schedule(clock):
    removed_by = []
    store = LembroStore(
        interval=0.01, timeout=5, clock=clock,
        on_evict=lambda sid, reason: removed_by.append(threading.current_thread().name),
    )
    store.set("parent", 1)
    stop = threading.Event()

    def writer():  # keeps the lock busy while we fork
        n = 0
        while not stop.is_set():
            store.set(f"w{n % 50}", n)
            n += 1

    hammer = threading.Thread(target=writer)
    hammer.start()
    try:
        for _ in range(10):
            pid = os.fork()
            if pid == 0:  # child: must not hang, must purge on its own
                signal.alarm(30)  # a deadlock kills it; a purge slower than DEADLINE fails it on its own
                ok = store.get("parent") == 1
                store.set("child", 2)
                removed_by.clear()
                store.touch("parent", 1)
                clock.advance(1)
                ok = ok and wait_for(lambda: "lembro-purge" in removed_by)
                ok = ok and store.get("parent") is None and store.get("child") == 2
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        stop.set()
        hammer.join()
        store.close()
    assert store.get("parent") == 1 and store.get("child") is None
