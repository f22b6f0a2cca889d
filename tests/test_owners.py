"""Who is signed in where: owner_key, owned_by, revoke and max_per_owner through every integration (lembro store).

Redis's shared index is tested in test_redis_owners.py, Django's in test_django_owners.py.
"""

import threading
import time

import pytest
import webtest
from webob import Request

from lembro_wsgi import LembroMiddleware, LembroStore
from lembro_wsgi.factory import SessionFactory
from tests.conftest import GATE, run_threads
from tests.owners_app import ids, owners_app, sign_in, slow_owners_app


@pytest.fixture
def store(make_store):
    return make_store(timeout=1800)


def build(store, **options):
    """A LembroMiddleware with owners on ``store``; its ``sessions`` is what the tests call."""
    options.setdefault("owner_key", "user")
    return LembroMiddleware(owners_app, store=store, timeout=1800, **options)


def test_owned_by_lists_an_owners_live_sessions_most_recently_used_first(store, clock):
    app = build(store)
    before = time.time()
    clients = []
    for _ in range(3):
        clients.append(sign_in(app, "ana"))
        clock.advance(5)
    sign_in(app, "bo")
    found = app.sessions.owned_by("ana")
    assert ids(found) == [sid for _, sid in reversed(clients)]
    assert ids(app.sessions.owned_by("bo")) != [] and not set(ids(app.sessions.owned_by("bo"))) & set(ids(found))
    first = found[-1]
    assert first.data == {"user": "ana"}
    assert before - 1 <= first.created <= time.time() + 1
    assert found[0].accessed - first.accessed == pytest.approx(10)  # the store's clock, on the wall clock
    clients[0][0].get("/")  # a read that refreshes the session is a use of it
    assert ids(app.sessions.owned_by("ana"))[0] == clients[0][1]


def test_owned_by_data_is_a_copy_and_reading_is_no_activity(store, clock):
    app = build(store)
    client, sid = sign_in(app, "ana")
    one_shot = store.stats()["one_shot_sessions"]
    found = app.sessions.owned_by("ana")
    found[0].data["user"] = "mallory"
    found[0].data["extra"] = 1
    assert store.stats()["one_shot_sessions"] == one_shot  # not made a returning session by being listed
    assert app.sessions.owned_by("ana")[0].data == {"user": "ana"}
    clock.advance(1700)
    assert ids(app.sessions.owned_by("ana")) == [sid]  # listing it does not restart its timer...
    clock.advance(200)
    assert app.sessions.owned_by("ana") == []  # ...so it expires 1800 s after its last use, and is not listed
    assert "user" not in client.get("/").json  # and its client starts afresh


def test_revoke_signs_out_everywhere_else(store):
    app = build(store)
    (phone, phone_sid), (laptop, _), (tablet, _) = (sign_in(app, "ana") for _ in range(3))
    bo, bo_sid = sign_in(app, "bo")
    assert app.sessions.revoke("ana", keep=phone_sid) == 2
    assert ids(app.sessions.owned_by("ana")) == [phone_sid]
    assert phone.get("/").json == {"id": phone_sid, "user": "ana"}
    for client in (laptop, tablet):
        page = client.get("/")
        assert "user" not in page.json  # signed out: a fresh session
    assert bo.get("/").json == {"id": bo_sid, "user": "bo"}
    assert app.sessions.revoke("ana") == 1 and phone.get("/").json.get("user") is None
    assert app.sessions.revoke("ana") == 0 and app.sessions.revoke("nobody") == 0 and app.sessions.revoke(None) == 0


def test_a_request_still_running_cannot_write_a_revoked_session_back(store):
    """Two-phase: the slow request loaded the session before the revoke, and writes after it."""
    sessions = build(store).sessions
    _client, sid = sign_in(LembroMiddleware(owners_app, store=store, owner_key="user"), "ana")
    environ = Request.blank("/", headers={"Cookie": f"lembro.sid={sid}"}).environ
    slow = sessions.open(environ, eager=True)
    assert slow["user"] == "ana"
    assert sessions.revoke("ana") == 1
    slow["cart"] = ["book"]
    assert sessions.close(slow) == []  # no cookie: the write was dropped
    assert sessions.owned_by("ana") == [] and len(store) == 0


