"""The example apps, driven in-process with WebTest so they cannot rot."""

import http.cookiejar
import importlib.util
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import webtest

from lembro_wsgi import LembroStore

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


sys.path.insert(0, str(EXAMPLES))  # the examples share example_page.py, as `python examples/x.py` finds it


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # Pyramid's Configurator looks its caller up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def no_secret_from_the_shell(monkeypatch):
    """The examples read SESSION_SECRET: one exported in the shell running the tests is not theirs to take."""
    monkeypatch.delenv("SESSION_SECRET", raising=False)


#: A request from this machine: the examples' /stats answers no one else.
LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


def log_in(app, name):
    """Fill and send an example's login form; returns the page after the redirect."""
    form = app.get("/login").form
    form["name"] = name
    return form.submit().follow()


def log_out(app):
    """Send an example's logout form (a POST with the CSRF token); returns the page it ends on."""
    response = app.get("/logout").form.submit()
    return response.follow() if response.status_int in (302, 303) else response


def test_wsgi_example_counter_login_logout_stats():
    example = load_example("wsgi_app")
    store = LembroStore(interval=None)
    app = webtest.TestApp(example.make_app(store))
    first = app.get("/")
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Visits in this session: 1" in first.text
    assert "Visits in this session: 2" in app.get("/").text
    old_cookie = app.cookies["wsgi_app.sid"]
    page = log_in(app, "Ana")
    assert app.cookies["wsgi_app.sid"] != old_cookie  # regenerated at login
    assert "Hello Ana. Visits in this session: 3" in page.text
    assert "Visits in this session: 1" in webtest.TestApp(app.app).get("/").text
    stats = app.get("/stats", extra_environ=LOCAL).text
    assert "<svg" in stats and ">2<" in stats  # StatsApp: two sessions
    app.get("/favicon.ico", status=404)
    assert "Logged out" in log_out(app).text
    assert "Hello anonymous. Visits in this session: 1" in app.get("/").text
    store.close()


def app_from_ini(name):
    """The app an example's ini file describes, loaded the way pserve loads it."""
    from pyramid.paster import get_app

    return webtest.TestApp(get_app(str(EXAMPLES / name), "main"))  # EXAMPLES is on sys.path, as PYTHONPATH=examples


def test_pyramid_example_from_its_ini_file():
    app = app_from_ini("pyramid.ini")
    assert "Visits in this session: 1" in app.get("/").text
    assert "Visits in this session: 2" in app.get("/").text
    old = app.cookies["pyramid_app.sid"]
    page = log_in(app, "Ana")
    assert "Logged in as Ana." in page.text and "Hello Ana." in page.text
    assert app.cookies["pyramid_app.sid"] != old
    app.post("/login", {"name": "Eve", "csrf_token": "forged"}, status=403)
    page = log_out(app)
    assert "Logged out" in page.text and "Hello anonymous." in page.text
    assert "<svg" in app.get("/stats", extra_environ=LOCAL).text
    app.post("/stats", extra_environ=LOCAL, status=405)  # StatsApp's own answer, not the CSRF check
    app.get("/favicon.ico", status=404)


def test_pyramid_beaker_example():
    from lembro_wsgi import get_store, reset_stores

    reset_stores()
    app = app_from_ini("pyramid_beaker.ini")
    assert "Visits in this Beaker session: 1" in app.get("/").text
    assert "Visits in this Beaker session: 2" in app.get("/").text
    assert "Visits in this Beaker session: 1" in app.get("/").form.submit().follow().text  # reset
    app.post("/reset", status=403)  # no CSRF token
    assert "<svg" in app.get("/stats", extra_environ=LOCAL).text
    app.get("/stats", extra_environ={"REMOTE_ADDR": "192.0.2.5"}, status=403)
    # the ini's lembro store, reached by its options: the reset removed the old session, so one is left
    assert get_store("60", "4M").stats()["sessions"] == 1
    reset_stores()


def test_bottle_example():
    app = webtest.TestApp(load_example("bottle_app").make_app())
    assert "Visits in this session: 1" in app.get("/").text
    old = app.cookies["bottle_app.sid"]
    page = log_in(app, "Bo")
    assert "Logged in as Bo." in page.text and "Visits in this session: 2" in page.text
    assert app.cookies["bottle_app.sid"] != old
    assert "Hello anonymous." in log_out(app).text
    assert "Set-Cookie" not in app.get("/health").headers
    assert "<svg" in app.get("/stats", extra_environ=LOCAL).text
    assert app.get("/stats?format=json", extra_environ=LOCAL).json["sessions"] >= 1
    assert app.post("/stats", extra_environ=LOCAL, status=405).headers["Allow"] == "GET, HEAD"
    app.get("/favicon.ico", status=404)


