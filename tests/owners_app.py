"""The owners' tests' app and steps, shared by the lembro and Redis tests (test_owners, test_redis_owners)."""

import json

import webtest
from webob import Request

from tests.conftest import GATE


def owners_app(environ, start_response):
    """Sign in, out, read and write; every response is the session's data as JSON."""
    session = environ["lembro.session"]
    request = Request(environ)
    path, params = request.path_info, request.params
    if path == "/login":
        session.regenerate()
        session["user"] = int(params["user"]) if params.get("int") else params["user"]
    elif path == "/logout":
        session.invalidate()
    elif path == "/set":
        session[params["key"]] = params["value"]
    elif path == "/float-owner":
        session["user"] = 4.5
    elif path == "/drop-owner":
        del session["user"]
    body = json.dumps({"id": session.id, **dict(session)}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def slow_owners_app(loaded, proceed):
    """``owners_app`` whose ``/slow`` sets ``loaded`` once it has read the session, then waits for
    ``proceed`` before it writes: a request running while another revokes its session."""

    def slow_app(environ, start_response):
        session = environ["lembro.session"]
        if environ["PATH_INFO"] == "/slow":
            dict(session)
            loaded.set()
            assert proceed.wait(GATE)
            session["late"] = True
        return owners_app(environ, start_response)

    return slow_app


def sign_in(app, user, **params):
    client = webtest.TestApp(app)
    return client, client.get("/login", {"user": user, **params}).json["id"]


def ids(found):
    return [session.id for session in found]
