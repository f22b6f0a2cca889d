"""Flask: flask.session through LembroSessionInterface, with Flask's test client and Flask's own settings."""

import datetime
import email.utils
import threading
import time
import types

import flask
import pytest

import lembro_wsgi.flask
from lembro_wsgi import LembroStore
from lembro_wsgi.flask import LembroSession, LembroSessionInterface
from tests.conftest import GATE, FakeClock


def make_app(interface=None, **config):
    app = flask.Flask(__name__)
    app.secret_key = "a flask secret key"
    app.config.update(config)
    app.session_interface = interface or LembroSessionInterface(interval=None)

    @app.route("/inc")
    def inc():
        flask.session["n"] = flask.session.get("n", 0) + 1
        return str(flask.session["n"])

    @app.route("/")
    def read():
        return f"{flask.session.get('n', 0)} {flask.session.get('user', '-')}"

    @app.route("/nothing")
    def nothing():
        return "untouched"

    @app.route("/login")
    def login():
        flask.session.regenerate()
        flask.session["user"] = flask.request.args.get("user", "ana")
        return "in"

    @app.route("/logout")
    def logout():
        flask.session.clear()
        return "out"

    @app.route("/permanent")
    def permanent():
        flask.session.permanent = True
        flask.session["n"] = flask.session.get("n", 0)
        return "p"

    @app.route("/nested")
    def nested():
        flask.session.setdefault("items", [])
        flask.session["items"].append(1)
        flask.session.modified = True  # Flask's idiom for a nested change
        return str(len(flask.session["items"]))

    @app.route("/big")
    def big():
        flask.session["blob"] = "x" * 5_000_000
        return "big"

    return app


def set_cookies(response):
    return response.headers.getlist("Set-Cookie")


def raw(app, path, cookie_header):
    """A request with exactly this Cookie header (Werkzeug's cookie-keeping client would replace it)."""
    return app.test_client(use_cookies=False).get(path, headers={"Cookie": cookie_header})


def while_slow(app, path, cookie, gate, meanwhile):
    """Run ``path`` with ``cookie`` until it has loaded its session (``gate``: loaded and proceed events),
    call ``meanwhile()``, then let it finish; returns its response."""
    loaded, proceed = gate
    result = {}
    slow = threading.Thread(target=lambda: result.update(response=raw(app, path, f"session={cookie}")))
    slow.start()
    assert loaded.wait(GATE)
    meanwhile()
    proceed.set()
    slow.join(GATE)
    assert not slow.is_alive()
    return result["response"]


def session_cookie(client, name="session"):
    cookie = client.get_cookie(name)
    return None if cookie is None else cookie.value


def test_sessions_persist_server_side_and_the_cookie_carries_no_data():
    app = make_app()
    client = app.test_client()
    assert [client.get("/inc").text for _ in range(3)] == ["1", "2", "3"]
    value = session_cookie(client)
    sid, _, signature = value.partition(".")
    assert len(sid) == 43 and signature  # an id and its HMAC: nothing else
    assert app.session_interface.store.get((sid, "session"))["data"] == {"n": 3}
    other = app.test_client()
    assert other.get("/inc").text == "1" and session_cookie(other) != value  # two clients are isolated


def test_read_only_requests_send_no_cookie_and_untouched_ones_no_vary():
    app = make_app()
    client = app.test_client()
    first = client.get("/inc")
    assert first.headers["Vary"] == "Cookie" and len(set_cookies(first)) == 1
    read = client.get("/")
    assert read.text == "1 -" and set_cookies(read) == [] and read.headers["Vary"] == "Cookie"
    untouched = client.get("/nothing")
    assert set_cookies(untouched) == [] and "Vary" not in untouched.headers


def test_flask_cookie_settings_are_honoured_at_request_time():
    interface = LembroSessionInterface(interval=None)
    app = make_app(interface)
    app.config.update(  # set after the interface was built, as apps do
        SESSION_COOKIE_NAME="sid", SESSION_COOKIE_DOMAIN="example.test", SESSION_COOKIE_PATH="/app",
        SESSION_COOKIE_HTTPONLY=False, SESSION_COOKIE_SECURE=True, SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PARTITIONED=True,
    )
    header = set_cookies(app.test_client().get("/inc"))[0]
    assert header.startswith("sid=")
    for part in ("Domain=example.test", "Path=/app", "secure", "SameSite=Strict", "Partitioned"):
        assert part.lower() in header.lower(), part
    assert "httponly" not in header.lower()
    app.config["SESSION_COOKIE_SAMESITE"] = "None"  # exactly as configured, as Flask's default session does
    assert "samesite=none" in set_cookies(app.test_client().get("/inc"))[0].lower()


