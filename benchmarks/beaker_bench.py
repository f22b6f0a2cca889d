"""Beaker's SessionMiddleware with type = lembro against type = memory.

    python benchmarks/beaker_bench.py            # about a minute
    python benchmarks/beaker_bench.py --quick

1. Per-request cost of a session read + write through Beaker's own
   SessionMiddleware, both backends and a bare app interleaved in one run.
2. A flood of new clients (200k by default), each in its own subprocess per
   backend so peak RSS is each backend's own: lembro stays at its cap,
   memory grows with every client.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys

from _common import interleaved, print_rates
from beaker.middleware import SessionMiddleware

PAYLOAD = "x" * 200


def counter_app(environ, start_response):
    session = environ["beaker.session"]
    session["n"] = session.get("n", 0) + 1
    session["payload"] = PAYLOAD
    session.save()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def bare_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def build(backend: str):
    return SessionMiddleware(counter_app, {"session.type": backend, "session.key": "sid", "session.max_size": "64M"})


def first_cookie(app) -> str:
    """Make one request without a cookie and return the cookie the client should send back."""
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured.update((name.lower(), value) for name, value in headers)

    app({"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.url_scheme": "http",
         "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80"}, start_response)
    return captured["set-cookie"].split(";")[0].strip()


def drive(app, cookies: list[str], rounds: int) -> int:
    def start_response(status, headers, exc_info=None):
        return None

    for _ in range(rounds):
        for cookie in cookies:
            for _chunk in app({"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_COOKIE": cookie,
                               "wsgi.url_scheme": "http", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80"},
                              start_response):
                pass
    return rounds * len(cookies)


def bench_requests(clients: int, rounds: int, repeats: int) -> None:
    apps = {"beaker type=lembro": build("lembro"), "beaker type=memory": build("memory")}
    cookies = {name: [first_cookie(app) for _ in range(clients)] for name, app in apps.items()}
    contenders = {name: (lambda app=app, c=cookies[name]: drive(app, c, rounds)) for name, app in apps.items()}
    contenders["bare app (no sessions)"] = lambda: drive(bare_app, cookies["beaker type=memory"], rounds)
    rates = interleaved(contenders, repeats)
    print_rates(
        f"Requests through Beaker SessionMiddleware (read + write), {clients} clients, median of {repeats} rounds",
        rates, "beaker type=memory",
    )


def flood(backend: str, clients: int) -> None:
    """Child process: ``clients`` new clients each write ~1 KB; print peak RSS in MiB."""
    app = SessionMiddleware(counter_app, {"session.type": backend, "session.max_size": "4M"})

    def start_response(status, headers, exc_info=None):
        return None

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.url_scheme": "http",
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80"}
    global PAYLOAD
    PAYLOAD = "y" * 1000
    for _ in range(clients):
        app(dict(environ), start_response)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def bench_flood(clients: int) -> None:
    print(f"\nFlood of {clients:,} new clients writing ~1 KB each (lembro max_size 4M); peak RSS per process")
    peaks = {}
    for backend in ("lembro", "memory"):
        out = subprocess.run([sys.executable, __file__, "--flood", backend, "--clients", str(clients)],
                             check=True, capture_output=True, text=True).stdout
        peaks[backend] = float(out.strip())
    for backend, peak in peaks.items():
        print(f"  beaker type={backend:<8} peak RSS {peak:8.1f} MiB   {peak / peaks['memory']:5.2f}x type=memory")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--flood", choices=["lembro", "memory"])
    parser.add_argument("--clients", type=int, default=200_000)
    parser.add_argument("--flood-only", action="store_true", help="skip the per-request table (run_all.py has it)")
    args = parser.parse_args()
    if args.flood:
        flood(args.flood, args.clients)
        return
    print(f"Python {sys.version.split()[0]}")
    if not args.flood_only:
        bench_requests(clients=100, rounds=5 if args.quick else 20, repeats=3 if args.quick else 7)
    bench_flood(20_000 if args.quick else args.clients)


if __name__ == "__main__":
    main()
