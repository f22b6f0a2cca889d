"""NamedLocks: one lock per name for every taker, a table that stays small, exclusion kept while it is pruned."""

import gc
import sys
import threading

import pytest

from lembro_wsgi import LembroNamespaceManager, LembroStore
from lembro_wsgi.locks import NamedLocks
from lembro_wsgi.namespace import write_locks
from tests.conftest import run_threads


def test_one_name_one_lock_and_reentrant():
    locks = NamedLocks()
    first = locks.acquire("a")
    assert locks.acquire("a") is first  # the same thread again: reentrant
    got = []
    thread = threading.Thread(target=lambda: got.append((locks.acquire("a", wait=False), locks.acquire("b", False))))
    thread.start()
    thread.join()
    assert got[0][0] is None and got[0][1] is not None
    first.release()
    first.release()


def test_table_stays_bounded_under_a_flood_of_names():
    locks = NamedLocks(floor=64)
    for i in range(20_000):
        locks.acquire(f"sid-{i}").release()
    assert len(locks) <= 128


def test_a_lock_held_by_the_pruning_thread_is_not_dropped():
    locks = NamedLocks(floor=8)
    held = locks.acquire("mine")
    for i in range(100):  # this thread's own takes prune the table, while it holds "mine"
        locks.acquire(f"other-{i}").release()
    got = []
    thread = threading.Thread(target=lambda: got.append(locks.acquire("mine", wait=False)))
    thread.start()
    thread.join()
    assert got == [None]
    held.release()


def test_exclusion_holds_while_other_threads_prune():
    locks = NamedLocks(floor=4)
    inside: dict[str, int] = {}
    counts = {name: 0 for name in ("a", "b", "c")}
    overlaps = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, inside the locks too
    try:
        def worker(n):
            for i in range(1500):
                name = "abc"[i % 3]
                lock = locks.acquire(name)
                inside[name] = inside.get(name, 0) + 1
                if inside[name] != 1:
                    overlaps.append(name)
                value = counts[name]
                locks.acquire(f"unique-{n}-{i}").release()  # keeps the table over its limit: prunes all along
                counts[name] = value + 1
                inside[name] -= 1
                lock.release()

        assert run_threads(worker, count=6) == []
    finally:
        sys.setswitchinterval(interval)
    assert overlaps == []
    assert counts == {"a": 3000, "b": 3000, "c": 3000}


def test_beaker_managers_for_many_sessions_do_not_grow_the_lock_table():
    store = LembroStore(interval=None, max_size="64M")
    for i in range(30_000):  # Beaker builds a manager per session id per request
        manager = LembroNamespaceManager(f"{i:032x}", store=store)
        assert manager.acquire_write_lock(replace=True)
        manager["session"] = b"x"
        manager.release_write_lock()
    assert len(write_locks) <= 2 * write_locks.floor


def test_a_release_from_a_thread_that_does_not_hold_the_lock_raises_and_forgets_nothing():
    store = LembroStore(interval=None, max_size="64M")
    holder = LembroNamespaceManager("released-by-the-wrong-thread", store=store)
    creation = holder.get_creation_lock("key")
    assert holder.acquire_write_lock() and creation.acquire()
    errors: list[BaseException] = []

    def release_both() -> None:
        for release in (holder.release_write_lock, creation.release):
            try:
                release()
            except RuntimeError as exc:
                errors.append(exc)

    thread = threading.Thread(target=release_both)
    thread.start()
    thread.join()
    assert len(errors) == 2  # neither lock was the other thread's to release
    holder.release_write_lock()  # the holder still can: nothing was forgotten
    creation.release()
    other = LembroNamespaceManager("released-by-the-wrong-thread", store=store)
    taken: list[bool] = []

    def take_and_release() -> None:
        taken.append(other.acquire_write_lock(wait=False))
        other.release_write_lock()

    thread = threading.Thread(target=take_and_release)
    thread.start()
    thread.join()
    assert taken == [True]


def test_pruning_survives_names_added_while_it_runs():
    """A garbage collection during the prune may run a finalizer, and with it another thread, that takes a new
    name; the prune used to fail then ("dictionary changed size"), in a thread that may hold other locks.

    Up to Python 3.11 a collection runs inside whichever allocation crosses the threshold, the snapshot's own
    included; since 3.12 it runs between bytecodes, after an allocation asked for it, and the prune's loop
    allocates nothing, so with plain names no collection fell inside the prune (on 3.13 the finalizers did
    not run at all before this test looked). Here every lookup of a name allocates (as a key's ``__hash__``
    may), so collections, and the finalizers with them, fall inside the prune on every version."""
    locks = NamedLocks(floor=5000)
    added = []
    kept = []  # allocations that live on, so each one counts toward the next collection

    class Name(str):
        __slots__ = ()

        def __hash__(self) -> int:
            kept.append([])
            return str.__hash__(self)

    class Garbage:
        def __init__(self) -> None:
            self.cycle = self  # freed by the collector only

        def __del__(self) -> None:
            if len(added) < 200:
                lock = locks.acquire(f"from-a-finalizer-{len(added)}")  # what another thread may do meanwhile
                lock.release()
                added.append(locks._pruning.locked())  # True: a prune was running
                Garbage()  # garbage for the next collection: the collections never run out of finalizers

    for i in range(5000):
        locks.acquire(Name(f"name-{i}")).release()
    thresholds = gc.get_threshold()
    gc.collect()
    kept.clear()
    gc.set_threshold(1)  # collect on (nearly) every allocation, as a busy process may
    try:
        Garbage()
        locks.acquire("one name too many").release()  # the table is full: it prunes
    finally:
        gc.set_threshold(*thresholds)
    assert True in added  # finalizers ran, and added names, while the prune ran
    assert len(locks) < 5000


def test_a_lock_its_taker_re_entered_is_kept_through_a_prune_until_the_last_release():
    locks = NamedLocks(floor=8)
    held = locks.acquire("mine")
    assert locks.acquire("mine") is held
    held.release()  # still held once
    for i in range(100):  # this thread's own takes prune the table
        locks.acquire(f"other-{i}").release()
    got: list = []

    def try_it():
        lock = locks.acquire("mine", wait=False)
        got.append(lock)
        if lock is not None:
            lock.release()

    thread = threading.Thread(target=try_it)
    thread.start()
    thread.join()
    held.release()
    with pytest.raises(RuntimeError):
        held.release()  # one release too many
    thread = threading.Thread(target=try_it)
    thread.start()
    thread.join()
    assert got[0] is None and got[1] is held  # never dropped: the other thread found the very same lock
