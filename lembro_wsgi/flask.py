"""Flask integration: ``flask.session`` kept server-side in a bounded lembro store.

One line beside the secret key that Flask's own session needs too, with options in code::

    from lembro_wsgi.flask import LembroSessionInterface
    app.secret_key = os.environ["SESSION_SECRET"]
    app.session_interface = LembroSessionInterface(max_size="4M")

or as an extension configured from ``app.config`` (``LEMBRO_MAX_SIZE``,
``LEMBRO_INTERVAL``, ``LEMBRO_MAX_SESSIONS``, ``LEMBRO_TIMEOUT``,
``LEMBRO_TYPE``, ``LEMBRO_URL``, ...)::

    from lembro_wsgi.flask import LembroSession
    LembroSession(app)              # or LembroSession().init_app(app)

The cookie follows Flask's own settings, read at every request as Flask's
default session does: ``SESSION_COOKIE_*``, ``PERMANENT_SESSION_LIFETIME``,
``SESSION_REFRESH_EACH_REQUEST``, ``app.secret_key`` (signing) and
``SECRET_KEY_FALLBACKS`` (verifying; such cookies are re-signed).
"""

from __future__ import annotations

import copy
import logging
import math
import operator
import re
import time
from typing import TYPE_CHECKING, Any

from .options import MAX_SECONDS, close_option, missing_extra, unknown_option

try:
    import flask
    from flask.json.provider import DefaultJSONProvider
    from flask.sessions import SessionInterface, SessionMixin
    from werkzeug.http import dump_cookie
except ModuleNotFoundError as exc:
    raise ModuleNotFoundError(missing_extra(__name__, "Flask", "flask"), name=exc.name) from exc

from .backend import BackendUnavailable, SessionBackend
from .cookie import MIN_SECRET, SessionCookie
from .factory import HasStore, SessionFactory, StoreOptions
from .store import LembroStore

if TYPE_CHECKING:
    from typing import Unpack
from .session import Session

#: Cookie options of LembroMiddleware that Flask configures itself, and where.
FLASK_SETTINGS = {
    "cookie_name": "SESSION_COOKIE_NAME",
    "secret": "app.secret_key (SECRET_KEY) and SECRET_KEY_FALLBACKS",
    "secure": "SESSION_COOKIE_SECURE",
    "httponly": "SESSION_COOKIE_HTTPONLY",
    "samesite": "SESSION_COOKIE_SAMESITE",
    "path": "SESSION_COOKIE_PATH",
    "domain": "SESSION_COOKIE_DOMAIN",
    "partitioned": "SESSION_COOKIE_PARTITIONED",
    "max_age": "PERMANENT_SESSION_LIFETIME with session.permanent = True",
}
CONFIG_PREFIX = "LEMBRO_"
#: The shortest SECRET_KEY (and fallback) accepted: lembro's minimum for every secret.
FLASK_MIN_SECRET = MIN_SECRET
_MAX_CONFIGS = 16
#: The config keys Flask's own ``get_cookie_*`` methods read: while an interface keeps those methods, its cookie
#: rules are found by these values alone, without calling each method on every request.
_COOKIE_CONFIG = operator.itemgetter(
    "SESSION_COOKIE_NAME", "SECRET_KEY", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_PATH", "APPLICATION_ROOT", "SESSION_COOKIE_DOMAIN", "SESSION_COOKIE_PARTITIONED",
)
_COOKIE_GETTERS = ("get_cookie_name", "get_cookie_secure", "get_cookie_httponly", "get_cookie_samesite",
                   "get_cookie_path", "get_cookie_domain")
#: The options Flask's interface takes (its cookie is Flask's), for "did you mean".
_FLASK_OPTIONS = frozenset(StoreOptions.__optional_keys__)
_NOT_IN_DOMAIN = re.compile(r"[\x00-\x20\x7f;,=\"\\]")  # what would end or bend a Domain attribute
#: Printable ASCII but ';' and '=', no space at either end: a name browsers send back as it was set.
_FLASK_NAME = re.compile(r"[!-:<>-~](?:[ !-:<>-~]*[!-:<>-~])?")
log = logging.getLogger("lembro_wsgi")
_STORE_OPTIONS = frozenset({"interval", "max_size", "max_sessions"})
#: The config's options kept beside a backend given in code: they are not the backend's.
_KEPT = frozenset({"timeout", "key_prefix", "owner_key", "max_per_owner"})