def test_flask_example_counter_login_logout_stats():
    store = LembroStore(interval=None)
    app = webtest.TestApp(load_example("flask_app").make_app(store=store))
    first = app.get("/")
    assert "Visits in this session: 1" in first.text and "SameSite=Lax" in first.headers["Set-Cookie"]
    assert "Visits in this session: 2" in app.get("/").text
    old = app.cookies["flask_app.sid"]
    page = log_in(app, "Ana")
    assert "Hello Ana. Visits in this session: 3" in page.text
    assert app.cookies["flask_app.sid"] != old
    assert "<svg" in app.get("/stats", extra_environ=LOCAL).text
    assert app.get("/stats", headers={"Accept": "application/json"}, extra_environ=LOCAL).json["sessions"] == 1
    app.get("/favicon.ico", status=404)
    assert "Logged out" in log_out(app).text
    assert "Hello anonymous. Visits in this session: 1" in app.get("/").text
    store.close()


def test_django_example_on_a_real_server():
    """settings.configure() holds for a whole process (and this one has the Django tests' project), so the Django
    example runs as the README runs it: a real server on 127.0.0.1."""
    from tests.test_examples_safety import assert_refused, start, stop  # that module imports this one

    process, output, base = start([EXAMPLES / "django_app.py", "--port", "0"])
    try:
        assert base, output
        password = re.search(r"demo user: demo, password: (\S+)", output).group(1)
        jar = http.cookiejar.CookieJar()
        client = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

        def get(path, opener=client, **headers):
            with opener.open(urllib.request.Request(base + path, headers=headers), timeout=10) as response:
                return response.read().decode(), response.headers

        def post(path, **fields):
            data = urllib.parse.urlencode(fields).encode()
            with client.open(urllib.request.Request(base + path, data=data), timeout=10) as response:
                return response.read().decode()

        def token(path):
            return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', get(path)[0]).group(1)

        text, headers = get("/")
        cookie = headers["Set-Cookie"]
        assert "Visits in this session: 1" in text and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Visits in this session: 2" in get("/")[0]
        [old] = [c.value for c in jar if c.name == "django_app.sid"]
        with pytest.raises(urllib.error.HTTPError) as refused:
            post("/login", username="demo", password=password)  # no CSRF token
        assert refused.value.code == 403
        assert "Wrong name or password." in post("/login", username="demo", password="guess",
                                                 csrfmiddlewaretoken=token("/login"))
        page = post("/login", username="demo", password=password, csrfmiddlewaretoken=token("/login"))
        assert "Hello demo. Visits in this session: 3" in page  # django.contrib.auth's login(), then the 303
        [new] = [c.value for c in jar if c.name == "django_app.sid"]
        assert new != old  # a new key at login
        assert "Hello demo. Visits in this session: 4" in get("/")[0]
        other = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        assert "Hello anonymous. Visits in this session: 1" in get("/", opener=other)[0]
        assert "<svg" in get("/stats")[0]
        figures, _ = get("/stats?format=json")
        assert '"sessions": 2' in figures
        for foreign in ({"Host": "rebind.attacker.example"}, {"X-Forwarded-For": "203.0.113.7"}):
            with pytest.raises(urllib.error.HTTPError) as refused:
                get("/stats?format=json", **foreign)
            assert refused.value.code == 403
        assert "<form" in get("/logout")[0] and "Hello demo." in get("/")[0]  # a GET signs no one out
        assert "Logged out" in post("/logout", csrfmiddlewaretoken=token("/logout"))
        assert "Hello anonymous. Visits in this session: 1" in get("/")[0]
        with pytest.raises(urllib.error.HTTPError) as missing:
            get("/favicon.ico")
        assert missing.value.code == 404
    finally:
        stop(process)
    assert_refused(EXAMPLES / "django_app.py", "your-secret-key")


def listed(text):
    """The rows of the Flask example's "Your sessions" table: (started, last used, visits, browser, mark)."""
    table = re.search(r"<table[^>]*>(.*?)</table>", text, re.DOTALL)
    if table is None:
        return []
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1), re.DOTALL)[1:]  # the header row apart
    return [tuple(re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL))
            for row in rows]


def this_one(rows):
    """The browser column of the rows marked "this one"."""
    return [row[3] for row in rows if row[4] == "this one"]


