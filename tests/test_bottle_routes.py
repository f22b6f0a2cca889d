"""Bottle routes the plugin must not break: generator routes ending in redirect()/abort(), and several
LembroPlugins on one app (issue 20, items 7 and 8). Through real Bottle with WebTest, and waitress."""

import urllib.error

import bottle
import pytest
import webtest

from lembro_wsgi.bottle import LembroPlugin
from tests.servers import browser, serve


def cookies_named(response, name):
    """The values a response sets for cookie ``name``."""
    return [v.split(";")[0].split("=", 1)[1] for k, v in response.headerlist
            if k == "Set-Cookie" and v.startswith(name + "=")]


def raise_response(kind):
    """What the route ends with: Bottle's redirect() or abort()."""
    if kind == "redirect":
        bottle.redirect("/whoami")
    bottle.abort(403, "no")


STATUS = {"redirect": 302, "abort": 403}


def generator_app(plugin):
    """Generator routes that raise redirect()/abort() before their first chunk, after empty chunks
    (Bottle still sends the raised response then), or yield an HTTPResponse as their first chunk."""
    app = bottle.Bottle()
    app.install(plugin)

    @app.route("/before/<kind>")
    def before(kind, session):
        session["user"] = f"ana {kind}"
        raise_response(kind)
        yield "never sent"

    @app.route("/after-empty/<kind>")
    def after_empty(kind, session):
        yield ""
        session["user"] = f"bo {kind}"
        yield b""
        raise_response(kind)

    @app.route("/login")
    def login(session):
        yield ""
        session.regenerate()
        session["user"] = "cy"
        bottle.redirect("/whoami")

    @app.route("/yielded")
    def yielded(session):
        session["user"] = "di"
        yield bottle.HTTPResponse("created", status=201, headers={"X-Own": "yes"})

    @app.route("/start")
    def start(session):
        session["user"] = "plain"
        return "started"

    @app.route("/whoami")
    def whoami(session):
        return session.get("user", "nobody")

    return app


@pytest.mark.parametrize("kind", ["redirect", "abort"])
@pytest.mark.parametrize("where", ["before", "after-empty"])
def test_generator_routes_ending_in_redirect_or_abort_keep_the_change(where, kind):
    """The change is saved and the cookie goes onto the 302/403 Bottle actually sends."""
    plugin = LembroPlugin(interval=None)
    client = webtest.TestApp(generator_app(plugin))
    response = client.get(f"/{where}/{kind}", status=STATUS[kind])
    assert len(cookies_named(response, "lembro.sid")) == 1
    assert "never sent" not in response.text
    name = "ana" if where == "before" else "bo"
    assert client.get("/whoami").text == f"{name} {kind}"
    assert len(plugin.store) == 1


def test_a_generator_login_that_redirects_moves_the_session_to_a_new_id():
    """regenerate() then redirect() in a generator route: new cookie, data kept, old id gone."""
    plugin = LembroPlugin(interval=None)
    client = webtest.TestApp(generator_app(plugin))
    client.get("/start")
    old = client.cookies["lembro.sid"]
    response = client.get("/login", status=302)
    assert cookies_named(response, "lembro.sid") == [client.cookies["lembro.sid"]] != [old]
    assert response.follow().text == "cy"
    assert [key[0] for key in plugin.store.ids()] != [old] and len(plugin.store) == 1


def test_a_generator_route_yielding_its_own_response_keeps_the_cookie():
    """An HTTPResponse yielded as the first chunk is the response Bottle sends: the cookie goes onto it."""
    client = webtest.TestApp(generator_app(LembroPlugin(interval=None)))
    response = client.get("/yielded", status=201)
    assert response.headers["X-Own"] == "yes" and len(cookies_named(response, "lembro.sid")) == 1
    assert client.get("/whoami").text == "di"


def test_a_generator_abort_answered_by_an_error_handler_keeps_the_cookie():
    """abort() in a generator route with the app's own 403 page: that page carries the cookie."""
    app = generator_app(LembroPlugin(interval=None))
    app.error(403)(lambda error: f"custom {error.status_code}")
    client = webtest.TestApp(app)
    response = client.get("/before/abort", status=403)
    assert response.text == "custom 403" and len(cookies_named(response, "lembro.sid")) == 1
    assert client.get("/whoami").text == "ana abort"


def test_generator_redirect_and_abort_on_a_real_server():
    """Through waitress and a cookie-keeping client: the 302 is followed with the new session, the 403's
    cookie is kept."""
    with serve(generator_app(LembroPlugin(interval=None))) as base:
        client = browser()
        with client.open(base + "/before/redirect", timeout=10) as response:
            assert response.url.endswith("/whoami") and response.read() == b"ana redirect"
        with pytest.raises(urllib.error.HTTPError) as error:
            client.open(base + "/after-empty/abort", timeout=10)
        assert error.value.code == 403
        error.value.close()
        with client.open(base + "/whoami", timeout=10) as response:
            assert response.read() == b"bo abort"