def test_a_slow_request_racing_revoke_on_a_real_thread(store):
    """A request blocked between reading and writing its session while another thread revokes it."""
    loaded, proceed = threading.Event(), threading.Event()

    slow_app = slow_owners_app(loaded, proceed)

    app = LembroMiddleware(slow_app, store=store, owner_key="user")
    client, _sid = sign_in(app, "ana")
    result = {}
    thread = threading.Thread(target=lambda: result.update(response=client.get("/slow")))
    thread.start()
    assert loaded.wait(GATE)
    assert app.sessions.revoke("ana") == 1
    proceed.set()
    thread.join(GATE)
    assert "Set-Cookie" not in result["response"].headers
    assert app.sessions.owned_by("ana") == [] and len(store) == 0


def test_sign_in_moves_the_owner_and_sign_out_removes_it(store):
    app = build(store)
    client = webtest.TestApp(app)
    anonymous = client.get("/set", {"key": "cart", "value": "book"}).json["id"]
    first = client.get("/login", {"user": "ana"}).json["id"]
    assert first != anonymous and ids(app.sessions.owned_by("ana")) == [first]
    second = client.get("/login", {"user": "ana"}).json["id"]  # regenerate() again: the owner follows
    assert ids(app.sessions.owned_by("ana")) == [second]
    assert app.sessions.owned_by("ana")[0].data == {"cart": "book", "user": "ana"}
    client.get("/logout")
    assert app.sessions.owned_by("ana") == []
    assert store.stats()["owners"] == 0 and store.stats()["owned_sessions"] == 0


def test_the_owner_is_what_the_session_holds_when_saved(store):
    app = build(store)
    client, sid = sign_in(app, "ana")
    client.get("/set", {"key": "user", "value": "bo"})  # same id, another owner
    assert app.sessions.owned_by("ana") == [] and ids(app.sessions.owned_by("bo")) == [sid]
    client.get("/set", {"key": "note", "value": "kept"})
    client.get("/drop-owner")
    assert app.sessions.owned_by("bo") == [] and len(store) == 1
    assert store.stats()["owners"] == 0


def test_owners_compare_as_text(store):
    app = build(store)
    _, as_int = sign_in(app, "42", int="1")
    _, as_text = sign_in(app, "42")
    assert set(ids(app.sessions.owned_by(42))) == {as_int, as_text} == set(ids(app.sessions.owned_by("42")))
    assert app.sessions.owned_by(None) == [] and app.sessions.owned_by("nobody") == []
    with pytest.raises(ValueError, match="owner"):
        app.sessions.owned_by(4.2)


def test_an_owner_of_another_type_is_refused_and_nothing_changes(store):
    app = build(store)
    client, sid = sign_in(app, "ana")
    client.get("/set", {"key": "note", "value": "kept"})
    with pytest.raises(ValueError, match=r"owner_key: session\['user'\].*float"):
        client.get("/float-owner")
    assert client.get("/").json == {"id": sid, "user": "ana", "note": "kept"}
    assert ids(app.sessions.owned_by("ana")) == [sid]
    fresh = webtest.TestApp(app)
    with pytest.raises(ValueError, match="owner_key"):
        fresh.get("/float-owner")
    assert len(store) == 1


def test_max_per_owner_signs_out_the_least_recently_used(store, clock):
    app = build(store, max_per_owner=2)
    (first, first_sid), _ = sign_in(app, "ana"), clock.advance(1)
    (second, _second_sid), _ = sign_in(app, "ana"), clock.advance(1)
    first.get("/")  # the first device comes back: now the second is the least recently used
    clock.advance(1)
    _third, third_sid = sign_in(app, "ana")
    assert ids(app.sessions.owned_by("ana")) == [third_sid, first_sid]
    assert "user" not in second.get("/").json
    sign_in(app, "bo")  # others' sessions do not count
    assert len(app.sessions.owned_by("ana")) == 2