class FlaskSession(Session, SessionMixin):  # type: ignore[override]  # lembro's read-only ``new``; Flask never sets it
    """A lembro ``Session`` that is Flask's ``SessionMixin``: ``permanent``, and Flask's writable flags.

    ``modified`` is set by every change (set it yourself after mutating a
    nested value, as in Flask); ``accessed`` is set by Flask when
    ``flask.session`` is used. Neither is reset by the save. ``regenerate()``
    (at login) and ``invalidate()`` (at logout) are lembro's.
    """

    accessed = False  # Flask's flag, a plain attribute: it shadows lembro's timestamp
    cookie: SessionCookie | None = None  # the cookie rules of the request, read from Flask's config once
    _refused = False  # its save was refused: Flask's 500 page, which saves again, must not send its cookie

    @property
    def modified(self) -> bool:
        """Whether the session changed in this request; setting it ``True`` is ``changed()``."""
        return self._modified

    @modified.setter
    def modified(self, value: bool) -> None:
        if value:
            self.changed()
        else:  # as in Flask: nothing of this request's changes is saved
            self._dirty = False
        self._modified = bool(value)

    def __copy__(self) -> dict[str, Any]:
        """A plain dict of the data, as ``dict(session)``: a copy never shares or saves the session."""
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return copy.deepcopy(dict(self), memo)


class UnusableSession(FlaskSession):
    """The session of a request whose cookie settings lembro cannot follow: any use raises their error."""

    _refused = True  # nothing to save

    def __init__(self, backend: SessionBackend, error: str) -> None:
        super().__init__(backend, None)
        self._error = error

    def _load(self) -> None:
        raise ValueError(self._error)


class FlaskCookie(SessionCookie):
    """Flask's cookie rules: any name, path and domain Flask's own session takes, formatted by Werkzeug
    exactly as Flask formats its session cookie (a lasting one carries ``Expires``)."""

    @staticmethod
    def _checked_name(name: object) -> str:
        if not isinstance(name, str) or not _FLASK_NAME.fullmatch(name):
            raise ValueError(f"cookie_name: expected a name browsers send back as it is (printable ASCII, "
                             f"no ';' or '=', no space at either end), got {name!r}")
        return name

    @staticmethod
    def _checked_path(path: object) -> str | None:
        return None if path is None else str(path)  # Werkzeug percent-quotes what a path cannot hold

    @staticmethod
    def _checked_domain(domain: object) -> str | None:
        if domain and (not isinstance(domain, str) or _NOT_IN_DOMAIN.search(domain)):
            raise ValueError(f"domain: expected a host name, got {domain!r}")
        return str(domain) if domain else None

    def _format(self, value: str | None, max_age: int | None) -> str:
        options: dict[str, Any] = {"partitioned": True} if self.partitioned else {}  # Werkzeug 3.1+
        expires = 0 if value is None else None if max_age is None else time.time() + max_age
        try:
            return dump_cookie(
                self.name, value or "", max_age=0 if value is None else None, expires=expires, path=self.path,
                domain=self.domain, secure=self.secure, httponly=self.httponly, samesite=self.samesite, **options,
            )
        except (ValueError, UnicodeError) as exc:  # Werkzeug's own refusal (an undecodable domain, say)
            raise ValueError(f"domain: Werkzeug cannot write the cookie: {exc}") from exc


class FlaskSessionFactory(SessionFactory):
    """The interface's sessions: ``owned_by`` and ``revoke`` also look under the key prefix of the current
    app's ``SESSION_COOKIE_NAME`` (a shared backend's keys follow it) when this interface serves that app,
    so a shell or a worker that has served no request yet finds the sessions other processes made."""

    def _prefixes(self) -> list[SessionBackend]:
        if flask.has_app_context() and getattr(flask.current_app.session_interface, "sessions", None) is self:
            name = flask.current_app.config.get("SESSION_COOKIE_NAME")
            if isinstance(name, str) and name:
                self.backend_for(name)
        return super()._prefixes()


