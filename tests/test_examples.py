"""The example apps, driven in-process with WebTest so they cannot rot."""

import importlib.util
from pathlib import Path

import webtest

from lembro_wsgi import LembroStore

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wsgi_example_counter_login_logout_stats():
    example = load_example("wsgi_app")
    store = LembroStore(interval=None)
    app = webtest.TestApp(example.make_app(store))
    first = app.get("/")
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Visits in this session: 1" in first.text
    assert "Visits in this session: 2" in app.get("/").text
    old_cookie = app.cookies["lembro.sid"]
    form = app.get("/login").form
    form["name"] = "Ana"
    page = form.submit().follow()
    assert app.cookies["lembro.sid"] != old_cookie  # regenerated at login
    assert "Hello Ana. Visits in this session: 3" in page.text
    assert "Visits in this session: 1" in webtest.TestApp(app.app).get("/").text
    stats = app.get("/stats").text
    assert "2 sessions" in stats and 'class="fill"' in stats
    app.get("/logout")
    assert "Hello anonymous. Visits in this session: 1" in app.get("/").text
    store.close()
