"""A test app for a real gunicorn (tests/test_gunicorn.py): LembroMiddleware over a counter that says which
worker process answered.

    python -m gunicorn -w 2 -b 127.0.0.1:0 tests.gunicorn_app:app

``/?hold=0.2`` answers after that many seconds, so that concurrent requests spread over the workers.
Log records go to stderr with the process id, so the test can tell the workers' warnings apart.
"""

import logging
import os
import time
from urllib.parse import parse_qs

from lembro_wsgi import LembroMiddleware

logging.basicConfig(level=logging.INFO, format="%(process)d %(name)s %(levelname)s %(message)s")
logging.getLogger("tests.gunicorn_app").info("app loaded in process %d", os.getpid())


def counter(environ, start_response):
    session = environ["lembro.session"]
    session["n"] = session.get("n", 0) + 1
    hold = float(parse_qs(environ.get("QUERY_STRING", "")).get("hold", ["0"])[-1])
    time.sleep(min(hold, 1.0))  # bounded: only to keep a sync worker busy while another request arrives
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{os.getpid()} {session['n']}".encode()]


app = LembroMiddleware(counter, max_size="64K")
