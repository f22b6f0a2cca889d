"""Sessions in a LembroStore, in this process: each read or write is one atomic store call.

::

    backend = LembroBackend(store=LembroStore(), timeout=1800)   # what SessionBackend(store=...) builds
    backend.replace(sid, record)   # the store's lock makes the check and the write one step
"""

from __future__ import annotations

import math
from typing import Any

from ..backend import KEY, Record, SessionBackend
from ..namespace import LembroNamespaceManager
from ..store import LembroStore


class LembroBackend(SessionBackend):
    """Session records in a LembroStore, through ``LembroNamespaceManager`` over it.

    No locks of Beaker's: each call is one atomic store call, and the store expires and drops
    records itself (data that no longer unpickles included). Its refusals (``SessionTooLarge``)
    are raised as they are.
    """

    lembro = True

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
        return LembroNamespaceManager.on_store(self.key_prefix + sid, self.store,
                                               self._lifetime if timeout is None else timeout)

    def _read(self, manager: Any) -> Any:
        return manager[KEY]  # one atomic store call; the store drops data that no longer unpickles

    def exists(self, sid: str) -> bool:
        return KEY in self._manager(sid)

    def save(self, sid: str, record: Record, timeout: float | None = None) -> None:
        self._manager(sid, timeout)[KEY] = record

    def replace(self, sid: str, record: Record, timeout: float | None = None) -> bool:
        """Rewrite ``sid`` only while it is still live, in one step under the store's lock."""
        return bool(self._manager(sid, timeout).replace(KEY, record))

    def move(self, old: str, new: str, record: Record, timeout: float | None = None) -> bool:
        """One atomic step, which also keeps the session's eviction tier."""
        return bool(self._manager(old, timeout).move(KEY, record, self.key_prefix + new))

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
