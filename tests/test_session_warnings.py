"""What a Session warns about once the response has started, and what it does not.

A change that cannot be kept (no cookie went out for it, or the backend refused it as the body ended) is
a WARNING that names the session by its short id, never the whole id (ids are secrets), once per change.
A logout, by this request or by another one meanwhile, is the rule working, not something to warn about."""

import logging

import pytest
import redis
import webtest

from lembro_wsgi import LembroMiddleware, SessionFactory


@pytest.fixture
def sessions(make_store):
    return SessionFactory(store=make_store())


def opened(sessions, sid=None):
    return sessions.open({"HTTP_COOKIE": f"lembro.sid={sid}"} if sid else {})


def seeded(sessions, **data):
    """A stored session holding ``data``; returns its id."""
    session = opened(sessions)
    session.update(data)
    headers = sessions.close(session)
    session.finish()
    return headers[0][1].split(";")[0].partition("=")[2]


def warnings_in(caplog):
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


def test_a_late_change_with_no_cookie_is_warned_about_by_short_id_once_per_change(sessions, caplog):
    session = opened(sessions)
    session.load()  # read, left empty: no cookie goes out
    assert sessions.close(session) == []
    sid = session.id
    session["late"] = True  # in the streamed body: no cookie can carry this new id now
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        session.finish()
        session.finish()  # Pyramid finishes again once a streamed body is sent: the same change, said once
    [message] = warnings_in(caplog)
    assert message.startswith(f"session {sid[:6]}") and sid not in message and "dropped" in message
    caplog.clear()
    session["later"] = True  # a later change is said again
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        session.finish()
    assert len(warnings_in(caplog)) == 1
    assert not sessions.backend.exists(sid)


def test_a_logout_while_the_body_is_sent_takes_effect_with_no_false_warning(sessions, caplog):
    sid = seeded(sessions, user="ana")
    session = opened(sessions, sid)
    assert session["user"] == "ana"
    sessions.close(session)
    session.invalidate()  # a streamed body that signs the user out
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        session.finish()
    assert not sessions.backend.exists(sid)
    assert warnings_in(caplog) == []


def test_a_change_to_a_session_logged_out_meanwhile_is_dropped_without_a_warning(sessions, caplog):
    sid = seeded(sessions, user="ana")
    slow = opened(sessions, sid)
    assert slow["user"] == "ana"
    logout = opened(sessions, sid)
    logout.invalidate()
    sessions.close(logout)
    logout.finish()
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        assert sessions.close(slow) == []  # its read finds the id gone: no cookie
        slow["late"] = True  # in its streamed body
        slow.finish()
    assert not sessions.backend.exists(sid)
    assert warnings_in(caplog) == []  # logout is final: the rule working, not an anomaly


def test_changes_the_backend_refuses_as_the_body_ends_are_warned_about_by_short_id(redis_url, caplog):
    admin = redis.Redis.from_url(redis_url)
    seen = {}

    def streaming_app(environ, start_response):
        session = environ["lembro.session"]
        session["n"] = session.get("n", 0) + 1
        seen["sid"] = session.id
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first "
        if environ["PATH_INFO"] == "/refuse":
            admin.config_set("min-replicas-to-write", 1)  # a real refusal from here on: NOREPLICAS
        session["late"] = True
        yield b"last"

    app = webtest.TestApp(LembroMiddleware(streaming_app, type="ext:redis", url=redis_url))
    app.get("/")  # stored as the response starts
    try:
        with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
            response = app.get("/refuse")
    finally:
        admin.config_set("min-replicas-to-write", 0)
    assert response.text == "first last"  # the body went out whole
    sid = seen["sid"]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = warning.getMessage()
    assert message.startswith(f"session {sid[:6]}") and sid not in message and "lost" in message
