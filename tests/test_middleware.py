"""LembroMiddleware through WebTest: cookies, fixation, signing, laziness, WSGI correctness."""

import logging
import types

import pytest
import webtest
from webob.cookies import make_cookie

from lembro_wsgi import LembroMiddleware, LembroStore, Session
from lembro_wsgi.cookie import SessionCookie, new_session_id
from tests.wsgi_apps import ClosingBody, closing_app, session_app


class CountingStore(LembroStore):
    """A real LembroStore that also records every public call made on it (its own calls from inside aside)."""

    def __init__(self, **options):
        super().__init__(**options)
        self.calls = []

    def __getattribute__(self, name):
        value = super().__getattribute__(name)
        if not name.startswith("_") and isinstance(value, types.MethodType):
            object.__getattribute__(self, "calls").append(name)
        return value

    def __contains__(self, sid):  # implicit lookups skip __getattribute__
        self.calls.append("__contains__")
        return super().__contains__(sid)

    def __len__(self):
        self.calls.append("__len__")
        return super().__len__()


@pytest.fixture
def store(clock):
    store = CountingStore(interval=None, clock=clock, timeout=1800)
    yield store
    store.close()


@pytest.fixture
def app(store):
    return webtest.TestApp(LembroMiddleware(session_app, store=store))


def reply(response):
    sid, n, user, items = response.text.split()
    return sid, int(n), user, int(items)


def cookie_value(response, name="lembro.sid"):
    header = response.headers["Set-Cookie"]
    assert header.startswith(f"{name}=")
    return header.split(";")[0].split("=", 1)[1]


def test_safe_cookie_defaults_and_strong_ids(app):
    response = app.get("/inc")
    header = response.headers["Set-Cookie"]
    parts = [p.strip() for p in header.split(";")]
    assert "HttpOnly" in parts and "SameSite=Lax" in parts and "Path=/" in parts
    assert "secure" not in header.lower() and "max-age" not in header.lower() and "expires" not in header.lower()
    sid = cookie_value(response)
    assert len(sid) >= 22 and sid == reply(response)[0]  # 43 URL-safe chars: 256 bits
    ids = {cookie_value(webtest.TestApp(app.app).get("/inc")) for _ in range(50)}
    assert len(ids) == 50


def test_cookie_options(store):
    app = webtest.TestApp(LembroMiddleware(
        session_app, store=store, cookie_name="sid", secure=True, samesite="Strict", path="/app",
        domain="example.test", max_age=3600, httponly=False,
    ))
    header = app.get("/inc", extra_environ={"HTTP_HOST": "example.test"}).headers["Set-Cookie"]
    assert header.startswith("sid=")
    for part in ("secure", "SameSite=Strict", "Path=/app", "Domain=example.test", "Max-Age=3600"):
        assert part in header
    assert "HttpOnly" not in header




@pytest.mark.parametrize("options", [
    {},
    {"secret": "a signing secret of some length"},
    {"name": "sid", "secure": True, "samesite": "Strict", "path": "/app", "domain": "example.test"},
    {"httponly": False, "samesite": None},
    {"samesite": "None", "secure": True, "partitioned": True},  # Flask's options
    {"samesite": "None"},  # WebOb refuses SameSite=None without Secure; Flask's config may ask for it
])
def test_a_browser_session_cookie_is_formatted_as_webob_formats_it(options):
    """The attributes of a cookie without Max-Age are formatted once; every cookie still reads as WebOb writes it."""
    cookie = SessionCookie(**options)
    loose = cookie.samesite == "None" and not cookie.secure
    for _ in range(3):  # a new id each time, the same attributes
        sid = new_session_id()
        value = cookie.value(sid)
        expected = make_cookie(cookie.name, value, path=cookie.path, domain=cookie.domain, secure=cookie.secure,
                               httponly=cookie.httponly, samesite=None if loose else cookie.samesite)
        expected += "; SameSite=None" if loose else ""
        assert cookie.headers(sid) == [("Set-Cookie", expected + "; Partitioned" if cookie.partitioned else expected)]
        assert value.count(".") == ("secret" in options)


def test_the_middleware_sends_the_cookie_its_options_describe(store):
    middleware = LembroMiddleware(session_app, store=store, cookie_name="sid", secret="a signing secret of some length",
                                  secure=True, samesite="Strict", path="/app", domain="example.test")
    header = webtest.TestApp(middleware).get("/inc").headers["Set-Cookie"]
    value = header.split(";")[0].split("=", 1)[1]
    assert header == f"sid={value}; Domain=example.test; Path=/app; secure; HttpOnly; SameSite=Strict"

