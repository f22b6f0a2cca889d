"""A Pyramid app whose sessions come from pyramid_beaker, with session.type = lembro: configuration only.

    PYTHONPATH=examples pserve examples/pyramid_beaker.ini    # http://127.0.0.1:6544/
    python examples/pyramid_beaker_app.py                     # the same, without pserve

The session.* lines of the ini file alone pick the backend (lembro_wsgi is
imported for the stats page only). A visit counter, a reset button (a POST
with Pyramid's CSRF token), and /stats for requests from this machine only. The cookie is signed with session.secret
if the ini sets one, else LEMBRO_SECRET (random for the run if unset); a
placeholder is refused.
"""

from __future__ import annotations

from pathlib import Path

from example_guard import cookie_secret, local_only
from example_page import page
from pyramid.config import Configurator
from pyramid.csrf import SessionCSRFStoragePolicy
from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.response import Response
from pyramid.wsgi import wsgiapp

from lembro_wsgi import StatsApp, get_store

INI = Path(__file__).with_name("pyramid_beaker.ini")


def home(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    request.session.save()
    token = request.session.get_csrf_token()
    return Response(page(
        "lembro_wsgi: pyramid_beaker with session.type = lembro",
        f"<p>Visits in this Beaker session: {request.session['visits']}</p><form method='post' action='/reset'>"
        f"<input type='hidden' name='csrf_token' value='{token}'><button>reset</button></form>",
    ))


def reset(request):
    request.session.invalidate()
    return HTTPSeeOther("/")


def main(global_config=None, **settings):
    settings["session.secret"] = cookie_secret(settings.get("session.secret"))
    config = Configurator(settings=settings)
    config.include("pyramid_beaker")
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True)
    config.add_route("home", "/")
    config.add_route("reset", "/reset")
    config.add_view(home, route_name="home")
    config.add_view(reset, route_name="reset", request_method="POST")
    store = get_store(settings["session.interval"], settings["session.max_size"])  # the store these options pick
    config.add_route("stats", "/stats")
    stats = local_only(StatsApp(store))  # figures about your users: not for everyone
    config.add_view(wsgiapp(stats), route_name="stats", require_csrf=False)  # read-only: its own 405
    config.add_route("favicon", "/favicon.ico")
    config.add_view(lambda request: HTTPNotFound(), route_name="favicon")  # not a visit
    return config.make_wsgi_app()


if __name__ == "__main__":
    from pyramid.paster import get_app
    from waitress import serve

    print("serving on http://127.0.0.1:6544/ (Ctrl-C to stop)", flush=True)
    serve(get_app(str(INI), "main"), host="127.0.0.1", port=6544)
