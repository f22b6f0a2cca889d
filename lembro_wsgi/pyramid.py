"""Pyramid integration: a lembro session factory, configurable from ini settings.

In code::

    from lembro_wsgi.pyramid import LembroSessionFactory
    config.set_session_factory(LembroSessionFactory(max_size='4M', secret=os.environ['SESSION_SECRET']))

or from the ini file, with ``config.include('lembro_wsgi.pyramid')``::

    lembro.max_size = 4M
    lembro.interval = 60
    lembro.secure = true

with the secret given in code from your secret store, never written in the ini (``lembro.secret``
takes one, or several lines to rotate).

``request.session`` is then a full ``pyramid.interfaces.ISession`` (flash
queues, CSRF tokens) backed by the same Session and cookie code as
``LembroMiddleware``. The include also adds ``session_tween_factory``, which
finishes a session first used inside a streamed body once that body is sent
(``config.add_tween('lembro_wsgi.pyramid.session_tween_factory')`` in code).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from pyramid.interfaces import ISession
from pyramid.threadlocal import get_current_request
from zope.interface import implementer

from .factory import HasStore, SessionFactory
from .middleware import FinishAfterBody, runs_app_code
from .options import is_none
from .session import Session

if TYPE_CHECKING:
    from typing import Unpack

    from .factory import SessionOptions

SETTINGS_PREFIX = "lembro."
#: Options whose ini ``none`` is Python's None (the rest parse it themselves; samesite's ``none`` is SameSite=None,
#: its empty value None).
_NULLABLE = ("secret", "domain", "type", "key_prefix", "owner_key")
_FLASH = "_f_"
_CSRF = "_csrft_"
#: Set in ``request.environ`` by the tween: a session first used after the response callbacks is finished by it.
_TWEEN = "lembro.pyramid.tween"

log = logging.getLogger("lembro_wsgi")


@implementer(ISession)
class PyramidSession(Session):
    """A lembro Session with Pyramid's flash queues and CSRF token."""

    #: The factory that made it; ``_answered`` once its response callback decided the cookie (a session
    #: first used inside a streamed body, after Pyramid ran the response callbacks, never is).
    _factory: LembroSessionFactory | None = None
    _answered = False

    def _finish_late(self) -> bool:
        """After the body, for a session first used once the headers had gone: no cookie can reach the
        client now, so only the session it already holds is saved (or its idle timer restarted); a new or
        regenerated id, which it could never learn, is not stored. Returns whether changes were dropped so."""
        if not self._loaded:
            return False
        self._committed = True  # as if the cookie had been decided before the body, with the session unused
        dropped = self._dirty and self._id != self._client
        if dropped:
            self._dirty = False
        self.finish()
        return dropped

    def flash(self, msg: Any, queue: str = "", allow_duplicate: bool = True) -> None:
        storage = self.setdefault(_FLASH + queue, [])
        if allow_duplicate or msg not in storage:
            storage.append(msg)
            self.changed()

    def pop_flash(self, queue: str = "") -> list[Any]:
        return list(self.pop(_FLASH + queue, []))

    def peek_flash(self, queue: str = "") -> list[Any]:
        return list(self.get(_FLASH + queue, []))

    def new_csrf_token(self) -> str:
        token = secrets.token_hex(20)
        self[_CSRF] = token
        return token

    def get_csrf_token(self) -> str:
        token = self.get(_CSRF)
        return token if token is not None else self.new_csrf_token()


