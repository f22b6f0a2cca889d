"""A Session's own lifetime (Flask's permanent sessions) on every write path, and Flask's ``modified`` flag.

A permanent session lives PERMANENT_SESSION_LIFETIME on the server, not the store's idle timeout: when it is
first written, rewritten, moved to a new id at login and touched by a read, on lembro (fake clock) and on the
file backend (which ages records by the lifetime they carry)."""

import datetime
import time

import flask
import pytest

from lembro_wsgi.backend import SessionBackend
from lembro_wsgi.flask import LembroSessionInterface

IDLE = 60  # the interface's timeout: a browser-session cookie's idle lifetime
LASTING = datetime.timedelta(hours=2)  # PERMANENT_SESSION_LIFETIME


def flask_app(interface):
    app = flask.Flask(__name__)
    app.secret_key = "a flask secret key for the session tests"
    app.config["PERMANENT_SESSION_LIFETIME"] = LASTING
    app.session_interface = interface

    @app.route("/remember")
    def remember():
        flask.session.permanent = True
        flask.session["n"] = flask.session.get("n", 0)
        return "p"

    @app.route("/inc")
    def inc():
        flask.session["n"] = flask.session.get("n", 0) + 1
        return str(flask.session["n"])

    @app.route("/login")
    def login():
        flask.session.regenerate()
        flask.session["user"] = "ana"
        return "in"

    @app.route("/logout")
    def logout():
        flask.session.clear()
        return str(flask.session.modified)

    @app.route("/")
    def read():
        return f"{flask.session.get('n', 0)} {flask.session.get('user', '-')}"

    return app


@pytest.fixture
def app(make_store):
    return flask_app(LembroSessionInterface(store=make_store(), timeout=IDLE))


def test_a_permanent_session_rewritten_keeps_its_lifetime(app, clock):
    client = app.test_client()
    client.get("/remember")
    clock.advance(30)
    assert client.get("/inc").text == "1"  # a rewrite of the stored session
    clock.advance(600)  # past the idle timeout, well within the permanent lifetime
    assert client.get("/").text == "1 -"


def test_a_permanent_session_moved_at_login_keeps_its_lifetime(app, clock):
    client = app.test_client()
    client.get("/remember")
    clock.advance(30)
    client.get("/login")  # regenerate(): the record moves to a new id
    clock.advance(600)
    assert client.get("/").text == "0 ana"


def test_a_permanent_session_touched_by_a_read_keeps_its_lifetime(app, clock):
    client = app.test_client()
    client.get("/remember")
    assert client.get("/inc").text == "1"
    clock.advance(30)
    assert client.get("/").text == "1 -"  # read only: its idle timer restarts, with its own lifetime
    clock.advance(600)
    assert client.get("/").text == "1 -"
    clock.advance(LASTING.total_seconds() + 1)  # the lifetime does end
    assert client.get("/inc").text == "1"  # a fresh session: the old count is gone


def test_logout_marks_the_flask_session_modified(app):
    client = app.test_client()
    client.get("/inc")
    response = client.get("/logout")
    assert response.text == "True"  # Flask's flag: clear() is a change, as with Flask's own session
    assert "Expires=Thu, 01 Jan 1970" in response.headers["Set-Cookie"]


def test_a_permanent_session_on_the_file_backend_outlives_the_idle_timeout(tmp_path):
    data_dir = str(tmp_path)
    app = flask_app(LembroSessionInterface(type="file", data_dir=data_dir, timeout=IDLE))
    backend = SessionBackend("file", timeout=IDLE, data_dir=data_dir, key_prefix="session:")  # Flask's cookie name

    def idle(client, seconds):
        """Age the client's stored session as if it had been idle ``seconds`` (the file backend's clock is real)."""
        sid = client.get_cookie("session").value.partition(".")[0]
        record = backend.load(sid)
        backend.save(sid, {**record, "accessed": time.time() - seconds})

    lasting, plain = app.test_client(), app.test_client()
    lasting.get("/remember")
    assert lasting.get("/inc").text == "1"
    plain.get("/inc")
    idle(lasting, 1000)
    idle(plain, 1000)
    assert plain.get("/").text == "0 -"  # a browser-session cookie's session: idle past the timeout, gone
    assert lasting.get("/").text == "1 -"  # a permanent one lives its own lifetime
