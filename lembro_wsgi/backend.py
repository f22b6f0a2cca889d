"""Where session records live: a LembroStore by default, or any other Beaker backend.

Every read and write goes through a Beaker namespace manager (one per
session id, key ``'session'``), the same layout Beaker's own sessions use::

    backend = SessionBackend(store=LembroStore())          # lembro, in memory
    backend = SessionBackend(type="file", data_dir="/tmp/s", timeout=1800)
    backend.save(sid, {"created": t, "accessed": t, "data": {"user": 1}})
    backend.load(sid)      # the record, or None when unknown or expired
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Callable

from beaker.cache import clsmap

from .namespace import LembroNamespaceManager
from .store import LembroStore

KEY = "session"
Record = dict[str, Any]


_NO_LOCK = nullcontext()


@contextmanager
def _beaker_lock(manager: Any, write: bool) -> Iterator[None]:
    if write:
        manager.acquire_write_lock()
    else:
        manager.acquire_read_lock()
    try:
        yield
    finally:
        if write:
            manager.release_write_lock()
        else:
            manager.release_read_lock()


class SessionBackend:
    """Loads, saves, touches and destroys session records by id."""

    def __init__(self, type: str | None = None, store: LembroStore | None = None,
                 timeout: float | None = 1800, **options: Any) -> None:
        self.timeout = timeout
        self.lembro = type in (None, "lembro")
        if self.lembro:
            if store is None:
                raise ValueError("store: a LembroStore is needed for the lembro backend")
            self.namespace_class: Any = LembroNamespaceManager
            self.options = {"store": store, "timeout": timeout}
        else:
            try:
                self.namespace_class = clsmap[type]
            except Exception as exc:
                raise ValueError(f"type: expected a Beaker backend such as 'file' or 'ext:redis', got {type!r}") from exc
            self.options = {"timeout": None if timeout is None else int(timeout), **options}
            self.namespace_class("lembro-probe", **self.options)  # missing backend options fail now

    def _manager(self, sid: str) -> Any:
        return self.namespace_class(sid, **self.options)

    def _locked(self, manager: Any, write: bool) -> AbstractContextManager:
        """Beaker's lock protocol for backends that need it; each lembro call is one atomic store call."""
        return _NO_LOCK if self.lembro else _beaker_lock(manager, write)

    def load(self, sid: str) -> Record | None:
        """The record stored for ``sid``, or ``None`` when it is unknown, expired or not ours."""
        manager = self._manager(sid)
        with self._locked(manager, write=False):
            try:
                record = manager[KEY]
            except KeyError:
                record = None
        if not (isinstance(record, dict) and isinstance(record.get("data"), dict)):
            return None
        if not self.lembro and self.timeout is not None and time.time() - record["accessed"] > self.timeout:
            self.destroy(sid)  # backends without their own expiry are checked here
            return None
        return record

    def save(self, sid: str, record: Record) -> None:
        manager = self._manager(sid)
        with self._locked(manager, write=True):
            manager[KEY] = record

    def touch(self, sid: str, record: Callable[[], Record]) -> None:
        """Restart the idle timer: in lembro without rewriting; elsewhere by saving ``record()`` again.

        The record is built only where it is written, not on lembro's read-only path.
        """
        if self.lembro:
            self._manager(sid).touch(KEY)
        else:
            self.save(sid, record())

    def destroy(self, sid: str) -> None:
        manager = self._manager(sid)
        with self._locked(manager, write=True):
            try:
                del manager[KEY]
            except KeyError:
                pass
