"""Several worker processes under a real gunicorn on 127.0.0.1 (issue 21, item 10).

gunicorn sets ``wsgi.multiprocess`` when it runs more than one worker, each with its own lembro store:
lembro warns once in each worker, naming the fix, and never with ``-w 1``. The app is
tests/gunicorn_app.py; gunicorn is started on a free port, polled for readiness with a deadline,
and stopped after.
"""

import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

gunicorn_config = pytest.importorskip("gunicorn.config", reason="gunicorn is in the test extra: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parent.parent
WARNING = "several worker processes"
DEADLINE = 30


def _control_socket_flags():
    """gunicorn 24+ opens a control socket in ~/.gunicorn; these tests need none."""
    known = {flag for setting in gunicorn_config.KNOWN_SETTINGS for flag in (setting.cli or [])}
    return ["--no-control-socket"] if "--no-control-socket" in known else []


@contextmanager
def running_gunicorn(workers, log_path):
    """gunicorn with ``workers`` sync workers on a free port of 127.0.0.1; yields its base URL."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", "127.0.0.1:0", "--graceful-timeout", "5",
             *_control_socket_flags(), "tests.gunicorn_app:app"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log_path.read_text())
            if found or process.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert found, f"gunicorn did not start listening:\n{log_path.read_text()}"
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        process.send_signal(signal.SIGTERM)  # graceful: the workers' log lines are all written
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def pid_of(url):
    """One request as a new client; the worker pid that answered."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        pid, count = response.read().decode().split()
        assert count == "1"
        return int(pid)


def spread_requests(base_url, workers):
    """Concurrent requests, each held 0.2 s by the app, until every worker answered at least twice
    (a sync worker serves one at a time, so concurrent ones go to the others); bounded by DEADLINE."""
    served = Counter()
    deadline = time.monotonic() + DEADLINE
    with ThreadPoolExecutor(2 * workers) as pool:
        while len(served) < workers or min(served.values()) < 2:
            assert time.monotonic() < deadline, f"requests never reached every worker: {served}"
            served.update(pool.map(pid_of, [f"{base_url}/?hold=0.2"] * (2 * workers)))
    return served


def warned_pids(log_text):
    return Counter(int(line.split()[0]) for line in log_text.splitlines() if WARNING in line and "lembro_wsgi" in line)


def test_two_workers_each_warn_exactly_once(tmp_path):
    log_path = tmp_path / "gunicorn.log"
    with running_gunicorn(2, log_path) as base_url:
        served = spread_requests(base_url, workers=2)
    text = log_path.read_text()
    assert len(served) == 2 and min(served.values()) >= 2
    assert warned_pids(text) == {pid: 1 for pid in served}, text
    assert "gunicorn -w 1 --threads 8" in text and "type='ext:redis'" in text


def test_one_worker_is_not_warned_about(tmp_path):
    log_path = tmp_path / "gunicorn.log"
    with running_gunicorn(1, log_path) as base_url:
        pids = {pid_of(f"{base_url}/") for _ in range(5)}
    text = log_path.read_text()
    assert len(pids) == 1 and f"app loaded in process {pids.pop()}" in text  # its log lines do reach the file
    assert warned_pids(text) == {}, text
