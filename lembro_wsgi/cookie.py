"""The session cookie: reading a session id from a request and writing Set-Cookie headers.

The header is read as browsers and RFC 6265 read it, in time linear in its
length; Set-Cookie is formatted by WebOb. With a ``secret`` the cookie holds
``id.signature``, an HMAC-SHA256 of the id checked in constant time::

    cookie = SessionCookie("lembro.sid", secret=["newest secret, signs", "older secret, verifies"])
    sid, stale = cookie.read(environ)   # (None, False) when absent, duplicated, malformed or badly signed;
                                        # stale: verified by an older secret, so re-send it signed anew
    headers = cookie.headers(sid)       # [('Set-Cookie', 'lembro.sid=...; Path=/; HttpOnly; SameSite=Lax')]
    headers = cookie.headers(EXPIRE)    # an already-expired cookie
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Any

from webob.cookies import make_cookie

from .options import MAX_SECONDS, UNSET, Unset, parse_bool, parse_count

#: ``headers(EXPIRE)`` tells the client to drop its cookie.
EXPIRE = ""

_ID = re.compile(r"[A-Za-z0-9_-]{43}")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNQUOTED = re.compile(r"[A-Za-z0-9_.-]+")  # cookie values WebOb writes as they are
_MAX_COOKIE = 256  # a signed id is 87 characters: anything much longer is not ours
_SALT = b"lembro_wsgi.session:"
_NO_ID: tuple[None, bool] = (None, False)
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_SAMESITE = {"strict": "Strict", "lax": "Lax", "none": "None"}
MIN_SECRET = 16
_VERIFIED_MAX = 10_000  # remembered verified cookie values, and signed ids: about 2 MB each at most


def new_session_id() -> str:
    """A fresh id: 256 bits from ``secrets``, 43 URL-safe characters."""
    return secrets.token_urlsafe(32)


def is_session_id(value: object) -> bool:
    """Whether ``value`` has the exact shape of an id from ``new_session_id``."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _check_secrets(secret: object, min_length: int = MIN_SECRET) -> list[str | bytes]:
    """The secrets to sign with (first) and accept (all); never echoes a secret in the error."""
    expected = f"a str/bytes of at least {min_length} characters"
    if isinstance(secret, (str, bytes)):
        candidates: list[object] = [secret]
    elif isinstance(secret, (list, tuple)) and secret:
        candidates = list(secret)
    else:
        raise ValueError(f"secret: expected None, or {expected} (or a list of them, newest first), "
                         f"got {type(secret).__name__}")
    for index, candidate in enumerate(candidates):
        if not (isinstance(candidate, (str, bytes)) and len(candidate) >= min_length):
            where = "secret" if isinstance(secret, (str, bytes)) else f"secret[{index}]"
            shown = f"{len(candidate)} characters" if isinstance(candidate, (str, bytes)) else \
                f"a {type(candidate).__name__}"
            raise ValueError(f"{where}: expected {expected}, got {shown}")  # never the secret itself
    return [c for c in candidates if isinstance(c, (str, bytes))]


