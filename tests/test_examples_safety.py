"""The examples are safe to copy: CSRF tokens on every POST, logout by POST, /stats for this machine only, no
placeholder or weak secret, and examples that run side by side."""

import http.client
import http.cookiejar
import http.server
import os
import random
import re
import selectors
import string
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager

import pytest
import webtest

from lembro_wsgi import LembroStore, get_store, reset_stores
from tests.servers import browser
from tests.test_examples import EXAMPLES, LOCAL, app_from_ini, load_example, log_in, log_out
from tests.test_readme import BLOCKS, README

PLACEHOLDER = "change-me-to-a-long-random-string"
#: Sample secrets seen in configs and READMEs (the README showed the first as `lembro.secret`), and short ones.
WEAK = ["a-long-random-string", "changeme-changeme", "change_me_to_a_long_random_string", "your-secret-key-here",
        "secretsecretsecret", "0000000000000000", "super-secret-key-123", PLACEHOLDER, "CHANGE-ME", "  change-me  ",
        "x", "   ", "short but fine?", "Your-Secret-Key-Goes-Here-Please-1234", "0" * 64, "ab" * 24,
        "an-example-value-for-the-docs-0123456789", "REPLACE_WITH_A_GENERATED_VALUE_0123456789"]
REFUSED = "refusing to start: the cookie secret from"
PLAIN = ["wsgi_app", "bottle_app", "flask_app"]
INI = {"pyramid_app": ("pyramid.ini", "lembro.secret"), "pyramid_beaker_app": ("pyramid_beaker.ini", "session.secret")}
PORTS = {"wsgi_app": 8080, "bottle_app": 8081, "flask_app": 8082, "pyramid_app": 6543, "pyramid_beaker_app": 6544}


@pytest.fixture(autouse=True)
def no_secret_from_the_shell(monkeypatch):
    """The examples read SESSION_SECRET: one exported in the shell running the tests is not theirs to take."""
    monkeypatch.delenv("SESSION_SECRET", raising=False)


@pytest.fixture(params=PLAIN)
def example(request):
    """One of the plain examples on a store of the test's, through WebTest: (app, store)."""
    store = LembroStore(interval=None)
    module = load_example(request.param)
    app = module.make_app(store) if request.param == "wsgi_app" else module.make_app(store=store)
    yield webtest.TestApp(app), store
    store.close()


def pyramid_example(name):
    """A Pyramid example from its ini, through WebTest: (app, the store its sessions are in)."""
    from pyramid.interfaces import ISessionFactory

    reset_stores()
    app = app_from_ini(INI[name][0])
    if name == "pyramid_app":
        return app, app.app.registry.getUtility(ISessionFactory).store
    return app, get_store("60", "4M")  # the ini's session.interval and session.max_size


@pytest.fixture(params=list(PORTS))
def any_example(request):
    """Each of the five examples, through WebTest."""
    if request.param in INI:
        yield pyramid_example(request.param)[0]
        reset_stores()
    else:
        store = LembroStore(interval=None)
        module = load_example(request.param)
        yield webtest.TestApp(module.make_app(store) if request.param == "wsgi_app" else module.make_app(store=store))
        store.close()


def test_a_cross_site_login_without_the_token_is_refused_and_stores_nothing(example):
    app, store = example
    response = app.post("/login", {"name": "Eve"}, status=403)
    assert "Set-Cookie" not in response.headers and len(store) == 0


def test_login_csrf_into_a_visitors_session_is_refused(example):
    """Another client's token, a forged one, or none: the visitor is not signed in as anyone."""
    app, store = example
    attacker_token = webtest.TestApp(app.app).get("/login").form["csrf_token"].value
    app.get("/login")  # the visitor has a session and a token of their own
    cookies = dict(app.cookies)
    for sent in ({}, {"csrf_token": attacker_token}, {"csrf_token": "forged"}, {"csrf_token": "é"}):
        app.post("/login", {"name": "Eve", **sent}, status=403)
    assert dict(app.cookies) == cookies and "Eve" not in repr(store.all())
    assert "Hello anonymous." in app.get("/").text


def test_logout_is_a_post_with_the_token(example):
    app, _ = example
    log_in(app, "Ana")
    assert "<form" in app.get("/logout").text  # a link shows the button, and does not sign out
    assert "Hello Ana." in app.get("/").text
    app.post("/logout", status=403)
    app.post("/logout", {"csrf_token": "forged"}, status=403)
    assert "Hello Ana." in app.get("/").text
    log_out(app)
    assert "Hello anonymous." in app.get("/").text