def two_plugin_app():
    """One app, two plugins: ``session`` in cookie lembro.sid, ``admin`` in admin.sid with its own options."""
    app = bottle.Bottle()
    user = app.install(LembroPlugin(interval=None))
    admin = app.install(LembroPlugin(keyword="admin", cookie_name="admin.sid", interval=None, max_sessions=10))

    @app.route("/user")
    def user_count(session):
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    @app.route("/admin")
    def admin_count(admin):
        admin["n"] = admin.get("n", 0) + 10
        return str(admin["n"])

    @app.route("/both")
    def both(session, admin):
        session["both"] = admin["both"] = True
        yield ""
        bottle.redirect("/whoami")

    @app.route("/whoami")
    def whoami(session, admin):
        return f"{session.get('n')} {admin.get('n')} {session.get('both')} {admin.get('both')}"

    return app, user, admin


def test_two_plugins_with_different_keywords_both_work_on_one_app():
    """Each route gets the sessions it asks for, each in its own cookie and store."""
    app, user, admin = two_plugin_app()
    client = webtest.TestApp(app)
    assert [client.get("/user").text for _ in range(2)] == ["1", "2"]
    assert [client.get("/admin").text for _ in range(2)] == ["10", "20"]
    response = client.get("/both", status=302)
    assert cookies_named(response, "lembro.sid") == [] and cookies_named(response, "admin.sid") == []  # known ids
    assert response.follow().text == "2 20 True True"
    assert set(client.cookies) == {"lembro.sid", "admin.sid"}
    assert len(user.store) == 1 and len(admin.store) == 1 and admin.store.max_sessions == 10
    fresh = webtest.TestApp(app).get("/both", status=302)
    assert len(cookies_named(fresh, "lembro.sid")) == 1 and len(cookies_named(fresh, "admin.sid")) == 1


def test_each_plugin_is_named_after_its_keyword():
    """skip= and uninstall() pick one plugin by name; the default keeps the name "lembro"."""
    app, user, admin = two_plugin_app()
    assert (user.name, admin.name) == ("lembro", "lembro.admin")

    @app.route("/admin-only", skip=["lembro"])
    def admin_only(admin):
        admin["seen"] = True
        return "ok"

    client = webtest.TestApp(app)
    response = client.get("/admin-only")
    assert cookies_named(response, "lembro.sid") == [] and len(cookies_named(response, "admin.sid")) == 1
    assert app.uninstall("lembro.admin") == [admin]
    assert client.get("/user").text == "1"


def test_a_route_level_plugin_with_another_keyword_works_beside_the_app_one():
    """A plugin given to one route with apply= joins the app's plugin instead of replacing it."""
    app = bottle.Bottle()
    app.install(LembroPlugin(interval=None))

    @app.route("/cart", apply=[LembroPlugin(keyword="cart", cookie_name="cart.sid", interval=None)])
    def cart(session, cart):
        cart["items"] = cart.get("items", 0) + 1
        session["n"] = session.get("n", 0) + 1
        return f"{session['n']} {cart['items']}"

    client = webtest.TestApp(app)
    assert [client.get("/cart").text for _ in range(2)] == ["1 1", "2 2"]


def test_a_second_plugin_with_the_same_cookie_name_is_refused_naming_it():
    """Two plugins writing one cookie would replace each other's session on every request."""
    app = bottle.Bottle()
    first = app.install(LembroPlugin())
    with pytest.raises(bottle.PluginError, match="'admin'.*'session'.*cookie 'lembro.sid'.*cookie_name="):
        app.install(LembroPlugin(keyword="admin"))
    assert [plugin for plugin in app.plugins if isinstance(plugin, LembroPlugin)] == [first]


def test_a_route_level_plugin_reusing_the_apps_cookie_is_refused():
    """apply= plugins never go through setup(): the check runs as the route is first built."""
    app = bottle.Bottle()
    app.catchall = False
    app.install(LembroPlugin(interval=None))

    @app.route("/both", apply=[LembroPlugin(keyword="admin", interval=None)])
    def both(session, admin):
        return "never"

    with pytest.raises(bottle.PluginError, match="'admin'.*cookie 'lembro.sid'.*cookie_name="):
        webtest.TestApp(app).get("/both")


def test_a_mounted_sub_app_reusing_the_parents_cookie_is_refused():
    """The child's plugin would start its own session under the parent's cookie and sign the user out."""
    parent, child = bottle.Bottle(), bottle.Bottle()
    parent.catchall = child.catchall = False
    parent.install(LembroPlugin(interval=None))
    child.install(LembroPlugin(interval=None))

    @child.route("/visit")
    def visit(session):
        return "never"

    parent.mount("/sub/", child)
    with pytest.raises(bottle.PluginError, match="mounted on.*cookie 'lembro.sid'"):
        webtest.TestApp(parent).get("/sub/visit")


def test_a_mounted_sub_app_with_its_own_cookie_keeps_both_sessions():
    parent, child = bottle.Bottle(), bottle.Bottle()
    parent.install(LembroPlugin(interval=None))
    child.install(LembroPlugin(interval=None, cookie_name="sub.sid"))

    @parent.route("/login")
    def login(session):
        session["user"] = "alice"
        return "in"

    @parent.route("/me")
    def me(session):
        return str(session.get("user"))

    @child.route("/visit")
    def visit(session):
        session["visits"] = session.get("visits", 0) + 1
        return str(session["visits"])

    parent.mount("/sub/", child)
    client = webtest.TestApp(parent)
    client.get("/login")
    assert [client.get("/sub/visit").text for _ in range(2)] == ["1", "2"]
    assert client.get("/me").text == "alice"
