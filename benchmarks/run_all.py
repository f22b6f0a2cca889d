"""Every benchmark in one run (4 to 6 minutes on 2 cores, 3 GB of memory), the per-request contenders in one interleaved table.

    pip install -e '.[bench]'
    python benchmarks/run_all.py

What it runs, in this order (1 in this process, 2 to 8 each in its own, as ``python benchmarks/<script>``):

1. Per request (a session read + write by the same counter app, returning
   clients, interleaved rounds, medians): LembroMiddleware unsigned and
   signed, Beaker's SessionMiddleware with ``memory`` and with ``lembro``,
   Flask's default cookie session, LembroSessionInterface, Flask-Session on
   cachelib and Flask with no session, a bare app; then each session layer's
   own cost (over the same app without sessions) against LembroMiddleware's.
2. store_bench.py: store ops against Beaker's memory backend as its Session
   drives it, cachetools' TTLCache and cachelib's SimpleCache; namespace
   managers as Beaker drives them; purge and eviction cost at 10k, 100k and
   1M sessions; flood retention.
3. store_memory.py: reported bytes against tracemalloc.
4. beaker_bench.py --flood-only: peak RSS of a 200,000-client flood, lembro
   against memory, each in its own process (the per-request half of
   beaker_bench.py, and middleware_bench.py, are the contenders of 1).
5. flask_flood.py: one flood through LembroSessionInterface, Flask-Session's
   cachelib backend and Flask's signed-cookie session: returning users kept,
   peak server bytes, cookie size.
6. pauses.py: how long a concurrent read waits while a store at its cap
   evicts, comes down to 75% and purges, at 100k and 1M sessions, against
   cachetools' TTLCache.
7. django_bench.py: Django's session engines per request (lembro, the cache
   engine on LocMem, signed cookies, the database on sqlite), and who keeps
   a signed-in user through a flood.
8. owners_bench.py: ``owned_by`` and ``revoke`` of one user's 5 sessions
   with none, 10k and 1M anonymous sessions in the store (the goal: 1M as
   fast as 10k), against decoding every session to find that user's.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import flask
from _common import interleaved
from beaker.middleware import SessionMiddleware
from cachelib import SimpleCache
from flask.sessions import SecureCookieSession, SessionInterface
from flask_session import Session
from middleware_bench import bare_app, counter, drive, serve

from lembro_wsgi import LembroMiddleware
from lembro_wsgi.flask import LembroSessionInterface

HERE = Path(__file__).resolve().parent
CLIENTS, ROUNDS, REPEATS = 200, 10, 9


class NoSessions(SessionInterface):
    """Flask with no session at all: each request's session is a new dict, never stored (the baseline that
    shows what each session layer costs on its own)."""

    def open_session(self, app: flask.Flask, request: flask.Request) -> SecureCookieSession:
        return SecureCookieSession()

    def save_session(self, app: flask.Flask, session: object, response: flask.Response) -> None:
        pass


def flask_counter(kind: str) -> flask.Flask:
    """The counter app on Flask, its session kept by ``kind``: none, cookie (Flask's own), lembro, cachelib."""
    app = flask.Flask(__name__)
    app.secret_key = "benchmark secret of some length"
    if kind == "none":
        app.session_interface = NoSessions()
    elif kind == "lembro":
        app.session_interface = LembroSessionInterface(max_size="64M")
    elif kind == "cachelib":
        app.config.update(SESSION_TYPE="cachelib", SESSION_CACHELIB=SimpleCache(threshold=100_000))
        Session(app)

    @app.route("/")
    def count() -> str:
        flask.session["n"] = flask.session.get("n", 0) + 1
        return "ok"

    return app


def per_request() -> None:
    apps = {
        "LembroMiddleware": LembroMiddleware(counter("lembro.session"), max_size="64M"),
        "LembroMiddleware signed": LembroMiddleware(counter("lembro.session"), max_size="64M",
                                                    secret="benchmark secret of some length"),
        "Beaker SessionMiddleware memory": SessionMiddleware(
            counter("beaker.session"), {"session.type": "memory", "session.auto": True}),
        "Beaker SessionMiddleware lembro": SessionMiddleware(
            counter("beaker.session"), {"session.type": "lembro", "session.auto": True, "session.max_size": "64M"}),
        "Flask default (signed cookie)": flask_counter("cookie"),
        "Flask LembroSessionInterface": flask_counter("lembro"),
        "Flask-Session (cachelib)": flask_counter("cachelib"),
        "Flask without sessions": flask_counter("none"),
    }
    cookies = {name: [serve(app, None) for _ in range(CLIENTS)] for name, app in apps.items()}
    contenders = {name: (lambda app=app, c=cookies[name]: drive(app, c, ROUNDS)) for name, app in apps.items()}
    contenders["bare app (no sessions)"] = lambda: drive(bare_app, cookies["LembroMiddleware"], ROUNDS)
    rates = interleaved(contenders, REPEATS)
    cost = {name: 1e6 / rate for name, rate in rates.items()}
    pairs = {  # each contender against the peer its target names
        "LembroMiddleware": "Beaker SessionMiddleware memory",
        "LembroMiddleware signed": "Beaker SessionMiddleware memory",
        "Beaker SessionMiddleware lembro": "Beaker SessionMiddleware memory",
        "Flask LembroSessionInterface": "Flask default (signed cookie)",
    }
    print(f"\n1. Per request, session read + write, {CLIENTS} returning clients, "
          f"median of {REPEATS} interleaved rounds")
    print(f"  {'contender':<34} {'req/s':>10} {'us/req':>8}   cost against its peer")
    for name in rates:
        peer = pairs.get(name)
        ratio = f"{cost[name] / cost[peer]:.2f}x {peer}" if peer else ""
        print(f"  {name:<34} {rates[name]:>10,.0f} {cost[name]:>8.1f}   {ratio}")
    layer = {  # each session layer's own cost: the request's, less the same app's without sessions
        "LembroMiddleware": cost["LembroMiddleware"] - cost["bare app (no sessions)"],
        **{name: cost[name] - cost["Flask without sessions"] for name in (
            "Flask LembroSessionInterface", "Flask-Session (cachelib)", "Flask default (signed cookie)")},
    }
    print("\n  The session layer alone (us per request over the same app without sessions):")
    for name, us in layer.items():
        print(f"  {name:<34} {us:>8.1f} us   {us / layer['LembroMiddleware']:.2f}x LembroMiddleware's")


def run(script: str, *args: str) -> None:
    print(f"\n$ python benchmarks/{script} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *args], check=True, cwd=HERE.parent)


def main() -> None:
    print(f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}; "
          f"CPUs: {len(__import__('os').sched_getaffinity(0)) if hasattr(__import__('os'), 'sched_getaffinity') else '?'}")
    per_request()
    run("store_bench.py")
    run("store_memory.py")
    run("beaker_bench.py", "--flood-only")
    run("flask_flood.py")
    run("pauses.py")
    run("django_bench.py")
    run("owners_bench.py")


if __name__ == "__main__":
    main()
