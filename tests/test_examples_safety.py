"""The examples are safe to copy: CSRF tokens on every POST, logout by POST, /stats for this machine only, and
no placeholder secret."""

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import webtest

from lembro_wsgi import LembroStore, reset_stores
from tests.servers import browser
from tests.test_examples import EXAMPLES, LOCAL, app_from_ini, load_example, log_in, log_out
from tests.test_readme import BLOCKS

PLACEHOLDER = "change-me-to-a-long-random-string"


@pytest.fixture(params=["wsgi_app", "bottle_app", "flask_app"])
def example(request):
    """One of the plain examples on a store of the test's, through WebTest: (app, store)."""
    store = LembroStore(interval=None)
    module = load_example(request.param)
    app = module.make_app(store) if request.param == "wsgi_app" else module.make_app(store=store)
    yield webtest.TestApp(app), store
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


def test_pyramid_example_logout_is_a_post_with_the_token_and_stats_is_local():
    app = app_from_ini("pyramid.ini")
    log_in(app, "Ana")
    app.get("/logout")
    app.post("/logout", status=400)  # Pyramid's CSRF check
    assert "Hello Ana." in app.get("/").text
    assert "Hello anonymous." in log_out(app).text
    app.get("/stats", status=403)
    app.get("/stats", extra_environ={"REMOTE_ADDR": "198.51.100.4"}, status=403)
    assert "<svg" in app.get("/stats", extra_environ=LOCAL).text


@pytest.mark.parametrize("name", ["wsgi_app", "bottle_app", "flask_app"])
def test_a_placeholder_secret_in_the_environment_stops_the_app(name, monkeypatch):
    monkeypatch.setenv("LEMBRO_SECRET", PLACEHOLDER)
    with pytest.raises(SystemExit, match="refusing to start: the cookie secret is a placeholder"):
        load_example(name).make_app()


@pytest.mark.parametrize("ini, key", [("pyramid.ini", "lembro.secret"), ("pyramid_beaker.ini", "session.secret")])
def test_the_ini_examples_refuse_the_placeholder(ini, key, tmp_path, monkeypatch):
    """From the environment and written in a copy of the ini; the ini files carry no secret."""
    from pyramid.paster import get_app

    text = (EXAMPLES / ini).read_text()
    assert "change-me" not in text
    copy = tmp_path / ini
    copy.write_text(text.replace("[app:main]\n", f"[app:main]\n{key} = {PLACEHOLDER}\n", 1))
    try:
        with pytest.raises(SystemExit, match="placeholder"):
            get_app(str(copy), "main")
        monkeypatch.setenv("LEMBRO_SECRET", PLACEHOLDER)
        with pytest.raises(SystemExit, match="placeholder"):
            get_app(str(EXAMPLES / ini), "main")
    finally:
        reset_stores()


def start_wsgi_example(**env):
    """``python examples/wsgi_app.py --port 0`` with ``env`` and no LEMBRO_SECRET; (process, output up to serving)."""
    environ = {key: value for key, value in os.environ.items() if key != "LEMBRO_SECRET"}
    environ["PYTHONPATH"] = os.pathsep.join([str(EXAMPLES.parent), environ.get("PYTHONPATH", "")])
    process = subprocess.Popen([sys.executable, str(EXAMPLES / "wsgi_app.py"), "--port", "0"], env={**environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:  # until it serves, or ends
        lines.append(line)
        if line.startswith("serving on"):
            break
    return process, "".join(lines)


def stop(process):
    process.kill()
    process.wait(10)
    process.stdout.close()


def test_the_readmes_first_command_serves_with_a_random_secret_and_refuses_a_placeholder():
    process, output = start_wsgi_example()
    try:
        assert "notice: LEMBRO_SECRET is not set" in output
        base = re.search(r"serving on (http://127\.0\.0\.1:\d+)/", output).group(1)
        client = browser()
        assert "Visits in this session: 1" in client.open(base + "/").read().decode()
        assert client.open(base + "/stats").status == 200  # a real client on 127.0.0.1
        with pytest.raises(urllib.error.HTTPError) as refused:
            client.open(urllib.request.Request(base + "/login", data=b"name=Eve"))
        assert refused.value.code == 403
    finally:
        stop(process)
    process, output = start_wsgi_example(LEMBRO_SECRET=PLACEHOLDER)
    try:
        assert "serving on" not in output and "refusing to start" in output
        assert process.wait(10) == 1
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