def test_the_stats_page_answers_this_machine_only(example):
    app, _ = example
    app.get("/")
    for environ in ({}, {"REMOTE_ADDR": "203.0.113.7"}, {"REMOTE_ADDR": "10.0.0.2"},
                    {**LOCAL, "HTTP_X_FORWARDED_FOR": "203.0.113.7"}):  # a proxy on this machine
        assert "sessions" not in app.get("/stats?format=json", extra_environ=environ, status=403).text
    for address in ("127.0.0.1", "::1"):
        assert app.get("/stats?format=json", extra_environ={"REMOTE_ADDR": address}).json["sessions"] == 1


@pytest.mark.parametrize("host", ["rebind.attacker.example:8080", "rebind.attacker.example", "localhost.evil.example",
                                  "127.0.0.1.nip.io:6543", "localhost:80@evil.example", "localhost:http", "", "[::2]"])
def test_the_stats_page_refuses_a_host_not_naming_this_machine(any_example, host):
    """A DNS-rebinding page in the local browser reaches 127.0.0.1 with its own name in Host."""
    any_example.get("/stats?format=json", extra_environ={**LOCAL, "HTTP_HOST": host}, status=403)


@pytest.mark.parametrize("header", ["X-Real-IP", "X-Forwarded-Host", "X-Forwarded-Proto", "Via", "X-Forwarded-For",
                                    "Forwarded"])
def test_the_stats_page_refuses_any_sign_of_a_proxy(any_example, header):
    any_example.get("/stats?format=json", headers={header: "203.0.113.7"}, extra_environ=LOCAL, status=403)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8080", "127.0.0.1:6543", "[::1]:1", "[::1]"])
def test_the_stats_page_answers_this_machine_by_its_names(any_example, host):
    any_example.get("/")
    assert any_example.get("/stats?format=json", extra_environ={**LOCAL, "HTTP_HOST": host}).json["bytes"] > 0


def test_pyramid_example_logout_is_a_post_with_the_token_and_stats_is_local():
    app = app_from_ini("pyramid.ini")
    log_in(app, "Ana")
    app.get("/logout")
    app.post("/logout", status=403)  # Pyramid's CSRF check
    assert "Hello Ana." in app.get("/").text
    assert "Hello anonymous." in log_out(app).text
    app.get("/stats", status=403)
    app.get("/stats", extra_environ={"REMOTE_ADDR": "198.51.100.4"}, status=403)
    assert "<svg" in app.get("/stats", extra_environ=LOCAL).text


FILE_TOKEN = [("csrf_token", "token.txt", b"anything")]  # a multipart file part where the token goes


def test_a_token_sent_as_a_file_is_refused_not_an_error(example):
    app, store = example
    app.get("/login")
    app.post("/login", {"name": "Eve"}, upload_files=FILE_TOKEN, status=403)
    assert "Eve" not in repr(store.all())


@pytest.mark.parametrize("name, paths", [("pyramid_app", ["/login", "/logout"]), ("pyramid_beaker_app", ["/reset"])])
def test_a_refused_pyramid_post_is_a_403_that_stores_nothing(name, paths):
    """Pyramid's own policy made a token while checking one: every refused POST stored a session and set a cookie."""
    app, store = pyramid_example(name)
    try:
        for _ in range(7):
            for path in paths:
                for sent in ({}, {"csrf_token": "forged"}, {"csrf_token": ""}):
                    response = app.post(path, sent, status=403)
                    assert "Set-Cookie" not in response.headers
                response = app.post(path, upload_files=FILE_TOKEN, status=403)
                assert "Set-Cookie" not in response.headers
        assert store.stats()["sessions"] == 0 and not app.cookies
        app.get("/")  # a visitor with a session: a refused POST leaves it as it was, and sends no cookie
        cookies, stored = dict(app.cookies), store.stats()["sessions"]
        for path in paths:
            assert "Set-Cookie" not in app.post(path, {"csrf_token": "forged"}, status=403).headers
        assert dict(app.cookies) == cookies and store.stats()["sessions"] == stored == 1
    finally:
        reset_stores()


