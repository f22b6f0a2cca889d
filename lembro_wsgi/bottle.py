"""Bottle integration: a plugin that hands lembro sessions to the routes that ask for one.

    import bottle
    from lembro_wsgi.bottle import LembroPlugin

    app = bottle.Bottle()
    app.install(LembroPlugin(max_size='1M', secret=os.environ['SESSION_SECRET']))

    @app.route('/')
    def index(session):             # routes without a 'session' argument are left untouched
        session['n'] = session.get('n', 0) + 1
        return f"visit {session['n']}"

Or with no plugin at all: ``LembroMiddleware(bottle.default_app())`` and
``bottle.request.environ['lembro.session']`` in the routes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from typing import Any, Callable

import bottle

from .factory import SessionFactory


class LembroPlugin:
    """Bottle plugin (API v2); options are those of ``LembroMiddleware`` (see ``SessionFactory``)."""

    name = "lembro"
    api = 2

    def __init__(self, keyword: str = "session", **options: Any) -> None:
        if not isinstance(keyword, str) or not keyword.isidentifier():
            raise ValueError(f"keyword: expected a Python identifier, got {keyword!r}")
        self.keyword = keyword
        self.sessions = SessionFactory(**options)
        self.store = self.sessions.store

    def setup(self, app: bottle.Bottle) -> None:
        for other in app.plugins:
            if isinstance(other, LembroPlugin) and other is not self and other.keyword == self.keyword:
                raise bottle.PluginError(f"another LembroPlugin already hands out {self.keyword!r}")

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        if self.keyword not in inspect.signature(route.callback).parameters:
            return callback

        @functools.wraps(callback)
        def with_session(*args: Any, **kwargs: Any) -> Any:
            session = self.sessions.open(bottle.request.environ)
            kwargs[self.keyword] = session
            try:
                body = callback(*args, **kwargs)
            except bottle.HTTPResponse as response:  # redirect() and abort() raise: the session still counts
                self._send_cookie(session, response)
                session.finish()
                raise
            if hasattr(body, "__next__") and not hasattr(body, "read"):  # a generator: it runs as Bottle sends it
                return self._stream(session, body)
            # A route may return its own response (HTTPResponse, static_file()): it replaces bottle.response.
            self._send_cookie(session, body if isinstance(body, bottle.BaseResponse) else bottle.response)
            session.finish()
            return body

        return with_session

    def _stream(self, session: Any, body: Iterator[Any]) -> Iterator[Any]:
        """A generator route's body: Bottle takes the first chunk before it sends the headers, so the
        cookie is decided then, and the session finished once the body is done or closed."""
        try:
            first = True
            for chunk in body:
                if first:
                    self._send_cookie(session, bottle.response)
                    first = False
                yield chunk
            if first:
                self._send_cookie(session, bottle.response)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            session.finish()

    def _send_cookie(self, session: Any, response: bottle.BaseResponse) -> None:
        for name, value in self.sessions.close(session):
            response.add_header(name, value)
