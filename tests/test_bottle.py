"""The Bottle plugin through WebTest: persistence, untouched routes, separate stores per app."""

import bottle
import pytest
import webtest

from lembro_wsgi import LembroMiddleware
from lembro_wsgi.bottle import LembroPlugin


def make_app(**options):
    app = bottle.Bottle()
    plugin = LembroPlugin(**options)
    app.install(plugin)

    @app.route("/count")
    def count(session):
        session["n"] = session.get("n", 0) + 1
        return f"{session['n']}"

    @app.route("/login")
    def login(session):
        session.regenerate()
        session["user"] = "ana"
        bottle.redirect("/whoami")

    @app.route("/whoami")
    def whoami(session):
        return session.get("user", "nobody")

    @app.route("/plain")
    def plain():
        return "no session here"

    @app.route("/hello/<name>")
    def hello(name, session):
        session["last"] = name
        return f"hello {name}"

    return webtest.TestApp(app), plugin


def test_session_persists_across_requests():
    app, plugin = make_app(secret="bottle test secret!")
    assert app.get("/count").text == "1"
    assert app.get("/count").text == "2"
    assert webtest.TestApp(app.app).get("/count").text == "1"
    assert plugin.store.stats()["sessions"] == 2
    assert app.get("/hello/bo").text == "hello bo"


def test_routes_without_the_keyword_are_untouched():
    app, plugin = make_app()
    response = app.get("/plain")
    assert response.text == "no session here" and "Set-Cookie" not in response.headers
    route = next(r for r in app.app.routes if r.rule == "/plain")
    assert plugin.apply(route.callback, route) is route.callback  # the plugin hands back the very callback
    assert len(plugin.store) == 0


def test_redirect_after_login_keeps_the_new_session():
    app, plugin = make_app()
    app.get("/count")
    old = app.cookies["lembro.sid"]
    response = app.get("/login")
    assert response.status_int in (302, 303)
    assert app.cookies["lembro.sid"] != old
    assert response.follow().text == "ana"
    assert all(key[0] != old for key in plugin.store.ids())


def test_two_plugin_instances_on_two_apps_have_separate_stores():
    first, one = make_app(max_size="64K")
    second, two = make_app(max_size="64K")
    first.get("/count")
    first.get("/count")
    second.get("/count")
    assert one.store is not two.store
    assert len(one.store) == 1 and len(two.store) == 1
    cookie = first.cookies["lembro.sid"]
    second.set_cookie("lembro.sid", cookie)  # a session from the other app is unknown here
    assert second.get("/count").text == "1"


def test_a_second_plugin_with_the_same_keyword_is_refused():
    app = bottle.Bottle()
    app.install(LembroPlugin())
    with pytest.raises(bottle.PluginError, match="keyword='session'"):
        app.install(LembroPlugin())
    app.install(LembroPlugin(keyword="cart", cookie_name="cart.sid"))
    with pytest.raises(bottle.PluginError, match="keyword='cart'.*handing out 'cart'"):
        app.install(LembroPlugin(keyword="cart", cookie_name="other.sid"))


def test_bad_options_name_themselves():
    with pytest.raises(ValueError, match="keyword"):
        LembroPlugin(keyword="not valid")
    with pytest.raises(ValueError, match="max_size"):
        LembroPlugin(max_size="big")


def test_plain_middleware_way():
    app = bottle.Bottle()

    @app.route("/")
    def index():
        session = bottle.request.environ["lembro.session"]
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    client = webtest.TestApp(LembroMiddleware(app))
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