def test_max_per_owner_counts_live_sessions_only(store, clock):
    app = build(store, max_per_owner=2)
    sign_in(app, "ana")
    clock.advance(1000)
    _, second = sign_in(app, "ana")
    clock.advance(900)  # the first is expired (1900 s idle), the second is not
    _, third = sign_in(app, "ana")
    assert ids(app.sessions.owned_by("ana")) == [third, second]


def test_max_per_owner_holds_under_concurrent_sign_ins(store):
    app = build(store, max_per_owner=2)
    assert run_threads(lambda i: sign_in(app, "ana"), count=8) == []
    assert len(app.sessions.owned_by("ana")) == 2 and store.stats()["owned_sessions"] == 2


def test_a_flood_of_one_shot_clients_changes_nothing_for_owners(make_store):
    store = make_store(max_size="64K", timeout=1800)
    app = build(store)
    client, sid = sign_in(app, "ana")
    client.get("/")  # a returning user
    for i in range(600):
        webtest.TestApp(app).get("/set", {"key": "junk", "value": "x" * 400})
        assert store.stats()["bytes"] <= 64 * 1024
    assert ids(app.sessions.owned_by("ana")) == [sid]
    assert client.get("/").json["user"] == "ana"


def test_the_index_is_counted_within_the_cap(make_store):
    store = make_store(max_size="32K", timeout=1800)
    app = build(store)
    for i in range(300):
        sign_in(app, f"user-{i:04d}-" + "x" * 200)  # long owners: the index costs as much as the data
        stats = store.stats()
        assert stats["bytes"] <= 32 * 1024
    assert stats["owned_sessions"] == stats["sessions"] == stats["owners"]


def test_apps_sharing_a_store_each_have_their_own_owners(make_store):
    store = make_store(timeout=1800)
    shop = LembroMiddleware(owners_app, store=store, owner_key="user", key_prefix="shop:")
    blog = LembroMiddleware(owners_app, store=store, owner_key="user", key_prefix="blog:")
    bare = LembroMiddleware(owners_app, store=store, owner_key="user")
    _, shop_sid = sign_in(shop, "ana")
    _, blog_sid = sign_in(blog, "ana")
    _, bare_sid = sign_in(bare, "ana")
    assert ids(shop.sessions.owned_by("ana")) == [shop_sid]
    assert ids(blog.sessions.owned_by("ana")) == [blog_sid]
    assert ids(bare.sessions.owned_by("ana")) == [bare_sid]
    assert shop.sessions.revoke("ana") == 1 and ids(blog.sessions.owned_by("ana")) == [blog_sid]


@pytest.mark.parametrize(("options", "named"), [
    ({"owner_key": ""}, "owner_key"),
    ({"owner_key": 5}, "owner_key"),
    ({"owner_key": "user", "max_per_owner": 0}, "max_per_owner"),
    ({"owner_key": "user", "max_per_owner": True}, "max_per_owner"),
    ({"owner_key": "user", "max_per_owner": "many"}, "max_per_owner"),
    ({"max_per_owner": 3}, "max_per_owner"),
])
def test_bad_owner_options_fail_at_construction_naming_them(options, named):
    with pytest.raises(ValueError, match=f"^{named}: "):
        SessionFactory(**options)


def test_backends_that_cannot_index_refuse_owner_key_naming_those_that_can(tmp_path):
    with pytest.raises(ValueError, match=r"^owner_key: type='file' cannot .*lembro.*'ext:redis'"):
        SessionFactory(type="file", data_dir=str(tmp_path), owner_key="user")
    SessionFactory(type="file", data_dir=str(tmp_path))  # without owners it works as before


def test_owned_by_without_owner_key_is_a_clear_error():
    with pytest.raises(ValueError, match="^owner_key: not set"):
        SessionFactory().owned_by("ana")


def test_max_per_owner_from_a_string_and_the_store_stats(store):
    app = build(store, max_per_owner="1")
    sign_in(app, "ana")
    sign_in(app, "ana")
    sign_in(app, "bo")
    stats = store.stats()
    assert (stats["owners"], stats["owned_sessions"], stats["sessions"]) == (2, 2, 2)


# -- every integration exposes its factory as .sessions, and takes owner_key ------------------------------


