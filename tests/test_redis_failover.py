"""A Redis that refuses to serve: a read-only replica after a failover, failing persistence (MISCONF), a busy
script (BUSY), on real redis-servers; the other "not now" replies through a scripted stand-in.

Each of them is ``BackendUnavailable`` for a request that needs its session (Flask's error handler answers it,
even when the refusal comes as the session is saved), and a request that never uses its session answers as if
Redis were fine, in every integration.
"""

import contextlib
import logging
import pickle
import signal
import threading
import time
import urllib.error
import urllib.request

import bottle
import flask
import pytest
import redis
import webtest
from pyramid.config import Configurator
from pyramid.response import Response

from lembro_wsgi import BackendFull, BackendUnavailable, LembroMiddleware
from lembro_wsgi.backend import backend_error
from lembro_wsgi.bottle import LembroPlugin
from lembro_wsgi.flask import LembroSessionInterface
from lembro_wsgi.pyramid import LembroSessionFactory
from tests.redis_server import RedisServer, ScriptedRedis, wait_until
from tests.servers import serve
from tests.wsgi_apps import session_app

PASSWORD = "f4ilover-pass"
OLD_SECRET, NEW_SECRET = "the old secret, long enough", "the new secret, long enough"


def client_of(server):
    return redis.Redis.from_url(server.url)


def names_the_refusal(error, code):
    """Whether a BackendUnavailable's message says which refusal it was: the Redis error code, or redis-py's
    own class for it (redis-py 6 and before keep no code for the errors they have a class for)."""
    cause = type(error.__cause__)
    return code in str(error) or (cause is not redis.exceptions.ResponseError and f".{cause.__name__})" in str(error))


class ReadOnlyReplica:
    """A replica of a primary (Redis's default ``replica-read-only yes``): the app under test is on the replica,
    as after a failover that left the app's URL on a demoted node; sessions are made on the primary."""

    code = "READONLY"

    def __init__(self, primary, replica):
        self.primary, self.replica = primary, replica
        self.writer_url, self.url = primary.url, replica.url

    def reset(self):
        client_of(self.primary).flushall()
        self._replicated()

    def _replicated(self):
        assert client_of(self.primary).wait(1, 10_000) == 1  # the replica has every write so far

    @contextlib.contextmanager
    def healthy(self):
        yield
        self._replicated()

    def refusing(self):
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def recovered(self):
        """The failover completes: the replica is promoted (then made a replica again for the next test)."""
        replica = client_of(self.replica)
        replica.replicaof("NO", "ONE")
        yield
        replica.replicaof("127.0.0.1", self.primary.port)
        wait_until(lambda: replica.info("replication").get("master_link_status") == "up",
                   "the replica to be linked to its primary again")
        self._replicated()


class FailingPersistence:
    """A server whose snapshot failed, with ``stop-writes-on-bgsave-error``: writes are answered MISCONF.
    ``healthy()`` lets writes through for a while, as an operator would by turning that option off."""

    code = "MISCONF"

    def __init__(self, server):
        self.server = server
        self.writer_url = self.url = server.url

    @contextlib.contextmanager
    def healthy(self):
        client = client_of(self.server)
        client.config_set("stop-writes-on-bgsave-error", "no")
        try:
            yield
        finally:
            client.config_set("stop-writes-on-bgsave-error", "yes")

    def reset(self):
        with self.healthy():
            client_of(self.server).flushall()

    def refusing(self):
        return contextlib.nullcontext()

    def recovered(self):
        return self.healthy()


