"""The Session object, request by request through the public SessionFactory: open, use, close (the response
starts), finish (the body has gone). Each test holds a promise of the Session itself: what a deletion, a bare
regenerate() or a repr does, and what a request that ran alongside another may and may not write."""

import pytest
import webtest

from lembro_wsgi import LembroMiddleware, SessionFactory
from tests.wsgi_apps import session_app


@pytest.fixture
def sessions(make_store):
    return SessionFactory(store=make_store())


def opened(sessions, sid=None):
    """A request's session, carrying ``sid`` in its cookie (or no cookie)."""
    return sessions.open({"HTTP_COOKIE": f"lembro.sid={sid}"} if sid else {})


def cookie_in(headers):
    """The session cookie's value in Set-Cookie headers, or None when none is sent."""
    values = [value.split(";")[0].partition("=")[2] for name, value in headers if name == "Set-Cookie"]
    assert len(values) <= 1
    return values[0] if values else None


def seeded(sessions, **data):
    """A stored session holding ``data``, as one earlier request left it; returns its id."""
    session = opened(sessions)
    session.update(data)
    sid = cookie_in(sessions.close(session))
    session.finish()
    assert sid
    return sid


def data_of(sessions, sid):
    """What a later request with ``sid`` finds: its data, or None for a fresh session."""
    session = opened(sessions, sid)
    return None if session.new else dict(session)


def test_deleting_a_key_is_saved(sessions):
    sid = seeded(sessions, user="ana", cart=[1])
    session = opened(sessions, sid)
    del session["cart"]
    assert cookie_in(sessions.close(session)) is None  # same id: nothing to send
    session.finish()
    assert data_of(sessions, sid) == {"user": "ana"}


def test_regenerate_alone_moves_the_session_to_a_new_id(sessions):
    sid = seeded(sessions, user="ana")
    session = opened(sessions, sid)
    session.regenerate()  # at login, with nothing else written in this request
    new = cookie_in(sessions.close(session))
    session.finish()
    assert new and new != sid
    assert data_of(sessions, new) == {"user": "ana"}
    assert data_of(sessions, sid) is None  # the old id is no session any more


def test_repr_never_loads_and_never_shows_the_whole_id(sessions):
    sid = seeded(sessions, user="ana")
    session = opened(sessions, sid)
    text = repr(session)
    assert text.startswith("<Session ") and "not loaded" in text
    assert not session.loaded  # a repr (a debugger, a log line) never reaches the backend
    session.load()
    text = repr(session)
    assert text.startswith(f"<Session {sid[:6]}") and sid not in text  # the short id only: ids are secrets
    assert "{'user': 'ana'}" in text


def test_a_write_made_before_the_response_is_not_repeated_after_the_body(sessions):
    sid = seeded(sessions, n=0)
    slow = opened(sessions, sid)
    slow["n"] = 1
    sessions.close(slow)  # saved as its response starts; its body is still being sent
    quick = opened(sessions, sid)
    quick["n"] = 2
    sessions.close(quick)
    quick.finish()
    slow.finish()  # nothing changed while its body ran: the later request's write stands
    assert data_of(sessions, sid) == {"n": 2}


def test_a_session_logged_out_meanwhile_stays_out_through_repeated_saves(sessions):
    sid = seeded(sessions, user="ana")
    slow = opened(sessions, sid)
    slow.load()
    logout = opened(sessions, sid)
    logout.invalidate()
    sessions.close(logout)
    logout.finish()
    slow["a"] = 1
    slow.save()  # dropped: the id is gone
    slow["b"] = 2
    slow.save()  # and still dropped: a lost session is never written back under its old id
    assert cookie_in(sessions.close(slow)) is None
    slow.finish()
    assert not sessions.backend.exists(sid)
    assert data_of(sessions, sid) is None



def test_a_request_that_fails_before_its_response_starts_stores_none_of_its_changes(make_store):
    def crashing_app(environ, start_response):
        environ["lembro.session"]["n"] = 99
        raise RuntimeError("the body failed before the response started")
        yield b""  # a generator: it runs as the server iterates it

    store = make_store()
    app = webtest.TestApp(LembroMiddleware(session_app, store=store))
    sid = app.get("/inc").text.split()[0]
    middleware = LembroMiddleware(crashing_app, store=store)
    body = middleware({"REQUEST_METHOD": "GET", "HTTP_COOKIE": f"lembro.sid={sid}"}, lambda *args: None)
    with pytest.raises(RuntimeError):
        list(body)
    body.close()  # as the server does; no response ever started
    assert app.get("/").text.split()[:2] == [sid, "1"]


def test_a_logout_expires_the_cookie_once_even_when_the_session_is_closed_again(sessions):
    """An app or framework that saves twice (Flask's error page does) sends one expiring cookie, not two."""
    session = opened(sessions, seeded(sessions, n=1))
    session.invalidate()
    assert cookie_in(sessions.close(session)) == ""  # the expiring cookie
    assert sessions.close(session) == []  # nothing more to say


def test_a_malformed_unsigned_cookie_is_never_looked_up(make_store):
    """A value that is no session id, found among other cookies, is no cookie: the store is not asked."""
    store = make_store()
    asked = []
    store_get = store.get
    store.get = lambda *args, **kwargs: asked.append(args) or store_get(*args, **kwargs)
    sessions = SessionFactory(store=store)
    for value in ("not-an-id", "A" * 42, "A" * 42 + "="):
        session = sessions.open({"HTTP_COOKIE": f"theme=dark; lembro.sid={value}"})
        assert session.get("n") is None and session.id != value
    assert asked == []
