"""One flood, three Flask session stores: who keeps their returning users, and how much memory they hold.

    pip install -e '.[bench]'      # brings the peers: Flask-Session and cachelib
    python benchmarks/flask_flood.py

50 returning users log in (and see the page the login redirects to), then 3,000 one-shot clients (crawlers, a flood of
new visitors) each write ~1 KB; the users come back every 500 flood requests
(a pause of a minute or so in real traffic). Stores compared:

- lembro: ``LembroSessionInterface(max_size='256K')``;
- Flask-Session's cachelib backend on a ``SimpleCache`` whose count cap
  holds as many sessions as 256 KiB holds in lembro (its ``threshold``);
- Flask's default signed-cookie session (nothing on the server; the data
  rides in every request's cookie).
"""

from __future__ import annotations

import os
import pickle

import flask

from lembro_wsgi.flask import LembroSessionInterface

USERS, FLOOD, RETURN_EVERY, CAP = 50, 3000, 500, 256 * 1024


def payload() -> str:
    """~1 KB that does not compress (Flask's cookie session compresses its data)."""
    return os.urandom(500).hex()


def make_app(store_kind: str) -> tuple[flask.Flask, callable]:
    app = flask.Flask(__name__)
    app.secret_key = "benchmark secret"
    if store_kind == "lembro":
        interface = LembroSessionInterface(interval=None, max_size=CAP)
        app.session_interface = interface

        def held() -> int:
            return interface.store.stats()["bytes"]
    elif store_kind == "cachelib":
        from cachelib import SimpleCache
        from flask_session import Session

        per_session = 1400  # what one ~1 KB session costs in lembro, id and entry included
        cache = SimpleCache(threshold=CAP // per_session, default_timeout=1800)
        app.config.update(SESSION_TYPE="cachelib", SESSION_CACHELIB=cache, SESSION_PERMANENT=False)
        Session(app)

        def held() -> int:  # the pickled values and their keys: a lower bound of its memory
            return sum(len(key) + len(value) for key, (_, value) in cache._cache.items())
    else:
        def held() -> int:
            return 0

    @app.route("/login/<name>")
    def login(name: str) -> str:
        flask.session["user"] = name
        flask.session["profile"] = payload()
        return "in"

    @app.route("/me")
    def me() -> str:
        return flask.session.get("user", "-")

    @app.route("/visit")
    def visit() -> str:
        flask.session["page"] = payload()
        return "ok"

    return app, held


def run(store_kind: str) -> tuple[float, int, int]:
    """Returns (share of returning users kept, peak bytes held by the server, cookie bytes a user sends)."""
    app, held = make_app(store_kind)
    users = [app.test_client() for _ in range(USERS)]
    for i, user in enumerate(users):
        user.get(f"/login/u{i}")
        user.get("/me")  # the page the login redirects to
    peak = held()
    for n in range(FLOOD):
        app.test_client().get("/visit")
        if n % 10 == 0:
            peak = max(peak, held())
        if n % RETURN_EVERY == RETURN_EVERY - 1:
            for user in users:
                user.get("/me")
    kept = sum(user.get("/me").text == f"u{i}" for i, user in enumerate(users))
    cookie = users[0].get_cookie("session")
    return kept / USERS, peak, len(cookie.value) if cookie else 0


def main() -> None:
    print(f"{USERS} returning users, {FLOOD} one-shot clients of ~1 KB, users back every {RETURN_EVERY} requests; "
          f"cap {CAP:,} bytes\n")
    print(f"{'store':<34} {'users kept':>10} {'peak server bytes':>18} {'x cap':>6} {'cookie bytes':>13}")
    for kind, label in (("lembro", "lembro (256K byte cap)"),
                        ("cachelib", "Flask-Session cachelib SimpleCache"),
                        ("cookie", "Flask default signed cookie")):
        try:
            kept, peak, cookie = run(kind)
        except ImportError as exc:
            print(f"{label:<34} skipped: {exc}")
            continue
        print(f"{label:<34} {kept:>10.0%} {peak:>18,} {peak / CAP:>6.2f} {cookie:>13,}")
    print(f"\n(pickle protocol {pickle.HIGHEST_PROTOCOL}; cachelib's figure counts pickled values and keys only)")


if __name__ == "__main__":
    main()
