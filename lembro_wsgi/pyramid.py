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
``LembroMiddleware``.
"""

from __future__ import annotations

import secrets
from typing import Any, cast

from pyramid.interfaces import ISession
from zope.interface import implementer

from .factory import SessionFactory
from .middleware import FinishAfterBody, runs_app_code
from .options import is_none
from .session import Session

SETTINGS_PREFIX = "lembro."
#: Options whose ini ``none`` is Python's None (the rest parse it themselves; samesite's ``none`` is SameSite=None,
#: its empty value None).
_NULLABLE = ("secret", "domain", "type", "key_prefix")
_FLASH = "_f_"
_CSRF = "_csrft_"


@implementer(ISession)
class PyramidSession(Session):
    """A lembro Session with Pyramid's flash queues and CSRF token."""

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


class LembroSessionFactory:
    """A Pyramid session factory; options are those of ``LembroMiddleware`` (see ``SessionFactory``)."""

    def __init__(self, **options: Any) -> None:
        self.sessions = SessionFactory(session_class=PyramidSession, **options)
        self.store = self.sessions.store

    def __call__(self, request: Any) -> PyramidSession:
        session = cast(PyramidSession, self.sessions.open(request.environ))

        def set_cookie(request: Any, response: Any) -> None:
            response.headerlist.extend(self.sessions.close(session))
            if runs_app_code(response.app_iter, request.environ):  # streamed: finish again once it is sent
                length = response.content_length  # setting app_iter clears it
                response.app_iter = FinishAfterBody(response.app_iter, session.finish)
                response.content_length = length

        request.add_response_callback(set_cookie)
        request.add_finished_callback(lambda request: session.finish())  # Pyramid runs it before the body
        return session


def settings_options(settings: dict[str, Any]) -> dict[str, Any]:
    """The ``lembro.*`` settings of an ini file as factory options (``lembro.max_size`` -> ``max_size``).

    A ``lembro.secret`` of several lines is a rotation list, newest first; ``none`` for ``secret``,
    ``domain``, ``type`` or ``key_prefix`` is None, as it is for every other option that takes None (an empty value
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
    """``config.include('lembro_wsgi.pyramid')``: a lembro session factory from the ``lembro.*`` settings."""
    config.set_session_factory(LembroSessionFactory(**settings_options(config.get_settings())))
