"""Every cookie setting Flask accepts behaves as with Flask's own session: the same Set-Cookie attributes,
the session read back; where lembro cannot follow, a clear error naming the setting, and routes that never
use the session still answer."""

import logging

import flask
import pytest
from flask.sessions import SecureCookieSessionInterface

from lembro_wsgi.flask import LembroSessionInterface
from tests.conftest import selectable_id


def make_app(interface, **config):
    app = flask.Flask(__name__)
    app.secret_key = "a flask secret key"
    app.config.update(config)
    app.session_interface = interface

    @app.route("/health")
    def health():
        return "ok"

    @app.route("/login")
    def login():
        flask.session["user"] = "ana"
        return "in"

    @app.route("/remember")
    def remember():
        flask.session.permanent = True
        flask.session["user"] = "ana"
        return "in"

    @app.route("/logout")
    def logout():
        flask.session.clear()
        return "out"

    @app.route("/whoami")
    def whoami():
        return flask.session.get("user", "-")

    return app


def attributes(response):
    """The Set-Cookie header as browsers take it, without its value: name and attributes (Expires without
    its date; Secure, HttpOnly and Partitioned without a value, which browsers ignore)."""
    (header,) = response.headers.getlist("Set-Cookie")
    name, _, rest = header.partition("=")
    parts = [part.partition("=")[0] if part.partition("=")[0] in _VALUELESS else part for part in rest.split("; ")[1:]]
    return name, parts


_VALUELESS = {"Expires", "Secure", "HttpOnly", "Partitioned"}


ACCEPTED = [
    {"SESSION_COOKIE_DOMAIN": "intranet_host.corp"},
    {"APPLICATION_ROOT": "app"},
    {"SESSION_COOKIE_PATH": "/shop", "APPLICATION_ROOT": "/ignored"},
    {"SESSION_COOKIE_NAME": "$session"},
    {"SESSION_COOKIE_NAME": "my session"},
    {"SESSION_COOKIE_NAME": "__Host-s", "SESSION_COOKIE_SECURE": True},
    {"SECRET_KEY_FALLBACKS": [""]},
    {"SECRET_KEY_FALLBACKS": ["", "an older key, long enough"]},
    {"SESSION_COOKIE_SAMESITE": "Lax"},
    {"SESSION_COOKIE_SAMESITE": "strict"},
    {"SESSION_COOKIE_SAMESITE": "None"},
    {"SESSION_COOKIE_SAMESITE": "None", "SESSION_COOKIE_SECURE": True},
    {"SESSION_COOKIE_HTTPONLY": False},
    {"SESSION_COOKIE_PARTITIONED": True},
    {"SESSION_COOKIE_DOMAIN": ".example.com"},
    {"SESSION_COOKIE_DOMAIN": "example.com:8080"},
    {"SESSION_COOKIE_DOMAIN": "bücher.example"},
    {"SESSION_COOKIE_DOMAIN": "localhost"},
    {"SESSION_COOKIE_SECURE": "false"},     # truthy: Flask writes Secure=false, which browsers take as Secure
    {"SESSION_COOKIE_HTTPONLY": "False"},
    {"SESSION_COOKIE_SECURE": 2},
    {"SESSION_COOKIE_HTTPONLY": None},
    {"APPLICATION_ROOT": ""},
    {"SECRET_KEY_FALLBACKS": [b"a bytes key, long enough", None]},
]


@pytest.mark.parametrize("config", ACCEPTED, ids=lambda config: selectable_id(repr(config)))
def test_a_setting_flask_accepts_gives_flasks_own_cookie_and_a_working_session(config):
    ours = make_app(LembroSessionInterface(interval=None), **config)
    flasks = make_app(SecureCookieSessionInterface(), **config)
    for app in (ours, flasks):
        assert app.test_client().get("/health").status_code == 200
    for path in ("/login", "/remember", "/logout"):
        client, reference = ours.test_client(use_cookies=False), flasks.test_client(use_cookies=False)
        login = client.get(path if path == "/remember" else "/login")
        assert attributes(login) == attributes(reference.get(path if path == "/remember" else "/login")), path
        cookie = login.headers["Set-Cookie"].split(";")[0]
        assert client.get("/whoami", headers={"Cookie": cookie}).text == "ana"  # read back as it was sent
        if path == "/logout":
            out = client.get("/logout", headers={"Cookie": cookie})
            reference_out = reference.get("/logout", headers={"Cookie": reference.get("/login")
                                                             .headers["Set-Cookie"].split(";")[0]})
            assert attributes(out) == attributes(reference_out)
            assert client.get("/whoami", headers={"Cookie": cookie}).text == "-"


