"""Apps sharing one backend (one Redis database, one file directory) never adopt each other's sessions:
keys start with ``key_prefix``, by default the cookie name and a colon. The same name and prefix share
sessions by design (one sign-in across the apps of one domain)."""

import flask
import pytest
import redis
from webob import Request

from lembro_wsgi import LembroMiddleware, LembroStore
from lembro_wsgi.flask import LembroSession, LembroSessionInterface
from lembro_wsgi.pyramid import settings_options
from tests.wsgi_apps import session_app


@pytest.fixture(params=["redis", "file"])
def shared(request, tmp_path):
    """One backend that several apps are configured with."""
    if request.param == "file":
        return {"type": "file", "data_dir": str(tmp_path / "sessions")}
    return {"type": "ext:redis", "url": request.getfixturevalue("redis_url")}


def visit(app, path, name, value=None):
    """GET ``path`` with cookie ``name=value``; returns (user the app saw, the cookie value it set)."""
    request = Request.blank(path)
    if value is not None:
        request.environ["HTTP_COOKIE"] = f"{name}={value}"
    response = request.get_response(app)
    assert response.status_int == 200
    sent = [v.split(";")[0].split("=", 1)[1] for k, v in response.headerlist if k == "Set-Cookie"]
    return response.text.split()[2], (sent[0] if sent else None)


def test_apps_with_different_cookie_names_never_adopt_each_others_sessions(shared):
    app_a = LembroMiddleware(session_app, cookie_name="a.sid", **shared)
    app_b = LembroMiddleware(session_app, cookie_name="b.sid", **shared)
    _, cookie = visit(app_a, "/login?user=7", "a.sid")
    assert visit(app_a, "/", "a.sid", cookie)[0] == "7"
    user, fresh = visit(app_b, "/inc", "b.sid", cookie)  # A's id, replayed as B's cookie
    assert user == "-" and fresh != cookie
    assert visit(app_a, "/", "a.sid", cookie)[0] == "7"  # A's session untouched by B's request


def test_the_same_cookie_name_shares_sessions_by_design_and_key_prefix_separates_them(shared):
    first = LembroMiddleware(session_app, cookie_name="sid", **shared)
    second = LembroMiddleware(session_app, cookie_name="sid", **shared)
    separate = LembroMiddleware(session_app, cookie_name="sid", key_prefix="shop:", **shared)
    _, cookie = visit(first, "/login?user=7", "sid")
    assert visit(second, "/", "sid", cookie)[0] == "7"
    assert visit(separate, "/", "sid", cookie)[0] == "-"


def test_redis_keys_carry_the_prefix(redis_url):
    app = LembroMiddleware(session_app, type="ext:redis", url=redis_url, cookie_name="shop.sid")
    _, cookie = visit(app, "/login?user=7", "shop.sid")
    keys = [key.decode() for key in redis.Redis.from_url(redis_url).keys("*")]
    assert keys == [f"beaker_cache:shop.sid:{cookie}:session"]


def whoami_client(configure):
    """A Flask app with one secret key, ``/login`` (user 7) and ``/`` (who is signed in), set up by ``configure``."""
    app = flask.Flask(__name__)
    app.secret_key = "one secret key for both apps"
    configure(app)

    @app.route("/login")
    def login():
        flask.session["user_id"] = 7
        return "in"

    @app.route("/")
    def whoami():
        return str(flask.session.get("user_id", "-"))

    return app.test_client(use_cookies=False)


def test_two_flask_apps_sharing_a_secret_key_never_adopt_each_others_sessions(redis_url):
    def make(cookie_name):
        def configure(app):
            app.config["SESSION_COOKIE_NAME"] = cookie_name
            app.session_interface = LembroSessionInterface(type="ext:redis", url=redis_url)

        return whoami_client(configure)

    shop, blog = make("shop"), make("blog")
    cookie = shop.get("/login").headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert shop.get("/", headers={"Cookie": f"shop={cookie}"}).text == "7"
    assert blog.get("/", headers={"Cookie": f"blog={cookie}"}).text == "-"


def test_apps_handed_one_lembro_store_share_sessions_unless_each_has_a_key_prefix():
    with LembroStore(interval=None) as store:
        shop = LembroMiddleware(session_app, store=store, cookie_name="shop.sid")
        blog = LembroMiddleware(session_app, store=store, cookie_name="blog.sid")
        _, cookie = visit(shop, "/login?user=7", "shop.sid")
        assert (cookie, "session") in store  # bare ids by default: the store is usually the app's own
        assert visit(blog, "/", "blog.sid", cookie)[0] == "7"  # one store handed to both: shared
        shop = LembroMiddleware(session_app, store=store, cookie_name="shop.sid", key_prefix="shop:")
        blog = LembroMiddleware(session_app, store=store, cookie_name="blog.sid", key_prefix="blog:")
        _, cookie = visit(shop, "/login?user=8", "shop.sid")
        assert (f"shop:{cookie}", "session") in store
        assert visit(shop, "/", "shop.sid", cookie)[0] == "8"
        assert visit(blog, "/", "blog.sid", cookie)[0] == "-"


def test_the_flask_extension_takes_lembro_key_prefix_beside_a_backend_given_in_code(redis_url):
    def make():
        def configure(app):
            app.config["LEMBRO_KEY_PREFIX"] = f"app{len(apps)}:"
            LembroSession(app, type="ext:redis", url=redis_url)

        return whoami_client(configure)

    apps = []
    apps.append(make())
    apps.append(make())
    cookie = apps[0].get("/login").headers["Set-Cookie"].split(";")[0]
    assert apps[0].get("/", headers={"Cookie": cookie}).text == "7"
    assert apps[1].get("/", headers={"Cookie": cookie}).text == "-"
    keys = [key.decode() for key in redis.Redis.from_url(redis_url).keys("*")]
    assert len(keys) == 1 and keys[0].startswith("beaker_cache:app0:")


def test_a_key_prefix_that_is_not_a_str_is_refused():
    with pytest.raises(ValueError, match="key_prefix"):
        LembroMiddleware(session_app, type="file", data_dir="/tmp/unused", key_prefix=3)


def test_pyramid_settings_take_key_prefix():
    assert settings_options({"lembro.key_prefix": "shop:"})["key_prefix"] == "shop:"
    assert settings_options({"lembro.key_prefix": "none"})["key_prefix"] is None  # the default: cookie name
    assert settings_options({"lembro.key_prefix": ""})["key_prefix"] == ""  # the layout before key_prefix