class _Signer:
    """Signs ids with HMAC-SHA256 under a salted key; verification is constant-time.

    With several secrets the first signs and every one verifies, so a secret
    can be rotated without logging everybody out.
    """

    def __init__(self, secrets: list[str | bytes]) -> None:
        self._verified: dict[str, tuple[str, bool]] = {}  # cookie values already verified: no HMAC again
        self._signed: dict[str, str] = {}  # ids to their value signed by the newest secret: no HMAC again
        self._keys = [
            hashlib.sha256(_SALT + (s.encode("utf-8") if isinstance(s, str) else s)).digest() for s in secrets
        ]

    @staticmethod
    def _signature(key: bytes, sid: str) -> bytes:
        return base64.urlsafe_b64encode(hmac.digest(key, sid.encode("ascii"), "sha256")).rstrip(b"=")

    def sign(self, sid: str) -> str:
        """``sid.signature`` under the newest secret; remembered (a bounded table), as a cookie re-sent to a
        returning client (Flask re-sends a changed session's) is signed again and again."""
        value = self._signed.get(sid)
        if value is None:
            value = f"{sid}.{self._signature(self._keys[0], sid).decode('ascii')}"
            self._remember(self._signed, sid, value)
        return value

    def unsign(self, value: str) -> tuple[str | None, bool]:
        """The id and whether an older secret (not the first) verified it; ``(None, False)`` if none did.

        Values that verified are remembered (a bounded table), so a returning
        client's cookie is checked once; a forged one is checked every time.
        """
        known = self._verified.get(value)
        if known is not None:
            return known
        sid, _, signature = value.partition(".")
        if not is_session_id(sid):
            return None, False
        given = signature.encode("ascii", "replace")
        for index, key in enumerate(self._keys):
            if hmac.compare_digest(given, self._signature(key, sid)):
                verified = (sid, index > 0)
                self._remember(self._verified, value, verified)
                if not index:
                    self._remember(self._signed, sid, value)
                return verified
        return None, False

    @staticmethod
    def _remember(table: dict[str, Any], key: str, value: Any) -> None:
        """Add to a table of ``_VERIFIED_MAX`` entries at most (emptied when full: no client grows it)."""
        if len(table) >= _VERIFIED_MAX:
            table.clear()
        table[key] = value


def cookie_domain(domain: str | None) -> str | None:
    """A ``Domain`` attribute as browsers take it: no leading dot, no port, IDNA for non-ASCII names."""
    if not domain:
        return None
    host = domain.lstrip(".")
    if not host.startswith("["):
        host = host.rpartition(":")[0] if host.count(":") == 1 else host
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        host = host.encode("idna").decode("ascii")
    return host