def test_untouched_session_costs_nothing(app, store):
    response = app.get("/nothing")
    assert "Set-Cookie" not in response.headers
    assert store.calls == [] and len(store) == 0
    app.get("/inc")
    store.calls.clear()
    response = app.get("/nothing")  # a client with a session, on a page that ignores it
    assert "Set-Cookie" not in response.headers and store.calls == []


def test_read_only_new_session_is_not_stored(app, store):
    response = app.get("/peek")
    assert "Set-Cookie" not in response.headers
    assert len(store) == 0 and "set" not in store.calls


def test_read_only_session_is_touched_not_rewritten(app, store, clock):
    sid = reply(app.get("/inc"))[0]
    before = store.stats()["bytes"]
    store.calls.clear()
    clock.advance(1500)
    response = app.get("/peek")
    assert "Set-Cookie" not in response.headers
    assert store.calls == ["get", "touch"]
    clock.advance(1500)  # 3000 s after the write, 1500 after the touch: alive
    assert reply(app.get("/peek"))[:2] == (sid, 1)
    assert store.stats()["bytes"] == before
    clock.advance(1800)
    assert reply(app.get("/peek"))[0] != sid  # idle too long: a fresh session


def test_rolling_persistent_cookie(store):
    app = webtest.TestApp(LembroMiddleware(session_app, store=store, max_age=600))
    sid = cookie_value(app.get("/inc"))
    response = app.get("/peek")
    assert cookie_value(response) == sid and "Max-Age=600" in response.headers["Set-Cookie"]
    assert "Set-Cookie" not in app.get("/nothing").headers


def test_new_created_and_accessed(app):
    new, _created, accessed = app.get("/meta").text.split()
    assert (new, accessed) == ("True", "None")
    app.get("/inc")
    new, created2, accessed = app.get("/meta").text.split()
    assert new == "False" and float(created2) <= float(accessed)
    app.get("/inc")
    assert app.get("/meta").text.split()[1] == created2  # created never moves


def test_explicit_save_survives_a_crash_later_in_the_request(app, store):
    sid = reply(app.get("/inc"))[0]
    with pytest.raises(RuntimeError):
        app.get("/save-then-crash")
    assert store.get((sid, "session"))["data"] == {"n": 1, "saved": True}


def test_one_client_never_sees_another_clients_data(app, store):
    victim_sid = reply(app.get("/login?user=victim"))[0]
    attacker = webtest.TestApp(app.app)
    attacker.set_cookie("lembro.sid", victim_sid[:-1] + ("B" if victim_sid[-1] != "B" else "C"))
    assert reply(attacker.get("/peek"))[2] == "-"


def test_expired_id_gets_a_fresh_session(app, clock):
    old = reply(app.get("/inc"))[0]
    clock.advance(1800)
    response = app.get("/inc")
    assert cookie_value(response) != old and reply(response)[1] == 1


def test_signed_cookies(store):
    secret = "correct horse battery staple"
    app = webtest.TestApp(LembroMiddleware(session_app, store=store, secret=secret))
    response = app.get("/inc")
    value, sid = cookie_value(response), reply(response)[0]
    assert value != sid
    assert reply(app.get("/inc"))[1] == 2
    tampered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
    forged = [tampered, sid, value[:-1], value + "A"]
    other = LembroMiddleware(session_app, store=store, secret="another secret of length").sessions.cookie
    forged.append(other.value(sid))  # signed with another secret
    for bad in forged:
        client = webtest.TestApp(app.app)
        client.set_cookie("lembro.sid", bad)
        response = client.get("/inc")
        assert reply(response)[1] == 1 and reply(response)[0] != sid


def test_a_refused_secret_is_not_echoed():
    with pytest.raises(ValueError) as info:
        LembroMiddleware(session_app, secret="hunter2")
    assert "secret" in str(info.value) and "hunter2" not in str(info.value)
    with pytest.raises(ValueError, match="secret"):
        LembroMiddleware(session_app, secret=["long enough secret here", "short"])


def test_invalidate_then_write_sends_new_id(app, store):
    old = reply(app.get("/inc"))[0]
    response = app.get("/logout-and-write")
    new = cookie_value(response)
    assert new != old and (new, "session") in store and (old, "session") not in store