class BusyScript:
    """A server running a script past its ``busy-reply-threshold`` (``lua-time-limit``) while ``refusing()``:
    every other command, reads included, is answered BUSY until SCRIPT KILL."""

    code = "BUSY"

    def __init__(self, server):
        self.server = server
        self.writer_url = self.url = server.url

    def reset(self):
        client_of(self.server).flushall()

    def healthy(self):
        return contextlib.nullcontext()

    def recovered(self):
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def refusing(self):
        def run_script():
            with contextlib.suppress(redis.exceptions.ResponseError):  # "Script killed by user with SCRIPT KILL"
                client_of(self.server).eval("while true do end", 0)

        def answers_busy():
            try:
                probe.get("probe")
            except redis.exceptions.ResponseError as exc:
                return str(exc).startswith("BUSY")
            return False

        probe = client_of(self.server)
        runner = threading.Thread(target=run_script, name="busy-script")
        runner.start()
        try:
            wait_until(answers_busy, "the script to make the server answer BUSY")
            yield
        finally:
            wait_until(lambda: _script_killed(probe), "SCRIPT KILL to be accepted")
            runner.join(10)


def _script_killed(client):
    try:
        client.script_kill()
    except redis.exceptions.ResponseError as exc:  # NOTBUSY: the script has not started yet, or already ended
        return "NOTBUSY" in str(exc)
    return True


@pytest.fixture(scope="module")
def replica_pair(tmp_path_factory):
    """A primary and its replica; each works in a folder of its own, where a replica keeps what it syncs."""
    primary = RedisServer.start_or_skip(password=PASSWORD, extra=[
        "--dir", str(tmp_path_factory.mktemp("primary")), "--repl-diskless-sync-delay", "0",
    ])
    try:
        replica = RedisServer.start_or_skip(password=PASSWORD, extra=[
            "--dir", str(tmp_path_factory.mktemp("replica")),
            "--replicaof", "127.0.0.1", str(primary.port), "--masterauth", PASSWORD,
        ])
        try:
            wait_until(lambda: client_of(replica).info("replication")["master_link_status"] == "up",
                       "the replica to be linked to its primary")
            yield ReadOnlyReplica(primary, replica)
        finally:
            replica.stop()  # first: a primary waits for its replicas as it shuts down
    finally:
        primary.stop()


@pytest.fixture(scope="module")
def failing_persistence(tmp_path_factory):
    folder = tmp_path_factory.mktemp("snapshots")
    server = RedisServer.start_or_skip(password=PASSWORD, extra=[
        "--dir", str(folder), "--save", "3600 1", "--stop-writes-on-bgsave-error", "yes",
    ])
    client = client_of(server)
    try:
        folder.rmdir()  # redis-server works in it: a snapshot cannot even be created now, root or not
        client.bgsave()
        wait_until(lambda: client.info("persistence")["rdb_bgsave_in_progress"] == 0
                   and client.info("persistence")["rdb_last_bgsave_status"] == "err", "the snapshot to fail")
        with pytest.raises(redis.exceptions.ResponseError, match="^MISCONF"):
            client.set("probe", 1)
        yield FailingPersistence(server)
    finally:
        client.config_set("save", "")  # else it would try a last snapshot as it stops, fail, and refuse to stop
        server.stop()


@pytest.fixture(scope="module")
def busy_server():
    server = RedisServer.start_or_skip(password=PASSWORD, extra=["--lua-time-limit", "10"])
    yield BusyScript(server)
    server.stop()


@pytest.fixture(params=["readonly", "misconf", "busy"])
def failure(request):
    """One way a Redis refuses to serve, emptied for the test."""
    fixture = {"readonly": "replica_pair", "misconf": "failing_persistence", "busy": "busy_server"}[request.param]
    failure = request.getfixturevalue(fixture)
    failure.reset()
    return failure


# -- Flask: LembroSessionInterface ------------------------------------------------------------------------------

def flask_app(url, errorhandler=True):
    app = flask.Flask(__name__)
    app.secret_key = "a flask secret key"
    app.session_interface = LembroSessionInterface(type="ext:redis", url=url)

    @app.route("/inc")
    def inc():
        flask.session["n"] = flask.session.get("n", 0) + 1
        return str(flask.session["n"])

    @app.route("/nothing")
    def nothing():
        return "untouched"

    if errorhandler:
        @app.errorhandler(BackendUnavailable)
        def unavailable(exc):
            return "sessions are unavailable, try again shortly", 503, {"Retry-After": "5"}

    return app


