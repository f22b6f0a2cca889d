"""The cookie's options, checked when the middleware is built: secrets (length, type, bytes) and the domain.

Bad values are a ValueError whose message starts with the option's name and says what was given, never a
secret itself; accepted values are used as the README says (a bytes secret, a domain as browsers take it).
"""

import re

import pytest
import webtest

from lembro_wsgi import LembroMiddleware
from lembro_wsgi.cookie import EXPIRE, MIN_SECRET, SessionCookie, new_session_id
from lembro_wsgi.options import MAX_SECONDS
from tests.wsgi_apps import session_app

EXPECTED = f"expected a str/bytes of at least {MIN_SECRET} characters"


def middleware(**options):
    return LembroMiddleware(session_app, interval=None, **options)


def set_cookie(**options):
    return webtest.TestApp(middleware(**options)).get("/inc").headers["Set-Cookie"]


def test_a_short_secret_is_refused_with_its_length_never_its_text():
    with pytest.raises(ValueError, match=rf"^secret: {EXPECTED}, got 15 characters$") as refused:
        middleware(secret="fifteen-chars!!")
    assert "fifteen" not in str(refused.value)
    with pytest.raises(ValueError, match=rf"^secret\[1\]: {EXPECTED}, got 3 characters$"):
        middleware(secret=["a long enough secret", b"abc"])


def test_a_secret_of_exactly_the_minimum_length_is_accepted():
    secret = "s" * MIN_SECRET
    value = set_cookie(secret=secret).split(";")[0].split("=", 1)[1]
    sid, signature = value.split(".")
    assert len(sid) == 43 and len(signature) == 43
    middleware(secret=[b"b" * MIN_SECRET, secret])  # every entry of a list, bytes too
    with pytest.raises(ValueError, match=r"^secret: "):
        middleware(secret="s" * (MIN_SECRET - 1))


@pytest.mark.parametrize("secret, shown", [(42, "int"), ([], "list"), ((), "tuple"), ({"a": 1}, "dict")])
def test_a_secret_that_is_neither_text_nor_a_list_of_text_names_its_type(secret, shown):
    message = rf"^secret: expected None, or a str/bytes of at least {MIN_SECRET} characters \(or a list of them, " \
              rf"newest first\), got {shown}$"
    with pytest.raises(ValueError, match=message):
        middleware(secret=secret)


@pytest.mark.parametrize("entry, shown", [(42, "a int"), (None, "a NoneType"), (["nested secret, long"], "a list")])
def test_a_list_entry_that_is_not_text_names_its_type_and_position(entry, shown):
    with pytest.raises(ValueError, match=rf"^secret\[1\]: {EXPECTED}, got {shown}$"):
        middleware(secret=["a long enough secret", entry])


def test_a_bytes_secret_signs_as_its_utf8_text_does():
    text = "a secret with ümlauts, long enough"
    as_text, as_bytes = SessionCookie(secret=text), SessionCookie(secret=text.encode("utf-8"))
    sid = new_session_id()
    assert as_bytes.value(sid) == as_text.value(sid)
    assert as_bytes.value(sid) != SessionCookie(secret=text.encode("latin-1")).value(sid)
    # a cookie issued by a bytes-secret middleware comes back to the same session
    app = webtest.TestApp(middleware(secret=text.encode("utf-8")))
    first = app.get("/inc").text.split()
    again = app.get("/inc").text.split()
    assert again[0] == first[0] and again[1] == "2"


@pytest.mark.parametrize("domain, attribute", [
    (".example.test", "example.test"),            # a leading dot is dropped, as browsers drop it
    ("..example.test", "example.test"),
    ("example.test:8080", "example.test"),        # a port is no part of a cookie's domain
    (".example.test:8080", "example.test"),
    ("Xanadu.example.test", "Xanadu.example.test"),  # nothing else is taken off the front
    ("bücher.example", "xn--bcher-kva.example"),  # non-ASCII names in IDNA
    ("localhost", "localhost"),
])
def test_the_domain_attribute_is_the_host_as_browsers_take_it(domain, attribute):
    assert f"; Domain={attribute}; Path=/;" in set_cookie(domain=domain)


@pytest.mark.parametrize("domain", ["example.test.", "-example.test", "exa mple.test", "[::1]", "[::1]:8080",
                                    "example.test:80:80", 42])
def test_a_domain_browsers_would_not_take_is_refused(domain):
    with pytest.raises(ValueError, match=f"^domain: expected None or a domain name, got {re.escape(repr(domain))}$"):
        middleware(domain=domain)


def test_session_cookie_defaults_are_the_safe_ones_the_middleware_uses():
    sid = new_session_id()
    assert SessionCookie().headers(sid) == [("Set-Cookie", f"lembro.sid={sid}; Path=/; HttpOnly; SameSite=Lax")]
    header = set_cookie()
    assert header == f"lembro.sid={header.split(';')[0].split('=', 1)[1]}; Path=/; HttpOnly; SameSite=Lax"


@pytest.mark.parametrize("option, value, expected", [
    ("secure", "maybe", "true or false"),
    ("httponly", "maybe", "true or false"),
    ("max_age", "soon", "a positive whole number or None"),
    ("max_age", 0, "a positive whole number or None"),
])
def test_a_bad_cookie_flag_or_max_age_names_the_option_and_value(option, value, expected):
    with pytest.raises(ValueError, match=f"^{option}: expected {expected}, got {re.escape(repr(value))}$"):
        middleware(**{option: value})


def test_a_bad_partitioned_flag_names_the_option_and_value():
    with pytest.raises(ValueError, match=r"^partitioned: expected true or false, got 'maybe'$"):
        SessionCookie(partitioned="maybe")


def test_max_age_is_accepted_up_to_max_seconds():
    assert f"; Max-Age={MAX_SECONDS}; " in set_cookie(max_age=MAX_SECONDS)
    assert f"; Max-Age={MAX_SECONDS}; " in set_cookie(max_age=str(MAX_SECONDS))
    with pytest.raises(ValueError, match=rf"^max_age: expected at most {MAX_SECONDS:,} seconds, got {MAX_SECONDS + 1}$"):
        middleware(max_age=MAX_SECONDS + 1)


@pytest.mark.parametrize("secure", [False, True, "false"])
def test_a_partitioned_cookie_is_always_secure(secure):
    """Browsers take a Partitioned cookie only when it is Secure: partitioned=True makes it so, even against
    secure=False, for the cookie sent and the one that expires it."""
    cookie = SessionCookie(partitioned=True, samesite="None", secure=secure)
    assert cookie.secure is True
    sid = new_session_id()
    for outcome in (sid, EXPIRE):
        [(name, header)] = cookie.headers(outcome)
        assert name == "Set-Cookie"
        assert "; secure; HttpOnly; SameSite=None; Partitioned" in header


def test_min_secret_sets_the_shortest_secret_accepted():
    with pytest.raises(ValueError, match=r"^secret: expected a str/bytes of at least 32 characters, got 20 characters$"):
        SessionCookie(secret="s" * 20, min_secret=32)
    short = SessionCookie(secret="s" * 8, min_secret=8)
    sid = new_session_id()
    assert short.read({"HTTP_COOKIE": f"lembro.sid={short.value(sid)}"}) == (sid, False)
