"""Per-request cost of a session read + write: LembroMiddleware, Beaker's SessionMiddleware, a bare app.

    python benchmarks/middleware_bench.py            # about half a minute
    python benchmarks/middleware_bench.py --quick

Each contender serves the same counter app to the same number of returning
clients (cookies from a first request); the three run interleaved, and the
medians are compared. The goal: LembroMiddleware costs no more per request
than Beaker's SessionMiddleware with its leaking ``memory`` backend.
"""

from __future__ import annotations

import argparse
import sys

from _common import interleaved, print_rates
from beaker.middleware import SessionMiddleware

from lembro_wsgi import LembroMiddleware

BASE_ENVIRON = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.url_scheme": "http",
                "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80"}


def counter(key: str):
    def app(environ, start_response):
        session = environ[key]
        session["n"] = session.get("n", 0) + 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


def bare_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def serve(app, cookie: str | None) -> str | None:
    """One request; returns the cookie the response set, if any (name=value)."""
    captured: list[str] = []

    def start_response(status, headers, exc_info=None):
        captured.extend(v for k, v in headers if k.lower() == "set-cookie")

    environ = dict(BASE_ENVIRON)
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    body = app(environ, start_response)
    for _chunk in body:
        pass
    close = getattr(body, "close", None)
    if close:
        close()
    return captured[0].split(";")[0].strip() if captured else None


def drive(app, cookies: list[str], rounds: int) -> int:
    for _ in range(rounds):
        for cookie in cookies:
            serve(app, cookie)
    return rounds * len(cookies)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    clients, rounds, repeats = (100, 5, 3) if args.quick else (200, 20, 9)
    apps = {
        "LembroMiddleware": LembroMiddleware(counter("lembro.session"), max_size="64M"),
        "LembroMiddleware signed": LembroMiddleware(counter("lembro.session"), max_size="64M",
                                                    secret="benchmark secret of some length"),
        "beaker SessionMiddleware memory": SessionMiddleware(counter("beaker.session"),
                                                             {"session.type": "memory", "session.auto": True}),
    }
    cookies = {name: [serve(app, None) for _ in range(clients)] for name, app in apps.items()}
    assert all(all(c) for c in cookies.values()), "every first request must set a cookie"
    contenders = {name: (lambda app=app, c=cookies[name]: drive(app, c, rounds)) for name, app in apps.items()}
    contenders["bare app (no sessions)"] = lambda: drive(bare_app, cookies["LembroMiddleware"], rounds)
    print(f"Python {sys.version.split()[0]}")
    print_rates(
        f"Session read + write per request, {clients} returning clients, median of {repeats} interleaved rounds",
        interleaved(contenders, repeats), "beaker SessionMiddleware memory",
    )


if __name__ == "__main__":
    main()