def two_devices_then_revoke(app, login_path, whoami_path, sessions):
    """Sign in twice as 42 through ``app``, list, sign out everywhere else, and check who is signed in."""
    phone, laptop = webtest.TestApp(app), webtest.TestApp(app)
    phone_sid = phone.get(login_path).text
    laptop.get(login_path)
    assert len(sessions.owned_by("42")) == 2 and sessions.owned_by(42)[0].data["uid"] in (42, "42")
    assert sessions.revoke(42, keep=phone_sid) == 1
    assert phone.get(whoami_path).text == "42" and laptop.get(whoami_path).text == "nobody"
    return phone_sid


def test_flask_extension_and_interface(make_store):
    flask = pytest.importorskip("flask")
    from lembro_wsgi.flask import LembroSession

    app = flask.Flask(__name__)
    app.config.update(SECRET_KEY="a test secret that is long enough", LEMBRO_OWNER_KEY="uid",
                      LEMBRO_MAX_PER_OWNER="3")

    @app.route("/login")
    def login():
        flask.session.regenerate()
        flask.session["uid"] = 42
        return flask.session.id

    @app.route("/me")
    def me():
        return str(flask.session.get("uid", "nobody"))

    extension = LembroSession(app)
    assert extension.sessions is app.session_interface.sessions
    assert extension.sessions.backend.max_per_owner == 3
    two_devices_then_revoke(app, "/login", "/me", extension.sessions)


def test_flask_owners_on_a_shared_backend_are_found_before_any_request(redis_url):
    """A fresh worker lists the sessions another made: the key prefix follows the app's cookie name."""
    flask = pytest.importorskip("flask")
    pytest.importorskip("redis")
    from lembro_wsgi.flask import LembroSession

    def make():
        app = flask.Flask(__name__)
        app.config.update(SECRET_KEY="a test secret that is long enough", SESSION_COOKIE_NAME="shop")

        @app.route("/login")
        def login():
            flask.session.regenerate()
            flask.session["uid"] = "flask-fresh-worker"
            return flask.session.id

        return app, LembroSession(app, type="ext:redis", url=redis_url, owner_key="uid")

    (first, _), (_, fresh) = make(), make()
    sid = webtest.TestApp(first).get("/login").text
    try:
        assert sid in ids(fresh.sessions.owned_by("flask-fresh-worker"))
    finally:
        fresh.sessions.revoke("flask-fresh-worker")


def test_pyramid_settings(make_store):
    pytest.importorskip("pyramid")
    from pyramid.config import Configurator
    from pyramid.interfaces import ISessionFactory
    from pyramid.response import Response

    config = Configurator(settings={"lembro.owner_key": "uid", "lembro.max_per_owner": "5"})
    config.include("lembro_wsgi.pyramid")

    def login(request):
        request.session.regenerate()
        request.session["uid"] = "42"
        return Response(request.session.id)

    def me(request):
        return Response(str(request.session.get("uid", "nobody")))

    for name, view in (("login", login), ("me", me)):
        config.add_route(name, f"/{name}")
        config.add_view(view, route_name=name)
    app = config.make_wsgi_app()
    factory = config.registry.getUtility(ISessionFactory)
    assert factory.sessions.backend.max_per_owner == 5
    two_devices_then_revoke(app, "/login", "/me", factory.sessions)


def test_pyramid_settings_none_is_no_owner_key():
    from lembro_wsgi.pyramid import LembroSessionFactory, settings_options

    factory = LembroSessionFactory(**settings_options({"lembro.owner_key": "none"}))
    assert factory.sessions.backend.owner_key is None


def test_bottle_plugin():
    bottle = pytest.importorskip("bottle")
    from lembro_wsgi.bottle import LembroPlugin

    app = bottle.Bottle()
    plugin = LembroPlugin(owner_key="uid")
    app.install(plugin)

    @app.route("/login")
    def login(session):
        session.regenerate()
        session["uid"] = 42
        return session.id

    @app.route("/me")
    def me(session):
        return str(session.get("uid", "nobody"))

    two_devices_then_revoke(app, "/login", "/me", plugin.sessions)


