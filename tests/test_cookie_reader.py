"""The Cookie header is read as browsers send it (RFC 6265 5.2), in time linear in its length.

Our cookie is the one pair whose name is exactly ours and whose whole value is an id (signed, with a
secret). Checked against Werkzeug's parser for browser-shaped headers, on hostile shapes for growth, and
on a real waitress server for what one hostile header does to a concurrent innocent request.
"""

import socket
import threading
import time
import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from webob import Request
from werkzeug.http import parse_cookie

from lembro_wsgi import LembroMiddleware
from tests.servers import serve
from tests.wsgi_apps import issued_cookies, owner_app, owner_seen, session_app

NAME = "lembro.sid"
SECRET = "a secret for the cookie reader tests"


APPS = {secret: LembroMiddleware(owner_app, interval=None, secret=secret) for secret in (None, SECRET)}


ISSUED = {secret: issued_cookies(app, count=2) for secret, app in APPS.items()}


@pytest.mark.parametrize("secret", [None, SECRET])
@pytest.mark.parametrize("shape", [
    "pref=dark {name}={id}; lang=en",           # our name inside another cookie's value
    "{name}={id} junk; lang=en",                # our id followed by more in the same value
    "{name}={id}\u00e9; lang=en",
    "{name}={id} " + "a" * 1024 + "; lang=en",
    "lang=en; {name}={id}x",
    "lang=en; x{name}={id}",
    "lang=en; {name}={id}; {name}={id}",        # duplicated, even with the same value
    "lang=en; {name}; {name}={id}",             # a bare name counts as a second cookie of ours
])
def test_an_id_that_is_not_the_whole_value_of_our_single_cookie_is_never_adopted(secret, shape):
    cookie = ISSUED[secret][0]
    assert owner_seen(APPS[secret], shape.format(name=NAME, id=cookie)) == "-"


@pytest.mark.parametrize("secret", [None, SECRET])
@pytest.mark.parametrize("shape", [
    "{name}={id}",
    "lang=en; {name}={id}",
    "{name}={id}; lang=en; theme=\"a b\"",
    "  {name} = {id} ;lang=en",
    '{name}="{id}"; lang=en',                    # one pair of surrounding quotes is removed
    "\t{name}=\t{id}\t; a=b",
    "lembro.sidx={other}; {name}={id}; Lembro.sid={other}",
    'q="; {name}={id}; z="',                     # browsers do not read quotes across separators
])
def test_our_single_cookie_is_found_among_others(secret, shape):
    cookies = ISSUED[secret]
    assert owner_seen(APPS[secret], shape.format(name=NAME, id=cookies[0], other=cookies[1])) == "0"


# Browser-shaped headers: name=value pairs joined by "; ", values of RFC 6265 cookie-octets, maybe quoted.
OCTETS = st.text(st.sampled_from([chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\']), max_size=20)
NAMES = st.sampled_from([NAME, "Lembro.sid", "lembro.sidx", "xlembro.sid", "lang", "_ga", "$Version", "a"])


@st.composite
def browser_pair(draw, cookies):
    kind = draw(st.sampled_from(["issued", "other", "nameless"]))
    name = draw(NAMES)
    if kind == "issued":
        value = draw(st.sampled_from(cookies))
    elif kind == "other":
        value = draw(OCTETS)
    else:  # a nameless cookie is sent as its value alone
        return draw(st.sampled_from([NAME, "x", "lembro"]))
    if draw(st.booleans()):
        value = f'"{value}"'
    return f"{name}={value}"


@pytest.mark.parametrize("secret", [None, SECRET])
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_browser_headers_are_read_as_werkzeug_reads_them(secret, data):
    cookies = ISSUED[secret]
    pairs = data.draw(st.lists(browser_pair(cookies), max_size=5))
    header = "; ".join(pairs)
    ours = parse_cookie(header).getlist(NAME)
    expected = str(cookies.index(ours[0])) if len(ours) == 1 and ours[0] in cookies else "-"
    assert owner_seen(APPS[secret], header) == expected


def hostile_headers(size):
    """Headers of about ``size`` bytes shaped to make a backtracking parser quadratic; each names our cookie."""
    tail = f"; {NAME}={'A' * 43}"
    return {
        "bare name, then a long value": f"{NAME}; " + "a" * size,
        "open quote": f'{NAME}="' + "a" * size,
        "a= repeated": "a=" * (size // 2) + tail,
        "a run of spaces": f"{NAME}=" + " " * size + "x",
        "spaces after a separator": ";" + " " * size + tail,
        "semicolons": ";" * size + tail,
        "open quotes repeated": 'q="a' * (size // 4) + tail,
        "name fragments": ";lembro.si" * (size // 10) + tail,
        "our id, then spaces": f"{NAME}={'A' * 43}" + " " * size + "x",
    }


def read_time(app, header, runs=5):
    """The fastest of ``runs`` requests carrying ``header`` to a route that never uses its session, in CPU
    seconds of this thread: wall time also counts the time other processes had the CPU (on a busy machine,
    a 10 ms run was rarely left alone, a 0.3 ms one mostly), which made growths of 20 out of linear readers."""
    environ = Request.blank("/nothing").environ
    best = float("inf")
    for _ in range(runs):
        request_environ = dict(environ, HTTP_COOKIE=header)
        start = time.thread_time()
        body = app(request_environ, lambda status, headers, exc_info=None: None)
        best = min(best, time.thread_time() - start)
        assert list(body) == [b"untouched"]
    return best


@pytest.mark.parametrize("secret", [None, SECRET])
def test_hostile_headers_cost_time_linear_in_their_length(secret):
    """A quadratic reader takes seconds at 32 KB (16x per doubling of 8 KB) and minutes at 256 KB, so each
    size is checked before the next: a regression fails here in about a second, by orders of magnitude."""
    app = LembroMiddleware(session_app, interval=None, secret=secret)
    for shape in hostile_headers(8 * 1024):
        times = {}
        for size in (8 * 1024, 32 * 1024, 256 * 1024):
            header = hostile_headers(size)[shape]
            assert len(header) >= size
            times[size] = read_time(app, header)
            assert times[size] < 0.25, f"{shape}: {len(header):,} bytes took {times[size]:.3f} s"
        growth = times[256 * 1024] / max(times[32 * 1024], 1e-6)
        assert growth < 40, f"{shape}: 8x the bytes took {growth:.0f}x the time ({times})"


def test_a_hostile_header_does_not_hold_up_an_innocent_request_on_a_real_server():
    """256 KB of hostile Cookie header to one thread of waitress; another client's request meanwhile."""
    app = LembroMiddleware(session_app, interval=None)
    header = hostile_headers(256 * 1024)["open quote"]
    with serve(app, threads=4, max_request_header_size=1024 * 1024) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        sent = threading.Event()
        hostile_reply = []

        def hostile():
            with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
                conn.sendall(f"GET /inc HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {header}\r\n"
                             "Connection: close\r\n\r\n".encode("latin-1"))
                sent.set()
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
                hostile_reply.append(b"".join(chunks))

        attacker = threading.Thread(target=hostile)
        attacker.start()
        assert sent.wait(10)
        start = time.perf_counter()
        with urllib.request.urlopen(base_url + "/nothing", timeout=10) as response:
            assert response.read() == b"untouched"
        waited = time.perf_counter() - start
        attacker.join(30)
    assert hostile_reply and hostile_reply[0].startswith(b"HTTP/1.1 200")
    assert b"lembro.sid=" in hostile_reply[0]  # it got a fresh session: the header was read, as no session
    assert waited < 3, f"an innocent request waited {waited:.2f} s"  # a quadratic reader: minutes
