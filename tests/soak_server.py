"""The soak test's server process: session_app under LembroMiddleware on waitress, 127.0.0.1, a free port.

    python -m tests.soak_server 65536     # prints the port, then serves until killed

``/__stats`` answers the store's stats as JSON, so the test reads them from outside.
"""

import json
import sys

from waitress.server import create_server

from lembro_wsgi import LembroMiddleware
from tests.wsgi_apps import session_app


def main() -> None:
    sessions = LembroMiddleware(session_app, max_size=int(sys.argv[1]), interval=1)

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/__stats":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(sessions.store.stats()).encode()]
        return sessions(environ, start_response)

    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    print(server.effective_port, flush=True)
    server.run()


if __name__ == "__main__":
    main()
