"""The session cookie: reading a session id from a request and writing Set-Cookie headers.

Parsing and formatting go through WebOb; with a ``secret`` the id is signed
with HMAC-SHA256 (WebOb's ``SignedSerializer``, which compares in constant
time)::

    cookie = SessionCookie("lembro.sid", secret="at least 16 characters")
    sid = cookie.read(environ)          # None when absent, malformed or badly signed
    headers = cookie.headers(sid)       # [('Set-Cookie', 'lembro.sid=...; Path=/; HttpOnly; SameSite=Lax')]
    headers = cookie.headers(EXPIRE)    # an already-expired cookie
"""

from __future__ import annotations

import re
import secrets

from webob.cookies import RequestCookies, SignedSerializer, make_cookie

from .options import parse_bool, parse_count

#: ``headers(EXPIRE)`` tells the client to drop its cookie.
EXPIRE = ""

_ID = re.compile(r"[A-Za-z0-9_-]{43}")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MAX_COOKIE = 256  # a signed id is 86 characters: anything much longer is not ours
_SAMESITE = {"strict": "Strict", "lax": "Lax", "none": "None"}
MIN_SECRET = 16


def new_session_id() -> str:
    """A fresh id: 256 bits from ``secrets``, 43 URL-safe characters."""
    return secrets.token_urlsafe(32)


def is_session_id(value: object) -> bool:
    """Whether ``value`` has the exact shape of an id from ``new_session_id``."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


class _IdSerializer:
    """Ids to bytes and back for ``SignedSerializer``; anything not shaped like an id is refused."""

    def dumps(self, sid: str) -> bytes:
        return sid.encode("ascii")

    def loads(self, raw: bytes) -> str:
        sid = raw.decode("ascii", "replace")
        if not is_session_id(sid):
            raise ValueError("not a session id")
        return sid


class SessionCookie:
    """How the session id travels: name, signing and attributes, all checked at construction."""

    def __init__(
        self,
        name: str = "lembro.sid",
        secret: str | bytes | None = None,
        secure: bool | str = False,
        httponly: bool | str = True,
        samesite: str | None = "Lax",
        path: str = "/",
        domain: str | None = None,
        max_age: int | str | None = None,
    ) -> None:
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ValueError(f"cookie_name: expected a cookie name (letters, digits, . _ -), got {name!r}")
        if secret is not None and (not isinstance(secret, (str, bytes)) or len(secret) < MIN_SECRET):
            raise ValueError(f"secret: expected None or a str/bytes of at least {MIN_SECRET} characters, got {secret!r}")
        self.name = name
        self.secure = parse_bool(secure, "secure")
        self.httponly = parse_bool(httponly, "httponly")
        key = samesite.lower() if isinstance(samesite, str) else samesite
        if key is not None and key not in _SAMESITE:
            raise ValueError(f"samesite: expected 'Strict', 'Lax', 'None' or None, got {samesite!r}")
        self.samesite = _SAMESITE[key] if key else None
        if self.samesite == "None" and not self.secure:
            raise ValueError("samesite: 'None' is refused by browsers unless secure=True")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"path: expected a path starting with '/', got {path!r}")
        if domain is not None and (not isinstance(domain, str) or not domain or ";" in domain):
            raise ValueError(f"domain: expected None or a domain name, got {domain!r}")
        self.path, self.domain = path, domain
        self.max_age = parse_count(max_age, "max_age")
        self._signer = (
            None if secret is None
            else SignedSerializer(secret, "lembro_wsgi.session", hashalg="sha256", serializer=_IdSerializer())
        )

    def read(self, environ: dict) -> str | None:
        """The session id the request carries, or ``None`` for anything missing, malformed or forged."""
        try:
            value = RequestCookies(environ).get(self.name)
        except Exception:  # noqa: BLE001 - a header we cannot parse is no session, never a 500
            return None
        if not value or len(value) > _MAX_COOKIE:
            return None
        if self._signer is None:
            return value if is_session_id(value) else None
        try:
            return self._signer.loads(value.encode("ascii"))
        except (ValueError, UnicodeError):
            return None

    def value(self, sid: str) -> str:
        """What the cookie holds for ``sid``: the id itself, or the id signed."""
        return sid if self._signer is None else self._signer.dumps(sid).decode("ascii")

    def headers(self, outcome: str | None) -> list[tuple[str, str]]:
        """Set-Cookie headers for what the session decided: an id to send, ``EXPIRE``, or ``None``."""
        if outcome is None:
            return []
        value = None if outcome == EXPIRE else self.value(outcome)
        cookie = make_cookie(
            self.name, value, max_age=self.max_age if value is not None else None, path=self.path,
            domain=self.domain, secure=self.secure, httponly=self.httponly, samesite=self.samesite,
        )
        return [("Set-Cookie", cookie)]
