"""A plain WSGI app with lembro sessions: a counter, login/logout, and the store's stats.

    python examples/wsgi_app.py              # http://127.0.0.1:8080/
    python examples/wsgi_app.py --port 0     # any free port

Pages: / counts your visits, /login and /logout show regenerate() and
invalidate(), /stats is lembro's StatsApp: sessions and bytes used against
the cap, history, evictions and purges. The cookie is signed with LEMBRO_SECRET (random if unset).
"""

from __future__ import annotations

import argparse
import html
import os
import secrets
from wsgiref.simple_server import make_server

from example_page import page
from webob import Request, Response

from lembro_wsgi import LembroMiddleware, LembroStore, StatsApp


def site(store: LembroStore):
    """The pages; ``store`` is only read, by the stats page at /stats."""
    stats = StatsApp(store)

    def app(environ, start_response):
        request = Request(environ)
        session = environ["lembro.session"]
        if request.path_info == "/stats":
            return stats(environ, start_response)
        if request.path_info == "/favicon.ico":  # not a visit
            return Response(status=404)(environ, start_response)
        if request.path_info == "/login" and request.method == "POST":
            session.regenerate()  # a new id at every change of privilege
            session["user"] = request.POST.get("name", "").strip()[:40] or "guest"
            return Response(status=303, location="/")(environ, start_response)
        if request.path_info == "/login":
            body = '<form method="post"><input name="name" placeholder="your name"> <button>log in</button></form>'
        elif request.path_info == "/logout":
            session.invalidate()
            body = "<p>Logged out: the old session is gone.</p>"
        else:
            session["visits"] = session.get("visits", 0) + 1
            who = html.escape(session.get("user", "anonymous"))
            body = f"<p>Hello {who}. Visits in this session: {session['visits']}</p>"
        return Response(page("lembro_wsgi: a plain WSGI app", body), charset="utf-8")(environ, start_response)

    return app


def make_app(store: LembroStore | None = None) -> LembroMiddleware:
    store = store or LembroStore(interval=60, max_size="1M")
    secret = os.environ.get("LEMBRO_SECRET") or secrets.token_hex(32)
    return LembroMiddleware(site(store), store=store, secret=secret)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    with make_server("127.0.0.1", args.port, make_app()) as server:
        print(f"serving on http://127.0.0.1:{server.server_port}/ (Ctrl-C to stop)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
