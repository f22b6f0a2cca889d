"""A small WSGI app that exercises the session the way real apps do; shared by the middleware tests."""

import sys
from urllib.parse import parse_qs

from webob import Request


def session_app(environ, start_response):
    session = environ["lembro.session"]
    path = environ["PATH_INFO"]
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("X-App", "yes")]

    if path == "/meta":
        start_response("200 OK", headers)
        return [f"{session.new} {session.created} {session.accessed}".encode()]
    if path == "/save-then-crash":
        session["saved"] = True
        session.save()
        raise RuntimeError("crashed after an explicit save")
    if path == "/nothing":
        start_response("200 OK", headers)
        return [b"untouched"]
    if path == "/read-late":  # the WSGI idiom of starting the response first, then reading the session
        start_response("200 OK", headers)
        return [f"{session.get('n', 0)}".encode()]
    if path == "/read-stream":
        return read_stream(session, start_response, headers)
    if path == "/inc":
        session["n"] = session.get("n", 0) + 1
    elif path == "/inc-save":  # the app saves explicitly, as some apps do
        session["n"] = session.get("n", 0) + 1
        session.save()
    elif path == "/login":
        session.regenerate()
        session["user"] = query.get("user", "ana")
    elif path == "/logout":
        session.invalidate()
    elif path == "/logout-and-write":
        session.invalidate()
        session["after"] = True
    elif path == "/nested":
        session.setdefault("items", [])
        session["items"].append(1)
        if query.get("mark"):
            session.changed()
    elif path == "/big":
        session["blob"] = "x" * int(query["size"])
    elif path == "/write":
        session["n"] = session.get("n", 0) + 1
        write = start_response("200 OK", headers)
        write(b"written ")
        return [f"{session['n']}".encode()]
    elif path == "/late":
        start_response("200 OK", headers)
        session["late"] = True  # after the headers went out
        return [b"late"]
    elif path == "/gen":
        return generator_body(session, start_response, headers)
    elif path == "/error":
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            start_response("500 Internal Server Error", headers, sys.exc_info())
            return [b"error page"]
    body = f"{session.id} {session.get('n', 0)} {session.get('user', '-')} {len(session.get('items', []))}"
    start_response("200 OK", headers)
    return [body.encode()]


def read_stream(session, start_response, headers):
    start_response("200 OK", headers)
    yield b"n="
    yield f"{session.get('n', 0)}".encode()  # first read of the session: after the response started


def generator_body(session, start_response, headers):
    session["n"] = session.get("n", 0) + 1
    start_response("200 OK", headers)
    yield b"first "
    session["late"] = session.get("late", 0) + 1  # changed after the response started
    yield f"{session['n']}".encode()


class ClosingBody:
    """A body iterable that records whether the server called close()."""

    closed = 0

    def __init__(self, chunks):
        self.chunks = chunks

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        ClosingBody.closed += 1


def closing_app(environ, start_response):
    environ["lembro.session"]["n"] = 1
    start_response("201 Created", [("Content-Type", "text/plain"), ("X-Custom", "kept")])
    return ClosingBody([b"a", b"b"])


def owner_app(environ, start_response):
    """``/issue?N`` stores owner N in a new session; any other path answers the session's owner, or ``-``."""
    session = environ["lembro.session"]
    if environ["PATH_INFO"] == "/issue":
        session["owner"] = environ["QUERY_STRING"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [session.get("owner", "-").encode()]


def issued_cookies(middleware, count=3):
    """The cookie values ``middleware`` issues to owners 0..count-1 of ``owner_app``."""
    cookies = []
    for i in range(count):
        response = Request.blank(f"/issue?{i}").get_response(middleware)
        cookies.append(response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1])
    return cookies


def owner_seen(app, header):
    """The owner ``app`` (owner_app under a middleware) sees for a raw ``Cookie`` header; the response must be 200."""
    request = Request.blank("/")
    request.environ["HTTP_COOKIE"] = header
    response = request.get_response(app)
    assert response.status_int == 200
    return response.text
