"""A plain WSGI app with lembro sessions: a counter, login/logout, and the store's stats.

    python examples/wsgi_app.py              # http://127.0.0.1:8080/
    python examples/wsgi_app.py --port 0     # any free port (the line it prints names it)

Pages: / counts your visits, /login and /logout show regenerate() and
invalidate() (forms that POST a CSRF token), /stats is lembro's StatsApp:
sessions and bytes used against the cap, history, evictions and purges, for
requests from this machine only. The cookie (wsgi_app.sid, a name of its
own, so that examples served side by side do not sign each other out) is
signed with SESSION_SECRET (random for the run if unset; a placeholder or a
short secret is refused).
"""

from __future__ import annotations

import html

from example_guard import cookie_secret, csrf_field, csrf_ok, local_only
from example_page import page
from example_server import serve
from webob import Request, Response

from lembro_wsgi import LembroMiddleware, LembroStore, StatsApp


def site(store: LembroStore):
    """The pages; ``store`` is only read, by the stats page at /stats."""
    stats = local_only(StatsApp(store))  # figures about your users: not for everyone

    def app(environ, start_response):
        request = Request(environ)
        session = environ["lembro.session"]
        if request.path_info == "/stats":
            return stats(environ, start_response)
        if request.path_info == "/favicon.ico":  # not a visit
            return Response(status=404)(environ, start_response)
        if request.method == "POST" and not csrf_ok(session, request.POST.get("csrf_token")):
            return Response("Forbidden: a form of this site must be sent.", status=403)(environ, start_response)
        if request.path_info == "/login" and request.method == "POST":
            session.regenerate()  # a new id at every change of privilege
            session.pop("csrf_token", None)  # and a new CSRF token: the next form makes one
            session["user"] = request.POST.get("name", "").strip()[:40] or "guest"
            return Response(status=303, location="/")(environ, start_response)
        if request.path_info == "/logout" and request.method == "POST":
            session.invalidate()
            body = "<p>Logged out: the old session is gone.</p>"
        elif request.path_info == "/login":
            body = (f'<form method="post">{csrf_field(session)}<input name="name" placeholder="your name"> '
                    "<button>log in</button></form>")
        elif request.path_info == "/logout":  # a link may not log you out: a POST with the token does
            body = f'<form method="post">{csrf_field(session)}<button>log out</button></form>'
        else:
            session["visits"] = session.get("visits", 0) + 1
            who = html.escape(session.get("user", "anonymous"))
            body = f"<p>Hello {who}. Visits in this session: {session['visits']}</p>"
        return Response(page("lembro_wsgi: a plain WSGI app", body), charset="utf-8")(environ, start_response)

    return app


PORT, COOKIE = 8080, "wsgi_app.sid"  # each example has its own port and cookie name


def make_app(store: LembroStore | None = None) -> LembroMiddleware:
    secret = cookie_secret()  # first: a placeholder stops the app before anything starts
    store = store or LembroStore(interval=60, max_size="1M")
    return LembroMiddleware(site(store), store=store, secret=secret, cookie_name=COOKIE)


def main() -> None:
    serve(make_app, PORT, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
