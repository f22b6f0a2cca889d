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

A taken lock is a plain reentrant lock, released directly. When the table
outgrows its limit, the locks nobody holds are dropped from it (a lock is only
dropped by a thread that holds it at that moment, and a taker checks after
acquiring that its lock is still the name's, so two threads never hold two
locks for one name). ``reset()`` is for a child after fork(): it starts with an
empty table, so it never waits on a lock that a parent's thread held.
"""

from __future__ import annotations

import _thread
import threading
from collections.abc import Hashable
from typing import Any

_RLock = _thread.RLock  # threading.RLock is a Python function in front of it


class NamedLocks:
    """A table of reentrant locks by name; ``floor`` is the size below which it is never pruned."""

    __slots__ = ("_limit", "_pruning", "_table", "floor")

    def __init__(self, floor: int = 1024) -> None:
        self.floor = floor
        self.reset()

    def acquire(self, name: Hashable, wait: bool = True) -> Any:
        """The lock of ``name``, taken (waiting for it unless ``wait`` is false); None if it was not taken."""
        while True:
            lock = self._table.get(name)
            if lock is None:
                if len(self._table) >= self._limit:
                    self._prune()
                lock = self._table.setdefault(name, _RLock())
            if not lock.acquire(wait):
                return None
            if self._table.get(name) is lock:
                return lock
            lock.release()  # pruned while we waited: take the name's new lock instead

    def _prune(self) -> None:
        """Drop the locks no thread holds; one thread prunes at a time, the others go on without waiting."""
        if not self._pruning.acquire(False):
            return
        try:
            table = self._table
            # A copy, not list(table.items()): that allocates a tuple per item, a garbage collection among
            # them can run finalizers and let a thread add a name, and the iteration would fail.
            for name, lock in table.copy().items():
                if not lock._is_owned() and lock.acquire(False):  # held by nobody, this thread included
                    if table.get(name) is lock:
                        del table[name]
                    lock.release()
            self._limit = max(self.floor, 2 * len(table))
        finally:
            self._pruning.release()

    def __len__(self) -> int:
        """Names in the table: those held or waited on, and recently used ones not yet pruned."""
        return len(self._table)

    def reset(self) -> None:
        """Forget every lock (a child after fork(): no thread that held one came with it)."""
        self._table: dict[Hashable, Any] = {}
        self._pruning = threading.Lock()
        self._limit = self.floor
