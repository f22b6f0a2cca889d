"""A Flask app with lembro sessions: a counter, login/logout, and the store's stats.

    python examples/flask_app.py              # http://127.0.0.1:8080/
    python examples/flask_app.py --port 0     # any free port

One line makes ``flask.session`` server-side: ``LembroSession(app)`` (or
``app.session_interface = LembroSessionInterface(...)``). The cookie is
signed with ``app.secret_key`` (LEMBRO_SECRET, random if unset) and follows
Flask's SESSION_COOKIE_* settings.
"""

from __future__ import annotations

import argparse
import os
import secrets

import flask
from markupsafe import escape

from lembro_wsgi.flask import LembroSession

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>lembro_wsgi · Flask</title>
<style>body{{font:16px sans-serif;margin:2em}}.bar{{width:20em;height:1em;border:1px solid #888}}
.fill{{height:100%;background:#4a8}}</style></head><body>{body}
<p><a href="/">count</a> · <a href="/login">log in</a> · <a href="/logout">log out</a> · <a href="/stats">stats</a></p>
</body></html>"""


def make_app(**options: object) -> flask.Flask:
    """The app; ``options`` go to the lembro session interface (``store=`` in tests)."""
    app = flask.Flask(__name__)
    app.secret_key = os.environ.get("LEMBRO_SECRET") or secrets.token_hex(32)
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"  # Flask's default is None: recommended
    if "store" not in options:  # the store's own options, as an app's config would give them
        app.config.update(LEMBRO_MAX_SIZE="1M", LEMBRO_INTERVAL=60)
    sessions = LembroSession(app, **options).interface

    @app.route("/")
    def count() -> str:
        flask.session["visits"] = flask.session.get("visits", 0) + 1
        who = escape(flask.session.get("user", "anonymous"))
        return PAGE.format(body=f"<p>Hello {who}. Visits in this session: {flask.session['visits']}</p>")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> flask.Response | str:
        if flask.request.method == "POST":
            flask.session.regenerate()  # a new id at every change of privilege
            flask.session["user"] = flask.request.form.get("name", "").strip()[:40] or "guest"
            return flask.redirect("/", code=303)
        form = '<form method="post"><input name="name" placeholder="your name"> <button>log in</button></form>'
        return PAGE.format(body=form)

    @app.route("/logout")
    def logout() -> str:
        flask.session.invalidate()
        return PAGE.format(body="<p>Logged out: the old session is gone.</p>")

    @app.route("/stats")
    def stats() -> str:
        figures = sessions.store.stats()
        used = 100 * figures["bytes"] / figures["max_size"]
        return PAGE.format(body=(
            f"<p>{figures['sessions']} sessions, {figures['bytes']:,} of {figures['max_size']:,} bytes "
            f"({used:.1f}%)</p><div class=\"bar\"><div class=\"fill\" style=\"width:{used:.1f}%\"></div></div>"
            f"<p>evictions {figures['evictions']} · expirations {figures['expirations']} · "
            f"purges {figures['purges']}</p>"
        ))

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    make_app().run(host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