class LembroSessionInterface(SessionInterface, HasStore):
    """Flask session interface over lembro; options are those of ``LembroMiddleware`` but the cookie's.

    ``interval``, ``max_size``, ``max_sessions``, ``timeout`` (the idle
    lifetime of sessions that are not permanent), ``store``, ``type``,
    ``key_prefix`` and the backend's options. Cookie options come from
    Flask's config and are refused here, naming the setting to use.
    ``.store`` is the store (for ``StatsApp``).
    """

    def __init__(self, **options: Unpack[StoreOptions]) -> None:
        for name in options:
            if name in FLASK_SETTINGS or name == "session_class":
                raise ValueError(f"{name}: Flask configures it: set {FLASK_SETTINGS.get(name, 'it')} instead")
            if name not in _FLASK_OPTIONS:
                cookie_option = close_option(name, FLASK_SETTINGS)
                if cookie_option and not close_option(name, _FLASK_OPTIONS):
                    raise ValueError(f"{name}: Flask configures the cookie: set {FLASK_SETTINGS[cookie_option]}")
                if close_option(name, _FLASK_OPTIONS):
                    raise unknown_option(name, _FLASK_OPTIONS, "")
        # Named as Flask's default cookie: on a shared backend the first key prefix (and owners' index)
        # owned_by looks in before any request (LembroSession adds the app's own SESSION_COOKIE_NAME).
        self.sessions = FlaskSessionFactory(session_class=FlaskSession, cookie_name="session", **options)
        #: Cookie rules by the Flask settings they follow, or why they cannot: one per configuration (an
        #: interface may serve several apps), so each is built, and a refusal logged, once.
        self._cookies: dict[tuple[Any, ...], SessionCookie | str] = {}
        self._last: tuple[tuple[Any, ...], SessionCookie | str | None] = ((), None)  # the last config and its rules
        self._stock_getters = all(getattr(type(self), name) is getattr(SessionInterface, name) for name in _COOKIE_GETTERS)

    def cookie(self, app: flask.Flask) -> SessionCookie | None:
        """The cookie rules for ``app``'s current config; ``None`` without a secret key.

        A setting lembro cannot follow raises ``ValueError`` naming it, logged once per configuration.
        """
        fallbacks = app.config.get("SECRET_KEY_FALLBACKS") or ()
        if isinstance(fallbacks, list):
            fallbacks = tuple(fallbacks)
        raw: tuple[Any, ...] = ()
        if self._stock_getters:  # the raw config values find the rules built from them before
            try:
                raw = (_COOKIE_CONFIG(app.config), fallbacks)
            except KeyError:  # a setting removed from the config
                pass
            else:
                last_raw, cookie = self._last
                if raw == last_raw:  # the same objects as last time compare by identity: nothing is hashed
                    return self._usable(cookie)
        if not app.secret_key:
            cookie = None
        elif raw:
            try:
                cookie = self._cookies.get(raw)
            except TypeError:  # a setting that cannot be hashed
                raw, cookie = (), None
            if cookie is None:
                cookie = self._settled(app, fallbacks)
                self._remember(raw, cookie)
        else:
            cookie = self._settled(app, fallbacks)
        if raw:
            self._last = (raw, cookie)
        return self._usable(cookie)

    @staticmethod
    def _usable(cookie: SessionCookie | str | None) -> SessionCookie | None:
        if isinstance(cookie, str):
            raise ValueError(cookie)
        return cookie

    def _settled(self, app: flask.Flask, fallbacks: Any) -> SessionCookie | str:
        """The cookie rules the ``get_cookie_*`` methods give for ``app``, built once per distinct result."""
        settings: tuple[Any, ...] = (
            self.get_cookie_name(app), app.secret_key, fallbacks,
            bool(self.get_cookie_secure(app)), bool(self.get_cookie_httponly(app)),  # truthy, as Werkzeug takes them
            self.get_cookie_samesite(app), self.get_cookie_path(app), self.get_cookie_domain(app),
            bool(app.config.get("SESSION_COOKIE_PARTITIONED")),
        )
        try:
            cookie = self._cookies.get(settings)
        except TypeError:  # an unhashable setting: built (and refused) each time
            cookie, settings = None, ()
        if cookie is None:
            cookie = _flask_cookie(settings)
            self._remember(settings, cookie)
        return cookie

    def _remember(self, key: tuple[Any, ...], cookie: SessionCookie | str) -> None:
        if key:
            if len(self._cookies) >= _MAX_CONFIGS:
                self._cookies.clear()
            self._cookies[key] = cookie

    def open_session(self, app: flask.Flask, request: flask.Request) -> FlaskSession | None:
        """The request's session, loaded now when the request carries a cookie (as Flask's default does).

        With cookie settings lembro cannot follow, the session raises their error when it is used: a
        route that never uses it still answers.
        """
        if not getattr(app.json, "_lembro_sessions", False):
            _encode_sessions(app)
        try:
            cookie = self.cookie(app)
        except ValueError as exc:
            return UnusableSession(self.sessions.backend, str(exc))
        if cookie is None:  # Flask then hands out its NullSession: reads as empty, refuses writes
            return None
        try:
            session: FlaskSession = self.sessions.open(request.environ, cookie=cookie, eager=True)  # type: ignore[assignment]
        except BackendUnavailable:  # lazy then: the view's first use raises it again, where error handlers see it
            session = self.sessions.open(request.environ, cookie=cookie)  # type: ignore[assignment]
        session.cookie = cookie
        return session

    def save_session(self, app: flask.Flask, session: SessionMixin, response: flask.Response) -> None:
        """Save or touch the session; set, refresh or expire the cookie as ``should_set_cookie`` says.

        A ``BackendUnavailable`` here is answered by the app's error handler for it when the view used
        its session (Flask would only show it to a 500 handler), and ignored when it did not.
        """
        if not isinstance(session, FlaskSession) or session._refused:  # (an UnusableSession is refused)
            return
        cookie = session.cookie or self.cookie(app)
        if cookie is None:
            return
        try:
            permanent = session.loaded and session.permanent  # a session not loaded (Redis timed out) stays so
            lifetime = _lasting(app.permanent_session_lifetime.total_seconds()) if permanent else None
            session.lifetime = lifetime
            headers = self.sessions.close(
                session, cookie=cookie, resend=session.loaded and self.should_set_cookie(app, session), max_age=lifetime
            )
        except BackendUnavailable as exc:
            if not (session.loaded and session.accessed):  # never loaded, or never used: the response goes out
                return  # (the backend has logged the outage)
            session._refused = True
            _answer_with_error_handler(app, exc, response)  # the view had its session: not answered as saved
            _vary_on_cookie(response)
            return
        for name, value in headers:
            response.headers.add(name, value)
        if headers or session.accessed:
            _vary_on_cookie(response)
        if response.is_streamed:  # changes made while the body runs; else those of teardown_request functions,
            response.call_on_close(session.finish)  # saved by _finish_after_teardown (no wrapped body to close)


