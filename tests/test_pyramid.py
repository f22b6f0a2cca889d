"""Pyramid through config.include('lembro_wsgi.pyramid') and lembro.* settings, with WebTest."""

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.csrf import SessionCSRFStoragePolicy, check_csrf_token
from pyramid.interfaces import ISession, ISessionFactory
from pyramid.response import Response
from zope.interface.verify import verifyObject

from lembro_wsgi.pyramid import LembroSessionFactory

SETTINGS = {
    "lembro.max_size": "256K",
    "lembro.interval": "30",
    "lembro.secret": "a long enough test secret",
    "lembro.secure": "false",
    "lembro.samesite": "Strict",
    "lembro.cookie_name": "pyr",
}


def build(settings=SETTINGS):
    config = Configurator(settings=settings)
    config.include("lembro_wsgi.pyramid")
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    captured = {}

    def count(request):
        request.session["n"] = request.session.get("n", 0) + 1
        captured["session"] = request.session
        return Response(f"{request.session.id} {request.session['n']}")

    def flash(request):
        request.session.flash(request.params["msg"], queue=request.params.get("q", ""))
        request.session.flash(request.params["msg"], allow_duplicate=False)
        return Response("ok")

    def peek(request):
        return Response(",".join(request.session.peek_flash()))

    def pop(request):
        return Response(",".join(request.session.pop_flash(request.params.get("q", ""))))

    def token(request):
        return Response(request.session.get_csrf_token())

    def logout(request):
        request.session.invalidate()
        return Response("bye")

    def protected(request):
        check_csrf_token(request)
        return Response("accepted")

    for name, view, method in [("count", count, None), ("flash", flash, None), ("peek", peek, None),
                               ("pop", pop, None), ("token", token, None), ("logout", logout, None),
                               ("protected", protected, "POST")]:
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name, request_method=method)
    app = config.make_wsgi_app()
    factory = app.registry.queryUtility(ISessionFactory)
    return webtest.TestApp(app), factory, captured


def test_session_persists_with_settings_applied():
    app, factory, captured = build()
    response = app.get("/count")
    assert "pyr=" in response.headers["Set-Cookie"] and "SameSite=Strict" in response.headers["Set-Cookie"]
    sid = response.text.split()[0]
    assert app.get("/count").text == f"{sid} 2"
    assert isinstance(factory, LembroSessionFactory) and factory.store.max_size == 256 * 1024
    assert verifyObject(ISession, captured["session"])


def test_flash_queues():
    app, _, _ = build()
    app.get("/flash?msg=hello")  # default queue: hello, then the no-duplicate flash skips it
    app.get("/flash?msg=hello")  # hello again, then skipped again
    app.get("/flash?msg=world&q=errors")  # world to 'errors', and once to the default queue
    assert app.get("/peek").text == "hello,hello,world"
    assert app.get("/peek").text == "hello,hello,world"  # peeking keeps them
    assert app.get("/pop?q=errors").text == "world"
    assert app.get("/pop").text == "hello,hello,world"
    assert app.get("/pop").text == ""


def test_csrf_token_stable_then_rotated_by_invalidate():
    app, factory, _ = build()
    first = app.get("/token").text
    assert app.get("/token").text == first
    old_sid = app.get("/count").text.split()[0]
    app.get("/logout")
    assert all(key[0] != old_sid for key in factory.store.ids())
    assert app.get("/token").text != first
    new_sid = app.get("/count").text.split()[0]
    assert new_sid != old_sid


def test_check_csrf_token_rejects_a_bad_token():
    app, _, _ = build()
    token = app.get("/token").text
    assert app.post("/protected", {"csrf_token": token}).text == "accepted"
    app.post("/protected", {"csrf_token": "forged"}, status=400)
    app.post("/protected", {}, status=400)


def test_bad_settings_fail_with_the_option_named():
    for key, value in [("lembro.max_size", "lots"), ("lembro.secure", "perhaps"), ("lembro.nonsense", "1")]:
        with pytest.raises(ValueError, match=key.split(".", 1)[1]):
            build({**SETTINGS, key: value})


