"""LembroNamespaceManager: the ``lembro`` backend for Beaker sessions and caches.

Installed with this package, it is registered under Beaker's
``beaker.backends`` entry point, so configuration alone selects it::

    session.type = lembro
    session.max_size = 4M
    session.interval = 60

    cache.type = lembro

Each Beaker namespace key is one store entry, with the id ``(namespace, key)``,
so every cached value and every session expires and is evicted on its own.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from beaker.container import NamespaceManager
from beaker.synchronization import NameLock

from .options import parse_seconds
from .registry import get_store
from .store import LembroStore

_access_locks: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_access_locks_guard = threading.Lock()


def access_lock(namespace: str) -> Any:
    """The reentrant lock every manager of ``namespace`` in this process shares while one is alive."""
    lock = _access_locks.get(namespace)
    if lock is None:
        with _access_locks_guard:
            lock = _access_locks.get(namespace)
            if lock is None:
                lock = _access_locks[namespace] = threading.RLock()
    return lock


def _fresh_locks_after_fork() -> None:
    """A child process starts with no lock held by a parent's thread that it does not have."""
    global _access_locks_guard
    _access_locks_guard = threading.Lock()
    _access_locks.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_locks_after_fork)


class LembroNamespaceManager(NamespaceManager):
    """A Beaker namespace kept in a shared, bounded LembroStore.

    ``interval``, ``max_size`` and ``max_sessions`` pick the store (see
    ``registry.get_store``) unless ``store`` is given; ``timeout`` is the
    lifetime of what is written (Beaker forwards its session timeout + 120 s),
    ``None`` for the store's default. Other Beaker options (``data_dir``,
    ``lock_dir``, ...) mean nothing in memory and are ignored.
    """

    def __init__(
        self,
        namespace: str,
        interval: float | str | None = 60,
        max_size: int | str = "1M",
        max_sessions: int | str | None = None,
        timeout: float | str | None = None,
        store: LembroStore | None = None,
        **beaker_options: Any,
    ) -> None:
        super().__init__(namespace)
        self.timeout = parse_seconds(timeout, "timeout", allow_none=True)
        self.store = store if store is not None else get_store(interval, max_size, max_sessions)

    @property
    def access_lock(self) -> Any:
        """The namespace's lock, found on first use: a manager that is never locked costs no lock."""
        lock = self.__dict__.get("_access_lock")
        if lock is None:
            lock = self.__dict__["_access_lock"] = access_lock(self.namespace)
        return lock

    def _sid(self, key: Any) -> tuple:
        return (self.namespace, key)

    def get_creation_lock(self, key: Any) -> NameLock:
        return NameLock(identifier=f"lembro/funclock/{self.namespace}/{key}", reentrant=True)

    def acquire_read_lock(self) -> None:
        """Reads and writes of one namespace share one reentrant lock: each holds it for a dict lookup."""
        self.access_lock.acquire()

    def release_read_lock(self) -> None:
        self.access_lock.release()

    def acquire_write_lock(self, wait: bool = True, replace: bool = False) -> bool:
        return self.access_lock.acquire(blocking=wait)

    def release_write_lock(self) -> None:
        self.access_lock.release()

    def __getitem__(self, key: Any) -> Any:
        value = self.store.get(self._sid(key))
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: Any) -> bool:
        return self._sid(key) in self.store

    def __setitem__(self, key: str, value: Any) -> None:
        self.store.set(self._sid(key), value, self.timeout)

    def set_value(self, key: str, value: Any, expiretime: float | None = None) -> None:
        """Store ``value``; a cache's ``expiretime`` (seconds) overrides the session lifetime."""
        self.store.set(self._sid(key), value, expiretime or self.timeout)

    def touch(self, key: Any) -> bool:
        """Restart the idle timer of ``key`` without rewriting it (lembro's own addition)."""
        return self.store.touch(self._sid(key), self.timeout)

    def __delitem__(self, key: Any) -> None:
        if not self.store.destroy(self._sid(key)):
            raise KeyError(key)

    def keys(self) -> list[str]:
        """This namespace's keys: a scan of the store's ids, for Beaker's rare whole-namespace calls."""
        return [sid[1] for sid in self.store.ids() if type(sid) is tuple and sid[0] == self.namespace]

    def do_remove(self) -> None:
        for key in self.keys():
            self.store.destroy(self._sid(key))
