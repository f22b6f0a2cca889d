"""A Pyramid app whose sessions come from pyramid_beaker, with session.type = lembro: configuration only.

    PYTHONPATH=examples pserve examples/pyramid_beaker.ini    # http://127.0.0.1:6544/
    python examples/pyramid_beaker_app.py                     # the same, without pserve

The app never imports lembro_wsgi: the session.* lines of the ini file pick
the backend. A visit counter and a reset link.
"""

from __future__ import annotations

from pathlib import Path

from example_page import page
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.response import Response
from pyramid.wsgi import wsgiapp

from lembro_wsgi import StatsApp, get_store

INI = Path(__file__).with_name("pyramid_beaker.ini")


def home(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    request.session.save()
    return Response(page(
        "lembro_wsgi: pyramid_beaker with session.type = lembro",
        f"<p>Visits in this Beaker session: {request.session['visits']}</p><p><a href='/reset'>reset</a></p>",
    ))


def reset(request):
    request.session.invalidate()
    return HTTPSeeOther("/")


def main(global_config=None, **settings):
    config = Configurator(settings=settings)
    config.include("pyramid_beaker")
    config.add_route("home", "/")
    config.add_route("reset", "/reset")
    config.add_view(home, route_name="home")
    config.add_view(reset, route_name="reset")
    store = get_store(settings["session.interval"], settings["session.max_size"])  # the store these options pick
    config.add_route("stats", "/stats")
    config.add_view(wsgiapp(StatsApp(store)), route_name="stats")
    config.add_route("favicon", "/favicon.ico")
    config.add_view(lambda request: HTTPNotFound(), route_name="favicon")  # not a visit
    return config.make_wsgi_app()


if __name__ == "__main__":
    from pyramid.paster import get_app
    from waitress import serve

    print("serving on http://127.0.0.1:6544/ (Ctrl-C to stop)", flush=True)
    serve(get_app(str(INI), "main"), host="127.0.0.1", port=6544)
