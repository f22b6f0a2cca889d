"""Outgrowing one process: two workers on one real Redis, restarts, TTLs, refused options, Redis going down."""

import logging
import urllib.request

import pytest
import redis
import webtest
from pyramid.config import Configurator
from pyramid.response import Response

from lembro_wsgi import BackendUnavailable, LembroMiddleware
from lembro_wsgi.bottle import LembroPlugin
from lembro_wsgi.pyramid import LembroSessionFactory
from tests.redis_server import RedisServer
from tests.servers import server_process
from tests.wsgi_apps import session_app


def counting_pyramid_app(config):
    """A Pyramid app whose / counts visits in request.session, under WebTest."""

    def count(request):
        request.session["n"] = request.session.get("n", 0) + 1
        return Response(str(request.session["n"]))

    config.add_route("count", "/")
    config.add_view(count, route_name="count")
    return webtest.TestApp(config.make_wsgi_app())


def visit(base, cookie):
    """GET /inc on one worker with the browser's cookie; returns (count, cookie now held)."""
    request = urllib.request.Request(f"{base}/inc", headers={"Cookie": f"lembro.sid={cookie}"} if cookie else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        sent = response.headers.get("Set-Cookie")
        count = int(response.read().split()[1])
    return count, sent.split(";")[0].split("=", 1)[1] if sent else cookie


def alternate(first, second, rounds=3):
    """One browser going back and forth between two workers; the counts it sees."""
    cookie, counts = None, []
    for _ in range(rounds):
        for base in (first, second):
            count, cookie = visit(base, cookie)
            counts.append(count)
    return counts, cookie


def test_two_worker_processes_on_one_redis_share_one_session(redis_url):
    options = {"type": "ext:redis", "url": redis_url}
    with server_process(options) as (_, first), server_process(options) as (_, second):
        counts, cookie = alternate(first, second)
    assert counts == [1, 2, 3, 4, 5, 6]
    with server_process(options) as (_, restarted):  # a new app instance: sessions survive it
        assert visit(restarted, cookie)[0] == 7


def test_two_worker_processes_on_lembro_each_keep_their_own_sessions():
    """The README's single-process caveat, shown: a browser bouncing between two workers keeps starting over."""
    with server_process({}) as (_, first), server_process({}) as (_, second):
        counts, _ = alternate(first, second)
    assert counts == [1] * 6


def test_redis_keys_carry_the_session_timeout_as_their_ttl(redis_url):
    app = webtest.TestApp(LembroMiddleware(session_app, type="ext:redis", url=redis_url, timeout=600))
    sid = app.get("/inc").text.split()[0]
    client = redis.Redis.from_url(redis_url)
    keys = client.keys(f"*{sid}*")
    assert len(keys) == 1
    assert 590 <= client.ttl(keys[0]) <= 600


@pytest.mark.parametrize("path", ["/inc", "/"])
def test_a_rewrite_and_a_read_restart_the_keys_ttl(redis_url, path):
    """``SET ... XX`` carries the timeout (``ex=``), and a read-only request refreshes it with ``EXPIRE``: a
    session in use never runs out on Redis. The TTL is lowered first, so only a refresh brings it back."""
    app = webtest.TestApp(LembroMiddleware(session_app, type="ext:redis", url=redis_url, timeout=600))
    sid = app.get("/inc").text.split()[0]
    client = redis.Redis.from_url(redis_url)
    (key,) = client.keys(f"*{sid}*")
    client.expire(key, 30)
    assert app.get(path).text.split()[0] == sid
    assert 590 <= client.ttl(key) <= 600


@pytest.mark.parametrize("option, value", [("max_size", "1M"), ("interval", 60), ("max_sessions", None),
                                           ("max_size", "4M"), ("interval", 10)])
@pytest.mark.parametrize("build", ["middleware", "pyramid", "bottle"])
def test_lembro_store_options_are_refused_beside_another_backend(redis_url, build, option, value):
    """Even at their default values: "not given" and "given" differ."""
    options = {"type": "ext:redis", "url": redis_url, option: value}
    constructors = {
        "middleware": lambda: LembroMiddleware(session_app, **options),
        "pyramid": lambda: LembroSessionFactory(**options),
        "bottle": lambda: LembroPlugin(**options),
    }
    with pytest.raises(ValueError, match=f"^{option}: "):
        constructors[build]()


def test_store_options_are_refused_beside_a_store_too():
    from lembro_wsgi import LembroStore

    with LembroStore(interval=None) as store, pytest.raises(ValueError, match="^max_size: "):
        LembroMiddleware(session_app, store=store, max_size="1M")


@pytest.fixture
def own_redis():
    """A redis-server of this test's own, with a password, to stop and start again."""
    server = RedisServer.start_or_skip(password="s3cret-pass")
    yield server
    server.stop()


def test_redis_down_is_a_clear_error_and_the_next_request_after_it_returns_works(own_redis, caplog):
    assert "s3cret-pass" in own_redis.url
    app = webtest.TestApp(LembroMiddleware(session_app, type="ext:redis", url=own_redis.url))
    assert app.get("/inc").text.split()[1] == "1"
    assert app.get("/inc").text.split()[1] == "2"
    own_redis.stop()
    with caplog.at_level(logging.ERROR, logger="lembro_wsgi"), pytest.raises(BackendUnavailable) as caught:
        app.get("/inc")
    message = str(caught.value)
    assert "ext:redis" in message and f"127.0.0.1:{own_redis.port}" in message
    assert "s3cret-pass" not in message and ":***@" in message
    assert isinstance(caught.value, RuntimeError)
    assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)
    assert any(r.levelno == logging.ERROR and "unavailable" in r.getMessage() for r in caplog.records)
    assert "s3cret-pass" not in caplog.text
    own_redis.restart()  # empty: no persistence
    assert app.get("/inc").text.split()[1] == "1"  # works again, no restart of the app
    assert app.get("/inc").text.split()[1] == "2"


