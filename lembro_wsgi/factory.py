"""SessionFactory: the one place that opens a request's session and closes it into Set-Cookie headers.

LembroMiddleware, the Pyramid session factory and the Bottle plugin all use
it, so there is one cookie path and one set of option checks::

    sessions = SessionFactory(max_size='4M', secret='...')
    session = sessions.open(environ)          # lazy: nothing loaded yet
    ...
    headers = sessions.close(session)         # save or touch; [('Set-Cookie', ...)] or []
"""

from __future__ import annotations

import inspect
import logging
import threading
from typing import TYPE_CHECKING, Any, TypedDict

from .backend import OwnedSession, SessionBackend
from .cookie import SessionCookie
from .options import UNSET, Unset, close_option, parse_count, parse_seconds, unknown_option
from .session import Session
from .store import LembroStore, owner_text

if TYPE_CHECKING:
    from typing import Unpack

_MAX_NAMES = 64
#: Whether this process has warned that its server runs several worker processes (see _several_processes).
_warned_processes = False
_warning_lock = threading.Lock()
log = logging.getLogger("lembro_wsgi")


class BackendOptions(TypedDict, total=False):
    """The options of another Beaker backend (``type=``) that lembro passes on. Others work too, but a
    type checker flags them: type them here, or pass them with ``# type: ignore[call-arg]``."""

    url: str
    urls: str | list[str]
    data_dir: str
    lock_dir: str
    memcache_module: str


class StoreOptions(BackendOptions, total=False):
    """Where sessions live: the options every integration takes, Flask's included."""

    interval: float | str | None
    max_size: int | str
    max_sessions: int | str | None
    timeout: float | str | None
    store: LembroStore | None
    type: str | None
    key_prefix: str | None
    owner_key: str | None
    max_per_owner: int | str | None


class SessionOptions(StoreOptions, total=False):
    """The options of every integration but Flask (whose cookie is Flask's), typed so that a type checker
    catches a misspelt one (``maxSize=``)."""

    cookie_name: str
    secret: str | bytes | list[str | bytes] | None
    secure: bool | str
    httponly: bool | str
    samesite: str | None
    path: str
    domain: str | None
    max_age: int | str | None


