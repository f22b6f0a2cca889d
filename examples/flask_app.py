"""A Flask app with lembro sessions: a counter, login/logout, your sessions, and the store's stats.

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

import time

import flask
from example_guard import cookie_secret, csrf_field, csrf_ok, local_only
from example_page import page
from example_server import serve
from markupsafe import escape
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from lembro_wsgi import StatsApp
from lembro_wsgi.flask import LembroSession

TITLE = "lembro_wsgi: a Flask app"
PORT, COOKIE = 8082, "flask_app.sid"  # each example has its own port and cookie name
#: The "Your sessions" table: its header cells, its cells, and the mark of the session that made the request.
HEAD = '<th style="text-align:left;padding-right:.8rem;white-space:nowrap">'
CELL = '<td style="padding:.2rem .8rem .2rem 0;vertical-align:top">'
THIS_ONE = '<strong style="white-space:nowrap">this one</strong>'


def when(seconds: float) -> str:
    """How long ago a moment was, with its local date and time on hover."""
    ago = max(0, int(time.time() - seconds))
    since = (f"{ago} s" if ago < 60 else f"{ago // 60} min" if ago < 3600 else f"{ago // 3600} h" if ago < 86400
             else f"{ago // 86400} days")
    moment = time.localtime(seconds)
    return (f'<time datetime="{time.strftime("%Y-%m-%dT%H:%M:%S%z", moment)}" '
            f'title="{time.strftime("%Y-%m-%d %H:%M:%S", moment)}">{since} ago</time>')


def make_app(**options: object) -> flask.Flask:
    """The app; ``options`` go to the lembro session interface (``store=`` in tests)."""
    app = flask.Flask(__name__)
    app.secret_key = cookie_secret()
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"  # Flask's default is None: recommended
    app.config["SESSION_COOKIE_NAME"] = COOKIE
    if "store" not in options:  # the store's own options, as an app's config would give them
        app.config.update(LEMBRO_MAX_SIZE="1M", LEMBRO_INTERVAL=60)
    app.config["LEMBRO_OWNER_KEY"] = "user"  # the key login() stores the name under: its sessions are the user's
    lembro = LembroSession(app, **options)
    sessions = lembro.sessions  # owned_by(user), revoke(user, keep=...)

    @app.route("/")
    def count() -> str:
        flask.session["visits"] = flask.session.get("visits", 0) + 1
        who = escape(flask.session.get("user", "anonymous"))
        yours = ' <a href="/sessions">Your sessions</a>' if "user" in flask.session else ""
        return page(TITLE, f"<p>Hello {who}. Visits in this session: {flask.session['visits']}</p>{yours}")

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
            flask.session["browser"] = flask.request.user_agent.string[:80]  # shown on "Your sessions"
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

    @app.route("/sessions", methods=["GET", "POST"])
    def your_sessions() -> flask.Response | str:
        """The signed-in user's sessions, this one marked; a POST signs out every other one."""
        user = flask.session.get("user")
        if user is None:
            return page(TITLE, '<p>Not logged in: <a href="/login">log in</a> to see your sessions.</p>')
        if flask.request.method == "POST":  # the CSRF token was checked before
            ended = sessions.revoke(user, keep=flask.session.id)  # "sign out everywhere else"
            flask.flash(f"Signed out {ended} other session{'' if ended == 1 else 's'}.")
            return flask.redirect("/sessions", code=303)
        rows = [
            (when(found.created), when(found.accessed), str(int(found.data.get("visits", 0))),
             escape(found.data.get("browser") or "-"), THIS_ONE if found.id == flask.session.id else "")
            for found in sessions.owned_by(user)  # most recently used first
        ]
        head = "".join(f"{HEAD}{name}</th>" for name in ("Started", "Last used", "Visits", "Browser"))
        table = f"<tr>{head}<th></th></tr>" + "".join(
            "<tr>" + "".join(f"{CELL}{cell}</td>" for cell in row) + "</tr>" for row in rows)
        body = (f"<p>{escape(user)}, you are signed in on these browsers:</p>"
                f'<table style="border-collapse:collapse;font-size:.9rem;margin-bottom:1rem">{table}</table>'
                f'<form method="post">{csrf_field(flask.session)}<button>sign out everywhere else</button></form>')
        return page(TITLE, body, flask.get_flashed_messages())

    @app.route("/favicon.ico")
    def favicon() -> tuple[str, int]:
        return "", 404  # not a visit

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/stats": local_only(StatsApp(lembro.store))})
    return app


def main() -> None:
    serve(make_app, PORT, __doc__.splitlines()[0], threaded=True)


if __name__ == "__main__":
    main()
