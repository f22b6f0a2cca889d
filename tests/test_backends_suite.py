"""One behavioural suite on both backends (lembro, ext:redis) through every integration (middleware, Pyramid, Bottle,
Flask).

Each test runs eight times: the same rules must hold whichever backend and
framework carry the session. Redis is a real redis-server on 127.0.0.1
(tests/redis_server.py).
"""

import logging
import pickle
import sys
import threading
import types
from urllib.parse import parse_qs

import bottle
import pytest
from pyramid.config import Configurator
from pyramid.response import Response
from webob import Request

from lembro_wsgi import LembroMiddleware, LembroStore
from lembro_wsgi.bottle import LembroPlugin
from lembro_wsgi.pyramid import LembroSessionFactory
from tests.conftest import GATE

OLD_SECRET, NEW_SECRET = "the old secret, long enough", "the new secret, long enough"


def handle(session, path, query, gates):
    """The app's behaviour, the same in every framework."""
    if path == "/nothing":
        return "untouched"
    if path == "/inc":
        session["n"] = session.get("n", 0) + 1
    elif path == "/login":
        session.regenerate()
        session["user"] = query.get("user", "ana")
    elif path == "/logout":
        session.invalidate()
    elif path == "/cart":
        session["cart"] = sys.modules["lembro_suite_deploy"].Cart()
    elif path in ("/slow-inc", "/slow-read"):
        n = session.get("n", 0)
        gates[path].loaded.set()
        assert gates[path].proceed.wait(GATE)
        if path == "/slow-inc":
            session["n"] = n + 1
    return f"{session.id} {session.get('n', 0)} {session.get('user', '-')}"


def middleware_app(gates, options):
    def app(environ, start_response):
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        body = handle(environ["lembro.session"], environ["PATH_INFO"], query, gates)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]

    return LembroMiddleware(app, **options)


def pyramid_app(gates, options):
    config = Configurator()
    config.set_session_factory(LembroSessionFactory(**options))

    def view(request):
        return Response(handle(request.session, request.path, dict(request.params), gates))

    config.add_route("any", "/*rest")
    config.add_view(view, route_name="any")
    return config.make_wsgi_app()


def bottle_app(gates, options):
    app = bottle.Bottle()
    app.install(LembroPlugin(**options))

    @app.route("/<path:path>")
    def view(path, session):
        return handle(session, "/" + path, dict(bottle.request.query), gates)

    @app.route("/")
    def root(session):
        return handle(session, "/", {}, gates)

    return app


def flask_app(gates, options):
    import flask

    from lembro_wsgi.flask import LembroSessionInterface

    app = flask.Flask(__name__)
    secrets = options.pop("secret", "a flask secret key")
    secrets = [secrets] if isinstance(secrets, str) else secrets
    app.secret_key, app.config["SECRET_KEY_FALLBACKS"] = secrets[0], secrets[1:]
    app.config["SESSION_COOKIE_NAME"] = "lembro.sid"
    app.session_interface = LembroSessionInterface(**options)

    @app.route("/", defaults={"path": ""})
    @app.route("/<path:path>")
    def view(path):
        return handle(flask.session, "/" + path, dict(flask.request.args), gates)

    return app


INTEGRATIONS = {"middleware": middleware_app, "pyramid": pyramid_app, "bottle": bottle_app, "flask": flask_app}


def ident(cookie):
    """The session id a cookie carries, signed (Flask always signs) or not."""
    return cookie.split(".")[0]


class Site:
    """An app under test with raw cookie handling, so a test can plant, duplicate or replay cookies."""

    def __init__(self, integration, backend_options, **options):
        self.gates = {}
        self.app = INTEGRATIONS[integration](self.gates, {**backend_options, **options})

    def get(self, path, cookie=None, header=None):
        request = Request.blank(path)
        if header is not None:
            request.environ["HTTP_COOKIE"] = header
        elif cookie is not None:
            request.environ["HTTP_COOKIE"] = f"lembro.sid={cookie}"
        response = request.get_response(self.app)
        assert response.status_int == 200, response.text
        sent = [v.split(";")[0].split("=", 1)[1] for k, v in response.headerlist
                if k == "Set-Cookie" and v.startswith("lembro.sid=")]
        assert len(sent) <= 1
        return response.text.split(), (sent[0] if sent else None)


@pytest.fixture(params=["lembro", "redis"])
def backend(request):
    """Backend options: a lembro store, or ext:redis on a real server; every app of one test shares it."""
    if request.param == "redis":
        yield {"type": "ext:redis", "url": request.getfixturevalue("redis_url")}
        return
    store = LembroStore(interval=None)
    yield {"store": store}
    store.close()


@pytest.fixture(params=list(INTEGRATIONS))
def site(request, backend):
    return lambda **options: Site(request.param, backend, **options)