def test_pyramid_exception_view_turns_redis_down_into_a_503(own_redis):
    """The README's recipe: an exception view for BackendUnavailable."""
    config = Configurator()
    config.set_session_factory(LembroSessionFactory(type="ext:redis", url=own_redis.url))

    def unavailable(exc, request):
        return Response("sessions are down, try again shortly", status=503)

    config.add_exception_view(unavailable, context=BackendUnavailable)
    app = counting_pyramid_app(config)
    assert app.get("/").text == "1"
    own_redis.stop()
    assert app.get("/", status=503).text.startswith("sessions are down")
    own_redis.restart()
    assert app.get("/").text == "1"


@pytest.mark.parametrize("how", ["interface", "middleware"])
def test_flask_errorhandler_turns_redis_down_into_a_503(own_redis, how):
    """The README's recipe for Flask: an error handler for BackendUnavailable."""
    flask = pytest.importorskip("flask")
    from lembro_wsgi.flask import LembroSessionInterface

    app = flask.Flask(__name__)
    app.secret_key = "a flask secret key"
    if how == "interface":
        app.session_interface = LembroSessionInterface(type="ext:redis", url=own_redis.url)
    else:
        app.wsgi_app = LembroMiddleware(app.wsgi_app, type="ext:redis", url=own_redis.url)

    @app.route("/")
    def count():
        session = flask.session if how == "interface" else flask.request.environ["lembro.session"]
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    @app.errorhandler(BackendUnavailable)
    def unavailable(exc):
        return "sessions are down, try again shortly", 503

    client = webtest.TestApp(app)
    assert client.get("/").text == "1"
    own_redis.stop()
    assert client.get("/", status=503).text.startswith("sessions are down")
    own_redis.restart()
    assert client.get("/").text == "1"


def test_pyramid_ini_settings_switch_to_redis(redis_url):
    """`lembro.type = ext:redis` and `lembro.url` in the ini file: the README's one-line switch."""
    config = Configurator(settings={"lembro.type": "ext:redis", "lembro.url": redis_url, "lembro.timeout": "600"})
    config.include("lembro_wsgi.pyramid")
    app = counting_pyramid_app(config)
    assert [app.get("/").text for _ in range(3)] == ["1", "2", "3"]
    assert redis.Redis.from_url(redis_url).dbsize() == 1


class LogoutWhilePickled:
    """Pickling this runs a logout: another worker's logout landing right before the rewrite reaches Redis."""

    logout = None

    def __reduce__(self):
        if LogoutWhilePickled.logout is not None:
            logout, LogoutWhilePickled.logout = LogoutWhilePickled.logout, None
            logout()
        return (LogoutWhilePickled, ())


def test_on_redis_the_rewrite_is_atomic_so_a_logout_just_before_it_is_final(redis_url):
    """Rule "Logout is final" on Redis: SET XX, not a check then a write."""
    def app(environ, start_response):
        session, path = environ["lembro.session"], environ["PATH_INFO"]
        if path == "/login":
            session["user"], session["hook"] = "ana", LogoutWhilePickled()
        elif path == "/logout":
            session.invalidate()
        elif path == "/write":
            session["seen"] = True
        user = session.get("user")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr(user).encode()]

    client = webtest.TestApp(LembroMiddleware(app, type="ext:redis", url=redis_url))
    client.get("/login")
    other_worker = webtest.TestApp(client.app, cookiejar=client.cookiejar)
    LogoutWhilePickled.logout = lambda: other_worker.get("/logout")
    assert client.get("/write").text == "'ana'"  # its rewrite pickles the record, and the logout lands first
    assert LogoutWhilePickled.logout is None  # the logout really ran inside the rewrite
    assert redis.Redis.from_url(redis_url).dbsize() == 0


