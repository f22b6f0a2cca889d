"""Where session records live: the interface every kind of backend gives, and what they share.

``SessionBackend(...)`` builds the kind its ``type`` names (see ``lembro_wsgi.backends``): lembro's
in-process store by default, Beaker's ``ext:redis``, or any other Beaker backend. Every read and write
goes through a Beaker namespace manager (one per session id, key ``'session'``), the same layout
Beaker's own sessions use::

    backend = SessionBackend(store=LembroStore())          # lembro, in memory
    backend = SessionBackend(type="file", data_dir="/tmp/s", timeout=1800)
    backend.save(sid, {"created": t, "accessed": t, "data": {"user": 1}})
    backend.load(sid)      # the record, or None when unknown, expired or undecodable
    backend.replace(sid, record)       # False when sid is gone: a logout is never undone
    backend.move(sid, new_sid, record) # regenerate(): the old id goes only once the new one is stored

Also here: the errors a backend raises (``BackendUnavailable``, ``BackendFull``) and ``backend_error``,
the one place that tells a client's errors apart.
"""

from __future__ import annotations

import copy
import logging
import weakref
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .options import parse_seconds
from .store import LembroStore, SessionTooLarge, owner_text, short_id

try:
    import redis.exceptions as redis_errors
except ImportError:  # the redis extra is not installed: no Redis errors to tell apart
    redis_errors = None  # type: ignore[assignment]

KEY = "session"
Record = dict[str, Any]

log = logging.getLogger("lembro_wsgi")

#: Client libraries whose own exceptions mean "backend unreachable or failing", never "bad record".
_CLIENT_MODULES = frozenset({"pylibmc", "memcache", "bmemcached", "pymongo", "sqlalchemy"})
#: Libraries whose errors are never a stored record that does not load (Redis's are told apart by kind).
_CLIENT_LIBRARIES = _CLIENT_MODULES | {"redis"}


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


def _is_record(value: object) -> bool:
    return (
        isinstance(value, dict) and isinstance(value.get("data"), dict)
        and isinstance(value.get("created"), (int, float)) and isinstance(value.get("accessed"), (int, float))
    )


class OwnedSession(NamedTuple):
    """One live session of an owner, as ``owned_by`` lists them: its id, when it was created and last
    used (seconds since the epoch), and a copy of its data."""

    id: str
    created: float
    accessed: float
    data: dict[str, Any]


