"""Django session engine: sessions in a bounded lembro store (or on Redis), Django's cookies and middleware.

In ``settings.py``::

    SESSION_ENGINE = "lembro_wsgi.django"
    LEMBRO_SESSIONS = {"max_size": "64M", "interval": 60}      # optional; or {"type": "ext:redis", "url": ...}
                                                               # or {"store": LembroStore(...)} of your own
    LEMBRO_SESSIONS = {..., "max_per_owner": 3}                # optional: at most 3 devices per user

and, for the people who run it, in ``urls.py``::

    from lembro_wsgi.django import stats_view
    urlpatterns = [path("lembro/", staff_member_required(stats_view))]

Each session lives as long as Django says (``SESSION_COOKIE_AGE``, ``set_expiry``,
``SESSION_EXPIRE_AT_BROWSER_CLOSE``); cookies stay Django's (``SESSION_COOKIE_*``).
``LEMBRO_SESSIONS`` is read once per process; a bad value raises ``ImproperlyConfigured`` naming it.

Who is signed in where: sessions are indexed by their owner, the value they hold under ``owner_key``,
by default django.contrib.auth's own ``'_auth_user_id'`` (the signed-in user's pk, as text), so an app
needs no code. In a view::

    from lembro_wsgi import django as lembro

    lembro.owned_by(request.user)     # the user's live sessions, most recently used first: id (a
                                      # session_key), created, accessed (epoch seconds), data (a copy)
    lembro.revoke(request.user, keep=request.session.session_key)   # sign out everywhere else: how many

Both take a user or its pk (``42`` and ``'42'`` are one owner); an anonymous user has no sessions.
``login()`` moves the owner to its new key, ``logout()`` drops it; a revoked session is signed out like
a logout (its next request is anonymous, and a request of it still running cannot write it back:
``SessionInterrupted``). ``max_per_owner`` (an int, default None) signs out a user's least recently
used sessions when a save gives them more than that many; "used" is the last time Django saved the
session (a request that only reads it leaves it as it was, as for its expiry; with
``SESSION_SAVE_EVERY_REQUEST`` every request counts).

``owner_key`` may name another session key (a str or an int in it owns the session), or be ``None``
for no index. The index lives in lembro's store or in Redis (``ext:redis``); other backends (``file``)
keep none: there the default is off, and an explicit ``owner_key`` or ``max_per_owner`` is refused.
"""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from typing import Any

from .options import MAX_SECONDS, is_none, missing_extra

try:
    from asgiref.sync import sync_to_async
    from django.conf import settings
    from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY
    from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
    from django.core.exceptions import ImproperlyConfigured
    from django.db.models import Model
    from django.http import HttpRequest, HttpResponse
except ModuleNotFoundError as exc:
    raise ModuleNotFoundError(missing_extra(__name__, "Django", "django"), name=exc.name) from exc

from .backend import OwnedSession, SessionBackend
from .factory import SessionFactory
from .stats import StatsApp
from .store import LembroStore, SessionTooLarge

__all__ = ["OWNER_KEY", "SessionStore", "owned_by", "revoke", "stats_view", "store"]

#: The settings key lembro's options are read from.
SETTING = "LEMBRO_SESSIONS"
#: The session key whose value owns a session unless ``owner_key`` says otherwise: django.contrib.auth's
#: (``'_auth_user_id'``, the signed-in user's pk as text).
OWNER_KEY: str = AUTH_SESSION_KEY
#: lembro options that Django's own settings decide here.
_DJANGO_DECIDES = {
    "timeout": "SESSION_COOKIE_AGE (or session.set_expiry())", "max_age": "SESSION_COOKIE_AGE",
    "cookie_name": "SESSION_COOKIE_NAME", "secret": "SECRET_KEY", "secure": "SESSION_COOKIE_SECURE",
    "httponly": "SESSION_COOKIE_HTTPONLY", "samesite": "SESSION_COOKIE_SAMESITE", "path": "SESSION_COOKIE_PATH",
    "domain": "SESSION_COOKIE_DOMAIN", "session_class": "SESSION_ENGINE (a subclass of SessionStore)",
}
_lock = threading.Lock()
_creating = threading.Lock()
_made_stores: weakref.WeakSet[LembroStore] = weakref.WeakSet()  # the stores the engine made (not handed in)
_factory: SessionFactory | None = None


def _sessions() -> SessionFactory:
    """The process's sessions, built from ``settings.LEMBRO_SESSIONS`` on first use."""
    global _factory
    factory = _factory
    if factory is None:
        with _lock:
            if _factory is None:
                _factory = _configured()
            factory = _factory
    return factory