def test_sessions_persist_and_clients_are_isolated(site):
    app = site()
    (sid, n, _), cookie = app.get("/inc")
    assert n == "1" and ident(cookie) == sid
    assert app.get("/inc", cookie)[0][:2] == [sid, "2"]
    (other, n, _), _ = app.get("/inc")
    assert other != sid and n == "1"
    assert app.get("/", cookie)[0][1] == "2"


def test_read_only_and_untouched_requests_set_no_cookie(site):
    app = site()
    _, cookie = app.get("/inc")
    assert app.get("/", cookie) == ([ident(cookie), "1", "-"], None)
    assert app.get("/nothing", cookie) == (["untouched"], None)
    assert app.get("/")[1] is None  # a new session that was only read is not stored


def test_invalidate_ends_the_session_and_expires_the_cookie(site):
    app = site()
    _, cookie = app.get("/inc")
    assert app.get("/logout", cookie)[1] == ""
    (sid, n, _), _ = app.get("/", cookie)
    assert sid != ident(cookie) and n == "0"


def test_regenerate_keeps_the_data_under_a_new_id(site):
    app = site()
    _, cookie = app.get("/inc")
    (sid, n, user), sent = app.get("/login?user=bo", cookie)
    assert ident(sent) == sid != ident(cookie) and (n, user) == ("1", "bo")
    assert app.get("/", sent)[0] == [sid, "1", "bo"]
    assert app.get("/", cookie)[0][1:] == ["0", "-"]  # the old id is gone


def test_no_fixation_a_planted_id_is_never_adopted(site):
    app = site()
    planted = "P" * 43
    (sid, n, _), sent = app.get("/inc", planted)
    assert sid != planted and ident(sent) == sid and n == "1"
    (again, n, _), _ = app.get("/inc", planted)  # nothing was stored under the planted id either
    assert again not in (planted, sid) and n == "1"


def test_duplicated_cookies_are_no_session(site):
    app = site()
    _, a = app.get("/inc")
    _, b = app.get("/inc")
    for header in (f"lembro.sid={a}; lembro.sid={b}", f"lembro.sid=junk; lembro.sid={a}", f"lembro.sid={a}; lembro.sid={a}"):
        (sid, n, _), _ = app.get("/", header=header)
        assert sid not in (ident(a), ident(b)) and n == "0"
    assert app.get("/", a)[0][1] == "1"  # untouched by it


def slow_request(app, path, cookie, meanwhile):
    """Run ``path`` until it has loaded its session, call ``meanwhile()``, let it finish; its (body, cookie)."""
    gate = app.gates[path] = types.SimpleNamespace(loaded=threading.Event(), proceed=threading.Event())
    result = {}
    thread = threading.Thread(target=lambda: result.update(slow=app.get(path, cookie)))
    thread.start()
    assert gate.loaded.wait(GATE)
    meanwhile()
    gate.proceed.set()
    thread.join(GATE)
    assert not thread.is_alive()
    return result["slow"]


@pytest.mark.parametrize("path", ["/slow-inc", "/slow-read"])
def test_logout_is_final_against_a_slow_request(site, path):
    app = site()
    _, cookie = app.get("/inc")
    assert slow_request(app, path, cookie, lambda: app.get("/logout", cookie))[1] is None  # no cookie: it is gone
    (sid, n, _), _ = app.get("/", cookie)
    assert sid != ident(cookie) and n == "0"


def test_a_read_only_request_never_undoes_a_concurrent_write(site):
    """A read-only request refreshes the timer; it never writes back the data it loaded."""
    app = site()
    _, cookie = app.get("/inc")
    slow_request(app, "/slow-read", cookie, lambda: app.get("/inc", cookie))
    assert app.get("/", cookie)[0][1] == "2"


def test_rotation_re_signs_with_the_newest_secret(site):
    old = site(secret=OLD_SECRET)
    rotating = site(secret=[NEW_SECRET, OLD_SECRET])
    new = site(secret=NEW_SECRET)
    _, old_cookie = old.get("/inc")
    _, resigned = rotating.get("/", old_cookie)
    assert resigned and resigned != old_cookie and resigned.split(".")[0] == old_cookie.split(".")[0]
    assert new.get("/", resigned)[0][1] == "1"


def test_a_session_that_no_longer_unpickles_is_no_session(site, caplog):
    module = types.ModuleType("lembro_suite_deploy")
    module.Cart = type("Cart", (), {"__module__": module.__name__})
    sys.modules[module.__name__] = module
    try:
        app = site()
        _, cookie = app.get("/cart")
        pickle.loads(pickle.dumps(module.Cart()))
        del module.Cart  # a deploy renamed the class
        with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
            (sid, _, _), _ = app.get("/logout", cookie)
        assert sid != ident(cookie)
        assert any(cookie[:6] in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
        assert ident(cookie) not in caplog.text  # only the short id is logged
        assert app.get("/", cookie)[0][0] != ident(cookie)
    finally:
        del sys.modules[module.__name__]