def test_changed_marks_nested_mutation(app):
    app.get("/inc")
    app.get("/nested")  # first call adds the key: a top-level write
    app.get("/nested")  # in-place append only: not saved
    assert reply(app.get("/peek"))[3] == 1
    app.get("/nested?mark=1")
    assert reply(app.get("/peek"))[3] == 2


def test_write_callable_and_generator_bodies(app, store):
    response = app.get("/write")
    assert response.text == "written 1" and "Set-Cookie" in response.headers
    response = app.get("/gen")
    assert response.text == "first 2"
    sid = reply(app.get("/peek"))[0]
    assert store.get((sid, "session"))["data"]["late"] == 1  # saved after the body finished
    app.get("/gen")
    assert store.get((sid, "session"))["data"]["late"] == 2


def test_late_change_to_a_known_session_is_saved(app, store):
    sid = reply(app.get("/inc"))[0]
    response = app.get("/late")
    assert "Set-Cookie" not in response.headers
    assert store.get((sid, "session"))["data"] == {"n": 1, "late": True}


def test_late_change_to_a_new_session_is_dropped_with_a_warning(app, store, caplog):
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        response = app.get("/late")  # no cookie could go out for it: storing it would only orphan it
    assert "Set-Cookie" not in response.headers
    assert len(store) == 0
    assert any("dropped" in r.getMessage() for r in caplog.records)


def test_status_headers_body_and_close_pass_through(store):
    app = webtest.TestApp(LembroMiddleware(closing_app, store=store))
    before = ClosingBody.closed
    response = app.get("/", status=201)
    assert response.body == b"ab"
    assert response.headers["X-Custom"] == "kept" and response.headers["Content-Type"] == "text/plain"
    assert ClosingBody.closed == before + 1


def test_list_bodies_are_handed_on_as_they_are(store):
    body = [b"exactly this list"]

    def list_app(environ, start_response):
        environ["lembro.session"]["n"] = 1
        start_response("200 OK", [])
        return body

    middleware = LembroMiddleware(list_app, store=store)
    assert middleware({"PATH_INFO": "/", "REQUEST_METHOD": "GET"}, lambda *args: None) is body
    assert len(store) == 1


