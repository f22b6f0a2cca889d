"""A Pyramid app using pyramid_beaker, configured only through settings (session.type = lembro)."""

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.response import Response

from lembro_wsgi import get_store, reset_stores

SETTINGS = {
    "session.type": "lembro",
    "session.max_size": "128K",
    "session.interval": "30",
    "session.key": "app_session",
    "session.secret": "s3cret-for-tests",
    "session.timeout": "600",
}


@pytest.fixture
def app():
    reset_stores()
    config = Configurator(settings=SETTINGS)
    config.include("pyramid_beaker")

    def count(request):
        request.session["n"] = request.session.get("n", 0) + 1
        request.session.flash(f"visit {request.session['n']}")
        return Response(str(request.session["n"]))

    def flashes(request):
        return Response(",".join(request.session.pop_flash()))

    def logout(request):
        request.session.invalidate()
        return Response("bye")

    config.add_route("count", "/")
    config.add_route("flashes", "/flashes")
    config.add_route("logout", "/logout")
    config.add_view(count, route_name="count")
    config.add_view(flashes, route_name="flashes")
    config.add_view(logout, route_name="logout")
    yield webtest.TestApp(config.make_wsgi_app())
    reset_stores()


def test_request_session_persists_through_lembro(app):
    assert app.get("/").text == "1"
    assert app.get("/").text == "2"
    assert app.get("/flashes").text == "visit 1,visit 2"
    assert app.get("/flashes").text == ""
    store = get_store("30", "128K")
    assert len(store) == 1
    assert webtest.TestApp(app.app).get("/").text == "1"
    assert len(store) == 2


def test_invalidate_starts_over(app):
    app.get("/")
    app.get("/")
    app.get("/logout")
    assert app.get("/").text == "1"
