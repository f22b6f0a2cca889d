"""LembroMiddleware: server-side sessions for any WSGI app, in one line.

    from lembro_wsgi import LembroMiddleware
    app = LembroMiddleware(app, interval=60, max_size='1M', secret=os.environ['SESSION_SECRET'])

The app finds a lazy, dict-like ``Session`` at ``environ['lembro.session']``;
it is saved when the response starts, and again when the body finishes if
the app changed it meanwhile. ``type='file'`` (or ``'ext:redis'``, ...) keeps
the same app code on any other Beaker backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .factory import HasStore, SessionFactory

if TYPE_CHECKING:
    from typing import Unpack

    from .factory import SessionOptions

WSGIApp = Callable[..., Iterable[bytes]]


class LembroMiddleware(HasStore):
    """Wraps a WSGI app with sessions kept in a bounded ``LembroStore`` (or another Beaker backend).

    Options (those of ``SessionFactory``, plus ``environ_key``): ``interval=60``,
    ``max_size='1M'``, ``max_sessions=None``, ``timeout=1800``,
    ``cookie_name='lembro.sid'``, ``secret=None``, ``secure=False``,
    ``httponly=True``, ``samesite='Lax'``, ``path='/'``, ``domain=None``,
    ``max_age=None``, ``store=None``, ``type=None`` and the chosen Beaker
    backend's own options. A bad value raises ``ValueError`` naming the
    option. ``self.store`` is the store, for a stats page.
    """

    def __init__(
        self, app: WSGIApp, *, environ_key: str = "lembro.session", **options: Unpack[SessionOptions]
    ) -> None:
        if not callable(app):
            raise ValueError(f"app: expected a WSGI callable, got {app!r}")
        if not isinstance(environ_key, str) or not environ_key:
            raise ValueError(f"environ_key: expected a non-empty string, got {environ_key!r}")
        self.app = app
        self.environ_key = environ_key
        self.sessions = SessionFactory(**options)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        session = environ[self.environ_key] = self.sessions.open(environ)
        cookie_headers: list[tuple[str, str]] | None = None

        def session_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal cookie_headers
            if cookie_headers is None:  # the first call decides; an error page after it reuses the decision
                cookie_headers = self.sessions.close(session)
            return start_response(status, list(headers) + cookie_headers if cookie_headers else headers, exc_info)

        app_iter = self.app(environ, session_start_response)
        # A list (most bodies) is checked here without a call; runs_app_code decides the rest.
        if type(app_iter) is list or not runs_app_code(app_iter, environ):  # the app has finished: hand it on
            session.finish()
            return app_iter
        return FinishAfterBody(app_iter, session.finish)


def runs_app_code(app_iter: Iterable[bytes], environ: dict[str, Any]) -> bool:
    """Whether sending the body can still run app code (that may change the session): not for a list or
    tuple, nor for the server's own ``wsgi.file_wrapper``, which must reach it unwrapped to be sent fast."""
    if isinstance(app_iter, (list, tuple)):
        return False
    file_wrapper = environ.get("wsgi.file_wrapper")
    return not (isinstance(file_wrapper, type) and isinstance(app_iter, file_wrapper))


class FinishAfterBody:
    """Passes the body through and calls ``close()`` on it, then ``on_close`` (the session's ``finish()``)."""

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
