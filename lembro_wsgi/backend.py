"""Where session records live: a LembroStore by default, or any other Beaker backend.

Every read and write goes through a Beaker namespace manager (one per
session id, key ``'session'``), the same layout Beaker's own sessions use::

    backend = SessionBackend(store=LembroStore())          # lembro, in memory
    backend = SessionBackend(type="file", data_dir="/tmp/s", timeout=1800)
    backend.save(sid, {"created": t, "accessed": t, "data": {"user": 1}})
    backend.load(sid)      # the record, or None when unknown, expired or undecodable
    backend.replace(sid, record)       # False when sid is gone: a logout is never undone
    backend.move(sid, new_sid, record) # regenerate(): the old id goes only once the new one is stored
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import pickle
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from beaker.cache import clsmap
from beaker.ext.redisnm import RedisNamespaceManager

from .namespace import LembroNamespaceManager
from .options import parse_seconds
from .store import LembroStore, SessionTooLarge, short_id

try:
    import redis.exceptions as redis_errors
except ImportError:  # the redis extra is not installed: no Redis errors to tell apart
    redis_errors = None  # type: ignore[assignment]

KEY = "session"
Record = dict[str, Any]

log = logging.getLogger("lembro_wsgi")

_NO_LOCK: AbstractContextManager[None] = nullcontext()

#: Client libraries whose own exceptions mean "backend unreachable or failing", never "bad record".
_CLIENT_MODULES = frozenset({"pylibmc", "memcache", "bmemcached", "pymongo", "sqlalchemy"})
#: What each Beaker backend needs installed, and how to get it.
_CLIENTS = {
    "ext:redis": ("the redis client", "pip install 'lembro_wsgi[redis]'"),
    "ext:rediscluster": ("the redis client", "pip install 'lembro_wsgi[redis]'"),
    "ext:memcached": ("a memcached client", "pip install pylibmc (or python-memcached)"),
    "ext:mongodb": ("pymongo", "pip install pymongo"),
    "ext:database": ("SQLAlchemy", "pip install sqlalchemy"),
    "ext:sqla": ("SQLAlchemy", "pip install sqlalchemy"),
}
#: Libraries whose errors are never a stored record that does not load (Redis's are told apart by kind).
_CLIENT_LIBRARIES = _CLIENT_MODULES | {"redis"}


@contextmanager
def _beaker_lock(manager: Any, write: bool, replace: bool = False) -> Iterator[None]:
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


class BackendFull(SessionTooLarge):
    """The backend refused a write for lack of memory (Redis ``maxmemory`` with ``noeviction``).

    A ``SessionTooLarge``, so it is handled as one: logged, and what was stored stays.
    """


class BackendUnavailable(RuntimeError):
    """The session backend (Redis, memcached, ...) could not be reached or will not serve now; the original
    error is chained.

    Unreachable, timed out, or refusing for a while: a read-only replica after a failover, failing
    persistence (MISCONF), a dataset still loading, a busy script, a lost master (see ``backend_error``).
    The message names the backend type and its URL with any password masked.
    Turn it into a 503 page with your framework's error handling.
    """


def mask_url(url: object) -> str:
    """``url`` as safe to show: a password (``user:pass@`` or ``?password=``) replaced by ``***``."""
    if not isinstance(url, str):
        return f"<{type(url).__name__}>"
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    secret_query = any(_is_secret(key) for key, _ in pairs)
    if netloc == parts.netloc and not secret_query:
        return url
    query = urlencode([(key, "***" if _is_secret(key) else value) for key, value in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query if secret_query else parts.query))


_SECRET_WORDS = ("pass", "pwd", "secret", "token", "auth", "key")


def _is_secret(name: str) -> bool:
    """Whether a URL query parameter may hold a secret (``password``, ``ssl_password``, ``api_key``...)."""
    return any(word in name.lower() for word in _SECRET_WORDS)


#: Redis error codes (the first word of the server's error reply) that mean "not now", for every command
#: or for writes: a read-only replica, failing persistence, a dataset loading, a busy script, a replica that
#: lost its master, too few replicas for ``min-replicas-to-write``, a cluster down or resharding.
_REDIS_UNAVAILABLE_CODES = frozenset(
    {"READONLY", "MISCONF", "LOADING", "BUSY", "MASTERDOWN", "NOREPLICAS", "TRYAGAIN", "CLUSTERDOWN"}
)
#: Redis error codes that mean a write was refused for lack of memory (``maxmemory`` with ``noeviction``).
_REDIS_FULL_CODES = frozenset({"OOM"})


def _redis_classes(*names: str) -> tuple[type[BaseException], ...]:
    """Those of redis-py's exception classes so named that the installed redis-py has."""
    found = (getattr(redis_errors, name, None) for name in names) if redis_errors is not None else ()
    return tuple(cls for cls in found if isinstance(cls, type) and issubclass(cls, BaseException))


