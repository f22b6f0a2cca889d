"""What keeps the example apps safe to copy: the secret, CSRF tokens, and a stats page for this machine only."""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import secrets
import sys

CSRF_KEY = "csrf_token"
#: The README's command that makes a secret and hands it to the app (the examples read SESSION_SECRET).
GENERATE = "export SESSION_SECRET=\"$(python -c 'import secrets; print(secrets.token_urlsafe(32))')\""
#: A secret shorter than this, or with fewer distinct characters, is refused (token_urlsafe(32) gives 43).
MIN_LENGTH, MIN_DISTINCT = 32, 8
#: Words that give away a sample value copied from a config or a README rather than a generated secret.
PLACEHOLDER_WORDS = ("change", "secret", "example", "placeholder", "your", "random", "password", "replace",
                     "sample", "dummy", "default", "fixme")


def weakness(secret: str) -> str | None:
    """Why ``secret`` (one line) is no secret to sign cookies with, or None when it looks random enough."""
    if len(secret) < MIN_LENGTH:
        return f"shorter than {MIN_LENGTH} characters ({len(secret)})"
    # as written in samples: lower case, upper case or capitalised (a generated secret spells one so by chance
    # about once in 100,000 draws; mixed case is left alone, or it would be far more often)
    word = next((word for word in PLACEHOLDER_WORDS if any(form in secret for form in (
        word, word.upper(), word.capitalize()))), None)
    if word:
        return f"a placeholder (it contains {word!r}; if it was generated, generate another)"
    if len(set(secret)) < MIN_DISTINCT:
        return f"a placeholder (only {len(set(secret))} distinct characters)"
    return None


def cookie_secret(configured: str | None = None, setting: str = "the ini file") -> str:
    """The secret that signs cookies: ``configured`` (from an ini's ``setting``), else SESSION_SECRET, else a random one.

    A placeholder left from a sample config, or a short or repetitive secret,
    stops the app with a message; a random secret lasts one run (sessions end
    at restart), which is fine for a demo only. An ini's secret of several
    lines (a rotation list) is checked line by line.
    """
    source = setting if configured else "SESSION_SECRET"
    secret = configured or os.environ.get("SESSION_SECRET")
    if secret:  # empty is unset
        lines = [line.strip() for line in secret.splitlines() if line.strip()] or [secret.strip()]
        reason = next(filter(None, map(weakness, lines)), None)
        if reason:
            raise SystemExit(
                f"refusing to start: the cookie secret from {source} is {reason}. It signs every session "
                f"cookie: {'take it out of the ini file and ' if configured else ''}set a long random one with"
                f"\n    {GENERATE}"
            )
        return secret
    print("notice: SESSION_SECRET is not set: cookies are signed with a random secret for this run only",
          file=sys.stderr, flush=True)
    return secrets.token_urlsafe(32)


def tokens_match(expected: object, sent: object) -> bool:
    """Whether ``sent`` is the non-empty string ``expected``, compared in constant time (a file part, a list: no)."""
    if not (isinstance(expected, str) and isinstance(sent, str) and expected and sent):
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())


def csrf_token(session) -> str:
    """The session's CSRF token, for a hidden ``csrf_token`` field of every form that POSTs."""
    if CSRF_KEY not in session:
        session[CSRF_KEY] = secrets.token_urlsafe(32)
    return session[CSRF_KEY]


def csrf_ok(session, sent: object) -> bool:
    """Whether a form sent the session's token; anything but a string (a file part) is refused."""
    return tokens_match(session.get(CSRF_KEY), sent)


def csrf_field(session) -> str:
    """The hidden form field that carries the session's token."""
    return f'<input type="hidden" name="{CSRF_KEY}" value="{csrf_token(session)}">'


#: Headers that say a proxy passed the request on: behind a proxy on this machine, every client comes from loopback.
PROXY_HEADERS = ("HTTP_FORWARDED", "HTTP_X_REAL_IP", "HTTP_VIA", "HTTP_X_CLIENT_IP", "HTTP_TRUE_CLIENT_IP",
                 "HTTP_CF_CONNECTING_IP", "HTTP_X_ORIGINAL_FORWARDED_FOR")
#: The names this machine goes by, with any port: another Host is a page of some other site (DNS rebinding).
LOCAL_HOST = re.compile(r"(?:localhost|127\.0\.0\.1|\[::1\])(?::[0-9]{1,5})?", re.IGNORECASE | re.ASCII)


def from_this_machine(environ: dict) -> bool:
    """Whether a request comes from loopback, for this machine by name, and not through a proxy.

    Behind a proxy every client looks local, so any X-Forwarded-*, Forwarded,
    X-Real-IP or Via header refuses the request; and a Host other than
    localhost, 127.0.0.1 or [::1] (a DNS-rebinding page in the local browser
    names its own site) refuses it too. A server that drops proxy headers
    before the app sees them (waitress does, unless
    ``clear_untrusted_proxy_headers=False``) defeats this check.
    """
    if any(environ.get(name) for name in PROXY_HEADERS) or any(
        name.startswith("HTTP_X_FORWARDED_") and value for name, value in environ.items()
    ):
        return False
    if not LOCAL_HOST.fullmatch(environ.get("HTTP_HOST") or ""):
        return False
    try:
        return ipaddress.ip_address(environ.get("REMOTE_ADDR") or "").is_loopback
    except ValueError:
        return False


def local_only(app):
    """A WSGI app that passes requests from this machine to ``app`` and answers 403 to the rest."""

    def guarded(environ, start_response):
        if from_this_machine(environ):
            return app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"Forbidden: this page answers only requests from this machine.\n"]

    return guarded


def pyramid_csrf(config) -> None:
    """Pyramid's CSRF check on every POST, refused with a 403 that stores nothing and sets no cookie.

    Pyramid's ``SessionCSRFStoragePolicy`` makes a token while checking one, so
    a refused POST stored a session and sent a cookie (and Pyramid answers 400):
    this policy compares with the session's token only, and the exception
    view answers 403 as the other examples do.
    """
    from pyramid.csrf import SessionCSRFStoragePolicy
    from pyramid.exceptions import BadCSRFOrigin, BadCSRFToken
    from pyramid.httpexceptions import HTTPForbidden

    class CheckOnly(SessionCSRFStoragePolicy):
        def check_csrf_token(self, request, supplied_token) -> bool:
            return tokens_match(request.session.get(self.key), supplied_token)

    def refused(request):
        return HTTPForbidden("a form of this site must be sent.")

    config.set_csrf_storage_policy(CheckOnly())
    config.set_default_csrf_options(require_csrf=True)
    config.add_exception_view(refused, context=BadCSRFToken)
    config.add_exception_view(refused, context=BadCSRFOrigin)
