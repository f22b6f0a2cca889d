"""A Pyramid app whose sessions come from pyramid_beaker, with session.type = lembro: configuration only.

    PYTHONPATH=examples pserve examples/pyramid_beaker.ini    # http://127.0.0.1:6544/
    python examples/pyramid_beaker_app.py                     # the same, without pserve

The app never imports lembro_wsgi: the session.* lines of the ini file pick
the backend. A visit counter and a reset link.
"""

from __future__ import annotations

from pathlib import Path

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.response import Response

INI = Path(__file__).with_name("pyramid_beaker.ini")


def home(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    request.session.save()
    return Response(
        "<!doctype html><meta charset='utf-8'><title>pyramid_beaker + lembro</title>"
        f"<p>Visits in this Beaker session: {request.session['visits']}</p><p><a href='/reset'>reset</a></p>"
    )


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
    return config.make_wsgi_app()


if __name__ == "__main__":
    from pyramid.paster import get_app
    from waitress import serve

    print("serving on http://127.0.0.1:6544/ (Ctrl-C to stop)", flush=True)
    serve(get_app(str(INI), "main"), host="127.0.0.1", port=6544)
