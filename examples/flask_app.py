"""A Flask app with lembro sessions: a counter, login/logout, and the store's stats.

    python examples/flask_app.py              # http://127.0.0.1:8082/
    python examples/flask_app.py --port 0     # any free port (the line it prints names it)

One line makes ``flask.session`` server-side: ``LembroSession(app)`` (or
``app.session_interface = LembroSessionInterface(...)``). The cookie is
signed with ``app.secret_key`` (SESSION_SECRET, random for the run if unset; a
placeholder or a short secret is refused) and follows Flask's SESSION_COOKIE_*
settings (its name here is flask_app.sid, so that examples served side by
side do not sign each other out). Forms that POST carry a CSRF token; /stats
answers requests from this machine only.
"""

from __future__ import annotations

import argparse

import flask
from example_guard import cookie_secret, csrf_field, csrf_ok, local_only
from example_page import page
from markupsafe import escape
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

from lembro_wsgi import StatsApp
from lembro_wsgi.flask import LembroSession

TITLE = "lembro_wsgi: a Flask app"
PORT, COOKIE = 8082, "flask_app.sid"  # each example has its own port and cookie name


def make_app(**options: object) -> flask.Flask:
    """The app; ``options`` go to the lembro session interface (``store=`` in tests)."""
    app = flask.Flask(__name__)
    app.secret_key = cookie_secret()
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"  # Flask's default is None: recommended
    app.config["SESSION_COOKIE_NAME"] = COOKIE
    if "store" not in options:  # the store's own options, as an app's config would give them
        app.config.update(LEMBRO_MAX_SIZE="1M", LEMBRO_INTERVAL=60)
    sessions = LembroSession(app, **options).interface

    @app.route("/")
    def count() -> str:
        flask.session["visits"] = flask.session.get("visits", 0) + 1
        who = escape(flask.session.get("user", "anonymous"))
        return page(TITLE, f"<p>Hello {who}. Visits in this session: {flask.session['visits']}</p>")

    @app.before_request
    def check_csrf() -> None:
        if flask.request.method == "POST" and not csrf_ok(flask.session, flask.request.form.get("csrf_token")):
            flask.abort(403)  # not sent by a form of this site

    @app.route("/login", methods=["GET", "POST"])
    def login() -> flask.Response | str:
        if flask.request.method == "POST":
            flask.session.regenerate()  # a new id at every change of privilege
            flask.session.pop("csrf_token", None)  # and a new CSRF token: the next form makes one
            flask.session["user"] = flask.request.form.get("name", "").strip()[:40] or "guest"
            return flask.redirect("/", code=303)
        form = (f'<form method="post">{csrf_field(flask.session)}<input name="name" placeholder="your name"> '
                "<button>log in</button></form>")
        return page(TITLE, form)

    @app.route("/logout", methods=["GET", "POST"])
    def logout() -> str:
        if flask.request.method == "GET":  # a link may not log you out: a POST with the token does
            return page(TITLE, f'<form method="post">{csrf_field(flask.session)}<button>log out</button></form>')
        flask.session.invalidate()
        return page(TITLE, "<p>Logged out: the old session is gone.</p>")

    @app.route("/favicon.ico")
    def favicon() -> tuple[str, int]:
        return "", 404  # not a visit

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/stats": local_only(StatsApp(sessions.store))})
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=PORT, help=f"default {PORT}; 0 for any free port")
    args = parser.parse_args()
    app = make_app()  # first: a refused secret stops it before anything listens
    server = make_server("127.0.0.1", args.port, app, threaded=True)  # what app.run() serves with
    print(f"serving on http://127.0.0.1:{server.server_port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