_REDIS_UNAVAILABLE = _redis_classes(
    "ConnectionError", "TimeoutError", "ReadOnlyError", "BusyLoadingError", "MasterDownError", "ClusterDownError",
    "TryAgainError", "RedisClusterUnreachableError", "SlotNotCoveredError",  # these two are no RedisError
)
_REDIS_FULL = _redis_classes("OutOfMemoryError")


def _redis_error_code(exc: BaseException) -> str | None:
    """The Redis error code of ``exc`` when it is one lembro acts on (``'READONLY'``, ``'OOM'``, ...), else None.

    Recent redis-py keeps the code in ``status_code``; older ones (6 and before) only leave it first in
    the message of the errors they have no class for, and strip it from those they have (found by class).
    """
    if redis_errors is None or not isinstance(exc, redis_errors.RedisError):
        return None
    code = getattr(exc, "status_code", None)
    if not isinstance(code, str) or not code:
        code = (str(exc).split(maxsplit=1) or [""])[0]
    return code if code in _REDIS_UNAVAILABLE_CODES or code in _REDIS_FULL_CODES else None


def backend_error(exc: BaseException) -> type[BackendUnavailable | BackendFull] | None:
    """What a backend client's ``exc`` means: ``BackendFull``, ``BackendUnavailable`` or neither (``None``).

    The one place that decides. ``BackendFull``: a write refused for lack of memory (Redis ``OOM``).
    ``BackendUnavailable``: the backend could not be reached, or will not serve now (Redis ``READONLY``,
    ``MISCONF``, ``LOADING``, ``BUSY``, ...; by redis-py's class where it has one, else by the code).
    ``None``: anything else, such as a record that does not load.
    """
    code = _redis_error_code(exc)
    if isinstance(exc, _REDIS_FULL) or code in _REDIS_FULL_CODES:
        return BackendFull
    if isinstance(exc, (OSError, *_REDIS_UNAVAILABLE)) or code in _REDIS_UNAVAILABLE_CODES:
        return BackendUnavailable
    return BackendUnavailable if _library(exc) in _CLIENT_MODULES else None


def _library(exc: BaseException) -> str:
    """The top-level module that defines ``exc``'s class: ``'redis'``, ``'pylibmc'``, ``'builtins'``..."""
    return type(exc).__module__.partition(".")[0]


#: Redis URLs get these unless they set them, so a Redis that stops answering costs a request seconds, not forever.
REDIS_TIMEOUTS = (("socket_timeout", "2"), ("socket_connect_timeout", "2"))


def bounded_redis_url(url: str) -> str:
    """``url`` with ``REDIS_TIMEOUTS`` added to its query where it sets none of its own (a blank value, which
    redis-py ignores, sets none)."""
    given = {key for key, _ in parse_qsl(urlsplit(url).query)}
    added = urlencode([(key, value) for key, value in REDIS_TIMEOUTS if key not in given])
    if not added:
        return url
    base, hash_, fragment = url.partition("#")
    return f"{base}{'&' if '?' in base else '?'}{added}{hash_}{fragment}"


def _redis_key(manager: Any) -> str:
    """The Redis key Beaker's manager keeps the session under (Beaker's own key format)."""
    return str(manager._format_key(KEY))


def _is_record(value: object) -> bool:
    return (
        isinstance(value, dict) and isinstance(value.get("data"), dict)
        and isinstance(value.get("created"), (int, float)) and isinstance(value.get("accessed"), (int, float))
    )


