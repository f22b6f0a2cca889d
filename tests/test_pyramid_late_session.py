"""Pyramid: a session first used inside a streamed body (issue 21, item 11a).

Pyramid runs its response callbacks, where lembro decides the cookie, before the server iterates the
body; ``request.session`` first touched inside a generator body is made after that. With
``config.include('lembro_wsgi.pyramid')`` (or the tween added in code) the session a returning client
already holds is saved once the body is sent, and a new one, which can get no cookie, is not stored and
warned about once; without the tween lembro warns once that nothing will be saved.
"""

import logging

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.interfaces import ISessionFactory
from pyramid.response import Response

from lembro_wsgi.pyramid import LembroSessionFactory

SECRET = "a long enough test secret for pyramid"
TWEEN = "lembro_wsgi.pyramid.session_tween_factory"


def streamed(request, work):
    """A response whose body touches request.session for the first time (the view never does)."""
    def body():
        yield b"working "
        yield work(request.session).encode()
    return Response(app_iter=body(), content_length=len(b"working ") + 2)


def views(config):
    def login(request):
        request.session["user"] = "ana"
        return Response(request.session.id)

    def show(request):
        return Response(repr(sorted(request.session.items())))

    def count(session):
        session["n"] = session.get("n", 0) + 1
        return f"{session['n']:02d}"

    def regenerate(session):
        session.regenerate()
        session["promoted"] = True
        return "ok"

    def logout(session):
        session.invalidate()
        return "ok"

    pages = {
        "login": login, "show": show,
        "late-count": lambda request: streamed(request, count),
        "late-read": lambda request: streamed(request, lambda session: str(session.get("user"))[:2]),
        "late-regenerate": lambda request: streamed(request, regenerate),
        "late-logout": lambda request: streamed(request, logout),
    }
    for name, view in pages.items():
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name)


def included(**settings):
    """The app set up from settings with config.include, as the README shows."""
    config = Configurator(settings={"lembro.secret": SECRET, "lembro.interval": "none", **settings})
    config.include("lembro_wsgi.pyramid")
    views(config)
    app = config.make_wsgi_app()
    return webtest.TestApp(app), app.registry.queryUtility(ISessionFactory)


def in_code(factory, tween):
    """The factory set in code, with or without the tween."""
    config = Configurator()
    config.set_session_factory(factory)
    if tween:
        config.add_tween(TWEEN)
    views(config)
    return webtest.TestApp(config.make_wsgi_app())


def lembro_warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "lembro_wsgi" and r.levelno >= logging.WARNING]


def test_a_returning_clients_session_first_changed_in_the_body_is_saved():
    app, _ = included()
    app.get("/login")
    response = app.get("/late-count")
    assert response.text == "working 01" and response.headers["Content-Length"] == "10"
    assert "Set-Cookie" not in response.headers  # the id is the one the client holds
    assert app.get("/late-count").text == "working 02"
    assert app.get("/show").text == "[('n', 2), ('user', 'ana')]"


def test_a_returning_clients_session_first_read_in_the_body_has_its_timer_restarted(make_store, clock):
    store = make_store(timeout=100)
    app = in_code(LembroSessionFactory(store=store, timeout=100, secret=SECRET), tween=True)
    app.get("/login")
    for _ in range(3):  # 180 s in all, each read 60 s after the one before: alive only if each restarts it
        clock.advance(60)
        assert app.get("/late-read").text == "working an"
    clock.advance(60)
    assert app.get("/show").text == "[('user', 'ana')]"


def test_a_new_session_first_made_in_the_body_is_not_stored_and_is_warned_about_once(caplog):
    app, factory = included()
    with caplog.at_level(logging.DEBUG, logger="lembro_wsgi"):
        for _ in range(3):
            response = webtest.TestApp(app.app).get("/late-count")
            assert response.text == "working 01" and "Set-Cookie" not in response.headers
    assert len(factory.store) == 0  # nobody could ever come back for it
    warnings = lembro_warnings(caplog)
    assert len(warnings) == 1 and "first used while a streamed body was sent" in warnings[0]
    assert "cannot reach the client" in warnings[0] and "Use request.session in the view" in warnings[0]


def test_a_regenerate_in_the_body_keeps_the_client_signed_in_as_it_was(caplog):
    app, factory = included()
    app.get("/login")
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        response = app.get("/late-regenerate")
    assert "Set-Cookie" not in response.headers
    assert app.get("/show").text == "[('user', 'ana')]"  # the old id still holds the session, unpromoted
    assert len(factory.store) == 1
    assert len(lembro_warnings(caplog)) == 1


def test_a_logout_in_the_body_is_final():
    app, factory = included()
    app.get("/login")
    app.get("/late-logout")
    assert len(factory.store) == 0
    assert app.get("/show").text == "[]"


def test_without_the_tween_lembro_warns_once_that_nothing_is_saved(caplog):
    factory = LembroSessionFactory(max_size="64K", secret=SECRET)
    app = in_code(factory, tween=False)
    app.get("/login")
    with caplog.at_level(logging.DEBUG, logger="lembro_wsgi"):
        for _ in range(3):
            assert app.get("/late-count").text == "working 01"  # not saved: each request starts from none
    warnings = lembro_warnings(caplog)
    assert len(warnings) == 1 and "first used after Pyramid had answered" in warnings[0]
    assert "config.include('lembro_wsgi.pyramid')" in warnings[0]


@pytest.mark.parametrize("tween", [False, True])
def test_sessions_used_in_the_view_are_not_warned_about(tween, caplog):
    app = in_code(LembroSessionFactory(max_size="64K", secret=SECRET), tween=tween)
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        app.get("/login")
        assert app.get("/show").text == "[('user', 'ana')]"
    assert lembro_warnings(caplog) == []


def test_the_tween_leaves_list_bodies_and_their_length_as_they_are():
    app, _ = included()
    response = app.get("/login")
    assert response.headers["Content-Length"] == str(len(response.body)) and "Set-Cookie" in response.headers
