"""NamedLocks: reentrant locks by name, found rather than made on every request, in a table that stays small.

Beaker builds a namespace manager per session id on every request, so the lock
of a namespace is looked up by name each time, and a table of them must not
grow with every id ever seen::

    locks = NamedLocks()
    lock = locks.acquire("session-id")   # None if wait=False and another thread holds it
    try:
        ...
    finally:
        lock.release()

A taken lock is a reentrant ``NamedLock``, released directly; a release from a
thread that does not hold it raises RuntimeError, as with threading.RLock.
When the table outgrows its limit, the locks nobody holds are dropped from it
(a lock is only dropped by a thread that holds it at that moment, and a taker
checks after acquiring that its lock is still the name's, so two threads never
hold two locks for one name). ``reset()`` is for a child after fork(): it
starts with an empty table, so it never waits on a lock that a parent's thread
held.
"""

from __future__ import annotations

import threading
from _thread import allocate_lock, get_ident
from collections.abc import Hashable


class NamedLock:
    """A reentrant lock that keeps its owner where the prune can see it (``RLock`` keeps it private).

    Underneath is a plain, non-reentrant lock, taken once by the owner however often the owner re-enters,
    so ``acquire(False)`` on it fails while anyone holds the lock, the thread that tries included: that is
    how a prune tells a lock nobody holds from one its own thread holds.
    """

    __slots__ = ("_lock", "_reentries", "owner")

    def __init__(self, owner: int | None = None) -> None:
        """A free lock; or, given a thread's ident, one that thread holds already."""
        self._lock = lock = allocate_lock()
        self.owner = owner  # the holder's thread ident, None when free; written only by the holder
        self._reentries = 0  # acquires by the owner beyond its first
        if owner is not None:
            lock.acquire()

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock (again, if this thread holds it); False if ``wait`` is false and another thread holds it."""
        me = get_ident()
        if self.owner == me:
            self._reentries += 1
            return True
        if not self._lock.acquire(wait):
            return False
        self.owner = me
        return True

    def release(self) -> None:
        """Undo one ``acquire`` of this thread's; RuntimeError from a thread that does not hold the lock."""
        if self.owner != get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        if self._reentries:
            self._reentries -= 1
            return
        self.owner = None
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class NamedLocks:
    """A table of reentrant locks by name; ``floor`` is the size below which it is never pruned."""

    __slots__ = ("_limit", "_pruning", "_table", "floor")

    def __init__(self, floor: int = 1024) -> None:
        self.floor = floor
        self.reset()

    def acquire(self, name: Hashable, wait: bool = True) -> NamedLock | None:
        """The lock of ``name``, taken (waiting for it unless ``wait`` is false); None if it was not taken."""
        me = get_ident()
        while True:
            lock = self._table.get(name)
            if lock is None:
                if len(self._table) >= self._limit:
                    self._prune()
                new = NamedLock(me)  # taken as it is made: no prune can drop it once it is in the table
                lock = self._table.setdefault(name, new)
                if lock is new:
                    return new
            if lock.owner == me:  # this thread holds it, so no prune could drop it: NamedLock.acquire, inlined
                lock._reentries += 1
                return lock
            if not lock._lock.acquire(wait):
                return None
            if self._table.get(name) is lock:
                lock.owner = me
                return lock
            lock._lock.release()  # pruned while we waited: take the name's new lock instead

    def _prune(self) -> None:
        """Drop the locks no thread holds; one thread prunes at a time, the others go on without waiting."""
        if not self._pruning.acquire(False):
            return
        try:
            table = self._table
            # A copy, not list(table.items()): that allocates a tuple per item, and before Python 3.12 a garbage
            # collection among them could run finalizers and let a thread add a name mid-iteration (an error).
            for name, lock in table.copy().items():
                if lock._lock.acquire(False):  # held by nobody, this thread included (the lock underneath
                    if table.get(name) is lock:  # is not reentrant)
                        del table[name]
                    lock._lock.release()
            self._limit = max(self.floor, 2 * len(table))
        finally:
            self._pruning.release()

    def __len__(self) -> int:
        """Names in the table: those held or waited on, and recently used ones not yet pruned."""
        return len(self._table)

    def reset(self) -> None:
        """Forget every lock (a child after fork(): no thread that held one came with it)."""
        self._table: dict[Hashable, NamedLock] = {}
        self._pruning = threading.Lock()
        self._limit = self.floor