class SessionCookie:
    """How the session id travels: name, signing and attributes, all checked at construction."""

    def __init__(
        self,
        name: str = "lembro.sid",
        secret: str | bytes | list[str | bytes] | None = None,
        secure: bool | str = False,
        httponly: bool | str = True,
        samesite: str | None = "Lax",
        path: str = "/",
        domain: str | None = None,
        max_age: int | str | None = None,
        partitioned: bool | str = False,
        min_secret: int = MIN_SECRET,
    ) -> None:
        self.name = name = self._checked_name(name)
        self.secure = parse_bool(secure, "secure")
        self.httponly = parse_bool(httponly, "httponly")
        key = samesite.lower() if isinstance(samesite, str) else samesite
        if key is not None and (not isinstance(key, str) or key not in _SAMESITE):
            raise ValueError(f"samesite: expected 'Strict', 'Lax', 'None' or None, got {samesite!r}")
        self.samesite = _SAMESITE[key] if key else None
        self.path = self._checked_path(path)
        self.domain = self._checked_domain(domain)
        self.max_age = parse_count(max_age, "max_age")
        if self.max_age is not None and self.max_age > MAX_SECONDS:
            raise ValueError(f"max_age: expected at most {MAX_SECONDS:,} seconds, got {max_age!r}")
        self.partitioned = parse_bool(partitioned, "partitioned")
        if self.partitioned:  # browsers take a Partitioned cookie only when it is Secure
            self.secure = True
        self._signer = None if secret is None else _Signer(_check_secrets(secret, min_secret))
        #: What follows ``name=value`` in a cookie without Max-Age, formatted by WebOb once per configuration.
        self._attributes = self._format("x", None)[len(name) + 2:]
        value = r"[A-Za-z0-9_-]{43}" if self._signer is None else r"[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}"
        #: The header of a returning client, our cookie alone, matched in one step; anything else is parsed.
        self._alone = re.compile(f" *{re.escape(name)} *= *({value}) *")
        #: Every pair named ours: after the start or a ``;``, and up to the next ``;``. Each attempt fails at
        #: once where no ``;`` starts a pair, so a search is linear in the header's length.
        self._pairs = re.compile(f"(?:\\A|;)[ \t]*{re.escape(name)}[ \t]*(?:=([^;]*))?(?=;|\\Z)")

    @staticmethod
    def _checked_name(name: object) -> str:
        if not isinstance(name, str) or not _TOKEN.fullmatch(name) or name.startswith("$"):
            raise ValueError(f"cookie_name: expected a cookie name (letters, digits, . _ -; no leading $, which "
                             f"WebOb refuses to format), got {name!r}")
        return name

    @staticmethod
    def _checked_path(path: object) -> str | None:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"path: expected a path starting with '/', got {path!r}")
        return path

    @staticmethod
    def _checked_domain(domain: object) -> str | None:
        if domain is not None and not isinstance(domain, str):
            raise ValueError(f"domain: expected None or a domain name, got {domain!r}")
        host = cookie_domain(domain)
        if host is not None and not _DOMAIN.fullmatch(host):
            raise ValueError(f"domain: expected None or a domain name, got {domain!r}")
        return host

    def read(self, environ: dict[str, Any]) -> tuple[str | None, bool]:
        """The session id the request carries and whether it needs re-signing with the newest secret.

        Anything missing, malformed, forged or duplicated (two cookies of this
        name, whatever their order: cookie tossing) is ``(None, False)``.
        """
        header = environ.get("HTTP_COOKIE")
        if not header:
            return _NO_ID
        alone = self._alone.fullmatch(header)
        if alone is not None:  # the most common case: our cookie alone, an id (signed) of the right shape
            value = alone.group(1)
        elif self.name not in header:
            return _NO_ID
        else:
            value = self._value(header)
            if value is None:
                return _NO_ID
        if self._signer is None:
            return (value, False) if is_session_id(value) else _NO_ID
        return self._signer.unsign(value)

    def _value(self, header: str) -> str | None:
        """Our cookie's value as browsers and RFC 6265 section 5.2 read it, in one linear pass: the header
        is split on ``;``, each pair at its first ``=``, spaces and tabs stripped, one pair of surrounding
        quotes removed. ``None`` unless exactly one pair is named exactly ours (a bare name counts too)."""
        found = None
        for count, pair in enumerate(self._pairs.finditer(header)):
            if count:
                return None
            found = pair.group(1)
        if found is None or len(found) > _MAX_COOKIE:
            return None
        value = found.strip(" \t")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        return value

    def value(self, sid: str) -> str:
        """What the cookie holds for ``sid``: the id itself, or the id signed."""
        return sid if self._signer is None else self._signer.sign(sid)

    def headers(self, outcome: str | None, max_age: int | None | Unset = UNSET) -> list[tuple[str, str]]:
        """Set-Cookie headers for what the session decided: an id to send, ``EXPIRE``, or ``None``.

        ``max_age`` overrides the configured one for this cookie (Flask's permanent sessions).
        """
        if outcome is None:
            return []
        if outcome == EXPIRE:
            return [("Set-Cookie", self._format(None, None))]
        value = self.value(outcome)
        lasting = self.max_age if isinstance(max_age, Unset) else max_age
        if lasting is None and _UNQUOTED.fullmatch(value):  # a browser-session cookie: the attributes never change
            return [("Set-Cookie", f"{self.name}={value}{self._attributes}")]
        return [("Set-Cookie", self._format(value, lasting))]

    def _format(self, value: str | None, max_age: int | None) -> str:
        """The Set-Cookie value, formatted by WebOb: ``value`` None expires the cookie."""
        loose = self.samesite == "None" and not self.secure  # WebOb refuses it; Flask's config may ask for it
        cookie: str = make_cookie(
            self.name, value, max_age=max_age if value is not None else None, path=self.path,
            domain=self.domain, secure=self.secure, httponly=self.httponly,
            samesite=None if loose else self.samesite,
        )
        cookie += "; SameSite=None" if loose else ""
        return cookie + "; Partitioned" if self.partitioned else cookie
