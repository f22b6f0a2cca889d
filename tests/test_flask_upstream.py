"""Flask's own session, flash and test-client session tests, run with LembroSessionInterface swapped in.

The tests come from the sdist of the installed Flask, fetched from PyPI at
test time (never committed) into a cache. Every app that would use Flask's
default cookie session gets a fresh LembroSessionInterface
(tests/flask_upstream_plugin.py). No test is exempt: those about the cookie
serializer and MAX_COOKIE_SIZE pass too, since a lembro cookie holds an id.
"""

import os
import subprocess
import sys
from pathlib import Path

from tests.upstream import sdist_folder

ROOT = Path(__file__).resolve().parent.parent
SELECTION = ["tests/test_basic.py", "tests/test_testing.py", "-k", "session or flash"]


def flask_tests():
    """The installed Flask's sdist, its tests/ unpacked (tests/upstream.py fetches it)."""
    return sdist_folder("flask", "tests/")


def test_flasks_own_session_tests_pass_with_lembro():
    source = flask_tests()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.flask_upstream_plugin", "-p", "no:cacheprovider",
         "-W", "ignore::DeprecationWarning", *SELECTION],
        check=False, cwd=source, env=env, capture_output=True, text=True, timeout=300,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-3000:]
    swapped = int(report.split("lembro: ")[1].split()[0])
    passed = int(report.split(" passed")[0].split()[-1])
    assert passed >= 20 and swapped >= passed - 2, report[-1500:]  # most of them really ran on lembro