def flask_session_cookie(failure):
    """A session with n=1, made while the backend takes writes; the Cookie header that carries it."""
    with failure.healthy():
        response = flask_app(failure.writer_url).test_client().get("/inc")
    assert response.text == "1"
    return response.headers["Set-Cookie"].split(";")[0]


def test_flask_route_that_never_uses_its_session_answers(failure):
    """Flask loads the session as the request opens and refreshes its TTL as it is saved: neither may fail it."""
    cookie = flask_session_cookie(failure)
    client = flask_app(failure.url).test_client(use_cookies=False)
    with failure.refusing():
        response = client.get("/nothing", headers={"Cookie": cookie})
    assert response.status_code == 200 and response.text == "untouched"
    assert "Set-Cookie" not in response.headers


def test_flask_errorhandler_answers_a_route_that_needs_its_session(failure, caplog):
    """Read-only replica and MISCONF refuse the save, after the view ran; BUSY refuses the load in the view.
    Either way the app's handler for BackendUnavailable answers, and no session cookie goes out."""
    cookie = flask_session_cookie(failure)
    client = flask_app(failure.url).test_client(use_cookies=False)
    with failure.refusing(), caplog.at_level(logging.ERROR, logger="lembro_wsgi"):
        response = client.get("/inc", headers={"Cookie": cookie})
    assert response.status_code == 503 and response.text == "sessions are unavailable, try again shortly"
    assert response.headers["Retry-After"] == "5" and "Set-Cookie" not in response.headers
    assert any(r.levelno == logging.ERROR and "'ext:redis'" in r.getMessage() for r in caplog.records)
    with failure.recovered():  # nothing was lost, and the next request works with no restart
        assert client.get("/inc", headers={"Cookie": cookie}).text == "2"


def test_flask_without_a_handler_a_save_time_refusal_is_flasks_500_with_backend_unavailable(replica_pair):
    replica_pair.reset()
    cookie = flask_session_cookie(replica_pair)
    app = flask_app(replica_pair.url, errorhandler=False)
    seen = []

    @app.errorhandler(500)
    def server_error(exc):
        seen.append(exc.original_exception)
        return "server error", 500

    response = app.test_client(use_cookies=False).get("/inc", headers={"Cookie": cookie})
    assert response.status_code == 500 and response.text == "server error"
    assert "Set-Cookie" not in response.headers
    assert len(seen) == 1 and isinstance(seen[0], BackendUnavailable)
    assert isinstance(seen[0].__cause__, redis.exceptions.ReadOnlyError)


def test_flask_on_a_real_server_the_handlers_answer_is_what_the_client_gets(replica_pair):
    """Through waitress: the response Flask sends is the handler's, status, headers and body."""
    replica_pair.reset()
    cookie = flask_session_cookie(replica_pair)
    with serve(flask_app(replica_pair.url)) as base:
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(urllib.request.Request(f"{base}/inc", headers={"Cookie": cookie}), timeout=10)
        untouched = urllib.request.urlopen(
            urllib.request.Request(f"{base}/nothing", headers={"Cookie": cookie}), timeout=10
        )
    error = caught.value
    assert error.code == 503 and error.read() == b"sessions are unavailable, try again shortly"
    assert error.headers["Retry-After"] == "5" and error.headers.get("Set-Cookie") is None
    assert error.headers["Content-Length"] == str(len(b"sessions are unavailable, try again shortly"))
    assert untouched.status == 200 and untouched.read() == b"untouched"
    assert untouched.headers.get("Set-Cookie") is None


# -- LembroMiddleware, Pyramid, Bottle ----------------------------------------------------------------------------

def middleware_cookie(failure, **options):
    """A session with n=1 made through LembroMiddleware while the backend takes writes; its Cookie header."""
    with failure.healthy():
        response = webtest.TestApp(LembroMiddleware(session_app, type="ext:redis", url=failure.writer_url,
                                                    **options)).get("/inc")
    assert response.text.split()[1] == "1"
    return response.headers["Set-Cookie"].split(";")[0]


