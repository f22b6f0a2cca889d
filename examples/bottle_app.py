"""A Bottle app with the lembro plugin: counter, login/logout and flash messages.

    python examples/bottle_app.py              # http://127.0.0.1:8081/
    python examples/bottle_app.py --port 0     # any free port (the line it prints names it)

Routes that take a ``session`` argument get one; the others are untouched.
The cookie (bottle_app.sid, a name of its own, so that examples served side
by side do not sign each other out) is signed with SESSION_SECRET (random for
the run if unset; a placeholder or a short secret is refused). Forms that
POST carry a CSRF token; /stats answers requests from this machine only.
"""

from __future__ import annotations

import html

import bottle
from example_guard import cookie_secret, csrf_field, csrf_ok, local_only
from example_page import page as html_page
from example_server import serve
from webob import Request

from lembro_wsgi import StatsApp
from lembro_wsgi.bottle import LembroPlugin

PORT, COOKIE = 8081, "bottle_app.sid"  # each example has its own port and cookie name


def make_app(**options) -> bottle.Bottle:
    app = bottle.Bottle()
    if "secret" not in options:
        options["secret"] = cookie_secret()
    options.setdefault("cookie_name", COOKIE)
    plugin = LembroPlugin(**options)
    app.install(plugin)
    stats = local_only(StatsApp(plugin.store))  # figures about your users: not for everyone

    def page(session, body: str) -> str:
        user = html.escape(session.get("user", "anonymous"))
        return html_page("lembro_wsgi: a Bottle app", f"<p>Hello {user}.</p>{body}", session.pop("flash", []))

    @app.get("/")
    def home(session):
        session["visits"] = session.get("visits", 0) + 1
        return page(session, f"<p>Visits in this session: {session['visits']}</p>")

    def check_csrf(session) -> None:
        if not csrf_ok(session, bottle.request.forms.getunicode("csrf_token")):
            bottle.abort(403, "Forbidden: a form of this site must be sent.")

    @app.get("/login")
    def login_form(session):
        return page(session, f"<form method='post'>{csrf_field(session)}<input name='name' placeholder='your name'>"
                             "<button>log in</button></form>")

    @app.post("/login")
    def login(session):
        check_csrf(session)
        session.regenerate()  # a new id at every change of privilege
        session.pop("csrf_token", None)  # and a new CSRF token: the next form makes one
        session["user"] = (bottle.request.forms.getunicode("name") or "").strip()[:40] or "guest"
        session["flash"] = [f"Logged in as {session['user']}."]
        bottle.redirect("/")

    @app.get("/logout")
    def logout_form(session):  # a link may not log you out: a POST with the token does
        return page(session, f"<form method='post'>{csrf_field(session)}<button>log out</button></form>")

    @app.post("/logout")
    def logout(session):
        check_csrf(session)
        session.invalidate()
        session["flash"] = ["Logged out: the old session is gone."]
        bottle.redirect("/")

    @app.get("/health")
    def health():
        return "ok"

    @app.route("/stats", method=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
    def stats_page():  # StatsApp answers, 405 included; WebOb carries its response over to Bottle's
        response = Request(bottle.request.environ).get_response(stats)
        return bottle.HTTPResponse(response.body, status=response.status, headers=dict(response.headerlist))

    @app.get("/favicon.ico")
    def favicon():
        bottle.abort(404)  # not a visit

    return app


def main() -> None:
    serve(make_app, PORT, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
