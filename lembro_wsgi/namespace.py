"""LembroNamespaceManager: the ``lembro`` backend for Beaker sessions and caches.

Installed with this package, it is registered under Beaker's
``beaker.backends`` entry point, so configuration alone selects it::

    session.type = lembro
    session.max_size = 4M
    session.interval = 60

    cache.type = lembro

Each Beaker namespace key is one store entry, with the id ``(namespace, key)``,
so every cached value and every session expires and is evicted on its own.
Sessions and caches are kept in separate stores (``'sessions'``, ``'caches'``),
so a cache never evicts a signed-in user, unless both name one store with
``store_name``.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from typing import Any

from beaker.container import NamespaceManager

from .locks import NamedLocks
from .options import MAX_SECONDS, close_option, parse_seconds
from .registry import named_store, store_for
from .store import LembroStore, SessionTooLarge

log = logging.getLogger("lembro_wsgi")

#: Seconds a cache value outlives its ``expire``, so Beaker's dogpile lock can serve it while one thread
#: recreates it (Beaker adds 120 s to session timeouts for the same reason).
CACHE_GRACE = 120.0

#: Write locks by namespace, and creation locks by (namespace, key), shared by every manager in the process.
write_locks = NamedLocks()
creation_locks = NamedLocks()


def lock_key(key: Any) -> str:
    """``key`` as text for a lock name: Beaker's Cache turns str keys into bytes, and both must name one lock."""
    if isinstance(key, bytes):
        return key.decode("ascii", "backslashreplace")
    return str(key).encode("ascii", "backslashreplace").decode("ascii")


def _fresh_locks_after_fork() -> None:
    """A child process never waits on a lock that a parent's thread held: it did not come along."""
    write_locks.reset()
    creation_locks.reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_locks_after_fork)


_OPTIONS = ("interval", "max_size", "max_sessions", "timeout", "store", "store_name")
#: Beaker option names seen, by role: each is looked at once per process.
_checked_options: dict[str, set[str]] = {"session": set(), "cache": set()}
_checking = threading.Lock()


def _warn_misspelt(role: str, options: dict[str, Any]) -> None:
    """Warn once about an option that looks like lembro's but is not (``session.maxsize = 4M`` would
    otherwise leave the default cap in place without a word); Beaker's own options pass quietly."""
    checked = _checked_options[role]
    with _checking:
        new = options.keys() - checked
        if len(checked) < 1024:  # names come from configuration: a handful
            checked.update(new)
    for name in new:
        close = close_option(name, _OPTIONS)
        if close and close != name:
            log.warning("Beaker %s option %r is not a lembro option and is ignored; did you mean %r?",
                        role, name, close)


def _within_bound(seconds: Any) -> Any:
    """Beaker's own seconds (a session timeout + 120 s, a cache's expire) capped at the store's bound:
    Beaker's ``memory`` takes any, and a setting it takes must not fail every request here."""
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and MAX_SECONDS < seconds < math.inf:
        return float(MAX_SECONDS)
    return seconds


class CreationLock:
    """Beaker's creation-lock interface (``acquire(wait)``, ``release()``) over one name of ``creation_locks``.

    Beaker's own ``NameLock`` registry is not reset after fork(), so a child
    could wait forever on its guard; this table is.
    """

    __slots__ = ("held", "name")

    def __init__(self, name: tuple[str, str]) -> None:
        self.name = name
        self.held: list[Any] = []  # released as the very locks taken, even if a fork came in between

    def acquire(self, wait: bool = True) -> bool:
        lock = creation_locks.acquire(self.name, wait)
        if lock is None:
            return False
        self.held.append(lock)
        return True

    def release(self) -> None:
        self.held[-1].release()  # as release_write_lock: a wrong thread's release raises and forgets nothing
        self.held.pop()