def test_a_route_that_needs_its_session_gets_backend_unavailable_naming_the_backend(failure, caplog):
    cookie = middleware_cookie(failure)
    app = webtest.TestApp(LembroMiddleware(session_app, type="ext:redis", url=failure.url))
    with failure.refusing(), caplog.at_level(logging.ERROR, logger="lembro_wsgi"), \
            pytest.raises(BackendUnavailable) as caught:
        app.get("/inc", headers={"Cookie": cookie})
    message = str(caught.value)
    assert "'ext:redis'" in message and names_the_refusal(caught.value, failure.code)
    assert PASSWORD not in message and ":***@" in message and PASSWORD not in caplog.text
    assert isinstance(caught.value.__cause__, redis.exceptions.ResponseError)
    assert any(r.levelno == logging.ERROR and "unavailable" in r.getMessage() for r in caplog.records)
    with failure.recovered():  # the session is intact, and the next request works with no restart
        assert app.get("/inc", headers={"Cookie": cookie}).text.split()[1] == "2"


def rotated_middleware(url):
    return webtest.TestApp(LembroMiddleware(session_app, type="ext:redis", url=url, secret=[NEW_SECRET, OLD_SECRET]))


def rotated_pyramid(url):
    config = Configurator()
    config.set_session_factory(LembroSessionFactory(type="ext:redis", url=url, secret=[NEW_SECRET, OLD_SECRET]))

    def nothing(request):
        assert request.session is not None  # asks for its session, never reads it
        return Response("untouched")

    config.add_route("nothing", "/nothing")
    config.add_view(nothing, route_name="nothing")
    return webtest.TestApp(config.make_wsgi_app())


def rotated_bottle(url):
    app = bottle.Bottle()
    app.install(LembroPlugin(type="ext:redis", url=url, secret=[NEW_SECRET, OLD_SECRET]))

    @app.route("/nothing")
    def nothing(session):  # handed its session, never reads it
        return "untouched"

    return webtest.TestApp(app)


@pytest.mark.parametrize("build", [rotated_middleware, rotated_pyramid, rotated_bottle])
def test_a_request_that_never_uses_its_session_answers_while_redis_is_busy(busy_server, build):
    """A cookie signed with a retiring secret is re-signed only while its session is there: that check reads
    Redis, and a Redis that answers BUSY to reads must not fail a request that never used its session."""
    busy_server.reset()
    cookie = middleware_cookie(busy_server, secret=OLD_SECRET)
    app = build(busy_server.url)
    with busy_server.refusing():
        response = app.get("/nothing", headers={"Cookie": cookie})
    assert response.status_int == 200 and response.text == "untouched"
    assert "Set-Cookie" not in response.headers
    resigned = app.get("/nothing", headers={"Cookie": cookie})  # the session is intact: re-signed now
    assert resigned.headers["Set-Cookie"].startswith("lembro.sid=")
    assert resigned.headers["Set-Cookie"].split(";")[0] != cookie


def test_pyramid_exception_view_answers_a_busy_redis_with_a_503(busy_server):
    busy_server.reset()
    cookie = middleware_cookie(busy_server)
    config = Configurator()
    config.set_session_factory(LembroSessionFactory(type="ext:redis", url=busy_server.url))

    def count(request):
        request.session["n"] = request.session.get("n", 0) + 1
        return Response(str(request.session["n"]))

    def unavailable(exc, request):
        return Response("sessions are unavailable", status=503)

    config.add_route("count", "/")
    config.add_view(count, route_name="count")
    config.add_exception_view(unavailable, context=BackendUnavailable)
    app = webtest.TestApp(config.make_wsgi_app())
    with busy_server.refusing():
        response = app.get("/", headers={"Cookie": cookie}, status=503)
    assert response.text == "sessions are unavailable" and "Set-Cookie" not in response.headers
    assert app.get("/", headers={"Cookie": cookie}).text == "2"


# -- Every "not now" reply, as redis-py parses it -----------------------------------------------------------------

