"""A visit counter whose count lives in a LembroStore, served on 127.0.0.1.

    python examples/counter_app.py            # http://127.0.0.1:8080/
    python examples/counter_app.py --port 0   # any free port

Each browser gets a random session id in an HttpOnly cookie; the count for
that id survives requests. /stats shows what the store holds.
"""

from __future__ import annotations

import argparse
import secrets
from wsgiref.simple_server import make_server

from webob import Request, Response

from lembro_wsgi import LembroStore

COOKIE = "lembro.sid"


def make_app(store: LembroStore):
    def app(environ, start_response):
        request = Request(environ)
        if request.path_info == "/stats":
            response = Response(json_body=store.stats())
            return response(environ, start_response)
        sid = request.cookies.get(COOKIE, "")
        data = store.get(sid) if sid else None
        response = Response(content_type="text/plain", charset="utf-8")
        if data is None:  # unknown or expired ids are never adopted
            sid, data = secrets.token_urlsafe(32), {"visits": 0}
            response.set_cookie(COOKIE, sid, httponly=True, samesite="Lax", path="/")
        data["visits"] += 1
        store.set(sid, data)
        response.text = f"visits in this session: {data['visits']}\n"
        return response(environ, start_response)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    store = LembroStore(interval=60, max_size="1M")
    with make_server("127.0.0.1", args.port, make_app(store)) as server:
        print(f"serving on http://127.0.0.1:{server.server_port}/ (Ctrl-C to stop)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
