"""Arbitrary Cookie headers (hypothesis): never a 500, and a session exactly when its single exact cookie names it.

The oracle is RFC 6265 section 5.2 written out plainly here (split on ``;``, each pair at its first ``=``),
not the code's own reader; ``test_cookie_reader.py`` compares with Werkzeug's parser too.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webob import Request

from lembro_wsgi import LembroMiddleware
from tests.wsgi_apps import issued_cookies, owner_app

SECRET = "a fuzzing secret, long enough"
NAME = "lembro.sid"


def mutate(value, position, char):
    position %= len(value) + 1
    return value[:position] + char + value[position + 1:]


PART = st.one_of(
    st.tuples(st.just("issued"), st.integers(0, 2)),
    st.tuples(st.just("mutated"), st.integers(0, 2), st.integers(0, 100), st.characters(max_codepoint=255)),
    st.tuples(st.just("quoted"), st.integers(0, 2)),
    st.tuples(st.just("pair"), st.sampled_from([NAME, NAME + " ", "Lembro.sid", "xlembro.sid", "x"]),
              st.text(st.characters(max_codepoint=255), max_size=30)),
    st.tuples(st.just("raw"), st.binary(max_size=60)),
)
SEPARATORS = st.sampled_from(["; ", ";", ", ", " ", "", "\t;"])


def render(part, cookies):
    kind = part[0]
    if kind == "issued":
        return f"{NAME}={cookies[part[1]]}"
    if kind == "mutated":
        return f"{NAME}={mutate(cookies[part[1]], part[2], part[3])}"
    if kind == "quoted":
        return f'{NAME}="{cookies[part[1]]}"'
    if kind == "pair":
        return f"{part[1]}={part[2]}"
    return part[1].decode("latin-1")


@pytest.mark.parametrize("secret", [None, SECRET])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.tuples(PART, SEPARATORS), max_size=6))
def test_arbitrary_cookie_headers_never_fail_nor_load_a_session_they_do_not_name(secret, parts):
    middleware = FUZZ_APPS[secret]
    cookies = ISSUED[secret]
    header = "".join(render(part, cookies) + separator for part, separator in parts)
    request = Request.blank("/")
    request.environ["HTTP_COOKIE"] = header
    response = request.get_response(middleware)
    assert response.status_int == 200
    expected = cookies.index(ours) if (ours := rfc6265_value(header)) in cookies else None
    assert response.text == ("-" if expected is None else str(expected))
    assert len(middleware.store) == 3  # no session was created, destroyed or touched away


def rfc6265_value(header):
    """Our cookie's value as RFC 6265 5.2 reads ``header``: None unless exactly one pair has our name."""
    values = []
    for pair in header.split(";"):
        name, equals, value = pair.partition("=")
        if name.strip(" \t") == NAME:
            values.append(value.strip(" \t") if equals else None)
    if len(values) != 1 or values[0] is None:
        return None
    value = values[0]
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


FUZZ_APPS = {secret: LembroMiddleware(owner_app, interval=None, secret=secret) for secret in (None, SECRET)}
ISSUED = {secret: issued_cookies(app) for secret, app in FUZZ_APPS.items()}


@pytest.mark.parametrize("secret", [None, SECRET])
def test_each_issued_cookie_alone_loads_its_own_session(secret):
    """The fuzz oracle is not vacuous: a single exact cookie does load its session."""
    for i, cookie in enumerate(ISSUED[secret]):
        request = Request.blank("/")
        request.environ["HTTP_COOKIE"] = f"other=1; {NAME}={cookie}"
        assert request.get_response(FUZZ_APPS[secret]).text == str(i)