NOT_NOW = {
    "READONLY": b"-READONLY You can't write against a read only replica.",
    "MISCONF": b"-MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.",
    "BUSY": b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    "MASTERDOWN": b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    "NOREPLICAS": b"-NOREPLICAS Not enough good replicas to write.",
    "TRYAGAIN": b"-TRYAGAIN Multiple keys request during rehashing of slot",
    "CLUSTERDOWN": b"-CLUSTERDOWN The cluster is down",
}


@pytest.mark.parametrize("code", sorted(NOT_NOW))
def test_every_not_now_reply_is_backend_unavailable(code):
    with ScriptedRedis(NOT_NOW[code]) as fake:
        app = webtest.TestApp(LembroMiddleware(session_app, type="ext:redis", url=fake.url))
        with pytest.raises(BackendUnavailable, match="'ext:redis'") as caught:
            app.get("/inc")  # a new session: its first write is refused
    assert names_the_refusal(caught.value, code)


def test_errors_are_told_apart_by_redis_py_class_and_by_the_whole_error_code():
    """Recent redis-py keeps the code in ``status_code`` and strips it from the message of the errors it has a
    class for; redis-py 6 and before have no ``status_code`` and leave the code in the message of the others."""
    def raised(reply):
        with ScriptedRedis(reply) as fake, pytest.raises(redis.exceptions.RedisError) as caught:
            redis.Redis.from_url(fake.url).get("key")
        return caught.value

    errors = redis.exceptions
    assert backend_error(raised(b"-BUSY Redis is busy running a script.")) is BackendUnavailable
    assert backend_error(raised(b"-OOM command not allowed when used memory > 'maxmemory'.")) is BackendFull
    for reply in (b"-BUSYKEY Target key name already exists.", b"-ERR unknown command 'GET'",
                  b"-WRONGTYPE Operation against a key holding the wrong kind of value", b"-NOPERM no permissions"):
        assert backend_error(raised(reply)) is None, reply
    # As redis-py 6 and before build them: a class with the code stripped, or a ResponseError with the code kept.
    assert backend_error(errors.ReadOnlyError("You can't write against a read only replica.")) is BackendUnavailable
    assert backend_error(errors.BusyLoadingError("Redis is loading the dataset in memory")) is BackendUnavailable
    assert backend_error(errors.ResponseError("LOADING Redis is loading the dataset in memory")) is BackendUnavailable
    assert backend_error(errors.ResponseError("NOREPLICAS Not enough good replicas to write.")) is BackendUnavailable
    assert backend_error(errors.ResponseError("OOM command not allowed")) is BackendFull
    assert backend_error(errors.ResponseError("BUSYKEY Target key name already exists.")) is None
    assert backend_error(errors.ResponseError("busy")) is None
    assert backend_error(ValueError("READONLY")) is None


@pytest.mark.parametrize("kind", ["replica_pair", "failing_persistence"])
def test_a_request_that_only_reads_its_session_answers_while_redis_refuses_writes(kind, request):
    """The refresh of an idle timer is a write (EXPIRE); a replica or MISCONF refuses it, but the page had
    its data: it answers, and the session is intact once Redis takes writes again. (BUSY refuses reads.)"""
    failure = request.getfixturevalue(kind)
    failure.reset()
    cookie = middleware_cookie(failure)
    app = webtest.TestApp(LembroMiddleware(session_app, type="ext:redis", url=failure.url))
    flask_cookie = flask_session_cookie(failure)
    client = flask_app(failure.url).test_client(use_cookies=False)

    @client.application.route("/read")
    def read():
        return str(flask.session.get("n", 0))

    with failure.refusing():
        response = app.get("/", headers={"Cookie": cookie})
        assert response.text.split()[1] == "1" and "Set-Cookie" not in response.headers
        response = client.get("/read", headers={"Cookie": flask_cookie})
        assert response.status_code == 200 and response.text == "1"
    with failure.recovered():
        assert app.get("/inc", headers={"Cookie": cookie}).text.split()[1] == "2"
        assert client.get("/inc", headers={"Cookie": flask_cookie}).text == "2"


