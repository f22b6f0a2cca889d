"""A Pyramid app whose sessions come from pyramid_beaker, with session.type = lembro: configuration only.

    PYTHONPATH=examples pserve examples/pyramid_beaker.ini    # http://127.0.0.1:6544/
    python examples/pyramid_beaker_app.py                     # the same, without pserve
    python examples/pyramid_beaker_app.py --port 0            # any free port (the line it prints names it)

The session.* lines of the ini file alone pick the backend (lembro_wsgi is
imported for the stats page only). A visit counter, a reset button (a POST
with Pyramid's CSRF token; without it, a 403 that stores nothing) that
revokes the session, and /stats for requests from this machine only. The
cookie (pyramid_beaker_app.sid, set in the ini) is signed with session.secret
if the ini sets one, else SESSION_SECRET (random for the run if unset); a
placeholder or a short secret is refused. Served by waitress, keep
``clear_untrusted_proxy_headers = false`` (see pyramid_app.py).
"""

from __future__ import annotations

from pathlib import Path

from example_guard import cookie_secret, local_only, pyramid_csrf
from example_page import page
from example_server import serve
from pyramid.config import Configurator
from pyramid.csrf import get_csrf_token
from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.response import Response
from pyramid.wsgi import wsgiapp

from lembro_wsgi import StatsApp, store_for

INI = Path(__file__).with_name("pyramid_beaker.ini")
PORT = 6544  # the ini's; each example has its own port and cookie name


def home(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    request.session.save()
    token = get_csrf_token(request)
    return Response(page(
        "lembro_wsgi: pyramid_beaker with session.type = lembro",
        f"<p>Visits in this Beaker session: {request.session['visits']}</p><form method='post' action='/reset'>"
        f"<input type='hidden' name='csrf_token' value='{token}'><button>reset</button></form>",
    ))


def reset(request):
    """Revoke the session: Beaker's invalidate() (and delete()) leave the stored data, which a copied cookie
    would still open; removing its namespace deletes it from the store."""
    namespace = request.session.namespace
    namespace.acquire_write_lock()
    try:
        namespace.remove()
    finally:
        namespace.release_write_lock()
    request.session.invalidate()  # a new id, sent in a new cookie
    return HTTPSeeOther("/")


def main(global_config=None, **settings):
    settings["session.secret"] = cookie_secret(settings.get("session.secret"), "the ini's session.secret")
    config = Configurator(settings=settings)
    config.include("pyramid_beaker")
    pyramid_csrf(config)  # every POST checked; a refusal is a 403 that stores nothing
    config.add_route("home", "/")
    config.add_route("reset", "/reset")
    config.add_view(home, route_name="home")
    config.add_view(reset, route_name="reset", request_method="POST")
    # The store these session.* options pick, made now so the stats page has it before the first request.
    store = store_for(settings["session.interval"], settings["session.max_size"], settings.get("session.max_sessions"))
    config.add_route("stats", "/stats")
    stats = local_only(StatsApp(store))  # figures about your users: not for everyone
    config.add_view(wsgiapp(stats), route_name="stats", require_csrf=False)  # read-only: its own 405
    config.add_route("favicon", "/favicon.ico")
    config.add_view(lambda request: HTTPNotFound(), route_name="favicon")  # not a visit
    return config.make_wsgi_app()


def run() -> None:
    """``python examples/pyramid_beaker_app.py [--port N]``: the ini's app, on waitress as pserve serves it."""
    from pyramid.paster import get_app

    serve(lambda: get_app(str(INI), "main"), PORT, __doc__.splitlines()[0], waitress=True)


if __name__ == "__main__":
    run()