def _configured() -> SessionFactory:
    options = getattr(settings, SETTING, None)
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ImproperlyConfigured(f"{SETTING}: expected a dict of lembro options, got {options!r}")
    for key, setting in _DJANGO_DECIDES.items():
        if key in options:
            raise ImproperlyConfigured(f"{SETTING}[{key!r}]: Django decides it: set {setting} instead")
    if any(not isinstance(key, str) for key in options):
        raise ImproperlyConfigured(f"{SETTING}: expected option names (str) as keys, got {list(options)!r}")
    age = settings.SESSION_COOKIE_AGE
    if isinstance(age, bool) or not isinstance(age, (int, float)) or age <= 0:
        raise ImproperlyConfigured(f"SESSION_COOKIE_AGE: expected a positive number of seconds, got {age!r}")
    own_store = "store" not in options and options.get("type") in (None, "lembro")  # the only one sharing nothing
    options = {"key_prefix": "" if own_store else "django:", **options,
               "timeout": min(age, MAX_SECONDS)}  # lembro's bound: about 31 years
    # django.contrib.auth's key owns sessions by default, where the backend can index them: one that cannot
    # (file) refuses owner_key, and works on without it as before, unless max_per_owner asked for the index
    default_owner = "owner_key" not in options
    owned: dict[str, Any] = {**options, "owner_key": OWNER_KEY} if default_owner else options
    try:
        try:
            factory = SessionFactory(**owned)
        except ValueError as exc:
            if not (default_owner and _named(exc) == "owner_key" and is_none(options.get("max_per_owner"))):
                raise
            factory = SessionFactory(**options)  # the backend keeps no index: no owners
    except (TypeError, ValueError) as exc:
        name = _named(exc)
        if name == "owner_key" and default_owner:  # the default, refused by the backend: max_per_owner asked
            name = "max_per_owner"
        raise ImproperlyConfigured(f"{SETTING}[{name!r}]: {exc}") from exc
    if own_store and factory.store is not None:
        _made_stores.add(factory.store)
    return factory


def _named(exc: Exception) -> str:
    """The option an error of SessionFactory names (its message starts with it)."""
    return str(exc).split(":", 1)[0].strip("'\" ")


def _reset() -> None:
    """Forget the configuration (tests that change ``LEMBRO_SESSIONS``); the thread of a store the engine made
    is stopped (one handed in with ``store`` is the app's)."""
    global _factory
    with _lock:
        made = _factory.store if _factory is not None else None
        if made is not None and made in _made_stores:
            made.close()
        _factory = None


def store() -> LembroStore | None:
    """The process's LembroStore, or ``None`` when ``LEMBRO_SESSIONS`` names another backend (``type``)."""
    return _sessions().store


def owned_by(user_or_pk: object) -> list[OwnedSession]:
    """The live sessions of a user (a user object, or its pk: ``42`` and ``'42'`` are one), most recently
    used first, each with ``id`` (its ``session_key``), ``created``, ``accessed`` (seconds since the epoch)
    and ``data`` (a copy); ``[]`` for an anonymous user, ``None`` or an unknown pk.

    ``ImproperlyConfigured`` when sessions have no owners (``owner_key`` None, or a backend without an index).
    """
    return _owners().owned_by(_owner(user_or_pk))


def revoke(user_or_pk: object, keep: str | None = None) -> int:
    """Sign a user out of every session but ``keep`` (typically ``request.session.session_key``: "sign out
    everywhere else"); returns how many sessions it ended.

    Each is ended as by ``logout()``: its next request is anonymous, and a request of it still running
    cannot write it back (``SessionInterrupted``). Without ``keep`` this request's session goes too: call
    ``logout(request)`` after it, so that this response does not try to save it.
    """
    return _owners().revoke(_owner(user_or_pk), keep)


def _owners() -> SessionFactory:
    """The process's sessions, if they are indexed by owner."""
    factory = _sessions()
    if factory.backend.owner_key is None:
        if factory.backend.indexes_owners:
            raise ImproperlyConfigured(f"{SETTING}['owner_key']: None, so sessions have no owners to find: leave "
                                       f"it out for django.contrib.auth's {OWNER_KEY!r}")
        raise ImproperlyConfigured(f"{SETTING}['type']: type={factory.backend.type!r} keeps no index of sessions by "
                                   f"owner; lembro's store (no type) and 'ext:redis' do")
    return factory


def _owner(user_or_pk: object) -> str | int | None:
    """The owner a user or a pk is known by: the text django.contrib.auth stores for a user, a pk as it is."""
    if user_or_pk is None or (isinstance(user_or_pk, (str, int)) and not isinstance(user_or_pk, bool)):
        return user_or_pk  # the factory takes it as text (an IntEnum's value too)
    if isinstance(user_or_pk, Model):
        return str(user_or_pk._meta.pk.value_to_string(user_or_pk))  # what auth's login() stores
    if getattr(user_or_pk, "is_anonymous", False) is True:  # AnonymousUser
        return None
    if isinstance(user_or_pk, uuid.UUID):  # a UUIDField pk: auth stores its str()
        return str(user_or_pk)
    raise ValueError(f"user_or_pk: expected a user, its pk (a str, an int or a UUID) or None, "
                     f"got {type(user_or_pk).__name__} {user_or_pk!r:.60}")