def _finish_after_teardown(sender: flask.Flask, **extra: Any) -> None:
    """Flask's ``request_tearing_down`` signal, sent after the app's ``teardown_request`` functions: save what
    they changed in a lembro session (``finish()`` does nothing for a session unchanged since its save)."""
    session = getattr(flask.globals.request_ctx._get_current_object(), "_session", None)  # type: ignore[attr-defined]
    if isinstance(session, FlaskSession):
        session.finish()


flask.request_tearing_down.connect(_finish_after_teardown, weak=False)


def _vary_on_cookie(response: flask.Response) -> None:
    """``response.vary.add("Cookie")``, without parsing a header into a set when there is none yet (looked for
    by a loop: Werkzeug's ``in`` and ``get`` raise and catch an exception on a miss)."""
    for name, _ in response.headers:
        if name.lower() == "vary":
            response.vary.add("Cookie")
            return
    response.headers.add("Vary", "Cookie")


def _answer_with_error_handler(app: flask.Flask, exc: BackendUnavailable, response: flask.Response) -> None:
    """Turn ``response``, in place, into the app's error handler's answer to ``exc``; no handler: ``exc`` is raised.

    Flask saves the session after its error handling, where a raised exception only reaches a 500
    handler; so the handler for ``BackendUnavailable`` (or a base class) is found the way Flask finds it
    for a view (``handle_user_exception``), and its response's status, headers and body replace
    those of the response Flask will send. ``after_request`` functions, which already ran, are not run
    again. Call it while ``exc`` is being handled: Flask re-raises it with a bare ``raise``.
    """
    answer = app.make_response(app.handle_user_exception(exc))
    response.status = answer.status
    response.headers = answer.headers.copy()
    response.response = answer.response
    response.direct_passthrough = answer.direct_passthrough


def _encode_sessions(app: flask.Flask) -> None:
    """Let ``jsonify(session)`` work as with Flask's own session (a dict): Flask's JSON provider encodes a
    lembro session as its data. A provider of another kind (orjson...) is left as it is."""
    provider: Any = app.json
    provider._lembro_sessions = True
    if isinstance(provider, DefaultJSONProvider):
        fallback = provider.default

        def default(value: Any) -> Any:
            return dict(value) if isinstance(value, Session) else fallback(value)

        provider.default = default