class SessionFactory:
    """Cookie rules, backend and store for one configuration; bad options raise ValueError naming them.

    ``interval`` (default 60), ``max_size`` (default ``'1M'``) and
    ``max_sessions`` (default ``None``) configure the store built here; they
    are refused, even at their default values, beside ``store`` (which has
    its own) or ``type`` (another backend bounds its own memory). ``type``
    picks another Beaker backend, whose own options come as keywords; its keys
    start with ``key_prefix`` (by default the cookie name and a colon), so
    apps sharing one Redis never adopt each other's sessions. In a lembro
    store keys are bare ids unless ``key_prefix`` is given (for apps handed
    one ``store``).

    ``owner_key`` names the session key that holds its owner (a user's id, a
    str or an int): ``owned_by`` and ``revoke`` then find a user's sessions
    through an index, and ``max_per_owner`` bounds how many each user keeps.
    """

    def __init__(
        self,
        *,
        interval: float | str | None | Unset = UNSET,
        max_size: int | str | Unset = UNSET,
        max_sessions: int | str | None | Unset = UNSET,
        timeout: float | str | None = 1800,
        cookie_name: str = "lembro.sid",
        secret: str | bytes | list[str | bytes] | None = None,
        secure: bool | str = False,
        httponly: bool | str = True,
        samesite: str | None = "Lax",
        path: str = "/",
        domain: str | None = None,
        max_age: int | str | None = None,
        store: LembroStore | None = None,
        type: str | None = None,
        key_prefix: str | None = None,
        session_class: type[Session] = Session,
        owner_key: str | None = None,
        max_per_owner: int | str | None = None,
        **backend_options: Unpack[BackendOptions],
    ) -> None:
        if store is not None and not isinstance(store, LembroStore):
            raise ValueError(f"store: expected a LembroStore or None, got {store!r}")
        self.cookie = SessionCookie(cookie_name, secret, secure, httponly, samesite, path, domain, max_age)
        if self.cookie.samesite == "None" and not self.cookie.secure:
            raise ValueError("samesite: 'None' is refused by browsers unless secure=True")
        lifetime = parse_seconds(timeout, "timeout", allow_none=True)
        lembro = type in (None, "lembro")
        if lembro and backend_options:
            name = next(iter(backend_options))
            raise unknown_option(name, _OPTIONS, "not a lembro option (backend options need type=, e.g. 'file')")
        for name in backend_options:  # a misspelt lembro option would reach the backend, which ignores it
            if name not in _OPTIONS and close_option(name, _OPTIONS):
                raise unknown_option(name, _OPTIONS, "")
        given = {"interval": interval, "max_size": max_size, "max_sessions": max_sessions}
        store_options: dict[str, Any] = {name: value for name, value in given.items() if value is not UNSET}
        if store_options and not (lembro and store is None):
            name = next(iter(store_options))
            where = ("the store= given has its own" if lembro else "type='memory' has no cap at all: leave type= out "
                     "for lembro's bounded store" if type == "memory" else f"type={type!r} bounds its own memory")
            raise ValueError(f"{name}: a lembro store option, refused here: {where} (got {store_options[name]!r})")
        if not lembro and store is not None:
            raise ValueError(f"store: a LembroStore means nothing with type={type!r}")
        if type == "memory":
            log.warning("type='memory' is Beaker's unbounded backend, the one lembro replaces: it never drops "
                        "expired sessions and has no cap, so a flood of new clients grows it until the process "
                        "dies. Leave type= out for lembro's bounded store, or use type='ext:redis'")
        if lembro and store is None:
            store = LembroStore(**store_options, timeout=lifetime)
        self.store = store if lembro else None
        self.key_prefix = key_prefix
        self.backend = SessionBackend(type, self.store, lifetime, key_prefix=self._prefix(self.cookie.name),
                                      **backend_options)
        self.backend.index_owners(_checked_owner_key(owner_key), parse_count(max_per_owner, "max_per_owner"))
        if self.backend.max_per_owner is not None and owner_key is None:
            raise ValueError(f"max_per_owner: needs owner_key, the session key that holds the owner "
                             f"(got {max_per_owner!r} without one)")
        self._backends = {self.cookie.name: self.backend}
        self.session_class = session_class

    def owned_by(self, owner: str | int | None) -> list[OwnedSession]:
        """The live sessions of ``owner`` (a user's id as ``session[owner_key]`` holds it; ``42`` and
        ``'42'`` are one), most recently used first; ``[]`` for ``None`` or an unknown owner.

        Each has ``id``, ``created`` and ``accessed`` (seconds since the epoch) and ``data`` (a copy);
        listing them is no activity of theirs. It costs time in proportion to the owner's sessions.
        """
        text = self._owner(owner)
        if text is None:
            return []
        backends = self._prefixes()
        if len(backends) == 1:
            return backends[0].owned_by(text)
        return sorted((found for backend in backends for found in backend.owned_by(text)),
                      key=lambda found: found.accessed, reverse=True)

    def revoke(self, owner: str | int | None, keep: str | None = None) -> int:
        """Destroy every live session of ``owner`` but ``keep`` (typically this request's ``session.id``:
        "sign out everywhere else"); returns how many. Each is gone as after a logout: its client gets a
        fresh session, and a request of it still running cannot write it back.

        After ``regenerate()`` in this request (a password change), ``session.id`` is an id stored only
        with the response: the session kept is the one stored under its old id, which then moves there.
        """
        text = self._owner(owner)
        if text is None:
            return 0
        pending = self.backend.regenerating.get(keep) if keep is not None else None
        if pending is not None and pending._stored is not None:
            keep = pending._stored
        return sum(backend.revoke(text, keep) for backend in self._prefixes())

    def _owner(self, owner: object) -> str | None:
        if self.backend.owner_key is None:
            raise ValueError("owner_key: not set, so sessions have no owners to find (e.g. owner_key='user_id')")
        return owner_text(owner)

    def _prefixes(self) -> list[SessionBackend]:
        """One backend per key prefix this factory has used (Flask's cookie names can each have their own)."""
        found: dict[str, SessionBackend] = {}
        for backend in list(self._backends.values()):
            found.setdefault(backend.key_prefix, backend)
        return list(found.values())

    def lembro_store(self) -> LembroStore:
        """The LembroStore sessions live in; ``AttributeError`` with another backend (``type=``), which has none."""
        if self.store is None:
            raise AttributeError(f"store: type={self.backend.type!r} keeps sessions outside lembro: there is no "
                                 f"LembroStore (its own tools show its memory)")
        return self.store

    def _prefix(self, cookie_name: str) -> str:
        """The key prefix for sessions under the cookie ``cookie_name``: the one given, else none in a lembro store (the
        app's own, unless it was handed to several) and the cookie's name and a colon in a shared backend."""
        if self.key_prefix is not None:
            return self.key_prefix
        return "" if self.store is not None else f"{cookie_name}:"

    def backend_for(self, cookie_name: str) -> SessionBackend:
        """The backend for sessions under the cookie ``cookie_name`` (Flask's comes from its config): keys
        prefixed for it; ``owned_by`` and ``revoke`` look under every prefix used so far."""
        backend = self._backends.get(cookie_name)
        if backend is None:
            if len(self._backends) >= _MAX_NAMES:  # names come from configuration, not from clients
                self._backends.clear()
            backend = self._backends[cookie_name] = self.backend.with_prefix(self._prefix(cookie_name))
        return backend

    #: Whether ``open`` still looks at ``wsgi.multiprocess``: until the first request that says so.
    _watch_processes = True

    def open(self, environ: dict[str, Any], cookie: SessionCookie | None = None, eager: bool = False) -> Session:
        """The request's session, lazy: the cookie is read now, the backend on first use (``eager``: now).

        ``cookie`` replaces the configured cookie rules for this request (Flask reads them from its config).
        """
        if self._watch_processes and environ.get("wsgi.multiprocess"):
            self._several_processes()
        cookie = cookie or self.cookie
        sid, stale = cookie.read(environ)
        session = self.session_class(self.backend_for(cookie.name), sid, rolling=cookie.max_age is not None, resign=stale)
        if eager and sid is not None:
            session.load()
        return session

    def _several_processes(self) -> None:
        """The server runs several worker processes, each with its own lembro store: a client whose next
        request reaches another worker is signed out. Said once per process at WARNING, and recorded on
        the store (``store.multiprocess``, shown by ``StatsApp``); a shared backend (``type=``) is fine."""
        self._watch_processes = False
        if self.store is None:
            return
        self.store.multiprocess = True
        global _warned_processes
        with _warning_lock:
            warn, _warned_processes = not _warned_processes, True
        if warn:
            logging.getLogger("lembro_wsgi").warning(
                "this server runs several worker processes (wsgi.multiprocess), and each keeps its own "
                "in-memory lembro session store: a client whose next request reaches another worker is signed "
                "out. Run one process with threads (e.g. gunicorn -w 1 --threads 8), or keep sessions in a "
                "shared backend (type='ext:redis')")

    def close(self, session: Session, cookie: SessionCookie | None = None, resend: bool = False,
              max_age: int | None | Unset = UNSET) -> list[tuple[str, str]]:
        """Save or touch the session and return the Set-Cookie headers the response needs.

        ``resend`` sends the cookie of a stored session even if unchanged; ``max_age`` overrides the cookie's.
        """
        return (cookie or self.cookie).headers(session.commit(resend), max_age)


def _checked_owner_key(owner_key: object) -> str | None:
    if owner_key is None or (isinstance(owner_key, str) and owner_key.strip()):
        return owner_key
    raise ValueError(f"owner_key: expected the session key that holds the owner (a non-empty str) or None, "
                     f"got {owner_key!r}")


#: Every option SessionFactory takes, for "did you mean".
_OPTIONS = frozenset(inspect.signature(SessionFactory).parameters) - {"backend_options"}


class HasStore:
    """What every integration offers: its ``sessions`` factory and ``store``, typed for a stats page."""

    sessions: SessionFactory

    @property
    def store(self) -> LembroStore:
        """The LembroStore (``StatsApp(x.store)``); ``AttributeError`` with another backend, which has none."""
        return self.sessions.lembro_store()
