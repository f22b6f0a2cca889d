"""How the example apps are served: ``--port`` (0 for any free port), 127.0.0.1 only, the app built first."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def serve(build: Callable[[], Any], port: int, description: str, waitress: bool = False, threaded: bool = False,
          banner: str = "") -> None:
    """Build the app (a refused secret stops it before anything listens), then serve it until Ctrl-C.

    ``waitress`` serves as pserve does, keeping proxy headers: waitress drops them by default, and the
    stats page's local-only check would then let in every client of a proxy on this machine.
    ``threaded`` serves with Werkzeug's threaded server (what Flask's ``app.run()`` uses); ``banner`` is
    printed first.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=port, help=f"default {port}; 0 for any free port")
    args = parser.parse_args()
    app = build()
    if waitress:
        from waitress.server import create_server

        server = create_server(app, host="127.0.0.1", port=args.port, clear_untrusted_proxy_headers=False)
        run, bound = server.run, server.effective_port
    else:
        if threaded:
            from werkzeug.serving import make_server
        else:
            from wsgiref.simple_server import make_server  # type: ignore[assignment]

        kwargs = {"threaded": True} if threaded else {}
        server = make_server("127.0.0.1", args.port, app, **kwargs)
        run, bound = server.serve_forever, server.server_port
    if banner:
        print(banner, flush=True)
    print(f"serving on http://127.0.0.1:{bound}/ (Ctrl-C to stop)", flush=True)
    try:
        run()
    except KeyboardInterrupt:
        pass