class SessionBackend:
    """Loads, saves, touches and destroys session records by id.

    Writes of a session that was loaded are conditional (``replace``,
    ``move``, ``touch``): they happen only while the id is still there, so a
    slow request never brings back a session that was logged out meanwhile.

    ``timeout`` is the idle lifetime of sessions in seconds, on every backend; ``None`` is no idle
    expiry (lembro's caps still apply), never a given store's own default.
    """

    def __init__(self, type: str | None = None, store: LembroStore | None = None,
                 timeout: float | str | None = 1800, key_prefix: str = "", **options: Any) -> None:
        self.timeout = timeout = parse_seconds(timeout, "timeout", allow_none=True)  # a float: the write fast path
        if not isinstance(key_prefix, str):
            raise ValueError(f"key_prefix: expected a str, got {key_prefix!r}")
        #: Put before every session id in a shared backend's keys, so apps sharing it never meet.
        self.key_prefix = key_prefix
        self.type = type
        self.lembro = type in (None, "lembro")
        if self.lembro:
            if store is None:
                raise ValueError("store: a LembroStore is needed for the lembro backend")
            self.namespace_class: Any = LembroNamespaceManager
            self.options: dict[str, Any] = {}  # lembro managers are built over the store (see _manager)
            self.store = store
            #: What lembro writes live: ``timeout=None`` is no idle expiry here too (``math.inf`` to the store),
            #: never the store's own default, so it means one thing on every backend.
            self._lifetime = math.inf if timeout is None else timeout
        else:
            try:
                self.namespace_class = clsmap[type]
            except Exception as exc:
                raise ValueError(f"type: expected a Beaker backend such as 'file' or 'ext:redis', got {type!r}") from exc
            self.options = {"timeout": None if timeout is None else math.ceil(timeout), **options}
            if issubclass(self.namespace_class, RedisNamespaceManager) and isinstance(options.get("url"), str):
                self.options["url"] = bounded_redis_url(options["url"])
            self._probe(str(type))
        self.redis = inspect.isclass(self.namespace_class) and issubclass(self.namespace_class, RedisNamespaceManager)

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

    def with_prefix(self, key_prefix: str) -> SessionBackend:
        """This backend with its keys under ``key_prefix``: a shallow copy, sharing the client's options."""
        if key_prefix == self.key_prefix:
            return self
        backend = copy.copy(self)
        backend.key_prefix = key_prefix
        return backend

    def _manager(self, sid: str, timeout: float | None = None) -> Any:
        """The namespace manager for ``sid``; ``timeout`` overrides the lifetime of what it writes.

        The namespace is ``key_prefix + sid``.
        """
        namespace = self.key_prefix + sid
        if self.lembro:
            return LembroNamespaceManager.on_store(namespace, self.store, self._lifetime if timeout is None else timeout)
        if timeout is None:
            return self.namespace_class(namespace, **self.options)
        return self.namespace_class(namespace, **{**self.options, "timeout": math.ceil(timeout)})

    def _expired(self, record: Record) -> bool:
        """Age check for backends that do not expire records themselves (``file``): by the record's own lifetime.

        A session idle exactly its lifetime is expired, as in a lembro store.
        """
        lifetime = record.get("lifetime") or self.timeout
        return lifetime is not None and time.time() - record["accessed"] >= lifetime

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Turns a backend's "not now" errors into ``BackendUnavailable`` (logged at ERROR) and its
        out-of-memory refusals into ``BackendFull`` (at WARNING); ``backend_error`` decides which is which."""
        try:
            yield
        except (BackendUnavailable, BackendFull):
            raise
        except Exception as exc:
            kind = None if self.lembro else backend_error(exc)
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

    def _locked(self, manager: Any, write: bool, replace: bool = False) -> AbstractContextManager[None]:
        """Beaker's lock protocol for backends that need it; each lembro call is one atomic store call."""
        return _NO_LOCK if self.lembro else _beaker_lock(manager, write, replace)

    def load(self, sid: str) -> Record | None:
        """The record stored for ``sid``, or ``None`` when it is unknown, expired or does not load.

        A record that does not load (a class renamed in a deploy, a foreign
        value) is logged at WARNING and destroyed: it is no session.
        """
        manager = self._manager(sid)
        record: Any
        try:
            if self.lembro:  # one atomic store call; the store drops data that no longer unpickles
                record = manager[KEY]
            else:
                with self._reaching(), self._locked(manager, write=False):
                    record = manager[KEY]
        except KeyError:
            return None
        except BackendUnavailable:
            raise
        except Exception as exc:  # whatever unpickling raises, the record is unusable; the client's errors
            if _library(exc) in _CLIENT_LIBRARIES:  # are not that, and never destroy a session
                raise
            record = exc
        if not _is_record(record):
            reason = f"{type(record).__name__}: {record}" if isinstance(record, Exception) else "not a session record"
            log.warning("dropped session %s: its stored record does not load (%s)", short_id(sid), reason)
            self.destroy(sid)
            return None
        if not (self.lembro or self.redis) and self._expired(record):
            self.destroy(sid)  # backends without their own expiry are checked here
            return None
        return record  # type: ignore[no-any-return]  # _is_record checked it

    def exists(self, sid: str) -> bool:
        """Whether ``sid`` holds a live session, without refreshing it where the backend allows."""
        if self.lembro:
            return KEY in self._manager(sid)
        return self.load(sid) is not None

    def save(self, sid: str, record: Record, timeout: float | None = None) -> None:
        """Store ``record`` under ``sid`` unconditionally: for ids that were never stored.

        ``timeout`` here and in the other writes overrides the backend's session lifetime.
        """
        manager = self._manager(sid, timeout)
        with self._reaching(), self._locked(manager, write=True):
            manager[KEY] = record

    def replace(self, sid: str, record: Record, timeout: float | None = None) -> bool:
        """Rewrite ``sid`` only while it is still live; returns whether it was written.

        lembro and Redis do it in one atomic step (the store's lock; ``SET XX``);
        other backends check, under Beaker's write lock, that the record is
        still there and not idle past the timeout, right before the rewrite.
        """
        manager = self._manager(sid, timeout)
        if self.lembro:
            return bool(manager.replace(KEY, record))
        with self._reaching():
            if self.redis:
                ttl = manager.timeout
                return bool(manager.client.set(_redis_key(manager), pickle.dumps(record), ex=ttl, xx=True))
            return self._under_write_lock(manager, self._rewrite, record)

    def move(self, old: str, new: str, record: Record, timeout: float | None = None) -> bool:
        """Store ``record`` under ``new`` and destroy ``old``, only while ``old`` is live.

        ``old`` is destroyed after ``new`` is stored, so a refused write
        (``SessionTooLarge``) keeps it; if ``old`` turns out to be gone (a
        logout meanwhile), ``new`` is destroyed again. In lembro it is one
        atomic step that also keeps the session's eviction tier.
        """
        if self.lembro:
            return bool(self._manager(old, timeout).move(KEY, record, self.key_prefix + new))
        self.save(new, record, timeout)
        if self._take(old):
            return True
        self.destroy(new)
        return False

    def _take(self, sid: str) -> bool:
        """Destroy ``sid`` and say whether it was live: the test-and-delete that makes ``move`` conditional."""
        manager = self._manager(sid)
        with self._reaching():
            if self.redis:
                return bool(manager.client.delete(_redis_key(manager)) == 1)
            return self._under_write_lock(manager, self._remove_live)

    def _under_write_lock(self, manager: Any, action: Callable[..., bool], *args: Any) -> bool:
        """``action(manager, *args)`` under Beaker's write lock; a record that no longer opens is not live."""
        try:
            with self._locked(manager, write=True):
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

    def touch(self, sid: str, timeout: float | None = None) -> bool:
        """Restart the idle timer of a live session without rewriting its data; returns whether it was there.

        lembro and Redis (``EXPIRE``) refresh the timer alone; other backends
        rewrite the record as it is now, with a new ``accessed`` time, under
        Beaker's write lock. Either way a change another request made
        meanwhile is kept.
        """
        manager = self._manager(sid, timeout)
        if self.lembro:
            if manager.timeout == math.inf:  # no idle expiry: the store keeps the lifetime our write gave it
                manager.timeout = None
            return bool(manager.touch(KEY))
        with self._reaching():
            if self.redis:
                key = _redis_key(manager)
                return bool(manager.client.expire(key, manager.timeout) if manager.timeout else
                            manager.client.exists(key))
            return self._under_write_lock(manager, self._rewrite)

    def destroy(self, sid: str) -> None:
        """Remove ``sid``; a record that does not load is removed too (Beaker's file is replaced unread)."""
        manager = self._manager(sid)
        with self._reaching(), self._locked(manager, write=True, replace=True):
            try:
                del manager[KEY]
            except KeyError:
                pass
