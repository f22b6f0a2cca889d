"""Sessions in any Beaker backend (``file``, ``dbm``, ``ext:memcached``, ...): Beaker's locks and an age check.

::

    backend = BeakerBackend("file", data_dir="/tmp/s", timeout=1800)   # what SessionBackend(type="file") builds
    backend.replace(sid, record)   # under Beaker's write lock: still there, not idle past its lifetime?

Conditional writes read the record under Beaker's write lock first; records are aged here, by their
own lifetime, since these backends do not expire them themselves (``RedisBackend`` builds on this one).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from beaker.cache import clsmap

from ..backend import (
    KEY,
    BackendFull,
    BackendUnavailable,
    Record,
    SessionBackend,
    _is_record,
    _redis_error_code,
    backend_error,
    log,
    mask_url,
)
from ..store import LembroStore

#: What each Beaker backend needs installed, and how to get it.
_CLIENTS = {
    "ext:redis": ("the redis client", "pip install 'lembro_wsgi[redis]'"),
    "ext:rediscluster": ("the redis client", "pip install 'lembro_wsgi[redis]'"),
    "ext:memcached": ("a memcached client", "pip install pylibmc (or python-memcached)"),
    "ext:mongodb": ("pymongo", "pip install pymongo"),
    "ext:database": ("SQLAlchemy", "pip install sqlalchemy"),
    "ext:sqla": ("SQLAlchemy", "pip install sqlalchemy"),
}


@contextmanager
def _locked(manager: Any, write: bool, replace: bool = False) -> Iterator[None]:
    """Beaker's lock protocol on ``manager``: its write lock (``replace``: for a record replaced unread), or its read lock."""
    if write:
        manager.acquire_write_lock(replace=replace)
    else:
        manager.acquire_read_lock()
    try:
        yield
    finally:
        if write:
            manager.release_write_lock()
        else:
            manager.release_read_lock()


