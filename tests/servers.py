"""Real WSGI servers on 127.0.0.1 for tests: waitress, started and stopped cleanly.

    with serve(app) as base_url:      # 'http://127.0.0.1:PORT'
        urllib.request.urlopen(base_url + '/inc')

    with server_process({"type": "ext:redis", "url": url}) as (pid, base_url):
        ...                           # tests/app_server.py in a process of its own
"""

import http.cookiejar
import json
import subprocess
import sys
import threading
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from waitress import wasyncore
from waitress.server import create_server


@contextmanager
def serve(app, threads=4, **options):
    """Serve ``app`` with waitress on a free loopback port (``options``: waitress's); closed on its own loop thread."""
    server = create_server(app, host="127.0.0.1", port=0, threads=threads, **options)
    stop = threading.Event()

    def run():
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)
        server.close()

    thread = threading.Thread(target=run, name="test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        stop.set()
        thread.join(10)


def browser():
    """A urllib opener that keeps cookies, like one browser."""
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


@contextmanager
def server_process(options):
    """tests/app_server.py with these middleware options, in its own process; yields (pid, base URL)."""
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen([sys.executable, "-m", "tests.app_server", json.dumps(options)], cwd=root,
                               stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline())
        yield process.pid, f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(10)
        process.stdout.close()
