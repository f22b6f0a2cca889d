"""A server with several worker processes (issue 21, item 10), in process: ``wsgi.multiprocess`` is true.

Each worker would keep its own lembro store, so lembro says so once per process at WARNING, naming the
fix, and the store's stats page shows it. A shared backend (``type='ext:redis'``) is what such a server
needs: no warning there. tests/test_gunicorn.py checks the same under a real gunicorn.
"""

import logging

import pytest
import webtest

import lembro_wsgi.factory
from lembro_wsgi import LembroMiddleware, StatsApp
from tests.wsgi_apps import session_app

MULTI = {"wsgi.multiprocess": True}


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    """As in a new worker process: nothing warned yet."""
    monkeypatch.setattr(lembro_wsgi.factory, "_warned_processes", False, raising=False)


def lembro_warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "lembro_wsgi" and r.levelno >= logging.WARNING]


def test_the_first_multiprocess_request_is_warned_about_once_naming_the_fix(caplog):
    middleware = LembroMiddleware(session_app, max_size="64K")
    app = webtest.TestApp(middleware, extra_environ=MULTI)
    with caplog.at_level(logging.DEBUG, logger="lembro_wsgi"):
        for _ in range(3):
            app.get("/inc")
        webtest.TestApp(LembroMiddleware(session_app), extra_environ=MULTI).get("/inc")  # another store, same process
    warnings = lembro_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "several worker processes" in warnings[0] and "signed out" in warnings[0]
    assert "gunicorn -w 1 --threads 8" in warnings[0] and "type='ext:redis'" in warnings[0]
    assert app.get("/inc").text.split()[1] == "4"  # sessions still work in this process


def test_the_stats_page_says_so_once_a_multiprocess_request_came():
    middleware = LembroMiddleware(session_app, max_size="64K")
    stats = webtest.TestApp(StatsApp(middleware.store))
    assert "multiprocess" not in stats.get("/?format=json").json
    assert "Several worker processes" not in stats.get("/").text
    webtest.TestApp(middleware).get("/inc")  # a single-process server: nothing to say
    assert "multiprocess" not in stats.get("/?format=json").json
    webtest.TestApp(middleware, extra_environ=MULTI).get("/nothing")  # even a request that uses no session
    assert stats.get("/?format=json").json["multiprocess"] is True
    page = stats.get("/").text
    assert "Several worker processes" in page and "gunicorn -w 1 --threads 8" in page


def test_a_single_process_server_is_not_warned_about(caplog):
    app = webtest.TestApp(LembroMiddleware(session_app), extra_environ={"wsgi.multiprocess": False})
    with caplog.at_level(logging.DEBUG, logger="lembro_wsgi"):
        app.get("/inc")
        app.get("/inc")
    assert lembro_warnings(caplog) == []


def test_a_shared_backend_is_not_warned_about(redis_url, caplog):
    app = webtest.TestApp(LembroMiddleware(session_app, type="ext:redis", url=redis_url), extra_environ=MULTI)
    with caplog.at_level(logging.DEBUG, logger="lembro_wsgi"):
        assert app.get("/inc").text.split()[1] == "1"
        assert app.get("/inc").text.split()[1] == "2"
    assert lembro_warnings(caplog) == []
    lembro_app = webtest.TestApp(LembroMiddleware(session_app), extra_environ=MULTI)
    with caplog.at_level(logging.DEBUG, logger="lembro_wsgi"):
        lembro_app.get("/inc")
    assert len(lembro_warnings(caplog)) == 1  # the Redis app did not use up this process's warning


def test_every_adapter_warns(caplog):
    """The check is in SessionFactory.open, which the middleware, Pyramid, Bottle and Flask all use."""
    flask = pytest.importorskip("flask")
    from lembro_wsgi.flask import LembroSession

    flask_app = flask.Flask(__name__)
    flask_app.secret_key = "a long enough test secret for flask"
    LembroSession(flask_app)
    flask_app.add_url_rule("/", "index", lambda: str(flask.session.get("n", 0)))
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        flask_app.test_client().get("/", environ_overrides=MULTI)
    assert len(lembro_warnings(caplog)) == 1
    assert getattr(flask_app.session_interface.store, "multiprocess", False) is True