def _flask_cookie(settings: tuple[Any, ...]) -> SessionCookie | str:
    """Cookie rules for Flask's cookie settings, or why lembro cannot follow them (logged at ERROR)."""
    name, secret, fallbacks, secure, httponly, samesite, path, domain, partitioned = settings or (None,) * 9
    try:
        keys = [key for key in fallbacks if key] if isinstance(fallbacks, tuple) else None  # Flask skips empty keys
        if keys is None or not all(isinstance(key, (str, bytes)) for key in keys):
            raise ValueError(f"SECRET_KEY_FALLBACKS: expected a list of str or bytes keys, got {fallbacks!r:.40}")
        return FlaskCookie(
            name, secret=[secret, *reversed(keys)],
            secure=secure, httponly=httponly, samesite=samesite, path=path, domain=domain,
            partitioned=partitioned, min_secret=FLASK_MIN_SECRET,  # lembro's minimum, as everywhere
        )
    except ValueError as exc:
        option, _, reason = str(exc).partition(": ")
        index = option.partition("[")[2].rstrip("]")
        if option.startswith("secret") and index.isdigit():  # the secrets are SECRET_KEY, then the fallbacks reversed
            setting = "SECRET_KEY" if index == "0" else f"SECRET_KEY_FALLBACKS[{len(keys or ()) - int(index)}]"
        else:
            setting = FLASK_SETTINGS.get(option, option)
        error = f"{setting}: {reason}"
        log.error("Flask sessions are unusable: %s", error)
        return error


def _lasting(seconds: float) -> int:
    """A permanent session's lifetime in whole seconds, within what the store and cookie take: Flask
    accepts any ``PERMANENT_SESSION_LIFETIME``, and a request must never fail on it."""
    return min(MAX_SECONDS, max(1, math.ceil(seconds)))


class LembroSession:
    """Flask extension: installs a ``LembroSessionInterface`` configured from ``LEMBRO_*`` config keys.

    Options given here win over the config. A bad value fails in
    ``init_app``, naming the config key. ``.store`` is the store.
    """

    def __init__(self, app: flask.Flask | None = None, **options: Unpack[StoreOptions]) -> None:
        self.options = options
        self.interface: LembroSessionInterface | None = None
        self._interfaces: dict[str, LembroSessionInterface] = {}  # by app name
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> LembroSessionInterface:
        from_config = {
            key[len(CONFIG_PREFIX):].lower(): value for key, value in app.config.items()
            if key.startswith(CONFIG_PREFIX)
        }
        try:
            for name in from_config:  # a misspelt key is named even where the backend in code drops the config's
                if name not in _FLASK_OPTIONS and close_option(name, _FLASK_OPTIONS):
                    raise unknown_option(name, _FLASK_OPTIONS, "")
            if "store" in self.options or "type" in self.options:  # an explicit backend: the config's gives way
                lembro = "store" not in self.options and self.options.get("type") in (None, "lembro")
                kept = _KEPT | _STORE_OPTIONS if lembro else _KEPT
                from_config = {k: v for k, v in from_config.items() if k in kept}
            interface = LembroSessionInterface(**{**from_config, **self.options})
        except ValueError as exc:
            name, _, reason = str(exc).partition(": ")
            if name not in self.options:  # a config key, or one missing from the config
                reason = re.sub(r"did you mean '(\w+)'", lambda m: f"did you mean '{CONFIG_PREFIX}{m[1].upper()}'",
                                reason)
                raise ValueError(f"{CONFIG_PREFIX}{name.upper()}: {reason}") from exc
            raise
        app.session_interface = interface
        app.extensions["lembro"] = interface
        name = app.config.get("SESSION_COOKIE_NAME")
        if isinstance(name, str) and name:  # owned_by looks under its key prefix from the start
            interface.sessions.backend_for(name)
        self.interface = interface
        self._interfaces[app.name] = interface
        return interface

    @property
    def sessions(self) -> SessionFactory:
        """The ``SessionFactory`` of the interface ``init_app`` installed (``.owned_by``, ``.revoke``); for an
        extension serving several apps, ``app.session_interface.sessions``."""
        if self.interface is None:
            raise AttributeError("sessions: LembroSession has none until init_app(app) has run")
        return self.interface.sessions

    @property
    def store(self) -> LembroStore:
        """The store of the interface ``init_app`` installed (``StatsApp(sessions.store)``); for an extension
        serving several apps, ``app.session_interface.store`` says which."""
        if self.interface is None:
            raise AttributeError("store: LembroSession has no store until init_app(app) has run")
        if len({id(interface.store) for interface in self._interfaces.values()}) > 1:
            raise AttributeError(f"store: this LembroSession serves several apps with stores of their own "
                                 f"({', '.join(self._interfaces)}): use app.session_interface.store")
        return self.interface.store