class BeakerBackend(SessionBackend):
    """Session records in a Beaker backend, through its namespace manager (``type`` names it in Beaker's
    ``clsmap``; ``options`` are its own, checked by building one manager now)."""

    def __init__(self, type: str | None = None, store: LembroStore | None = None,
                 timeout: float | str | None = 1800, key_prefix: str = "", **options: Any) -> None:
        super().__init__(type, store, timeout, key_prefix)
        try:
            self.namespace_class: Any = clsmap[type]
        except Exception as exc:
            raise ValueError(f"type: expected a Beaker backend such as 'file' or 'ext:redis', got {type!r}") from exc
        self.options: dict[str, Any] = self._options(options)
        self._probe(str(type))

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The options each manager is built with: the given ones and the backend's timeout, in whole seconds."""
        return {"timeout": None if self.timeout is None else math.ceil(self.timeout), **options}

    def _probe(self, type: str) -> None:
        """Build one manager now, so missing or wrong backend options fail at construction, named."""
        try:
            inspect.signature(self.namespace_class).bind("lembro-probe", **self.options)
        except TypeError:
            required = [
                name for name, param in inspect.signature(self.namespace_class).parameters.items()
                if param.default is param.empty and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
                and name != "namespace" and name not in self.options
            ]
            name = required[0] if required else "type"
            raise ValueError(f"{name}: required by type={type!r} (e.g. url='redis://127.0.0.1:6379/0')") from None
        try:
            self.namespace_class("lembro-probe", **self.options)
        except Exception as exc:
            if isinstance(exc, ImportError) or "is not available" in str(exc):  # Beaker's word for a missing client
                client, install = _CLIENTS.get(type, ("its client library", "see Beaker's documentation"))
                raise ValueError(f"type: {type!r} needs {client}, which is not installed: {install}") from exc
            named = str(exc).split()[0] if str(exc) else ""  # Beaker names the option first: "data_dir or ..."
            option = named if named.isidentifier() and named in inspect.signature(self.namespace_class).parameters \
                else "type"
            raise ValueError(f"{option}: refused by type={type!r}: {exc}") from exc

    def _manager(self, sid: str, timeout: float | None = None) -> Any:
        namespace = self.key_prefix + sid
        if timeout is None:
            return self.namespace_class(namespace, **self.options)
        return self.namespace_class(namespace, **{**self.options, "timeout": math.ceil(timeout)})

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Turns a backend's "not now" errors into ``BackendUnavailable`` (logged at ERROR) and its
        out-of-memory refusals into ``BackendFull`` (at WARNING); ``backend_error`` decides which is which."""
        try:
            yield
        except (BackendUnavailable, BackendFull):
            raise
        except Exception as exc:
            kind = backend_error(exc)
            if kind is None:
                raise
            if kind is BackendFull:
                log.warning("session backend %r refused a write: out of memory", self.type)
                raise BackendFull(f"session backend {self.type!r} is out of memory") from exc
            where = mask_url(next((self.options[k] for k in ("url", "urls", "data_dir") if k in self.options), ""))
            code = _redis_error_code(exc)
            cause = f"{type(exc).__module__}.{type(exc).__name__}{f': {code}' if code else ''}"
            error = BackendUnavailable(f"session backend {self.type!r} at {where} is unavailable ({cause})")
            log.error("%s", error)
            raise error from exc

    def _read(self, manager: Any) -> Any:
        with self._reaching(), _locked(manager, write=False):
            return manager[KEY]

    def _expired(self, record: Record) -> bool:
        """Age check for backends that do not expire records themselves (``file``): by the record's own lifetime.

        A session idle exactly its lifetime is expired, as in a lembro store.
        """
        lifetime = record.get("lifetime") or self.timeout
        return lifetime is not None and time.time() - record["accessed"] >= lifetime

    def save(self, sid: str, record: Record, timeout: float | None = None) -> None:
        manager = self._manager(sid, timeout)
        with self._reaching(), _locked(manager, write=True):
            manager[KEY] = record

    def replace(self, sid: str, record: Record, timeout: float | None = None) -> bool:
        """Checks, under Beaker's write lock, that the record is still there and not idle past its lifetime,
        right before the rewrite."""
        manager = self._manager(sid, timeout)
        with self._reaching():
            return self._under_write_lock(manager, self._rewrite, record)

    def move(self, old: str, new: str, record: Record, timeout: float | None = None) -> bool:
        """``old`` is destroyed after ``new`` is stored; if ``old`` turns out to be gone (a logout meanwhile),
        ``new`` is destroyed again."""
        self.save(new, record, timeout)
        if self._take(old):
            return True
        self.destroy(new)
        return False

    def _take(self, sid: str) -> bool:
        """Destroy ``sid`` and say whether it was live: the test-and-delete that makes ``move`` conditional."""
        manager = self._manager(sid)
        with self._reaching():
            return self._under_write_lock(manager, self._remove_live)

    def touch(self, sid: str, timeout: float | None = None) -> bool:
        """Rewrites the record as it is now, with a new ``accessed`` time, under Beaker's write lock."""
        manager = self._manager(sid, timeout)
        with self._reaching():
            return self._under_write_lock(manager, self._rewrite)

    def destroy(self, sid: str) -> None:
        """A record that does not load is removed too (Beaker's file is replaced unread)."""
        manager = self._manager(sid)
        with self._reaching(), _locked(manager, write=True, replace=True):
            try:
                del manager[KEY]
            except KeyError:
                pass

    def _under_write_lock(self, manager: Any, action: Callable[..., bool], *args: Any) -> bool:
        """``action(manager, *args)`` under Beaker's write lock; a record that no longer opens is not live."""
        try:
            with _locked(manager, write=True):
                return action(manager, *args)
        except Exception as exc:
            if backend_error(exc) is not None:  # the backend's refusal, not a record that no longer opens
                raise
            return False

    def _live(self, manager: Any) -> bool:
        """Whether the locked manager holds a live record (present, loadable, not idle past the timeout)."""
        try:
            current = manager[KEY]
        except KeyError:
            return False
        if _is_record(current) and not self._expired(current):
            return True
        del manager[KEY]
        return False

    def _rewrite(self, manager: Any, record: Record | None = None) -> bool:
        """Write ``record`` over a live record; without one, the live record again with a new ``accessed``."""
        if not self._live(manager):
            return False
        manager[KEY] = record if record is not None else {**manager[KEY], "accessed": time.time()}
        return True

    def _remove_live(self, manager: Any) -> bool:
        live = self._live(manager)
        if live:
            del manager[KEY]
        return live