def test_middleware_sessions_is_its_factory():
    with LembroStore(interval=None) as store:
        app = LembroMiddleware(owners_app, store=store, owner_key="user")
        assert isinstance(app.sessions, SessionFactory) and app.sessions.backend.owner_key == "user"


@pytest.mark.parametrize("backend", ["lembro", "redis"])
def test_sign_in_again_then_sign_out_everywhere_else_keeps_this_session(backend, request):
    """A password change: regenerate(), then revoke(keep=session.id) in the same request: the new id is not
    stored until the response, and the session stored under the old one is kept (then moved)."""
    holder = {}

    def app(environ, start_response):
        session = environ["lembro.session"]
        if environ["PATH_INFO"] == "/password":
            session.regenerate()
            session["changed"] = True
            holder["count"] = holder["app"].sessions.revoke(session["user"], keep=session.id)
        return owners_app(environ, start_response)

    if backend == "redis":
        redis_url = request.getfixturevalue("redis_url")
        options = {"type": "ext:redis", "url": redis_url, "key_prefix": f"regen-{time.monotonic_ns()}:"}
    else:
        options = {"store": request.getfixturevalue("store")}
    holder["app"] = LembroMiddleware(app, owner_key="user", **options)
    (laptop, laptop_sid), (phone, _), (tablet, _) = (sign_in(holder["app"], "ana") for _ in range(3))
    page = laptop.get("/password").json
    assert holder["count"] == 2
    assert page["id"] != laptop_sid and laptop.get("/").json == {"id": page["id"], "user": "ana", "changed": True}
    assert ids(holder["app"].sessions.owned_by("ana")) == [page["id"]]
    assert "user" not in phone.get("/").json and "user" not in tablet.get("/").json


def test_flask_interface_owners_from_a_shell_that_served_no_request(redis_url):
    """An admin shell (app context, no request yet) revokes what a worker made, under the app's cookie name."""
    flask = pytest.importorskip("flask")
    from lembro_wsgi.flask import LembroSessionInterface

    def make():
        app = flask.Flask(__name__)
        app.config.update(SECRET_KEY="a test secret that is long enough", SESSION_COOKIE_NAME="myapp")
        app.session_interface = LembroSessionInterface(type="ext:redis", url=redis_url, owner_key="uid")

        @app.route("/login")
        def login():
            flask.session.regenerate()
            flask.session["uid"] = "flask-shell-owner"
            return flask.session.id

        return app

    worker, shell = make(), make()
    client = webtest.TestApp(worker)
    sids = {client.get("/login").text, webtest.TestApp(worker).get("/login").text}
    with shell.app_context():
        sessions = shell.session_interface.sessions
        assert set(ids(sessions.owned_by("flask-shell-owner"))) == sids
        assert sessions.revoke("flask-shell-owner") == 2


def test_flask_owners_of_one_app_called_from_another_apps_request(redis_url):
    """App B's admin page lists and revokes app A's user: only A's sessions, whatever app is current."""
    flask = pytest.importorskip("flask")
    from lembro_wsgi.flask import LembroSessionInterface

    def make(name):
        app = flask.Flask(name)
        app.config.update(SECRET_KEY="a test secret that is long enough", SESSION_COOKIE_NAME=f"{name}_session")
        app.session_interface = LembroSessionInterface(type="ext:redis", url=redis_url, owner_key="uid")

        @app.route("/login")
        def login():
            flask.session["uid"], flask.session["app"] = "flask-two-apps", name
            return "ok"

        return app

    shop, admin = make("shop"), make("admin")
    sessions = shop.session_interface.sessions

    @admin.route("/manage")
    def manage():
        listed = [found.data["app"] for found in sessions.owned_by("flask-two-apps")]
        return {"listed": listed, "revoked": sessions.revoke("flask-two-apps")}

    webtest.TestApp(shop).get("/login")
    webtest.TestApp(admin).get("/login")
    assert webtest.TestApp(admin).get("/manage").json == {"listed": ["shop"], "revoked": 1}
    assert [found.data["app"] for found in admin.session_interface.sessions.owned_by("flask-two-apps")] == ["admin"]
    admin.session_interface.sessions.revoke("flask-two-apps")