def test_secret_key_set_after_the_interface_and_no_key_means_flasks_null_session():
    app = make_app()
    app.testing = True  # let the view's error reach the test
    app.secret_key = None
    client = app.test_client()
    assert client.get("/").text == "0 -"  # reads as empty
    with pytest.raises(RuntimeError, match="secret key"):
        client.get("/inc")
    app.secret_key = "set later, long enough"
    assert client.get("/inc").text == "1"


def test_secret_key_fallbacks_verify_and_the_cookie_is_re_signed():
    app = make_app()
    client = app.test_client()
    client.get("/inc")
    old = session_cookie(client)
    app.config["SECRET_KEY_FALLBACKS"] = [app.secret_key]
    app.secret_key = "the new key, long enough"
    response = client.get("/")  # read-only, but verified by a fallback: re-sent signed with the new key
    assert response.text == "1 -"
    new = session_cookie(client)
    assert new != old and new.split(".")[0] == old.split(".")[0]
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert client.get("/").text == "1 -"  # the old key can go
    assert set_cookies(client.get("/")) == []


def expires_in(header):
    """Seconds from now to a Set-Cookie header's Expires date."""
    date = next(part for part in header.split("; ") if part.startswith("Expires=")).partition("=")[2]
    return email.utils.parsedate_to_datetime(date).timestamp() - time.time()


def test_permanent_sessions_get_a_lasting_cookie_and_that_server_side_lifetime():
    clock = FakeClock()
    store = LembroStore(interval=None, clock=clock)
    app = make_app(LembroSessionInterface(store=store, timeout=60),
                   PERMANENT_SESSION_LIFETIME=datetime.timedelta(hours=2))
    client = app.test_client()
    header = set_cookies(client.get("/permanent"))[0]
    assert 7190 < expires_in(header) <= 7201 and "Max-Age" not in header  # as Flask writes it: Expires only
    plain = app.test_client()
    assert "Expires" not in set_cookies(plain.get("/inc"))[0]  # a browser-session cookie
    clock.advance(600)  # past the 60 s of ordinary sessions, within the permanent 2 h
    assert plain.get("/").text == "0 -"
    assert client.get("/").text == "0 -" and session_cookie(client) is not None
    assert (session_cookie(client).split(".")[0], "session") in store


def test_a_permanent_lifetime_beyond_the_store_bound_is_capped_not_a_500():
    from lembro_wsgi.options import MAX_SECONDS

    app = make_app(PERMANENT_SESSION_LIFETIME=datetime.timedelta(days=365 * 40))  # "remember me", generously
    client = app.test_client()
    response = client.get("/permanent")
    assert response.status_code == 200 and MAX_SECONDS - 10 < expires_in(set_cookies(response)[0]) <= MAX_SECONDS + 1
    assert client.get("/inc").text == "1"


def test_refresh_each_request_re_sends_permanent_cookies_even_untouched():
    app = make_app()
    client = app.test_client()
    client.get("/permanent")
    assert len(set_cookies(client.get("/nothing"))) == 1
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    assert set_cookies(client.get("/nothing")) == []
    assert set_cookies(client.get("/")) == []


def test_flask_flags_are_writable_and_nested_changes_are_saved_with_modified():
    app = make_app()
    client = app.test_client()
    assert [client.get("/nested").text for _ in range(3)] == ["1", "2", "3"]
    with client.session_transaction() as session:
        assert session.modified is False and session["items"] == [1, 1, 1]
        session["user"] = "bo"
        assert session.modified is True
    assert client.get("/").text == "0 bo"


def test_regenerate_at_login_and_clear_at_logout():
    app = make_app()
    client = app.test_client()
    client.get("/inc")
    before = session_cookie(client)
    client.get("/login?user=bo")
    after = session_cookie(client)
    assert after.split(".")[0] != before.split(".")[0]
    assert client.get("/").text == "1 bo"
    store = app.session_interface.store
    assert (before.split(".")[0], "session") not in store
    logout = client.get("/logout")
    assert "Max-Age=0" in set_cookies(logout)[0] and len(store) == 0
    assert session_cookie(client) is None