@pytest.mark.parametrize("spelling", ["none", "None", ""])
def test_none_in_the_ini_means_none_for_every_option_that_takes_it(spelling):
    nulls = {f"lembro.{name}": spelling for name in ("domain", "type", "max_sessions", "max_age")}
    nulls["lembro.secret"] = spelling or "none"  # an empty secret is refused: see below
    app, factory, _ = build({**SETTINGS, **nulls})
    first = app.get("/count")
    cookie = first.headers["Set-Cookie"]
    assert "Domain" not in cookie and "." not in app.cookies["pyr"]  # no Domain=none, an unsigned id
    assert factory.sessions.backend.lembro and factory.store.max_sessions is None
    assert app.get("/count").text.split()[1] == "2"  # the browser kept the cookie: the session lives


def test_an_empty_secret_setting_is_refused_not_read_as_no_signing():
    """An ini variable that was never set must not turn signing off."""
    with pytest.raises(ValueError, match="^secret: "):
        build({**SETTINGS, "lembro.secret": " "})


def test_changes_made_while_a_streamed_body_runs_are_saved():
    """README: changes are saved again when the body finishes, for the Pyramid factory as for the middleware."""
    def report(request):
        session = request.session
        session["user"] = "ana"

        def body():
            yield b"working "
            session["report"] = "done"  # Pyramid has run its finished callbacks by now
            yield b"finished"
        return Response(app_iter=body(), content_length=len(b"working finished"))

    def show(request):
        return Response(repr(sorted(request.session.items())))

    config = Configurator()
    config.set_session_factory(LembroSessionFactory(max_size="64K"))
    for name, view in (("report", report), ("show", show)):
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name)
    app = webtest.TestApp(config.make_wsgi_app())
    response = app.get("/report")
    assert response.text == "working finished" and response.headers["Content-Length"] == "16"
    assert app.get("/show").text == "[('report', 'done'), ('user', 'ana')]"


@pytest.mark.parametrize("streamed", [False, True])
def test_a_change_that_cannot_be_saved_is_warned_about_once(streamed, caplog):
    """Pyramid finishes a streamed body's session twice (finished callback, then body close): one warning."""
    def view(request):
        request.session.get("x")  # a new session, unchanged when lembro's response callback decides the cookie
        request.add_response_callback(lambda request, response: request.session.__setitem__("late", 1))
        return Response(app_iter=iter([b"ok"]) if streamed else [b"ok"])

    config = Configurator()
    config.set_session_factory(LembroSessionFactory(max_size="64K"))
    config.add_route("late", "/late")
    config.add_view(view, route_name="late")
    app = webtest.TestApp(config.make_wsgi_app())
    with caplog.at_level("WARNING", logger="lembro_wsgi"):
        response = app.get("/late")
    assert "Set-Cookie" not in response.headers
    assert [r.getMessage().endswith("the change is dropped") for r in caplog.records] == [True]


def test_multiline_secret_setting_rotates():
    old_app, _, _ = build({**SETTINGS, "lembro.secret": "the old secret, retiring"})
    sid = old_app.get("/count").text.split()[0]
    old_cookie = old_app.cookies["pyr"]
    _, rotated, _ = build({**SETTINGS, "lembro.secret": "the new secret, signing\n  the old secret, retiring\n"})
    assert rotated.sessions.cookie.read({"HTTP_COOKIE": f"pyr={old_cookie}"}) == (sid, True)  # old signature accepted, to be re-signed
    assert rotated.sessions.cookie.value(sid) != old_cookie  # new cookies carry the new signature
    _, only_new, _ = build({**SETTINGS, "lembro.secret": "the new secret, signing"})
    assert only_new.sessions.cookie.read({"HTTP_COOKIE": f"pyr={old_cookie}"}) == (None, False)


def test_factory_in_code_and_two_apps_have_separate_stores():
    one, two = LembroSessionFactory(max_size="64K"), LembroSessionFactory(max_size="64K")
    assert one.store is not two.store
