"""A test app in a server process of its own: session_app under LembroMiddleware on waitress, 127.0.0.1.

    python -m tests.app_server '{"max_size": 65536, "interval": 1}'   # prints the port, serves until killed

The argument is the middleware's options as JSON. ``/__stats`` answers the
store's stats as JSON (lembro backend), so a test reads them from outside.
Used by the soak test (RSS of the server alone) and the two-worker tests.
"""

import json
import sys

from waitress.server import create_server

from lembro_wsgi import LembroMiddleware
from tests.wsgi_apps import session_app


def main() -> None:
    sessions = LembroMiddleware(session_app, **json.loads(sys.argv[1]))

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/__stats" and sessions.store is not None:
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(sessions.store.stats()).encode()]
        return sessions(environ, start_response)

    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    print(server.effective_port, flush=True)
    server.run()


if __name__ == "__main__":
    main()