def test_a_refusal_as_a_streamed_body_ends_still_delivers_the_whole_body(failing_persistence, caplog):
    """Changes made while the body streams are saved when it ends; if Redis refuses them then, the body
    has gone out whole, and the loss is logged (the client must not get a cut-off response)."""
    failure = failing_persistence
    failure.reset()
    writes = failure.healthy()

    def streaming_app(environ, start_response):
        session = environ["lembro.session"]
        session["n"] = session.get("n", 0) + 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first "
        writes.__exit__(None, None, None)  # Redis refuses writes from here on
        session["late"] = True
        yield b"last"

    app = webtest.TestApp(LembroMiddleware(streaming_app, type="ext:redis", url=failure.url))
    writes.__enter__()
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        response = app.get("/")
    assert response.text == "first last" and "lembro.sid=" in response.headers["Set-Cookie"]
    assert any("changes made while the body was sent are lost" in r.getMessage() for r in caplog.records)
    stored = [pickle.loads(client_of(failure.server).get(key)) for key in client_of(failure.server).keys("*")]
    assert [record["data"] for record in stored] == [{"n": 1}]  # saved as the response started; nothing lost


def test_a_redis_that_stops_answering_costs_a_request_seconds_not_forever():
    """A frozen Redis (SIGSTOP) accepts connections and never answers: lembro bounds each call (2 s unless the
    URL says otherwise), so Flask's eager load gives up once and a route that never uses its session answers."""
    server = RedisServer.start_or_skip(password=PASSWORD)
    try:
        cookie = flask_app(server.url).test_client().get("/inc").headers["Set-Cookie"].split(";")[0]
        client = flask_app(server.url).test_client(use_cookies=False)
        server.process.send_signal(signal.SIGSTOP)
        try:
            start = time.monotonic()
            response = client.get("/nothing", headers={"Cookie": cookie})
            waited = time.monotonic() - start
            assert response.status_code == 200 and response.text == "untouched"
            assert 1.5 < waited < 4, f"waited {waited:.1f} s"  # one timeout of 2 s, not two, not forever
            assert client.get("/inc", headers={"Cookie": cookie}).status_code == 503  # the handler's answer
            quick = flask_app(server.url + "?socket_timeout=0.3").test_client(use_cookies=False)
            start = time.monotonic()
            assert quick.get("/nothing", headers={"Cookie": cookie}).status_code == 200
            assert time.monotonic() - start < 1.9  # the URL's own timeout is kept: 2 s would take 2 s at least
        finally:
            server.process.send_signal(signal.SIGCONT)
        assert client.get("/inc", headers={"Cookie": cookie}).text == "2"
    finally:
        server.stop()


def test_a_client_error_that_is_no_refusal_never_destroys_the_stored_session(redis_url):
    """Only what unpickling raises makes a stored record 'undecodable' (dropped); an error of the client's,
    such as a reply lembro does not know, is raised as it is and the key stays."""
    app = webtest.TestApp(LembroMiddleware(session_app, type="ext:redis", url=redis_url))
    cookie = app.get("/inc").headers["Set-Cookie"].split(";")[0]
    client = redis.Redis.from_url(redis_url)
    (key,) = client.keys("*")
    client.delete(key)
    client.rpush(key, "a list where a session was")  # GET on it is answered WRONGTYPE
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        app.get("/inc", headers={"Cookie": cookie})
    assert client.type(key) == b"list"


@pytest.mark.parametrize("name", ["RedisClusterUnreachableError", "SlotNotCoveredError"])
def test_a_cluster_that_cannot_be_reached_is_unavailable(name):
    """redis-py raises these from its cluster client (Beaker's ext:rediscluster); they are no RedisError."""
    error_class = getattr(redis.exceptions, name, None)
    if error_class is None:
        pytest.skip(f"redis-py {redis.__version__} has no {name}")
    assert backend_error(error_class("Redis Cluster cannot be connected.")) is BackendUnavailable