class LembroNamespaceManager(NamespaceManager):
    """A Beaker namespace kept in a shared, bounded LembroStore.

    ``interval``, ``max_size`` and ``max_sessions`` pick the store (see
    ``registry.store_for``) unless ``store`` is given: Beaker sessions get
    the ``'sessions'`` store of those caps and Beaker caches the ``'caches'``
    one, unless ``store_name`` names one for both. ``timeout`` is the
    lifetime of what is written (Beaker forwards its session timeout + 120 s),
    ``None`` for the store's default (caches: no expiry but their
    ``expire``). Other Beaker options (``data_dir``, ``lock_dir``, ...)
    mean nothing in memory and are ignored.

    As Beaker's ``memory`` backend does, it never fails a request for a
    value the store refuses (larger than the cap): the refusal is logged,
    what was stored stays, and a cache's caller still gets its value.
    """

    #: ``'session'`` (a Beaker session: reads restart its idle timer), ``'cache'`` (values kept past their
    #: ``expire`` for ``CACHE_GRACE``) or ``'backend'`` (lembro's own SessionBackend: refusals are raised).
    role = "backend"

    def __init__(
        self,
        namespace: str,
        interval: float | str | None = 60,
        max_size: int | str = "1M",
        max_sessions: int | str | None = None,
        timeout: float | str | None = None,
        store: LembroStore | None = None,
        store_name: str | None = None,
        **beaker_options: Any,
    ) -> None:
        self.namespace = namespace  # all that Beaker's NamespaceManager.__init__ does; built per request
        self.timeout = None if timeout is None else parse_seconds(_within_bound(timeout), "timeout", allow_none=True)
        # Beaker's Session, and only it, passes digest_filenames=False to every backend it builds.
        self.role = role = "session" if beaker_options.get("digest_filenames") is False else "cache"
        if beaker_options.keys() - _checked_options[role]:
            _warn_misspelt(role, beaker_options)
        if store is None:
            if store_name is None:
                store = store_for(interval, max_size, max_sessions, name=f"{self.role}s")
            elif isinstance(store_name, str) and store_name.strip():
                store = named_store(store_name.strip(), interval, max_size, max_sessions)
            else:
                raise ValueError(f"store_name: expected a non-empty name, got {store_name!r}")
        self.store = store

    @classmethod
    def on_store(cls, namespace: str, store: LembroStore, timeout: float | None) -> LembroNamespaceManager:
        """A manager over ``store`` with options already parsed: cheap enough to build for every call."""
        manager = cls.__new__(cls)
        manager.namespace, manager.store, manager.timeout = namespace, store, timeout
        return manager

    def get_creation_lock(self, key: Any) -> CreationLock:
        """Per key: ``'k'`` and ``b'k'`` share it, and a child after fork never waits on a parent's."""
        return CreationLock((self.namespace, lock_key(key)))

    def acquire_read_lock(self) -> None:
        """Nothing: a read is one atomic store call, as in Beaker's memory backend; it never waits on a writer."""

    def release_read_lock(self) -> None:
        """Nothing, as ``acquire_read_lock``."""

    def acquire_write_lock(self, wait: bool = True, replace: bool = False) -> bool:
        lock = write_locks.acquire(self.namespace, wait)
        if lock is None:
            return False
        held = self.__dict__.get("_held")
        if held is None:
            self._held = [lock]  # released as the very locks taken, even if a fork came in between
        else:
            held.append(lock)
        return True

    def release_write_lock(self) -> None:
        held = self._held
        held[-1].release()  # first: a release from a thread that does not hold it raises and forgets nothing
        held.pop()

    def __getitem__(self, key: Any) -> Any:
        if self.role == "session":  # a Beaker session's read is the client's activity: it restarts the timer
            value = self.store.get((self.namespace, key), touch=True)
        else:
            value = self.store.get((self.namespace, key))
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: Any) -> bool:
        return (self.namespace, key) in self.store

    def __setitem__(self, key: str, value: Any) -> None:
        self.set_value(key, value)

    def set_value(self, key: str, value: Any, expiretime: float | None = None) -> None:
        """Store ``value``; a cache's ``expiretime`` (seconds) overrides the session lifetime.

        A cache value lives ``CACHE_GRACE`` past its ``expiretime`` (Beaker itself decides when it is
        stale), and one with none is kept until evicted.
        """
        lifetime: float | None
        if self.role == "cache":
            lifetime = _within_bound(max(float(expiretime), 0) + CACHE_GRACE) if expiretime else self.timeout or math.inf
        else:
            lifetime = expiretime or self.timeout
        try:
            self.store.set((self.namespace, key), value, lifetime)
        except SessionTooLarge:
            if self.role == "backend":  # lembro's own sessions keep the client's id on a refusal
                raise

    def replace(self, key: Any, value: Any) -> bool:
        """Rewrite ``key`` only while it is live; returns whether it was written (lembro's own addition)."""
        return self.store.replace((self.namespace, key), value, self.timeout)

    def move(self, key: Any, value: Any, namespace: str) -> bool:
        """Store ``value`` under ``key`` of ``namespace`` in place of this one's, atomically (lembro's own addition).

        The new entry keeps the old one's eviction tier; nothing changes when
        the old entry is gone or the value is too large.
        """
        return self.store.move((self.namespace, key), (namespace, key), value, self.timeout)

    def touch(self, key: Any) -> bool:
        """Restart the idle timer of ``key`` without rewriting it (lembro's own addition)."""
        return self.store.touch((self.namespace, key), self.timeout)

    def __delitem__(self, key: Any) -> None:
        if not self.store.destroy((self.namespace, key)):
            raise KeyError(key)

    def keys(self) -> list[str]:
        """This namespace's keys: a scan of the store's ids, for Beaker's rare whole-namespace calls."""
        return [sid[1] for sid in self.store.ids() if type(sid) is tuple and sid[0] == self.namespace]

    def do_remove(self) -> None:
        for key in self.keys():
            self.store.destroy((self.namespace, key))