class LembroSessionFactory(HasStore):
    """A Pyramid session factory; options are those of ``LembroMiddleware`` (see ``SessionFactory``)."""

    def __init__(self, **options: Unpack[SessionOptions]) -> None:
        if "session_class" in options:
            raise ValueError("session_class: the Pyramid integration sets it (PyramidSession)")
        self.sessions = SessionFactory(session_class=PyramidSession, **options)
        self._warned_late = False

    def __call__(self, request: Any) -> PyramidSession:
        session = cast(PyramidSession, self.sessions.open(request.environ))
        session._factory = self
        if get_current_request() is not request and not request.environ.get(_TWEEN):
            self._warn_once("request.session was first used after Pyramid had answered (inside a streamed "
                            "body): its changes are not saved and no cookie is sent. Use request.session in "
                            "the view, or config.include('lembro_wsgi.pyramid') to save a returning "
                            "client's session once the body is sent")

        def set_cookie(request: Any, response: Any) -> None:
            session._answered = True
            response.headerlist.extend(self.sessions.close(session))
            if runs_app_code(response.app_iter, request.environ):  # streamed: finish again once it is sent
                length = response.content_length  # setting app_iter clears it
                response.app_iter = FinishAfterBody(response.app_iter, session.finish)
                response.content_length = length

        request.add_response_callback(set_cookie)
        request.add_finished_callback(lambda request: session.finish())  # Pyramid runs it before the body
        return session

    def finish_late(self, session: PyramidSession) -> None:
        """After the body, a session first used while it was sent (see ``session_tween_factory``)."""
        if session._finish_late():
            self._warn_once("request.session was first used while a streamed body was sent, after the "
                            "headers: a new session (or a new id) cannot reach the client, so its changes "
                            "are dropped. Use request.session in the view")

    def _warn_once(self, message: str) -> None:
        """``message`` at WARNING the first time for this factory, at DEBUG after that."""
        warn, self._warned_late = not self._warned_late, True
        (log.warning if warn else log.debug)("%s", message)


def session_tween_factory(handler: Callable[[Any], Any], registry: Any) -> Callable[[Any], Any]:
    """A tween that finishes, once a streamed body is sent, a lembro session first used inside it.

    Pyramid has run its response callbacks by then, so no cookie can be sent: the session the client
    already holds is saved (or its idle timer restarted); a new one is not stored, and that is warned
    about once. ``config.include('lembro_wsgi.pyramid')`` adds it.
    """

    def tween(request: Any) -> Any:
        request.environ[_TWEEN] = True
        response = handler(request)
        app_iter = getattr(response, "app_iter", None)
        if app_iter is not None and runs_app_code(app_iter, request.environ):
            length = response.content_length  # setting app_iter clears it
            response.app_iter = FinishAfterBody(app_iter, lambda: _finish_late(request))
            response.content_length = length
        return response

    return tween


def _finish_late(request: Any) -> None:
    session = request.__dict__.get("session")  # Pyramid's reified request.session, if it was ever made
    if isinstance(session, PyramidSession) and session._factory is not None and not session._answered:
        session._factory.finish_late(session)


def settings_options(settings: dict[str, Any]) -> dict[str, Any]:
    """The ``lembro.*`` settings of an ini file as factory options (``lembro.max_size`` -> ``max_size``).

    A ``lembro.secret`` of several lines is a rotation list, newest first; ``none`` for ``secret``,
    ``domain``, ``type``, ``key_prefix`` or ``owner_key`` is None, as it is for every other option that takes None (an empty value
    too, but for ``secret``, where it is refused, and ``key_prefix``, where it is the empty prefix). An empty
    ``samesite`` is None, no SameSite attribute; its ``none`` is SameSite=None.
    """
    options = {key[len(SETTINGS_PREFIX):]: value for key, value in settings.items() if key.startswith(SETTINGS_PREFIX)}
    for name in _NULLABLE:
        value = options.get(name)
        if is_none(value) and (name not in ("secret", "key_prefix") or str(value).strip()):
            options[name] = None  # an empty secret is an unset variable, refused below, never "sign nothing";
            # an empty key_prefix is the empty prefix (the key layout before key_prefix)
    samesite = options.get("samesite")
    if isinstance(samesite, str) and not samesite.strip():
        options["samesite"] = None
    secret = options.get("secret")
    if isinstance(secret, str) and "\n" in secret.strip():
        options["secret"] = [line.strip() for line in secret.splitlines() if line.strip()]
    return options


def includeme(config: Any) -> None:
    """``config.include('lembro_wsgi.pyramid')``: a lembro session factory from the ``lembro.*`` settings, and
    ``session_tween_factory``."""
    config.set_session_factory(LembroSessionFactory(**settings_options(config.get_settings())))
    config.add_tween("lembro_wsgi.pyramid.session_tween_factory")
