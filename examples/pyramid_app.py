"""A Pyramid app on lembro sessions, set up from its ini file with config.include('lembro_wsgi.pyramid').

    PYTHONPATH=examples pserve examples/pyramid.ini     # http://127.0.0.1:6543/
    python examples/pyramid_app.py                      # the same, without pserve
    python examples/pyramid_app.py --port 0             # any free port (the line it prints names it)

A counter, a login form protected by Pyramid's CSRF check (the session id is
regenerated at login; a POST without the token is a 403 that stores
nothing), logout (invalidate, by a POST with the token), flash messages, and
/stats for requests from this machine only. The cookie (pyramid_app.sid, set
in the ini) is signed with lembro.secret if the ini sets one, else
SESSION_SECRET (random for the run if unset); a placeholder or a short secret
is refused.

Served by waitress, keep ``clear_untrusted_proxy_headers = false`` (the ini's
[server:main] and this file's serve() do): waitress otherwise drops the
X-Forwarded-*/Forwarded headers of a proxy before the app sees them, and
behind a reverse proxy on this machine every client would get /stats.
"""

from __future__ import annotations

import html
from pathlib import Path

from example_guard import cookie_secret, local_only, pyramid_csrf
from example_page import page as html_page
from example_server import serve
from pyramid.config import Configurator
from pyramid.csrf import get_csrf_token, new_csrf_token
from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.interfaces import ISessionFactory
from pyramid.response import Response
from pyramid.wsgi import wsgiapp

from lembro_wsgi import StatsApp

INI = Path(__file__).with_name("pyramid.ini")
PORT = 6543  # the ini's; each example has its own port and cookie name


def page(request, body: str) -> Response:
    user = html.escape(request.session.get("user", "anonymous"))
    return Response(html_page("lembro_wsgi: a Pyramid app", f"<p>Hello {user}.</p>{body}",
                              request.session.pop_flash()))


def home(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    return page(request, f"<p>Visits in this session: {request.session['visits']}</p>")


def login_form(request):
    token = get_csrf_token(request)
    return page(request, "<form method='post'><input name='name' placeholder='your name'>"
                         f"<input type='hidden' name='csrf_token' value='{token}'><button>log in</button></form>")


def login(request):
    request.session.regenerate()  # a new id at every change of privilege
    new_csrf_token(request)  # and a new CSRF token
    request.session["user"] = request.POST.get("name", "").strip()[:40] or "guest"
    request.session.flash(f"Logged in as {request.session['user']}.")
    return HTTPSeeOther("/")


def logout_form(request):
    """A link may not log you out: a POST with the token does."""
    token = get_csrf_token(request)
    return page(request, f"<form method='post'><input type='hidden' name='csrf_token' value='{token}'>"
                         "<button>log out</button></form>")


def logout(request):
    request.session.invalidate()
    request.session.flash("Logged out: the old session is gone.")
    return HTTPSeeOther("/")


def main(global_config=None, **settings):
    """The WSGI app; ``settings`` come from the ini file's [app:main] section."""
    settings["lembro.secret"] = cookie_secret(settings.get("lembro.secret"), "the ini's lembro.secret")
    config = Configurator(settings=settings)
    config.include("lembro_wsgi.pyramid")
    pyramid_csrf(config)  # every POST checked; a refusal is a 403 that stores nothing
    config.add_route("home", "/")
    config.add_route("login", "/login")
    config.add_route("logout", "/logout")
    config.add_view(home, route_name="home")
    config.add_view(login_form, route_name="login", request_method="GET")
    config.add_view(login, route_name="login", request_method="POST")
    config.add_view(logout_form, route_name="logout", request_method="GET")
    config.add_view(logout, route_name="logout", request_method="POST")
    config.commit()  # the session factory the include set up, for its store
    store = config.registry.getUtility(ISessionFactory).store
    config.add_route("stats", "/stats")
    stats = local_only(StatsApp(store))  # figures about your users: not for everyone
    config.add_view(wsgiapp(stats), route_name="stats", require_csrf=False)  # read-only: its own 405
    config.add_route("favicon", "/favicon.ico")
    config.add_view(lambda request: HTTPNotFound(), route_name="favicon")  # not a visit
    return config.make_wsgi_app()


def run() -> None:
    """``python examples/pyramid_app.py [--port N]``: the ini's app, on waitress as pserve serves it."""
    from pyramid.paster import get_app

    serve(lambda: get_app(str(INI), "main"), PORT, __doc__.splitlines()[0], waitress=True)


if __name__ == "__main__":
    run()
