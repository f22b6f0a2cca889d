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
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .options import missing_extra

try:
    import bottle
except ModuleNotFoundError as exc:
    raise ModuleNotFoundError(missing_extra(__name__, "Bottle", "bottle"), name=exc.name) from exc

from .factory import HasStore, SessionFactory

if TYPE_CHECKING:
    from typing import Unpack

    from .factory import SessionOptions
from .session import Session


class LembroPlugin(HasStore):
    """Bottle plugin (API v2); options are those of ``LembroMiddleware`` (see ``SessionFactory``).

    Bottle applies one plugin per ``name``, so each plugin is named after its keyword: ``"lembro"`` for
    ``session``, ``"lembro.<keyword>"`` for another. Plugins with other keywords and cookies work side
    by side on one app (and ``skip=``/``uninstall()`` can pick one); a second plugin for the same
    keyword or cookie name is refused at install time.
    """

    name = "lembro"
    api = 2

    def __init__(self, keyword: str = "session", **options: Unpack[SessionOptions]) -> None:
        if not isinstance(keyword, str) or not keyword.isidentifier():
            raise ValueError(f"keyword: expected a Python identifier, got {keyword!r}")
        self.keyword = keyword
        self.name = "lembro" if keyword == "session" else f"lembro.{keyword}"
        self.sessions = SessionFactory(**options)

    def setup(self, app: bottle.Bottle) -> None:
        """Refuse a second plugin for the same keyword (Bottle would drop one) or cookie (they would
        overwrite each other's cookie and lose the sessions)."""
        self._refuse_clashes(app.plugins, "this app")

    def _refuse_clashes(self, plugins: Iterable[Any], where: str, keywords: bool = True) -> None:
        """``PluginError`` if another LembroPlugin among ``plugins`` hands out our keyword or uses our cookie."""
        cookie = self.sessions.cookie.name
        for other in plugins:
            if not isinstance(other, LembroPlugin) or other is self:
                continue
            if keywords and other.keyword == self.keyword:
                raise bottle.PluginError(
                    f"LembroPlugin(keyword={self.keyword!r}): {where} already has a LembroPlugin handing out "
                    f"{self.keyword!r}; give one of them another keyword=")
            if other.sessions.cookie.name == cookie:
                raise bottle.PluginError(
                    f"LembroPlugin(keyword={self.keyword!r}): the LembroPlugin handing out {other.keyword!r} in "
                    f"{where} already uses cookie {cookie!r}; give one of them another cookie_name=")

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        if self.keyword not in inspect.signature(route.callback).parameters:
            return callback
        # Checked here too: a plugin given to one route (apply=) never goes through setup(), and the apps
        # a sub-app is mounted on (Bottle.mount) send their cookies to the same browser.
        self._refuse_clashes(route.all_plugins(), "this route")
        parent = route.app.config.get("_mount.app")
        while isinstance(parent, bottle.Bottle):
            self._refuse_clashes(parent.plugins, "the app this one is mounted on", keywords=False)
            parent = parent.config.get("_mount.app")

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

    def _stream(self, session: Session, body: Iterator[Any]) -> Iterator[Any]:
        """A generator route's body, run as Bottle sends it. Bottle skips empty chunks and sends the
        headers with the first other one; until then an HTTPResponse the route raises (``redirect()``,
        ``abort()``) or yields is the response sent instead, so the cookie is decided then and goes onto
        the response actually sent. The session is finished once the body is done or closed."""
        decided = False
        try:
            try:
                for chunk in body:
                    if not decided and chunk:
                        decided = True
                        self._send_cookie(session, chunk if isinstance(chunk, bottle.HTTPResponse) else bottle.response)
                    yield chunk
            except bottle.HTTPResponse as response:
                if not decided:  # Bottle sends this response rather than bottle.response
                    decided = True
                    self._send_cookie(session, response)
                raise
            if not decided:
                self._send_cookie(session, bottle.response)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            session.finish()

    def _send_cookie(self, session: Session, response: bottle.BaseResponse) -> None:
        for name, value in self.sessions.close(session):
            response.add_header(name, value)
