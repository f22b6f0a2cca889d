"""A Pyramid app on lembro sessions, set up from its ini file with config.include('lembro_wsgi.pyramid').

    PYTHONPATH=examples pserve examples/pyramid.ini     # http://127.0.0.1:6543/
    python examples/pyramid_app.py                      # the same, without pserve

A counter, a login form protected by Pyramid's CSRF check (the session id is
regenerated at login), logout (invalidate, by a POST with the token), flash
messages, and /stats for requests from this machine only. The cookie is signed
with lembro.secret if the ini sets one, else LEMBRO_SECRET (random for the run
if unset); a placeholder is refused.
"""

from __future__ import annotations

import html
from pathlib import Path

from example_guard import cookie_secret, local_only
from example_page import page as html_page
from pyramid.config import Configurator
from pyramid.csrf import SessionCSRFStoragePolicy
from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.interfaces import ISessionFactory
from pyramid.response import Response
from pyramid.wsgi import wsgiapp

from lembro_wsgi import StatsApp

INI = Path(__file__).with_name("pyramid.ini")


def page(request, body: str) -> Response:
    user = html.escape(request.session.get("user", "anonymous"))
    return Response(html_page("lembro_wsgi: a Pyramid app", f"<p>Hello {user}.</p>{body}",
                              request.session.pop_flash()))


def home(request):
    request.session["visits"] = request.session.get("visits", 0) + 1
    return page(request, f"<p>Visits in this session: {request.session['visits']}</p>")


def login_form(request):
    token = request.session.get_csrf_token()
    return page(request, "<form method='post'><input name='name' placeholder='your name'>"
                         f"<input type='hidden' name='csrf_token' value='{token}'><button>log in</button></form>")


def login(request):
    request.session.regenerate()  # a new id at every change of privilege
    request.session.new_csrf_token()  # and a new CSRF token
    request.session["user"] = request.POST.get("name", "").strip()[:40] or "guest"
    request.session.flash(f"Logged in as {request.session['user']}.")
    return HTTPSeeOther("/")


def logout_form(request):
    """A link may not log you out: a POST with the token does."""
    token = request.session.get_csrf_token()
    return page(request, f"<form method='post'><input type='hidden' name='csrf_token' value='{token}'>"
                         "<button>log out</button></form>")


def logout(request):
    request.session.invalidate()
    request.session.flash("Logged out: the old session is gone.")
    return HTTPSeeOther("/")


def main(global_config=None, **settings):
    """The WSGI app; ``settings`` come from the ini file's [app:main] section."""
    settings["lembro.secret"] = cookie_secret(settings.get("lembro.secret"))
    config = Configurator(settings=settings)
    config.include("lembro_wsgi.pyramid")
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True)
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


if __name__ == "__main__":
    from pyramid.paster import get_app
    from waitress import serve

    print("serving on http://127.0.0.1:6543/ (Ctrl-C to stop)", flush=True)
    serve(get_app(str(INI), "main"), host="127.0.0.1", port=6543)