class SessionStore(SessionBase):
    """Django's ``SessionBase`` over lembro: each session's expiry age is its lifetime in the store.

    Writes of an existing session are conditional: one destroyed meanwhile (a logout in another
    request, ``revoke``, ``max_per_owner``) is not brought back, and Django answers the request with
    ``SessionInterrupted``.
    """

    def __init__(self, session_key: str | None = None) -> None:
        self._backend: SessionBackend = _sessions().backend
        self._created: float | None = None  # when the loaded session began (kept across its rewrites)
        super().__init__(session_key)

    def load(self) -> dict[str, Any]:
        sid: str | None = self._session_key  # type: ignore[has-type]  # Django's property, untyped
        record = self._backend.load(sid) if sid else None
        if record is None:
            self._session_key = None
            return {}
        self._created = record["created"]
        return dict(record["data"])

    def exists(self, session_key: str | None) -> bool:
        return bool(session_key) and self._backend.exists(session_key)  # type: ignore[arg-type]

    def create(self) -> None:
        while True:
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            self.create()
            return
        data = self._get_session(no_load=must_create)
        key: str | None = self.session_key
        if key is None:  # it was loaded now, and is not stored (any more): as Django's own engines
            raise UpdateError
        age = self.get_expiry_age()
        if age <= 0:  # expired at once (Django's own engines store it already expired)
            self._backend.destroy(key)
            return
        age, record = self._record(data, age)
        try:
            if must_create:
                with _creating:  # exists + save, one step among this process's creates (keys are random)
                    if self._backend.exists(key):
                        raise CreateError
                    self._backend.save(key, record, age)
            elif not self._backend.replace(key, record, age):
                raise UpdateError
        except SessionTooLarge:  # logged by the store; what it held is unchanged, and the response goes out
            pass

    def cycle_key(self) -> None:
        """A new key for the same data (Django's ``login()``): one conditional move that keeps the session's
        standing in the eviction order. A session destroyed meanwhile (a logout in another request) is not
        brought back: this one starts again, empty, under a new key."""
        data = self._session
        old = self.session_key
        age = self.get_expiry_age()
        if old is None or age <= 0:
            super().cycle_key()
            return
        new = self._get_new_session_key()
        age, record = self._record(data, age)
        try:
            moved = self._backend.move(old, new, record, age)
        except SessionTooLarge:  # logged by the store: the old key keeps what it held
            moved = False
        if moved:
            self._session_key = new
        else:
            empty: dict[str, Any] = {}
            self._session_key, self._session_cache, self._created = None, empty, None
            self.create()
        self.modified = True

    async def acycle_key(self) -> None:
        if self._in_memory():
            self.cycle_key()
        else:
            await sync_to_async(self.cycle_key)()

    def _record(self, data: dict[str, Any], age: int) -> tuple[int, dict[str, Any]]:
        """The stored record of ``data`` living ``age`` seconds (at most lembro's bound), and that age."""
        age = min(age, MAX_SECONDS)
        now = time.time()
        return age, {"created": self._created or now, "accessed": now, "data": dict(data), "lifetime": age}

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self._backend.destroy(session_key)

    @classmethod
    def clear_expired(cls) -> None:
        """``manage.py clearsessions``: a purge of the lembro store (other backends expire their own)."""
        lembro = _sessions().store
        if lembro is not None:
            lembro.purge()

    # The async API: a lembro store is memory, so its calls need no thread; other backends do I/O and keep
    # Django's own versions, which run the sync ones in a thread.
    async def aload(self) -> dict[str, Any]:
        return self.load() if self._in_memory() else await super().aload()

    async def aexists(self, session_key: str | None) -> bool:
        return self.exists(session_key) if self._in_memory() else await super().aexists(session_key)

    async def acreate(self) -> None:
        if self._in_memory():
            self.create()
        else:
            await super().acreate()

    async def asave(self, must_create: bool = False) -> None:
        if self._in_memory():
            self.save(must_create)
        else:
            await super().asave(must_create)

    async def adelete(self, session_key: str | None = None) -> None:
        if self._in_memory():
            self.delete(session_key)
        else:
            await super().adelete(session_key)

    @classmethod
    async def aclear_expired(cls) -> None:
        cls.clear_expired()

    def _in_memory(self) -> bool:
        return self._backend.lembro


def stats_view(request: HttpRequest) -> HttpResponse:
    """The stats page (HTML, or JSON on ``Accept`` or ``?format=json``) of the process's lembro store; 404 on
    another backend. Put it behind your own access control."""
    lembro = store()
    if lembro is None:
        return HttpResponse("no lembro store: LEMBRO_SESSIONS names another backend\n", status=404,
                            content_type="text/plain")
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer["status"], answer["headers"] = int(status.split()[0]), headers

    body = b"".join(StatsApp(lembro)(request.META, start_response))
    response = HttpResponse(body, status=answer["status"])
    for name, value in answer["headers"]:
        if name.lower() != "content-length":
            response[name] = value
    return response