def test_the_servers_file_wrapper_reaches_it_unwrapped_on_a_real_server(store, tmp_path):
    """waitress sends a body of its own wsgi.file_wrapper type from the file; wrapped, it would iterate it."""
    import urllib.request

    from waitress.buffers import ReadOnlyFileBasedBuffer

    from tests.servers import serve

    path = tmp_path / "download.bin"
    path.write_bytes(b"0123456789" * 1000)
    sent = []

    def download(environ, start_response):
        environ["lembro.session"]["downloads"] = environ["lembro.session"].get("downloads", 0) + 1
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", "10000")])
        return environ["wsgi.file_wrapper"](open(path, "rb"), 4096)

    middleware = LembroMiddleware(download, store=store)

    def spy(environ, start_response):
        body = middleware(environ, start_response)
        sent.append(type(body))
        return body

    with serve(spy) as base:
        with urllib.request.urlopen(f"{base}/", timeout=5) as response:
            assert response.read() == path.read_bytes()
            cookie = response.headers["Set-Cookie"].split(";")[0]
        request = urllib.request.Request(f"{base}/", headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
    assert sent == [ReadOnlyFileBasedBuffer, ReadOnlyFileBasedBuffer]
    assert [store.get(sid)["data"] for sid in store.ids()] == [{"downloads": 2}]


def test_exc_info_is_passed_on(store):
    seen = []

    def server_start_response(status, headers, exc_info=None):
        seen.append((status, exc_info))
        return lambda data: None

    middleware = LembroMiddleware(session_app, store=store)
    body = middleware({"PATH_INFO": "/error", "REQUEST_METHOD": "GET"}, server_start_response)
    assert b"".join(body) == b"error page"
    status, exc_info = seen[0]
    assert status.startswith("500") and exc_info[0] is RuntimeError


def test_too_large_session_keeps_old_data_and_still_answers(store, caplog):
    small = LembroStore(interval=None, max_size="8K")
    app = webtest.TestApp(LembroMiddleware(session_app, store=small))
    sid = reply(app.get("/inc"))[0]
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        response = app.get("/big?size=20000")
    assert response.status_int == 200
    assert small.get((sid, "session"))["data"] == {"n": 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all(sid not in m and sid[:6] in m for m in warnings)
    assert reply(app.get("/inc"))[:2] == (sid, 2)
    small.close()


def test_session_cookie_among_other_cookies(app):
    sid = reply(app.get("/inc"))[0]
    value = app.cookies["lembro.sid"]
    app.cookiejar.clear()
    header = f'theme=dark; lembro.sidx=zzz; lembro.sid={value}; quoted="a b"; empty='
    assert reply(app.get("/inc", headers={"Cookie": header}))[:2] == (sid, 2)


MALFORMED = [
    "lembro.sid=",
    "lembro.sid",
    "lembro.sid=short",
    "lembro.sid=" + "A" * 44,
    "lembro.sid=" + "A" * 5000,
    'lembro.sid="' + "A" * 43 + '"',
    "lembro.sid=" + "Ä" * 43,
    "lembro.sid=\xff\xfe\xfd",
    "lembro.sid=" + "A" * 42 + "!",
    "lembro.sid=" + "A" * 43 + "; lembro.sid=" + "B" * 43,
    "=;;;=;",
    ";;;;",
    "lembro.sid=a=b=c",
    "lembro.sid=%00%00%00",
    "other=1; lembro.sid=\\x00; third=\"unterminated",
    "lembro.sid=../../etc/passwd",
    "lembro.sid=" + "A" * 43 + "\x00",
    "Lembro.SID=" + "A" * 43,
    "lembro.sid=<script>alert(1)</script>",
    "a" * 20000,
]


@pytest.mark.parametrize("header", MALFORMED)
@pytest.mark.parametrize("signed", [False, True])
def test_malformed_cookies_give_a_fresh_session(store, header, signed):
    secret = "a secret of decent length" if signed else None
    app = webtest.TestApp(LembroMiddleware(session_app, store=store, secret=secret))
    response = app.get("/inc", headers={"Cookie": header})
    assert response.status_int == 200
    sid, n, _, _ = reply(response)
    assert n == 1 and "Set-Cookie" in response.headers
    assert store.ids() == [(sid, "session")]  # nothing from the header was stored
    assert reply(app.get("/inc"))[:2] == (sid, 2)  # and the fresh session works


@pytest.mark.parametrize(
    "option, value",
    [
        ("cookie_name", "bad name"),
        ("cookie_name", ""),
        ("cookie_name", "$sid"),  # cookie parsers skip $-names (RFC 2109 attributes)
        ("secret", "short"),
        ("secret", 12345678901234567),
        ("secure", "maybe"),
        ("httponly", "sometimes"),
        ("samesite", "Loose"),
        ("path", "relative"),
        ("domain", "a;b"),
        ("max_age", -1),
        ("max_age", "soon"),
        ("environ_key", ""),
        ("store", "memory"),
        ("type", "no-such-backend"),
        ("timeout", 0),
        ("max_size", "huge"),
        ("interval", "often"),
        ("max_sessions", 0),
        ("data_dir", "/tmp"),
    ],
)
def test_bad_options_fail_at_construction_naming_the_option(option, value):
    with pytest.raises(ValueError) as info:
        LembroMiddleware(session_app, **{option: value})
    assert option in str(info.value)


def test_samesite_none_needs_secure():
    with pytest.raises(ValueError, match="samesite"):
        LembroMiddleware(session_app, samesite="None")
    assert LembroMiddleware(session_app, samesite="None", secure=True).sessions.cookie.samesite == "None"


def test_a_session_class_overriding_getitem_is_honoured_by_get():
    from lembro_wsgi import SessionFactory

    class Hiding(Session):
        def __getitem__(self, key):
            if key.startswith("_"):
                raise KeyError(key)
            return super().__getitem__(key)

    class HidingMixin:
        def __getitem__(self, key):
            if key.startswith("_"):
                raise KeyError(key)
            return super().__getitem__(key)

    class Mixed(HidingMixin, Session):
        pass

    for cls in (Hiding, Mixed):  # its own __getitem__, or a mixin's
        session = SessionFactory(session_class=cls, interval=None).open({})
        session["_private"], session["user"] = "hidden", "ana"
        assert session.get("_private", "default") == "default"
        assert session.get("user") == "ana"


def test_a_login_keeps_the_session_under_a_key_prefix():
    """regenerate() moves the session to its new id under the same key_prefix (it went to the bare id: the
    next request found nothing, and the user was signed out by signing in)."""
    store = LembroStore(interval=None)
    app = webtest.TestApp(LembroMiddleware(session_app, store=store, key_prefix="app:"))
    app.get("/inc")
    app.get("/login")
    assert app.get("/inc").text.split()[1:3] == ["2", "ana"]
    assert all(sid[0].startswith("app:") for sid in store.ids())