def test_no_fixation_and_duplicated_or_forged_cookies_are_no_session():
    app = make_app()
    client = app.test_client()
    client.get("/inc")
    good = session_cookie(client)
    planted = app.test_client()
    planted.set_cookie("session", "P" * 43 + "." + good.split(".")[1])
    assert planted.get("/inc").text == "1" and session_cookie(planted).split(".")[0] != "P" * 43
    assert raw(app, "/", f"session={good}").text == "1 -"  # the header alone does load it
    for header in (f"session={good}; session={good}", f"session=x; session={good}", f'session={good}; q="; session=y"'):
        assert raw(app, "/", header).text == "0 -"


def test_a_refused_write_loses_nothing():
    app = make_app(LembroSessionInterface(interval=None, max_size="64K"))
    client = app.test_client()
    client.get("/inc")
    before = session_cookie(client)
    response = client.get("/big")
    assert response.status_code == 200
    assert session_cookie(client) == before  # Flask re-sends a modified session's cookie: the same id
    assert client.get("/").text == "1 -"


def test_cookie_options_are_refused_naming_the_flask_setting():
    for option, setting in (("cookie_name", "SESSION_COOKIE_NAME"), ("secret", "SECRET_KEY"),
                            ("samesite", "SESSION_COOKIE_SAMESITE"), ("max_age", "PERMANENT_SESSION_LIFETIME")):
        with pytest.raises(ValueError, match=f"^{option}: .*{setting}"):
            LembroSessionInterface(**{option: "x"})


def test_extension_reads_lembro_config_and_explicit_options_win():
    app = flask.Flask(__name__)
    app.config.update(LEMBRO_MAX_SIZE="256K", LEMBRO_INTERVAL=None, LEMBRO_MAX_SESSIONS="100")
    interface = LembroSession(app, max_sessions=50).interface
    assert app.session_interface is interface and app.extensions["lembro"] is interface
    assert interface.store.max_size == 256 * 1024 and interface.store.max_sessions == 50
    later = flask.Flask(__name__)
    later.config["LEMBRO_TIMEOUT"] = "600"
    assert LembroSession().init_app(later).sessions.backend.timeout == 600


@pytest.mark.parametrize("key, value", [("LEMBRO_MAX_SIZE", "12X"), ("LEMBRO_INTERVAL", "-1"),
                                        ("LEMBRO_TYPE", "no-such-backend"), ("LEMBRO_SECRET", "x" * 20)])
def test_extension_bad_config_fails_in_init_app_naming_the_key(key, value):
    app = flask.Flask(__name__)
    app.config[key] = value
    with pytest.raises(ValueError, match=f"^{key}: "):
        LembroSession(app)


def test_a_flood_of_new_clients_stays_under_the_cap_and_a_returning_client_keeps_its_session():
    app = make_app(LembroSessionInterface(interval=None, max_size="256K"))

    @app.route("/visit")
    def visit():
        flask.session["page"] = "x" * 1000
        return "ok"

    returning = app.test_client()
    returning.get("/inc")
    peak = 0
    for i in range(1500):
        app.test_client().get("/visit")
        if i % 50 == 0:
            assert returning.get("/").text == "1 -"  # the user comes back now and then
        peak = max(peak, app.session_interface.store.stats()["bytes"])
    assert peak <= 256 * 1024
    assert app.session_interface.store.stats()["evictions"] > 0
    assert returning.get("/").text == "1 -"


def test_clear_at_logout_is_final_against_a_slow_request_even_with_a_flash_after_it():
    app = make_app()
    loaded, proceed = threading.Event(), threading.Event()

    @app.route("/slow-read")
    def slow_read():
        user = flask.session.get("user")
        loaded.set()
        assert proceed.wait(GATE)
        flask.session["seen"] = True
        return str(user)

    @app.route("/logout-flash")
    def logout_flash():
        flask.session.clear()
        flask.flash("logged out")
        return "out"

    client = app.test_client()
    client.get("/login?user=ana")
    cookie = session_cookie(client)
    response = while_slow(app, "/slow-read", cookie, (loaded, proceed), lambda: client.get("/logout-flash"))
    assert response.text == "ana"
    assert client.get("/").text == "0 -"  # the user's new cookie: logged out, the flash aside
    assert raw(app, "/", f"session={cookie}").text == "0 -"  # a copied pre-logout cookie is dead


