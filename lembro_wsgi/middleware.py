"""LembroMiddleware: server-side sessions for any WSGI app, in one line.

    from lembro_wsgi import LembroMiddleware
    app = LembroMiddleware(app, interval=60, max_size='1M', secret=os.environ['SESSION_SECRET'])

The app finds a lazy, dict-like ``Session`` at ``environ['lembro.session']``;
it is saved when the response starts, and again when the body finishes if
the app changed it meanwhile. ``type='file'`` (or ``'ext:redis'``, ...) keeps
the same app code on any other Beaker backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Callable

from .backend import SessionBackend
from .cookie import SessionCookie
from .options import parse_seconds
from .session import Session
from .store import LembroStore

WSGIApp = Callable[..., Iterable[bytes]]


class LembroMiddleware:
    """Wraps a WSGI app with sessions kept in a bounded ``LembroStore`` (or another Beaker backend).

    ``interval``, ``max_size`` and ``max_sessions`` configure the store this
    middleware builds (``store=`` shares one you built instead); ``timeout``
    is the idle lifetime of a session. The cookie options are checked here:
    a bad value raises ``ValueError`` naming the option.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        interval: float | str | None = 60,
        max_size: int | str = "1M",
        max_sessions: int | str | None = None,
        timeout: float | str | None = 1800,
        cookie_name: str = "lembro.sid",
        secret: str | bytes | None = None,
        secure: bool | str = False,
        httponly: bool | str = True,
        samesite: str | None = "Lax",
        path: str = "/",
        domain: str | None = None,
        max_age: int | str | None = None,
        environ_key: str = "lembro.session",
        store: LembroStore | None = None,
        type: str | None = None,
        **backend_options: Any,
    ) -> None:
        if not callable(app):
            raise ValueError(f"app: expected a WSGI callable, got {app!r}")
        if not isinstance(environ_key, str) or not environ_key:
            raise ValueError(f"environ_key: expected a non-empty string, got {environ_key!r}")
        if store is not None and not isinstance(store, LembroStore):
            raise ValueError(f"store: expected a LembroStore or None, got {store!r}")
        self.app = app
        self.environ_key = environ_key
        self.cookie = SessionCookie(cookie_name, secret, secure, httponly, samesite, path, domain, max_age)
        lifetime = parse_seconds(timeout, "timeout", allow_none=True)
        if type in (None, "lembro") and backend_options:
            name = next(iter(backend_options))
            raise ValueError(f"{name}: not an option of LembroMiddleware (backend options need type=, e.g. 'file')")
        if type in (None, "lembro") and store is None:
            store = LembroStore(interval=interval, max_size=max_size, max_sessions=max_sessions, timeout=lifetime)
        self.store = store if type in (None, "lembro") else None
        self.backend = SessionBackend(type, self.store, lifetime, **backend_options)

    def session(self, environ: dict) -> Session:
        """A lazy session for this request (not yet loaded)."""
        return Session(self.backend, self.cookie.read(environ), rolling=self.cookie.max_age is not None)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        session = environ[self.environ_key] = self.session(environ)
        cookie_headers: list[tuple[str, str]] = []
        committed = False

        def session_start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            nonlocal committed
            if not committed:
                committed = True
                cookie_headers.extend(self.cookie.headers(session.commit()))
            return start_response(status, list(headers) + cookie_headers, exc_info)

        return _FinishAfterBody(self.app(environ, session_start_response), session.finish)


class _FinishAfterBody:
    """Passes the body through and calls ``close()`` on it, then ``on_close``."""

    def __init__(self, app_iter: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._app_iter = app_iter
        self._on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._app_iter)

    def close(self) -> None:
        try:
            close = getattr(self._app_iter, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()