class SessionBackend:
    """Loads, saves, touches and destroys session records by id.

    ``SessionBackend(type, store, timeout, key_prefix=..., **options)`` returns the kind ``type`` names:
    a ``LembroBackend`` (``type`` None or ``'lembro'``, over ``store``), a ``RedisBackend``
    (``'ext:redis'``, ``'ext:rediscluster'``) or a ``BeakerBackend`` (any other Beaker type, with the
    Beaker ``options`` it needs). Each keeps its own rules; this class holds what they share.

    Writes of a session that was loaded are conditional (``replace``,
    ``move``, ``touch``): they happen only while the id is still there, so a
    slow request never brings back a session that was logged out meanwhile.

    ``timeout`` is the idle lifetime of sessions in seconds, on every backend; ``None`` is no idle
    expiry (lembro's caps still apply), never a given store's own default.
    """

    #: Whether sessions live in a LembroStore (``store``), and whether in Redis.
    lembro = False
    redis = False
    #: Whether this kind can keep an index of sessions by owner (``owner_key``).
    indexes_owners = False
    #: The data key whose value owns a session (``index_owners``), and the most live sessions an owner keeps.
    owner_key: str | None = None
    max_per_owner: int | None = None

    def __new__(cls, type: str | None = None, *args: Any, **kwargs: Any) -> SessionBackend:  # noqa: PYI034
        """The kind ``type`` names when built as ``SessionBackend(...)``; a kind built by its own name is itself."""
        kind = cls
        if cls is SessionBackend:
            from .backends import kind_of  # the kinds build on this module

            kind = kind_of(type)
        return super().__new__(kind)

    def __init__(self, type: str | None = None, store: LembroStore | None = None,
                 timeout: float | str | None = 1800, key_prefix: str = "", **options: Any) -> None:
        self.timeout = parse_seconds(timeout, "timeout", allow_none=True)  # a float: the write fast path
        if not isinstance(key_prefix, str):
            raise ValueError(f"key_prefix: expected a str, got {key_prefix!r}")
        #: Put before every session id in a shared backend's keys, so apps sharing it never meet.
        self.key_prefix = key_prefix
        self.type = type
        #: Sessions of this process whose ``regenerate()`` waits for the response, by their new id (weakly:
        #: gone with their request), so that ``revoke(keep=session.id)`` keeps the one stored under the old id.
        #: Shared by ``with_prefix`` copies.
        self.regenerating: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()

    def with_prefix(self, key_prefix: str) -> SessionBackend:
        """This backend with its keys under ``key_prefix``: a shallow copy, sharing the client's options."""
        if key_prefix == self.key_prefix:
            return self
        backend = copy.copy(self)
        backend.key_prefix = key_prefix
        return backend

    def index_owners(self, owner_key: str | None, max_per_owner: int | None) -> None:
        """Index sessions by the owner their data holds under ``owner_key`` from now on (checked by
        ``SessionFactory``); a kind that cannot raises ``ValueError`` naming the kinds that can."""
        if owner_key is not None and not self.indexes_owners:
            raise ValueError(f"owner_key: type={self.type!r} cannot index sessions by owner; lembro's store (leave "
                             f"type= out) and type='ext:redis' can")
        self.owner_key, self.max_per_owner = owner_key, max_per_owner

    def owner(self, record: Record) -> str | None:
        """The owner of ``record`` as text: what its data holds under ``owner_key`` (a str or an int; absent
        or None is no owner). Another type raises ``ValueError`` naming ``owner_key``, before any write."""
        key = self.owner_key
        if key is None:
            return None
        value = record["data"].get(key)
        try:
            return owner_text(value)
        except ValueError:
            raise ValueError(f"owner_key: session[{key!r}] must hold a str, an int or None to own the session, "
                             f"got {type(value).__name__}") from None

    def owned_by(self, owner: str) -> list[OwnedSession]:
        """The live sessions of ``owner`` (its text) under this backend's key prefix, most recently used first."""
        raise NotImplementedError

    def revoke(self, owner: str, keep: str | None = None) -> int:
        """Destroy the live sessions of ``owner`` but ``keep`` under this backend's key prefix; returns how many."""
        raise NotImplementedError

    def load(self, sid: str) -> Record | None:
        """The record stored for ``sid``, or ``None`` when it is unknown, expired or does not load.

        A record that does not load (a class renamed in a deploy, a foreign
        value) is logged at WARNING and destroyed: it is no session.
        """
        manager = self._manager(sid)
        record: Any
        try:
            record = self._read(manager)
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
        if self._expired(record):
            self.destroy(sid)
            return None
        return record  # type: ignore[no-any-return]  # _is_record checked it

    def exists(self, sid: str) -> bool:
        """Whether ``sid`` holds a live session, without refreshing it where the backend allows."""
        return self.load(sid) is not None

    def save(self, sid: str, record: Record, timeout: float | None = None) -> None:
        """Store ``record`` under ``sid`` unconditionally: for ids that were never stored.

        ``timeout`` here and in the other writes overrides the backend's session lifetime.
        """
        raise NotImplementedError

    def replace(self, sid: str, record: Record, timeout: float | None = None) -> bool:
        """Rewrite ``sid`` only while it is still live; returns whether it was written."""
        raise NotImplementedError

    def move(self, old: str, new: str, record: Record, timeout: float | None = None) -> bool:
        """Store ``record`` under ``new`` and destroy ``old``, only while ``old`` is live; returns whether it was.

        A refused write (``SessionTooLarge``) keeps ``old``.
        """
        raise NotImplementedError

    def touch(self, sid: str, timeout: float | None = None) -> bool:
        """Restart the idle timer of a live session without rewriting its data; returns whether it was there.

        A change another request made meanwhile is kept.
        """
        raise NotImplementedError

    def destroy(self, sid: str) -> None:
        """Remove ``sid``; a record that does not load is removed too."""
        raise NotImplementedError

    def _manager(self, sid: str, timeout: float | None = None) -> Any:
        """The namespace manager for ``sid`` (namespace ``key_prefix + sid``); ``timeout`` overrides the
        lifetime of what it writes."""
        raise NotImplementedError

    def _read(self, manager: Any) -> Any:
        """What ``manager`` holds under ``KEY`` (``KeyError`` when nothing), for ``load`` to check."""
        raise NotImplementedError

    def _expired(self, record: Record) -> bool:
        """Whether a loaded record is past its lifetime; no, where the backend expires records itself."""
        return False