@pytest.mark.parametrize("url, shown", [
    ("redis://:pw1@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("redis://user:p%40w2@127.0.0.1/0", "redis://user:***@127.0.0.1/0"),
    ("rediss://u:pw3@h/0", "rediss://u:***@h/0"),
    ("redis://h/0?password=pw4", "redis://h/0?password=***"),
    ("redis://h/0?username=u&password=pw5&db=1", "redis://h/0?username=u&password=***&db=1"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("rediss://:pw6@h/0?ssl_password=kp7", "rediss://:***@h/0?ssl_password=***"),
    ("redis://h/0?db=1&api_key=k8&socket_timeout=2", "redis://h/0?db=1&api_key=***&socket_timeout=2"),
])
def test_urls_are_shown_with_any_password_masked(url, shown):
    from lembro_wsgi.backend import mask_url

    assert mask_url(url) == shown


def test_missing_or_misspelt_redis_url_is_named_at_construction():
    for options in ({}, {"uri": "redis://127.0.0.1/0"}):
        with pytest.raises(ValueError, match="^url: required by type='ext:redis'"):
            LembroMiddleware(session_app, type="ext:redis", **options)


def test_a_fractional_timeout_is_rounded_up_for_redis_ttls(redis_url):
    app = webtest.TestApp(LembroMiddleware(session_app, type="ext:redis", url=redis_url, timeout=0.5))
    app.get("/inc")
    client = redis.Redis.from_url(redis_url)
    assert [client.ttl(key) for key in client.scan_iter()] == [1]


def test_redis_down_never_fails_a_request_that_does_not_use_its_session(own_redis):
    """Re-signing an old-secret cookie needs the backend; a request that never used its session still answers."""
    old = "the old secret, long enough"
    options = {"type": "ext:redis", "url": own_redis.url}
    before = webtest.TestApp(LembroMiddleware(session_app, secret=old, **options))
    before.get("/inc")
    rotating = webtest.TestApp(LembroMiddleware(session_app, secret=["the new secret, long enough", old], **options),
                               cookiejar=before.cookiejar)
    own_redis.stop()
    response = rotating.get("/nothing")
    assert response.text == "untouched" and "Set-Cookie" not in response.headers


def test_after_backend_unavailable_the_session_raises_again_then_works_once_redis_is_back(own_redis):
    from lembro_wsgi import SessionFactory

    sessions = SessionFactory(type="ext:redis", url=own_redis.url)
    environ = {}
    first = sessions.open(environ)
    first["n"] = 1
    cookie = sessions.close(first)[0][1].split(";")[0]
    session = sessions.open({"HTTP_COOKIE": cookie})
    own_redis.stop()
    for _ in range(2):
        with pytest.raises(BackendUnavailable):
            session.get("n")
    own_redis.restart()  # empty: the session is gone, but the object works
    assert session.get("n") is None and "n" not in session


def test_a_full_redis_refuses_writes_without_losing_anything(caplog):
    """maxmemory with noeviction: read-only pages still answer, a refused write keeps what was stored."""
    server = RedisServer.start_or_skip(extra=["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"])
    try:
        app = webtest.TestApp(LembroMiddleware(session_app, type="ext:redis", url=server.url))
        sid = app.get("/inc").text.split()[0]
        client = redis.Redis.from_url(server.url)
        filler = 0
        for size in (100_000, 1_000, 10):  # bounded by maxmemory: fill Redis until even a small write is refused
            while True:
                try:
                    client.set(f"filler{filler}", "x" * size)
                except redis.exceptions.ResponseError as exc:
                    assert str(exc).startswith("OOM") or isinstance(exc, redis.exceptions.OutOfMemoryError)
                    break
                filler += 1
                assert filler < 20_000
        assert app.get("/").text.split()[:2] == [sid, "1"]  # read-only: a TTL refresh, no write
        with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
            response = app.get("/inc")  # the write is refused
        assert response.status_int == 200 and "Set-Cookie" not in response.headers
        assert any("out of memory" in r.getMessage() for r in caplog.records)
        assert app.get("/").text.split()[:2] == [sid, "1"]  # what was stored is intact, and still served
        client.flushdb()
        client.close()
    finally:
        server.stop()


def test_flask_request_that_never_uses_its_session_answers_while_redis_is_down(own_redis):
    flask = pytest.importorskip("flask")
    from lembro_wsgi.flask import LembroSessionInterface

    app = flask.Flask(__name__)
    app.secret_key = "a flask secret key"
    app.session_interface = LembroSessionInterface(type="ext:redis", url=own_redis.url)
    stopped = []

    @app.route("/login")
    def login():
        flask.session["user"] = "ana"
        return "in"

    @app.route("/hello")
    def hello():
        own_redis.stop()  # Redis goes down after the session was loaded, before the response
        stopped.append(True)
        return "hello"

    client = webtest.TestApp(app)
    client.get("/login")
    assert client.get("/hello").text == "hello" and stopped
    own_redis.restart()
