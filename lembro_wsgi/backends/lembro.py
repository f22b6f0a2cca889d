"""Sessions in a LembroStore, in this process: each read or write is one atomic store call.

::

    backend = LembroBackend(store=LembroStore(), timeout=1800)   # what SessionBackend(store=...) builds
    backend.replace(sid, record)   # the store's lock makes the check and the write one step
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable
from typing import Any

from ..backend import KEY, OwnedSession, Record, SessionBackend, _is_record
from ..namespace import LembroNamespaceManager
from ..store import LembroStore, Owner


class LembroBackend(SessionBackend):
    """Session records in a LembroStore, through ``LembroNamespaceManager`` over it.

    No locks of Beaker's: each call is one atomic store call, and the store expires and drops
    records itself (data that no longer unpickles included). Its refusals (``SessionTooLarge``)
    are raised as they are.
    """

    lembro = True
    indexes_owners = True

    def __init__(self, type: str | None = None, store: LembroStore | None = None,
                 timeout: float | str | None = 1800, key_prefix: str = "", **options: Any) -> None:
        super().__init__(type, store, timeout, key_prefix)
        if store is None:
            raise ValueError("store: a LembroStore is needed for the lembro backend")
        self.namespace_class: Any = LembroNamespaceManager
        self.options: dict[str, Any] = {}  # lembro managers are built over the store (see _manager)
        self.store = store
        #: What lembro writes live: ``timeout=None`` is no idle expiry here too (``math.inf`` to the store),
        #: never the store's own default, so it means one thing on every backend.
        self._lifetime = math.inf if self.timeout is None else self.timeout

    def _manager(self, sid: str, timeout: float | None = None) -> Any:
        return LembroNamespaceManager.on_store(self.key_prefix + sid, self.store, self._life(timeout))

    def _life(self, timeout: float | None) -> float:
        """What a write lives: ``timeout``, else the backend's lifetime."""
        return self._lifetime if timeout is None else timeout

    def _read(self, manager: Any) -> Any:
        return manager[KEY]  # one atomic store call; the store drops data that no longer unpickles

    def exists(self, sid: str) -> bool:
        return KEY in self._manager(sid)

    def _key(self, sid: str) -> tuple[str, str]:
        """The store's id for ``sid``: Beaker's ``(namespace, key)``, as ``LembroNamespaceManager`` keeps it."""
        return (self.key_prefix + sid, KEY)

    def _owner(self, record: Record) -> Owner:
        """``record``'s owner as the store indexes it: scoped by the key prefix, so apps sharing a store
        each have their own owners."""
        if self.owner_key is None:  # the write path of apps without owners stays as it was
            return None
        text = self.owner(record)
        return None if text is None else self._scoped(text)

    def _scoped(self, owner: str) -> Owner:
        """The owner ``owner`` as the store indexes it for this backend: under its key prefix, if any."""
        return (self.key_prefix, owner) if self.key_prefix else owner

    def save(self, sid: str, record: Record, timeout: float | None = None) -> None:
        self.store.set(self._key(sid), record, self._life(timeout),
                       owner=self._owner(record), max_per_owner=self.max_per_owner)

    def replace(self, sid: str, record: Record, timeout: float | None = None) -> bool:
        """Rewrite ``sid`` only while it is still live, in one step under the store's lock."""
        return self.store.replace(self._key(sid), record, self._life(timeout),
                                  owner=self._owner(record), max_per_owner=self.max_per_owner)

    def move(self, old: str, new: str, record: Record, timeout: float | None = None) -> bool:
        """One atomic step, which also keeps the session's eviction tier."""
        return self.store.move(self._key(old), self._key(new), record, self._life(timeout),
                               owner=self._owner(record), max_per_owner=self.max_per_owner)

    def owned_by(self, owner: str) -> list[OwnedSession]:
        """Each session is read as the store lists it, untouched: listing a user's sessions is not their activity."""
        store, start = self.store, len(self.key_prefix)
        since_epoch = time.time() - store.clock()  # the store's clock to the wall clock
        return [OwnedSession(_namespace(key)[start:], record["created"], since_epoch + used, record["data"])
                for key, used, record in store.owned_by(self._scoped(owner))
                if _is_record(record)]

    def revoke(self, owner: str, keep: str | None = None) -> int:
        return len(self.store.revoke(self._scoped(owner), keep=None if keep is None else self._key(keep)))

    def touch(self, sid: str, timeout: float | None = None) -> bool:
        """The store restarts the timer alone."""
        manager = self._manager(sid, timeout)
        if manager.timeout == math.inf:  # no idle expiry: the store keeps the lifetime our write gave it
            manager.timeout = None
        return bool(manager.touch(KEY))

    def destroy(self, sid: str) -> None:
        manager = self._manager(sid)
        try:
            del manager[KEY]
        except KeyError:
            pass


def _namespace(key: Hashable) -> str:
    """The namespace (key prefix and session id) of a store id ``(namespace, key)``."""
    return str(key[0]) if isinstance(key, tuple) else str(key)
