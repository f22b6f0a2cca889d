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


def test_counter_app_session_survives_requests():
    counter = load_example("counter_app")
    store = LembroStore(interval=None)
    app = webtest.TestApp(counter.make_app(store))
    first = app.get("/")
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "visits in this session: 1" in first.text
    assert "visits in this session: 2" in app.get("/").text
    assert "visits in this session: 3" in app.get("/").text
    other = webtest.TestApp(counter.make_app(store))
    assert "visits in this session: 1" in other.get("/").text
    assert app.get("/stats").json["sessions"] == 2
    app.set_cookie("lembro.sid", "planted-by-attacker")
    app.get("/")
    assert "planted-by-attacker" not in store