def test_modified_false_saves_nothing_as_in_flask():
    app = make_app()

    @app.route("/undo")
    def undo():
        flask.session["n"] = 99
        flask.session.modified = False
        return "undone"

    fresh = app.test_client()
    assert set_cookies(fresh.get("/undo")) == [] and len(app.session_interface.store) == 0
    client = app.test_client()
    client.get("/inc")
    assert set_cookies(client.get("/undo")) == []
    assert client.get("/").text == "1 -"


def test_copies_of_the_session_are_plain_dicts_that_never_write_back():
    import copy

    app = make_app()

    @app.route("/copies")
    def copies():
        shallow, deep = copy.copy(flask.session), copy.deepcopy(flask.session)
        shallow["n"], deep["n"] = 50, 60
        return f"{type(shallow).__name__} {type(deep).__name__} {flask.session['n']}"

    client = app.test_client()
    client.get("/inc")
    assert client.get("/copies").text == "dict dict 1"


@pytest.mark.parametrize("config, expected", [
    ({"SESSION_COOKIE_SAMESITE": "None"}, ["samesite=none"]),  # as configured, Secure or not
    ({"SESSION_COOKIE_PARTITIONED": True}, ["partitioned", "secure"]),  # browsers need both
    ({"SESSION_COOKIE_DOMAIN": "example.com:8080"}, ["domain=example.com;"]),
    ({"SESSION_COOKIE_DOMAIN": "bücher.example"}, ["domain=xn--bcher-kva.example"]),
])
def test_cookie_attributes_as_werkzeug_writes_them(config, expected):
    app = make_app(**config)
    header = set_cookies(app.test_client().get("/inc"))[0].lower()
    for part in expected:
        assert part in header, (part, header)


def test_sub_second_permanent_lifetimes_round_up(monkeypatch):
    """500 ms is kept as 1 s, never 0 (a cookie expired as it arrives). Expires is written in whole seconds, so
    the cookie's clock is frozen in mid-second: on the real clock, a request in a second's last milliseconds
    found its own Expires already past by the time the test read the time."""
    monkeypatch.setattr(lembro_wsgi.flask, "time", types.SimpleNamespace(time=lambda: 1_000_000.5))
    app = make_app(PERMANENT_SESSION_LIFETIME=datetime.timedelta(milliseconds=500))
    response = app.test_client().get("/permanent")
    header = set_cookies(response)[0]
    expires = next(part for part in header.split("; ") if part.startswith("Expires=")).partition("=")[2]
    assert response.status_code == 200 and email.utils.parsedate_to_datetime(expires).timestamp() == 1_000_001


def test_explicit_store_and_type_win_over_lembro_config():
    app = flask.Flask(__name__)
    app.config.update(LEMBRO_MAX_SIZE="4M", LEMBRO_TYPE="ext:redis", LEMBRO_URL="redis://127.0.0.1:1/0")
    with LembroStore(interval=None) as store:
        assert LembroSession(app, store=store).interface.store is store
    assert LembroSession(app, type=None).interface.store.max_size == 4 * 1024 * 1024


def test_a_change_made_while_a_streamed_body_runs_is_saved_when_it_ends():
    """README: changes made while a streamed body runs are saved when it ends (Flask's stream_with_context)."""
    app = make_app()

    @app.route("/stream")
    def stream():
        flask.session["before"] = 1

        @flask.stream_with_context
        def body():
            yield "a"
            flask.session["during"] = 2  # after save_session sent the cookie
            yield "b"

        return flask.Response(body())

    client = app.test_client()
    response = client.get("/stream")
    assert response.get_data(as_text=True) == "ab"
    response.close()  # the server is done with the body
    assert client.get("/inc").get_data(as_text=True) == "1"
    with client.session_transaction() as session:
        assert session["before"] == 1 and session["during"] == 2



def test_a_change_made_by_a_teardown_request_function_is_saved():
    """teardown_request functions run after the session is saved: their changes are saved then."""
    app = make_app()

    @app.teardown_request
    def audit(exc):
        if flask.request.path == "/inc":
            flask.session["audited"] = flask.session.get("audited", 0) + 1

    client = app.test_client()
    for _ in range(2):
        client.get("/inc").close()
    with client.session_transaction() as session:
        assert session["n"] == 2 and session["audited"] == 2
