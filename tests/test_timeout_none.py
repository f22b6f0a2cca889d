"""``timeout=None`` is no idle expiry, on every backend (issue 21, item 11b).

It used to be "the store's default" when a ``store=`` was given, but "never expires" on ``type='file'``
and on a store lembro built; the ini spelling ``none`` made the difference easy to hit. Now it is one
meaning everywhere, as LembroStore documents it. No test sleeps: lembro runs on a fake clock, the file
backend's records are aged by hand, and Redis is asked for the key's TTL.
"""

import time

import pytest
import redis
import webtest

from lembro_wsgi import LembroMiddleware
from tests.wsgi_apps import session_app

A_DECADE = 10 * 365 * 86400


def count(app, path="/inc"):
    return int(app.get(path).text.split()[1])


@pytest.mark.parametrize("spelling", [None, "none", "None"])
def test_with_a_store_given_none_is_no_idle_expiry_not_the_stores_default(make_store, clock, spelling):
    store = make_store(timeout=100)
    app = webtest.TestApp(LembroMiddleware(session_app, store=store, timeout=spelling))
    assert count(app) == 1
    clock.advance(A_DECADE)
    assert app.get("/read-late").text == "1"  # only read: its timer is restarted, and still never runs out
    clock.advance(A_DECADE)
    assert count(app) == 2
    clock.advance(A_DECADE)
    assert count(app) == 3


def test_without_a_store_none_is_no_idle_expiry(clock):
    middleware = LembroMiddleware(session_app, timeout=None, interval=None)
    middleware.store.clock = clock
    try:
        app = webtest.TestApp(middleware)
        assert count(app) == 1
        clock.advance(A_DECADE)
        assert count(app) == 2
    finally:
        middleware.store.close()


def test_a_number_still_wins_over_the_stores_own_timeout(make_store, clock):
    store = make_store(timeout=None)
    app = webtest.TestApp(LembroMiddleware(session_app, store=store, timeout=60))
    assert count(app) == 1
    clock.advance(61)
    assert count(app) == 1  # expired: a new session


def test_the_flask_ini_spelling_with_a_store_given(make_store, clock):
    flask = pytest.importorskip("flask")
    from lembro_wsgi.flask import LembroSession

    store = make_store(timeout=100)
    app = flask.Flask(__name__)
    app.secret_key = "a long enough test secret for flask"
    app.config["LEMBRO_TIMEOUT"] = "none"
    LembroSession(app, store=store)

    @app.route("/")
    def index():
        flask.session["n"] = flask.session.get("n", 0) + 1
        return str(flask.session["n"])

    client = app.test_client()
    assert client.get("/").text == "1"
    clock.advance(A_DECADE)
    assert client.get("/").text == "2"


def test_file_backend_none_is_no_idle_expiry(tmp_path):
    middleware = LembroMiddleware(session_app, type="file", data_dir=str(tmp_path), timeout=None)
    app = webtest.TestApp(middleware)
    sid = app.get("/inc").text.split()[0]
    backend = middleware.sessions.backend
    backend.save(sid, {**backend.load(sid), "accessed": time.time() - A_DECADE})  # as if idle for ten years
    assert count(app) == 2


def test_redis_none_is_no_idle_expiry(redis_url):
    middleware = LembroMiddleware(session_app, type="ext:redis", url=redis_url, timeout=None)
    app = webtest.TestApp(middleware)
    client = redis.Redis.from_url(redis_url)
    assert count(app) == 1
    (key,) = client.keys("*")
    assert client.ttl(key) == -1  # no expiry set
    assert app.get("/read-late").text == "1"  # a read refreshes the timer: there is none to set
    assert client.ttl(key) == -1
    assert count(app) == 2
    assert client.ttl(key) == -1
    timed = webtest.TestApp(LembroMiddleware(session_app, type="ext:redis", url=redis_url, timeout=60,
                                             key_prefix="timed:"))
    timed.get("/inc")
    (timed_key,) = client.keys("*timed:*")
    assert 0 < client.ttl(timed_key) <= 60
