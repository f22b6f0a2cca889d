"""A Pyramid app whose sessions come from pyramid_beaker, with session.type = lembro: configuration only.

    python examples/pyramid_beaker_app.py      # http://127.0.0.1:6544/

The app never imports lembro_wsgi: the settings below pick the backend, as
they would in an ini file. A visit counter and a reset link.
"""

from __future__ import annotations

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.response import Response

SETTINGS = {
    "session.type": "lembro",
    "session.max_size": "4M",
    "session.interval": "60",
    "session.timeout": "1800",
    "session.key": "beaker_lembro",
    "session.httponly": "true",
    "session.samesite": "Lax",
    "session.secret": "change-me-to-a-long-random-string",
}


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
    config = Configurator(settings={**SETTINGS, **settings})
    config.include("pyramid_beaker")
    config.add_route("home", "/")
    config.add_route("reset", "/reset")
    config.add_view(home, route_name="home")
    config.add_view(reset, route_name="reset")
    return config.make_wsgi_app()


if __name__ == "__main__":
    from waitress import serve

    serve(main(), host="127.0.0.1", port=6544)