def test_the_beaker_reset_revokes_the_session_a_copied_cookie_held():
    """Beaker's invalidate() left the stored session: a copied cookie still opened it after the reset."""
    app, store = pyramid_example("pyramid_beaker_app")
    try:
        for _ in range(3):
            app.get("/")
        [(name, copied)] = app.cookies.items()
        page = app.get("/")
        assert "Visits in this Beaker session: 4" in page.text
        page.form.submit(status=303)
        assert app.cookies[name] != copied  # the browser got a new session
        thief = webtest.TestApp(app.app)
        thief.set_cookie(name, copied)
        assert "Visits in this Beaker session: 1" in thief.get("/").text  # a fresh session, nothing of the old
        assert "Visits in this Beaker session: 1" in app.get("/").text
        assert store.stats()["sessions"] == 2  # those two: the old one is gone from the store
    finally:
        reset_stores()


@pytest.mark.parametrize("name", PLAIN)
@pytest.mark.parametrize("secret", WEAK)
def test_a_weak_secret_in_the_environment_stops_the_app_with_its_message(name, secret, monkeypatch):
    monkeypatch.setenv("SESSION_SECRET", secret)
    with pytest.raises(SystemExit, match=REFUSED) as refused:
        load_example(name).make_app()
    assert "secrets.token_urlsafe(32)" in str(refused.value)
    assert len(secret.strip()) < 8 or secret.strip() not in str(refused.value)  # not echoed to the logs


@pytest.mark.parametrize("name", list(INI))
@pytest.mark.parametrize("secret", WEAK)
def test_the_ini_examples_refuse_a_weak_secret_from_the_environment(name, secret, monkeypatch):
    from pyramid.paster import get_app

    monkeypatch.setenv("SESSION_SECRET", secret)
    try:
        with pytest.raises(SystemExit, match=REFUSED):
            get_app(str(EXAMPLES / INI[name][0]), "main")
    finally:
        reset_stores()


def test_random_secrets_are_taken():
    """Secrets shaped like the ones the README tells how to make (drawn from a fixed seed: no flaky draw)."""
    guard = load_example("example_guard")
    draw = random.Random(20)
    for _ in range(2000):
        assert guard.weakness("".join(draw.choices(string.ascii_letters + string.digits + "-_", k=43))) is None
        assert guard.weakness("".join(draw.choices("0123456789abcdef", k=64))) is None
    assert guard.weakness("0123456789abcdef" * 2) is None  # 32 characters, 16 distinct: the floor


@pytest.mark.parametrize("name", list(INI))
def test_the_ini_examples_refuse_a_weak_secret_written_in_the_ini(name, tmp_path, monkeypatch):
    """A copy of each ini with a secret written in; a rotation list is checked line by line."""
    from pyramid.paster import get_app

    ini, key = INI[name]
    text = (EXAMPLES / ini).read_text()
    assert "secret =" not in text and "change-me" not in text
    good = "".join(random.Random(3).choices(string.ascii_letters, k=43))
    monkeypatch.delenv("SESSION_SECRET", raising=False)
    try:
        for value in (PLACEHOLDER, "a-long-random-string", f"\n    {good}\n    your-secret-key-here-0123456789"):
            copy = tmp_path / ini
            copy.write_text(text.replace("[app:main]\n", f"[app:main]\n{key} = {value}\n", 1))
            with pytest.raises(SystemExit, match=f"{REFUSED} the ini's {key}"):
                get_app(str(copy), "main")
        copy.write_text(text.replace("[app:main]\n", f"[app:main]\n{key} = {good}\n", 1))
        assert "Visits" in webtest.TestApp(get_app(str(copy), "main")).get("/").text
    finally:
        reset_stores()


def test_the_readme_shows_no_secret_to_paste():
    """The README's Pyramid ini showed `lembro.secret = a-long-random-string`, which the examples then took."""
    text = README.read_text()
    for value in WEAK[:8]:
        assert value not in text
    assignments = re.findall(r"secret\w*[\"'\]]*\s*=\s*(\S+)", text)
    assert assignments and all(value.startswith(("os.environ", "...")) for value in assignments), assignments
    assert load_example("example_guard").GENERATE in text  # what a refused secret's message says to run


# Real servers on 127.0.0.1: the examples as the README runs them.