def test_flask_example_your_sessions_escapes_checks_the_token_and_follows_sign_in_and_out():
    store = LembroStore(interval=None)
    app = load_example("flask_app").make_app(store=store)
    script = "<script>alert(1)</script>"
    laptop = webtest.TestApp(app, extra_environ={"HTTP_USER_AGENT": script})
    phone = webtest.TestApp(app, extra_environ={"HTTP_USER_AGENT": "phone"})
    visitor = webtest.TestApp(app)
    assert "Not logged in" in laptop.get("/sessions").text and "<table" not in laptop.get("/sessions").text
    assert "Your sessions" not in laptop.get("/").text
    for client in (laptop, phone):
        assert "Your sessions" in log_in(client, "<b>Eve</b>").text
    visitor.get("/")
    page = laptop.get("/sessions").text
    assert "<b>Eve</b>" not in page and "&lt;b&gt;Eve&lt;/b&gt;" in page
    assert script not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    rows = listed(page)
    assert len(rows) == 2 and this_one(rows) == ["&lt;script&gt;alert(1)&lt;/script&gt;"]
    assert all(re.fullmatch(r"\d+ s ago", row[0]) and re.fullmatch(r"\d+ s ago", row[1]) for row in rows), rows
    moments = re.findall(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}" title="([^"]+)">', page)
    assert len(moments) == 4 and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", m) for m in moments)
    sessions = app.extensions["lembro"].sessions
    assert [found.data["user"] for found in sessions.owned_by("<b>Eve</b>")] == ["<b>Eve</b>"] * 2
    stats = store.stats()
    assert (stats["sessions"], stats["owners"], stats["owned_sessions"]) == (3, 1, 2)  # the visitor owns none

    laptop.post("/sessions", {"csrf_token": "forged"}, status=403)  # a cross-site form signs no one out
    laptop.post("/sessions", status=403)
    assert len(listed(phone.get("/sessions").text)) == 2 and this_one(listed(phone.get("/sessions").text)) == ["phone"]

    assert "Logged out" in log_out(phone).text  # a sign-out leaves the list
    assert this_one(listed(laptop.get("/sessions").text)) == ["&lt;script&gt;alert(1)&lt;/script&gt;"]
    assert len(listed(laptop.get("/sessions").text)) == 1
    page = laptop.get("/sessions").form.submit().follow().text  # nobody else to sign out
    assert "Signed out 0 other sessions." in page and len(listed(page)) == 1
    store.close()


def test_flask_example_your_sessions_on_a_real_server():
    """Two browsers sign in as one user on the example served as the README serves it: each lists both sessions
    with itself marked, and "sign out everywhere else" from one signs the other out and keeps itself signed in."""
    from tests.test_examples_safety import start, stop  # that module imports this one

    process, output, base = start([EXAMPLES / "flask_app.py", "--port", "0"])
    try:
        assert base, output

        class Browser:
            def __init__(self, agent):
                self.agent = agent
                jar = http.cookiejar.CookieJar()
                self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

            def open(self, path, fields=None):
                data = None if fields is None else urllib.parse.urlencode(fields).encode()
                request = urllib.request.Request(base + path, data=data, headers={"User-Agent": self.agent})
                with self.opener.open(request, timeout=10) as response:
                    return response.read().decode()

            def token(self, path):
                return re.search(r'name="csrf_token" value="([^"]+)"', self.open(path)).group(1)

            def log_in(self, name):
                return self.open("/login", {"name": name, "csrf_token": self.token("/login")})  # 303 to /

        laptop, phone, other = Browser("laptop"), Browser("phone"), Browser("other")
        assert "Hello Ana. Visits in this session: 1" in laptop.log_in("Ana")
        assert "Hello Ana. Visits in this session: 1" in phone.log_in("Ana")
        assert "Hello Bo." in other.log_in("Bo")
        assert "Visits in this session: 3" in (laptop.open("/"), laptop.open("/"))[1]
        rows = listed(laptop.open("/sessions"))
        assert [(row[2], row[3]) for row in rows] == [("3", "laptop"), ("1", "phone")]  # most recently used first
        assert this_one(rows) == ["laptop"]
        assert this_one(listed(phone.open("/sessions"))) == ["phone"]
        assert [row[3] for row in listed(other.open("/sessions"))] == ["other"]  # Bo sees his own only

        with pytest.raises(urllib.error.HTTPError) as refused:
            laptop.open("/sessions", {"csrf_token": "forged"})
        assert refused.value.code == 403
        page = laptop.open("/sessions", {"csrf_token": laptop.token("/sessions")})  # "sign out everywhere else"
        assert "Signed out 1 other session." in page
        assert [(row[3], row[4]) for row in listed(page)] == [("laptop", "this one")]
        assert "Hello anonymous. Visits in this session: 1" in phone.open("/")  # its next request is anonymous
        assert "Not logged in" in phone.open("/sessions")
        assert "Hello Ana. Visits in this session: 4" in laptop.open("/")  # kept signed in, same session
        assert "Hello Bo." in other.open("/")  # another user's sessions are not touched
    finally:
        stop(process)