@pytest.mark.parametrize("config, setting", [
    ({"SESSION_COOKIE_NAME": "a;b"}, "SESSION_COOKIE_NAME"),
    ({"SESSION_COOKIE_NAME": "a=b"}, "SESSION_COOKIE_NAME"),
    ({"SESSION_COOKIE_NAME": " padded"}, "SESSION_COOKIE_NAME"),
    ({"SESSION_COOKIE_SAMESITE": "Loose"}, "SESSION_COOKIE_SAMESITE"),
    ({"SESSION_COOKIE_DOMAIN": "example.com\r\nX-Injected: 1"}, "SESSION_COOKIE_DOMAIN"),
    ({"SESSION_COOKIE_DOMAIN": "example.com; Secure"}, "SESSION_COOKIE_DOMAIN"),
    ({"SECRET_KEY_FALLBACKS": "old key"}, "SECRET_KEY_FALLBACKS"),  # a str: each letter would be a key
    ({"SECRET_KEY_FALLBACKS": 5}, "SECRET_KEY_FALLBACKS"),
    ({"SECRET_KEY": "abc"}, "SECRET_KEY"),  # lembro's 16-character minimum for every secret, Flask's too
    ({"SECRET_KEY_FALLBACKS": ["short"]}, "SECRET_KEY_FALLBACKS"),
])
def test_a_setting_lembro_cannot_follow_fails_once_naming_it_and_other_routes_still_answer(config, setting, caplog):
    app = make_app(LembroSessionInterface(interval=None), **config)
    app.testing = False  # an error in a view is a 500, as in production
    client = app.test_client()
    with caplog.at_level(logging.ERROR, logger="lembro_wsgi"):
        for _ in range(3):
            assert client.get("/health").status_code == 200
            assert client.get("/login").status_code == 500
    logged = [r.getMessage() for r in caplog.records if r.name == "lembro_wsgi"]
    assert len(logged) == 1 and setting in logged[0], logged
    app.testing = True
    with pytest.raises(ValueError, match=setting):
        client.get("/login")


def test_one_interface_serving_apps_with_different_settings_builds_and_logs_each_once(caplog):
    interface = LembroSessionInterface(interval=None)
    good = make_app(interface, SESSION_COOKIE_NAME="good")
    bad = make_app(interface, SESSION_COOKIE_NAME="a;b")
    good_client = good.test_client()
    with caplog.at_level(logging.ERROR, logger="lembro_wsgi"):
        for _ in range(5):
            assert good_client.get("/login").status_code == 200
            assert good_client.get("/whoami").text == "ana"
            assert bad.test_client().get("/health").status_code == 200
    assert len([r for r in caplog.records if r.name == "lembro_wsgi"]) == 1
    assert len(interface.store) == 1  # one client's session, and no orphans from the unusable app


def test_jsonify_takes_the_session_as_flasks_own_session_allows():
    app = make_app(LembroSessionInterface(interval=None))

    @app.route("/json")
    def as_json():
        flask.session["user"] = "ana"
        return flask.jsonify(flask.session)

    assert app.test_client().get("/json").json == {"user": "ana"}


def test_the_extension_says_where_its_store_is_and_names_config_keys():
    from lembro_wsgi import StatsApp
    from lembro_wsgi.flask import LembroSession

    extension = LembroSession()
    with pytest.raises(AttributeError, match="init_app"):
        _ = extension.store
    app = make_app(LembroSessionInterface(interval=None))
    extension.init_app(app)
    assert extension.store is app.session_interface.store
    StatsApp(extension.store)
    broken = flask.Flask(__name__)
    broken.config.update(LEMBRO_TYPE="ext:redis")
    with pytest.raises(ValueError, match="^LEMBRO_URL: required by type='ext:redis'"):
        LembroSession(broken)
    broken.config.update(LEMBRO_TYPE=None, LEMBRO_MAXSIZE="4M")
    with pytest.raises(ValueError, match="^LEMBRO_MAXSIZE: not an option; did you mean 'LEMBRO_MAX_SIZE'"):
        LembroSession(broken)


def test_misspelt_lembro_keys_are_named_even_beside_a_backend_given_in_code(tmp_path):
    from lembro_wsgi import LembroStore
    from lembro_wsgi.flask import LembroSession

    cases = [
        ({"LEMBRO_TIMOUT": 60}, {"store": LembroStore(interval=None)}, "^LEMBRO_TIMOUT: .*'LEMBRO_TIMEOUT'"),
        ({"LEMBRO_KEYPREFIX": "x:"}, {"type": "file", "data_dir": str(tmp_path)}, "^LEMBRO_KEYPREFIX: .*'LEMBRO_KEY_PREFIX'"),
        ({"LEMBRO_MAX-SIZE": "4M"}, {}, "^LEMBRO_MAX-SIZE: .*'LEMBRO_MAX_SIZE'"),
        ({"LEMBRO_COOKIENAME": "sid"}, {}, "^LEMBRO_COOKIENAME: Flask configures the cookie: set SESSION_COOKIE_NAME"),
    ]
    for config, options, message in cases:
        app = flask.Flask(__name__)
        app.config.update(config)
        with pytest.raises(ValueError, match=message):
            LembroSession(app, **options)


def test_the_extension_serving_two_apps_does_not_pick_one_store_for_both():
    from lembro_wsgi.flask import LembroSession

    extension = LembroSession()
    first, second = flask.Flask("first"), flask.Flask("second")
    second.config["LEMBRO_MAX_SIZE"] = "8M"
    extension.init_app(first)
    assert extension.store is first.session_interface.store
    extension.init_app(second)
    with pytest.raises(AttributeError, match="serves several apps.*app.session_interface.store"):
        _ = extension.store


def test_a_short_fallback_key_is_named_by_its_place():
    app = make_app(LembroSessionInterface(interval=None), SECRET_KEY_FALLBACKS=["an old key, long enough", "short"])
    app.testing = True
    with pytest.raises(ValueError, match=r"^SECRET_KEY_FALLBACKS\[1\]: expected a str/bytes of at least 16"):
        app.test_client().get("/login")