def start(args, tmp_env=None, ready=r"[Ss]erving on (http://127\.0\.0\.1:\d+)", timeout=60):
    """``python ARGS`` (no SESSION_SECRET unless in ``tmp_env``); returns (process, output so far, base URL or None).

    Reads stdout and stderr until ``ready`` matches or the process ends, within ``timeout`` seconds.
    """
    environ = {key: value for key, value in os.environ.items() if key != "SESSION_SECRET"}
    environ["PYTHONPATH"] = os.pathsep.join([str(EXAMPLES), str(EXAMPLES.parent), environ.get("PYTHONPATH", "")])
    environ["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen([sys.executable, *map(str, args)], env={**environ, **(tmp_env or {})},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=EXAMPLES.parent)
    output, deadline = b"", time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline and selector.select(deadline - time.monotonic()):
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break  # it ended
            output += chunk
            if re.search(ready, output.decode(errors="replace")):
                break
    text = output.decode(errors="replace")
    found = re.search(ready, text)
    return process, text, found.group(1) if found else None


def stop(process):
    process.kill()
    process.wait(10)
    process.stdout.close()


@contextmanager
def running(args, **options):
    process, output, base = start(args, **options)
    try:
        assert base, output
        yield base
    finally:
        stop(process)


@contextmanager
def reverse_proxy(upstream, headers):
    """A reverse proxy on 127.0.0.1 that passes GETs to ``upstream`` adding ``headers``, as nginx does."""

    class Forward(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            connection = http.client.HTTPConnection(upstream.split("//")[1], timeout=10)
            sent = {key: value for key, value in self.headers.items() if key.lower() != "connection"}
            connection.request("GET", self.path, headers={**sent, **headers})
            answer = connection.getresponse()
            body = answer.read()
            connection.close()
            self.send_response(answer.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def status(url):
    """The status a GET of ``url`` (a URL or a Request) gets."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def served_ways(name, tmp_path):
    """The two ways the README serves a Pyramid example: the script, and pserve on (a copy of) its ini."""
    ini = INI[name][0]
    copy = tmp_path / ini  # the same file on a free port
    copy.write_text((EXAMPLES / ini).read_text().replace(f"listen = 127.0.0.1:{PORTS[name]}", "listen = 127.0.0.1:0"))
    return [["-m", "pyramid.scripts.pserve", copy], [EXAMPLES / f"{name}.py", "--port", "0"]]


@pytest.mark.parametrize("name", list(INI))
def test_pyramid_stats_refuse_a_reverse_proxy_on_this_machine_on_waitress(name, tmp_path):
    """waitress drops X-Forwarded-For/Forwarded from a peer it was not told to trust: through a proxy on this
    machine, /stats saw 127.0.0.1 and no proxy header, and answered every client."""
    for args in served_ways(name, tmp_path):
        with running(args) as base:
            assert status(base + "/stats?format=json") == 200  # this machine, directly
            for headers in ({"X-Forwarded-For": "203.0.113.7", "Forwarded": "for=203.0.113.7;proto=https",
                             "X-Forwarded-Proto": "https"}, {"X-Real-IP": "203.0.113.7"},
                            {"X-Forwarded-Host": "example.com"}):
                with reverse_proxy(base, headers) as proxy:
                    assert status(proxy + "/") == 200
                    assert status(proxy + "/stats?format=json") == 403, (args, headers)


@pytest.mark.parametrize("name", PLAIN)
def test_plain_stats_refuse_a_reverse_proxy_and_a_foreign_host(name):
    with running([EXAMPLES / f"{name}.py", "--port", "0"]) as base:
        assert status(base + "/stats?format=json") == 200
        with reverse_proxy(base, {"X-Real-IP": "203.0.113.7"}) as proxy:
            assert status(proxy + "/stats?format=json") == 403
        foreign = urllib.request.Request(base + "/stats?format=json", headers={"Host": "rebind.attacker.example"})
        assert status(foreign) == 403


@pytest.mark.parametrize("name", list(INI))
def test_a_pyramid_example_with_a_weak_secret_never_says_it_serves(name):
    process, output, base = start([EXAMPLES / f"{name}.py", "--port", "0"], {"SESSION_SECRET": "your-secret-key-here"})
    try:
        assert base is None, output  # it announced serving, with a secret it was about to refuse
        assert process.wait(30) == 1
        output += process.stdout.read().decode(errors="replace")
        assert "serving on" not in output.lower() and REFUSED in output and "Traceback" not in output
    finally:
        stop(process)


def test_the_examples_run_side_by_side_in_one_browser():
    """Each on its own port (--port 0 here) with its own cookie: signing in on one signs no one out of another."""
    assert {name: load_example(name).PORT for name in PORTS} == PORTS
    for name, (ini, _) in INI.items():
        assert f"listen = 127.0.0.1:{PORTS[name]}\n" in (EXAMPLES / ini).read_text()
    readme = README.read_text()
    for name, port in PORTS.items():
        assert f"`{name}.py` {port}" in readme
    assert "http://127.0.0.1:8080/" in readme  # the first command's page
    started = [start([EXAMPLES / f"{name}.py", "--port", "0"]) for name in PORTS]
    try:
        bases = dict(zip(PORTS, (base for _, _, base in started)))
        assert all(bases.values()), [output for _, output, _ in started]
        assert len({base.rsplit(":", 1)[1] for base in bases.values()}) == len(PORTS)  # real ports, not 0
        jar = http.cookiejar.CookieJar()  # one browser: cookies go by host name, whatever the port
        client = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        for name in ("wsgi_app", "bottle_app", "flask_app", "pyramid_app"):
            form = client.open(bases[name] + "/login", timeout=10).read().decode()
            token = re.search(r"name=['\"]csrf_token['\"] value=['\"]([^'\"]+)", form)
            token = token or re.search(r"value=['\"]([^'\"]+)['\"]>\s*<button", form)
            data = urllib.parse.urlencode({"name": name, "csrf_token": token.group(1)}).encode()
            client.open(urllib.request.Request(bases[name] + "/login", data=data), timeout=10).read()
        beaker = bases["pyramid_beaker_app"] + "/"
        assert "Visits in this Beaker session: 1" in client.open(beaker, timeout=10).read().decode()
        for name in ("wsgi_app", "bottle_app", "flask_app", "pyramid_app"):
            assert f"Hello {name}." in client.open(bases[name] + "/", timeout=10).read().decode(), name
        assert "Visits in this Beaker session: 2" in client.open(beaker, timeout=10).read().decode()
        assert sorted(cookie.name for cookie in jar) == sorted(f"{name}.sid" for name in PORTS)
    finally:
        for process, _, _ in started:
            stop(process)


def test_the_readmes_first_command_serves_with_a_random_secret_and_refuses_a_weak_one():
    process, output, base = start([EXAMPLES / "wsgi_app.py", "--port", "0"])
    try:
        assert "notice: SESSION_SECRET is not set" in output and base
        client = browser()
        assert "Visits in this session: 1" in client.open(base + "/").read().decode()
        assert client.open(base + "/stats").status == 200  # a real client on 127.0.0.1
        with pytest.raises(urllib.error.HTTPError) as refused:
            client.open(urllib.request.Request(base + "/login", data=b"name=Eve"))
        assert refused.value.code == 403
    finally:
        stop(process)
    for secret in (PLACEHOLDER, "short", "your-secret-key-here"):  # short: the library's traceback before
        assert_refused(EXAMPLES / "wsgi_app.py", secret)


def assert_refused(script, secret):
    """``script`` given ``secret`` stops with exit code 1 and a plain message, never serving."""
    process, output, base = start([script, "--port", "0"], {"SESSION_SECRET": secret})
    try:
        assert base is None, output
        assert process.wait(30) == 1
        output += process.stdout.read().decode(errors="replace")
        assert REFUSED in output and "Traceback" not in output
    finally:
        stop(process)


def test_the_readmes_stats_check_lets_in_holders_of_the_token_only(monkeypatch):
    """README, "Operating it": the stats page behind a token from the environment."""
    block = next(block for block in BLOCKS if "STATS_TOKEN" in block)
    monkeypatch.setenv("SESSION_SECRET", "a README secret, long enough")

    def site(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"the site"]

    for token in ("s3cret-stats-token", ""):  # empty: no one, not even an empty "Bearer "
        monkeypatch.setenv("STATS_TOKEN", token)
        namespace = {"site": site}
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
        app = webtest.TestApp(namespace["app"])
        assert app.get("/").text == "the site"
        for sent in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer "}, {"Authorization": token}):
            app.get("/admin/sessions", headers=sent, status=403)
        allowed = app.get("/admin/sessions?format=json", headers={"Authorization": f"Bearer {token}"}, expect_errors=True)
        assert allowed.status_int == (200 if token else 403)
        namespace["sessions"].store.close()
