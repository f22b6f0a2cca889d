"""What keeps the example apps safe to copy: the secret, CSRF tokens, and a stats page for this machine only."""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import sys

PLACEHOLDER = "change-me"
CSRF_KEY = "csrf_token"


def cookie_secret(configured: str | None = None) -> str:
    """The secret that signs cookies: ``configured`` (from an ini), else LEMBRO_SECRET, else a random one.

    A placeholder left from a sample config stops the app; a random secret lasts
    one run (sessions end at restart), which is fine for a demo only.
    """
    secret = configured or os.environ.get("LEMBRO_SECRET")
    if secret and PLACEHOLDER in secret.lower():
        raise SystemExit(
            f"refusing to start: the cookie secret is a placeholder ({secret.strip()!r}). Set LEMBRO_SECRET to a long "
            "random string, e.g. python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    if not secret:
        print("notice: LEMBRO_SECRET is not set: cookies are signed with a random secret for this run only",
              file=sys.stderr, flush=True)
        secret = secrets.token_hex(32)
    return secret


def csrf_token(session) -> str:
    """The session's CSRF token, for a hidden ``csrf_token`` field of every form that POSTs."""
    if CSRF_KEY not in session:
        session[CSRF_KEY] = secrets.token_urlsafe(32)
    return session[CSRF_KEY]


def csrf_ok(session, sent: str | None) -> bool:
    """Whether a form sent the session's token, compared in constant time."""
    expected = session.get(CSRF_KEY)
    return bool(expected and sent) and hmac.compare_digest(expected.encode(), str(sent).encode())


def csrf_field(session) -> str:
    """The hidden form field that carries the session's token."""
    return f'<input type="hidden" name="{CSRF_KEY}" value="{csrf_token(session)}">'


def from_this_machine(environ: dict) -> bool:
    """Whether a request comes from loopback, not through a proxy (behind one, every client looks local)."""
    if environ.get("HTTP_X_FORWARDED_FOR") or environ.get("HTTP_FORWARDED"):
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
